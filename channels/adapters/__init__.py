"""The marketplace adapters, by channel kind, loaded lazily.

Adding a marketplace means adding its package under `channels/adapters/<kind>/` and one line to
`ADAPTERS` and `CREDENTIALS_SCHEMAS`; nothing else imports an adapter module directly.
"""

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from channels.adapters.base import AdapterError, CredentialsError, CredentialsSaver

if TYPE_CHECKING:
    from pydantic import BaseModel

    from channels.adapters.base import Adapter

# Every kind omni knows, with the production API host an adapter talks to by default.
# Shopify and WooCommerce have no shared host: each shop has its own, so their entries are
# templates that the channel's own base URL replaces.
DEFAULT_BASE_URLS: dict[str, str] = {
    "shopee": "https://partner.shopeemobile.com",
    # Tokopedia sellers are served by the TikTok Shop Partner API.
    "tokopedia": "https://open-api.tiktokglobalshop.com",
    "tiktok_shop": "https://open-api.tiktokglobalshop.com",
    # One host per country; Singapore's is the default, the channel may name another.
    "lazada": "https://api.lazada.sg/rest",
    "shopify": "https://{shop}.myshopify.com",
    "woocommerce": "https://{site}",
}

ADAPTERS: dict[str, str] = {
    "shopee": "channels.adapters.shopee.adapter.ShopeeAdapter",
    "tiktok_shop": "channels.adapters.tiktok.adapter.TikTokShopAdapter",
    "tokopedia": "channels.adapters.tiktok.adapter.TokopediaAdapter",
    "lazada": "channels.adapters.lazada.adapter.LazadaAdapter",
    "shopify": "channels.adapters.shopify.adapter.ShopifyAdapter",
    "woocommerce": "channels.adapters.woocommerce.adapter.WooCommerceAdapter",
}

CREDENTIALS_SCHEMAS: dict[str, str] = {
    "shopee": "channels.adapters.shopee.credentials.ShopeeCredentials",
    "tiktok_shop": "channels.adapters.tiktok.credentials.TikTokCredentials",
    "tokopedia": "channels.adapters.tiktok.credentials.TikTokCredentials",
    "lazada": "channels.adapters.lazada.credentials.LazadaCredentials",
    "shopify": "channels.adapters.shopify.credentials.ShopifyCredentials",
    "woocommerce": "channels.adapters.woocommerce.credentials.WooCommerceCredentials",
}


def adapter_class(kind: str) -> type["Adapter"]:
    """The adapter class for `kind`; AdapterError when omni has none (yet)."""
    cls: type[Adapter] = import_string(_dotted_path(ADAPTERS, kind))
    return cls


def credentials_schema(kind: str) -> type["BaseModel"]:
    """The pydantic model a channel's credentials of this kind must validate against."""
    schema: type[BaseModel] = import_string(_dotted_path(CREDENTIALS_SCHEMAS, kind))
    return schema


def build_adapter(
    kind: str,
    *,
    base_url: str,
    credentials: Mapping[str, Any],
    on_credentials_changed: CredentialsSaver | None = None,
) -> "Adapter":
    """An adapter for one channel.

    `on_credentials_changed(new_credentials)` is called when the marketplace issues new tokens
    during a call; the caller must persist the whole dict (refresh tokens are single-use).
    Raises CredentialsError when `credentials` do not validate, naming the fields, never the
    values.
    """
    cls = adapter_class(kind)
    return cls(  # type: ignore[call-arg]
        base_url=base_url or DEFAULT_BASE_URLS[kind],
        credentials=credentials,
        on_credentials_changed=on_credentials_changed,
    )


def credentials_error(service: str, errors: Iterable[Mapping[str, Any]]) -> CredentialsError:
    """A CredentialsError listing what is wrong with each field, never the field's value.

    `errors` is pydantic's `ValidationError.errors()`, whose messages would otherwise quote the
    submitted secrets back.
    """
    problems = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ())) or "credentials"
        problems.append(f"{field}: {error.get('msg', 'invalid')}")
    return CredentialsError(
        f"The {service} credentials are incomplete or wrong ({'; '.join(problems)})",
        code="invalid_credentials",
    )


def _dotted_path(table: Mapping[str, str], kind: str) -> str:
    if kind in table:
        return table[kind]
    if kind in DEFAULT_BASE_URLS:
        raise AdapterError(f"no adapter for {kind} yet", retryable=False, code="no_adapter")
    known = ", ".join(sorted(DEFAULT_BASE_URLS))
    raise AdapterError(
        f"unknown channel kind {kind!r} (known: {known})", retryable=False, code="no_adapter"
    )
