"""The WooCommerce emulator's API rules, called with requests signed here by hand,
independently of the client under test."""

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
import requests

from channels.adapters.base import OrderState
from channels.emulators.woocommerce import API, WooCommerceEmulator
from tests.channels.builders import shop_item


@pytest.fixture
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator(items=30, seed=11) as emulator:
        yield emulator


def pct(value: str) -> str:
    return quote(value, safe="~")


def call(
    emulator: WooCommerceEmulator,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    secret: str | None = None,
    timestamp: int | None = None,
    drop: str = "",
) -> requests.Response:
    """One OAuth 1.0a-signed call, signed from the documented steps."""
    url = emulator.base_url + API + path
    query = {str(k): str(v) for k, v in (params or {}).items()}
    query.update(
        oauth_consumer_key=emulator.consumer_key,
        oauth_timestamp=str(int(time.time()) if timestamp is None else timestamp),
        oauth_nonce=uuid.uuid4().hex,
        oauth_signature_method="HMAC-SHA256",
    )
    pairs = "%26".join(pct(pct(k)) + "%3D" + pct(pct(v)) for k, v in sorted(query.items()))
    base = f"{method}&{pct(url)}&{pairs}"
    key = f"{secret or emulator.consumer_secret}&".encode()
    query["oauth_signature"] = base64.b64encode(
        hmac.new(key, base.encode(), hashlib.sha256).digest()
    ).decode()
    query.pop(drop, None)
    return requests.request(method, url, params=query, json=body, timeout=5)


def test_a_call_without_credentials_is_refused_by_the_route(woo):
    reply = requests.get(woo.base_url + API + "/products", timeout=5)

    assert reply.status_code == 401
    assert reply.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({"secret": "cs_wrong"}, "Invalid signature - provided signature does not match."),
        ({"timestamp": 1_000_000_000}, "Invalid timestamp."),
        ({"drop": "oauth_nonce"}, "Missing OAuth parameter oauth_nonce"),
    ],
)
def test_bad_oauth_is_refused_with_woocommerces_messages(woo, how, message):
    reply = call(woo, "GET", "/products", **how)

    assert reply.status_code == 401
    assert reply.json()["message"] == message


def test_unknown_routes_are_wordpress_404s(woo):
    reply = call(woo, "GET", "/widgets")

    assert reply.status_code == 404
    assert reply.json()["code"] == "rest_no_route"


def test_pages_carry_wordpress_totals_and_links(woo):
    reply = call(woo, "GET", "/products", params={"per_page": 7, "page": 2, "orderby": "id"})

    assert len(reply.json()) == 7
    assert reply.headers["X-WP-Total"] == "30"
    assert reply.headers["X-WP-TotalPages"] == "5"
    assert 'rel="next"' in reply.headers["Link"]
    assert 'rel="prev"' in reply.headers["Link"]


def test_per_page_over_100_is_an_invalid_parameter(woo):
    reply = call(woo, "GET", "/products", params={"per_page": 101})

    assert reply.status_code == 400
    assert reply.json()["code"] == "rest_invalid_param"
    assert "per_page" in reply.json()["data"]["params"]


def test_a_batch_over_100_items_is_refused_whole(woo):
    product_id = woo.product_ids(kind="simple")[0]
    before = woo.listing_quantities()

    reply = call(
        woo,
        "POST",
        "/products/batch",
        body={"update": [{"id": int(product_id), "stock_quantity": 1}] * 101},
    )

    assert reply.status_code == 413
    assert reply.json()["code"] == "woocommerce_rest_request_entity_too_large"
    assert woo.listing_quantities() == before


def test_prices_must_be_strings_and_a_refused_item_changes_nothing(woo):
    first, second = woo.product_ids(kind="simple")[:2]
    before = woo.listing_prices()

    reply = call(
        woo,
        "POST",
        "/products/batch",
        body={
            "update": [
                {"id": int(first), "regular_price": 12.5, "stock_quantity": 3},
                {"id": int(second), "regular_price": "12.50"},
            ]
        },
    )

    refused, done = reply.json()["update"]
    assert reply.status_code == 200
    assert refused == {
        "id": int(first),
        "error": {
            "code": "rest_invalid_param",
            "message": "Invalid parameter(s): regular_price",
            "data": {
                "status": 400,
                "params": {"regular_price": "regular_price is not of type string."},
            },
        },
    }
    assert done["regular_price"] == "12.50"
    after = woo.listing_prices()
    assert after[(first, "")] == before[(first, "")]
    assert after[(second, "")] == Decimal("12.50")


