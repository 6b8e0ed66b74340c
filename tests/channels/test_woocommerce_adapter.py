"""WooCommerceAdapter against the WooCommerce emulator, over real HTTP on 127.0.0.1: what is
WooCommerce's own (what every marketplace shares is a scenario of test_contract.py).

The emulator runs on plain HTTP, so every call here is OAuth 1.0a-signed end to end; the HTTPS
path (Basic credentials) is checked on the requests the client builds. Orders: statuses to
OrderState, windows, Manual Download Order and webhook signatures. Last, a WooCommerce channel
through omni's own services: scans, upload and catalog pushes.
"""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from channels import selectors
from channels.adapters import build_adapter
from channels.adapters.base import (
    AdapterError,
    CredentialsError,
    OrderState,
    PriceUpdate,
    QuantityUpdate,
    RemoteListing,
    RemoteOrder,
    UploadProduct,
    UploadVariant,
    WebhookRejected,
)
from channels.adapters.http import RetryPolicy
from channels.adapters.woocommerce.adapter import (
    STATUS_TABLE,
    WooCommerceAdapter,
    listings_from_product,
    order_from_payload,
    webhook_signature,
)
from channels.adapters.woocommerce.client import (
    Page,
    WooCommerceClient,
    basic_auth_header,
    oauth_base_string,
    oauth_signature,
    walk_pages,
)
from channels.catalog_sync import catalog_delete, catalog_push
from channels.emulators.woocommerce import API, ORDER_STATUSES, WooCommerceEmulator
from channels.listings import listings_upload
from channels.models import Channel, Listing, Scan
from channels.scans import scan_request, scan_run
from tests.channels.builders import grid_item, shop_item
from tests.channels.conftest import FAST_RETRY
from tests.factories import OutletFactory, ProductFactory, VariantFactory

PRODUCTS_BATCH = API + "/products/batch"


@pytest.fixture
def woo() -> Iterator[WooCommerceEmulator]:
    """A small store: 40 products, about a third of them variable."""
    with WooCommerceEmulator(items=40, seed=7) as emulator:
        yield emulator


def woo_adapter(emulator: WooCommerceEmulator, **overrides: Any) -> WooCommerceAdapter:
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return WooCommerceAdapter(**options)


def all_listings(adapter: WooCommerceAdapter, **kwargs: Any) -> list[RemoteListing]:
    return [listing for page in adapter.iter_listing_pages(**kwargs) for listing in page]


def key(listing: RemoteListing) -> tuple[str, str]:
    return listing.item_id, listing.variant_id


TEE = UploadProduct(
    name="Omni Test Tee",
    description="Soft cotton.",
    category="Clothing > T-Shirts",
    brand="Northwind",
    images=("https://cdn.example.test/img/tee-front.png",),
    weight_kg=Decimal("0.25"),
    dimensions_cm=(Decimal("30"), Decimal("20"), Decimal("2.5")),
    is_active=True,
    option_names=("Color", "Size"),
    variants=(
        UploadVariant("OT-BLK-M", Decimal("19.90"), 5, {"Color": "Black", "Size": "M"}),
        UploadVariant("OT-BLK-L", Decimal("19.90"), 6, {"Color": "Black", "Size": "L"}),
        UploadVariant(
            "OT-WHT-M", Decimal("21"), 7, {"Color": "White", "Size": "M"}, "012345678905"
        ),
    ),
)


# -- signing ------------------------------------------------------------------------------------

CONSUMER_KEY = "ck_4b1c9e7d2a0f8e6c5b3a1d9f7e5c3b1a0d8f6e4c"
CONSUMER_SECRET = "cs_9a7b5c3d1e0f2a4b6c8d0e1f3a5b7c9d1e3f5a7b"


def test_oauth_signature_matches_a_vector_computed_by_hand():
    # Inputs: GET http://shop.example.test/wp-json/wc/v3/products with the query
    #   page=2 per_page=100 modified_after=2025-01-01T00:00:00 dates_are_gmt=true
    #   oauth_consumer_key=$CONSUMER_KEY oauth_timestamp=1735689600
    #   oauth_nonce=5f8a3c2e1d0b9a8f7e6d5c4b3a291807 oauth_signature_method=HMAC-SHA256
    # Base string, written out by hand: keys sorted, key and value percent-encoded, each
    # "key=value" percent-encoded again (":" -> %3A -> %253A), pairs joined with %26:
    base = (
        "GET&http%3A%2F%2Fshop.example.test%2Fwp-json%2Fwc%2Fv3%2Fproducts&"
        "dates_are_gmt%3Dtrue%26modified_after%3D2025-01-01T00%253A00%253A00%26"
        f"oauth_consumer_key%3D{CONSUMER_KEY}%26"
        "oauth_nonce%3D5f8a3c2e1d0b9a8f7e6d5c4b3a291807%26"
        "oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1735689600%26"
        "page%3D2%26per_page%3D100"
    )
    # Expected value computed once in a shell, outside the code under test:
    #   echo -n "$BASE" | openssl dgst -sha256 -hmac "${CONSUMER_SECRET}&" -binary | base64
    params = {
        "page": "2",
        "per_page": "100",
        "modified_after": "2025-01-01T00:00:00",
        "dates_are_gmt": "true",
        "oauth_consumer_key": CONSUMER_KEY,
        "oauth_timestamp": "1735689600",
        "oauth_nonce": "5f8a3c2e1d0b9a8f7e6d5c4b3a291807",
        "oauth_signature_method": "HMAC-SHA256",
    }
    url = "http://shop.example.test/wp-json/wc/v3/products"

    assert oauth_base_string("GET", url, params) == base
    signature = oauth_signature(
        consumer_secret=CONSUMER_SECRET, method="GET", url=url, params=params
    )
    assert signature == "lecuEOrezKWY0QVFcK5AwKaus6iX1/vzLkOz09kcFxM="


