"""TikTokShopAdapter and TokopediaAdapter against the TikTok emulator, over real HTTP: what is
TikTok's own.

What every marketplace shares (credentials, throttling, token refresh, scans, pushes, orders,
webhooks) is a scenario of test_contract.py.
"""

import dataclasses
import json
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
    QuantityUpdate,
    RemoteListing,
    UploadProduct,
    UploadVariant,
    WebhookRejected,
)
from channels.adapters.http import RetryPolicy
from channels.adapters.tiktok import adapter as tiktok_adapter_module
from channels.adapters.tiktok.adapter import (
    STATUS_TABLE,
    TikTokShopAdapter,
    TokopediaAdapter,
    listings_from_product,
    order_from_payload,
)
from channels.adapters.tiktok.client import (
    SEARCH_PRODUCTS,
    auth_base_url_for,
    sign_base_string,
    tiktok_error,
    tiktok_sign,
    webhook_signature,
)
from channels.emulators import tiktok as tiktok_emulator_module
from channels.emulators.tiktok import ORDER_STATUSES, TikTokShopEmulator, TokopediaEmulator
from tests.channels.builders import grid_item, shop_item
from tests.channels.conftest import FAST_RETRY

# A 1x1 transparent PNG: what the emulator serves as a product image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4b60000000049454e44ae426082"
)
WEBHOOK_URL = "https://omni.example/hooks/tiktok"


@pytest.fixture
def shop() -> Iterator[TikTokShopEmulator]:
    """A small TikTok shop: 30 products, about a third of them with several SKUs."""
    with TikTokShopEmulator(items=30, seed=7) as emulator:
        yield emulator


@pytest.fixture
def tokopedia() -> Iterator[TokopediaEmulator]:
    """A small shop bound to Tokopedia: its products are listed there too."""
    with TokopediaEmulator(items=20, seed=8) as emulator:
        yield emulator


def adapter_for(emulator: TikTokShopEmulator, **overrides: Any) -> TikTokShopAdapter:
    cls = TokopediaAdapter if isinstance(emulator, TokopediaEmulator) else TikTokShopAdapter
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return cls(**options)


def all_listings(adapter: TikTokShopAdapter, **kwargs: Any) -> list[RemoteListing]:
    return [listing for page in adapter.iter_listing_pages(**kwargs) for listing in page]


def ref(listing: RemoteListing) -> tuple[str, str]:
    return listing.item_id, listing.variant_id


def tee_upload(image_url: str, *, active: bool = True) -> UploadProduct:
    return UploadProduct(
        name="Omni Test Tee",
        description="Soft cotton.\nMachine wash.",
        category="Clothing > T-Shirts",
        brand="Northwind",
        images=(image_url,),
        weight_kg=Decimal("0.25"),
        dimensions_cm=(Decimal("30"), Decimal("20"), Decimal("2.5")),
        is_active=active,
        option_names=("Color", "Size"),
        variants=(
            UploadVariant("OT-BLK-M", Decimal("19.90"), 5, {"Color": "Black", "Size": "M"}),
            UploadVariant("OT-BLK-L", Decimal("19.90"), 6, {"Color": "Black", "Size": "L"}),
            UploadVariant(
                "OT-WHT-M", Decimal("21"), 7, {"Color": "White", "Size": "M"}, "012345678905"
            ),
        ),
    )


def window() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"updated_from": now - timedelta(hours=1), "updated_to": now + timedelta(minutes=5)}


# -- signing ----------------------------------------------------------------------------------


def test_signature_matches_the_official_example():
    # TikTok's documented example (reference §0): secret e59af819cc, GET Authorized Shops with
    # app_key=29a39d and timestamp=1623812664.
    params = {"app_key": "29a39d", "timestamp": "1623812664"}

    assert sign_base_string(path="/authorization/202309/shops", params=params) == (
        b"/authorization/202309/shopsapp_key29a39dtimestamp1623812664"
    )
    sign = tiktok_sign(app_secret="e59af819cc", path="/authorization/202309/shops", params=params)
    assert sign == "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"


