"""The API used as an integration uses it, end to end over real HTTP to the Shopee emulator:
outlets and products in, a channel connected and scanned, every tab read, stock pushed."""

import pytest

from catalog.models import StockMovement, Variant
from channels.inventory import inventory_flush
from channels.models import Channel, Listing, PendingPush, SkuAlias
from tests.channels.builders import shop_item

pytestmark = pytest.mark.django_db

# A 1×1 PNG: what a product photo must be for the marketplace to accept it.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def product_body(name: str, *skus: str, **fields) -> dict:
    return {
        "name": name,
        "brand": "Lumo",
        "category": "T-Shirts",
        "weight_kg": "0.250",
        "supplier": "PT Sumber Kain",
        "supplier_price": "20.00",
        "variants": [{"sku": sku, "retail_price": "49.90"} for sku in skus],
        **fields,
    }


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if response.content else {}


def connect(api, shop, **fields) -> dict:
    body = {
        "kind": "shopee",
        "name": "Shopee ID",
        "api_base_url": shop.base_url,
        "credentials": shop.credentials,
        "order_outlet": "jkt",
        "outlets": ["wh"],
        **fields,
    }
    return ok(api.post("/api/channels", body), 201)


@pytest.fixture
def catalog(api, shop) -> dict[str, dict]:
    """Two outlets and four products made through the API; BAG-NAT is not on the shop."""
    ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
    ok(api.post("/api/outlets", {"code": "wh", "name": "Warehouse", "kind": "warehouse"}), 201)
    products = {}
    for name, skus in [
        ("Black Tee", ["TEE-BLK-M"]),
        ("White Tee", ["TEE-WHT-M"]),
        ("Green Cup", ["CUP-GRN"]),
        ("Mug", ["MUG-01"]),
    ]:
        products[name] = ok(api.post("/api/products", product_body(name, *skus)), 201)
    bag = ok(api.post("/api/products", product_body("Canvas Bag", "BAG-NAT")), 201)
    image = shop.serve_file(f"/images/{bag['id']}.png", PIXEL, "image/png")
    products["Canvas Bag"] = ok(api.patch(f"/api/products/{bag['id']}", {"images": [image]}))
    return products


def scan(api, channel_id: int, capture, kind: str = "full") -> dict:
    """Request a scan as an integration does; tasks run inline once the request commits."""
    with capture(execute=True):
        queued = ok(api.post(f"/api/channels/{channel_id}/scans", {"kind": kind}), 202)
    assert queued["status"] == "queued"
    return ok(api.get(f"/api/scans/{queued['id']}"))


def tab(api, channel_id: int, name: str, **params) -> dict:
    return ok(api.get(f"/api/channels/{channel_id}/listings", {"tab": name, **params}))


def test_connect_scan_and_read_every_tab(api, shop, catalog, django_capture_on_commit_callbacks):
    # given: a channel connected through the API
    channel = connect(api, shop)
    assert channel["credentials_set"] is True
    assert (channel["order_outlet"], channel["outlets"]) == ("jkt", ["wh"])
    # when
    done = scan(api, channel["id"], django_capture_on_commit_callbacks)
    # then: the scan finished with its counts
    assert done["status"] == "succeeded", done["error"]
    assert (done["seen"], done["matched"], done["not_in_pos"], done["duplicates"]) == (7, 5, 2, 2)
    cid = channel["id"]
    sold = tab(api, cid, "sold_in_channel")
    assert sold["count"] == 5
    assert sorted(r["sku"] for r in sold["items"]) == [
        " tee-wht-m ",
        "CUP-GRN",
        "MUG-01",
        "TEE-BLK-M",
        "mug-01",
    ]
    black = next(r for r in sold["items"] if r["sku"] == "TEE-BLK-M")
    tee = catalog["Black Tee"]
    assert black["item_id"] == str(shop.ids["black"])
    assert black["variant_ref"] == ""
    assert (black["variant_id"], black["product_id"]) == (tee["variants"][0]["id"], tee["id"])
    assert Listing.objects.get(pk=black["listing_id"]).item_id == black["item_id"]
    not_in_pos = tab(api, cid, "not_in_pos")
    assert sorted(r["sku"] for r in not_in_pos["items"]) == ["", "UNKNOWN-9"]
    assert all(r["variant_id"] is None for r in not_in_pos["items"])
    duplicates = tab(api, cid, "multiple_listed_sku")
    assert [r["sku"] for r in duplicates["items"]] == ["MUG-01", "mug-01"]
    not_in_channel = tab(api, cid, "not_in_channel")
    assert [r["sku"] for r in not_in_channel["items"]] == ["BAG-NAT"]
    assert not_in_channel["items"][0]["product_id"] == catalog["Canvas Bag"]["id"]
    in_pos = {r["sku"]: r for r in tab(api, cid, "in_pos")["items"]}
    assert len(in_pos) == 5
    assert in_pos["BAG-NAT"]["listed"] == []
    assert {ref["item_id"] for ref in in_pos["MUG-01"]["listed"]} == {
        str(shop.ids["mug_a"]),
        str(shop.ids["mug_b"]),
    }
    statistic = ok(api.get(f"/api/channels/{cid}/statistic"))
    assert (statistic["live_product"], statistic["sold_in_channel"], statistic["not_in_pos"]) == (
        7,
        5,
        2,
    )
    assert statistic["last_scan_at"] is not None