def test_basic_auth_header_matches_a_vector_computed_by_hand():
    # echo -n "$CONSUMER_KEY:$CONSUMER_SECRET" | base64 -w0
    assert basic_auth_header(CONSUMER_KEY, CONSUMER_SECRET) == (
        "Basic Y2tfNGIxYzllN2QyYTBmOGU2YzViM2ExZDlmN2U1YzNiMWEwZDhmNmU0Yzpjc185YTdiNWMzZDFlMGYyYTRi"
        "NmM4ZDBlMWYzYTViN2M5ZDFlM2Y1YTdi"
    )


def test_over_https_the_keys_go_as_basic_credentials_and_nothing_is_signed():
    adapter = WooCommerceAdapter(
        base_url="https://shop.example.test/",
        credentials={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
    )
    client: WooCommerceClient = adapter._client
    session = adapter._caller.session

    built = client.outgoing("GET", "/products", params={"page": 1})
    prepared = session.prepare_request(
        requests.Request(built.method, built.url, params=built.params)
    )
    elsewhere = session.prepare_request(requests.Request("GET", "https://cdn.example.test/x.png"))

    assert prepared.url == "https://shop.example.test/wp-json/wc/v3/products?page=1"
    assert prepared.headers["Authorization"] == basic_auth_header(CONSUMER_KEY, CONSUMER_SECRET)
    assert "Authorization" not in elsewhere.headers
    assert CONSUMER_SECRET not in repr(session.auth)


def test_over_http_every_attempt_is_signed_afresh(woo):
    client: WooCommerceClient = woo_adapter(woo)._client

    first = client.outgoing("GET", "/products", params={"page": 1})
    second = client.outgoing("GET", "/products", params={"page": 1})

    first_query, second_query = dict(first.params), dict(second.params)
    assert first_query["oauth_signature_method"] == "HMAC-SHA256"
    assert first_query["oauth_nonce"] != second_query["oauth_nonce"]
    assert woo.consumer_secret not in str(first.params)


def test_a_replayed_request_is_refused_as_woocommerce_refuses_it(woo):
    built = woo_adapter(woo)._client.outgoing("GET", "/products", params={"per_page": 1})

    once = requests.get(built.url, params=built.params, timeout=5)
    again = requests.get(built.url, params=built.params, timeout=5)

    assert once.status_code == 200
    assert again.status_code == 401
    assert again.json()["message"] == "Invalid nonce - nonce has already been used."


# -- credentials --------------------------------------------------------------------------------


def test_a_wrong_secret_is_refused_naming_the_consumer_secret(woo):
    # The contract suite checks that wrong credentials change nothing; here, what to fix.
    adapter = woo_adapter(woo, credentials=woo.wrong_credentials())
    item_id, variant_id = next(iter(woo.listing_quantities()))

    with pytest.raises(CredentialsError) as refused:
        adapter.check_credentials()
    assert "check the consumer secret" in str(refused.value)
    with pytest.raises(CredentialsError):
        adapter.update_quantities([QuantityUpdate(item_id, variant_id, 999)])
    assert woo.update_calls("stock") == 0


def test_unknown_key_and_read_only_key_say_what_to_fix():
    with WooCommerceEmulator(seed=3, permissions="read") as emulator:
        unknown = {**emulator.credentials, "consumer_key": "ck_" + "1" * 40}
        with pytest.raises(CredentialsError, match="does not know this consumer key"):
            woo_adapter(emulator, credentials=unknown).check_credentials()

        read_only = woo_adapter(emulator)
        read_only.check_credentials()
        with pytest.raises(CredentialsError, match="Read/Write"):
            read_only.set_active(emulator.put_item(shop_item("Plain RO-1", "RO-1")), False)


def test_a_wrong_clock_is_named_as_such(woo):
    adapter = woo_adapter(woo, clock=lambda: time.time() - 3600)

    with pytest.raises(AdapterError, match="check this server's clock") as refused:
        adapter.check_credentials()

    assert not isinstance(refused.value, CredentialsError)


def test_invalid_credentials_name_the_fields_but_not_the_values(woo):
    with pytest.raises(CredentialsError) as refused:
        build_adapter(
            "woocommerce",
            base_url=woo.base_url,
            credentials={"consumer_key": "cs_sekrit", "consumer_secret": "ck_sekrit", "x": 1},
        )

    message = str(refused.value)
    assert "consumer_key" in message
    assert "swapped" in message
    assert "x:" in message
    assert "sekrit" not in message


def test_a_site_url_that_is_no_woocommerce_store_is_named(woo):
    adapter = woo_adapter(woo, base_url=woo.base_url + "/blog")

    with pytest.raises(AdapterError, match="check the channel's site URL") as failed:
        adapter.check_credentials()

    assert not failed.value.retryable


# -- reading listings ---------------------------------------------------------------------------


def test_full_iteration_returns_every_listing_as_the_store_holds_it(woo):
    adapter = woo_adapter(woo)

    listings = all_listings(adapter)

    assert {key(lst): lst.quantity for lst in listings} == woo.listing_quantities()
    assert {key(lst): lst.price for lst in listings} == woo.listing_prices()
    assert {lst.status for lst in listings} <= {"live", "inactive"}
    assert all(lst.updated_at.tzinfo is UTC for lst in listings)
    variation = next(lst for lst in listings if lst.variant_id)
    product = woo.product(variation.item_id)
    options = next(
        v for v in woo.variations(variation.item_id) if str(v["id"]) == variation.variant_id
    )
    assert variation.title == product["name"] + " - " + ", ".join(
        a["option"] for a in options["attributes"]
    )
    # The site clock runs 7 hours ahead of UTC: the listing's time is the GMT one.
    assert variation.updated_at >= datetime.fromisoformat(product["date_modified_gmt"] + "+00:00")


def test_iteration_pages_follow_woocommerces_page_size():
    with WooCommerceEmulator(items=230, seed=3) as emulator:
        adapter = woo_adapter(emulator, workers=1)

        pages = list(adapter.iter_listing_pages())

        variable = emulator.product_ids(kind="variable")
        assert len(pages) == 3  # 100 + 100 + 30 products
        assert emulator.log.count(API + "/products") == 3
        variation_calls = sum(
            emulator.log.count(f"{API}/products/{pid}/variations") for pid in variable
        )
        assert variation_calls == len(variable)
        assert adapter.stats.calls == 3 + len(variable)


def test_endless_throttling_is_reported_as_the_hosts_429_after_its_retry_after(woo):
    woo.set_faults(throttle_rate=1.0, retry_after=0.05)
    adapter = woo_adapter(woo, retry=RetryPolicy(attempts=3, base_delay=1, max_delay=1))

    with pytest.raises(AdapterError) as failed:
        adapter.check_credentials()

    assert "HTTP 429" in str(failed.value)
    assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)
    assert 0.1 <= adapter.stats.seconds < 1  # the host's Retry-After, not our 1 s schedule