def test_modified_after_is_in_site_time_unless_dates_are_gmt(woo):
    # given: a product changed now; the site clock runs 7 hours ahead of UTC
    product_id = woo.product_ids()[0]
    woo.touch_item(product_id, name="Fresh")
    site_time = datetime.fromisoformat(woo.product(product_id)["date_modified"])
    just_before = (site_time - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    # when: the same wall time, read as site time, then as UTC (7 hours later)
    as_site_time = call(woo, "GET", "/products", params={"modified_after": just_before})
    as_gmt = call(
        woo, "GET", "/products", params={"modified_after": just_before, "dates_are_gmt": "true"}
    )
    # then
    assert [p["id"] for p in as_site_time.json()] == [int(product_id)]
    assert as_gmt.json() == []


def test_a_faulted_write_changes_nothing_and_its_retry_has_one_effect(woo):
    product_id = woo.product_ids(kind="simple")[0]
    body = {"update": [{"id": int(product_id), "stock_quantity": 77}]}
    woo.set_faults(error_rate=1.0)

    failed = call(woo, "POST", "/products/batch", body=body)
    woo.set_faults(error_rate=0.0)
    done = call(woo, "POST", "/products/batch", body=body)

    assert failed.status_code in (500, 503)
    assert done.status_code == 200
    assert woo.listing_quantities()[(product_id, "")] == 77
    assert woo.update_calls("stock") == 1


def test_throttling_looks_like_a_host_in_front_of_wordpress(woo):
    woo.set_faults(throttle_rate=1.0, retry_after=0.25)

    reply = call(woo, "GET", "/products")

    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "0.25"
    assert reply.headers["Content-Type"] == "text/html"


def test_category_names_come_escaped_and_a_twin_is_term_exists(woo):
    created = call(woo, "POST", "/products/categories", body={"name": "Food & Drink"})
    twin = call(woo, "POST", "/products/categories", body={"name": "food & drink"})

    assert created.status_code == 201
    assert created.json()["name"] == "Food &amp; Drink"
    assert twin.status_code == 400
    assert twin.json()["code"] == "term_exists"
    assert twin.json()["data"]["resource_id"] == created.json()["id"]


def test_trash_then_delete_for_good(woo):
    product_id = woo.product_ids(kind="variable")[0]
    variation_id = woo.variations(product_id)[0]["id"]

    not_trashable = call(woo, "DELETE", f"/products/{product_id}/variations/{variation_id}")
    trashed = call(woo, "DELETE", f"/products/{product_id}")
    again = call(woo, "DELETE", f"/products/{product_id}")
    listed = call(woo, "GET", "/products", params={"status": "trash"})
    gone = call(woo, "DELETE", f"/products/{product_id}", params={"force": "true"})
    missing = call(woo, "GET", f"/products/{product_id}")

    assert not_trashable.status_code == 501
    assert trashed.json()["status"] == "trash"
    assert again.status_code == 410
    assert [p["id"] for p in listed.json()] == [int(product_id)]
    assert gone.status_code == 200
    assert (missing.status_code, missing.json()["code"]) == (
        404,
        "woocommerce_rest_product_invalid_id",
    )
    assert not any(ref[0] == product_id for ref in woo.listing_quantities())


def test_helpers_change_the_store_as_a_seller_would(woo):
    product_id = woo.product_ids(kind="simple", status="publish")[0]
    modified = woo.product(product_id)["date_modified_gmt"]

    woo.touch_item(product_id, name="Renamed by the seller")
    renamed = woo.product(product_id)
    woo.remove_item(product_id)

    assert renamed["name"] == "Renamed by the seller"
    assert renamed["date_modified_gmt"] > modified
    assert woo.product(product_id)["status"] == "trash"
    assert (product_id, "") not in woo.listing_quantities()


def test_orders_are_read_only_and_keep_woocommerces_shape(woo):
    variation = next(ref for ref in woo.listing_quantities() if ref[1])
    number = woo.create_order([(*variation, 2)], state=OrderState.SHIPPED)

    order = call(woo, "GET", f"/orders/{number}").json()
    write = call(woo, "POST", f"/orders/{number}", body={"status": "completed"})

    assert order["status"] == "shipped"
    assert order["line_items"][0]["variation_id"] == int(variation[1])
    assert order["date_paid_gmt"] is not None
    assert write.status_code == 404  # this emulator serves no order writes


def test_stock_moves_with_the_order_status_as_woocommerce_core_moves_it():
    # WooCommerce core: reduce on processing/on-hold/completed, restore on
    # cancelled/pending/failed, each once in a row.
    with WooCommerceEmulator(items=0, seed=31) as emulator:
        item_id = emulator.put_item(shop_item("Tee", "TEE", quantity=10))
        [key] = [key for key in emulator.listing_quantities() if key[0] == str(item_id)]
        number = emulator.create_order([(*key, 2)], state=OrderState.UNPAID)  # pending
        steps = [
            ("on-hold", 8), ("processing", 8), ("failed", 10), ("pending", 10),
            ("processing", 8), ("completed", 8), ("cancelled", 10), ("cancelled", 10),
        ]  # fmt: skip
        seen = []
        for status, _ in steps:
            emulator.set_order_status(number, status)
            seen.append((status, emulator.listing_quantities()[key]))
        assert seen == steps
        assert emulator.create_order([(*key, 1)], state=OrderState.UNPAID)
        assert emulator.listing_quantities()[key] == 10  # a pending order reduces nothing
