"""Order lines go through the channel's SKU mapping rules, as its listings do: a line whose SKU
carries the channel's prefix or suffix, or has an alias, finds its POS variant through the
pipeline, while a listing linked by hand still decides first. Over real HTTP against the Shopee
emulator."""

from collections.abc import Iterator

import pytest

from catalog.models import Stock, Variant
from catalog.services import StockChange, stock_apply
from channels.adapters.base import OrderState
from channels.emulators.shopee import ShopeeEmulator
from channels.listings import listing_link
from channels.models import Channel, Listing
from channels.scans import scan_request, scan_run
from channels.sku_rules import sku_alias_create
from synclogs.models import SalesOrder, SyncLog
from synclogs.services import order_manual_download
from tests.channels.builders import shop_item
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db
A = SyncLog.Action


@pytest.fixture
def emulator() -> Iterator[ShopeeEmulator]:
    with ShopeeEmulator(items=0, seed=13) as running:
        yield running


@pytest.fixture
def pos() -> dict[str, Variant]:
    variants = {sku: VariantFactory(sku=sku) for sku in ("TEE-BLK-M", "MUG-RED", "BAG-NAT")}
    outlet = OutletFactory(code="main")
    stock_apply(
        changes=[StockChange(v.pk, outlet.pk, set_on_hand=10) for v in variants.values()],
        trigger="import",
    )
    return variants


def channel_on(emulator: ShopeeEmulator, **rules) -> Channel:
    return Channel.objects.create(
        kind="shopee",
        name="Tokopedia",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="main"),
        **rules,
    )


def held(variant: Variant) -> tuple[int, int]:
    row = Stock.objects.get(variant=variant, outlet__code="main")
    return row.on_hand, row.reserved


def order(emulator: ShopeeEmulator, *items: tuple[int | str, int]) -> str:
    return emulator.create_order([(str(item), "", qty) for item, qty in items], state="unpaid")


def test_an_order_line_with_a_prefixed_or_aliased_sku_reserves_its_pos_variant(emulator, pos):
    # given: a channel never scanned (no listing to go by), with rules and an alias
    tee = emulator.put_item(shop_item("Black Tee", " tkp-TEE-BLK-M-Promo "))
    mug = emulator.put_item(shop_item("Red Mug", "TKP-MUG-RED"))
    gift = emulator.put_item(shop_item("Gift Bag", "GIFT-7"))
    channel = channel_on(emulator, sku_strip_prefixes="TKP-", sku_strip_suffixes="-promo")
    sku_alias_create(channel=channel, channel_sku="GIFT-7", pos_sku="BAG-NAT")
    number = order(emulator, (tee, 2), (mug, 1), (gift, 3))
    # when
    rows = order_manual_download(channel=channel, order_numbers=[number])
    # then: every line found its variant, and each variant's stock is reserved
    assert [(row.action, row.status) for row in rows] == [(A.CREATE_ORDER, 200)]
    assert rows[0].attention == ""
    lines = SalesOrder.objects.get(order_number=number).lines.all()
    assert {line.sku.strip(): line.variant.sku for line in lines} == {
        "tkp-TEE-BLK-M-Promo": "TEE-BLK-M",
        "TKP-MUG-RED": "MUG-RED",
        "GIFT-7": "BAG-NAT",
    }
    assert held(pos["TEE-BLK-M"]) == (10, 2)
    assert held(pos["MUG-RED"]) == (10, 1)
    assert held(pos["BAG-NAT"]) == (10, 3)


def test_without_the_rules_the_same_line_is_not_in_the_pos_and_the_log_says_so(emulator, pos):
    tee = emulator.put_item(shop_item("Black Tee", "TKP-TEE-BLK-M"))
    channel = channel_on(emulator)
    number = order(emulator, (tee, 2))
    [row] = order_manual_download(channel=channel, order_numbers=[number])
    assert (row.action, row.status) == (A.CREATE_ORDER, 200)
    assert "TKP-TEE-BLK-M" in row.attention
    assert SalesOrder.objects.get(order_number=number).lines.get().variant is None
    assert held(pos["TEE-BLK-M"]) == (10, 0)


def test_a_listing_linked_by_hand_still_decides_before_the_rules(emulator, pos):
    # given: the prefixed tee's listing was linked by hand to the bag
    tee = emulator.put_item(shop_item("Black Tee", "TKP-TEE-BLK-M"))
    channel = channel_on(emulator, sku_strip_prefixes="TKP-")
    scan_run(scan_id=scan_request(channel=channel, kind="full", enqueue=False).pk)
    listing = Listing.objects.get(channel=channel)
    assert listing.variant == pos["TEE-BLK-M"]  # as the rules map it
    listing_link(listing=listing, variant=pos["BAG-NAT"])
    number = order(emulator, (tee, 1))
    # when
    order_manual_download(channel=channel, order_numbers=[number])
    # then: the hand-made link wins over what the SKU maps to
    assert SalesOrder.objects.get(order_number=number).lines.get().variant == pos["BAG-NAT"]
    assert held(pos["BAG-NAT"]) == (10, 1)
    assert held(pos["TEE-BLK-M"]) == (10, 0)


def test_an_order_after_a_rule_change_is_mapped_without_a_scan(emulator, pos):
    mug = emulator.put_item(shop_item("Red Mug", "MUG-RED-SALE"))
    channel = channel_on(emulator)
    first = order(emulator, (mug, 1))
    order_manual_download(channel=channel, order_numbers=[first])
    assert held(pos["MUG-RED"]) == (10, 0)
    # when: the channel learns the suffix, and the buyer's next order arrives
    Channel.objects.filter(pk=channel.pk).update(sku_strip_suffixes="-sale")
    channel.refresh_from_db()
    second = order(emulator, (mug, 2))
    order_manual_download(channel=channel, order_numbers=[second])
    # then
    assert held(pos["MUG-RED"]) == (10, 2)
    emulator.move_order(second, OrderState.CANCELLED)
    order_manual_download(channel=channel, order_numbers=[second])
    assert held(pos["MUG-RED"]) == (10, 0)