def test_incremental_iteration_returns_only_changed_and_trashed_products(woo):
    # given: a scan watermark, then one rename and one product moved to the trash
    watermark = datetime.now(UTC)
    variable = woo.product_ids(kind="variable", status="publish")[0]
    simple = woo.product_ids(kind="simple", status="publish")[0]
    woo.touch_item(variable, name="Renamed Tee")
    woo.remove_item(simple)
    # when
    listings = all_listings(woo_adapter(woo), updated_since=watermark)
    # then
    assert {lst.item_id for lst in listings} == {variable, simple}
    renamed = [lst for lst in listings if lst.item_id == variable]
    assert len(renamed) == len(woo.variations(variable))
    assert all(lst.title.startswith("Renamed Tee - ") and lst.status == "live" for lst in renamed)
    assert [(lst.variant_id, lst.status) for lst in listings if lst.item_id == simple] == [
        ("", "removed")
    ]


def test_a_trashed_variable_product_removes_each_of_its_variations(woo):
    watermark = datetime.now(UTC)
    variable = woo.product_ids(kind="variable")[0]
    woo.remove_item(variable)

    listings = all_listings(woo_adapter(woo), updated_since=watermark)

    assert {lst.variant_id for lst in listings} == {str(v["id"]) for v in woo.variations(variable)}
    assert {lst.status for lst in listings} == {"removed"}


