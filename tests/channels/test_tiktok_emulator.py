"""The TikTok Shop emulator's API rules, checked with calls signed here by hand."""

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from channels.adapters.base import OrderState
from channels.emulators.base import Faults
from channels.emulators.shop import generate_shop
from channels.emulators.tiktok import TikTokShopEmulator, TokopediaEmulator

ERROR_SHAPE = {"code", "message", "request_id", "data"}


@pytest.fixture
def shop() -> Iterator[TikTokShopEmulator]:
    with TikTokShopEmulator(items=12, seed=5) as emulator:
        yield emulator


def call(
    emulator: TikTokShopEmulator,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    secret: str | None = None,
    timestamp: int | None = None,
    token: str | None = None,
    cipher: bool = True,
    sign: bool = True,
) -> requests.Response:
    """A call signed by hand, independently of the client under test (reference §2.1)."""
    creds = emulator.credentials
    query: dict[str, Any] = {
        "app_key": creds["app_key"],
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        **({"shop_cipher": creds["shop_cipher"]} if cipher else {}),
        **(params or {}),
    }
    raw = json.dumps(body).encode() if body is not None else b""
    if sign:
        key = (secret or creds["app_secret"]).encode()
        base = path + "".join(f"{k}{v}" for k, v in sorted(query.items())) + raw.decode()
        query["sign"] = hmac.new(key, key + base.encode() + key, hashlib.sha256).hexdigest()
    headers = {"x-tts-access-token": token or creds["access_token"]}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return requests.request(
        method, emulator.base_url + path, params=query, data=raw, headers=headers, timeout=5
    )


def code(response: requests.Response) -> int:
    payload = response.json()
    assert set(payload) == ERROR_SHAPE
    return payload["code"]


def test_a_correctly_signed_call_is_answered_with_data(shop):
    response = call(
        shop, "POST", "/product/202502/products/search", params={"page_size": 5}, body={}
    )

    assert response.status_code == 200
    assert code(response) == 0
    assert len(response.json()["data"]["products"]) == 5


@pytest.mark.parametrize(
    ("change", "expected_code", "words"),
    [
        ({"secret": "0" * 40}, 106001, "`sign` query parameter is invalid"),
        ({"sign": False}, 36009004, "does not include a required signature"),
        ({"timestamp": -400}, 36009004, "earlier than 5 minutes"),  # seconds from now
        ({"timestamp": 120}, 36009004, "by more than 30 seconds"),
        ({"token": "TTP_nope"}, 36009004, "`x-tts-access-token` header is invalid"),
        ({"cipher": False}, 106013, "`shop_cipher` query parameter is required"),
    ],
)
def test_every_credential_is_checked_with_tiktoks_codes(shop, change, expected_code, words):
    if "timestamp" in change:
        change = {"timestamp": int(time.time()) + change["timestamp"]}
    response = call(
        shop, "POST", "/product/202502/products/search", params={"page_size": 5}, body={}, **change
    )

    assert code(response) == expected_code
    assert words in response.json()["message"]
    assert response.status_code in (400, 401)


def test_a_tampered_body_breaks_the_signature(shop):
    creds = shop.credentials
    query = {"app_key": creds["app_key"], "timestamp": int(time.time()), "page_size": 5}
    query["shop_cipher"] = creds["shop_cipher"]
    key = creds["app_secret"].encode()
    base = "/product/202502/products/search" + "".join(f"{k}{v}" for k, v in sorted(query.items()))
    query["sign"] = hmac.new(key, key + base.encode() + b"{}" + key, hashlib.sha256).hexdigest()

    response = requests.post(
        shop.base_url + "/product/202502/products/search",
        params=query,
        data=b'{"status":"DELETED"}',
        headers={"x-tts-access-token": creds["access_token"], "Content-Type": "application/json"},
        timeout=5,
    )

    assert code(response) == 106001


