"""Inventory sync against the Shopee emulator: the trigger table, quantities, the outbox."""

import math
import random

import pytest
from django.urls import reverse

from catalog.models import Stock, StockMovement
from catalog.services import StockChange, stock_apply
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import (
    inventory_flush,
    inventory_sync_due,
    inventory_sync_run,
)
from channels.models import Channel, Listing, PendingPush, Scan, SyncTrigger
from channels.scans import scan_request, scan_run
from channels.stock import channel_quantities
from tests.channels.builders import shop_item
from tests.factories import CHANNEL_FORM_RULES, OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db
T = StockMovement.Trigger
UPDATE_STOCK = "/api/v2/product/update_stock"

# BRIEF §4, written out here independently of the code's table: trigger → (none, realtime,
# fulfillment). "own" is an order from the channel itself; "other" from another channel.
EXPECTED = {
    "fulfillment recurring job": (False, True, True),
    "fulfillment manual sync": (False, True, True),
    "sales channel manual sync": (True, True, True),
    "import inventory level": (False, True, False),
    "adjust inventory manually": (False, True, False),
    "receive receipt": (False, True, False),
    "allocate order from the same channel": (False, False, False),
    "allocate order from another channel": (False, True, False),
    "cancel shipment": (False, True, False),
    "API bulk update": (False, True, True),
    "API single row update": (False, True, False),
    "order cancelled, stock returned, same channel": (False, False, False),
    "order cancelled, stock returned, other channel": (False, True, False),
}
MODES = [Channel.SyncMode.NONE, Channel.SyncMode.REALTIME, Channel.SyncMode.FULFILLMENT]


def connect(emulator, *, name="Shopee", mode=Channel.SyncMode.REALTIME, outlet=None, **fields):
    channel = Channel.objects.create(
        kind="shopee",
        name=name,
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        inventory_sync_mode=mode,
        order_outlet=outlet or OutletFactory(code="jkt"),
        **fields,
    )
    scan = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    assert scan_run(scan_id=scan.pk).status == Scan.Status.SUCCEEDED
    return channel


def received(emulator) -> list[dict]:
    return [call.body for call in emulator.log.writes_to(UPDATE_STOCK)]


def drain(channel: Channel, rounds: int = 50) -> None:
    for _ in range(rounds):
        inventory_flush(channel_id=channel.pk)
        if not PendingPush.objects.filter(channel=channel, failed=False).exists():
            return
    raise AssertionError("the outbox did not drain")


def fire(case: str, variant, outlet, channel, other_channel_id: int) -> None:
    """Cause the trigger named by `case` for `variant` at `outlet`."""
    full = {
        "fulfillment recurring job": SyncTrigger.FULFILLMENT_RECURRING,
        "fulfillment manual sync": SyncTrigger.FULFILLMENT_MANUAL,
        "sales channel manual sync": SyncTrigger.SALES_CHANNEL_MANUAL,
    }
    if case in full:
        inventory_sync_run(channel=channel, trigger=full[case])
        return
    movements = {
        "import inventory level": (T.IMPORT, 0, 0, None),
        "adjust inventory manually": (T.MANUAL, 1, 0, None),
        "receive receipt": (T.RECEIPT, 1, 0, None),
        "allocate order from the same channel": (T.ORDER_ALLOCATION, 0, 1, channel.pk),
        "allocate order from another channel": (T.ORDER_ALLOCATION, 0, 1, other_channel_id),
        "cancel shipment": (T.SHIPMENT_CANCELLATION, 1, 0, None),
        "API bulk update": (T.API_BULK, 1, 0, None),
        "API single row update": (T.API_SINGLE, 1, 0, None),
        "order cancelled, stock returned, same channel": (T.ORDER_RELEASE, 0, -1, channel.pk),
        "order cancelled, stock returned, other channel": (
            T.ORDER_RELEASE,
            0,
            -1,
            other_channel_id,
        ),
    }
    trigger, on_hand, reserved, source = movements[case]
    current = Stock.objects.get(variant=variant, outlet=outlet).on_hand
    change = (
        StockChange(variant.pk, outlet.pk, set_on_hand=current + 1)  # a new count each time
        if trigger == T.IMPORT
        else StockChange(variant.pk, outlet.pk, on_hand_delta=on_hand, reserved_delta=reserved)
    )
    stock_apply(changes=[change], trigger=trigger, source_channel_id=source)


