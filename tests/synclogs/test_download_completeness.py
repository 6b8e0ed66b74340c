"""An order download reads every order of its range, or fails and keeps its watermark.

Every marketplace, over real HTTP against its emulator: a page of the order list answered
empty or short while more follow fails the read with a clear error, so the scheduled download
keeps its watermark and its next run reads the range again; no order is lost, and none is taken
twice. A page dropped once is asked for again. Where the list is paged by offset (Lazada,
WooCommerce), an order updated during the read, which leaves the range and moves the orders
after it up a place, makes none of them fall between two pages.
"""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from channels.adapters.base import OrderState
from channels.adapters.paging import IncompleteRead
from channels.emulators import emulator_class
from channels.emulators.shopee import ShopeeFault
from channels.marketplaces import KINDS
from channels.models import Channel
from synclogs.models import OrderDownload, SalesOrder
from synclogs.services import orders_download
from tests.channels.builders import shop_item
from tests.channels.test_contract import adapter
from tests.channels.test_scan_completeness import quick_retries  # noqa: F401 - a fixture
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db

SKU = "TEE-1"
# Orders per page of each marketplace's order list (Shopify's carry their lines, so fewer).
PAGE = {"shopify": 15}
ORDERS = 210  # three pages or more everywhere


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def shop(kind):
    """A shop of one item and ORDERS paid orders of one unit each."""
    with emulator_class(kind)(items=0, seed=9) as server:
        server.put_item(shop_item("Tee", SKU, quantity=ORDERS + 50))
        (listing,) = [lst for page in adapter(kind, server).iter_listing_pages() for lst in page]
        line = [(listing.item_id, listing.variant_id, 1)]
        server.numbers = [server.create_order(line, state=OrderState.PAID) for _ in range(ORDERS)]
        yield server


def read_orders(kind: str, emulator, *, until=None) -> list[str]:
    now = timezone.now()
    window = {
        "updated_from": now - timedelta(days=1),
        "updated_to": until or now + timedelta(days=1),
    }
    return [o.order_number for page in adapter(kind, emulator).iter_orders(**window) for o in page]


def connect(kind: str, emulator) -> Channel:
    VariantFactory(sku=SKU)
    return Channel.objects.create(
        kind=kind,
        name=f"{kind} shop",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="jkt"),
    )


def pages(kind: str) -> int:
    return math.ceil(ORDERS / PAGE.get(kind, 100))


INCOMPLETE_PAGES = [
    pytest.param("empty", "empty while saying more follow", id="empty-page"),
    pytest.param("short", "asked for while saying more follow", id="short-page"),
]


@pytest.mark.parametrize(("fault", "says"), INCOMPLETE_PAGES)
def test_an_incomplete_page_of_orders_fails_the_read(kind, shop, fault, says):
    assert pages(kind) >= 3
    # when: the second page of the order list comes back incomplete, every time
    shop.set_page_fault(fault, page=2, of="orders")
    # then
    with pytest.raises(IncompleteRead, match=says):
        read_orders(kind, shop)
    assert shop.log.faults[f"orders_page_{fault}"] >= 1


@pytest.mark.usefixtures("quick_retries")
def test_a_page_of_orders_dropped_once_is_asked_for_again(kind, shop):
    shop.set_page_fault("drop", page=2, times=1, of="orders")
    # when
    numbers = read_orders(kind, shop)
    # then
    assert shop.log.faults["orders_page_drop"] == 1
    assert sorted(numbers) == sorted(shop.numbers)


