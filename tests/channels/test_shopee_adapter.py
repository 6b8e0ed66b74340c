"""ShopeeAdapter against the Shopee emulator, over real HTTP on 127.0.0.1: what is Shopee's own.

What every marketplace shares (credentials, throttling, token refresh, scans, pushes, orders,
webhooks) is a scenario of test_contract.py.
"""

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels.adapters import build_adapter
from channels.adapters.base import (
    AdapterError,
    CallStats,
    CredentialsError,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    UploadProduct,
    UploadVariant,
)
from channels.adapters.http import HttpCaller, OutgoingRequest, RetryPolicy
from channels.adapters.shopee.adapter import ShopeeAdapter, listings_from_item
from channels.adapters.shopee.client import UPDATE_STOCK, shopee_sign
from channels.emulators.base import Faults
from channels.emulators.shopee import ShopeeEmulator
from tests.channels.builders import grid_item
from tests.channels.conftest import shopee_adapter

# A 1x1 transparent PNG: what the emulator serves as a product image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4b60000000049454e44ae426082"
)


def all_listings(adapter: ShopeeAdapter, **kwargs) -> list[RemoteListing]:
    return [listing for page in adapter.iter_listing_pages(**kwargs) for listing in page]


def key(listing: RemoteListing) -> tuple[int, int]:
    return int(listing.item_id), int(listing.variant_id or 0)


# -- signing ----------------------------------------------------------------------------------

SIGNING_KEY = "shpk4f6e1d0c9b8a7f6e5d4c3b2a19081726354f6e5d4c3b2a1908172635"


def test_shop_signature_matches_a_vector_computed_by_hand():
    # Shop API base string = partner_id + api_path + timestamp + access_token + shop_id:
    #   "2001887" "/api/v2/shop/get_shop_info" "1655714431"
    #   "c09222e3fc40ffb25fc947f738b1abf1" "14701711"
    # Expected value computed once in a shell, outside the code under test:
    #   BASE=2001887/api/v2/shop/get_shop_info1655714431c09222e3fc40ffb25fc947f738b1abf114701711
    #   echo -n "$BASE" | openssl dgst -sha256 -hmac "$SIGNING_KEY"
    # and again with python3 hmac.new(key, base, hashlib.sha256).hexdigest(): same digest.
    sign = shopee_sign(
        partner_key=SIGNING_KEY,
        partner_id=2001887,
        path="/api/v2/shop/get_shop_info",
        timestamp=1655714431,
        access_token="c09222e3fc40ffb25fc947f738b1abf1",
        shop_id=14701711,
    )
    assert sign == "016de487f21ed1ba8681a2e3d3d29a81cc4015650d66697ac363d8014898894c"


def test_public_signature_matches_a_vector_computed_by_hand():
    # Public API base string = partner_id + api_path + timestamp, computed once in a shell:
    #   echo -n "2001887/api/v2/auth/access_token/get1655714431" \
    #     | openssl dgst -sha256 -hmac "$SIGNING_KEY"
    sign = shopee_sign(
        partner_key=SIGNING_KEY,
        partner_id=2001887,
        path="/api/v2/auth/access_token/get",
        timestamp=1655714431,
    )
    assert sign == "ff6354915dc2810fd483d851c9e6a1580d8f43f7f7c5829c76d2333d467cade2"


# -- credentials --------------------------------------------------------------------------------


def test_a_wrong_partner_key_is_refused_with_shopees_code_and_words(shopee):
    # The contract suite checks that wrong credentials change nothing; here, what Shopee says.
    adapter = shopee_adapter(shopee, credentials={**shopee.credentials, "partner_key": "not-it"})
    item_id, model_id = next(iter(shopee.quantities()))

    with pytest.raises(CredentialsError) as refused:
        adapter.check_credentials()
    assert "check the partner key" in str(refused.value)
    assert refused.value.code == "error_sign"
    with pytest.raises(CredentialsError):
        adapter.update_quantities([QuantityUpdate(str(item_id), str(model_id or ""), 999)])
    assert [call.reply["error"] for call in shopee.log.writes_to(UPDATE_STOCK)] == ["error_sign"]


def test_invalid_credentials_name_the_fields_but_not_the_values(shopee):
    with pytest.raises(CredentialsError) as refused:
        build_adapter(
            "shopee",
            base_url=shopee.base_url,
            credentials={
                "partner_id": 0,
                "partner_key": "sekrit",
                "shop_id": "x",
                "access_token": "t",
            },
        )

    assert "partner_id" in str(refused.value)
    assert "shop_id" in str(refused.value)
    assert "sekrit" not in str(refused.value)


