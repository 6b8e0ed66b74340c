"""The demo looks like a real shop: a listing carrying a POS SKU is that POS product (its name,
its option values, its price in rupiah a little marked up at most), each POS product is one
item, and the awkward cases staff must see are still there, in every tab and in the Sync Logs."""

import hashlib
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from catalog.demo import demo_catalog_load
from channels.adapters import adapter_class
from channels.adapters.base import PriceUpdate
from channels.adapters.http import RetryPolicy
from channels.demo import demo_channels_start, demo_shop
from channels.emulators.shop import MAX_MARKUP, PosVariant, ShopItem, generate_shop
from channels.marketplaces import KINDS
from channels.models import Listing
from channels.tabs import TABS
from synclogs.demo import demo_orders_backfill
from synclogs.models import SalesOrder, SyncLog
from synclogs.services import missing_order_numbers, orders_download_missing

NOW = 1_750_000_000
FAST_RETRY = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.2)


def pos_catalog(products: int = 120) -> list[PosVariant]:
    """A POS catalog in rupiah: tees in colours and sizes, mugs in colours, power banks
    without variants."""
    variants: list[PosVariant] = []
    for n in range(products):
        price = Decimal(39_000 + n * 5_000)
        match n % 3:
            case 0:
                grid = [{"Color": c, "Size": s} for c in ("Black", "Navy") for s in ("M", "L")]
                title, category = f"Kaya Living Cotton Tee {n}", "T-Shirts"
            case 1:
                grid = [{"Color": c} for c in ("Green", "Terracotta", "Natural")]
                title, category = f"Dapur Ibu Enamel Mug {n}", "Mugs"
            case _:
                grid = [{}]
                title, category = f"Voltra Power Bank {n}", "Power Banks"
        for options in grid:
            suffix = "".join(f"-{value[:3].upper()}" for value in options.values())
            variants.append(
                PosVariant(f"P{n:03d}{suffix}", title, options, price, str(n), category)
            )
    return variants


CATALOG = pos_catalog()
BY_SKU = {variant.sku.lower(): variant for variant in CATALOG}


def pos_of(sku: str) -> PosVariant | None:
    return BY_SKU.get(sku.strip().lower())


def listings(shop: list[ShopItem]):
    return [(item, variant) for item in shop for variant in item.variants]


# -- the generator ---------------------------------------------------------------------------------


def test_a_listing_with_a_pos_sku_is_that_pos_product_at_about_its_price():
    shop = generate_shop(100, seed=3, pos_variants=CATALOG, now=NOW)

    carried = [(item, v, pos) for item, v in listings(shop) if (pos := pos_of(v.sku))]
    assert len(carried) > 0.7 * len(listings(shop))
    for item, variant, pos in carried:
        assert pos.title.lower() in item.name.lower()
        assert variant.options == pos.options
        assert pos.price <= variant.price <= pos.price * (1 + MAX_MARKUP)
        assert variant.price % 100 == 0  # whole rupiah, as shops price them
    # most are listed at the POS price or at a round markup, some under a marketplace tag
    assert any(variant.price > pos.price for _, variant, pos in carried)
    assert any(variant.price == pos.price for _, variant, pos in carried)
    assert any(item.name != pos.title for item, _, pos in carried)


def test_the_variants_of_one_pos_product_are_listed_as_one_item():
    shop = generate_shop(100, seed=5, pos_variants=CATALOG, now=NOW)

    items_of: dict[str, list[tuple[ShopItem, set[str]]]] = defaultdict(list)
    for item in shop:
        products = {pos.product for v in item.variants if (pos := pos_of(v.sku))}
        assert len(products) <= 1, f"{item.name} mixes POS products"
        if products:
            skus = {v.sku.strip().lower() for v in item.variants if v.sku}
            items_of[products.pop()].append((item, skus))
    grids = [product for product in items_of if int(product) % 3 != 2]
    assert grids, "no product with variants was listed"
    for product, held in items_of.items():
        everywhere = set().union(*(skus for _, skus in held))
        # one item holds every listed variant; a second one is a re-listing of some of them
        assert any(skus == everywhere for _, skus in held), product
    for product in grids:
        first, _ = items_of[product][0]
        assert first.has_variants
        assert len(first.variants) >= 2


def test_unknown_blank_and_duplicate_skus_are_still_there_with_plausible_rupiah_prices():
    shop = generate_shop(60, seed=8, pos_variants=CATALOG, now=NOW)

    skus = [v.sku for _, v in listings(shop)]
    own = [(item, v) for item, v in listings(shop) if v.sku and pos_of(v.sku) is None]
    keys = Counter(sku.strip().lower() for sku in skus if sku)
    assert "" in skus
    assert own, "no SKU the POS does not know"
    assert any(count > 1 for count in keys.values())
    assert any(sku != pos.sku for sku in skus if (pos := pos_of(sku)))  # typed in another case
    for item, variant in own:
        assert 30_000 <= variant.price <= 1_000_000, item.name  # the POS's scale, in rupiah


