"""Local marketplace emulators: HTTP servers on 127.0.0.1 that speak each marketplace's API.

`base.py` is the framework (server, call log, fault knobs), `shop.py` generates the shops they
serve, and each marketplace has one module. `EMULATORS` maps a channel kind to its emulator,
loaded lazily like the adapters.
"""

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from channels.emulators.base import Emulator

EMULATORS: dict[str, str] = {
    "shopee": "channels.emulators.shopee.ShopeeEmulator",
    "tiktok_shop": "channels.emulators.tiktok.TikTokShopEmulator",
    "tokopedia": "channels.emulators.tiktok.TokopediaEmulator",
    "lazada": "channels.emulators.lazada.LazadaEmulator",
    "shopify": "channels.emulators.shopify.ShopifyEmulator",
    "woocommerce": "channels.emulators.woocommerce.WooCommerceEmulator",
}

# Fixed ports for running several emulators side by side in a demo; tests use free ports.
DEFAULT_PORTS: dict[str, int] = {
    "shopee": 9101,
    "tokopedia": 9102,
    "tiktok_shop": 9103,
    "lazada": 9104,
    "shopify": 9105,
    "woocommerce": 9106,
}


def emulator_class(kind: str) -> type["Emulator"]:
    """The emulator class for a channel kind; LookupError when there is none yet."""
    if kind not in EMULATORS:
        raise LookupError(f"no emulator for {kind} yet (available: {', '.join(sorted(EMULATORS))})")
    cls: type[Emulator] = import_string(EMULATORS[kind])
    return cls