def test_a_download_that_meets_an_incomplete_page_keeps_its_watermark_and_loses_no_order(
    kind, shop
):
    # given: a channel whose order list answers its second page empty
    channel = connect(kind, shop)
    shop.set_page_fault("empty", page=2, of="orders")
    # when: the scheduled download runs
    failed = orders_download(channel=channel, now=timezone.now() + timedelta(seconds=5))
    # then: it fails saying why, and its watermark stays where it was
    assert "empty while saying more follow" in failed.error
    state = OrderDownload.objects.get(channel=channel)
    assert state.synced_until is None
    assert "empty while saying more follow" in state.last_error
    # when: the marketplace answers in full again, at the next run
    shop.set_page_fault(None, of="orders")
    done = orders_download(channel=channel, now=timezone.now() + timedelta(seconds=5))
    # then: every order is in the POS once
    assert not done.error, done.error
    numbers = SalesOrder.objects.filter(channel=channel).values_list("order_number", flat=True)
    assert sorted(numbers) == sorted(shop.numbers)


@pytest.mark.parametrize("kind", ["lazada", "woocommerce"])
def test_an_order_updated_during_the_read_moves_no_other_out_of_it(kind, shop, monkeypatch):
    # given: a read of the orders updated until now, oldest change first
    until = timezone.now() + timedelta(seconds=1)
    first = shop.numbers[0]
    order_page = shop.order_page

    def updating_first(page, entries):
        # as the second page is asked for, the oldest order (read on the first) is shipped:
        # its update time passes the end of the range, and every later order moves up a place
        if page == 2 and not moved:
            moved.append(first)
            shop.clock = lambda: until.timestamp() + 60
            shop.move_order(first, OrderState.SHIPPED)
        return order_page(page, entries)

    moved: list[str] = []
    monkeypatch.setattr(shop, "order_page", updating_first)
    # when
    numbers = read_orders(kind, shop, until=until)
    # then: every order is read once, the shipped one as it was before
    assert moved == [first]
    assert sorted(numbers) == sorted(shop.numbers)


def leave_out_first(emulator, handler: str, key: str | None, monkeypatch) -> None:
    """Make the emulator's `handler` answer without its first entry (under `key` of the
    answer, or the answer itself when it is a list)."""
    answer = getattr(emulator, handler)

    def without_first(*args):
        found = answer(*args)
        if key is None:
            return found[1:]
        return {**found, key: found[key][1:]}

    monkeypatch.setattr(emulator, handler, without_first)


@pytest.mark.parametrize(
    ("kind", "handler", "key", "says"),
    [
        ("shopee", "_get_order_detail", "order_list", "order detail left out 2 of the 100 orders"),
        ("lazada", "_get_orders_items", None, "returned no items for 2 of 100 orders"),
    ],
)
def test_an_order_listed_but_left_out_of_the_details_fails_the_read(
    kind, shop, handler, key, says, monkeypatch
):
    # given: a marketplace that lists every order but leaves one out of the details asked for
    # with it (Shopee's order detail, Lazada's order items)
    leave_out_first(shop, handler, key, monkeypatch)
    # then: the read fails rather than skip the order, or bring it in without its lines
    with pytest.raises(IncompleteRead, match=says):
        read_orders(kind, shop)


@pytest.mark.parametrize("kind", ["shopee"])
def test_a_shipped_order_whose_tracking_number_shopee_refuses_still_comes_in(
    kind, shop, monkeypatch
):
    # given: two shipped orders, and a Shopee that refuses the tracking number of every order
    shipped = shop.numbers[:2]
    for number in shipped:
        shop.move_order(number, OrderState.SHIPPED)

    def refused(params, request):
        raise ShopeeFault("logistics.package_not_exist", "The package does not exist.")

    monkeypatch.setattr(shop, "_get_tracking_number", refused)
    # when
    now = timezone.now()
    window = {"updated_from": now - timedelta(days=1), "updated_to": now + timedelta(days=1)}
    orders = {o.order_number: o for page in adapter(kind, shop).iter_orders(**window) for o in page}
    # then: every order comes in, the shipped ones without a tracking number
    assert sorted(orders) == sorted(shop.numbers)
    assert [orders[n].state for n in shipped] == [OrderState.SHIPPED] * 2
    assert [orders[n].tracking_number for n in shipped] == ["", ""]
