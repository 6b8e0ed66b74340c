"""Orders through the API: Manual Download Order, the sync logs and their report, and the
marketplace's signed pushes, over real HTTP to the Shopee emulator."""

import json

import pytest
from django.test import Client

from synclogs.models import SyncLog, WebhookEvent
from tests.api.test_end_to_end import connect, ok, product_body, scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(api, shop, django_capture_on_commit_callbacks) -> dict:
    """A scanned channel whose Black Tee and White Tee are in the POS with stock at jkt."""
    ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
    ok(api.post("/api/outlets", {"code": "wh", "name": "Warehouse"}), 201)
    for name, sku in [("Black Tee", "TEE-BLK-M"), ("White Tee", "TEE-WHT-M")]:
        ok(api.post("/api/products", product_body(name, sku)), 201)
        ok(api.post("/api/stock/adjust", {"sku": sku, "outlet": "jkt", "quantity": 10}))
    created = connect(api, shop)
    assert scan(api, created["id"], django_capture_on_commit_callbacks)["status"] == "succeeded"
    return created


def download(api, cid: int, **body) -> dict:
    return ok(api.post(f"/api/channels/{cid}/orders/download", body))


def test_manual_download_logs_each_step_once(api, shop, channel):
    cid = channel["id"]
    number = shop.create_order([(str(shop.ids["black"]), "", 2)], state="unpaid")
    # when
    first = download(api, cid, order_number=number)
    # then: the order was created in the POS and logged 200; it reserves stock
    assert first["not_found"] == []
    assert [(row["action"], row["status"]) for row in first["logs"]] == [("create_order", 200)]
    assert first["logs"][0]["order_number"] == number
    assert (first["logs"][0]["actor"], first["logs"][0]["origin"]) == ("api:ERP", "manual")
    assert jkt_stock(api, "TEE-BLK-M") == {"on_hand": 10, "reserved": 2, "available": 8}
    # when: downloaded again, with a number the shop does not know
    again = download(api, cid, order_numbers=[number, "NOPE1"])
    # then: nothing is done twice
    assert again["not_found"] == ["NOPE1"]
    assert [(row["action"], row["status"]) for row in again["logs"]] == [("create_order", 409)]
    assert jkt_stock(api, "TEE-BLK-M")["reserved"] == 2
    # when: paid on the marketplace, then downloaded
    shop.move_order(number, "paid")
    paid = download(api, cid, order_number=number)
    # then: the invoice turns the reservation into a deduction
    steps = {row["action"]: row["status"] for row in paid["logs"]}
    assert steps.get("convert_order_to_invoice") == 200, paid["logs"]
    assert jkt_stock(api, "TEE-BLK-M") == {"on_hand": 8, "reserved": 0, "available": 8}


def jkt_stock(api, sku: str) -> dict:
    variant = ok(api.get("/api/variants", {"sku": sku}))["items"][0]
    row = next(s for s in variant["stock"] if s["outlet"] == "jkt")
    return {k: row[k] for k in ("on_hand", "reserved", "available")}


def test_sync_logs_filter_and_report(api, shop, channel):
    cid = channel["id"]
    number = shop.create_order([(str(shop.ids["white"]), "", 1)], state="unpaid")
    download(api, cid, order_number=number)
    download(api, cid, order_number=number)
    everything = ok(api.get("/api/sync-logs"))
    assert everything["count"] == SyncLog.objects.count() > 0
    conflicts = ok(api.get("/api/sync-logs", {"status": 409, "channel": cid}))["items"]
    assert conflicts
    assert {row["status"] for row in conflicts} == {409}
    created = ok(api.get("/api/sync-logs", {"action": "create_order", "order_number": number}))
    assert [row["status"] for row in created["items"]] == [409, 200]  # newest first
    assert ok(api.get("/api/sync-logs", {"since": "2999-01-01T00:00:00Z"}))["count"] == 0
    detail = ok(api.get(f"/api/sync-logs/{created['items'][1]['id']}"))
    assert detail["request"]  # what the step was based on
    report = ok(api.get("/api/sync-logs/report", {"days": 7}))
    row = next(r for r in report["rows"] if r["action"] == "create_order")
    # one order, logged twice (200 then 409): one transaction, with one of each
    assert (row["channel_id"], row["transactions"], row["successful"], row["conflict"]) == (
        cid,
        1,
        1,
        1,
    )
    assert len(row["days"]) == 7
    assert row["days"][-1]["transactions"] == 1


def test_download_refuses_bad_input_without_writing(api, channel):
    cid = channel["id"]
    both = api.post(
        f"/api/channels/{cid}/orders/download", {"order_number": "A", "order_numbers": ["B"]}
    )
    assert both.status_code == 422
    too_many = api.post(
        f"/api/channels/{cid}/orders/download", {"order_numbers": [f"N{i}" for i in range(201)]}
    )
    assert too_many.status_code == 422
    assert (
        api.post("/api/channels/999999/orders/download", {"order_number": "A"}).status_code == 404
    )
    assert not SyncLog.objects.exists()


def test_a_signed_push_is_kept_once_answered_empty_and_processed(
    shop, channel, django_capture_on_commit_callbacks
):
    cid = channel["id"]
    marketplace = Client()  # no token: the signature is the authentication
    url = f"/api/webhooks/{cid}"
    number = shop.create_order([(str(shop.ids["black"]), "", 1)], state="unpaid")
    headers, body = shop.signed_webhook(number, "http://testserver" + url)

    def push(body: bytes, headers: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return marketplace.post(url, body, content_type="application/json", headers=headers)

    # when: delivered, then delivered again
    first, replay = push(body, headers), push(body, headers)
    # then: 200 with an empty body both times, one event, the order downloaded once
    assert (first.status_code, first.content) == (200, b"")
    assert (replay.status_code, replay.content) == (200, b"")
    assert WebhookEvent.objects.count() == 1
    logs = SyncLog.objects.filter(order_number=number)
    assert logs.exists()
    assert set(logs.values_list("origin", flat=True)) == {"webhook"}
    assert set(logs.values_list("status", flat=True)) == {200}


def test_a_badly_signed_or_malformed_push_is_refused_and_nothing_kept(shop, channel):
    cid = channel["id"]
    url = f"/api/webhooks/{cid}"
    number = shop.create_order([(str(shop.ids["black"]), "", 1)], state="paid")
    headers, body = shop.signed_webhook(number, "http://testserver" + url)
    marketplace = Client()
    forged = marketplace.post(
        url, body, content_type="application/json", headers={"Authorization": "0" * 64}
    )
    unsigned = marketplace.post(url, body, content_type="application/json")
    other_url = marketplace.post(
        url + "?x=1", body, content_type="application/json", headers=headers
    )
    assert [forged.status_code, unsigned.status_code, other_url.status_code] == [401, 401, 401]
    assert shop.credentials["partner_key"].encode() not in forged.content
    from channels.adapters.shopee.orders import push_signature

    junk = b"not json"
    signature = push_signature(
        partner_key=shop.credentials["partner_key"], url="http://testserver" + url, body=junk
    )
    malformed = marketplace.post(
        url, junk, content_type="application/json", headers={"Authorization": signature}
    )
    assert malformed.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert not SyncLog.objects.exists()
    assert (
        marketplace.post("/api/webhooks/999999", body, content_type="application/json").status_code
        == 404
    )
    assert json.loads(marketplace.get("/api/health").content) == {"status": "ok"}
