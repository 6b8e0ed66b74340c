"""The Shopify emulator's API rules, called over raw HTTP (no adapter in between)."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from channels.emulators import emulator_class
from channels.emulators.shopify import ShopifyEmulator, parse, query_cost
from channels.marketplaces import BY_KIND

GRAPHQL = "/admin/api/2026-04/graphql.json"

INVENTORY_SET = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { createdAt changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}
"""


@pytest.fixture
def shopify() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(items=12, seed=11) as emulator:
        yield emulator


def gql(
    emulator: ShopifyEmulator,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    path: str = GRAPHQL,
) -> requests.Response:
    token = emulator.credentials["access_token"] if token is None else token
    return requests.post(
        emulator.base_url + path,
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
        timeout=5,
    )


def codes(reply: requests.Response) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in reply.json().get("errors", [])]


def first_stock_row(emulator: ShopifyEmulator) -> tuple[str, str, str]:
    """(item id, variant ref, inventory item gid) of the shop's first listing."""
    reply = gql(
        emulator,
        "{ products(first: 1) { nodes { id hasOnlyDefaultVariant "
        "variants(first: 1) { nodes { id inventoryItem { id } } } } } }",
    )
    product = reply.json()["data"]["products"]["nodes"][0]
    variant = product["variants"]["nodes"][0]
    ref = "" if product["hasOnlyDefaultVariant"] else variant["id"].rsplit("/", 1)[1]
    return product["id"].rsplit("/", 1)[1], ref, variant["inventoryItem"]["id"]


def stock_input(emulator: ShopifyEmulator, item: str, quantity: int) -> dict[str, Any]:
    row = {
        "inventoryItemId": item,
        "locationId": emulator.location_gid,
        "quantity": quantity,
        "changeFromQuantity": None,
    }
    return {"name": "available", "reason": "correction", "quantities": [row]}


# -- authentication and versions -------------------------------------------------------------------


def test_a_wrong_token_gets_http_401_in_shopifys_words(shopify):
    reply = gql(shopify, "{ shop { name } }", token="shpat_nope")

    assert reply.status_code == 401
    assert reply.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_only_the_pinned_api_version_is_served(shopify):
    reply = gql(shopify, "{ shop { name } }", path="/admin/api/2023-01/graphql.json")

    assert reply.status_code == 404


def test_refresh_tokens_are_single_use_and_need_the_client_secret(shopify):
    url = shopify.base_url + "/admin/oauth/access_token"
    creds = shopify.credentials
    body = {
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "grant_type": "refresh_token",
        "refresh_token": creds["refresh_token"],
    }

    wrong_secret = requests.post(url, json={**body, "client_secret": "x"}, timeout=5)
    first = requests.post(url, json=body, timeout=5)
    again = requests.post(url, json=body, timeout=5)

    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert first.status_code == 200
    assert set(first.json()) >= {"access_token", "expires_in", "refresh_token", "scope"}
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert gql(shopify, "{ shop { name } }", token=first.json()["access_token"]).status_code == 200


# -- the GraphQL subset ----------------------------------------------------------------------------


