"""A channel's credentials go in and never come out: not in any GET, not in any write's answer,
not in an error, not in the logs."""

import logging

import pytest

from channels.emulators.shopee import ShopeeEmulator
from channels.models import Channel
from tests.api.schema import PUBLIC, fill, openapi, operations
from tests.api.test_end_to_end import ok, product_body, scan

pytestmark = pytest.mark.django_db
SECRET_FIELDS = ("partner_key", "access_token", "refresh_token")
TABS = ["sold_in_channel", "not_in_pos", "not_in_channel", "in_pos", "multiple_listed_sku"]


def secrets_of(credentials: dict) -> set[str]:
    values = {str(credentials[name]) for name in SECRET_FIELDS if credentials.get(name)}
    assert all(len(v) >= 16 for v in values), "secrets too short to search for reliably"
    return values


def assert_hidden(response, secrets: set[str], where: str) -> None:
    body = response.content.decode(errors="replace")
    for secret in secrets:
        assert secret not in body, f"{where} answered a credential"
    for name, value in response.items():
        assert not any(s in value for s in secrets), f"{where} header {name} has a credential"


def test_no_response_and_no_log_line_ever_contains_credentials(
    api, caplog, django_capture_on_commit_callbacks
):
    # INFO is the level production logs at (LOG_LEVEL). At DEBUG, urllib3 logs each request
    # URL, and Shopee's carries the access token in its query string; settings keep urllib3
    # at WARNING for that reason.
    caplog.set_level(logging.INFO)
    with ShopeeEmulator(items=12, seed=5, pos_skus=("TEE-1", "TEE-2")) as shop:
        # given: a channel connected, scanned after its access token expired (so the adapter
        # refreshed it and stored new ones), with something in every tab
        secrets = secrets_of(shop.credentials)
        outlet = ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
        ok(api.post("/api/outlets", {"code": "wh", "name": "Warehouse"}), 201)
        product = ok(api.post("/api/products", product_body("Tee", "TEE-1", "TEE-2")), 201)
        created = api.post(
            "/api/channels",
            {
                "kind": "shopee",
                "name": "Shopee ID",
                "api_base_url": shop.base_url,
                "credentials": shop.credentials,
                "order_outlet": "jkt",
            },
        )
        assert created.status_code == 201
        assert_hidden(created, secrets, "POST /api/channels")
        cid = created.json()["id"]
        shop.expire_access_tokens()
        scanned = scan(api, cid, django_capture_on_commit_callbacks)
        assert scanned["status"] == "succeeded", scanned["error"]
        secrets |= secrets_of(Channel.objects.get(pk=cid).credentials)
        assert len(secrets) > 3, "the scan should have refreshed the access token"
        item_id, variant_id = next(iter(shop.listing_quantities()))
        number = shop.create_order([(item_id, variant_id, 1)], state="unpaid")
        downloaded = api.post(f"/api/channels/{cid}/orders/download", {"order_number": number})
        assert downloaded.status_code == 200, downloaded.content
        assert_hidden(downloaded, secrets, "POST orders/download")
        url = f"http://testserver/api/webhooks/{cid}"
        headers, body = shop.signed_webhook(number, url)
        forged = {**headers, "Authorization": "0" * 64}
        for push_headers in (headers, forged, {}):
            pushed = api.client.post(
                url, body, content_type="application/json", headers=push_headers
            )
            assert_hidden(pushed, secrets, "POST /api/webhooks/{id}")
        ids = {
            "channel_id": cid,
            "scan_id": scanned["id"],
            "product_id": product["id"],
            "outlet_id": outlet["id"],
            "log_id": downloaded.json()["logs"][0]["id"],
            "variant_id": product["variants"][0]["id"],
        }
        with django_capture_on_commit_callbacks(execute=True):
            synced = api.post(f"/api/channels/{cid}/inventory-sync")
        assert_hidden(synced, secrets, "POST inventory-sync")
        priced = api.post(f"/api/channels/{cid}/price-syncs")
        assert_hidden(priced, secrets, "POST price-syncs")
        ids["sync_id"] = priced.json()["id"]
        # the query parameters a GET requires: a SKU the POS knows
        given = {"sku": product["variants"][0]["sku"]}

        # when: every GET the API has, every tab of the listings
        for method, path in operations():
            if method != "get" or (method, path) in PUBLIC:
                continue
            url = fill(path, ids)
            query = {name: given[name] for name in required_query(method, path)}
            pages = (
                [api.get(url, {"tab": t}) for t in TABS]
                if "listings" in url
                else [api.get(url, query)]
            )
            for response in pages:
                assert response.status_code == 200, (url, response.content)
                assert_hidden(response, secrets, f"GET {url}")

        # and every kind of write answer about credentials: a change, and refusals
        new = {**shop.credentials, "refresh_token": "rt-" + "9" * 40}
        changed = api.patch(f"/api/channels/{cid}", {"credentials": new, "name": "Shopee 2"})
        assert changed.status_code == 200
        assert changed.json()["credentials_set"] is True
        assert_hidden(changed, secrets | {new["refresh_token"]}, "PATCH /api/channels/{id}")
        leaked_key = next(iter(secrets))
        refusals = [
            {"credentials": {**new, "partner_id": leaked_key}},  # wrong type
            {"credentials": {**new, "extra_field": leaked_key}},  # unknown key
            {"credentials": leaked_key},  # not an object at all
            {"credentials": {**new, "partner_key": leaked_key + "\x00"}},  # unstorable
        ]
        for body in refusals:
            refused = api.patch(f"/api/channels/{cid}", body)
            assert refused.status_code == 422, refused.content
            assert_hidden(refused, secrets, "a refused credentials change")
        for path in ("/api/openapi.json", "/api/docs"):
            assert_hidden(api.get(path), secrets, path)

    # then: nothing logged them either
    for secret in secrets:
        assert secret not in caplog.text


def required_query(method: str, path: str) -> list[str]:
    """The query parameters the operation requires."""
    parameters = openapi()["paths"][path][method].get("parameters", [])
    return [p["name"] for p in parameters if p["in"] == "query" and p.get("required")]
