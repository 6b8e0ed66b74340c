"""One contract, six marketplaces: the same scenarios against each adapter and its emulator.

Scans into the six tabs, upload, pushes within per-call limits, throttling, refused
credentials, orders through the pipeline, webhook signatures.

Every scenario runs over real HTTP against the marketplace's emulator, through omni's own
services where a user would go through them (scans, tabs, upload) and through the adapter where
the contract is the adapter's (pushes within per-call limits, throttling, credentials, orders,
webhooks). Emulator helpers are the uniform ones of docs/adapters.md.
"""

import math
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import ProductImage, Stock, StockMovement
from catalog.services import stock_adjust
from channels import selectors
from channels.adapters import adapter_class
from channels.adapters.base import (
    CredentialsError,
    OrderState,
    PriceUpdate,
    QuantityUpdate,
    WebhookRejected,
)
from channels.emulators import emulator_class
from channels.emulators.shop import ShopItem, ShopVariant
from channels.inventory import inventory_flush
from channels.listings import listings_upload
from channels.models import Channel, Listing, PendingPush, Scan
from channels.scans import scan_request, scan_run
from synclogs.models import SalesOrder, SyncLog
from synclogs.services import order_manual_download
from tests.channels.conftest import FAST_RETRY
from tests.factories import OutletFactory, ProductFactory, VariantFactory

KINDS = ["shopee", "tokopedia", "tiktok_shop", "lazada", "shopify", "woocommerce"]
LONG_AGO = int(time.time()) - 20 * 86400
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def shop_item(name: str, skus: list[str], *, options: str = "") -> ShopItem:
    axis = (options,) if options else ()
    return ShopItem(
        name=name, department="Clothing", category="T-Shirts", brand="Lumo",
        description=f"{name}, a sturdy everyday piece.", weight_kg=Decimal("0.3"),
        status="live", created_at=LONG_AGO, updated_at=LONG_AGO,
        variants=[
            ShopVariant(sku=sku, price=Decimal("150000"), quantity=4,
                        options={options: f"V{n}"} if options else {})
            for n, sku in enumerate(skus)
        ],
        option_names=axis,
    )  # fmt: skip


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def emulator(kind):
    with emulator_class(kind)(items=0, seed=21) as server:
        yield server


def adapter(kind: str, emulator, **credentials):
    return adapter_class(kind)(
        base_url=emulator.base_url,
        credentials={**emulator.credentials, **credentials},
        retry=FAST_RETRY,
    )


def connect(kind: str, emulator) -> Channel:
    return Channel.objects.create(
        kind=kind,
        name=f"{kind} shop",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="jkt"),
    )


def scan(channel: Channel, kind: str = Scan.Kind.FULL) -> Scan:
    done = scan_run(scan_id=scan_request(channel=channel, kind=kind, enqueue=False).pk)
    assert done.status == Scan.Status.SUCCEEDED, done.error
    return done


def skus(queryset) -> list[str]:
    return sorted(queryset.values_list("sku", flat=True))