def test_shop_cipher_is_refused_where_tiktok_refuses_it(shop):
    refused = call(shop, "GET", "/authorization/202309/shops")
    accepted = call(shop, "GET", "/authorization/202309/shops", cipher=False)

    assert code(refused) == 36009004
    assert "`shop_cipher` query parameter is not required" in refused.json()["message"]
    assert accepted.json()["data"]["shops"][0]["cipher"] == shop.shop_cipher


def test_an_expired_token_is_told_apart_and_a_refresh_replaces_both_tokens(shop):
    old = shop.credentials
    shop.expire_access_tokens()

    expired = call(shop, "GET", "/authorization/202309/shops", cipher=False)
    refresh = {
        "app_key": old["app_key"],
        "app_secret": old["app_secret"],
        "refresh_token": old["refresh_token"],
        "grant_type": "refresh_token",
    }
    renewed = requests.get(shop.base_url + "/api/v2/token/refresh", params=refresh, timeout=5)
    reused = requests.get(shop.base_url + "/api/v2/token/refresh", params=refresh, timeout=5)

    assert code(expired) == 105002
    data = renewed.json()["data"]
    assert data["access_token"] == shop.credentials["access_token"] != old["access_token"]
    assert data["access_token_expire_in"] > time.time()  # an absolute time, not a duration
    assert code(reused) == 36004005
    assert code(call(shop, "GET", "/authorization/202309/shops", cipher=False)) == 0


def test_search_pages_with_opaque_tokens_and_refuses_foreign_ones(shop):
    first = call(shop, "POST", "/product/202502/products/search", params={"page_size": 5}, body={})
    token = first.json()["data"]["next_page_token"]
    second = call(
        shop,
        "POST",
        "/product/202502/products/search",
        params={"page_size": 5, "page_token": token},
        body={},
    )
    foreign = call(
        shop,
        "POST",
        "/product/202502/products/search",
        params={"page_size": 5, "page_token": token},
        body={"status": "DELETED"},
    )
    too_big = call(
        shop, "POST", "/product/202502/products/search", params={"page_size": 101}, body={}
    )

    ids = [p["id"] for p in first.json()["data"]["products"]]
    ids += [p["id"] for p in second.json()["data"]["products"]]
    assert ids == shop.product_ids()[:10]
    assert code(foreign) == 98001004
    assert code(too_big) == 98001004


def test_writes_are_checked_in_full_before_anything_changes(shop):
    item_id = shop.product_ids()[0]
    before = shop.product(item_id)
    sku = before["skus"][0]["id"]
    path = f"/product/202309/products/{item_id}/prices/update"

    wrong_currency = call(
        shop,
        "POST",
        path,
        body={"skus": [{"id": sku, "price": {"amount": "9", "currency": "XYZ"}}]},
    )
    one_bad = call(
        shop,
        "POST",
        path,
        body={
            "skus": [
                {"id": sku, "price": {"amount": "9", "currency": shop.currency}},
                {"id": "1", "price": {"amount": "9", "currency": shop.currency}},
            ]
        },
    )

    assert code(wrong_currency) == 12052084
    assert code(one_bad) == 98001004
    assert shop.product(item_id) == before


def test_bulk_status_calls_take_twenty_ids_and_report_each(shop):
    ids = shop.product_ids()
    too_many = call(
        shop, "POST", "/product/202309/products/deactivate", body={"product_ids": ids[:1] * 21}
    )
    mixed = call(
        shop,
        "POST",
        "/product/202309/products/deactivate",
        body={"product_ids": [ids[0], "1729500000099999999"]},
    )

    assert code(too_many) == 12019120
    assert code(mixed) == 0
    [error] = mixed.json()["data"]["errors"]
    assert (error["code"], error["detail"]["product_id"]) == (12052032, "1729500000099999999")
    assert shop.product(ids[0])["product_status"] == "SELLER_DEACTIVATED"