def test_signature_of_a_call_with_a_body_matches_a_vector_computed_by_hand():
    # TikTok's documentation prints this base string for PUT /event/202309/webhooks (shop_cipher
    # sorts between app_key and timestamp, the raw body goes last) but no digest. Computed once
    # in a shell, outside the code under test, with the example's secret:
    #   S=e59af819cc
    #   BODY='{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}'
    #   BASE="/event/202309/webhooksapp_key68xu9ks5p4i8shop_cipherROW_xkMbgAAAeVAQra0eZWebFQq5aIKt
    #         timestamp1696909648${BODY}"   (one line)
    #   echo -n "${S}${BASE}${S}" | openssl dgst -sha256 -hmac "$S"
    body = b'{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}'
    params = {
        "timestamp": "1696909648",
        "app_key": "68xu9ks5p4i8",
        "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIKt",
        "sign": "ignored",
        "access_token": "ignored too",
    }

    base = sign_base_string(path="/event/202309/webhooks", params=params, body=body)
    sign = tiktok_sign(
        app_secret="e59af819cc", path="/event/202309/webhooks", params=params, body=body
    )

    assert base == (
        b"/event/202309/webhooksapp_key68xu9ks5p4i8shop_cipherROW_xkMbgAAAeVAQra0eZWebFQq5aIKt"
        b"timestamp1696909648" + body
    )
    assert sign == "a75b9c8cd57140cab6dc95bf31c37bd6ffface74210768b6517c0ff81659b0ba"


def test_a_multipart_body_is_left_out_of_the_signature():
    # echo -n "e59af819cc/product/202309/images/uploadapp_key68xu9ks5p4i8timestamp1696909648\
    #   e59af819cc" | openssl dgst -sha256 -hmac e59af819cc
    params = {"app_key": "68xu9ks5p4i8", "timestamp": "1696909648"}

    sign = tiktok_sign(
        app_secret="e59af819cc",
        path="/product/202309/images/upload",
        params=params,
        body=b"--boundary\r\n...image bytes...",
        multipart=True,
    )

    assert sign == "59c0e27af52d8d4cb8ab324f9e2f0a499557a320c3ff45627c14de243a731d8b"


def test_webhook_signature_matches_a_vector_computed_by_hand():
    # Authorization = HMAC-SHA256(app_secret, app_key + raw body), computed once in a shell:
    #   echo -n "68xu9ks5p4i8${WB}" | openssl dgst -sha256 -hmac e59af819cc
    body = (
        b'{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621",'
        b'"timestamp":1644412885,"data":{"order_id":"576461413038785752",'
        b'"order_status":"AWAITING_SHIPMENT","update_time":1644412885}}'
    )

    signature = webhook_signature(app_key="68xu9ks5p4i8", app_secret="e59af819cc", body=body)

    assert signature == "3f67ddd0af15077f0a2dbb669f655cee785ae8dc9c59bea41f88f191029e84ff"


def test_token_host_is_tiktoks_auth_host_in_production_and_the_api_host_otherwise():
    assert auth_base_url_for("https://open-api.tiktokglobalshop.com") == (
        "https://auth.tiktok-shops.com"
    )
    assert auth_base_url_for("http://127.0.0.1:9103/") == "http://127.0.0.1:9103"


@pytest.mark.parametrize(
    "message",
    [
        "The `x-tts-access-token` header is invalid",
        "access_token is invalid",
        "Invalid access token, please check",
    ],
)
def test_a_refused_access_token_under_36009004_asks_staff_to_reconnect(message):
    # 36009004 stands for many refusals, told apart by the message, however it words the token
    refused = tiktok_error(36009004, message, endpoint="/product/202309/products/search")
    assert isinstance(refused, CredentialsError)
    assert "reconnect the shop" in str(refused)


def test_values_are_signed_as_sent_after_url_decoding(shop):
    # A brand name with "+", "/" and a space is percent-encoded on the wire and signed decoded;
    # the emulator recomputes the signature from the decoded query and accepts it.
    client = adapter_for(shop)._client

    found = client.get_brands(brand_name="Basics Co+/x")

    assert found["brands"] == []
    assert shop.log.count("/product/202309/brands") == 1


# -- credentials -----------------------------------------------------------------------------


def test_a_wrong_app_secret_is_refused_with_tiktoks_code_and_words(shop):
    # The contract suite checks that wrong credentials change nothing; here, what TikTok says.
    adapter = adapter_for(shop, credentials=shop.wrong_credentials())
    item_id, variant_id = next(iter(shop.listing_quantities()))

    with pytest.raises(CredentialsError) as refused:
        adapter.check_credentials()
    assert "check the app secret" in str(refused.value)
    assert refused.value.code == "106001"
    with pytest.raises(CredentialsError):
        adapter.update_quantities([QuantityUpdate(item_id, variant_id or "1", 999)])
    assert shop.update_calls("stock") == 0


def test_a_shop_cipher_the_token_does_not_cover_is_refused_clearly(shop):
    adapter = adapter_for(shop, credentials={**shop.credentials, "shop_cipher": "ROW_other"})

    with pytest.raises(CredentialsError, match="shop cipher"):
        adapter.check_credentials()
    with pytest.raises(CredentialsError, match="check the shop cipher"):
        all_listings(adapter)


