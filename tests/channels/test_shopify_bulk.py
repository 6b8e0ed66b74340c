"""Full Shopify reads through Bulk Operations, over real HTTP against the emulator: the same
listings as the paginated read, a clean fall back to it when an operation cannot be used, and
no removal on a result file that is cut short. Then the emulator's bulk operations themselves,
called over raw HTTP, and the JSONL reader on its own.
"""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from channels.adapters.base import RemoteListing
from channels.adapters.paging import IncompleteRead
from channels.adapters.shopify import client
from channels.adapters.shopify.adapter import (
    BULK_POLL_FIRST,
    BULK_POLL_MAX,
    ShopifyAdapter,
    listings_from_product,
)
from channels.adapters.shopify.bulk import BulkOperation, bulk_listing_pages
from channels.emulators.shopify import ShopifyEmulator
from channels.models import Channel, Listing, Scan
from channels.scans import scan_request, scan_run
from tests.channels.builders import grid_item
from tests.channels.conftest import FAST_RETRY
from tests.factories import OutletFactory

GRAPHQL = "/admin/api/2026-04/graphql.json"


@pytest.fixture
def shop() -> Iterator[ShopifyEmulator]:
    """120 products, about a third with options, and one of 45 variants (more than the
    paginated read takes with a product)."""
    with ShopifyEmulator(items=120, seed=9, bulk_start=0.05) as emulator:
        emulator.put_item(grid_item("Big Grid Tee", 9, 5, sku="BIG"))
        yield emulator


def adapter_for(emulator: ShopifyEmulator, **overrides: Any) -> ShopifyAdapter:
    """An adapter that reads every full scan in bulk, unless told otherwise."""
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
        "bulk_from": 0,
    }
    options.update(overrides)
    return ShopifyAdapter(**options)


def paged(emulator: ShopifyEmulator) -> ShopifyAdapter:
    return adapter_for(emulator, bulk_from=10**9)


def read_all(adapter: ShopifyAdapter, **kwargs: Any) -> list[RemoteListing]:
    return [listing for page in adapter.iter_listing_pages(**kwargs) for listing in page]


def by_ref(listings: list[RemoteListing]) -> dict[tuple[str, str], RemoteListing]:
    refs = {(x.item_id, x.variant_id): x for x in listings}
    assert len(refs) == len(listings), "a listing was read twice"
    return refs


def downloads(emulator: ShopifyEmulator) -> int:
    return sum(n for path, n in emulator.log.counts.items() if path.startswith("/bulk-results/"))


# -- the adapter's bulk read ----------------------------------------------------------------------


def test_a_bulk_full_read_gives_exactly_the_listings_of_the_paginated_read(shop):
    # given: what the paginated query reads
    expected = by_ref(read_all(paged(shop)))
    shop.log.clear()
    adapter = adapter_for(shop)
    # when
    listings = read_all(adapter)
    # then: every listing, field for field, each once
    assert by_ref(listings) == expected
    assert {x.variant_id == "" for x in listings} == {True, False}
    assert shop.bulk_statuses() == ["COMPLETED"]
    assert (adapter.bulk_stats.started, adapter.bulk_stats.read) == (1, 1)
    assert adapter.bulk_stats.fallbacks == 0
    # one page of 40 products, the operation started, polled; the file downloaded once
    assert downloads(shop) == 1
    assert shop.log.count(GRAPHQL) == adapter.stats.calls - 1 < 10


def test_the_first_page_is_not_read_twice_and_the_rest_comes_in_pages_of_250_products():
    with ShopifyEmulator(items=600, seed=2, bulk_start=0.05) as emulator:
        pages = list(adapter_for(emulator).iter_listing_pages())

    products = [len({x.item_id for x in page}) for page in pages]
    assert products[0] == 40  # the paginated first page, which told the shop's size
    assert sum(products) == 600
    assert max(products[1:]) == 250


def test_a_small_shop_stays_on_the_paginated_read():
    # A bulk operation takes seconds to start however small: below `bulk_from` products
    # (the first page's count says) the few pages are quicker.
    with ShopifyEmulator(items=90, seed=3) as emulator:
        small = adapter_for(emulator, bulk_from=100)
        large = adapter_for(emulator, bulk_from=90)

        assert len({x.item_id for x in read_all(small)}) == 90
        assert emulator.bulk_statuses() == []
        assert small.stats.calls == 3  # three pages of 40

        assert len({x.item_id for x in read_all(large)}) == 90
        assert emulator.bulk_statuses() == ["COMPLETED"]