def test_page_walk_steps_back_when_rows_leave_the_set_midway():
    # given: 250 rows in id order; after page 1 is read, three rows of page 1 leave the set,
    # so the rows behind them move up and three rows would fall between pages 1 and 2
    rows = [{"id": n} for n in range(1, 251)]
    calls: list[int] = []

    def fetch(page: int) -> Page:
        calls.append(page)
        if calls == [1, 2]:
            del rows[10:13]
        chunk = rows[(page - 1) * 100 : page * 100]
        return Page(chunk, total=len(rows), total_pages=-(-len(rows) // 100))

    # when
    seen = [row["id"] for page in walk_pages(fetch, per_page=100) for row in page]
    # then: rows 101-103, which moved up into page 1, were not skipped; nothing came twice
    assert sorted(seen) == list(range(1, 251))
    assert calls == [1, 2, 1, 2, 3]


def test_parser_maps_a_fixed_woocommerce_payload():
    # A variable product and its variations as WooCommerce returns them.
    product = {
        "id": 801,
        "name": "Wool Beanie &amp; Scarf",
        "type": "variable",
        "status": "publish",
        "sku": "BEANIE",
        "price": "18.00",
        "regular_price": "",
        "manage_stock": False,
        "stock_quantity": None,
        "date_modified_gmt": "2025-01-02T08:00:00",
        "variations": [802, 803],
    }
    variations = [
        {
            "id": 802,
            "sku": " beanie-gry ",
            "regular_price": "18.00",
            "price": "15.00",
            "status": "publish",
            "manage_stock": True,
            "stock_quantity": 7,
            "date_modified_gmt": "2025-01-03T08:00:00",
            "attributes": [{"id": 0, "name": "Color", "option": "Grey"}],
        },
        {
            "id": 803,
            "sku": "BEANIE-RED",
            "regular_price": "19.50",
            "status": "private",
            "manage_stock": False,
            "stock_quantity": None,
            "date_modified_gmt": "2025-01-01T08:00:00",
            "attributes": [{"id": 0, "name": "Color", "option": "Red"}],
        },
    ]

    grey, red = listings_from_product(product, variations)

    assert grey == RemoteListing(
        "801",
        "802",
        " beanie-gry ",
        "Wool Beanie & Scarf - Grey",
        Decimal("18.00"),
        7,
        "live",
        datetime(2025, 1, 3, 8, tzinfo=UTC),
    )
    assert (red.price, red.quantity, red.status) == (Decimal("19.50"), 0, "inactive")
    assert red.updated_at == datetime(2025, 1, 2, 8, tzinfo=UTC)  # the product's, newer
    trashed = listings_from_product({**product, "status": "trash"}, [])
    assert [(t.variant_id, t.status) for t in trashed] == [("", "removed")]
    assert listings_from_product({**product, "type": "grouped"}, []) == []


# -- creating products -------------------------------------------------------------------------


def test_create_variable_product_is_returned_by_the_next_iteration(woo):
    adapter = woo_adapter(woo)

    created = adapter.create_product(TEE)

    assert [(c.sku, c.title, c.price, c.quantity, c.status) for c in created] == [
        ("OT-BLK-M", "Omni Test Tee - Black, M", Decimal("19.90"), 5, "live"),
        ("OT-BLK-L", "Omni Test Tee - Black, L", Decimal("19.90"), 6, "live"),
        ("OT-WHT-M", "Omni Test Tee - White, M", Decimal("21"), 7, "live"),
    ]
    assert {key(c) for c in created} <= {key(lst) for lst in all_listings(adapter)}
    product = woo.product(created[0].item_id)
    assert product["type"] == "variable"
    assert [c["name"] for c in product["categories"]] == ["T-Shirts"]  # the store's own
    assert product["weight"] == "0.25"
    assert product["dimensions"] == {"length": "30", "width": "20", "height": "2.5"}
    assert {a["name"]: a["options"] for a in product["attributes"]} == {
        "Color": ["Black", "White"],
        "Size": ["M", "L"],
        "Brand": ["Northwind"],
    }
    assert [v["global_unique_id"] for v in woo.variations(created[0].item_id)] == [
        "",
        "",
        "012345678905",
    ]


def test_create_simple_product_in_a_store_that_weighs_in_grams():
    with WooCommerceEmulator(seed=4, weight_unit="g", dimension_unit="mm") as emulator:
        product = UploadProduct(
            name="Omni Mug",
            description="",
            category="Kitchen & Dining",  # not in the store yet: created once
            brand="",
            images=(),
            weight_kg=Decimal("0.35"),
            dimensions_cm=(Decimal("9"), Decimal("9"), Decimal("10.5")),
            is_active=False,
            variants=(UploadVariant("MUG-1", Decimal("8"), 12),),
        )
        adapter = woo_adapter(emulator)

        [created] = adapter.create_product(product)
        adapter.create_product(_with_variant(product, UploadVariant("MUG-2", Decimal("9"), 1)))

        assert (created.variant_id, created.sku, created.quantity, created.status) == (
            "",
            "MUG-1",
            12,
            "inactive",
        )
        stored = emulator.product(created.item_id)
        assert (stored["weight"], stored["dimensions"]["height"]) == ("350", "105")
        assert stored["categories"][0]["name"] == "Kitchen &amp; Dining"  # WordPress escapes
        assert emulator.category_names().count("Kitchen & Dining") == 1
        assert emulator.log.count(API + "/settings/products/woocommerce_weight_unit") == 1


def _with_variant(product: UploadProduct, variant: UploadVariant) -> UploadProduct:
    return UploadProduct(
        name=product.name,
        description=product.description,
        category=product.category,
        brand=product.brand,
        images=product.images,
        weight_kg=product.weight_kg,
        dimensions_cm=product.dimensions_cm,
        is_active=product.is_active,
        variants=(variant,),
    )


def test_a_sku_the_store_already_has_is_refused_with_the_product_that_has_it(woo):
    owner = next(p for p in woo.product_ids(kind="simple") if woo.product(p)["sku"])
    sku = woo.product(owner)["sku"]
    products_before = woo.product_ids()

    with pytest.raises(AdapterError, match="duplicated SKU") as refused:
        woo_adapter(woo).create_product(_with_variant(TEE, UploadVariant(sku, Decimal("5"), 1)))

    assert f"Product {owner} on WooCommerce has it already" in str(refused.value)
    assert not refused.value.retryable
    assert woo.product_ids() == products_before


def test_a_refused_variant_says_the_product_exists_already(woo):
    taken = next(v["sku"] for p in woo.product_ids(kind="variable") for v in woo.variations(p))
    clash = UploadVariant(taken, Decimal("5"), 1, {"Color": "Grey", "Size": "S"})
    product = UploadProduct(**{**_fields(TEE), "variants": (*TEE.variants, clash)})

    with pytest.raises(AdapterError, match=r"created product \d+ .* but not all its variants"):
        woo_adapter(woo).create_product(product)

    [created] = [p for p in woo.product_ids() if woo.product(p)["name"] == TEE.name]
    assert len(woo.variations(created)) == 3


def test_variants_with_the_same_options_are_refused_before_anything_is_sent(woo):
    twin = UploadVariant("OTHER", Decimal("1"), 1, TEE.variants[0].options)
    twins = UploadProduct(**{**_fields(TEE), "variants": (TEE.variants[0], twin)})

    with pytest.raises(AdapterError, match="same options"):
        woo_adapter(woo).create_product(twins)

    assert woo.log.writes == []


# -- pushing quantities and prices --------------------------------------------------------------


def test_quantities_for_120_variations_and_150_simple_products_make_four_calls():
    with WooCommerceEmulator(seed=2) as emulator:
        # given
        grid = emulator.put_item(grid_item("Big Grid Tee", 12, 10))
        simple = [
            emulator.put_item(shop_item(f"Plain PL-{n:03d}", f"PL-{n:03d}")) for n in range(150)
        ]
        variations = [str(v["id"]) for v in emulator.variations(grid)]
        updates = [QuantityUpdate(grid, v, n) for n, v in enumerate(variations)]
        updates += [QuantityUpdate(pid, "", 1000 + n) for n, pid in enumerate(simple)]
        # when
        results = woo_adapter(emulator).update_quantities(updates)
        # then: per call at most 100 items, variations per product
        assert all(result.ok for result in results)
        assert emulator.update_calls("stock") == 4
        sizes = [len(call.body["update"]) for call in emulator.log.writes if call.status == 200]
        assert sorted(sizes) == [20, 50, 100, 100]
        quantities = emulator.listing_quantities()
        assert [quantities[(grid, v)] for v in variations] == list(range(120))
        assert quantities[(simple[-1], "")] == 1149


def test_items_woocommerce_refuses_inside_a_batch_fail_alone(woo):
    # given: one product deleted for good meanwhile, one id that is no WooCommerce id
    simple = woo.product_ids(kind="simple", status="publish")[:3]
    woo_adapter(woo).delete_product(simple[0])
    adapter = woo_adapter(woo)
    # when
    results = adapter.update_prices(
        [
            PriceUpdate(simple[0], "", Decimal("5")),
            PriceUpdate(simple[1], "", Decimal("7.50")),
            PriceUpdate("not-a-number", "", Decimal("1")),
            PriceUpdate(simple[2], "", Decimal("-1")),
        ]
    )
    # then
    assert [result.ok for result in results] == [False, True, False, False]
    assert "Invalid ID" in results[0].error
    assert "not a WooCommerce" in results[2].error
    assert "negative" in results[3].error
    assert woo.listing_prices()[(simple[1], "")] == Decimal("7.50")
    assert woo.update_calls("price") == 1
    [call] = [c for c in woo.log.writes if c.path == PRODUCTS_BATCH]
    assert call.body["update"][1]["regular_price"] == "7.50"  # prices go as strings


def test_a_pushed_update_survives_faults_with_one_effect(woo):
    woo.set_faults(error_rate=0.3, throttle_rate=0.2, retry_after=0.01)
    simple = woo.product_ids(kind="simple")[:10]
    adapter = woo_adapter(woo, retry=RetryPolicy(attempts=12, base_delay=0.002, max_delay=0.02))

    results = adapter.update_quantities([QuantityUpdate(pid, "", 42) for pid in simple])

    assert all(result.ok for result in results)
    assert {woo.listing_quantities()[(pid, "")] for pid in simple} == {42}
    assert woo.update_calls("stock") == 1


# -- catalog pushes -----------------------------------------------------------------------------


def test_update_product_overwrites_synced_fields_and_keeps_its_images(woo):
    # given: a product omni created, then changed in the POS
    adapter = woo_adapter(woo)
    created = adapter.create_product(TEE)
    item_id = created[0].item_id
    images_before = [i["id"] for i in woo.product(item_id)["images"]]
    changed = UploadProduct(
        name="Omni Tee v2",
        description="Softer cotton.",
        category="Hoodies",
        brand="Kinfolk",
        images=TEE.images,
        weight_kg=Decimal("0.3"),
        dimensions_cm=None,
        is_active=True,
        option_names=("Color", "Size"),
        variants=(
            UploadVariant(" ot-blk-m ", Decimal("24.00"), 0, {"Color": "Black", "Size": "M"}),
            UploadVariant("OT-BLK-L", Decimal("25.00"), 0, {"Color": "Black", "Size": "L"}),
        ),
    )
    # when: pushed twice, as a retried task would
    adapter.update_product(item_id, changed)
    adapter.update_product(item_id, changed)
    # then
    product = woo.product(item_id)
    assert (product["name"], product["description"], product["weight"]) == (
        "Omni Tee v2",
        "Softer cotton.",
        "0.3",
    )
    assert [c["name"] for c in product["categories"]] == ["Hoodies"]
    assert {a["name"]: a["options"] for a in product["attributes"]}["Brand"] == ["Kinfolk"]
    assert [i["id"] for i in product["images"]] == images_before  # not downloaded again
    prices = {v["sku"]: v["regular_price"] for v in woo.variations(item_id)}
    assert prices == {"ot-blk-m": "24.00", "OT-BLK-L": "25.00", "OT-WHT-M": "21"}
    quantities = woo.listing_quantities()
    assert [quantities[key(c)] for c in created] == [5, 6, 7]  # stock is not a catalog field


def test_add_variants_extends_the_options_and_has_one_effect_when_repeated(woo):
    adapter = woo_adapter(woo)
    item_id = adapter.create_product(TEE)[0].item_id
    red_xl = UploadVariant("OT-RED-XL", Decimal("22"), 3, {"Color": "Red", "Size": "XL"})
    whole = UploadProduct(**{**_fields(TEE), "variants": (*TEE.variants, red_xl)})

    added = adapter.add_variants(item_id, whole, [red_xl])
    writes = len(woo.log.writes)
    again = adapter.add_variants(item_id, whole, [red_xl])

    assert [(a.sku, a.title, a.quantity) for a in added] == [
        ("OT-RED-XL", "Omni Test Tee - Red, XL", 3)
    ]
    assert [key(a) for a in again] == [key(a) for a in added]
    assert len(woo.log.writes) == writes  # the repeat only read
    assert len(woo.variations(item_id)) == 4
    options = {a["name"]: a["options"] for a in woo.product(item_id)["attributes"]}
    assert options["Color"] == ["Black", "White", "Red"]
    assert options["Size"] == ["M", "L", "XL"]


def _fields(product: UploadProduct) -> dict[str, Any]:
    return {name: getattr(product, name) for name in UploadProduct.__dataclass_fields__}


def test_add_variants_to_a_simple_product_says_how_to_proceed(woo):
    simple = woo.product_ids(kind="simple")[0]

    with pytest.raises(AdapterError, match="simple product"):
        woo_adapter(woo).add_variants(simple, TEE, TEE.variants[:1])


def test_set_active_and_delete_have_one_effect_each(woo):
    adapter = woo_adapter(woo)
    item_id = woo.product_ids(kind="simple", status="publish")[0]

    adapter.set_active(item_id, False)
    adapter.set_active(item_id, False)
    assert woo.product(item_id)["status"] == "draft"
    adapter.set_active(item_id, True)
    assert woo.product(item_id)["status"] == "publish"

    adapter.delete_product(item_id)
    adapter.delete_product(item_id)  # gone already: nothing to do, no error
    assert item_id not in woo.product_ids()
    with pytest.raises(AdapterError, match="not a WooCommerce product id"):
        adapter.set_active("abc", True)


# -- orders ---------------------------------------------------------------------------------------

HOOK_URL = "https://omni.example.test/hooks/woocommerce/3"


def some_lines(emulator: WooCommerceEmulator) -> list[tuple[str, str, int]]:
    """One variation and one simple product, as order lines."""
    quantities = emulator.listing_quantities()
    variation = next(ref for ref in quantities if ref[1])
    simple = next(ref for ref in quantities if not ref[1])
    return [(*variation, 2), (*simple, 1)]


def all_orders(adapter: WooCommerceAdapter, start: datetime, end: datetime) -> list[RemoteOrder]:
    return [o for page in adapter.iter_orders(updated_from=start, updated_to=end) for o in page]


def test_every_woocommerce_status_has_a_state():
    core = {
        "pending",
        "processing",
        "on-hold",
        "completed",
        "cancelled",
        "refunded",
        "failed",
        "checkout-draft",
        "trash",
    }

    assert core <= set(STATUS_TABLE)
    assert set(STATUS_TABLE) >= ORDER_STATUSES  # every status the emulator can hold
    assert set(STATUS_TABLE.values()) == set(OrderState)


@pytest.mark.parametrize("state", list(OrderState))
def test_an_order_comes_back_in_the_state_it_was_created_in(woo, state):
    number = woo.create_order(some_lines(woo), state=state)

    [order] = woo_adapter(woo).get_orders([number])

    assert (order.order_number, order.state) == (number, state)


def test_an_order_moves_through_every_state(woo):
    # given
    adapter = woo_adapter(woo)
    start = datetime.now(UTC) - timedelta(seconds=1)
    number = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    seen = []
    # when
    for state in (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED, OrderState.RETURNED):
        woo.move_order(number, state)
        end = datetime.now(UTC) + timedelta(minutes=1)
        [order] = all_orders(adapter, start, end)
        [fetched] = adapter.get_orders([number])
        seen.append((order.status, order.state, fetched.state))
    # then
    assert seen == [
        ("processing", OrderState.PAID, OrderState.PAID),
        ("shipped", OrderState.SHIPPED, OrderState.SHIPPED),
        ("completed", OrderState.DELIVERED, OrderState.DELIVERED),
        ("refunded", OrderState.RETURNED, OrderState.RETURNED),
    ]


def test_an_order_carries_its_lines_money_and_times(woo):
    lines = some_lines(woo)
    number = woo.create_order(lines, state=OrderState.PAID)
    source = woo.order(number)

    [order] = woo_adapter(woo).get_orders([number])

    assert order.order_id == str(source["id"])
    assert (order.currency, order.total) == ("EUR", Decimal(source["total"]))
    assert order.payment_method == "Direct bank transfer"
    assert order.courier == "Flat rate"
    assert order.paid_at is not None
    assert order.paid_at.tzinfo is UTC
    # The site clock runs 7 hours ahead: the times are the GMT ones.
    assert order.created_at == datetime.fromisoformat(source["date_created_gmt"] + "+00:00")
    assert [(line.item_id, line.variant_id, line.quantity) for line in order.lines] == lines
    prices = woo.listing_prices()
    assert [line.unit_price for line in order.lines] == [prices[(i, v)] for i, v, _ in lines]
    assert order.lines[0].sku == source["line_items"][0]["sku"]


def test_a_window_returns_only_orders_changed_inside_it(woo):
    # given: an order changed before the window, one inside, one after
    early = woo.create_order(some_lines(woo), state=OrderState.PAID)
    woo.state.orders[int(early)].date_modified -= 3600
    start = datetime.now(UTC) - timedelta(seconds=5)
    inside = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    end = datetime.now(UTC) + timedelta(seconds=5)
    late = woo.create_order(some_lines(woo), state=OrderState.PAID)
    woo.state.orders[int(late)].date_modified += 3600
    # when
    numbers = [o.order_number for o in all_orders(woo_adapter(woo), start, end)]
    # then
    assert numbers == [inside]


def test_orders_come_a_page_of_100_at_a_time(woo):
    start = datetime.now(UTC) - timedelta(seconds=5)
    numbers = [woo.create_order(some_lines(woo), state=OrderState.PAID) for _ in range(130)]
    adapter = woo_adapter(woo)

    pages = list(adapter.iter_orders(updated_from=start, updated_to=start + timedelta(minutes=5)))

    assert [len(page) for page in pages] == [100, 30]
    assert sorted(o.order_number for page in pages for o in page) == sorted(numbers)
    assert adapter.stats.calls == 2


def test_drafts_and_trashed_orders_are_never_downloaded(woo):
    start = datetime.now(UTC) - timedelta(seconds=5)
    kept = woo.create_order(some_lines(woo), state=OrderState.PAID)
    draft = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.set_order_status(draft, "checkout-draft")
    trashed = woo.create_order(some_lines(woo), state=OrderState.DELIVERED)
    woo.set_order_status(trashed, "trash")
    adapter = woo_adapter(woo)

    listed = all_orders(adapter, start, datetime.now(UTC) + timedelta(seconds=5))
    fetched = adapter.get_orders([draft, trashed, kept])

    assert [o.order_number for o in listed] == [kept]
    assert [o.order_number for o in fetched] == [kept]


def test_on_hold_and_failed_orders_are_unpaid(woo):
    on_hold = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.set_order_status(on_hold, "on-hold")
    failed = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.set_order_status(failed, "failed")

    orders = woo_adapter(woo).get_orders([on_hold, failed])

    assert [(o.status, o.state) for o in orders] == [
        ("on-hold", OrderState.UNPAID),
        ("failed", OrderState.UNPAID),
    ]


def test_manual_download_takes_numbers_as_staff_type_them(woo):
    number = woo.create_order(some_lines(woo), state=OrderState.PAID)
    adapter = woo_adapter(woo)

    orders = adapter.get_orders([f" #{number} ", number, "999999", "no-such-order"])

    assert [o.order_number for o in orders] == [number]


def test_an_order_number_given_by_a_plugin_is_found_by_search(woo):
    # given: a sequential-numbers plugin gave order 1201 the number "WC-1001", and order 1202
    # the number "1201"
    first = woo.create_order(some_lines(woo), state=OrderState.PAID)
    second = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.state.orders[int(first)].number = "WC-1001"
    woo.state.orders[int(second)].number = first
    adapter = woo_adapter(woo)
    # when
    orders = adapter.get_orders(["WC-1001", first])
    # then
    assert [(o.order_number, o.order_id) for o in orders] == [
        ("WC-1001", first),
        (first, second),
    ]


def test_an_unknown_plugin_status_is_kept_and_treated_as_unpaid():
    payload = {"id": 9, "number": "9", "status": "awaiting-pickup", "total": "10.00"}

    order = order_from_payload(payload)

    assert (order.status, order.state, order.total) == (
        "awaiting-pickup",
        OrderState.UNPAID,
        Decimal("10.00"),
    )


def test_line_prices_are_what_the_buyer_paid_per_unit_tax_included():
    payload = {
        "id": 1207,
        "number": "1207",
        "status": "processing",
        "currency": "EUR",
        "total": "41.00",
        "date_created_gmt": "2025-01-03T09:15:00",
        "date_modified_gmt": "2025-01-03T09:20:00",
        "line_items": [
            {
                "id": 55,
                "name": "Wool Beanie - Grey",
                "product_id": 801,
                "variation_id": 802,
                "quantity": 3,
                "sku": "BEANIE-GRY",
                "total": "30.00",
                "total_tax": "6.30",
            }
        ],
    }

    [line] = order_from_payload(payload).lines

    assert (line.item_id, line.variant_id, line.unit_price) == ("801", "802", Decimal("12.10"))


# -- webhooks -------------------------------------------------------------------------------------


def test_a_signed_order_webhook_is_accepted(woo):
    number = woo.create_order(some_lines(woo), state=OrderState.PAID)
    headers, body = woo.signed_webhook(number, HOOK_URL)

    event = woo_adapter(woo).verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert (event.topic, event.order_number) == ("order_status", number)
    assert event.delivery_id.startswith(headers["X-WC-Webhook-Delivery-ID"])
    assert event.payload["status"] == "processing"
    assert b"\\/" in body  # PHP's JSON, checked byte for byte, never re-serialised


def test_webhook_signature_matches_a_vector_computed_by_hand():
    # echo -n '{"id":1207,"status":"processing","number":"1207"}' \
    #   | openssl dgst -sha256 -hmac 'whsec-7f3a9c' -binary | base64
    body = b'{"id":1207,"status":"processing","number":"1207"}'

    assert webhook_signature("whsec-7f3a9c", body) == "6jvb1SLsS0Z1FIkX1dkvtnNZqc76nHx3Fkd/RP5b6v4="


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("no signature", 401),
        ("wrong signature", 401),
        ("tampered body", 401),
        ("not json", 400),
        ("no delivery id", 400),
    ],
)
def test_a_bad_webhook_is_refused(woo, change, status):
    number = woo.create_order(some_lines(woo), state=OrderState.PAID)
    headers, body = woo.signed_webhook(number, HOOK_URL)
    if change == "no signature":
        del headers["X-WC-Webhook-Signature"]
    elif change == "wrong signature":
        headers["X-WC-Webhook-Signature"] = webhook_signature("not-the-secret", body)
    elif change == "tampered body":
        body = body.replace(b'"processing"', b'"completed"')
    elif change == "not json":
        body = b"<html>"
        headers["X-WC-Webhook-Signature"] = webhook_signature(woo.webhook_secret, body)
    elif change == "no delivery id":
        del headers["X-WC-Webhook-Delivery-ID"]

    with pytest.raises(WebhookRejected) as rejected:
        woo_adapter(woo).verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert rejected.value.status == status
    assert woo.webhook_secret not in str(rejected.value)