def test_invalid_credentials_name_the_fields_but_not_the_values(shop):
    with pytest.raises(CredentialsError) as refused:
        build_adapter(
            "tiktok_shop",
            base_url=shop.base_url,
            credentials={"app_key": "k", "app_secret": "sekrit", "access_token": "t", "x": 1},
        )

    assert "shop_cipher" in str(refused.value)
    assert "x: " in str(refused.value)
    assert "sekrit" not in str(refused.value)


# -- reading listings --------------------------------------------------------------------------


def test_full_iteration_returns_every_listing_as_the_shop_holds_it(shop):
    adapter = adapter_for(shop)

    listings = all_listings(adapter)

    assert {ref(lst): lst.quantity for lst in listings} == shop.listing_quantities()
    assert {ref(lst): lst.price for lst in listings} == shop.listing_prices()
    assert {lst.status for lst in listings} <= {"live", "inactive"}
    assert all(lst.updated_at.tzinfo is UTC for lst in listings)
    with_skus = [lst for lst in listings if lst.variant_id]
    assert with_skus, "the generated shop should have products with several SKUs"
    detail = shop.product(with_skus[0].item_id)
    names = [a["value_name"] for a in detail["skus"][0]["sales_attributes"]]
    assert with_skus[0].title == f"{detail['title']} - {', '.join(names)}"


def test_iteration_follows_page_tokens_and_fetches_details_only_for_several_skus():
    with TikTokShopEmulator(items=230, seed=3) as emulator:
        adapter = adapter_for(emulator)

        pages = list(adapter.iter_listing_pages())

        assert len(pages) == 3  # 100 + 100 + 30 products
        assert emulator.log.count(SEARCH_PRODUCTS) == 3
        several = {p for p in emulator.product_ids() if len(emulator.product(p)["skus"]) > 1}
        details = sum(
            emulator.log.count(f"/product/202309/products/{p}") for p in emulator.product_ids()
        )
        assert details == len(several)


def test_incremental_iteration_returns_only_changed_and_deleted_products(shop):
    # given: a scan watermark, then one product renamed and one deleted
    watermark = datetime.now(UTC)
    renamed, deleted = shop.product_ids("ACTIVATE")[:2]
    shop.touch_item(renamed, name="Renamed Product")
    shop.remove_item(deleted)
    adapter = adapter_for(shop)
    # when
    listings = all_listings(adapter, updated_since=watermark)
    # then
    assert {lst.item_id for lst in listings} == {renamed, deleted}
    assert all(
        lst.title.startswith("Renamed Product") for lst in listings if lst.item_id == renamed
    )
    assert {lst.status for lst in listings if lst.item_id == renamed} == {"live"}
    assert {lst.status for lst in listings if lst.item_id == deleted} == {"removed"}


def test_searches_over_the_result_cap_are_split_by_time_window(shop, monkeypatch):
    # TikTok returns at most 10,000 products per search; here the cap is 7 on both sides.
    monkeypatch.setattr(tiktok_emulator_module, "MAX_SEARCH_RESULTS", 7)
    monkeypatch.setattr(tiktok_adapter_module, "SEARCH_CAP", 7)
    adapter = adapter_for(shop)

    listings = all_listings(adapter)

    assert {ref(lst): lst.quantity for lst in listings} == shop.listing_quantities()
    assert len(listings) == len({ref(lst) for lst in listings})  # nothing seen twice


def test_endless_http_throttling_is_reported_with_tiktoks_code_after_its_retry_after():
    with TikTokShopEmulator(seed=1, throttle_style="http") as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.05)
        adapter = adapter_for(emulator, retry=RetryPolicy(attempts=3, base_delay=1, max_delay=1))

        with pytest.raises(AdapterError) as failed:
            adapter.check_credentials()

        assert failed.value.code == "36009002"
        assert "throttling" in str(failed.value)
        assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)
        # The server's Retry-After (0.05 s) was honoured, not our own 1 s schedule.
        assert 0.1 <= adapter.stats.seconds < 1