@pytest.mark.django_db
def test_full_and_incremental_scans_fill_the_six_tabs(kind, emulator):
    # given: a POS catalog and a shop overlapping it the way real ones do
    for sku in ("TEE-BLK-M", "TEE-WHT-M", "MUG-01", "CUP-GRN", "BAG-NAT"):
        VariantFactory(sku=sku)
    ids = {
        "exact": emulator.put_item(shop_item("Black Tee", ["TEE-BLK-M"])),
        "noisy": emulator.put_item(shop_item("White Tee", [" tee-wht-m "])),
        "variants": emulator.put_item(
            shop_item("Green Cup", ["CUP-GRN", "UNKNOWN-9"], options="Size")
        ),
        "dup_a": emulator.put_item(shop_item("Mug", ["MUG-01"])),
        "dup_b": emulator.put_item(shop_item("Mug Twin Pack", ["mug-01"])),
        "gone": emulator.put_item(shop_item("Old Stock", ["OLD-1"])),
    }  # fmt: skip
    channel = connect(kind, emulator)
    # when
    first = scan(channel)
    # then
    sold = {
        (lst.sku.strip().upper(), lst.variant.sku) for lst in selectors.sold_in_channel(channel)
    }
    assert sold == {
        ("TEE-BLK-M", "TEE-BLK-M"), ("TEE-WHT-M", "TEE-WHT-M"), ("CUP-GRN", "CUP-GRN"),
        ("MUG-01", "MUG-01"),
    }  # fmt: skip
    assert selectors.sold_in_channel(channel).count() == 5  # both duplicates are sold
    assert skus(selectors.not_in_pos(channel)) == ["OLD-1", "UNKNOWN-9"]
    assert skus(selectors.multiple_listed_sku(channel)) == ["MUG-01", "mug-01"]
    assert skus(selectors.not_in_channel(channel)) == ["BAG-NAT"]
    stats = selectors.channel_statistic(channel)
    assert (stats.live_product, stats.sold_in_channel, stats.not_in_pos) == (7, 5, 2)
    assert first.seen == 7
    # when: one item changes on the channel and one is removed
    emulator.touch_item(str(ids["exact"]), name="Black Tee Relaxed")
    updated = scan(channel, Scan.Kind.UPDATED)
    assert updated.changed >= 1
    assert updated.seen < first.seen  # only what changed was fetched
    assert Listing.objects.get(channel=channel, sku="TEE-BLK-M").title.startswith(
        "Black Tee Relaxed"
    )
    emulator.remove_item(str(ids["gone"]))
    full = scan(channel)
    assert full.removed == 1
    assert "OLD-1" not in skus(selectors.not_in_pos(channel))


@pytest.mark.django_db
def test_upload_creates_what_the_next_scan_sells(kind, emulator):
    channel = connect(kind, emulator)
    product = ProductFactory(
        name="Canvas Tote Bag Natural Large",
        description="Roomy canvas tote.",
        length_cm=Decimal("40"),
        width_cm=Decimal("10"),
        height_cm=Decimal("35"),
    )
    url = emulator.serve_file(f"/media/{product.pk}.png", PIXEL, "image/png")
    ProductImage.objects.create(product=product, url=url)
    VariantFactory(product=product, sku="TOTE-NAT", options={"Color": "Natural"})
    VariantFactory(product=product, sku="TOTE-BLK", options={"Color": "Black"})
    # when
    report = listings_upload(
        channel=channel, variant_ids=product.variants.values_list("pk", flat=True)
    )
    # then
    assert report.failed == []
    scan(channel)
    assert skus(selectors.sold_in_channel(channel)) == ["TOTE-BLK", "TOTE-NAT"]


def _listings(kind, emulator, count_items: int, models: int):
    for n in range(count_items):
        emulator.put_item(
            shop_item(f"Pack {n}", [f"P{n}-{m}" for m in range(models)], options="Size")
        )
    return [lst for page in adapter(kind, emulator).iter_listing_pages() for lst in page]


def test_stock_and_price_pushes_stay_within_per_call_limits(kind, emulator):
    listings = _listings(kind, emulator, count_items=3, models=6)
    client = adapter(kind, emulator)
    limits = client.limits
    # when
    results = client.update_quantities(
        [QuantityUpdate(lst.item_id, lst.variant_id, 40 + n) for n, lst in enumerate(listings)]
    )
    prices = client.update_prices(
        [PriceUpdate(lst.item_id, lst.variant_id, Decimal("99000")) for lst in listings]
    )
    # then
    assert all(r.ok for r in results + prices), [r.error for r in results + prices if not r.ok]
    held = emulator.listing_quantities()
    assert [held[(lst.item_id, lst.variant_id)] for lst in listings] == [
        40 + n for n in range(len(listings))
    ]
    # at most one call per item and per-call limit, whichever way the marketplace batches
    per_item = 6
    assert emulator.update_calls("stock") <= 3 * math.ceil(per_item / limits.stock_updates_per_call)
    assert emulator.update_calls("price") <= 3 * math.ceil(per_item / limits.price_updates_per_call)
    assert set(emulator.listing_prices().values()) == {Decimal("99000")}