def test_incremental_reads_never_start_a_bulk_operation(shop):
    watermark = datetime.fromtimestamp(time.time() - 5, tz=UTC)
    changed = shop.item_ids()[3]
    shop.touch_item(changed, name="Renamed Tee")
    adapter = adapter_for(shop)

    listings = read_all(adapter, updated_since=watermark)

    assert {x.item_id for x in listings} == {changed}
    assert shop.bulk_statuses() == []
    assert adapter.bulk_stats.started == 0
    assert not any("bulkOperationRunQuery" in call.body["query"] for call in shop.log.writes)


@pytest.mark.parametrize(
    ("fault", "status", "says"),
    [
        ("fail", "FAILED", "ended FAILED (INTERNAL_SERVER_ERROR)"),
        ("timeout", "FAILED", "ended FAILED (TIMEOUT)"),
        ("cancel", "CANCELED", "ended CANCELED"),
        ("expire", "EXPIRED", "ended EXPIRED"),
    ],
)
def test_an_operation_that_fails_or_expires_falls_back_to_the_pages(shop, fault, status, says):
    # given: the next bulk operation will not complete with a result
    expected = by_ref(read_all(paged(shop)))
    shop.set_bulk_fault(fault)
    adapter = adapter_for(shop)
    # when
    listings = read_all(adapter)
    # then: the paginated read took over after its first page, and read every listing once
    assert by_ref(listings) == expected
    assert shop.bulk_statuses() == [status]
    assert downloads(shop) == 0  # no partial data was used
    assert (adapter.bulk_stats.fallbacks, adapter.bulk_stats.read) == (1, 0)
    assert says in adapter.bulk_stats.last_fallback


@pytest.mark.parametrize("limit", [1, 5])
def test_bulk_queries_already_running_on_the_shop_make_it_fall_back(limit):
    with ShopifyEmulator(items=60, seed=4, bulk_start=60, bulk_limit=limit) as emulator:
        # given: another process of the app runs as many bulk queries as the shop allows
        for _ in range(limit):
            started = run_bulk(emulator, client.BULK_PRODUCTS)
            assert started["data"]["bulkOperationRunQuery"]["userErrors"] == []
        adapter = adapter_for(emulator)
        # when
        listings = read_all(adapter)
        # then
        assert len({x.item_id for x in listings}) == 60
        assert adapter.bulk_stats.fallbacks == 1
        assert adapter.bulk_stats.started == 0
        said = adapter.bulk_stats.last_fallback
        assert ("already in progress" if limit == 1 else "limit reached") in said
        assert emulator.bulk_statuses() == ["CREATED"] * limit


def test_an_operation_still_running_past_the_wait_limit_is_canceled_for_the_pages():
    with ShopifyEmulator(items=60, seed=4, bulk_start=60) as emulator:
        adapter = adapter_for(emulator, bulk_wait_limit=0.3)

        listings = read_all(adapter)

        assert len({x.item_id for x in listings}) == 60
        assert emulator.bulk_statuses() == ["CANCELED"]  # its slot is free again
        assert "still running after 0.3 s" in adapter.bulk_stats.last_fallback


def test_polls_wait_a_fifth_of_a_second_then_half_as_long_again_each_time():
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with ShopifyEmulator(items=60, seed=4, bulk_start=1.2) as emulator:
        adapter = adapter_for(emulator, sleep=sleep)

        assert len({x.item_id for x in read_all(adapter)}) == 60

    assert waits[:3] == pytest.approx([BULK_POLL_FIRST, BULK_POLL_FIRST * 1.5, 0.45])
    assert all(wait <= BULK_POLL_MAX for wait in waits)
    assert adapter.stats.seconds >= sum(waits)  # waiting on Shopify, as the scan reports it