def test_the_whole_trigger_table_in_every_mode():
    variant = VariantFactory(sku="TEE-1")
    outlet = OutletFactory(code="jkt")
    stock_apply(
        changes=[StockChange(variant.pk, outlet.pk, on_hand_delta=20, reserved_delta=5)],
        trigger=T.RECEIPT,
    )
    results = {}
    with ShopeeEmulator(items=0, seed=1) as shop:
        shop.put_item(shop_item("Tee", "TEE-1", quantity=0))
        channel = connect(shop, outlet=outlet)
        for case, expected in EXPECTED.items():
            for mode, should_send in zip(MODES, expected, strict=True):
                Channel.objects.filter(pk=channel.pk).update(inventory_sync_mode=mode)
                channel.refresh_from_db()
                shop.log.clear()
                fire(case, variant, outlet, channel, other_channel_id=channel.pk + 1000)
                drain(channel)
                results[(case, mode)] = (bool(received(shop)), should_send)
    wrong = {cell: got for cell, got in results.items() if got[0] != got[1]}
    assert wrong == {}
    assert len(results) == 13 * 3


def test_quantity_sums_available_over_chosen_outlets_less_buffer():
    variant = VariantFactory(sku="TEE-1")
    store_a, store_b = OutletFactory(code="a"), OutletFactory(code="b")
    order_outlet, not_chosen = OutletFactory(code="orders"), OutletFactory(code="elsewhere")
    levels = [(store_a, 10, 2), (store_b, 5, 0), (order_outlet, 3, 1), (not_chosen, 100, 0)]
    stock_apply(
        changes=[
            StockChange(variant.pk, o.pk, on_hand_delta=h, reserved_delta=r) for o, h, r in levels
        ],
        trigger=T.RECEIPT,
    )
    with ShopeeEmulator(items=0, seed=1) as shop:
        item_id = shop.put_item(shop_item("Tee", "TEE-1", quantity=0))
        channel = connect(shop, outlet=order_outlet, buffer=4)
        channel.outlets.set([store_a, store_b])
        # (10-2) + 5 + (3-1) = 15 available over the chosen outlets and the order outlet; less 4
        assert channel_quantities(channel=channel, variant_ids=[variant.pk]) == {variant.pk: 11}
        inventory_sync_run(channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL)
        drain(channel)
        assert shop.quantities()[(item_id, 0)] == 11
        # stock at the outlet the channel does not sell from changes nothing
        shop.log.clear()
        stock_apply(
            changes=[StockChange(variant.pk, not_chosen.pk, on_hand_delta=-50)], trigger=T.MANUAL
        )
        drain(channel)
        assert received(shop) == []
        # a buffer larger than what is available sends zero, never a negative number
        Channel.objects.filter(pk=channel.pk).update(buffer=40)
        channel.refresh_from_db()
        inventory_sync_run(channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL)
        drain(channel)
        assert shop.quantities()[(item_id, 0)] == 0
    listing = Listing.objects.get(sku="TEE-1")
    assert listing.pushed_quantity == 0
    assert listing.pushed_at is not None


