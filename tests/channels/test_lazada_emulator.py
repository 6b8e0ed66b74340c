"""The Lazada emulator's API rules, checked with requests signed here by hand, independently of
the client under test."""

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from channels.adapters.base import OrderState
from channels.adapters.lazada.credentials import LazadaCredentials
from channels.emulators import emulator_class
from channels.emulators.base import Faults
from channels.emulators.lazada import LazadaEmulator
from channels.marketplaces import BY_KIND
from tests.channels.builders import shop_item

ERROR_SHAPE = {"code", "type", "message", "request_id"}


@pytest.fixture
def lazada():
    with LazadaEmulator(items=12, seed=11) as emulator:
        yield emulator


def call(
    emulator: LazadaEmulator,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    secret: str | None = None,
    timestamp: str | None = None,
    token: bool = True,
    prefix: str = "",
) -> dict[str, Any]:
    """A call signed as Lazada documents: UPPERCASE hex HMAC-SHA256 over path + sorted pairs."""
    creds = emulator.credentials
    sent = {
        **(params or {}),
        "app_key": creds["app_key"],
        "timestamp": timestamp or str(int(time.time() * 1000)),
        "sign_method": "sha256",
    }
    if token:
        sent["access_token"] = creds["access_token"]
    base = path + "".join(f"{k}{v}" for k, v in sorted(sent.items()))
    key = (secret or creds["app_secret"]).encode()
    sent["sign"] = hmac.new(key, base.encode(), hashlib.sha256).hexdigest().upper()
    url = emulator.base_url + prefix + path
    if method == "GET":
        response = requests.get(url, params=sent, timeout=5)
    else:
        response = requests.post(url, data=sent, timeout=5)
    assert response.status_code == 200  # Lazada answers errors inside a 200 body
    return response.json()


def price_payload(rows: list[dict[str, Any]]) -> str:
    skus = "".join(
        "<Sku>" + "".join(f"<{k}>{v}</{k}>" for k, v in row.items()) + "</Sku>" for row in rows
    )
    return f"<Request><Product><Skus>{skus}</Skus></Product></Request>"


# -- authentication ------------------------------------------------------------------------------


def test_a_well_signed_call_is_answered_under_rest_and_at_the_root(lazada):
    for prefix in ("", "/rest"):
        answer = call(lazada, "GET", "/seller/get", prefix=prefix)
        assert answer["code"] == "0"
        assert answer["data"]["seller_id"]


def test_a_wrong_signature_is_refused_in_lazadas_error_shape(lazada):
    answer = call(lazada, "GET", "/seller/get", secret="not-the-secret")

    assert set(answer) >= ERROR_SHAPE
    assert answer["code"] == "IncompleteSignature"


def test_a_missing_parameter_is_named(lazada):
    response = requests.get(
        lazada.base_url + "/seller/get", params={"app_key": "123456"}, timeout=5
    )

    assert response.json()["code"] == "MissingParameter"
    assert "timestamp" in response.json()["message"]


def test_timestamps_are_milliseconds_or_iso_within_two_hours(lazada):
    three_hours_ago = str(int((time.time() - 3 * 3600) * 1000))
    iso_now = datetime.now(UTC).isoformat(timespec="seconds")

    assert call(lazada, "GET", "/seller/get", timestamp=three_hours_ago)["code"] == (
        "InvalidTimestamp"
    )
    assert call(lazada, "GET", "/seller/get", timestamp=iso_now)["code"] == "0"


def test_an_expired_access_token_is_illegal(lazada):
    lazada.expire_access_tokens()

    assert call(lazada, "GET", "/seller/get")["code"] == "IllegalAccessToken"


def test_the_credentials_are_what_the_adapter_schema_accepts(lazada):
    assert LazadaCredentials.model_validate(lazada.credentials).as_dict() == lazada.credentials
    assert lazada.wrong_credentials()["app_secret"] != lazada.credentials["app_secret"]


