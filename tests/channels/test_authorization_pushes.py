"""Pushes about the seller's authorization of omni (cancelled, or expiring) become notices for
staff: each marketplace's own push, verified as every push is. Lazada's "token expiry alert"
(message type 8) is not one: omni renews the access token itself."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from channels.adapters import adapter_class
from channels.emulators import emulator_class
from channels.emulators.base import signed_json_push

URL = "https://omni.example.com/api/webhooks/7"


def shopee(emulator: Any, code: int, shop_id: int | None = None) -> tuple[dict[str, str], bytes]:
    shop = emulator.shop_id if shop_id is None else shop_id
    envelope = {"shop_id": shop, "code": code, "timestamp": 1765000000, "data": {}}
    return signed_json_push(
        envelope, secret=emulator.partner_key, signed_prefix=URL.encode() + b"|"
    )


def tiktok(emulator: Any, kind: int) -> tuple[dict[str, str], bytes]:
    envelope = {
        "type": kind,
        "tts_notification_id": f"n-{kind}",
        "shop_id": "7000",
        "timestamp": 1765000000,
        "data": {},
    }
    return signed_json_push(
        envelope, secret=emulator.app_secret, signed_prefix=emulator.app_key.encode()
    )


def shopify(emulator: Any, topic: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"id": 1, "name": "Shop"}).encode()
    digest = hmac.new(emulator.client_secret.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-SHA256": base64.b64encode(digest).decode(),
        "X-Shopify-Webhook-Id": f"w-{topic}",
    }
    return headers, body


# kind, how its pushes are made, the push saying "cancelled", the one saying "expiring" (None:
# the marketplace sends no such push), and the time an expiring authorization has left
CASES: list[tuple[str, Callable[[Any, Any], tuple[dict[str, str], bytes]], Any, Any, str]] = [
    ("shopee", shopee, 2, 12, "7 days"),
    ("tiktok_shop", tiktok, 6, 7, "a few days"),
    ("tokopedia", tiktok, 6, 7, "a few days"),
    ("shopify", shopify, "app/uninstalled", None, ""),
]


@pytest.mark.parametrize(("kind", "make", "cancelled", "expiring", "left"), CASES)
def test_an_authorization_push_is_a_notice_naming_the_marketplace(
    kind, make, cancelled, expiring, left
):
    with emulator_class(kind)(items=1, seed=2) as emulator:
        adapter = adapter_class(kind)(base_url=emulator.base_url, credentials=emulator.credentials)
        service = adapter.service
        for said, words in ((cancelled, "cancelled omni's access"), (expiring, left)):
            if said is None:
                continue
            headers, body = make(emulator, said)

            event = adapter.verify_webhook(url=URL, headers=headers, body=body)

            assert event.topic == "authorization"
            assert event.order_number == ""
            assert event.notice.startswith(f"{service} says")
            assert words in event.notice
            assert "connect" in event.notice


def test_other_pushes_carry_no_notice_and_another_shops_is_not_the_channels():
    with emulator_class("shopee")(items=1, seed=2) as emulator:
        adapter = adapter_class("shopee")(
            base_url=emulator.base_url, credentials=emulator.credentials
        )
        stock = shopee(emulator, 8)  # reserved stock change
        # Shopee sends every shop of the app to one push URL
        other_shop = shopee(emulator, 12, shop_id=emulator.shop_id + 1)

        event, others = (
            adapter.verify_webhook(url=URL, headers=headers, body=body)
            for headers, body in (stock, other_shop)
        )

        assert (event.topic, event.notice, adapter.owns_push(event)) == ("other", "", True)
        assert others.topic == "authorization"
        assert others.shop == str(emulator.shop_id + 1)
        assert not adapter.owns_push(others)