def test_parser_maps_a_fixed_tiktok_payload():
    # A Search Products entry and its Get Product detail, shaped as TikTok documents them.
    product = {
        "id": "1729592969712207008",
        "title": "Canvas Tote",
        "status": "ACTIVATE",
        "update_time": 1733300000,
        "skus": [
            {
                "id": "1729592969712207013",
                "seller_sku": " tote-nat ",
                "price": {"currency": "IDR", "tax_exclusive_price": "85000", "sale_price": "93500"},
                "inventory": [
                    {"warehouse_id": "7000000000000000001", "quantity": 42},
                    {"warehouse_id": "7000000000000000002", "quantity": 3},
                ],
            },
            {
                "id": "1729592969712207014",
                "seller_sku": "TOTE-BLK",
                "price": {"currency": "IDR", "sale_price": "90000"},
                "inventory": [],
            },
        ],
    }
    detail = {
        "skus": [
            {
                "id": "1729592969712207013",
                "sales_attributes": [{"name": "Color", "value_name": "Natural"}],
            },
            {
                "id": "1729592969712207014",
                "sales_attributes": [{"name": "Color", "value_name": "Black"}],
            },
        ]
    }
    when = datetime(2024, 12, 4, 8, 13, 20, tzinfo=UTC)

    natural, black = listings_from_product(product, detail, status="live")
    only_first = listings_from_product(
        product, detail, status="live", warehouse_id="7000000000000000001"
    )

    assert natural == RemoteListing(
        "1729592969712207008",
        "1729592969712207013",
        " tote-nat ",
        "Canvas Tote - Natural",
        Decimal("85000"),
        45,
        "live",
        when,
    )
    assert (black.title, black.price, black.quantity) == (
        "Canvas Tote - Black",
        Decimal("90000"),
        0,
    )
    assert only_first[0].quantity == 42


def test_stock_of_the_channels_warehouse_only_is_read_and_written(shop):
    # given: a single-SKU product stocked in two warehouses
    item_id = shop.put_item(shop_item("Two Place Mug", "MUG-2W"))
    sku_id = shop.product(item_id)["skus"][0]["id"]
    shop.set_stock(item_id, sku_id, {shop.warehouse_id: 5, shop.other_warehouse_id: 9})
    mine = adapter_for(shop, credentials={**shop.credentials, "warehouse_id": shop.warehouse_id})
    # when
    read = {ref(lst): lst.quantity for lst in all_listings(mine)}
    [pushed] = mine.update_quantities([QuantityUpdate(item_id, "", 11)])
    [unset] = adapter_for(shop).update_quantities([QuantityUpdate(item_id, "", 1)])
    # then
    assert read[(item_id, "")] == 5
    assert pushed.ok
    inventory = {
        w["warehouse_id"]: w["quantity"] for w in shop.product(item_id)["skus"][0]["inventory"]
    }
    assert inventory == {shop.warehouse_id: 11, shop.other_warehouse_id: 9}
    assert not unset.ok
    assert "Multiple warehouses detected" in unset.error


# -- creating products ---------------------------------------------------------------------------


def test_create_product_with_variants_is_returned_by_the_next_iteration(shop):
    # given
    image_url = shop.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = adapter_for(shop)
    # when
    created = adapter.create_product(tee_upload(image_url))
    # then
    assert [(c.sku, c.title, c.price, c.quantity, c.status) for c in created] == [
        ("OT-BLK-M", "Omni Test Tee - Black, M", Decimal("19.9"), 5, "live"),
        ("OT-BLK-L", "Omni Test Tee - Black, L", Decimal("19.9"), 6, "live"),
        ("OT-WHT-M", "Omni Test Tee - White, M", Decimal("21"), 7, "live"),
    ]
    assert {ref(c) for c in created} <= {ref(lst) for lst in all_listings(adapter)}
    detail = shop.product(created[0].item_id)
    assert detail["description"] == "<p>Soft cotton.</p><p>Machine wash.</p>"
    assert detail["brand"]["name"] == "Northwind"
    assert detail["package_dimensions"] == {
        "length": "30", "width": "20", "height": "3", "unit": "CENTIMETER"
    }  # fmt: skip
    assert detail["skus"][2]["identifier_code"] == {"code": "012345678905", "type": "UPC"}
    assert shop.log.count("/product/202309/images/upload") == 1


def test_create_an_inactive_product_without_variants(shop):
    image_url = shop.serve_file("/cdn/mug.png", PNG, "image/png")
    product = UploadProduct(
        name="Omni Mug",
        description="",
        category="853006",  # a TikTok category id typed into the POS category
        brand="No Such Brand",
        images=(image_url,),
        weight_kg=Decimal("0.35"),
        dimensions_cm=None,
        is_active=False,
        variants=(UploadVariant("MUG-1", Decimal("8"), 12),),
    )

    created = adapter_for(shop).create_product(product)

    assert [(c.variant_id, c.sku, c.title, c.quantity, c.status) for c in created] == [
        ("", "MUG-1", "Omni Mug", 12, "inactive")
    ]
    assert shop.product(created[0].item_id)["brand"] == {}