def test_replies_hold_exactly_the_fields_asked_for_with_their_cost(shopify):
    reply = gql(shopify, "query { shop { name } first: products(first: 2) { nodes { title } } }")

    payload = reply.json()
    assert set(payload["data"]) == {"shop", "first"}
    assert [set(node) for node in payload["data"]["first"]["nodes"]] == [{"title"}, {"title"}]
    cost = payload["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (1 + 2 + 2, 1 + 2 + 2)
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


def test_unknown_fields_undeclared_variables_and_bad_syntax_are_errors(shopify):
    unknown = gql(shopify, "{ shop { name planName } }")
    undeclared = gql(shopify, "query { products(first: $n) { nodes { id } } }", {"n": 1})
    broken = gql(shopify, "{ shop { name }")
    missing = gql(shopify, "query($n: Int!) { products(first: $n) { nodes { id } } }")

    assert unknown.status_code == 200
    assert codes(unknown) == ["undefinedField"]
    assert "planName" in unknown.json()["errors"][0]["message"]
    assert codes(undeclared) == ["variableNotDefined"]
    assert "Parse error" in broken.json()["errors"][0]["message"]
    assert codes(missing) == ["INVALID_VARIABLE"]


def test_cost_is_calculated_as_shopify_documents_it():
    query = """
    query($first: Int!) {
      products(first: $first) {
        nodes { id variants(first: 20) { nodes { id inventoryItem { id } } } }
        pageInfo { hasNextPage }
      }
    }
    """
    # connection 2 + 10 products x (1 + variants connection 2 + 20 x (1 + inventoryItem 1))
    assert query_cost(parse(query), {"first": 10}) == 2 + 10 * (1 + 2 + 20 * 2)
    assert (
        query_cost(parse("mutation { productDelete(input: {id: 1}) { deletedProductId } }"), {})
        == 10
    )


def test_a_query_over_1000_points_and_a_page_over_250_are_refused(shopify):
    expensive = gql(
        shopify, "{ products(first: 250) { nodes { variants(first: 10) { nodes { id } } } } }"
    )
    too_long = gql(shopify, "{ products(first: 251) { nodes { id } } }")

    assert codes(expensive) == ["MAX_COST_EXCEEDED"]
    assert expensive.json()["extensions"]["cost"]["requestedQueryCost"] == 2 + 250 * 13
    assert codes(too_long) == ["BAD_REQUEST"]


def test_cursor_pagination_walks_the_catalog_once(shopify):
    seen: list[str] = []
    after = None
    while True:
        page = gql(
            shopify,
            "query($after: String) { products(first: 5, after: $after) "
            "{ nodes { id } pageInfo { hasNextPage endCursor } } }",
            {"after": after},
        ).json()["data"]["products"]
        seen += [node["id"].rsplit("/", 1)[1] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == shopify.item_ids()


def test_unsupported_search_syntax_is_an_error_not_ignored(shopify):
    reply = gql(shopify, '{ products(first: 5, query: "title:Mug") { nodes { id } } }')

    assert codes(reply) == ["BAD_REQUEST"]


# -- throttling ------------------------------------------------------------------------------------


def test_the_leaky_bucket_throttles_and_refills():
    with ShopifyEmulator(items=3, seed=1, bucket_size=100, restore_rate=1000) as emulator:
        emulator.spend(100)
        throttled = gql(emulator, "{ products(first: 50) { nodes { id } } }")  # 52 points
        time.sleep(0.1)  # 100 points back
        served = gql(emulator, "{ products(first: 50) { nodes { id } } }")

    assert throttled.status_code == 200
    assert codes(throttled) == ["THROTTLED"]
    cost = throttled.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 52
    assert cost["throttleStatus"]["currentlyAvailable"] < 52
    assert served.json()["extensions"]["cost"]["actualQueryCost"] == 2 + 3
    assert emulator.throttled == 1


def test_injected_throttling_comes_in_both_of_shopifys_shapes():
    with ShopifyEmulator(seed=1, throttle_style="body", restore_rate=100) as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.25)
        body = gql(emulator, "{ shop { name } }")
    with ShopifyEmulator(seed=1, throttle_style="http") as emulator:
        emulator.set_faults(throttle_rate=1.0, retry_after=0.25)
        http = gql(emulator, "{ shop { name } }")

    cost = body.json()["extensions"]["cost"]
    wait = (cost["requestedQueryCost"] - cost["throttleStatus"]["currentlyAvailable"]) / cost[
        "throttleStatus"
    ]["restoreRate"]
    assert (body.status_code, codes(body), wait) == (200, ["THROTTLED"], 0.25)
    assert (http.status_code, http.headers["Retry-After"]) == (429, "0.25")


# -- inventory rules of 2026-04 --------------------------------------------------------------------


def test_inventory_mutations_need_an_idempotency_key_and_change_from_quantity(shopify):
    _, _, item = first_stock_row(shopify)
    no_key = INVENTORY_SET.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    row_without_cas = stock_input(shopify, item, 5)
    del row_without_cas["quantities"][0]["changeFromQuantity"]

    without_key = gql(shopify, no_key, {"input": stock_input(shopify, item, 5)})
    without_cas = gql(shopify, INVENTORY_SET, {"input": row_without_cas, "key": "k-1"})

    assert codes(without_key) == ["BAD_REQUEST"]
    assert "@idempotent" in without_key.json()["errors"][0]["message"]
    assert codes(without_cas) == ["INVALID_FIELD_ARGUMENTS"]
    assert shopify.update_calls("stock") == 0


def test_a_retried_stock_change_with_the_same_key_is_applied_once(shopify):
    item_id, ref, item = first_stock_row(shopify)
    variables = {"input": stock_input(shopify, item, 5), "key": "sync-42"}

    first = gql(shopify, INVENTORY_SET, variables)
    shopify.set_quantity(item_id, ref, 9)  # the merchant changes it meanwhile
    retried = gql(shopify, INVENTORY_SET, variables)  # e.g. the first reply was lost

    assert first.json()["data"] == retried.json()["data"]
    assert shopify.listing_quantities()[(item_id, ref)] == 9
    assert shopify.update_calls("stock") == 1


def test_a_refused_row_leaves_the_whole_stock_call_unapplied(shopify):
    item_id, ref, item = first_stock_row(shopify)
    before = shopify.listing_quantities()
    variables = {"input": stock_input(shopify, item, 5), "key": "k-2"}
    variables["input"]["quantities"].append(
        {**variables["input"]["quantities"][0], "inventoryItemId": "gid://shopify/InventoryItem/1"}
    )

    reply = gql(shopify, INVENTORY_SET, variables).json()["data"]["inventorySetQuantities"]

    assert reply["inventoryAdjustmentGroup"] is None
    assert reply["userErrors"] == [
        {
            "field": ["input", "quantities", "1", "inventoryItemId"],
            "message": "The specified inventory item could not be found.",
            "code": "INVALID_INVENTORY_ITEM",
        }
    ]
    assert shopify.listing_quantities() == before


def test_unknown_input_fields_are_refused_as_shopify_refuses_them(shopify):
    _, _, item = first_stock_row(shopify)
    variables = {
        "input": {**stock_input(shopify, item, 5), "ignoreCompareQuantity": True},
        "key": "k",
    }

    reply = gql(shopify, INVENTORY_SET, variables)

    assert codes(reply) == ["INVALID_VARIABLE"]
    assert "ignoreCompareQuantity" in reply.json()["errors"][0]["message"]


# -- the shop and its orders -----------------------------------------------------------------------


def test_the_registry_serves_this_emulator_on_its_demo_port():
    assert emulator_class("shopify") is ShopifyEmulator
    assert BY_KIND["shopify"].demo_port == 9105


def test_the_generated_shop_has_products_with_and_without_options(shopify):
    refs = shopify.listing_quantities()

    assert any(ref == "" for _, ref in refs)
    assert any(ref for _, ref in refs)
    assert set(refs) == set(shopify.listing_prices())


def test_orders_are_searchable_by_name_and_update_time(shopify):
    item_id, ref, _ = first_stock_row(shopify)
    number = shopify.create_order([(item_id, ref, 2)], state="shipped", at=1_790_000_000)

    by_name = gql(
        shopify,
        """{ orders(first: 5, query: "name:'#1001'") """
        """{ nodes { name displayFulfillmentStatus } } }""",
    )
    in_window = gql(
        shopify,
        """{ orders(first: 5, query: "updated_at:>='2026-09-21T14:13:20Z' AND """
        """updated_at:<'2026-09-21T14:13:21Z'") { nodes { name } } }""",
    )
    outside = gql(
        shopify,
        """{ orders(first: 5, query: "updated_at:>'2026-09-21T14:13:20Z'") { nodes { name } } }""",
    )

    assert number == "#1001"
    assert by_name.json()["data"]["orders"]["nodes"] == [
        {"name": "#1001", "displayFulfillmentStatus": "FULFILLED"}
    ]
    assert in_window.json()["data"]["orders"]["nodes"] == [{"name": "#1001"}]
    assert outside.json()["data"]["orders"]["nodes"] == []
    assert shopify.order_status(number) == ("PAID", "FULFILLED", False, False)