def test_a_webhook_is_refused_while_the_channel_has_no_webhook_secret(woo):
    headers, body = woo.signed_webhook(
        woo.create_order(some_lines(woo), state=OrderState.PAID), HOOK_URL
    )
    adapter = woo_adapter(woo, credentials={**woo.credentials, "webhook_secret": ""})

    with pytest.raises(WebhookRejected, match="no WooCommerce webhook secret") as rejected:
        adapter.verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert rejected.value.status == 401


def test_two_events_in_one_second_stay_two_and_a_redelivery_stays_one(woo):
    # WooCommerce's delivery id is a hash of the webhook id and the current second only.
    woo.clock = lambda: 1_767_225_600.0
    adapter = woo_adapter(woo)
    first, second = (woo.create_order(some_lines(woo), state=OrderState.PAID) for _ in range(2))
    (h1, b1), (h2, b2) = woo.signed_webhook(first, HOOK_URL), woo.signed_webhook(second, HOOK_URL)

    one = adapter.verify_webhook(url=HOOK_URL, headers=h1, body=b1)
    two = adapter.verify_webhook(url=HOOK_URL, headers=h2, body=b2)
    one_again = adapter.verify_webhook(url=HOOK_URL, headers=h1, body=b1)

    assert h1["X-WC-Webhook-Delivery-ID"] == h2["X-WC-Webhook-Delivery-ID"]
    assert one.delivery_id != two.delivery_id
    assert one_again.delivery_id == one.delivery_id