def test_tab_filters_match_sku_normalised_and_title(
    api, shop, catalog, django_capture_on_commit_callbacks
):
    cid = connect(api, shop)["id"]
    scan(api, cid, django_capture_on_commit_callbacks)
    # SKU: trimmed and ignoring case, on both the listing and the POS side
    assert [r["sku"] for r in tab(api, cid, "sold_in_channel", sku="TEE-WHT-M")["items"]] == [
        " tee-wht-m "
    ]
    assert tab(api, cid, "in_pos", sku=" bag-nat ")["count"] == 1
    # q: part of the listing title, or of the product name
    assert [r["title"] for r in tab(api, cid, "sold_in_channel", q="bundle")["items"]] == [
        "Mug (bundle)"
    ]
    assert tab(api, cid, "not_in_channel", q="canvas")["count"] == 1
    # paginated like every list
    page = tab(api, cid, "sold_in_channel", limit=2, offset=4)
    assert (page["count"], len(page["items"])) == (5, 1)


def test_tab_sku_filter_takes_the_sku_as_the_channel_shows_it(
    api, shop, catalog, django_capture_on_commit_callbacks
):
    """A seller copies the SKU from the marketplace: the channel's rules take `SP-` off it, and
    an alias matches a SKU no rule derives."""
    shop.put_item(shop_item("Canvas Bag", "SP-BAG-NAT"))
    cid = connect(api, shop, sku_strip_prefixes="SP-")["id"]
    SkuAlias.objects.create(
        channel=Channel.objects.get(pk=cid),
        channel_sku="GIFT-CUP",
        channel_sku_key="gift-cup",
        variant=Variant.objects.get(sku="CUP-GRN"),
    )
    scan(api, cid, django_capture_on_commit_callbacks)

    def skus(name: str, sku: str) -> list[str]:
        return [row["sku"] for row in tab(api, cid, name, sku=sku)["items"]]

    assert skus("sold_in_channel", " sp-bag-nat") == ["SP-BAG-NAT"]  # as the channel shows it
    assert skus("sold_in_channel", "BAG-NAT") == ["SP-BAG-NAT"]  # as it is matched
    assert skus("in_pos", "SP-BAG-NAT") == ["BAG-NAT"]  # the POS variant it is matched to
    assert skus("in_pos", "gift-cup") == ["CUP-GRN"]
    assert skus("sold_in_channel", "GIFT-CUP") == ["CUP-GRN"]  # the cup's listing, by its alias
    assert skus("sold_in_channel", "SP-TEE") == []  # still a whole SKU, not a part of one
    # another channel's rules change nothing here
    assert tab(api, cid, "sold_in_channel", sku="TKP-BAG-NAT")["count"] == 0


def test_stock_changes_reach_the_channel(api, shop, catalog, django_capture_on_commit_callbacks):
    # given: a scanned real-time channel selling jkt (its order outlet) and wh
    cid = connect(api, shop)["id"]
    scan(api, cid, django_capture_on_commit_callbacks)
    black = (str(shop.ids["black"]), "")
    # when: a single adjustment, as a delta then as a count
    adjusted = ok(api.post("/api/stock/adjust", {"sku": "tee-blk-m", "outlet": "jkt", "delta": 4}))
    assert (adjusted["on_hand"], adjusted["available"]) == (4, 4)
    counted = ok(api.post("/api/stock/adjust", {"sku": "TEE-BLK-M", "outlet": "wh", "quantity": 3}))
    assert counted["on_hand"] == 3
    inventory_flush(channel_id=cid)
    # then: the channel shows the sum over its outlets
    assert shop.listing_quantities()[black] == 7
    assert set(
        StockMovement.objects.filter(variant__sku="TEE-BLK-M").values_list("trigger", "actor")
    ) == {("api_single", "api:ERP")}
    # when: a bulk count of 10 rows, with a bad one among them
    rows = [
        {"sku": "TEE-BLK-M", "outlet": "jkt", "quantity": 10},
        {"sku": "TEE-WHT-M", "outlet": "jkt", "quantity": 2},
        {"sku": "NOT-A-SKU", "outlet": "jkt", "quantity": 2},
    ]
    result = ok(api.post("/api/stock/bulk", {"rows": rows}))
    inventory_flush(channel_id=cid)
    # then
    assert (result["applied"], result["refused"]) == (2, 1)
    assert "NOT-A-SKU" in result["rows"][2]["error"]
    quantities = shop.listing_quantities()
    assert quantities[black] == 13
    assert quantities[(str(shop.ids["white"]), "")] == 2
    assert not PendingPush.objects.filter(channel_id=cid).exists()


