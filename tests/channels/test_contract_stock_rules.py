"""The stock rules and bundles on every marketplace: what each channel shows as the POS stock
moves and a bundle sells, over real HTTP against each marketplace's emulator (the rows of
channels.marketplaces)."""

import pytest

from catalog.bundles import bundle_set_components
from catalog.models import Stock
from catalog.services import stock_set
from channels.adapters.base import OrderState
from channels.emulators import emulator_class
from channels.inventory import stock_rules_changed
from channels.models import Channel, Listing, StockRule
from synclogs.services import order_manual_download
from tests.channels.builders import shop_item
from tests.channels.test_contract import connect, drain_all, kind, scan  # noqa: F401
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db


def shown(server, channel: Channel, sku: str) -> int:
    listing = Listing.objects.get(channel=channel, sku=sku)
    return server.listing_quantities()[(listing.item_id, listing.variant_ref)]


def test_share_maximum_cutoff_buffer_and_a_priority_channel(kind, emulator, settings):  # noqa: F811
    settings.OMNI_FLUSH_ON_COMMIT = False  # the "worker" below drains the outbox
    tee = VariantFactory(sku="TEE-BLK-M")
    cap = VariantFactory(sku="CAP-RED")
    emulator.put_item(shop_item("Black Tee", "TEE-BLK-M"))
    emulator.put_item(shop_item("Red Cap", "CAP-RED"))
    # given: a channel sent 80% of the stock, at most 10, nothing below 3, 1 held back
    channel = connect(kind, emulator)
    Channel.objects.filter(pk=channel.pk).update(
        stock_share_percent=80, stock_maximum=10, stock_cutoff=3, buffer=1
    )
    channel.refresh_from_db()
    scan(channel)
    outlet = channel.order_outlet_id

    def level(quantity: int) -> int:
        stock_set(variant_id=tee.pk, outlet_id=outlet, quantity=quantity)
        drain_all(channel)
        return shown(emulator, channel, "TEE-BLK-M")

    assert level(20) == 9  # 80% of 20 = 16, at most 10, less the buffer of 1
    assert level(6) == 3  # 80% of 6 = 4.8 → 4, less 1
    assert level(3) == 1  # exactly at the cut-off: still sent; 80% of 3 = 2, less 1
    assert level(2) == 0  # below the cut-off
    assert level(1) == 0

    # when: the cap is kept off this channel by its own rule (a rule change pushes what it moves)
    stock_set(variant_id=cap.pk, outlet_id=outlet, quantity=50)
    drain_all(channel)
    assert shown(emulator, channel, "CAP-RED") == 9
    StockRule.objects.create(channel=channel, variant=cap, maximum=0)
    stock_rules_changed(channel_ids=[channel.pk], variant_ids=[cap.pk])
    drain_all(channel)
    assert shown(emulator, channel, "CAP-RED") == 0
    # then: no later stock change sends it
    stock_set(variant_id=cap.pk, outlet_id=outlet, quantity=40)
    drain_all(channel)
    assert shown(emulator, channel, "CAP-RED") == 0

    # when: another marketplace's shop becomes the priority channel below 5 units
    other_kind = "woocommerce" if kind == "shopee" else "shopee"
    with emulator_class(other_kind)(items=0, seed=22) as other_emulator:
        other_emulator.put_item(shop_item("Black Tee", "TEE-BLK-M"))
        priority = Channel.objects.create(
            kind=other_kind, name="priority shop", api_base_url=other_emulator.base_url,
            credentials=other_emulator.credentials, order_outlet=channel.order_outlet,
            is_priority=True, priority_threshold=5,
        )  # fmt: skip
        scan(priority)
        stock_set(variant_id=tee.pk, outlet_id=outlet, quantity=8)
        drain_all(channel, priority)
        assert shown(emulator, channel, "TEE-BLK-M") == 5  # 80% of 8 = 6, less 1
        assert shown(other_emulator, priority, "TEE-BLK-M") == 8
        # then: as the stock falls to the threshold, only the priority channel sells it
        stock_set(variant_id=tee.pk, outlet_id=outlet, quantity=5)
        drain_all(channel, priority)
        assert shown(emulator, channel, "TEE-BLK-M") == 0
        assert shown(other_emulator, priority, "TEE-BLK-M") == 5
        # and as it rises above it again, both do
        stock_set(variant_id=tee.pk, outlet_id=outlet, quantity=7)
        drain_all(channel, priority)
        assert shown(emulator, channel, "TEE-BLK-M") == 4  # 80% of 7 = 5, less 1
        assert shown(other_emulator, priority, "TEE-BLK-M") == 7
        # when: the priority channel is paused, the rule change alone frees the stock
        stock_set(variant_id=tee.pk, outlet_id=outlet, quantity=4)
        drain_all(channel, priority)
        assert shown(emulator, channel, "TEE-BLK-M") == 0
        Channel.objects.filter(pk=priority.pk).update(is_active=False)
        stock_rules_changed()
        drain_all(channel)
        assert shown(emulator, channel, "TEE-BLK-M") == 2  # 80% of 4 = 3, less 1