def test_duplicate_skus_are_skipped_by_default_and_logged():
    variant = VariantFactory(sku="MUG-1")
    outlet = OutletFactory(code="jkt")
    with ShopeeEmulator(items=0, seed=1) as shop:
        shop.put_item(shop_item("Mug", "MUG-1", quantity=0))
        shop.put_item(shop_item("Mug bundle", "mug-1 ", quantity=0))
        channel = connect(shop, outlet=outlet)
        stock_apply(changes=[StockChange(variant.pk, outlet.pk, on_hand_delta=9)], trigger=T.MANUAL)
        drain(channel)
        assert received(shop) == []
        record = inventory_sync_run(channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL)
        assert record.skipped_duplicates == 2
        assert "share a SKU" in record.message
        assert {row["sku"] for row in record.skipped_sample} == {"MUG-1", "mug-1 "}


def test_update_all_sends_every_duplicate_and_switches_to_fulfillment_mode(admin_client):
    variant = VariantFactory(sku="MUG-1")
    outlet = OutletFactory(code="jkt")
    with ShopeeEmulator(items=0, seed=1) as shop:
        first = shop.put_item(shop_item("Mug", "MUG-1", quantity=0))
        second = shop.put_item(shop_item("Mug bundle", "mug-1 ", quantity=0))
        channel = connect(shop, outlet=outlet)
        # when: staff choose "update all" in the admin
        url = reverse("admin:channels_channel_change", args=[channel.pk])
        response = admin_client.post(
            url,
            {
                "kind": "shopee",
                "name": channel.name,
                "api_base_url": channel.api_base_url,
                "is_active": "on",
                "inventory_sync_mode": "realtime",
                "fulfillment_sync_minutes": 60,
                "duplicate_sku_policy": "update_all",
                "order_outlet": outlet.pk,
                "buffer": 0,
                "new_credentials": "",
                **CHANNEL_FORM_RULES,
            },
            follow=True,
        )
        # then: warned, and the mode is now fulfillment
        assert "may oversell" in response.content.decode()
        channel.refresh_from_db()
        assert channel.inventory_sync_mode == Channel.SyncMode.FULFILLMENT
        stock_apply(
            changes=[StockChange(variant.pk, outlet.pk, on_hand_delta=9)], trigger=T.API_BULK
        )
        drain(channel)
        quantities = shop.quantities()
        assert (quantities[(first, 0)], quantities[(second, 0)]) == (9, 9)


def big_shop(shop: ShopeeEmulator, variants, per_item: int) -> None:
    for start in range(0, len(variants), per_item):
        chunk = variants[start : start + per_item]
        shop.put_item(shop_item(f"Item {start}", *(v.sku for v in chunk), quantity=0))


def test_10000_movements_over_1000_variants_coalesce_into_few_push_calls(settings):
    settings.OMNI_FLUSH_ON_COMMIT = False  # the worker drains once, after all the movements
    outlet = OutletFactory(code="jkt")
    variants = VariantFactory.create_batch(1000)
    rng = random.Random(5)
    with ShopeeEmulator(items=0, seed=2) as shop:
        big_shop(shop, variants, per_item=50)
        channel = connect(shop, outlet=outlet)
        limit = 50  # Shopee: models per update_stock call
        # when: ten rounds of 1,000 movements each
        for _ in range(10):
            stock_apply(
                changes=[
                    StockChange(v.pk, outlet.pk, on_hand_delta=rng.randint(1, 9)) for v in variants
                ],
                trigger=T.MANUAL,
            )
        assert StockMovement.objects.count() == 10_000
        assert PendingPush.objects.count() == 1000
        shop.log.clear()
        drain(channel)
        # then
        calls = shop.log.count(UPDATE_STOCK)
        assert calls <= math.ceil(1000 / limit)
        expected = channel_quantities(channel=channel, variant_ids=[v.pk for v in variants])
        by_sku = {v.sku: expected[v.pk] for v in variants}
        on_channel = shop.quantities()
        for listing in Listing.objects.filter(channel=channel):
            assert (
                on_channel[(int(listing.item_id), int(listing.variant_ref or 0))]
                == by_sku[listing.sku]
            )