# -- reading listings ----------------------------------------------------------------------------


def test_full_iteration_returns_every_listing_as_the_shop_holds_it(shopee):
    adapter = shopee_adapter(shopee)

    pages = list(adapter.iter_listing_pages())

    listings = [listing for page in pages for listing in page]
    assert {key(listing): listing.quantity for listing in listings} == shopee.quantities()
    assert {key(listing): listing.price for listing in listings} == shopee.prices()
    assert {listing.status for listing in listings} <= {"live", "inactive"}
    assert all(listing.updated_at.tzinfo is UTC for listing in listings)
    modelled = [listing for listing in listings if listing.variant_id]
    assert modelled, "the generated shop should have items with models"
    item = shopee.item(int(modelled[0].item_id))
    assert modelled[0].title.startswith(item["item_name"] + " - ")


def test_iteration_pages_follow_shopees_page_size():
    with ShopeeEmulator(items=230, seed=3) as emulator:
        adapter = shopee_adapter(emulator)

        pages = list(adapter.iter_listing_pages())

        assert len(pages) == 3  # 100 + 100 + 30 items
        assert emulator.log.count("/api/v2/product/get_item_list") == 3
        assert emulator.log.count("/api/v2/product/get_item_base_info") == 2 + 2 + 1  # ≤ 50 ids


def test_endless_http_throttling_is_reported_with_shopees_code_after_its_retry_after():
    with ShopeeEmulator(seed=1, throttle_style="http") as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.05)
        adapter = shopee_adapter(emulator, retry=RetryPolicy(attempts=3, base_delay=1, max_delay=1))

        with pytest.raises(AdapterError) as failed:
            adapter.check_credentials()

        assert failed.value.code == "error_rate_limit"
        assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)
        # The server's Retry-After (0.05 s) was honoured, not our own 1 s schedule.
        assert 0.1 <= adapter.stats.seconds < 1


def test_incremental_iteration_returns_only_changed_and_deleted_items(shopee):
    # given: a scan watermark, then one price change and one deletion
    watermark = datetime.now(UTC)
    modelled = [i for i in shopee.item_ids("NORMAL") if shopee.item(i)["has_model"]][0]
    plain = [i for i in shopee.item_ids("NORMAL") if not shopee.item(i)["has_model"]][0]
    model_id = shopee.item(modelled)["models"]["model"][0]["model_id"]
    shopee.change_item(modelled, model_id=model_id, price=Decimal("12.34"))
    shopee.delete_item(plain)
    adapter = shopee_adapter(shopee)
    # when
    listings = all_listings(adapter, updated_since=watermark)
    # then
    assert {int(listing.item_id) for listing in listings} == {modelled, plain}
    changed = next(listing for listing in listings if listing.variant_id == str(model_id))
    assert changed.price == Decimal("12.34")
    assert changed.status == "live"
    assert [listing.status for listing in listings if listing.item_id == str(plain)] == ["removed"]


def test_parser_maps_a_fixed_shopee_payload():
    # A base-info and model-list pair as Shopee returns them (prices parsed as Decimal).
    info = {
        "item_id": 880011,
        "item_name": "Cotton Tee",
        "item_sku": "TEE",
        "item_status": "NORMAL",
        "has_model": True,
        "update_time": 1733300000,
    }
    model_list = {
        "tier_variation": [
            {"name": "Color", "option_list": [{"option": "Black"}, {"option": "White"}]},
            {"name": "Size", "option_list": [{"option": "M"}, {"option": "L"}]},
        ],
        "model": [
            {
                "model_id": 5500012,
                "model_sku": " tee-blk-m ",
                "tier_index": [0, 0],
                "model_status": "MODEL_NORMAL",
                "price_info": [{"currency": "MYR", "original_price": Decimal("35.0")}],
                "stock_info_v2": {
                    "seller_stock": [
                        {"location_id": "A", "stock": 3},
                        {"location_id": "B", "stock": 4},
                    ]
                },
            },
            {
                "model_id": 5500013,
                "model_sku": "TEE-WHT-L",
                "tier_index": [1, 1],
                "model_status": "MODEL_UNAVAILABLE",
                "price_info": [{"currency": "MYR", "original_price": Decimal("36.5")}],
                "stock_info_v2": {"seller_stock": [{"stock": 0}]},
            },
        ],
    }
    when = datetime(2024, 12, 4, 8, 13, 20, tzinfo=UTC)

    listings = listings_from_item(info, model_list)

    black_m, white_l = listings
    assert black_m == RemoteListing(
        "880011", "5500012", " tee-blk-m ", "Cotton Tee - Black,M", Decimal("35.0"), 7, "live", when
    )
    assert white_l == RemoteListing(
        "880011",
        "5500013",
        "TEE-WHT-L",
        "Cotton Tee - White,L",
        Decimal("36.5"),
        0,
        "inactive",
        when,
    )
    deleted = listings_from_item({**info, "has_model": False, "item_status": "SELLER_DELETE"}, None)
    assert [(d.variant_id, d.sku, d.status) for d in deleted] == [("", "TEE", "removed")]


