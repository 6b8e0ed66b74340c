"""ShopifyAdapter against the Shopify emulator, over real HTTP on 127.0.0.1: what is Shopify's
own.

What every marketplace shares (credentials, throttling, token refresh, scans, pushes, orders,
webhooks) is a scenario of test_contract.py.
"""

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from channels.adapters import build_adapter
from channels.adapters.base import (
    AdapterError,
    CredentialsError,
    OrderNumbersMalformed,
    OrderState,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    RemoteOrderLine,
    UploadProduct,
    UploadVariant,
    WebhookRejected,
)
from channels.adapters.http import RetryPolicy
from channels.adapters.shopify import client
from channels.adapters.shopify.adapter import ShopifyAdapter, listings_from_product
from channels.adapters.shopify.client import webhook_hmac
from channels.adapters.shopify.credentials import ShopifyCredentials
from channels.adapters.shopify.orders import (
    FINANCIAL_STATUSES,
    FULFILLMENT_STATUSES,
    STATUS_TABLE,
    order_from_node,
)
from channels.emulators.base import Emulator, Reply, Request
from channels.emulators.shopify import ShopifyEmulator, parse, query_cost
from tests.channels.builders import grid_item, shop_item
from tests.channels.conftest import FAST_RETRY

GRAPHQL = "/admin/api/2026-04/graphql.json"