def test_create_product_refuses_an_unknown_category_before_changing_anything(shop):
    product = UploadProduct(
        name="Mystery",
        description="?",
        category="Spaceships",
        brand="",
        images=("http://127.0.0.1:9/none.png",),
        weight_kg=Decimal("1"),
        dimensions_cm=None,
        is_active=True,
        variants=(UploadVariant("X-1", Decimal("8"), 1),),
    )
    before = shop.product_ids()

    with pytest.raises(AdapterError, match="no category named 'Spaceships'"):
        adapter_for(shop).create_product(product)

    assert shop.product_ids() == before
    assert shop.log.writes == []


def test_create_product_refuses_variants_without_their_options(shop):
    product = tee_upload("http://127.0.0.1:9/none.png")
    broken = (UploadVariant("OT-X", Decimal("5"), 1, {"Color": "Red"}), *product.variants)

    with pytest.raises(AdapterError, match="'OT-X' of 'Omni Test Tee' has no Size"):
        adapter_for(shop).create_product(dataclasses.replace(product, variants=broken))
    assert shop.log.writes == []


# -- pushing quantities and prices ----------------------------------------------------------------


def test_update_quantities_makes_one_call_per_product_and_hundred_skus():
    with TikTokShopEmulator(seed=2) as emulator:
        # given: one product with 12 colours x 10 sizes, and two single-SKU products
        grid = emulator.put_item(grid_item("Big Grid Tee", 12, 10))
        mugs = [emulator.put_item(shop_item(f"Mug {n}", f"MUG-{n}")) for n in range(2)]
        skus = [s["id"] for s in emulator.product(grid)["skus"]]
        updates = [QuantityUpdate(grid, s, n) for n, s in enumerate(skus)]
        updates += [QuantityUpdate(m, "", 50 + n) for n, m in enumerate(mugs)]
        adapter = adapter_for(emulator)
        # when
        results = adapter.update_quantities(updates)
        # then
        assert all(result.ok for result in results)
        assert emulator.update_calls("stock") == 2 + 2  # 100 + 20 SKUs, then one per mug
        bodies = [c.body for c in emulator.log.writes if c.path.endswith("/inventory/update")]
        assert sorted(len(body["skus"]) for body in bodies) == [1, 1, 20, 100]
        quantities = emulator.listing_quantities()
        assert [quantities[(grid, s)] for s in skus] == list(range(120))
        assert [quantities[(m, "")] for m in mugs] == [50, 51]


def test_single_sku_ids_come_from_the_last_read_or_one_lookup(shop):
    plain = [k for k in shop.listing_quantities() if k[1] == ""][:3]
    adapter = adapter_for(shop)

    adapter.update_quantities([QuantityUpdate(i, "", 1) for i, _ in plain])
    lookups = adapter.stats.calls - shop.update_calls("stock")
    all_listings(adapter)
    before = adapter.stats.calls
    adapter.update_quantities([QuantityUpdate(i, "", 2) for i, _ in plain])

    assert lookups == 3  # one Get Product per product never read by this adapter
    assert adapter.stats.calls - before == 3  # after a scan: the three writes only
    assert {shop.listing_quantities()[key] for key in plain} == {2}


def test_per_sku_errors_fail_only_their_listings(shop):
    # given: a product with several SKUs, one update for a SKU that is not the product's
    item_id = next(i for i, v in shop.listing_quantities() if v)
    skus = [s["id"] for s in shop.product(item_id)["skus"]]
    updates = [QuantityUpdate(item_id, s, 7) for s in skus]
    updates.append(QuantityUpdate(item_id, "1729600000000099999", 7))
    # when
    results = adapter_for(shop).update_quantities(updates)
    # then
    assert [r.ok for r in results] == [True] * len(skus) + [False]
    assert "does not belong to this product" in results[-1].error
    assert {shop.listing_quantities()[(item_id, s)] for s in skus} == {7}
    assert shop.update_calls("stock") == 1


def test_a_refused_price_call_fails_its_product_only(shop):
    # given: two single-SKU products, one with its price locked by a promotion
    locked, free = [i for i, v in shop.listing_quantities() if not v][:2]
    shop.set_price_locked(locked)
    adapter = adapter_for(shop)
    # when
    results = adapter.update_prices(
        [
            PriceUpdate(locked, "", Decimal("5")),
            PriceUpdate(free, "", Decimal("7.50")),
            PriceUpdate("not-a-number", "", Decimal("1")),
            PriceUpdate(free, "", Decimal("0")),
        ]
    )
    # then
    assert [r.ok for r in results] == [False, True, False, False]
    assert "price is locked" in results[0].error
    assert "above 0" in results[3].error
    assert shop.listing_prices()[(free, "")] == Decimal("7.50")
    assert shop.update_calls("price") == 1