def test_the_ping_sent_when_a_webhook_is_created_is_answered(woo):
    event = woo_adapter(woo).verify_webhook(
        url=HOOK_URL,
        headers={"User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"},
        body=b"webhook_id=7",
    )

    assert (event.topic, event.order_number, event.delivery_id) == ("other", "", "ping-7")


def test_a_product_webhook_is_not_an_order_event(woo):
    body = json.dumps({"id": 801, "name": "Tee"}).encode()
    headers = {
        "X-WC-Webhook-Topic": "product.updated",
        "X-WC-Webhook-Signature": webhook_signature(woo.webhook_secret, body),
        "X-WC-Webhook-Delivery-ID": "abc123",
    }

    event = woo_adapter(woo).verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert (event.topic, event.order_number) == ("product", "")


# -- through omni's services: scans, upload and catalog pushes ------------------------------------


@pytest.fixture
def store() -> Iterator[WooCommerceEmulator]:
    """A store listing a mug, a 2x2 grid tee and an item to remove, with their ids."""
    with WooCommerceEmulator(seed=9) as emulator:
        emulator.ids = {
            "plain": emulator.put_item(shop_item("Mug", "MUG-01")),
            "grid": emulator.put_item(grid_item("Grid Tee", 2, 2, sku="TEE")),
            "gone": emulator.put_item(shop_item("Old Stock", "OLD-1")),
        }
        yield emulator


