"""The bundles a component's stock change moves: recorded in the change's transaction, worked out
by the channel's flush (channels.inventory), against the Shopee emulator over real HTTP."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.bundles import bundle_set_components
from catalog.models import StockMovement
from catalog.services import StockChange, stock_apply, stock_set
from channels import inventory
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import inventory_flush
from channels.models import BundleRecount, Channel, Listing, PendingPush
from tests.channels.builders import shop_item
from tests.channels.test_inventory import UPDATE_STOCK, connect, drain
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db
KITS = 40


@pytest.fixture
def kit_shop(settings):
    """A real-time Shopee channel listing a mug, a tee and KITS kits: the first kit is a mug and
    a tee, every other kit two tees. 10 mugs and 30 tees in stock."""
    settings.OMNI_FLUSH_ON_COMMIT = False  # the tests flush by hand
    outlet = OutletFactory(code="jkt")
    mug, tee = VariantFactory(sku="MUG-1"), VariantFactory(sku="TEE-1")
    stock_set(variant_id=mug.pk, outlet_id=outlet.pk, quantity=10)
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=30)
    kits = [VariantFactory(sku=f"KIT-{n}") for n in range(KITS)]
    bundle_set_components(bundle=kits[0], components=[(mug, 1), (tee, 1)])
    for kit in kits[1:]:
        bundle_set_components(bundle=kit, components=[(tee, 2)])
    with ShopeeEmulator(items=0, seed=4) as shop:
        shop.put_item(shop_item("Mug", "MUG-1", quantity=10))
        shop.put_item(shop_item("Tee", "TEE-1", quantity=30))
        for kit in kits:
            shop.put_item(shop_item(kit.sku, kit.sku, quantity=10 if kit == kits[0] else 15))
        channel = connect(shop, outlet=outlet)
        shop.log.clear()
        yield shop, channel, outlet, mug, tee, kits


def shown(shop, channel: Channel, sku: str) -> int:
    listing = Listing.objects.get(channel=channel, sku=sku)
    return shop.listing_quantities()[(listing.item_id, listing.variant_ref)]


def test_a_change_costs_the_same_for_a_component_in_forty_bundles_as_in_one(kit_shop):
    shop, channel, outlet, mug, tee, kits = kit_shop
    with CaptureQueriesContext(connection) as in_one:
        stock_set(variant_id=mug.pk, outlet_id=outlet.pk, quantity=9)
    with CaptureQueriesContext(connection) as in_forty:
        stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=20)
    assert len(in_forty) == len(in_one)
    # the change queued its own listings, and recorded the bundles for the flush
    assert set(PendingPush.objects.values_list("listing__sku", flat=True)) == {"MUG-1", "TEE-1"}
    assert BundleRecount.objects.filter(channel=channel).count() == 2
    drain(channel)
    # then: every kit shows what its components now make; nothing is left to recount
    assert shown(shop, channel, "KIT-0") == 9
    assert {shown(shop, channel, kit.sku) for kit in kits[1:]} == {10}
    assert not BundleRecount.objects.exists()


def test_a_bundle_whose_quantity_did_not_move_is_not_pushed(kit_shop):
    shop, channel, outlet, mug, tee, kits = kit_shop
    # when: tees go from 30 to 31: two-tee kits still make 15; the mug-and-tee kit, 10
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=31)
    drain(channel)
    pushed = {str(call.body["item_id"]) for call in shop.log.writes_to(UPDATE_STOCK)}
    tee_item = Listing.objects.get(channel=channel, sku="TEE-1").item_id
    assert pushed == {tee_item}


def test_a_recount_row_written_again_during_the_flush_is_kept_for_the_next(kit_shop, monkeypatch):
    shop, channel, outlet, mug, tee, kits = kit_shop
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=20)
    queue_differing = inventory._queue_differing

    def and_meanwhile(*args, **kwargs):  # a stock change commits while the flush works
        queued = queue_differing(*args, **kwargs)
        monkeypatch.setattr(inventory, "_queue_differing", queue_differing)
        stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=12)
        return queued

    monkeypatch.setattr(inventory, "_queue_differing", and_meanwhile)
    inventory_flush(channel_id=channel.pk)
    assert list(BundleRecount.objects.values_list("component__sku", flat=True)) == ["TEE-1"]
    drain(channel)
    assert {shown(shop, channel, kit.sku) for kit in kits[1:]} == {6}
    assert not BundleRecount.objects.exists()


def test_a_flush_that_dies_midway_leaves_its_rows_and_the_next_pushes_each_bundle_once(
    kit_shop, monkeypatch
):
    shop, channel, outlet, mug, tee, kits = kit_shop
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=20)
    queue_differing = inventory._queue_differing

    def dies(*args, **kwargs):  # the worker is killed once the pushes are queued
        queue_differing(*args, **kwargs)
        raise SystemExit("killed")

    monkeypatch.setattr(inventory, "_queue_differing", dies)
    with pytest.raises(SystemExit):
        inventory_flush(channel_id=channel.pk)
    assert BundleRecount.objects.count() == 1
    monkeypatch.setattr(inventory, "_queue_differing", queue_differing)
    drain(channel)
    # then: each two-tee kit's listing was sent once, with what it makes now; the mug-and-tee
    # kit, which still makes 10, not at all
    kit_items = set(
        Listing.objects.filter(sku__startswith="KIT-").values_list("item_id", flat=True)
    )
    kit_items.remove(Listing.objects.get(sku="KIT-0").item_id)
    sent = [
        str(call.body["item_id"])
        for call in shop.log.writes_to(UPDATE_STOCK)
        if str(call.body["item_id"]) in kit_items
    ]
    assert sorted(sent) == sorted(kit_items)
    assert {shown(shop, channel, kit.sku) for kit in kits[1:]} == {10}
    assert shown(shop, channel, "KIT-0") == 10


def test_a_channel_the_trigger_table_sends_nothing_gets_no_recount(kit_shop):
    shop, channel, outlet, mug, tee, kits = kit_shop
    Channel.objects.filter(pk=channel.pk).update(inventory_sync_mode=Channel.SyncMode.NONE)
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=20)
    assert not BundleRecount.objects.exists()
    assert not PendingPush.objects.exists()


def test_changes_before_a_flush_coalesce_into_one_row_per_component(kit_shop):
    shop, channel, outlet, mug, tee, kits = kit_shop
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=20)
    first = BundleRecount.objects.get().requested_at
    stock_apply(
        changes=[StockChange(tee.pk, outlet.pk, on_hand_delta=-2)],
        trigger=StockMovement.Trigger.RECEIPT,
    )
    # then: one row, bumped and carrying the newer change's reason
    row = BundleRecount.objects.get()
    assert (row.component_id, row.reason) == (tee.pk, StockMovement.Trigger.RECEIPT)
    assert row.requested_at > first
    drain(channel)
    assert {shown(shop, channel, kit.sku) for kit in kits[1:]} == {9}


def test_the_flush_pushes_the_bundles_it_queues_without_requesting_another_flush(
    kit_shop, settings, django_capture_on_commit_callbacks
):
    shop, channel, outlet, mug, tee, kits = kit_shop
    stock_set(variant_id=tee.pk, outlet_id=outlet.pk, quantity=20)
    settings.OMNI_FLUSH_ON_COMMIT = True
    # when: the flush queues the kits and pushes them; a second flush requested meanwhile
    # would wait on the lease this one holds
    with django_capture_on_commit_callbacks() as callbacks:
        inventory_flush(channel_id=channel.pk)
    assert callbacks == []
    assert {shown(shop, channel, kit.sku) for kit in kits[1:]} == {10}
    assert not PendingPush.objects.exists()