# -- creating products ---------------------------------------------------------------------------


def test_create_product_with_variants_is_returned_by_the_next_iteration(shopee):
    # given
    image_url = shopee.serve_file("/cdn/tee.png", PNG, "image/png")
    product = UploadProduct(
        name="Omni Test Tee",
        description="Soft cotton.",
        category="Clothing > T-Shirts",
        brand="Northwind",
        images=(image_url,),
        weight_kg=Decimal("0.25"),
        dimensions_cm=(Decimal("30"), Decimal("20"), Decimal("2.5")),
        is_active=True,
        option_names=("Color", "Size"),
        variants=(
            UploadVariant("OT-BLK-M", Decimal("19.90"), 5, {"Color": "Black", "Size": "M"}),
            UploadVariant("OT-BLK-L", Decimal("19.90"), 6, {"Color": "Black", "Size": "L"}),
            UploadVariant("OT-WHT-M", Decimal("21"), 7, {"Color": "White", "Size": "M"}),
        ),
    )
    adapter = shopee_adapter(shopee)
    # when
    created = adapter.create_product(product)
    # then
    assert [(c.sku, c.title, c.price, c.quantity, c.status) for c in created] == [
        ("OT-BLK-M", "Omni Test Tee - Black,M", Decimal("19.9"), 5, "live"),
        ("OT-BLK-L", "Omni Test Tee - Black,L", Decimal("19.9"), 6, "live"),
        ("OT-WHT-M", "Omni Test Tee - White,M", Decimal("21"), 7, "live"),
    ]
    assert {key(c) for c in created} <= {key(listing) for listing in all_listings(adapter)}
    item = shopee.item(int(created[0].item_id))
    assert item["dimension"] == {"package_length": 30, "package_width": 20, "package_height": 3}
    assert shopee.log.count("/api/v2/media_space/upload_image") == 1


def test_create_product_without_variants_and_a_category_id(shopee):
    image_url = shopee.serve_file("/cdn/mug.png", PNG, "image/png")
    product = UploadProduct(
        name="Omni Mug",
        description="",
        category="100106",  # a Shopee category id typed into the POS category
        brand="",
        images=(image_url,),
        weight_kg=Decimal("0.35"),
        dimensions_cm=None,
        is_active=False,
        variants=(UploadVariant("MUG-1", Decimal("8"), 12),),
    )

    created = shopee_adapter(shopee).create_product(product)

    assert [(c.variant_id, c.sku, c.title, c.quantity, c.status) for c in created] == [
        ("", "MUG-1", "Omni Mug", 12, "inactive")
    ]


def test_create_product_refuses_an_unknown_category_before_changing_anything(shopee):
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
    items_before = shopee.item_ids()

    with pytest.raises(AdapterError, match="no category named 'Spaceships'"):
        shopee_adapter(shopee).create_product(product)

    assert shopee.item_ids() == items_before
    assert shopee.log.writes == []


def test_refused_variants_say_the_item_exists_already(shopee):
    # given: 51 colours, one more than Shopee allows in a tier
    image_url = shopee.serve_file("/cdn/tee.png", PNG, "image/png")
    variants = tuple(
        UploadVariant(f"RB-{n}", Decimal("5"), 1, {"Color": f"Shade {n}"}) for n in range(51)
    )
    product = UploadProduct(
        name="Rainbow Tee",
        description="Every colour.",
        category="T-Shirts",
        brand="",
        images=(image_url,),
        weight_kg=Decimal("0.2"),
        dimensions_cm=None,
        is_active=True,
        variants=variants,
        option_names=("Color",),
    )
    # when / then
    with pytest.raises(AdapterError, match=r"created item \d+ but refused its variants") as failed:
        shopee_adapter(shopee).create_product(product)
    assert not failed.value.retryable