@pytest.mark.parametrize("cut", ["truncate", "cut_lines"])
def test_a_result_file_cut_short_is_an_incomplete_read(shop, cut):
    shop.set_bulk_fault(cut)

    with pytest.raises(IncompleteRead) as incomplete:
        read_all(adapter_for(shop))

    said = str(incomplete.value)
    assert "not a JSON object" in said if cut == "truncate" else "cut short" in said


def test_the_result_is_downloaded_without_the_access_token(shop):
    read_all(adapter_for(shop))

    (headers,) = shop.bulk_downloads
    assert "x-shopify-access-token" not in headers


def test_throttling_and_server_errors_during_a_bulk_read_are_retried(shop):
    expected = by_ref(read_all(paged(shop)))
    shop.log.clear()
    shop.set_faults(throttle_rate=0.25, error_rate=0.1, retry_after=0.01)
    adapter = adapter_for(shop)

    listings = read_all(adapter)

    assert by_ref(listings) == expected
    assert adapter.bulk_stats.read == 1
    faults = shop.log.faults
    assert adapter.stats.retries == faults["error"] + faults["throttle"] > 0


# -- a full scan: nothing removed on a cut file ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("cut", ["truncate", "cut_lines"])
def test_a_full_scan_on_a_cut_result_fails_and_removes_nothing(shop, cut, monkeypatch):
    # given: a channel scanned in full through a bulk operation
    monkeypatch.setattr(ShopifyAdapter, "bulk_from", 0)
    channel = Channel.objects.create(
        kind="shopify",
        name="Shopify shop",
        api_base_url=shop.base_url,
        credentials=shop.credentials,
        order_outlet=OutletFactory(code="jkt"),
    )
    first = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    assert first.status == Scan.Status.SUCCEEDED, first.error
    before = set(Listing.objects.filter(channel=channel).present().values_list("pk", flat=True))
    assert len(before) == len(shop.listing_quantities())
    # when: the next operation's file comes cut short
    shop.set_bulk_fault(cut)
    scan = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    # then
    assert shop.bulk_statuses() == ["COMPLETED", "COMPLETED"]
    assert scan.status == Scan.Status.FAILED
    assert "bulk result" in scan.error
    assert "no listing was marked removed" in scan.error
    assert scan.removed == scan.removal_held == 0
    assert set(Listing.objects.filter(channel=channel).present().values_list("pk", flat=True)) == (
        before
    )
    channel.refresh_from_db()
    assert channel.last_scan_at == first.started_at


# -- the emulator's bulk operations, over raw HTTP -------------------------------------------------


def gql(emulator: ShopifyEmulator, query: str, variables: dict[str, Any] | None = None) -> Any:
    reply = requests.post(
        emulator.base_url + GRAPHQL,
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": emulator.credentials["access_token"]},
        timeout=5,
    )
    return reply.json()


def run_bulk(emulator: ShopifyEmulator, query: str, *, grouped: bool = False) -> dict[str, Any]:
    mutation = (
        "mutation($q: String!, $g: Boolean!) { bulkOperationRunQuery(query: $q, "
        "groupObjects: $g) { bulkOperation { id status } userErrors { field message code } } }"
    )
    return gql(emulator, mutation, {"q": query, "g": grouped})


def poll(emulator: ShopifyEmulator, gid: str) -> dict[str, Any]:
    query = (
        f"query($id: ID!) {{ node(id: $id) {{ ... on BulkOperation {{ {client.BULK_FIELDS} }} }} }}"
    )
    return gql(emulator, query, {"id": gid})["data"]["node"]