# -- products --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "51"}, "19"),
        ({"offset": "10001"}, "14"),
        ({"update_after": "yesterday"}, "17"),
        ({"filter": "everything"}, "36"),
    ],
)
def test_products_get_refuses_what_lazada_refuses(lazada, params, code):
    assert call(lazada, "GET", "/products/get", params)["code"] == code


def test_products_get_pages_by_offset_with_a_total(lazada):
    first = call(lazada, "GET", "/products/get", {"filter": "all", "limit": "5", "offset": "0"})
    last = call(lazada, "GET", "/products/get", {"filter": "all", "limit": "5", "offset": "10"})

    assert first["data"]["total_products"] == 12
    assert len(first["data"]["products"]) == 5
    assert len(last["data"]["products"]) == 2


def test_more_than_50_skus_in_one_update_are_refused_whole(lazada):
    before = lazada.listing_quantities()
    rows = [{"ItemId": "1", "SkuId": str(n), "Quantity": "1"} for n in range(51)]

    answer = call(
        lazada, "POST", "/product/price_quantity/update", {"payload": price_payload(rows)}
    )

    assert answer["code"] == "4171"
    assert lazada.listing_quantities() == before


def test_updates_are_read_from_xml_and_from_json(lazada):
    (item_a, sku_a), (item_b, sku_b) = list(lazada.listing_quantities())[:2]
    xml = price_payload([{"ItemId": item_a, "SkuId": sku_a, "Quantity": "31"}])
    row = {"ItemId": item_b, "SkuId": sku_b, "Price": "8.80"}
    as_json = json.dumps({"Request": {"Product": {"Skus": {"Sku": [row]}}}})

    answers = [
        call(lazada, "POST", "/product/price_quantity/update", {"payload": payload})
        for payload in (xml, as_json)
    ]

    assert [answer["code"] for answer in answers] == ["0", "0"]
    assert lazada.listing_quantities()[(item_a, sku_a)] == 31
    assert lazada.listing_prices()[(item_b, sku_b)] == Decimal("8.80")
    assert (lazada.update_calls("stock"), lazada.update_calls("price")) == (1, 1)


def test_an_edit_of_an_item_while_another_is_applied_is_refused_with_4147():
    # given: Lazada applying an edit for as long as a round trip takes (0.3 s here)
    with LazadaEmulator(items=6, seed=11, faults=Faults(latency=0.3)) as lazada:
        keys = list(lazada.listing_quantities())
        (item, sku), (other_item, other_sku) = keys[0], next(k for k in keys if k[0] != keys[0][0])
        before = lazada.listing_quantities()

        def edit(item_id: str, sku_id: str, quantity: int) -> dict[str, Any]:
            row = {"ItemId": item_id, "SkuId": sku_id, "Quantity": str(quantity)}
            payload = {"payload": price_payload([row])}
            return call(lazada, "POST", "/product/price_quantity/update", payload)

        # when: two edits of one item and one of another item sent at the same time
        with ThreadPoolExecutor(3) as pool:
            answers = list(
                pool.map(edit, (item, item, other_item), (sku, sku, other_sku), (11, 12, 13))
            )
        # then: one edit of the first item was refused, without changing anything, and the
        # other item's edit went through beside the first
        codes = [answer["code"] for answer in answers]
        assert sorted(codes[:2]) == ["0", "4147"]
        assert codes[2] == "0"
        quantities = lazada.listing_quantities()
        assert quantities[(item, sku)] == (11 if codes[0] == "0" else 12)
        assert quantities[(other_item, other_sku)] == 13
        assert before[(item, sku)] not in (11, 12)
        assert lazada.log.faults["4147"] == 1
        # once the first edit is applied, the item takes edits again
        assert edit(item, sku, 14)["code"] == "0"
        assert lazada.listing_quantities()[(item, sku)] == 14


@pytest.mark.parametrize(("payload", "code"), [("not a payload", "1001"), ("<Request><", "5")])
def test_an_unreadable_payload_is_refused(lazada, payload, code):
    answer = call(lazada, "POST", "/product/price_quantity/update", {"payload": payload})

    assert answer["code"] == code