def test_throttling_and_server_errors_are_survived(kind, emulator):
    for n in range(12):
        emulator.put_item(shop_item(f"Tee {n}", [f"T-{n}"]))
    emulator.set_faults(throttle_rate=0.25, error_rate=0.1, retry_after=0.01)
    listings = [lst for page in adapter(kind, emulator).iter_listing_pages() for lst in page]
    assert sorted(lst.sku for lst in listings) == sorted(f"T-{n}" for n in range(12))


def test_wrong_credentials_are_refused_clearly_and_change_nothing(kind, emulator):
    listings = _listings(kind, emulator, count_items=1, models=2)
    before = emulator.listing_quantities()
    wrong = adapter_class(kind)(
        base_url=emulator.base_url, credentials=emulator.wrong_credentials(), retry=FAST_RETRY
    )
    with pytest.raises(CredentialsError) as excinfo:
        wrong.check_credentials()
    assert str(excinfo.value)
    with pytest.raises(CredentialsError):
        wrong.update_quantities(
            [QuantityUpdate(lst.item_id, lst.variant_id, 999) for lst in listings]
        )
    assert emulator.listing_quantities() == before


def test_orders_are_read_in_every_state(kind, emulator):
    listings = _listings(kind, emulator, count_items=1, models=2)
    line = [(listings[0].item_id, listings[0].variant_id, 2)]
    client = adapter(kind, emulator)
    number = emulator.create_order(line, state=OrderState.PAID)
    (order,) = client.get_orders([number])
    assert order.state == OrderState.PAID
    assert order.lines[0].quantity == 2
    assert order.lines[0].sku.strip().upper() == listings[0].sku.strip().upper()
    for state in (OrderState.SHIPPED, OrderState.DELIVERED):
        emulator.move_order(number, state)
        assert client.get_orders([number])[0].state == state
    cancelled = emulator.create_order(line, state=OrderState.UNPAID)
    emulator.move_order(cancelled, OrderState.CANCELLED)
    now = timezone.now()
    window = {"updated_from": now - timedelta(days=2), "updated_to": now + timedelta(minutes=5)}
    found = {o.order_number: o.state for page in client.iter_orders(**window) for o in page}
    assert found[number] == OrderState.DELIVERED
    assert found[cancelled] == OrderState.CANCELLED


def test_webhook_signatures_are_accepted_and_refused(kind, emulator):
    listings = _listings(kind, emulator, count_items=1, models=1)
    number = emulator.create_order(
        [(listings[0].item_id, listings[0].variant_id, 1)], state=OrderState.PAID
    )
    url = "https://omni.example.com/api/webhooks/7"
    headers, body = emulator.signed_webhook(number, url)
    client = adapter(kind, emulator)
    event = client.verify_webhook(url=url, headers=headers, body=body)
    assert event.order_number == number
    assert event.delivery_id
    with pytest.raises(WebhookRejected) as excinfo:
        client.verify_webhook(url=url, headers=headers, body=body.replace(b"}", b" }", 1))
    assert excinfo.value.status == 401
    unsigned = {
        k: v
        for k, v in headers.items()
        if "sign" not in k.lower() and k.lower() != "authorization" and "hmac" not in k.lower()
    }
    with pytest.raises(WebhookRejected):
        client.verify_webhook(url=url, headers=unsigned, body=body)


@pytest.mark.django_db
def test_orders_are_downloaded_and_taken_through_the_pipeline(kind, emulator):
    # given: a POS variant with stock at the channel's order outlet, listed on the channel
    action = SyncLog.Action
    variant = VariantFactory(sku="TEE-BLK-M")
    emulator.put_item(shop_item("Black Tee", ["TEE-BLK-M"]))
    channel = connect(kind, emulator)
    stock_adjust(variant_id=variant.pk, outlet_id=channel.order_outlet_id, delta=10)
    scan(channel)
    listing = Listing.objects.get(channel=channel, sku="TEE-BLK-M")
    number = emulator.create_order(
        [(listing.item_id, listing.variant_ref, 2)], state=OrderState.UNPAID
    )

    def download() -> list[tuple[str, int]]:
        rows = order_manual_download(channel=channel, order_numbers=[number])
        return [(row.action, row.status) for row in rows]

    def stock() -> tuple[int, int]:
        row = Stock.objects.get(variant=variant, outlet=channel.order_outlet)
        return row.on_hand, row.reserved

    # when / then: each status does exactly its steps, and doing one twice writes nothing
    assert download() == [(action.CREATE_ORDER, 200)]
    assert stock() == (10, 2)
    emulator.move_order(number, OrderState.PAID)
    assert download() == [(action.CONVERT_ORDER_TO_INVOICE, 200), (action.ADD_PAYMENT, 200)]
    assert stock() == (8, 0)
    emulator.move_order(number, OrderState.SHIPPED)
    assert (action.CREATE_OUTBOUND_LOGISTIC, 200) in download()
    movements = StockMovement.objects.count()
    assert {status for _, status in download()} == {409}
    assert StockMovement.objects.count() == movements
    emulator.move_order(number, OrderState.RETURNED)
    assert download() == [(action.VOID_INVOICE, 200)]
    assert stock() == (10, 0)
    assert SalesOrder.objects.get(channel=channel).order_number == number


