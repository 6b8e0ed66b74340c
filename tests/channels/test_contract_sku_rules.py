"""The SKU mapping rules, for every marketplace: a shop whose SKUs carry the channel's prefix
and suffix (or are known only by an alias) is scanned over real HTTP into Sold in Channel, and
an order on it goes through the pipeline onto the POS variants. One scenario per row of
`channels.marketplaces.MARKETPLACES` (the fixtures are the contract suite's)."""

import pytest

from catalog.models import Stock
from catalog.services import stock_adjust
from channels import selectors
from channels.adapters.base import OrderState
from channels.models import Channel, Listing
from channels.sku_rules import sku_alias_create
from synclogs.models import SalesOrder, SyncLog
from synclogs.services import order_manual_download
from tests.channels.builders import shop_item
from tests.channels.test_contract import adapter, connect, kind, scan  # noqa: F401
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db


def test_prefixed_skus_are_sold_in_channel_and_their_orders_reserve_the_pos_variant(
    kind,  # noqa: F811
    emulator,  # noqa: F811
):
    # given: a POS catalog, and a shop that prefixes and suffixes its SKUs
    tee, mug, bag = (VariantFactory(sku=sku) for sku in ("TEE-BLK-M", "MUG-01", "BAG-NAT"))
    emulator.put_item(shop_item("Black Tee", "TKP-TEE-BLK-M"))
    emulator.put_item(shop_item("Mug", "tkp-mug-01-PROMO"))
    emulator.put_item(shop_item("Gift Bag", "GIFT-7"))
    emulator.put_item(shop_item("Stranger", "TKP-NOPE-1"))
    channel = connect(kind, emulator)
    Channel.objects.filter(pk=channel.pk).update(
        sku_strip_prefixes="TKP-", sku_strip_suffixes="-promo"
    )
    channel.refresh_from_db()
    sku_alias_create(channel=channel, channel_sku="GIFT-7", pos_sku="BAG-NAT")
    # when
    scan(channel)
    # then: each listing is matched to its POS variant; the stranger is not in the POS
    sold = {(lst.sku.strip(), lst.variant_id) for lst in selectors.sold_in_channel(channel)}
    assert sold == {
        ("TKP-TEE-BLK-M", tee.pk),
        ("tkp-mug-01-PROMO", mug.pk),
        ("GIFT-7", bag.pk),
    }
    assert [lst.sku.strip() for lst in selectors.not_in_pos(channel)] == ["TKP-NOPE-1"]
    assert list(selectors.not_in_channel(channel)) == []
    # given: 10 tees in stock, and a promo listing of the tee the channel added since the scan,
    # which omni has no listing of: only its SKU can tell which POS variant it sells
    stock_adjust(variant_id=tee.pk, outlet_id=channel.order_outlet_id, delta=10)
    emulator.put_item(shop_item("Black Tee (promo)", "tkp-TEE-BLK-M-promo"))
    [promo] = [
        lst
        for page in adapter(kind, emulator).iter_listing_pages()
        for lst in page
        if lst.sku.strip() == "tkp-TEE-BLK-M-promo"
    ]
    assert not Listing.objects.filter(channel=channel, item_id=promo.item_id).exists()
    listed = Listing.objects.get(channel=channel, sku="TKP-TEE-BLK-M")
    # when: a buyer orders 2 of the promo listing and 1 of the listed tee
    number = emulator.create_order(
        [(promo.item_id, promo.variant_id, 2), (listed.item_id, listed.variant_ref, 1)],
        state=OrderState.UNPAID,
    )
    rows = order_manual_download(channel=channel, order_numbers=[number])
    # then: the order reserves the POS tee for both lines
    assert [(row.action, row.status) for row in rows] == [(SyncLog.Action.CREATE_ORDER, 200)]
    order = SalesOrder.objects.get(channel=channel, order_number=number)
    assert sorted((line.sku.strip(), line.variant_id) for line in order.lines.all()) == [
        ("TKP-TEE-BLK-M", tee.pk),
        ("tkp-TEE-BLK-M-promo", tee.pk),
    ]
    stock = Stock.objects.get(variant=tee, outlet_id=channel.order_outlet_id)
    assert (stock.on_hand, stock.reserved) == (10, 3)
