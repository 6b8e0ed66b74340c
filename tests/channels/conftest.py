"""Fixtures for the channel tests: a Shopee emulator on a free port, and adapters for it; an
empty shop of any marketplace, for the modules that choose it with a `kind` fixture."""

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from channels.adapters.http import RetryPolicy
from channels.adapters.shopee.adapter import ShopeeAdapter
from channels.emulators import emulator_class
from channels.emulators.shopee import ShopeeEmulator

# Back-off short enough for tests; the emulator's Retry-After (0.05 s) still wins when sent.
FAST_RETRY = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.2)


@pytest.fixture
def shopee() -> Iterator[ShopeeEmulator]:
    """A small Shopee shop: 40 items, about a third of them with models."""
    with ShopeeEmulator(items=40, seed=7) as emulator:
        yield emulator


def shopee_adapter(emulator: ShopeeEmulator, **overrides: Any) -> ShopeeAdapter:
    """An adapter for `emulator`, with its credentials unless `credentials` is given."""
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return ShopeeAdapter(**options)


def signed_call(
    emulator: ShopeeEmulator,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    partner_key: str | None = None,
    timestamp: int | None = None,
) -> requests.Response:
    """A shop call signed here by hand, independently of the client under test."""
    creds = emulator.credentials
    ts = int(time.time()) if timestamp is None else timestamp
    base = f"{creds['partner_id']}{path}{ts}{creds['access_token']}{creds['shop_id']}"
    key = (partner_key or creds["partner_key"]).encode()
    query = {
        "partner_id": creds["partner_id"],
        "timestamp": ts,
        "access_token": creds["access_token"],
        "shop_id": creds["shop_id"],
        "sign": hmac.new(key, base.encode(), hashlib.sha256).hexdigest(),
        **(params or {}),
    }
    return requests.request(method, emulator.base_url + path, params=query, json=body, timeout=5)


@pytest.fixture
def emulator(kind):
    """An empty shop of the marketplace the module's `kind` fixture names, filled by hand."""
    with emulator_class(kind)(items=0, seed=21) as server:
        yield server