@pytest.mark.django_db
def test_a_push_never_leaves_an_order_oversold(kind, emulator, settings):
    # given: a real-time channel showing the POS's 10, a second one of another marketplace
    settings.OMNI_FLUSH_ON_COMMIT = False  # the "worker" below drains the outbox
    variant = VariantFactory(sku="TEE-BLK-M")
    emulator.put_item(shop_item("Black Tee", ["TEE-BLK-M"]))
    channel = connect(kind, emulator)
    Channel.objects.filter(pk=channel.pk).update(inventory_sync_mode=Channel.SyncMode.REALTIME)
    other_kind = "woocommerce" if kind == "shopee" else "shopee"
    with emulator_class(other_kind)(items=0, seed=22) as other_emulator:
        other_emulator.put_item(shop_item("Black Tee", ["TEE-BLK-M"]))
        other = Channel.objects.create(
            kind=other_kind, name="other shop", api_base_url=other_emulator.base_url,
            credentials=other_emulator.credentials, order_outlet=channel.order_outlet,
            inventory_sync_mode=Channel.SyncMode.REALTIME,
        )  # fmt: skip
        scan(channel)
        scan(other)
        outlet = channel.order_outlet_id
        stock_adjust(variant_id=variant.pk, outlet_id=outlet, delta=10)
        drain_all(channel, other)
        listing = Listing.objects.get(channel=channel, sku="TEE-BLK-M")
        ref = (listing.item_id, listing.variant_ref)
        assert emulator.listing_quantities()[ref] == 10
        # when: a buyer orders 2; the marketplace takes them off its stock at once
        number = emulator.create_order([(*ref, 2)], state=OrderState.PAID)
        assert emulator.listing_quantities()[ref] == 8
        # and before omni downloads the order, a receipt of 1 is pushed as the absolute 11
        stock_adjust(variant_id=variant.pk, outlet_id=outlet, delta=1)
        drain_all(channel, other)
        # then the order is downloaded, and the worker drains
        order_manual_download(channel=channel, order_numbers=[number])
        drain_all(channel, other)
        # then: every channel shows exactly what the POS has
        assert Stock.objects.get(variant=variant, outlet_id=outlet).on_hand == 9
        assert emulator.listing_quantities()[ref] == 9
        assert set(other_emulator.listing_quantities().values()) == {9}
        # when: an order placed and cancelled before omni saw it, with a push in between
        cancelled = emulator.create_order([(*ref, 3)], state=OrderState.UNPAID)
        stock_adjust(variant_id=variant.pk, outlet_id=outlet, delta=1)
        drain_all(channel, other)
        emulator.move_order(cancelled, OrderState.CANCELLED)  # the marketplace puts the 3 back
        order_manual_download(channel=channel, order_numbers=[cancelled])
        drain_all(channel, other)
        # then: the give-back is repaired too
        assert emulator.listing_quantities()[ref] == 10
        assert set(other_emulator.listing_quantities().values()) == {10}


def drain_all(*channels: Channel) -> None:
    for _ in range(20):
        for channel in channels:
            inventory_flush(channel_id=channel.pk)
        if not PendingPush.objects.filter(next_attempt_at__lte=timezone.now()).exists():
            return
    raise AssertionError("the outbox did not drain")
