"""Price rules, one contract for every marketplace (the rows of channels.marketplaces).

Over real HTTP against each marketplace's emulator: a channel with a markup and rounding scans
its shop, a price sync runs through omni's services, and the shop then holds the rule's price
(or the override) for every listed variant, sent in calls within the marketplace's per-call
price limit.
"""

import math
from decimal import Decimal

import pytest

from channels.adapters import adapter_class
from channels.models import Listing, PriceOverride, PriceSync
from channels.pricing import channel_price, price_rules_changed
from tests.channels.builders import grid_item, shop_item
from tests.channels.test_contract import connect, kind, scan  # noqa: F401
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db

COLORS, SIZES = 8, 7  # 56 variants in one item: more than some marketplaces take per call


def test_a_price_sync_leaves_the_rules_prices_on_the_shop(
    kind,  # noqa: F811
    emulator,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    # given: one item with many variants and two simple items, all in the POS
    emulator.put_item(grid_item("Grid Tee", COLORS, SIZES, sku="GT", price="1"))
    for n in range(2):
        emulator.put_item(shop_item(f"Canvas Cap {n}", f"CAP-{n}", price="1"))
    skus = [f"GT-C{c:02d}-S{s:02d}" for c in range(COLORS) for s in range(SIZES)]
    skus += ["CAP-0", "CAP-1"]
    retail = {sku: Decimal(150_000 + 1_370 * n) for n, sku in enumerate(skus)}
    variants = {sku: VariantFactory(sku=sku, retail_price=price) for sku, price in retail.items()}
    PriceOverride.objects.create(
        channel=(channel := connect(kind, emulator)),
        variant=variants["CAP-1"],
        price=Decimal("99000"),
    )
    channel.price_markup_percent = Decimal("10")
    channel.price_markup_amount = Decimal("2500")
    channel.price_round_step = Decimal("1000")
    channel.price_ending = Decimal("900")
    channel.price_round_mode = "up"
    channel.save()
    scan(channel)
    assert Listing.objects.filter(channel=channel, variant__isnull=False).count() == len(skus)
    # when: the rule change queues a sync, which a worker runs
    with django_capture_on_commit_callbacks(execute=True):
        price_rules_changed(channel=channel, requested_by="contract")
    # then: every listed variant holds its price on the shop
    sync = PriceSync.objects.get(channel=channel)
    assert sync.status == PriceSync.Status.SUCCEEDED, (sync.message, sync.failure_sample)
    assert (sync.considered, sync.pushed, sync.failed) == (len(skus), len(skus), 0)
    expected = {sku: channel_price(channel, price) for sku, price in retail.items()}
    expected["CAP-1"] = Decimal("99000")
    held = emulator.listing_prices()
    listings = Listing.objects.filter(channel=channel).select_related("variant")
    on_shop = {lst.variant.sku: held[(lst.item_id, lst.variant_ref)] for lst in listings}
    assert on_shop == expected
    assert expected["GT-C00-S00"] == Decimal("167900")  # 150,000 + 10% + 2,500, up to …900
    # within the per-call limit: at most one call per item and per `price_updates_per_call`
    per_call = adapter_class(kind).limits.price_updates_per_call
    most = math.ceil(COLORS * SIZES / per_call) + 2
    assert 0 < emulator.update_calls("price") <= most
