"""A Shopify client secret replaced by staff: webhooks Shopify still signs with the old one for
up to an hour after a rotation (marketplace-apis.md §4.5) are taken, not refused as forged."""

import json

import pytest
from django.urls import reverse

from channels.emulators.shopify import ShopifyEmulator
from channels.models import Channel
from synclogs.models import WebhookEvent
from tests.api.test_end_to_end import ok
from tests.channels.builders import shop_item
from tests.factories import CHANNEL_FORM_RULES

pytestmark = pytest.mark.django_db
HOUR = 3600


def push(api, shopify: ShopifyEmulator, channel_id: int, number: str) -> int:
    url = f"http://testserver/api/webhooks/{channel_id}"
    headers, body = shopify.signed_webhook(number, url)
    pushed = api.client.post(url, body, content_type="application/json", headers=headers)
    return pushed.status_code


def connect(api, shopify: ShopifyEmulator) -> int:
    """A Shopify channel made through the API, as an integration makes one; its id."""
    ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
    body = {
        "kind": "shopify",
        "name": "Shopify",
        "api_base_url": shopify.base_url,
        "credentials": shopify.credentials,
        "order_outlet": "jkt",
    }
    return ok(api.post("/api/channels", body), 201)["id"]


def replaced_at(channel_id: int) -> int:
    return Channel.objects.get(pk=channel_id).credentials["client_secret_replaced_at"]


def test_webhooks_signed_with_the_replaced_secret_are_taken_for_an_hour_only(api):
    with ShopifyEmulator(items=2, seed=3) as shopify:
        # given: a Shopify channel, and an order to be told about
        cid = connect(api, shopify)
        item = shopify.put_item(shop_item("Mug", "MUG-1"))
        number = shopify.create_order([(item, "", 1)], state="paid")
        old = shopify.credentials

        # when: staff enter the app's new client secret, while Shopify still signs with the
        # old one; then enter the same new secret again (a retyped form)
        new = {**old, "client_secret": "shpss_" + "7" * 32}
        ok(api.patch(f"/api/channels/{cid}", {"credentials": new}))
        during_hour = push(api, shopify, cid, number)
        rotated_at = replaced_at(cid)
        ok(api.patch(f"/api/channels/{cid}", {"credentials": new, "name": "Shopify 2"}))
        after_retyping = push(api, shopify, cid, number)
        assert replaced_at(cid) == rotated_at  # the hour runs on, it does not start again
        # an hour later, the old secret is refused; the new one is what Shopify signs with
        stored = Channel.objects.get(pk=cid)
        stored.credentials = {
            **stored.credentials,
            "client_secret_replaced_at": replaced_at(cid) - HOUR - 1,
        }
        stored.save(update_fields=["credentials"])
        after_hour = push(api, shopify, cid, number)
        shopify.client_secret = new["client_secret"]
        with_new = push(api, shopify, cid, number)

        # then
        assert (during_hour, after_retyping, after_hour, with_new) == (200, 200, 401, 200)
        assert WebhookEvent.objects.filter(channel_id=cid).count() == 3
        kept = Channel.objects.get(pk=cid).credentials
        assert kept["previous_client_secret"] == old["client_secret"]
        assert kept["client_secret"] == new["client_secret"]


def test_a_secret_entered_again_unchanged_keeps_no_old_one(api):
    with ShopifyEmulator(items=1, seed=4) as shopify:
        cid = connect(api, shopify)

        ok(api.patch(f"/api/channels/{cid}", {"credentials": shopify.credentials}))

        kept = Channel.objects.get(pk=cid).credentials
        assert kept["previous_client_secret"] == ""
        assert replaced_at(cid) == 0


def test_a_secret_replaced_in_the_admin_keeps_the_old_one_for_its_hour(api, admin_client):
    with ShopifyEmulator(items=1, seed=5) as shopify:
        cid = connect(api, shopify)
        channel = Channel.objects.get(pk=cid)
        new = {**shopify.credentials, "client_secret": "shpss_" + "8" * 32}
        form = {
            "kind": "shopify",
            "name": "Shopify",
            "api_base_url": shopify.base_url,
            "inventory_sync_mode": channel.inventory_sync_mode,
            "duplicate_sku_policy": channel.duplicate_sku_policy,
            "order_outlet": channel.order_outlet_id,
            "buffer": 0,
            "fulfillment_sync_minutes": 60,
            "is_active": "on",
            "new_credentials": json.dumps(new),
            **CHANNEL_FORM_RULES,
        }

        saved = admin_client.post(reverse("admin:channels_channel_change", args=[cid]), form)

        assert saved.status_code == 302, saved.content.decode()[:2000]
        kept = Channel.objects.get(pk=cid).credentials
        assert kept["client_secret"] == new["client_secret"]
        assert kept["previous_client_secret"] == shopify.credentials["client_secret"]
        item = shopify.put_item(shop_item("Mug", "MUG-1"))
        number = shopify.create_order([(item, "", 1)], state="paid")
        assert push(api, shopify, cid, number) == 200
