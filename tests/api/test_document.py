"""What the OpenAPI document states, checked against what the server does: a client that builds
its requests from the document must find that every request it calls valid is taken, and that
the refusals it is told about are the ones it gets."""

import pytest

from channels.adapters import credentials_schema
from channels.models import Channel, Scan
from omni.api import ERROR_MEANINGS
from tests.api.schema import document_validator, openapi

pytestmark = pytest.mark.django_db


def component(name: str) -> dict:
    return openapi()["components"]["schemas"][name]


def body_of(method: str, path: str) -> dict:
    return openapi()["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def test_each_choice_field_lists_its_own_values():
    # Outlet, Channel and Scan each have a Kind: each field must list its own.
    assert component("OutletIn")["properties"]["kind"]["enum"] == ["store", "warehouse"]
    assert component("ScanIn")["properties"]["kind"]["enum"] == list(Scan.Kind.values)
    assert component("ChannelIn")["properties"]["kind"]["enum"] == list(Channel.Kind.values)


# Text fields are stripped of Unicode whitespace, then must not be blank; no NUL anywhere.
TRICKY_NAMES = [
    "Jakarta",
    "  Jakarta  ",
    " ",
    "\u3000",
    "\x85",
    "\x1c",
    "\ufeff",
    "\t\n",
    "Jak\x00arta",
    "\u200bx",
]


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_a_text_rule_in_the_document_is_the_rule_the_server_applies(api, name):
    allowed = document_validator(body_of("post", "/api/outlets")).is_valid(
        {"code": "jkt", "name": name}
    )
    response = api.post("/api/outlets", {"code": "jkt", "name": name})
    assert (response.status_code == 201) == allowed, response.content


AMOUNTS = [
    "49.90",
    "0",
    "9999999999.99",
    "10000000000",
    "49.999",
    "-1",
    "abc",
    49.9,
    0.07,
    0.1 + 0.2,
    1e-7,
    9999999999.99,
    10_000_000_000,
    12,
]


@pytest.mark.parametrize("price", AMOUNTS)
def test_an_amount_the_document_allows_is_taken(api, price):
    body = {"name": "Tee", "variants": [{"sku": "T-1", "retail_price": price}]}
    allowed = document_validator(body_of("post", "/api/products")).is_valid(body)
    response = api.post("/api/products", body)
    if allowed:
        assert response.status_code == 201, response.content
    else:
        assert response.status_code == 422


@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        ({"sku": "T-1", "outlet": "jkt", "delta": 1}, True),
        ({"sku": "T-1", "outlet": "jkt", "quantity": 1, "delta": None}, True),
        ({"sku": "T-1", "outlet": "jkt", "quantity": 1, "delta": 1}, False),
        ({"sku": "T-1", "outlet": "jkt"}, False),
        ({"sku": "T-1", "outlet": "jkt", "delta": None, "quantity": None}, False),
    ],
)
def test_the_one_of_rule_of_a_stock_change_is_stated(api, body, allowed):
    assert document_validator(body_of("post", "/api/stock/adjust")).is_valid(body) == allowed
    response = api.post("/api/stock/adjust", body)
    assert (response.status_code != 422) == allowed  # 404 when allowed: no such SKU


def test_the_one_of_rule_of_manual_download_order_is_stated():
    valid = document_validator(body_of("post", "/api/channels/{channel_id}/orders/download"))
    assert valid.is_valid({"order_number": "A1"})
    assert valid.is_valid({"order_numbers": ["A1", "A2"], "order_number": None})
    assert not valid.is_valid({"order_number": "A1", "order_numbers": ["A2"]})
    assert not valid.is_valid({})


def test_connecting_a_channel_states_the_credentials_each_kind_takes(api, shop):
    api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"})
    valid = document_validator(body_of("post", "/api/channels"))
    shopee = {
        "kind": "shopee",
        "name": "Shopee",
        "api_base_url": shop.base_url,
        "credentials": shop.credentials,
        "order_outlet": "jkt",
    }
    assert valid.is_valid(shopee)
    assert not valid.is_valid({**shopee, "kind": "lazada"})
    assert not valid.is_valid({**shopee, "credentials": {**shop.credentials, "partner_id": "x"}})
    required = set(credentials_schema("shopee").model_json_schema()["required"])
    assert required <= set(shop.credentials)
    # and the server agrees
    assert api.post("/api/channels", {**shopee, "kind": "lazada"}).status_code == 422
    assert api.post("/api/channels", shopee).status_code == 201


def test_a_retried_stock_change_documents_its_idempotency_key():
    parameters = openapi()["paths"]["/api/stock/adjust"]["post"]["parameters"]
    [key] = [p for p in parameters if p["name"] == "Idempotency-Key"]
    assert (key["in"], key["required"], key["schema"]["maxLength"]) == ("header", False, 255)


def test_every_error_status_an_operation_lists_says_what_it_means():
    for path, operations in openapi()["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) in ERROR_MEANINGS:
                    assert answer["description"] == ERROR_MEANINGS[int(status)], (method, path)


def test_every_write_lists_the_conflict_a_concurrent_write_can_cause():
    # A unique rule checked before writing can still lose a race: the answer is then a 409.
    writes = [
        (method, path)
        for path, operations in openapi()["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "patch", "delete") and operation.get("security")
    ]
    queued_only = {("post", "/api/channels/{channel_id}/inventory-sync")}
    missing = [
        (method, path)
        for method, path in writes
        if (method, path) not in queued_only
        and "409" not in openapi()["paths"][path][method]["responses"]
    ]
    assert missing == []
