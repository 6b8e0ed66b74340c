"""The Shopee emulator's API rules, called over raw HTTP (no adapter in between)."""

import time
from decimal import Decimal

from channels.emulators.base import Faults
from channels.emulators.shopee import ShopeeEmulator
from tests.channels.conftest import signed_call

ITEM_LIST = "/api/v2/product/get_item_list"
BASE_INFO = "/api/v2/product/get_item_base_info"
UPDATE_STOCK = "/api/v2/product/update_stock"
ERROR_SHAPE = {"request_id", "error", "message", "warning"}


def test_page_size_over_100_is_error_param(shopee):
    reply = signed_call(
        shopee, "GET", ITEM_LIST, params={"offset": 0, "page_size": 101, "item_status": "NORMAL"}
    )

    payload = reply.json()
    assert set(payload) == ERROR_SHAPE
    assert payload["error"] == "error_param"
    assert "page_size" in payload["message"]


def test_item_list_needs_item_status_and_takes_it_repeated(shopee):
    missing = signed_call(shopee, "GET", ITEM_LIST, params={"offset": 0, "page_size": 10})
    both = signed_call(
        shopee,
        "GET",
        ITEM_LIST,
        params={"offset": 0, "page_size": 100, "item_status": ["NORMAL", "UNLIST"]},
    )

    assert missing.json()["error"] == "error_param"
    assert both.json()["response"]["total_count"] == len(shopee.item_ids("NORMAL", "UNLIST"))


def test_more_than_50_ids_is_error_param(shopee):
    ids = ",".join(str(800_001_000 + n) for n in range(51))

    reply = signed_call(shopee, "GET", BASE_INFO, params={"item_id_list": ids})

    assert reply.json()["error"] == "error_param"


def test_wrong_signature_is_error_sign(shopee):
    reply = signed_call(shopee, "GET", "/api/v2/shop/get_shop_info", partner_key="wrong")

    assert reply.json()["error"] == "error_sign"
    assert set(reply.json()) == ERROR_SHAPE


def test_stale_timestamp_is_error_param(shopee):
    reply = signed_call(
        shopee, "GET", "/api/v2/shop/get_shop_info", timestamp=int(time.time()) - 301
    )

    assert reply.json()["error"] == "error_param"
    assert "timestamp" in reply.json()["message"]


def test_expired_access_token_is_error_auth(shopee):
    shopee.expire_access_tokens()

    reply = signed_call(shopee, "GET", "/api/v2/shop/get_shop_info")

    assert reply.json()["error"] == "error_auth"


def test_update_stock_with_51_models_is_refused_whole(shopee):
    item_id = shopee.item_ids("NORMAL")[0]
    before = shopee.quantities()
    stock_list = [{"model_id": n, "seller_stock": [{"stock": 1}]} for n in range(51)]

    reply = signed_call(
        shopee, "POST", UPDATE_STOCK, body={"item_id": item_id, "stock_list": stock_list}
    )

    assert reply.json()["error"] == "error_param"
    assert shopee.quantities() == before


def test_a_faulted_write_changes_nothing_and_its_retry_has_one_effect(shopee):
    # given
    item_id = next(i for i in shopee.item_ids("NORMAL") if not shopee.item(i)["has_model"])
    body = {"item_id": item_id, "stock_list": [{"model_id": 0, "seller_stock": [{"stock": 77}]}]}
    shopee.set_faults(error_rate=1.0)
    # when
    failed = signed_call(shopee, "POST", UPDATE_STOCK, body=body)
    # then
    assert failed.status_code == 500
    assert shopee.quantities()[(item_id, 0)] != 77
    assert shopee.log.writes_to(UPDATE_STOCK) == []
    # when the same write is sent again once the fault clears
    shopee.set_faults(error_rate=0.0)
    signed_call(shopee, "POST", UPDATE_STOCK, body=body)
    # then
    assert shopee.quantities()[(item_id, 0)] == 77
    assert len(shopee.log.writes_to(UPDATE_STOCK)) == 1
    assert shopee.log.count(UPDATE_STOCK) == 2


def test_shopee_throttles_in_both_of_its_styles():
    with ShopeeEmulator(
        throttle_style="http", faults=Faults(throttle_rate=1.0, retry_after=0.2)
    ) as http:
        reply = signed_call(http, "GET", "/api/v2/shop/get_shop_info")
        assert (reply.status_code, reply.headers["Retry-After"]) == (429, "0.2")
        assert reply.json()["error"] == "error_rate_limit"
    with ShopeeEmulator(throttle_style="body", faults=Faults(throttle_rate=1.0)) as body:
        reply = signed_call(body, "GET", "/api/v2/shop/get_shop_info")
        assert (reply.status_code, reply.json()["error"]) == (200, "error_rate_limit")


def test_change_and_delete_bump_update_time(shopee):
    item_id = shopee.item_ids("NORMAL")[0]
    before = shopee.item(item_id)["update_time"]

    shopee.change_item(item_id, name="Renamed")
    renamed = shopee.item(item_id)
    shopee.delete_item(item_id)

    assert renamed["item_name"] == "Renamed"
    assert renamed["update_time"] > before
    assert shopee.item(item_id)["item_status"] == "SELLER_DELETE"
    assert shopee.item(item_id)["update_time"] > renamed["update_time"]
    assert all(key[0] != item_id for key in shopee.quantities())


def test_emulator_clock_sets_update_times():
    with ShopeeEmulator(items=3, seed=1, clock=lambda: 1_760_000_000.0) as emulator:
        item_id = emulator.item_ids()[0]
        emulator.change_item(item_id, price=Decimal("5"))
        assert emulator.item(item_id)["update_time"] == 1_760_000_000