def test_pushes_through_errors_and_throttling_write_each_product_once(shop):
    # given: half of all calls fail, before the emulator acts on them. The faults are drawn
    # from one seeded stream that the concurrent pushes share, so a run of failures in it can
    # fall on one product: 12 attempts gave up on one in about 5% of runs, 20 in none of 150.
    targets = list(shop.listing_quantities())
    adapter = adapter_for(shop, retry=RetryPolicy(attempts=20, base_delay=0.002, max_delay=0.02))
    all_listings(adapter)  # SKU ids known: the writes are the only calls below
    shop.set_faults(error_rate=0.25, throttle_rate=0.25, retry_after=0.002)
    # when
    results = adapter.update_quantities([QuantityUpdate(i, v, 33) for i, v in targets])
    # then
    assert all(result.ok for result in results)
    assert set(shop.listing_quantities().values()) == {33}
    assert shop.update_calls("stock") == len({i for i, _ in targets})
    assert shop.log.faults["error"] + shop.log.faults["throttle"] > 0


def test_a_quantity_tiktok_cannot_take_fails_without_a_call(shop):
    item_id = next(i for i, v in shop.listing_quantities() if not v)

    [result] = adapter_for(shop).update_quantities([QuantityUpdate(item_id, "", 99_999)])

    assert not result.ok
    assert "below 99,999" in result.error
    assert shop.update_calls("stock") == 0
    with pytest.raises(ValueError, match="negative quantity"):
        adapter_for(shop).update_quantities([QuantityUpdate(item_id, "", -1)])


# -- catalog pushes -------------------------------------------------------------------------------


def test_update_product_overwrites_synced_fields_and_prices(shop):
    image_url = shop.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = adapter_for(shop)
    created = adapter.create_product(tee_upload(image_url))
    item_id = created[0].item_id
    original = tee_upload(image_url)
    changed = dataclasses.replace(
        original,
        name="Omni Test Tee v2",
        variants=tuple(dataclasses.replace(v, price=v.price + 1) for v in original.variants),
    )

    adapter.update_product(item_id, changed)

    detail = shop.product(item_id)
    assert detail["title"] == "Omni Test Tee v2"
    assert [s["price"]["tax_exclusive_price"] for s in detail["skus"]] == ["20.9", "20.9", "22"]
    edit = [c for c in shop.log.writes if c.path.endswith("/partial_edit")][0]
    assert set(edit.body) == {
        "title", "description", "category_id", "brand_id", "main_images", "package_weight",
        "package_dimensions",
    }  # fmt: skip


def test_add_variants_twice_adds_them_once(shop):
    image_url = shop.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = adapter_for(shop)
    product = tee_upload(image_url)
    item_id = adapter.create_product(product).pop().item_id
    new = [UploadVariant("OT-RED-S", Decimal("18"), 3, {"Color": "Red", "Size": "S"})]

    first = adapter.add_variants(item_id, product, new)
    again = adapter.add_variants(item_id, product, new)

    assert [(lst.sku, lst.title, lst.quantity) for lst in first] == [
        ("OT-RED-S", "Omni Test Tee - Red, S", 3)
    ]
    assert again == first
    assert len(shop.product(item_id)["skus"]) == 4


def test_add_variants_to_a_product_made_in_seller_center(shop):
    item_id = next(i for i, v in shop.listing_quantities() if v)
    detail = shop.product(item_id)
    names = [a["name"] for a in detail["skus"][0]["sales_attributes"]]
    new = UploadVariant("NEW-1", Decimal("9.50"), 2, dict.fromkeys(names, "Brand New"))
    product = dataclasses.replace(
        tee_upload("http://127.0.0.1:9/unused.png"), option_names=tuple(names), variants=(new,)
    )

    [added] = adapter_for(shop).add_variants(item_id, product, [new])

    after = shop.product(item_id)
    assert (added.sku, added.quantity, added.price) == ("NEW-1", 2, Decimal("9.5"))
    assert len(after["skus"]) == len(detail["skus"]) + 1
    assert after["skus"][:-1] == detail["skus"]  # the others kept as they were
    assert after["main_images"] == detail["main_images"]


def test_set_active_and_delete_have_one_effect_each(shop):
    item_id = shop.product_ids("ACTIVATE")[0]
    adapter = adapter_for(shop)
    watermark = datetime.now(UTC)

    adapter.set_active(item_id, False)
    adapter.set_active(item_id, False)
    assert shop.product(item_id)["product_status"] == "SELLER_DEACTIVATED"
    adapter.set_active(item_id, True)
    adapter.delete_product(item_id)
    adapter.delete_product(item_id)

    assert shop.product(item_id)["product_status"] == "DELETED"
    assert {lst.status for lst in all_listings(adapter, updated_since=watermark)} == {"removed"}
    with pytest.raises(AdapterError, match="could not list product"):
        adapter.set_active(item_id, True)


