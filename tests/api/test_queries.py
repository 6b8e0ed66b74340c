"""Lists cost a fixed number of queries, whatever the page holds: no N+1."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Outlet, ProductImage, Stock
from channels.listing_store import listings_mark_duplicates
from channels.models import Channel, InventorySync, Listing, Scan
from synclogs.models import SyncLog
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db


def grow(n: int, state: dict) -> None:
    """Add n of everything: products with two variants, stock at two outlets, listings
    (mapped, unmapped and duplicated), scans, syncs, channels."""
    jkt, wh = state["outlets"]
    for _ in range(n):
        first = VariantFactory()
        second = VariantFactory(product=first.product)
        ProductImage.objects.create(product=first.product, url="https://img.test/a.png")
        for variant in (first, second):
            Stock.objects.create(variant=variant, outlet=jkt, on_hand=3)
            Stock.objects.create(variant=variant, outlet=wh, on_hand=1)
        channel = state["channel"]
        i = state["seq"] = state.get("seq", 0) + 1
        Listing.objects.bulk_create(
            [
                Listing(
                    channel=channel,
                    item_id=f"{i}",
                    sku=first.sku,
                    sku_key=first.sku_key,
                    title="A",
                    variant=first,
                    price=Decimal(1),
                ),
                Listing(
                    channel=channel,
                    item_id=f"{i}d",
                    sku=first.sku,
                    sku_key=first.sku_key,
                    title="A dup",
                    variant=first,
                    price=Decimal(1),
                ),
                Listing(
                    channel=channel,
                    item_id=f"{i}x",
                    sku=f"X-{i}",
                    sku_key=f"x-{i}",
                    title="B",
                    price=Decimal(1),
                ),
            ]
        )
        listings_mark_duplicates(channel_id=channel.pk)  # as the scan that found them would
        Scan.objects.create(channel=channel, kind="full", status="succeeded")
        SyncLog.objects.create(
            channel=channel,
            order_number=f"O-{i}",
            action="create_order",
            status=200,
            origin="manual",
            message="done",
        )
        InventorySync.objects.create(channel=channel, trigger="sales_channel_manual")
        extra = Channel.objects.create(
            kind="shopee", name=f"Shop {i}", credentials={"k": "v"}, order_outlet=jkt
        )
        extra.outlets.set([jkt, wh])


@pytest.fixture
def state() -> dict:
    jkt, wh = OutletFactory(code="jkt"), OutletFactory(code="wh")
    channel = Channel.objects.create(
        kind="shopee", name="Main", credentials={"k": "v"}, order_outlet=jkt
    )
    return {"outlets": (jkt, wh), "channel": channel}


def lists(state: dict) -> dict[str, str]:
    cid = state["channel"].pk
    tabs = ["sold_in_channel", "not_in_pos", "not_in_channel", "in_pos", "multiple_listed_sku"]
    return {
        "/api/outlets": "",
        "/api/products": "",
        "/api/variants": "",
        "/api/channels": "",
        "/api/sync-logs": "",
        f"/api/channels/{cid}/scans": "",
        f"/api/channels/{cid}/inventory-syncs": "",
        **{f"/api/channels/{cid}/listings?tab={tab}": tab for tab in tabs},
    }


def bound(url: str) -> int:
    """Token lookup, then the endpoint's own: [channel] + count + page + prefetches."""
    if url.startswith("/api/products"):
        return 6  # + images, variants, their stock rows with outlets
    if url.endswith("tab=in_pos"):
        return 5  # + channel, + where the page's variants are listed
    return 4  # + the channel, or one prefetch (outlets of channels, stock of variants)


def queries(api, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url + ("&" if "?" in url else "?") + "limit=500")
    assert response.status_code == 200, response.content
    return len(captured), len(response.json()["items"])


def test_list_endpoints_cost_the_same_for_3_rows_and_for_30(api, state):
    api.get("/api/outlets")  # the token's last-used time is written on first use only
    grow(3, state)
    small = {url: queries(api, url) for url in lists(state)}
    grow(27, state)
    for url in lists(state):
        count, rows = queries(api, url)
        assert rows > small[url][1] or url.startswith("/api/outlets"), url
        assert count == small[url][0], f"{url}: {small[url][0]} queries, then {count}"
        assert count <= bound(url), f"{url}: {count} queries"


def test_product_list_page_shows_stock_per_outlet_without_extra_queries(api, state):
    grow(2, state)
    items = api.get("/api/products").json()["items"]
    assert [s["outlet"] for s in items[0]["variants"][0]["stock"]] == ["jkt", "wh"]
    assert items[0]["images"] == ["https://img.test/a.png"]
    assert Outlet.objects.count() == 2