def make_channel(emulator: WooCommerceEmulator) -> Channel:
    return Channel.objects.create(
        kind="woocommerce",
        name="Woo Test",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="web"),
    )


def run_scan(channel: Channel, kind: str = Scan.Kind.FULL) -> Scan:
    return scan_run(scan_id=scan_request(channel=channel, kind=kind, enqueue=False).pk)


@pytest.mark.django_db
def test_scans_map_listings_and_see_a_trashed_product_as_removed(store):
    # given
    VariantFactory(sku="MUG-01")
    VariantFactory(sku="TEE-C00-S01")
    channel = make_channel(store)
    # when
    full = run_scan(channel)
    store.remove_item(store.ids["gone"])
    updated = run_scan(channel, Scan.Kind.UPDATED)
    # then
    assert full.status == Scan.Status.SUCCEEDED, full.error
    assert updated.status == Scan.Status.SUCCEEDED, updated.error
    assert sorted(lst.sku for lst in selectors.sold_in_channel(channel)) == [
        "MUG-01",
        "TEE-C00-S01",
    ]
    gone = Listing.objects.get(channel=channel, item_id=store.ids["gone"])
    assert gone.status == Listing.Status.REMOVED
    assert updated.seen == 1  # cost grows with what changed, not with the store


@pytest.mark.django_db
def test_upload_then_catalog_pushes_reach_the_store(store):
    # given: a POS product with two variants, uploaded
    channel = make_channel(store)
    product = ProductFactory(name="Canvas Tote", supplier="Secret Supplier", description="Roomy.")
    VariantFactory(product=product, sku="TOTE-1", options={"Color": "Natural"})
    VariantFactory(product=product, sku="TOTE-2", options={"Color": "Black"})
    report = listings_upload(
        channel=channel, variant_ids=product.variants.values_list("pk", flat=True)
    )
    assert report.failed == []
    item_id = Listing.objects.filter(channel=channel, sku="TOTE-1").get().item_id
    # when: renamed, repriced and deactivated in the POS
    product.name = "Canvas Tote XL"
    product.is_active = False
    product.save()
    product.variants.filter(sku="TOTE-2").update(retail_price=Decimal("59.00"))
    records = catalog_push(product_id=product.pk, changed=["name", "is_active"])
    # then
    assert [r.error for r in records] == ["", ""]
    stored = store.product(item_id)
    assert (stored["name"], stored["status"]) == ("Canvas Tote XL", "draft")
    assert {v["sku"]: v["regular_price"] for v in store.variations(item_id)}["TOTE-2"] == "59.00"
    assert "Secret Supplier" not in str([call.body for call in store.log.writes])
    # and deleting it in the POS deletes it on the store, once
    deleted = catalog_delete(product_id=product.pk, items=[(channel.pk, item_id)])
    assert [r.error for r in deleted] == [""]
    assert item_id not in store.product_ids()