def completed(emulator: ShopifyEmulator, gid: str, *, within: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while (node := poll(emulator, gid))["status"] in ("CREATED", "RUNNING"):
        assert time.monotonic() < deadline, node
        time.sleep(0.05)
    return node


def lines_of(url: str) -> list[dict[str, Any]]:
    body = requests.get(url, timeout=5).content
    return [json.loads(line) for line in body.splitlines()]


def test_a_bulk_query_writes_every_product_then_its_variants_with_their_parent_id():
    with ShopifyEmulator(items=30, seed=6, bulk_start=0) as emulator:
        started = run_bulk(emulator, client.BULK_PRODUCTS)
        gid = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        node = completed(emulator, gid)
        lines = lines_of(node["url"])
        variants = sum(len(emulator.item(i)["variants"]) for i in emulator.item_ids())

    assert started["extensions"]["cost"]["actualQueryCost"] == 10
    assert node["status"] == "COMPLETED"
    assert (int(node["objectCount"]), int(node["rootObjectCount"])) == (30 + variants, 30)
    assert int(node["fileSize"]) == sum(
        len(json.dumps(x, separators=(",", ":"))) + 1 for x in lines
    )
    products = [x for x in lines if "__parentId" not in x]
    assert len(products) == 30
    assert set(products[0]) == {
        "id",
        "title",
        "status",
        "updatedAt",
        "hasOnlyDefaultVariant",
        "variantsCount",
    }
    seen: set[str] = set()
    for line in lines:  # ungrouped: a parent comes before its variants, not right before
        if "__parentId" in line:
            assert line["__parentId"] in seen
            assert set(line) == {"id", "sku", "title", "price", "inventoryQuantity", "__parentId"}
        else:
            seen.add(line["id"])


def test_grouped_results_put_each_products_variants_right_after_it():
    with ShopifyEmulator(items=30, seed=6, bulk_start=0) as emulator:
        started = run_bulk(emulator, client.BULK_PRODUCTS, grouped=True)
        gid = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        lines = lines_of(completed(emulator, gid)["url"])

    parent = None
    for line in lines:
        if "__parentId" in line:
            assert line["__parentId"] == parent
        else:
            parent = line["id"]


def test_an_operation_takes_time_in_proportion_to_the_shop_and_polls_cost_one_point():
    with ShopifyEmulator(items=200, seed=6, bulk_start=0.2, bulk_rate=500) as emulator:
        started = run_bulk(emulator, client.BULK_PRODUCTS)
        gid = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        first = gql(
            emulator,
            "query($id: ID!) { node(id: $id) { ... on BulkOperation { status objectCount } } }",
            {"id": gid},
        )
        time.sleep(0.4)
        running = poll(emulator, gid)
        begun = time.monotonic()
        done = completed(emulator, gid)

    assert started["data"]["bulkOperationRunQuery"]["bulkOperation"]["status"] == "CREATED"
    assert first["data"]["node"] == {"status": "CREATED", "objectCount": "0"}
    assert first["extensions"]["cost"]["actualQueryCost"] == 1
    assert running["status"] == "RUNNING"
    assert 0 < int(running["objectCount"]) < int(done["objectCount"])
    # the rest of the objects at 500 a second: what the running poll had not seen yet
    rest = (int(done["objectCount"]) - int(running["objectCount"])) / 500
    assert time.monotonic() - begun > rest * 0.8


def test_bulk_queries_are_checked_as_shopify_checks_them():
    with ShopifyEmulator(items=3, seed=6) as emulator:
        no_connection = run_bulk(emulator, "{ shop { name } }")
        two_roots = run_bulk(emulator, "{ products { edges { node { id } } } shop { name } }")
        mutation = run_bulk(
            emulator, "mutation { productDelete(input: {id: 1}) { deletedProductId } }"
        )
        broken = run_bulk(emulator, "{ products { edges { node { id }")

    for answer, says in [
        (no_connection, "at least one connection"),
        (two_roots, "exactly one top-level field"),
        (mutation, "cannot contain mutations"),
        (broken, "Parse error"),
    ]:
        payload = answer["data"]["bulkOperationRunQuery"]
        assert payload["bulkOperation"] is None
        (error,) = payload["userErrors"]
        assert error["code"] == "INVALID"
        assert says in error["message"]
    assert emulator.bulk_statuses() == []


def test_one_running_operation_per_shop_when_the_limit_is_one():
    with ShopifyEmulator(items=3, seed=6, bulk_start=60, bulk_limit=1) as emulator:
        first = run_bulk(emulator, client.BULK_PRODUCTS)["data"]["bulkOperationRunQuery"]
        second = run_bulk(emulator, client.BULK_PRODUCTS)["data"]["bulkOperationRunQuery"]
        current = gql(emulator, "{ currentBulkOperation { id status } }")["data"]

    assert second["bulkOperation"] is None
    (error,) = second["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS"
    assert first["bulkOperation"]["id"] in error["message"]
    assert current["currentBulkOperation"] == first["bulkOperation"]


def test_a_result_url_needs_its_signature_and_expires_after_a_week():
    clock_now = [1_790_000_000.0]
    with ShopifyEmulator(items=3, seed=6, bulk_start=0, clock=lambda: clock_now[0]) as emulator:
        gid = run_bulk(emulator, client.BULK_PRODUCTS)["data"]["bulkOperationRunQuery"][
            "bulkOperation"
        ]["id"]
        url = completed(emulator, gid)["url"]
        forged = requests.get(url.replace("Signature=", "Signature=0"), timeout=5)
        fresh = requests.get(url, timeout=5)
        clock_now[0] += 7 * 86400
        expired = poll(emulator, gid)
        late = requests.get(url, timeout=5)

    assert forged.status_code == 403
    assert b"SignatureDoesNotMatch" in forged.content
    assert fresh.status_code == 200
    assert (expired["status"], expired["url"]) == ("EXPIRED", None)
    assert late.status_code == 400
    assert b"ExpiredToken" in late.content


def test_a_failed_operation_offers_its_partial_data():
    with ShopifyEmulator(items=20, seed=6, bulk_start=0) as emulator:
        emulator.set_bulk_fault("fail")
        gid = run_bulk(emulator, client.BULK_PRODUCTS)["data"]["bulkOperationRunQuery"][
            "bulkOperation"
        ]["id"]
        node = completed(emulator, gid)
        partial = gql(
            emulator,
            "query($id: ID!) { node(id: $id) { ... on BulkOperation { partialDataUrl } } }",
            {"id": gid},
        )["data"]["node"]["partialDataUrl"]
        lines = lines_of(partial)

    assert (node["status"], node["errorCode"], node["url"]) == (
        "FAILED",
        "INTERNAL_SERVER_ERROR",
        None,
    )
    assert len(lines) == int(node["objectCount"]) > 0


# -- the JSONL reader on its own -------------------------------------------------------------------


def product(number: int, variants: int) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Product/{number}",
        "title": f"Tee {number}",
        "status": "ACTIVE",
        "updatedAt": "2026-01-02T03:04:05Z",
        "hasOnlyDefaultVariant": variants == 1,
        "variantsCount": {"count": variants},
    }


def variant(number: int, parent: int) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ProductVariant/{number}",
        "sku": f"SKU-{number}",
        "title": f"Size {number}",
        "price": "10.00",
        "inventoryQuantity": number,
        "__parentId": f"gid://shopify/Product/{parent}",
    }