# -- orders ------------------------------------------------------------------------------------


def test_status_table_maps_every_tiktok_order_status():
    assert set(STATUS_TABLE) == set(ORDER_STATUSES)


@pytest.mark.parametrize("state", list(OrderState))
def test_an_order_in_each_state_comes_back_in_that_state(shop, state):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    number = shop.create_order([(item_id, variant_id, 2)], state=state)

    [order] = adapter_for(shop).get_orders([number])

    assert (order.order_number, order.state) == (number, state)
    assert order.lines[0].quantity == 2
    assert order.total == order.lines[0].unit_price * 2


def test_orders_are_listed_through_their_life_with_the_right_state(shop):
    # given
    (first, v1), (second, v2) = list(shop.listing_quantities())[:2]
    number = shop.create_order([(first, v1, 1), (second, v2, 3)], state=OrderState.UNPAID)
    adapter = adapter_for(shop)
    seen = []
    # when: the order moves along, read after every step
    for state in (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED):
        shop.move_order(number, state)
        [[order]] = list(adapter.iter_orders(**window()))
        seen.append((order.status, order.state))
    # then
    assert seen == [
        ("AWAITING_SHIPMENT", OrderState.PAID),
        ("IN_TRANSIT", OrderState.SHIPPED),
        ("DELIVERED", OrderState.DELIVERED),
    ]
    assert [(line.item_id, line.quantity) for line in order.lines] == [(first, 1), (second, 3)]
    assert order.tracking_number
    assert order.courier
    assert order.paid_at is not None


def test_order_iteration_pages_and_windows(shop):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    numbers = [shop.create_order([(item_id, variant_id, 1)]) for _ in range(130)]
    adapter = adapter_for(shop)

    pages = list(adapter.iter_orders(**window()))
    future = list(
        adapter.iter_orders(
            updated_from=datetime.now(UTC) + timedelta(hours=1),
            updated_to=datetime.now(UTC) + timedelta(hours=2),
        )
    )

    assert [len(page) for page in pages] == [100, 30]
    assert [o.order_number for page in pages for o in page] == numbers
    assert future == []


def test_get_orders_asks_fifty_at_a_time_and_leaves_unknown_numbers_out(shop):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    numbers = [shop.create_order([(item_id, variant_id, 1)]) for _ in range(55)]
    adapter = adapter_for(shop)

    found = adapter.get_orders([*numbers, numbers[0]])

    assert [o.order_number for o in found] == numbers
    assert shop.log.count("/order/202309/orders") == 2
    # an id that is not the seller's fails TikTok's whole call (21008111): asked in halves
    found = adapter.get_orders([*numbers[:6], "576461413099999999"])
    assert [o.order_number for o in found] == numbers[:6]
    assert shop.log.count("/order/202309/orders") <= 2 + 7
    with pytest.raises(OrderNumbersMalformed, match="'SO-123'"):
        adapter.get_orders([numbers[0], "SO-123"])


def test_parser_groups_units_and_leaves_out_units_cancelled_on_their_own():
    line = {
        "product_id": "1729582718312380123",
        "product_name": "Women's Winter Crochet Clothes",
        "sku_id": "2729382476852921560",
        "sku_name": "Red, XL",
        "seller_sku": "red_xl",
        "sale_price": "10.50",
        "display_status": "AWAITING_SHIPMENT",
    }
    order = {
        "id": "576461413038785752",
        "status": "AWAITING_SHIPMENT",
        "create_time": 1619611561,
        "update_time": 1619621355,
        "paid_time": 1619611563,
        "commerce_platform": "TIKTOK_SHOP",
        "payment": {"currency": "IDR", "total_amount": "21"},
        "payment_method_name": "CCDC",
        "line_items": [
            {**line, "id": "577086512123755123"},
            {**line, "id": "577086512123755124"},
            {**line, "id": "577086512123755125", "display_status": "CANCELLED"},
        ],
    }

    remote = order_from_payload(order)

    assert remote.state == OrderState.PAID
    assert [
        (li.line_id, li.variant_id, li.title, li.quantity, li.unit_price) for li in remote.lines
    ] == [
        (
            "577086512123755123",
            "2729382476852921560",
            "Women's Winter Crochet Clothes - Red, XL",
            2,
            Decimal("10.50"),
        )
    ]
    assert remote.paid_at == datetime(2021, 4, 28, 12, 6, 3, tzinfo=UTC)  # date -u -d @1619611563
    odd = order_from_payload({**order, "status": "SHIPPED_BY_DRONE"})  # not in STATUS_TABLE
    assert (odd.state, odd.status_known) == (OrderState.UNPAID, False)
    assert remote.status_known