def test_edit_product_refuses_to_drop_skus(shop):
    item_id = next(p for p in shop.product_ids() if len(shop.product(p)["skus"]) > 1)
    detail = shop.product(item_id)
    body = {
        "title": detail["title"],
        "description": detail["description"],
        "category_id": detail["category_chains"][0]["id"],
        "main_images": [{"uri": i["uri"]} for i in detail["main_images"]],
        "package_weight": detail["package_weight"],
        "skus": [{"id": detail["skus"][0]["id"]}],
    }

    response = call(shop, "PUT", f"/product/202309/products/{item_id}", body=body)

    assert code(response) == 12019057
    assert shop.product(item_id) == detail


def test_order_details_take_fifty_ids_comma_joined_or_as_a_json_array(shop):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    numbers = [shop.create_order([(item_id, variant_id, 1)]) for _ in range(3)]

    joined = call(shop, "GET", "/order/202309/orders", params={"ids": ",".join(numbers)})
    as_array = call(shop, "GET", "/order/202309/orders", params={"ids": json.dumps(numbers)})
    too_many = call(shop, "GET", "/order/202309/orders", params={"ids": ",".join(["1"] * 51)})

    assert [o["id"] for o in joined.json()["data"]["orders"]] == numbers
    assert as_array.json()["data"] == joined.json()["data"]
    assert code(too_many) == 98001004


def test_orders_list_one_line_item_per_unit_and_move_through_statuses(shop):
    item_id, variant_id = next(iter(shop.listing_quantities()))
    number = shop.create_order([(item_id, variant_id, 3)], state=OrderState.UNPAID)
    shop.move_order(number, OrderState.RETURNED)

    order = shop.order(number)

    assert len(order["line_items"]) == 3
    assert order["status"] == "CANCELLED"
    assert order["collection_time"] >= order["create_time"]
    assert {i["display_status"] for i in order["line_items"]} == {"CANCELLED"}
    assert order["commerce_platform"] == "TIKTOK_SHOP"


def test_throttled_and_failed_calls_answer_in_tiktoks_shape():
    with TikTokShopEmulator(seed=1, throttle_style="http") as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.05)
        throttled = call(emulator, "GET", "/authorization/202309/shops", cipher=False)
    with TikTokShopEmulator(seed=1, throttle_style="body") as emulator:
        emulator.set_faults(throttle_rate=1.0)
        in_body = call(emulator, "GET", "/authorization/202309/shops", cipher=False)
    with TikTokShopEmulator(seed=1, faults=Faults(error_rate=1.0)) as emulator:
        failed = [
            call(emulator, "GET", "/authorization/202309/shops", cipher=False) for _ in range(6)
        ]

    assert (throttled.status_code, code(throttled)) == (429, 36009002)
    assert throttled.headers["Retry-After"] == "0.05"
    assert (in_body.status_code, code(in_body)) == (200, 36009002)
    assert {code(f) for f in failed} == {36009003}
    assert {f.status_code for f in failed} == {500, 503}


def test_a_tokopedia_shop_lists_on_tokopedia_what_is_bound_there():
    with TokopediaEmulator(items=5, seed=2) as emulator:
        on_both = emulator.product_ids()
        [extra] = generate_shop(1, seed=99)
        tiktok_only = emulator.put_item(extra, tokopedia=False)

        listed = {item for item, _ in emulator.listing_quantities()}
        search = call(
            emulator, "POST", "/product/202502/products/search", params={"page_size": 50}, body={}
        )

    assert listed == set(on_both)
    statuses = {
        p["id"]: p.get("integrated_platform_statuses") for p in search.json()["data"]["products"]
    }
    assert statuses[tiktok_only] is None
    assert statuses[on_both[0]] == [
        {"platform": "TOKOPEDIA", "status": emulator.product(on_both[0])["product_status"]}
    ]
    assert emulator.currency == "IDR"
