"""The emulator framework, the shop generator and the Shopee emulator's API rules."""

import time
from collections import Counter
from decimal import Decimal

import pytest
import requests
from django.core.management import CommandError, call_command

from channels.emulators import emulator_class
from channels.emulators.base import Emulator, Faults, Reply, Request
from channels.emulators.shop import ShopMix, generate_shop
from channels.emulators.shopee import ShopeeEmulator
from tests.channels.conftest import signed_call

ITEM_LIST = "/api/v2/product/get_item_list"
BASE_INFO = "/api/v2/product/get_item_base_info"
UPDATE_STOCK = "/api/v2/product/update_stock"
ERROR_SHAPE = {"request_id", "error", "message", "warning"}


class EchoEmulator(Emulator):
    """The smallest emulator: answers every call with what it received."""

    name = "echo"

    def handle(self, request: Request) -> Reply:
        return Reply.json({"path": request.path, "body": request.parsed_body()})


# -- framework ------------------------------------------------------------------------------------


def test_framework_serves_logs_writes_and_stops():
    with EchoEmulator() as emulator:
        url = emulator.base_url
        assert emulator.port > 0
        assert requests.get(url + "/ping", timeout=5).json() == {"path": "/ping", "body": None}
        requests.post(url + "/write", json={"quantity": 3}, timeout=5)
        assert emulator.log.count("/ping") == 1
        [write] = emulator.log.writes_to("/write")
        assert (write.method, write.body, write.status) == ("POST", {"quantity": 3}, 200)
        assert write.reply == {"path": "/write", "body": {"quantity": 3}}
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/ping", timeout=2)


def test_faults_are_seeded_and_repeatable():
    def statuses(seed: int) -> list[int]:
        faults = Faults(error_rate=0.3, throttle_rate=0.3)
        with EchoEmulator(seed=seed, faults=faults) as emulator, requests.Session() as session:
            return [session.get(emulator.base_url + "/x", timeout=5).status_code for _ in range(40)]

    first = statuses(5)

    assert first == statuses(5)
    assert first != statuses(6)
    assert set(first) == {200, 429, 500}


def test_throttled_reply_carries_a_fractional_retry_after():
    with EchoEmulator(faults=Faults(throttle_rate=1.0, retry_after=0.05)) as emulator:
        reply = requests.get(emulator.base_url + "/x", timeout=5)

    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "0.05"


def test_latency_is_added_to_every_reply():
    with EchoEmulator() as emulator:
        emulator.set_faults(latency=0.1)
        started = time.monotonic()
        requests.get(emulator.base_url + "/x", timeout=5)
        assert time.monotonic() - started >= 0.1


def test_fault_knobs_are_validated():
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError, match="cannot exceed 1"):
        Faults(error_rate=0.6, throttle_rate=0.6)


def test_served_files_bypass_faults():
    with EchoEmulator(faults=Faults(error_rate=1.0)) as emulator:
        url = emulator.serve_file("/cdn/a.txt", b"hello", "text/plain")
        assert requests.get(url, timeout=5).content == b"hello"
        assert requests.get(emulator.base_url + "/api", timeout=5).status_code == 500


# -- shop generator --------------------------------------------------------------------------------


def test_generated_shop_is_the_same_for_the_same_seed():
    assert generate_shop(50, seed=9, now=1_750_000_000) == generate_shop(
        50, seed=9, now=1_750_000_000
    )
    assert generate_shop(50, seed=9, now=1_750_000_000) != generate_shop(
        50, seed=10, now=1_750_000_000
    )


def test_generated_shop_has_the_awkward_cases_a_real_shop_has():
    now = 1_750_000_000
    pos_skus = [f"POS-{n:05d}" for n in range(3000)]
    shop = generate_shop(2000, seed=4, pos_skus=pos_skus, now=now)
    skus = [variant.sku for item in shop for variant in item.variants]
    in_pos = {sku.lower() for sku in pos_skus}
    by_key = Counter(sku.strip().lower() for sku in skus if sku)

    assert any(item.has_variants for item in shop)
    assert any(not item.has_variants for item in shop)
    assert {len(item.variants) for item in shop if item.has_variants} <= set(range(1, 7))
    assert all(len(item.option_names) in (1, 2) for item in shop if item.has_variants)
    assert "" in skus  # blank SKUs
    assert any(count > 1 for count in by_key.values())  # duplicate SKUs
    assert any(sku and sku.strip().lower() not in in_pos for sku in skus)  # unknown to the POS
    matching = [sku for sku in skus if sku.strip().lower() in in_pos]
    assert len(matching) > 0.7 * len(skus)  # most listings carry a POS SKU
    assert any(sku != sku.strip() for sku in matching)  # surrounding spaces
    assert any(sku.strip() not in pos_skus for sku in matching)  # another letter case
    assert all(now - 90 * 86400 <= item.updated_at <= now - 3600 for item in shop)
    assert {item.status for item in shop} == {"live", "inactive"}


def test_generated_shop_follows_its_mix():
    mix = ShopMix(variant_share=0, blank_sku_share=0, duplicate_sku_share=0, inactive_share=0)

    shop = generate_shop(300, seed=1, mix=mix)

    skus = [item.variants[0].sku for item in shop]
    assert all(not item.has_variants and item.status == "live" for item in shop)
    assert all(skus)
    assert len(set(skus)) == len(skus)


# -- Shopee emulator ------------------------------------------------------------------------------


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


# -- command --------------------------------------------------------------------------------------


def test_emulator_command_help_renders():
    with pytest.raises(SystemExit):
        call_command("emulator", "--help")


def test_emulator_command_refuses_an_unknown_marketplace():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("emulator", "ebay")


def test_emulator_registry():
    assert emulator_class("shopee") is ShopeeEmulator
    with pytest.raises(LookupError, match="no emulator for ebay"):
        emulator_class("ebay")