def test_with_a_fifth_of_calls_failing_the_channel_ends_exact_and_never_stale(settings):
    settings.OMNI_FLUSH_ON_COMMIT = False
    outlet = OutletFactory(code="jkt")
    variants = VariantFactory.create_batch(200)
    rng = random.Random(9)
    history: dict[str, list[int]] = {v.sku: [] for v in variants}
    with ShopeeEmulator(items=0, seed=3) as shop:
        big_shop(shop, variants, per_item=20)
        channel = connect(shop, outlet=outlet)
        shop.set_faults(error_rate=0.1, throttle_rate=0.1, retry_after=0.01)
        for _ in range(6):
            chosen = rng.sample(variants, 80)
            stock_apply(
                changes=[
                    StockChange(v.pk, outlet.pk, on_hand_delta=rng.randint(1, 5)) for v in chosen
                ],
                trigger=T.MANUAL,
            )
            for v, qty in channel_quantities(
                channel=channel, variant_ids=[v.pk for v in variants]
            ).items():
                history[next(x.sku for x in variants if x.pk == v)].append(qty)
            inventory_flush(channel_id=channel.pk)  # a partial flush between rounds
        shop.set_faults(error_rate=0.0, throttle_rate=0.0)
        drain(channel)
        final = channel_quantities(channel=channel, variant_ids=[v.pk for v in variants])
        on_channel = shop.quantities()
        sku_of = {
            (int(lst.item_id), int(lst.variant_ref or 0)): lst.sku for lst in Listing.objects.all()
        }
        pk_of = {v.sku: v.pk for v in variants}
        assert {sku_of[ref]: q for ref, q in on_channel.items()} == {
            sku: final[pk_of[sku]] for sku in history
        }
        # every value sent for a listing was the POS value at some point, in time order
        sent: dict[str, list[int]] = {}
        for call in shop.log.writes_to(UPDATE_STOCK):
            for row in call.body["stock_list"]:
                ref = (int(call.body["item_id"]), int(row["model_id"]))
                sent.setdefault(sku_of[ref], []).append(row["seller_stock"][0]["stock"])
    for sku, values in sent.items():
        positions = [history[sku].index(v) for v in values]
        assert positions == sorted(positions), (sku, values, history[sku])


def test_a_refused_push_shows_on_the_listing_and_does_not_block_the_rest():
    outlet = OutletFactory(code="jkt")
    a, b = VariantFactory(sku="A-1"), VariantFactory(sku="B-1")
    with ShopeeEmulator(items=0, seed=4) as shop:
        item_id = shop.put_item(shop_item("Pair", "A-1", "B-1", quantity=0))
        channel = connect(shop, outlet=outlet)
        model_a = next(m for (i, m) in shop.quantities() if i == item_id)
        shop.set_reserved(item_id, 50, model_id=model_a)  # Shopee refuses stock below reserved
        stock_apply(
            changes=[
                StockChange(a.pk, outlet.pk, on_hand_delta=3),
                StockChange(b.pk, outlet.pk, on_hand_delta=4),
            ],
            trigger=T.MANUAL,
        )
        drain(channel)
    refused = Listing.objects.get(sku="A-1")
    assert refused.push_error
    assert PendingPush.objects.get(listing=refused).failed
    assert Listing.objects.get(sku="B-1").pushed_quantity == 4


def test_the_recurring_job_runs_channels_whose_interval_has_passed():
    outlet = OutletFactory(code="jkt")
    with ShopeeEmulator(items=0, seed=1) as shop:
        realtime = connect(shop, name="rt", outlet=outlet)
        fulfilment = connect(shop, name="ff", outlet=outlet, mode=Channel.SyncMode.FULFILLMENT)
        connect(shop, name="off", outlet=outlet, mode=Channel.SyncMode.NONE)
        assert sorted(inventory_sync_due()) == sorted([realtime.pk, fulfilment.pk])
        assert inventory_sync_due() == []  # not due again until the interval passes