def test_a_stock_change_going_negative_is_refused_and_changes_nothing(api, catalog):
    ok(api.post("/api/stock/adjust", {"sku": "MUG-01", "outlet": "jkt", "quantity": 2}))
    response = api.post("/api/stock/adjust", {"sku": "MUG-01", "outlet": "jkt", "delta": -3})
    assert response.status_code == 409
    assert response.json()["detail"] == "MUG-01 at jkt: on hand is 2; the change would leave -1"
    variant = ok(api.get("/api/variants", {"sku": "mug-01"}))["items"][0]
    assert variant["stock"] == [{"outlet": "jkt", "on_hand": 2, "reserved": 0, "available": 2}]


def test_upload_then_catalog_changes_follow_to_the_channel(
    api, shop, catalog, django_capture_on_commit_callbacks
):
    cid = connect(api, shop)["id"]
    scan(api, cid, django_capture_on_commit_callbacks)
    bag = catalog["Canvas Bag"]
    # when: uploaded from Not in Channel
    report = ok(
        api.post(f"/api/channels/{cid}/upload", {"variant_ids": [bag["variants"][0]["id"]]})
    )
    # then: it is on the shop and Sold in Channel; uploading again does nothing twice
    assert len(report["done"]) == 1, report
    assert tab(api, cid, "not_in_channel")["count"] == 0
    row = tab(api, cid, "sold_in_channel", sku="BAG-NAT")["items"][0]
    again = ok(api.post(f"/api/channels/{cid}/upload", {"variant_ids": [bag["variants"][0]["id"]]}))
    assert again["done"] == []
    assert len(again["skipped"]) == 1
    # when: renamed in the POS, and a POS-only field changed
    with django_capture_on_commit_callbacks(execute=True):
        ok(api.patch(f"/api/products/{bag['id']}", {"name": "Canvas Tote", "supplier": "CV Lain"}))
    # then: the synced name reached the shop; the POS-only field is nowhere in it
    item = shop.item(int(row["item_id"]))
    assert item["item_name"] == "Canvas Tote"
    assert "CV Lain" not in str(item)
    # when: deleted in the POS
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/products/{bag['id']}").status_code == 204
    # then: deleted on the shop too
    assert (row["item_id"], "") not in shop.listing_quantities()
    assert api.get(f"/api/products/{bag['id']}").status_code == 404


def test_manual_inventory_sync_runs_in_the_background_and_reports(
    api, shop, catalog, django_capture_on_commit_callbacks
):
    cid = connect(api, shop, inventory_sync_mode="none")["id"]
    scan(api, cid, django_capture_on_commit_callbacks)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        queued = ok(api.post(f"/api/channels/{cid}/inventory-sync"), 202)
    # then: a sales-channel manual sync runs even in "do not synchronize" mode
    records = ok(api.get(queued["results"]))["items"]
    assert len(records) == 1
    assert records[0]["trigger"] == "sales_channel_manual"
    assert records[0]["considered"] == 5
    assert records[0]["requested_by"] == "api:ERP"
    inventory_flush(channel_id=cid)
    # the POS has no stock: every listing of the channel that is not a skipped duplicate is 0
    quantities = shop.listing_quantities()
    assert quantities[(str(shop.ids["black"]), "")] == 0


def test_a_second_scan_while_one_runs_is_a_conflict(api, shop, catalog):
    cid = connect(api, shop)["id"]
    # no commit in this test transaction: the first scan stays queued
    first = ok(api.post(f"/api/channels/{cid}/scans", {"kind": "full"}), 202)
    second = api.post(f"/api/channels/{cid}/scans", {"kind": "updated"})
    assert second.status_code == 409
    assert f"scan #{first['id']}" in second.json()["detail"]


def test_duplicate_policy_update_all_switches_mode_and_warns(api, shop, catalog):
    channel = connect(api, shop)
    changed = ok(
        api.patch(f"/api/channels/{channel['id']}", {"duplicate_sku_policy": "update_all"})
    )
    assert changed["inventory_sync_mode"] == "fulfillment"
    assert "oversell" in changed["warning"]
    assert ok(api.get(f"/api/channels/{channel['id']}"))["duplicate_sku_policy"] == "update_all"