def test_a_bundle_shows_what_its_components_make_and_sells_them(kind, emulator, settings):  # noqa: F811
    settings.OMNI_FLUSH_ON_COMMIT = False
    tee, mug = VariantFactory(sku="TEE-1"), VariantFactory(sku="MUG-1")
    kit = VariantFactory(sku="KIT-1")
    bundle_set_components(bundle=kit, components=[(tee, 2), (mug, 1)])
    for sku in ("TEE-1", "MUG-1", "KIT-1"):
        emulator.put_item(shop_item(sku, sku))
    channel = connect(kind, emulator)
    Channel.objects.filter(pk=channel.pk).update(inventory_sync_mode=Channel.SyncMode.REALTIME)
    channel.refresh_from_db()
    scan(channel)
    outlet = channel.order_outlet_id
    # given: 10 tees and 3 mugs make 3 kits; the kit's listing shows them
    stock_set(variant_id=tee.pk, outlet_id=outlet, quantity=10)
    stock_set(variant_id=mug.pk, outlet_id=outlet, quantity=3)
    drain_all(channel)
    assert [shown(emulator, channel, s) for s in ("TEE-1", "MUG-1", "KIT-1")] == [10, 3, 3]
    # when: a component runs out, the kit follows it
    stock_set(variant_id=mug.pk, outlet_id=outlet, quantity=0)
    drain_all(channel)
    assert shown(emulator, channel, "KIT-1") == 0
    stock_set(variant_id=mug.pk, outlet_id=outlet, quantity=3)
    drain_all(channel)
    # when: a buyer orders a kit on the marketplace (which takes it off the kit's listing)
    kit_listing = Listing.objects.get(channel=channel, sku="KIT-1")
    number = emulator.create_order(
        [(kit_listing.item_id, kit_listing.variant_ref, 1)], state=OrderState.UNPAID
    )
    order_manual_download(channel=channel, order_numbers=[number])
    drain_all(channel)
    # then: its components are reserved in the POS, and their own listings, which the
    # marketplace did not touch, are pushed
    reserved = dict(Stock.objects.filter(outlet_id=outlet).values_list("variant__sku", "reserved"))
    assert (reserved["TEE-1"], reserved["MUG-1"]) == (2, 1)
    assert [shown(emulator, channel, s) for s in ("TEE-1", "MUG-1", "KIT-1")] == [8, 2, 2]
    # when: the order is cancelled, the components come back, and so does the kit
    emulator.move_order(number, OrderState.CANCELLED)
    order_manual_download(channel=channel, order_numbers=[number])
    drain_all(channel)
    reserved = dict(Stock.objects.filter(outlet_id=outlet).values_list("variant__sku", "reserved"))
    assert (reserved["TEE-1"], reserved["MUG-1"]) == (0, 0)
    assert [shown(emulator, channel, s) for s in ("TEE-1", "MUG-1", "KIT-1")] == [10, 3, 3]