# -- pushing quantities and prices ----------------------------------------------------------------


def test_update_quantities_for_120_models_makes_three_calls():
    with ShopeeEmulator(seed=2) as emulator:
        # given: one item with 12 colours x 10 sizes
        item_id = emulator.put_item(grid_item("Big Grid Tee", 12, 10))
        models = [m["model_id"] for m in emulator.item(item_id)["models"]["model"]]
        updates = [QuantityUpdate(str(item_id), str(m), n) for n, m in enumerate(models)]
        # when
        results = shopee_adapter(emulator).update_quantities(updates)
        # then
        calls = emulator.log.writes_to(UPDATE_STOCK)
        assert len(calls) == math.ceil(120 / 50)
        assert sorted(len(call.body["stock_list"]) for call in calls) == [20, 50, 50]
        assert all(result.ok for result in results)
        assert {m: emulator.quantities()[(item_id, m)] for m in models} == {
            m: n for n, m in enumerate(models)
        }


def test_failure_list_entries_become_failed_push_results(shopee):
    # given: a model with 5 units reserved by open orders, and an item in a promotion
    modelled = [i for i in shopee.item_ids("NORMAL") if shopee.item(i)["has_model"]][0]
    first, *others = [m["model_id"] for m in shopee.item(modelled)["models"]["model"]]
    shopee.set_reserved(modelled, 5, model_id=first)
    plain = [i for i in shopee.item_ids("NORMAL") if not shopee.item(i)["has_model"]][0]
    shopee.set_in_promotion(plain)
    adapter = shopee_adapter(shopee)
    # when
    stock = adapter.update_quantities(
        [QuantityUpdate(str(modelled), str(m), 2) for m in [first, *others]]
    )
    prices = adapter.update_prices([PriceUpdate(str(plain), "", Decimal("9.90"))])
    # then
    assert stock[0].ok is False
    assert "reserved" in stock[0].error
    assert all(result.ok for result in stock[1:])
    assert shopee.quantities()[(modelled, first)] != 2
    assert prices == [PushResult(str(plain), "", ok=False, error=prices[0].error, retryable=False)]
    assert "promotion" in prices[0].error


def test_update_prices_sets_prices_and_a_refused_item_does_not_stop_the_others(shopee):
    plain = [i for i in shopee.item_ids("NORMAL") if not shopee.item(i)["has_model"]][:2]
    shopee.delete_item(plain[0])
    adapter = shopee_adapter(shopee)

    results = adapter.update_prices(
        [
            PriceUpdate(str(plain[0]), "", Decimal("5")),
            PriceUpdate(str(plain[1]), "", Decimal("7.50")),
            PriceUpdate("not-a-number", "", Decimal("1")),
        ]
    )

    assert [result.ok for result in results] == [False, True, False]
    assert "not found" in results[0].error
    assert shopee.prices()[(plain[1], 0)] == Decimal("7.50")


# -- the HTTP helper ----------------------------------------------------------------------------


def test_a_call_that_is_not_idempotent_is_not_resent_after_a_server_error():
    # given: every call answered with HTTP 500
    with ShopeeEmulator(seed=1, faults=Faults(error_rate=1.0)) as emulator:
        stats = CallStats()
        caller = HttpCaller(stats=stats, service="Shopee", policy=RetryPolicy(base_delay=0.001))
        url = emulator.base_url + "/api/v2/product/add_item"

        def build() -> OutgoingRequest:
            return OutgoingRequest("POST", url, json={})

        # when
        once = caller.send(build, idempotent=False)
        again = caller.send(build)
        # then: the create went once; a read would have been tried five times
        assert (once.status_code, again.status_code) == (500, 500)
        assert (stats.calls, stats.retries) == (1 + 5, 4)


def test_every_attempt_is_built_afresh():
    with ShopeeEmulator(seed=1, throttle_style="http") as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.0)
        built: list[int] = []
        caller = HttpCaller(stats=CallStats(), service="Shopee", policy=RetryPolicy(attempts=3))

        def build() -> OutgoingRequest:
            built.append(len(built))
            return OutgoingRequest("GET", emulator.base_url + "/api/v2/shop/get_shop_info")

        assert caller.send(build).status_code == 429
        assert built == [0, 1, 2]