# -- Tokopedia ------------------------------------------------------------------------------------


def test_tokopedia_lists_only_what_is_on_tokopedia_and_tiktok_everything(tokopedia):
    # given: one product on TikTok Shop alone
    tiktok_only = tokopedia.put_item(shop_item("TikTok Only Mug", "TT-ONLY"), tokopedia=False)
    creds = {
        "base_url": tokopedia.base_url,
        "credentials": tokopedia.credentials,
        "retry": FAST_RETRY,
    }
    # when
    on_tokopedia = all_listings(TokopediaAdapter(**creds))
    on_tiktok = all_listings(TikTokShopAdapter(**creds))
    # then
    assert {ref(lst): lst.quantity for lst in on_tokopedia} == tokopedia.listing_quantities()
    assert tiktok_only not in {lst.item_id for lst in on_tokopedia}
    assert tiktok_only in {lst.item_id for lst in on_tiktok}
    assert len(on_tiktok) == len(on_tokopedia) + 1


def test_tokopedia_orders_and_tiktok_orders_go_to_their_own_channel(tokopedia):
    item_id, variant_id = next(iter(tokopedia.listing_quantities()))
    toko = tokopedia.create_order([(item_id, variant_id, 1)])
    tiktok = tokopedia.create_order([(item_id, variant_id, 1)], platform="TIKTOK_SHOP")
    creds = {
        "base_url": tokopedia.base_url,
        "credentials": tokopedia.credentials,
        "retry": FAST_RETRY,
    }

    toko_orders = [
        o.order_number for p in TokopediaAdapter(**creds).iter_orders(**window()) for o in p
    ]
    tiktok_orders = [
        o.order_number for p in TikTokShopAdapter(**creds).iter_orders(**window()) for o in p
    ]

    assert toko_orders == [toko]
    assert tiktok_orders == [tiktok]
    assert [o.order_number for o in TokopediaAdapter(**creds).get_orders([toko, tiktok])] == [toko]


def test_a_product_uploaded_to_a_bound_shop_is_on_tokopedia(tokopedia):
    image_url = tokopedia.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = adapter_for(tokopedia)

    created = adapter.create_product(tee_upload(image_url))

    assert {ref(c) for c in created} <= set(tokopedia.listing_quantities())
    assert {c.status for c in created} == {"live"}
    body = [c for c in tokopedia.log.writes if c.path == "/product/202309/products"][0].body
    assert {s["price"]["currency"] for s in body["skus"]} == {"IDR"}


# -- webhooks ----------------------------------------------------------------------------------


def test_a_signed_push_is_accepted(shop):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    number = shop.create_order([(item_id, variant_id, 1)], state=OrderState.PAID)
    headers, body = shop.signed_webhook(number, WEBHOOK_URL)

    event = adapter_for(shop).verify_webhook(url=WEBHOOK_URL, headers=headers, body=body)

    assert event.topic == "order_status"
    assert event.order_number == number
    assert event.delivery_id == json.loads(body)["tts_notification_id"]


def test_pushes_with_a_missing_or_wrong_signature_or_a_bad_body_are_refused(shop):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    headers, body = shop.signed_webhook(shop.create_order([(item_id, variant_id, 1)]), WEBHOOK_URL)
    adapter = adapter_for(shop)

    def refused(headers: dict[str, str], body: bytes) -> int:
        with pytest.raises(WebhookRejected) as rejected:
            adapter.verify_webhook(url=WEBHOOK_URL, headers=headers, body=body)
        return rejected.value.status

    def signed(raw: bytes) -> dict[str, str]:
        return {
            "authorization": webhook_signature(
                app_key=shop.app_key, app_secret=shop.app_secret, body=raw
            )
        }

    assert refused({}, body) == 401
    assert refused(headers, body.replace(b'"type":1', b'"type":5')) == 401
    assert refused(signed(body), body + b" ") == 401
    assert refused(signed(b"{not json"), b"{not json") == 400
    assert refused(signed(b'{"type":1,"data":{}}'), b'{"type":1,"data":{}}') == 400


# -- tokens ------------------------------------------------------------------------------------


def test_an_expired_token_without_refresh_token_is_refused_with_tiktoks_code(shop):
    # The contract suite checks that the message asks to reconnect; here, TikTok's code.
    shop.expire_access_tokens()
    adapter = adapter_for(shop, credentials={**shop.credentials, "refresh_token": ""})

    with pytest.raises(CredentialsError, match="reconnect the shop") as refused:
        adapter.check_credentials()
    assert refused.value.code == "105002"