def test_a_create_lazada_would_refuse_creates_nothing(lazada):
    items = lazada.item_ids()
    package = {f"package_{side}": "10" for side in ("length", "width", "height")}
    sku = {"SellerSku": "M-1", "price": "5", "package_weight": "0.3", **package}
    product = {
        "PrimaryCategory": "10002006",
        "Images": {"Image": ["https://elsewhere.test/mug.jpg"]},
        "Attributes": {"name": "Mug"},
        "Skus": {"Sku": [sku]},
    }

    answer = call(
        lazada,
        "POST",
        "/product/create",
        {"payload": json.dumps({"Request": {"Product": product}})},
    )

    assert answer["code"] == "4138"  # images must be migrated to Lazada first
    assert lazada.item_ids() == items


# -- faults ------------------------------------------------------------------------------------


def test_throttled_calls_get_lazadas_throttling_codes_in_a_200_body():
    with LazadaEmulator(seed=3, faults=Faults(throttle_rate=1.0)) as emulator:
        codes = {call(emulator, "GET", "/seller/get")["code"] for _ in range(12)}

    assert codes <= {"901", "4154", "ApiCallLimit"}
    assert len(codes) > 1


def test_a_faulted_write_changes_nothing(lazada):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    before = lazada.listing_quantities()
    lazada.set_faults(error_rate=1.0)
    payload = price_payload([{"ItemId": item_id, "SkuId": sku_id, "Quantity": "99"}])
    creds = lazada.credentials
    sent = {"payload": payload, "app_key": creds["app_key"], "timestamp": "0", "sign": "x"}

    response = requests.post(
        lazada.base_url + "/product/price_quantity/update", data=sent, timeout=5
    )

    assert response.status_code == 500
    assert lazada.listing_quantities() == before


# -- orders ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingParameter"),
        ({"update_after": "2025-01-01T00:00:00+08:00", "limit": "101"}, "19"),
        ({"update_after": "2025-01-01T00:00:00+08:00", "offset": "5001"}, "14"),
        ({"update_after": "2025-01-01T00:00:00+08:00", "sort_direction": "UP"}, "74"),
    ],
)
def test_orders_get_refuses_what_lazada_refuses(lazada, params, code):
    assert call(lazada, "GET", "/orders/get", params)["code"] == code


def test_orders_have_one_item_per_unit_and_per_item_statuses(lazada):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    number = lazada.create_order([(item_id, sku_id, 2)], state=OrderState.PAID)
    lazada.set_order_statuses(number, ["shipped", "canceled"])

    header = call(lazada, "GET", "/order/get", {"order_id": number})["data"]
    items = call(lazada, "GET", "/orders/items/get", {"order_ids": f"[{number}]"})["data"]

    assert header["statuses"] == ["shipped", "canceled"]
    assert [item["status"] for item in items[0]["order_items"]] == ["shipped", "canceled"]
    assert call(lazada, "GET", "/order/get", {"order_id": "1"})["code"] == "16"


def test_an_item_without_options_is_ordered_by_item_alone(lazada):
    item_id = lazada.put_item(shop_item("Plain Mug", "MUG-9", price="5", quantity=3))
    several = next(i for i, _ in lazada.listing_quantities() if lazada_sku_count(lazada, i) > 1)

    number = lazada.create_order([(item_id, "", 1)])

    assert number.isdigit()
    with pytest.raises(ValueError, match="SKUs: name one"):
        lazada.create_order([(several, "", 1)])


def lazada_sku_count(emulator: LazadaEmulator, item_id: str) -> int:
    return len(emulator.product(item_id)["skus"])


# -- registry --------------------------------------------------------------------------------------


def test_the_registry_serves_this_emulator_on_its_demo_port():
    assert emulator_class("lazada") is LazadaEmulator
    assert BY_KIND["lazada"].demo_port == 9104
