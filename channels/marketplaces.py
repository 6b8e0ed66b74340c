"""Every marketplace omni knows, in one table.

A row names where each part of a marketplace lives (as dotted paths, loaded only when used, so
importing this module costs nothing) and the few facts the rest of omni needs about it.
`Channel.Kind`, the adapter and emulator lookups, the demo's shops and ports, and the tests'
list of kinds are all derived from `MARKETPLACES`: adding a marketplace is one package under
`channels/adapters/`, one emulator module and one row here (plus the migration for its new
`Channel.kind` choice). The contract suite runs every scenario for every row.
"""

from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string


@dataclass(frozen=True, slots=True)
class Marketplace:
    kind: str  # the value stored in Channel.kind
    label: str  # as staff read it
    adapter: str  # dotted path of the Adapter class
    credentials: str  # dotted path of the pydantic model a channel's credentials must validate
    emulator: str  # dotted path of the local emulator speaking the same API subset
    base_url: str  # the production host; "{shop}"/"{site}" templates where each shop has its own
    demo_port: int  # where `make demo` and `manage.py emulator` serve it
    demo_items: int  # how many items the demo shop lists
    # How the marketplace signs its pushes, written "HMAC-SHA256(<key>, <message>), <hex|base64>,
    # in <header>"; the contract suite checks the header and the encoding against the emulator.
    webhook_scheme: str
    # Access tokens expire and are renewed with a single-use refresh token (False: the keys a
    # seller pastes in never expire, so there is nothing to refresh or to persist).
    refreshes_tokens: bool
    # An order for more than the stock leaves the listing below zero, as the marketplace records
    # an oversold listing (False: the order takes what is left and the listing shows zero).
    stock_below_zero: bool


MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace(
        kind="shopee",
        label="Shopee",
        adapter="channels.adapters.shopee.adapter.ShopeeAdapter",
        credentials="channels.adapters.shopee.credentials.ShopeeCredentials",
        emulator="channels.emulators.shopee.ShopeeEmulator",
        base_url="https://partner.shopeemobile.com",
        demo_port=9101,
        demo_items=180,
        webhook_scheme="HMAC-SHA256(partner key, url|body), hex, in Authorization",
        refreshes_tokens=True,
        stock_below_zero=False,
    ),
    Marketplace(
        # Tokopedia sellers are served by the TikTok Shop Partner API.
        kind="tokopedia",
        label="Tokopedia",
        adapter="channels.adapters.tiktok.adapter.TokopediaAdapter",
        credentials="channels.adapters.tiktok.credentials.TikTokCredentials",
        emulator="channels.emulators.tiktok.TokopediaEmulator",
        base_url="https://open-api.tiktokglobalshop.com",
        demo_port=9102,
        demo_items=120,
        webhook_scheme="HMAC-SHA256(app secret, app key + body), hex, in Authorization",
        refreshes_tokens=True,
        stock_below_zero=False,
    ),
    Marketplace(
        kind="tiktok_shop",
        label="TikTok Shop",
        adapter="channels.adapters.tiktok.adapter.TikTokShopAdapter",
        credentials="channels.adapters.tiktok.credentials.TikTokCredentials",
        emulator="channels.emulators.tiktok.TikTokShopEmulator",
        base_url="https://open-api.tiktokglobalshop.com",
        demo_port=9103,
        demo_items=120,
        webhook_scheme="HMAC-SHA256(app secret, app key + body), hex, in Authorization",
        refreshes_tokens=True,
        stock_below_zero=False,
    ),
    Marketplace(
        kind="lazada",
        label="Lazada",
        adapter="channels.adapters.lazada.adapter.LazadaAdapter",
        credentials="channels.adapters.lazada.credentials.LazadaCredentials",
        emulator="channels.emulators.lazada.LazadaEmulator",
        # One host per country; Singapore's is the default, the channel may name another.
        base_url="https://api.lazada.sg/rest",
        demo_port=9104,
        demo_items=120,
        webhook_scheme="HMAC-SHA256(app secret, app key + body), hex, in Authorization",
        refreshes_tokens=True,
        stock_below_zero=False,
    ),
    Marketplace(
        kind="shopify",
        label="Shopify",
        adapter="channels.adapters.shopify.adapter.ShopifyAdapter",
        credentials="channels.adapters.shopify.credentials.ShopifyCredentials",
        emulator="channels.emulators.shopify.ShopifyEmulator",
        base_url="https://{shop}.myshopify.com",
        demo_port=9105,
        demo_items=80,
        webhook_scheme="HMAC-SHA256(client secret, body), base64, in X-Shopify-Hmac-SHA256",
        refreshes_tokens=True,
        stock_below_zero=True,
    ),
    Marketplace(
        kind="woocommerce",
        label="WooCommerce",
        adapter="channels.adapters.woocommerce.adapter.WooCommerceAdapter",
        credentials="channels.adapters.woocommerce.credentials.WooCommerceCredentials",
        emulator="channels.emulators.woocommerce.WooCommerceEmulator",
        base_url="https://{site}",
        demo_port=9106,
        demo_items=80,
        webhook_scheme="HMAC-SHA256(webhook secret, body), base64, in X-WC-Webhook-Signature",
        refreshes_tokens=False,
        stock_below_zero=True,
    ),
)

BY_KIND: dict[str, Marketplace] = {marketplace.kind: marketplace for marketplace in MARKETPLACES}
KINDS: tuple[str, ...] = tuple(BY_KIND)


def load_listed(dotted_path: str) -> Any | None:
    """The class at one of a row's dotted paths; None when its module is not written yet (a
    marketplace listed before its code). Any other import failure is a bug and is raised."""
    try:
        return import_string(dotted_path)
    except ModuleNotFoundError as exc:
        module = dotted_path.rpartition(".")[0]
        if exc.name is None or not (module + ".").startswith(exc.name + "."):
            raise
        return None
