"""Fixtures for the API tests: tokens, and a client that talks to /api/ as an integration does."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from channels.emulators.shopee import ShopeeEmulator
from omni.auth import token_create
from tests.channels.builders import shop_item


class ApiClient:
    """JSON in, JSON out, with `Authorization: Bearer <token>` (or none)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.client = Client()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any):
        return self.client.get(path, params or {}, headers=self._headers(kwargs.get("headers")))

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ):
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return self.client.generic(
            method, path, data, content_type="application/json", headers=self._headers(headers)
        )

    def post(self, path: str, body: Any = None, **kwargs: Any):
        return self.send("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any):
        return self.send("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.send("DELETE", path, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(db) -> ApiClient:
    """An integration holding a read+write token."""
    return ApiClient(token_create(name="ERP", scopes="read,write")[1])


@pytest.fixture
def reader(db) -> ApiClient:
    """An integration holding a read-only token."""
    return ApiClient(token_create(name="Dashboard", scopes="read")[1])


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient(None)


@pytest.fixture
def shop():
    """Black Tee and White Tee (noisy SKU) match the POS; Mystery Box has no SKU; the cup has
    one unknown model; two mugs share a SKU."""
    with ShopeeEmulator(items=0, seed=3) as emulator:
        emulator.ids = {
            "black": emulator.put_item(shop_item("Black Tee", "TEE-BLK-M")),
            "white": emulator.put_item(shop_item("White Tee", " tee-wht-m ")),
            "blank": emulator.put_item(shop_item("Mystery Box", "")),
            "cup": emulator.put_item(shop_item("Green Cup", "CUP-GRN", "UNKNOWN-9")),
            "mug_a": emulator.put_item(shop_item("Mug", "MUG-01")),
            "mug_b": emulator.put_item(shop_item("Mug (bundle)", "mug-01")),
        }
        yield emulator


def outlet_product_channel(api: ApiClient, shop, *, sku: str, price: str) -> tuple[dict, dict]:
    """Through the API: outlet "jkt", a one-variant product, and a Shopee channel on `shop`
    ordering into that outlet. The product's and the channel's JSON."""
    api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"})
    product = api.post(
        "/api/products", {"name": "Tee", "variants": [{"sku": sku, "retail_price": price}]}
    ).json()
    channel = api.post(
        "/api/channels",
        {
            "kind": "shopee",
            "name": "Shopee",
            "api_base_url": shop.base_url,
            "credentials": shop.credentials,
            "order_outlet": "jkt",
        },
    ).json()
    return product, channel