def read_file(lines: list[dict[str, Any]], **counts: Any) -> list[list[RemoteListing]]:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    chunks = [body[n : n + 7] for n in range(0, len(body), 7)]  # lines split across chunks
    operation = BulkOperation("gid://shopify/BulkOperation/1", "COMPLETED", **counts)
    return list(bulk_listing_pages(chunks, operation, listings=listings_from_product))


def test_variants_are_put_with_their_product_whatever_the_order_of_the_lines():
    lines = [variant(11, 1), product(1, 2), product(2, 1), variant(21, 2), variant(12, 1)]

    (page,) = read_file(lines, object_count=5, root_object_count=2)

    assert sorted((x.item_id, x.variant_id, x.quantity) for x in page) == [
        ("1", "11", 11),
        ("1", "12", 12),
        ("2", "", 21),
    ]


def test_a_product_whose_variants_changed_during_the_operation_is_listed_with_those_it_has():
    (page,) = read_file([product(1, 3), variant(11, 1)], object_count=2, root_object_count=1)

    assert [(x.item_id, x.variant_id) for x in page] == [("1", "11")]


@pytest.mark.parametrize(
    ("lines", "counts", "says"),
    [
        ([product(1, 1), variant(11, 1)], {"object_count": 3}, "2 objects of the 3"),
        ([product(1, 1), variant(11, 1)], {"root_object_count": 2}, "1 products of the 2"),
        ([product(1, 1), variant(11, 1), variant(21, 2)], {}, "variants of products it does"),
    ],
)
def test_a_file_with_less_than_the_operation_wrote_is_an_incomplete_read(lines, counts, says):
    with pytest.raises(IncompleteRead, match=says):
        read_file(lines, **counts)