class Clock:
    """A settable emulator clock, so update times are chosen by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shopify() -> Iterator[ShopifyEmulator]:
    """A small shop: 40 products, about a third of them with options."""
    with ShopifyEmulator(items=40, seed=7) as emulator:
        yield emulator


def adapter_for(emulator: ShopifyEmulator, **overrides: Any) -> ShopifyAdapter:
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return ShopifyAdapter(**options)


def all_listings(adapter: ShopifyAdapter, **kwargs: Any) -> list[RemoteListing]:
    return [listing for page in adapter.iter_listing_pages(**kwargs) for listing in page]


def by_ref(listings: list[RemoteListing], attribute: str) -> dict[tuple[str, str], Any]:
    return {(x.item_id, x.variant_id): getattr(x, attribute) for x in listings}


def writes(emulator: ShopifyEmulator, operation: str) -> list[dict[str, Any]]:
    """Variables of every call to one GraphQL operation that reached the emulator."""
    return [
        call.body["variables"]
        for call in emulator.log.writes_to(GRAPHQL)
        if f"{operation}(" in call.body["query"] or f"mutation {operation}" in call.body["query"]
    ]


TEE = UploadProduct(
    name="Omni Test Tee",
    description="Soft cotton.\n\nMachine wash <40°C.",
    category="T-Shirts",
    brand="Northwind",
    images=("https://cdn.example.com/tee.png",),
    weight_kg=Decimal("0.25"),
    dimensions_cm=(Decimal("30"), Decimal("20"), Decimal("2.5")),
    is_active=True,
    option_names=("Color", "Size"),
    variants=(
        UploadVariant("OT-BLK-M", Decimal("19.90"), 5, {"Color": "Black", "Size": "M"}, "0001"),
        UploadVariant("OT-BLK-L", Decimal("19.90"), 6, {"Color": "Black", "Size": "L"}),
        UploadVariant("OT-WHT-M", Decimal("21"), 7, {"Color": "White", "Size": "M"}),
    ),
)


# -- signing ----------------------------------------------------------------------------------


def test_webhook_hmac_matches_a_vector_computed_by_hand():
    # Shopify has no request signature: API calls carry only the X-Shopify-Access-Token header
    # over HTTPS. What Shopify signs is its webhooks: X-Shopify-Hmac-SHA256 is the base64
    # HMAC-SHA256 of the raw body, keyed with the app's client secret. Computed once in a shell:
    #   SECRET='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'
    #   BODY='{"id":820982911946154508,"name":"#9999","financial_status":"paid"}'
    #   printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
    # and again with python3 base64.b64encode(hmac.new(key, body, sha256).digest()).
    body = b'{"id":820982911946154508,"name":"#9999","financial_status":"paid"}'

    signature = webhook_hmac(secret="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", body=body)

    assert signature == "yIH8zW2slfDxo3Hska1TMRfKJejB/NLR4hAfMoIvoG8="


def test_every_query_stays_under_shopifys_1000_point_limit():
    # Costs by Shopify's documented rules (objects 1, connections 2 + first x node), as the
    # emulator calculates them, at the page sizes the adapter uses.
    adapter = ShopifyAdapter
    costs = {
        "products": (client.PRODUCTS, {"first": adapter.limits.page_size, "variantsFirst": 20}),
        "variants": (client.PRODUCT_VARIANTS, {}),
        "lookup": (client.LOOKUP, {"ids": ["x"] * adapter.limits.detail_ids_per_call}),
        "orders": (client.ORDERS, {"first": adapter.limits.order_ids_per_call, "linesFirst": 10}),
        "lines": (client.ORDER_LINES, {}),
        "check": (client.CHECK, {}),
    }

    assert {name: query_cost(parse(q), v) for name, (q, v) in costs.items()} == {
        "products": 923,
        "variants": 253,
        "lookup": 500,
        "orders": 857,
        "lines": 503,
        "check": 2,
    }


# -- credentials --------------------------------------------------------------------------------


def test_wrong_credentials_are_refused_in_shopifys_words(shopify):
    # The contract suite checks that wrong credentials change nothing; here, what Shopify says.
    adapter = adapter_for(shopify, credentials=shopify.wrong_credentials())
    item_id, variant_id = next(iter(shopify.listing_quantities()))

    with pytest.raises(CredentialsError) as refused:
        adapter.check_credentials()
    assert "refused the access token (HTTP 401)" in str(refused.value)
    assert "client secret" in str(refused.value)
    with pytest.raises(CredentialsError):
        adapter.update_quantities([QuantityUpdate(item_id, variant_id, 999)])
    assert shopify.update_calls("stock") == 0


def test_a_wrong_token_without_refresh_token_asks_to_reconnect(shopify):
    credentials = {**shopify.credentials, "access_token": "shpat_wrong", "refresh_token": ""}

    with pytest.raises(CredentialsError, match="reconnect the shop") as refused:
        adapter_for(shopify, credentials=credentials).check_credentials()

    assert refused.value.code == "http_401"
    assert "shpat_wrong" not in str(refused.value)


def test_an_unknown_location_is_a_credentials_error(shopify):
    credentials = {**shopify.credentials, "location_id": "12345"}

    with pytest.raises(CredentialsError, match="no location gid://shopify/Location/12345"):
        adapter_for(shopify, credentials=credentials).check_credentials()


def test_a_bare_location_id_is_read_as_its_gid():
    # The contract suite checks that secrets never show; here, Shopify's location ids.
    credentials = ShopifyCredentials(
        access_token="sekrit-token", location_id=42, client_secret="sekrit-secret"
    )

    assert credentials.location_id == "gid://shopify/Location/42"


def test_invalid_credentials_name_the_fields_but_not_the_values(shopify):
    with pytest.raises(CredentialsError) as refused:
        build_adapter(
            "shopify",
            base_url=shopify.base_url,
            credentials={
                "access_token": "sekrit",
                "location_id": "main warehouse",
                "refresh_token": "sekrit-refresh",
            },
        )

    message = str(refused.value)
    assert "location_id" in message
    assert "client_secret" in message
    assert "sekrit" not in message
    with pytest.raises(CredentialsError, match="client_id is required with a refresh_token"):
        build_adapter(
            "shopify",
            base_url=shopify.base_url,
            credentials={**shopify.credentials, "client_id": ""},
        )


def test_a_channel_without_its_shop_address_is_told_so(shopify):
    # The contract suite checks that the registry builds a working adapter; Shopify has no
    # shared production host to fall back to.
    unset = build_adapter("shopify", base_url="", credentials=shopify.credentials)
    with pytest.raises(AdapterError, match="no shop address") as failed:
        unset.check_credentials()
    assert failed.value.code == "base_url"


class MovedShop(Emulator):
    """A shop address that now redirects every call elsewhere."""

    name = "moved"

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def handle(self, request: Request) -> Reply:
        return Reply(301, b"", (("Location", self.target + request.path),))


def test_a_redirect_is_reported_and_the_token_never_follows_it(shopify):
    with MovedShop(shopify.base_url) as moved:
        adapter = adapter_for(shopify, base_url=moved.base_url)

        with pytest.raises(
            AdapterError, match="redirected CheckCredentials to 127.0.0.1"
        ) as failed:
            adapter.check_credentials()

    assert failed.value.code == "http_301"
    assert shopify.log.count(GRAPHQL) == 0


# -- reading listings ----------------------------------------------------------------------------


def test_full_iteration_returns_every_listing_as_the_shop_holds_it(shopify):
    adapter = adapter_for(shopify)

    listings = all_listings(adapter)

    assert by_ref(listings, "quantity") == shopify.listing_quantities()
    assert by_ref(listings, "price") == shopify.listing_prices()
    assert {listing.status for listing in listings} == {"live", "inactive"}
    assert all(listing.updated_at.tzinfo is UTC for listing in listings)
    optioned = next(listing for listing in listings if listing.variant_id)
    product = shopify.item(optioned.item_id)
    variant = next(v for v in product["variants"] if v["id"] == optioned.variant_id)
    assert optioned.title == f"{product['title']} - {' / '.join(variant['options'].values())}"
    plain = next(listing for listing in listings if not listing.variant_id)
    assert plain.title == shopify.item(plain.item_id)["title"]


def test_iteration_pages_40_products_per_call():
    with ShopifyEmulator(items=90, seed=3) as emulator:
        adapter = adapter_for(emulator)

        pages = list(adapter.iter_listing_pages())

        assert [len({x.item_id for x in page}) for page in pages] == [40, 40, 10]
        assert adapter.stats.calls == 3


def test_a_product_with_many_variants_is_read_in_full():
    with ShopifyEmulator(seed=1) as emulator:
        # 45 variants: a page of 20, then 25 more
        item_id = emulator.put_item(grid_item("Big Grid Tee", 9, 5, sku="BIG"))
        adapter = adapter_for(emulator)

        listings = all_listings(adapter)

        assert len(listings) == 45
        assert by_ref(listings, "quantity") == emulator.listing_quantities()
        assert {listing.item_id for listing in listings} == {item_id}
        assert adapter.stats.calls == 2  # one page of products, one more page of variants


def test_incremental_iteration_returns_only_changed_products():
    clock = Clock(1_790_000_000.0)
    with ShopifyEmulator(items=30, seed=5, clock=clock) as emulator:
        # given: a watermark, then one product renamed and one deleted ten seconds later
        watermark = datetime.fromtimestamp(clock.now, tz=UTC)
        clock.now += 10
        changed, deleted = emulator.item_ids()[:2]
        emulator.touch_item(changed, name="Renamed Tee")
        emulator.remove_item(deleted)
        adapter = adapter_for(emulator)
        # when
        since = all_listings(adapter, updated_since=watermark)
        full = all_listings(adapter)
        # then: Shopify cannot list deleted products, so only the full scan misses it
        assert {x.item_id for x in since} == {changed}
        assert all(x.title.startswith("Renamed Tee") for x in since)
        assert deleted not in {x.item_id for x in full}
        assert writes(emulator, "Products")[0]["query"] == "updated_at:>='2026-09-21T14:13:20Z'"


def test_a_spent_query_budget_is_waited_for_not_failed():
    with ShopifyEmulator(items=60, seed=4, bucket_size=1000, restore_rate=10_000) as emulator:
        # given: another client of the same app has just spent the shop's whole budget
        emulator.spend(1000)
        adapter = adapter_for(emulator)
        # when
        listings = all_listings(adapter)
        # then: refused once (THROTTLED, HTTP 200), retried after the bucket refilled
        assert by_ref(listings, "quantity") == emulator.listing_quantities()
        assert emulator.throttled >= 1
        assert adapter.stats.retries == emulator.throttled


def test_endless_throttling_in_the_body_is_reported_as_throttled_after_the_cost_wait():
    with ShopifyEmulator(seed=1, throttle_style="body") as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.05)
        adapter = adapter_for(emulator, retry=RetryPolicy(attempts=3, base_delay=1, max_delay=1))

        with pytest.raises(AdapterError) as failed:
            adapter.check_credentials()

        assert failed.value.code == "THROTTLED"
        assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)
        # The wait came from the cost figures ((requested - available) / restoreRate = 0.05 s),
        # not from our own 1 s schedule.
        assert 0.1 <= adapter.stats.seconds < 1


def test_parsers_map_the_reference_payloads():
    # The products and order examples of the reference (§4.8), as Shopify returns them.
    product = {
        "id": "gid://shopify/Product/9001",
        "title": "Linen Shirt",
        "status": "ACTIVE",
        "updatedAt": "2025-01-02T03:04:05Z",
        "hasOnlyDefaultVariant": False,
    }
    variant = {
        "id": "gid://shopify/ProductVariant/7001",
        "sku": "LIN-WHT-M",
        "title": "White / M",
        "price": "49.00",
        "inventoryQuantity": 12,
    }
    order = {
        "id": "gid://shopify/Order/5001",
        "name": "#1042",
        "createdAt": "2025-01-03T10:00:00Z",
        "updatedAt": "2025-01-03T11:00:00Z",
        "cancelledAt": None,
        "cancelReason": None,
        "closed": False,
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "paymentGatewayNames": ["shopify_payments"],
        "totalPriceSet": {"shopMoney": {"amount": "98.00", "currencyCode": "USD"}},
        "fulfillments": [],
        "lineItems": {
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/3001",
                    "sku": "LIN-WHT-M",
                    "name": "Linen Shirt - White / M",
                    "quantity": 2,
                    "variant": {"id": "gid://shopify/ProductVariant/7001"},
                    "product": {"id": "gid://shopify/Product/9001", "hasOnlyDefaultVariant": False},
                    "discountedUnitPriceAfterAllDiscountsSet": {"shopMoney": {"amount": "49.00"}},
                }
            ]
        },
    }

    [listing] = listings_from_product(product, [variant])
    remote = order_from_node(order)

    assert listing == RemoteListing(
        "9001",
        "7001",
        "LIN-WHT-M",
        "Linen Shirt - White / M",
        Decimal("49.00"),
        12,
        "live",
        datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert (remote.order_number, remote.order_id, remote.status, remote.state) == (
        "#1042",
        "5001",
        "PAID/UNFULFILLED",
        OrderState.PAID,
    )
    assert (remote.currency, remote.total) == ("USD", Decimal("98.00"))
    assert remote.lines == (
        RemoteOrderLine(
            "3001", "9001", "7001", "LIN-WHT-M", "Linen Shirt - White / M", 2, Decimal("49.00")
        ),
    )
    [plain] = listings_from_product(
        {**product, "hasOnlyDefaultVariant": True, "status": "DRAFT"}, [variant]
    )
    assert (plain.variant_id, plain.title, plain.status) == ("", "Linen Shirt", "inactive")
    # Shopify may leave the financial status null: the order still comes in, flagged
    odd = order_from_node({**order, "displayFinancialStatus": None})
    assert (odd.status, odd.state, odd.status_known) == ("/UNFULFILLED", OrderState.UNPAID, False)
    assert remote.status_known


# -- creating products ---------------------------------------------------------------------------


def test_create_product_with_variants_is_returned_by_the_next_iteration(shopify):
    adapter = adapter_for(shopify)

    created = adapter.create_product(TEE)

    assert [(c.sku, c.title, c.price, c.quantity, c.status) for c in created] == [
        ("OT-BLK-M", "Omni Test Tee - Black / M", Decimal("19.90"), 5, "live"),
        ("OT-BLK-L", "Omni Test Tee - Black / L", Decimal("19.90"), 6, "live"),
        ("OT-WHT-M", "Omni Test Tee - White / M", Decimal("21.00"), 7, "live"),
    ]
    assert set(by_ref(created, "sku")) <= set(by_ref(all_listings(adapter), "sku"))
    product = shopify.item(created[0].item_id)
    assert (product["vendor"], product["productType"]) == ("Northwind", "T-Shirts")
    assert product["descriptionHtml"] == "<p>Soft cotton.</p><p>Machine wash &lt;40°C.</p>"
    assert product["images"] == ["https://cdn.example.com/tee.png"]
    assert product["options"] == [("Color", ["Black", "White"]), ("Size", ["M", "L"])]
    assert [(v["barcode"], v["weight_kg"]) for v in product["variants"]] == [
        ("0001", Decimal("0.25")),
        ("", Decimal("0.25")),
        ("", Decimal("0.25")),
    ]
    assert len(writes(shopify, "productSet")) == 1


def test_create_product_without_options_is_one_listing_without_variant_id(shopify):
    mug = UploadProduct(
        name="Omni Mug",
        description="",
        category="Mugs",
        brand="",
        images=(),
        weight_kg=None,
        dimensions_cm=None,
        is_active=False,
        variants=(UploadVariant("MUG-1", Decimal("8"), 12),),
    )

    created = adapter_for(shopify).create_product(mug)

    assert [(c.variant_id, c.sku, c.title, c.quantity, c.status) for c in created] == [
        ("", "MUG-1", "Omni Mug", 12, "inactive")
    ]
    assert shopify.listing_quantities()[(created[0].item_id, "")] == 12


def test_create_product_refuses_bad_variants_before_calling_shopify(shopify):
    twins = UploadProduct(
        name="Twins",
        description="",
        category="",
        brand="",
        images=(),
        weight_kg=None,
        dimensions_cm=None,
        is_active=True,
        option_names=("Color",),
        variants=(
            UploadVariant("T-1", Decimal("5"), 1, {"Color": "Red"}),
            UploadVariant("T-2", Decimal("5"), 1, {"Color": "Red"}),
        ),
    )
    before = shopify.item_ids()

    with pytest.raises(AdapterError, match="same options") as refused:
        adapter_for(shopify).create_product(twins)

    assert not refused.value.retryable
    assert shopify.item_ids() == before
    assert shopify.log.count(GRAPHQL) == 0


def test_create_product_refused_by_shopify_says_why_and_creates_nothing(shopify):
    product = UploadProduct(**{**_fields(TEE), "images": ("ftp://files.example.com/tee.png",)})
    before = shopify.item_ids()

    with pytest.raises(AdapterError, match="Image URL is invalid") as refused:
        adapter_for(shopify).create_product(product)

    assert refused.value.code == "product_set"
    assert shopify.item_ids() == before


def _fields(product: UploadProduct) -> dict[str, Any]:
    return {name: getattr(product, name) for name in UploadProduct.__slots__}


# -- pushing quantities and prices ----------------------------------------------------------------


def test_update_quantities_for_600_variants_makes_three_calls():
    with ShopifyEmulator(seed=2) as emulator:
        # given: one product with 20 colours x 30 sizes
        item_id = emulator.put_item(grid_item("Huge Grid Tee", 20, 30, sku="HUGE"))
        variants = [v["id"] for v in emulator.item(item_id)["variants"]]
        updates = [QuantityUpdate(item_id, v, n) for n, v in enumerate(variants)]
        # when
        results = adapter_for(emulator).update_quantities(updates)
        # then
        calls = writes(emulator, "inventorySetQuantities")
        assert emulator.update_calls("stock") == math.ceil(600 / 250)
        assert sorted(len(call["input"]["quantities"]) for call in calls) == [100, 250, 250]
        assert all(q["changeFromQuantity"] is None for c in calls for q in c["input"]["quantities"])
        assert len({call["idempotencyKey"] for call in calls}) == 3
        assert all(result.ok for result in results)
        quantities = emulator.listing_quantities()
        assert {v: quantities[(item_id, v)] for v in variants} == {
            v: n for n, v in enumerate(variants)
        }


def test_a_refused_listing_fails_alone_and_the_rest_of_its_call_still_goes(shopify):
    # given: one variant no longer stocked at the location, one unknown, one misattributed
    listings = all_listings(adapter_for(shopify))
    first, unstocked, third = listings[:3]
    other_product = next(x for x in listings if x.item_id != first.item_id)
    shopify.unstock(unstocked.item_id, unstocked.variant_id)
    updates = [
        QuantityUpdate(first.item_id, first.variant_id, 11),
        QuantityUpdate(unstocked.item_id, unstocked.variant_id, 12),
        QuantityUpdate(third.item_id, third.variant_id, 13),
        QuantityUpdate("8999999999999", "", 14),
        QuantityUpdate(other_product.item_id, first.variant_id or "44000000000001", 15),
        QuantityUpdate("not-a-number", "", 16),
    ]
    # when
    results = adapter_for(shopify).update_quantities(updates)
    # then
    assert [result.ok for result in results] == [True, False, True, False, False, False]
    assert "not stocked at the location" in results[1].error
    assert "not found on Shopify" in results[3].error
    assert "is not part of product" in results[4].error
    assert "not a Shopify" in results[5].error
    quantities = shopify.listing_quantities()
    assert quantities[(first.item_id, first.variant_id)] == 11
    assert quantities[(third.item_id, third.variant_id)] == 13
    assert quantities[(unstocked.item_id, unstocked.variant_id)] != 12
    # Shopify changes none of a call's rows when it refuses one: refused once, then resent.
    assert len(writes(shopify, "inventorySetQuantities")) == 2
    assert shopify.update_calls("stock") == 1


def test_update_prices_one_call_per_product_with_shopifys_own_refusals(shopify):
    # given: a product with 300 variants, a product without options, a bad variant id
    big = shopify.put_item(grid_item("Price Grid Tee", 15, 20, sku="PRIC"))
    mug = shopify.put_item(shop_item("Price Mug", "PM-1"))
    variants = [v["id"] for v in shopify.item(big)["variants"]]
    updates = [PriceUpdate(big, v, Decimal("7.50")) for v in variants]
    updates += [
        PriceUpdate(mug, "", Decimal("4.25")),
        PriceUpdate(mug, "44999999999999", Decimal("1")),
        PriceUpdate(mug, "", Decimal("-1")),
    ]
    # when
    results = adapter_for(shopify).update_prices(updates)
    # then
    assert all(result.ok for result in results[:301])
    assert results[301] == PushResult(mug, "44999999999999", ok=False, error=results[301].error)
    assert "Product variant does not exist" in results[301].error
    assert not results[302].ok
    assert "not a valid price" in results[302].error
    prices = shopify.listing_prices()
    assert {prices[(big, v)] for v in variants} == {Decimal("7.50")}
    assert prices[(mug, "")] == Decimal("4.25")
    assert sorted(
        len(call["variants"]) for call in writes(shopify, "productVariantsBulkUpdate")
    ) == [2, 50, 250]


# -- catalog pushes -----------------------------------------------------------------------------


def test_update_product_overwrites_only_synced_fields(shopify):
    # given
    adapter = adapter_for(shopify)
    created = adapter.create_product(TEE)
    item_id = created[0].item_id
    adapter.set_active(item_id, False)
    changed = UploadProduct(
        **{
            **_fields(TEE),
            "name": "Omni Better Tee",
            "brand": "Kinfolk",
            "weight_kg": Decimal("0.3"),
            "is_active": True,  # activation is set_active's job, not update_product's
            "variants": (
                UploadVariant("ot-blk-m ", Decimal("24.00"), 0, {"Color": "Black", "Size": "M"}),
                UploadVariant("OT-WHT-M", Decimal("25.00"), 0, {"Color": "White", "Size": "M"}),
            ),
        }
    )
    # when
    adapter.update_product(item_id, changed)
    # then
    product = shopify.item(item_id)
    assert (product["title"], product["vendor"], product["status"]) == (
        "Omni Better Tee",
        "Kinfolk",
        "DRAFT",
    )
    assert [(v["sku"], v["price"], v["quantity"], v["weight_kg"]) for v in product["variants"]] == [
        ("ot-blk-m ", Decimal("24.00"), 5, Decimal("0.3")),
        ("OT-BLK-L", Decimal("19.90"), 6, Decimal("0.25")),
        ("OT-WHT-M", Decimal("25.00"), 7, Decimal("0.3")),
    ]
    [update] = writes(shopify, "productUpdate")[-1:]
    assert set(update["product"]) == {"id", "title", "descriptionHtml", "vendor", "productType"}


def test_add_variants_extends_the_options_and_lists_the_new_ones(shopify):
    adapter = adapter_for(shopify)
    item_id = adapter.create_product(TEE)[0].item_id
    navy = UploadVariant("OT-NVY-M", Decimal("22"), 4, {"Color": "Navy", "Size": "M"})

    created = adapter.add_variants(item_id, TEE, [navy])

    assert [(c.sku, c.title, c.price, c.quantity) for c in created] == [
        ("OT-NVY-M", "Omni Test Tee - Navy / M", Decimal("22.00"), 4)
    ]
    assert shopify.item(item_id)["options"][0] == ("Color", ["Black", "White", "Navy"])
    assert by_ref(created, "sku").items() <= by_ref(all_listings(adapter), "sku").items()


def test_add_variants_with_an_unknown_option_is_refused_with_shopifys_reason(shopify):
    adapter = adapter_for(shopify)
    item_id = adapter.create_product(TEE)[0].item_id
    before = shopify.item(item_id)["variants"]
    fit = UploadVariant("OT-SLIM", Decimal("22"), 1, {"Color": "Black", "Size": "M", "Fit": "Slim"})
    product = UploadProduct(**{**_fields(TEE), "option_names": ("Color", "Size", "Fit")})

    with pytest.raises(AdapterError, match="Option does not exist: Fit"):
        adapter.add_variants(item_id, product, [fit])

    assert shopify.item(item_id)["variants"] == before


def test_set_active_and_delete_twice_have_one_effect(shopify):
    adapter = adapter_for(shopify)
    item_id = adapter.create_product(TEE)[0].item_id

    adapter.set_active(item_id, False)
    assert {x.status for x in all_listings(adapter) if x.item_id == item_id} == {"inactive"}
    adapter.set_active(item_id, True)
    assert {x.status for x in all_listings(adapter) if x.item_id == item_id} == {"live"}
    adapter.delete_product(item_id)
    adapter.delete_product(item_id)  # e.g. a task delivered twice: no error, nothing more

    assert item_id not in shopify.item_ids()
    assert item_id not in {x.item_id for x in all_listings(adapter)}


# -- orders ------------------------------------------------------------------------------------


def test_status_table_covers_every_shopify_status_combination():
    assert len(STATUS_TABLE) == len(FINANCIAL_STATUSES) * len(FULFILLMENT_STATUSES) * 3
    assert set(STATUS_TABLE.values()) == set(OrderState)
    assert STATUS_TABLE["PENDING/UNFULFILLED"] is OrderState.UNPAID
    assert STATUS_TABLE["EXPIRED/UNFULFILLED"] is OrderState.UNPAID
    assert STATUS_TABLE["AUTHORIZED/UNFULFILLED"] is OrderState.PAID
    assert STATUS_TABLE["PAID/ON_HOLD"] is OrderState.PAID
    assert STATUS_TABLE["PENDING/FULFILLED"] is OrderState.SHIPPED  # cash on delivery
    assert STATUS_TABLE["PAID/PARTIALLY_FULFILLED/CLOSED"] is OrderState.DELIVERED
    assert STATUS_TABLE["PAID/FULFILLMENT_NOT_REQUIRED"] is OrderState.DELIVERED
    assert STATUS_TABLE["REFUNDED/UNFULFILLED"] is OrderState.CANCELLED
    assert STATUS_TABLE["VOIDED/UNFULFILLED/CLOSED"] is OrderState.CANCELLED
    assert STATUS_TABLE["REFUNDED/FULFILLED/CLOSED"] is OrderState.RETURNED
    assert STATUS_TABLE["CANCELLED/PAID/FULFILLED"] is OrderState.CANCELLED


def test_orders_go_through_every_state(shopify):
    # given: an order of a product with options and one without
    adapter = adapter_for(shopify)
    listings = all_listings(adapter)
    optioned = next(x for x in listings if x.variant_id)
    plain = next(x for x in listings if not x.variant_id)
    number = shopify.create_order(
        [(optioned.item_id, optioned.variant_id, 2), (plain.item_id, "", 1)], state="unpaid"
    )
    seen, downloaded = [], {}
    # when: the order moves on, and each time it is downloaded by number
    for state in ("unpaid", "paid", "shipped", "delivered", "returned", "cancelled"):
        if state != "unpaid":
            shopify.move_order(number, state)
        [order] = adapter.get_orders([number])
        seen.append((order.state, order.status))
        downloaded[state] = order
    # then
    assert seen == [
        (OrderState.UNPAID, "PENDING/UNFULFILLED"),
        (OrderState.PAID, "PAID/UNFULFILLED"),
        (OrderState.SHIPPED, "PAID/FULFILLED"),
        (OrderState.DELIVERED, "PAID/FULFILLED/CLOSED"),
        (OrderState.RETURNED, "REFUNDED/FULFILLED/CLOSED"),
        (OrderState.CANCELLED, "CANCELLED/REFUNDED/UNFULFILLED"),
    ]
    [order] = adapter.get_orders([number.lstrip("#")])  # staff may type the bare number
    assert [(x.item_id, x.variant_id, x.sku, x.quantity, x.unit_price) for x in order.lines] == [
        (optioned.item_id, optioned.variant_id, optioned.sku, 2, optioned.price),
        (plain.item_id, "", plain.sku, 1, plain.price),
    ]
    assert (order.total, order.currency) == (optioned.price * 2 + plain.price, "USD")
    assert order.cancel_reason == "CUSTOMER"
    shipped = downloaded["shipped"]
    assert (shipped.courier, shipped.cancel_reason) == ("DHL Express", "")
    assert shipped.tracking_number


def test_get_orders_leaves_unknown_numbers_out(shopify):
    item_id = shopify.item_ids()[0]
    variant = (
        ""
        if (item_id, "") in shopify.listing_quantities()
        else shopify.item(item_id)["variants"][0]["id"]
    )
    number = shopify.create_order([(item_id, variant, 1)], state="paid")

    orders = adapter_for(shopify).get_orders(["#99999", number, "  "])

    assert [order.order_number for order in orders] == [number]
    with pytest.raises(OrderNumbersMalformed):  # would change the search, never a name
        adapter_for(shopify).get_orders([number, "#1 OR name:'#2'"])


def test_iter_orders_returns_the_window_page_by_page(shopify):
    # given: 20 orders updated in the window, one before it and one after it
    clock_now = datetime.now(UTC).replace(microsecond=0)
    start, end = clock_now - timedelta(hours=2), clock_now - timedelta(hours=1)
    mug = shopify.put_item(shop_item("Order Mug", "OM-1"))
    inside = [
        shopify.create_order([(mug, "", 1)], state="paid", at=start.timestamp() + n * 60)
        for n in range(20)
    ]
    shopify.create_order([(mug, "", 1)], state="paid", at=start.timestamp() - 1)
    shopify.create_order([(mug, "", 1)], state="paid", at=end.timestamp())
    adapter = adapter_for(shopify)
    # when
    pages = list(adapter.iter_orders(updated_from=start, updated_to=end))
    # then
    assert [len(page) for page in pages] == [15, 5]
    assert [order.order_number for page in pages for order in page] == inside
    assert adapter.stats.calls == 2


def test_an_order_with_many_lines_is_read_in_full(shopify):
    item_id = shopify.put_item(grid_item("Order Grid Tee", 3, 4, sku="ORDE"))
    variants = [v["id"] for v in shopify.item(item_id)["variants"]]
    number = shopify.create_order([(item_id, v, 1) for v in variants], state="paid")
    adapter = adapter_for(shopify)

    [order] = adapter.get_orders([number])

    assert [line.variant_id for line in order.lines] == variants
    assert adapter.stats.calls == 2  # the order with 10 lines, then the other 2


# -- webhooks ------------------------------------------------------------------------------------


def webhook_order(emulator: ShopifyEmulator) -> str:
    item_id = emulator.put_item(shop_item("Hook Mug", "HM-1"))
    return emulator.create_order([(item_id, "", 1)], state="paid")


def test_a_signed_webhook_is_accepted_and_keyed_by_its_delivery_id(shopify):
    number = webhook_order(shopify)
    headers, body = shopify.signed_webhook(number, "https://omni.example.com/hooks/shopify")
    adapter = adapter_for(shopify)

    event = adapter.verify_webhook(url="https://anywhere", headers=headers, body=body)
    again = adapter.verify_webhook(
        url="https://anywhere", headers={k.lower(): v for k, v in headers.items()}, body=body
    )

    assert (event.topic, event.order_number) == ("order_status", number)
    assert event.delivery_id == headers["X-Shopify-Webhook-Id"]
    assert again.delivery_id == event.delivery_id  # a re-delivery: one event
    assert event.payload["financial_status"] == "paid"
    assert adapter.stats.calls == 0


def test_unsigned_or_wrongly_signed_webhooks_are_refused_with_401(shopify):
    number = webhook_order(shopify)
    headers, body = shopify.signed_webhook(number, "https://omni.example.com/hooks/shopify")
    adapter = adapter_for(shopify)
    unsigned = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-SHA256"}
    wrong_secret = adapter_for(shopify, credentials={**shopify.credentials, "client_secret": "x"})

    for attempt in (
        lambda: adapter.verify_webhook(url="u", headers=unsigned, body=body),
        lambda: adapter.verify_webhook(
            url="u", headers=headers, body=body.replace(b"paid", b"void")
        ),
        lambda: wrong_secret.verify_webhook(url="u", headers=headers, body=body),
    ):
        with pytest.raises(WebhookRejected) as refused:
            attempt()
        assert refused.value.status == 401


def test_a_signed_but_malformed_webhook_is_refused_with_400(shopify):
    adapter = adapter_for(shopify)
    secret = shopify.credentials["client_secret"]
    headers = {"X-Shopify-Topic": "orders/updated", "X-Shopify-Webhook-Id": "w-1"}

    for body in (b"not json", b"[1, 2]"):
        signed = {**headers, "X-Shopify-Hmac-SHA256": webhook_hmac(secret=secret, body=body)}
        with pytest.raises(WebhookRejected) as refused:
            adapter.verify_webhook(url="u", headers=signed, body=body)
        assert refused.value.status == 400
    body = b'{"name": "#1001"}'
    no_id = {"X-Shopify-Hmac-SHA256": webhook_hmac(secret=secret, body=body)}
    with pytest.raises(WebhookRejected, match="X-Shopify-Webhook-Id") as refused:
        adapter.verify_webhook(url="u", headers=no_id, body=body)
    assert refused.value.status == 400


# -- tokens --------------------------------------------------------------------------------------


def test_a_used_refresh_token_is_refused_with_shopifys_code(shopify):
    # The contract suite checks the refusal for every marketplace; here, Shopify's code.
    stale = shopify.credentials
    shopify.expire_access_tokens()
    adapter_for(shopify).check_credentials()  # refreshes: the stale refresh token is now spent
    shopify.expire_access_tokens()

    with pytest.raises(CredentialsError, match="refused the refresh token") as refused:
        adapter_for(shopify, credentials=stale).check_credentials()

    assert refused.value.code == "invalid_grant"