def test_a_shop_of_pos_variants_is_the_same_for_the_same_seed():
    first = generate_shop(40, seed=2, pos_variants=CATALOG, now=NOW)
    assert first == generate_shop(40, seed=2, pos_variants=CATALOG, now=NOW)
    assert first != generate_shop(40, seed=3, pos_variants=CATALOG, now=NOW)
    with pytest.raises(ValueError, match="not both"):
        generate_shop(5, seed=2, pos_skus=["A"], pos_variants=CATALOG)


def test_a_shop_without_pos_variants_is_generated_as_before():
    # Benchmarks and tests compare runs on these shops: their content must not drift.
    def digest(shop: list[ShopItem]) -> str:
        text = "|".join(
            f"{i.name};{i.status};{i.updated_at};"
            + ",".join(
                f"{v.sku}:{v.price}:{v.quantity}:{sorted(v.options.items())}" for v in i.variants
            )
            for i in shop
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    pos_skus = [f"POS-{n:03d}" for n in range(80)]
    assert digest(generate_shop(60, seed=9, now=NOW)) == "631957790baba283"
    assert digest(generate_shop(60, seed=4, pos_skus=pos_skus, now=NOW)) == "6ed998414bd172ed"


# -- every emulator, read through its adapter ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_demo_shop_serves_pos_names_and_rupiah_prices_through_its_api(kind):
    # given: the kind's demo shop, generated from the POS catalog
    emulator = demo_shop(kind, items=30, seed=4, pos_variants=CATALOG, port=0)
    generated = {
        v.sku.strip().lower(): v.price
        for item in generate_shop(30, 4, pos_variants=CATALOG, now=emulator.now())
        for v in item.variants
        if v.sku
    }
    with emulator:
        client = adapter_class(kind)(
            base_url=emulator.base_url, credentials=emulator.credentials, retry=FAST_RETRY
        )
        # when: the adapter reads the catalog as a scan does, and sets POS prices back
        read = [listing for page in client.iter_listing_pages() for listing in page]
        carried = [(listing, pos) for listing in read if (pos := pos_of(listing.sku))]
        pushed = client.update_prices(
            [PriceUpdate(lst.item_id, lst.variant_id, pos.price) for lst, pos in carried[:3]]
        )
        prices = emulator.listing_prices()
    # then: names and whole-rupiah prices come through every marketplace's formatting, and
    # the shop takes rupiah prices in its own currency
    assert carried
    for listing, pos in carried:
        assert pos.title.lower() in listing.title.lower()
        assert listing.price == generated[listing.sku.strip().lower()]
        assert pos.price <= listing.price <= pos.price * (1 + MAX_MARKUP)
    assert all(result.ok for result in pushed), [result.error for result in pushed]
    for listing, pos in carried[:3]:
        assert prices[(listing.item_id, listing.variant_id)] == pos.price


# -- the demo, end to end --------------------------------------------------------------------------


@pytest.fixture
def demo_shops(db):
    demo_catalog_load(products=40)
    started = demo_channels_start(items=25, fixed_ports=False)
    yield started
    for demo in started:
        demo.emulator.stop()


def test_every_tab_of_every_demo_channel_has_rows_and_matches_look_right(demo_shops):
    for demo in demo_shops:
        for tab in TABS:
            assert tab.queryset(demo.channel).exists(), f"{demo.channel}: {tab.title} is empty"
        assert demo.channel.listings.filter(variant__isnull=True, sku="").exists()
        assert demo.channel.listings.filter(variant__isnull=True).exclude(sku="").exists()
    matched = Listing.objects.filter(variant__isnull=False).select_related("variant__product")
    assert matched.count() > 100
    for listing in matched:
        pos = listing.variant
        assert pos.product.name.lower() in listing.title.lower(), listing.title
        assert pos.retail_price <= listing.price <= pos.retail_price * (1 + MAX_MARKUP)


def test_demo_orders_show_every_status_and_a_missing_order_can_be_downloaded(demo_shops):
    shopee = next(demo for demo in demo_shops if demo.channel.kind == "shopee")

    demo_orders_backfill(shopee.emulator, shopee.channel, days=7, per_day=6)

    statuses = set(SyncLog.objects.values_list("status", flat=True))
    assert statuses == {200, 409, 400, 404}
    assert SalesOrder.objects.filter(unmapped_lines__gt=0).count() >= 2
    assert set(SalesOrder.objects.values_list("currency", flat=True)) == {"IDR"}
    missing = missing_order_numbers(channel=shopee.channel)
    assert missing
    # the missing-orders flow downloads them
    done = orders_download_missing(channel=shopee.channel)
    assert sorted(done.found) == missing
    assert SalesOrder.objects.filter(order_number__in=missing).count() == len(missing)
    assert missing_order_numbers(channel=shopee.channel) == []
