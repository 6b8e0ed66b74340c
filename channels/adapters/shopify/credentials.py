"""What a Shopify channel must store to call the GraphQL Admin API for one shop.

The shop itself is the channel's base URL (`https://<shop>.myshopify.com`); these are the keys.
"""

import re
from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from channels.adapters.kit import Credentials

LOCATION_GID = "gid://shopify/Location/"
# How long Shopify may go on signing webhooks with a client secret after it is rotated.
WEBHOOK_SECRET_GRACE = 3600
_LOCATION = re.compile(r"^(?:gid://shopify/Location/)?(\d+)$")


class ShopifyCredentials(Credentials):
    """An app's access token for one shop, the location omni stocks, and the app's client keys.

    - `access_token`: the offline Admin API token (`X-Shopify-Access-Token`).
    - `location_id`: the Shopify location whose "available" quantity omni sets, as a number or
      a `gid://shopify/Location/…` id; stored as the gid.
    - `client_secret`: the app's client secret. Shopify signs webhooks with it, and it
      authenticates a token refresh.
    - `client_id` and `refresh_token`: only for expiring offline tokens (one hour); with them
      the adapter trades the refresh token for a new pair when Shopify answers HTTP 401.
    - `previous_client_secret` and `client_secret_replaced_at` (Unix seconds): kept by omni
      when staff enter a new client secret (`replacing`). After a secret is rotated Shopify
      may sign webhooks with the old one for up to an hour (marketplace-apis.md §4.5), and
      refusing them would count as failed deliveries, after eight of which Shopify deletes
      the subscription.
    """

    access_token: SecretStr = Field(min_length=1)
    location_id: str
    client_secret: SecretStr = Field(min_length=1)
    client_id: str = ""
    refresh_token: SecretStr = SecretStr("")
    previous_client_secret: SecretStr = SecretStr("")
    client_secret_replaced_at: int = 0

    @classmethod
    def replacing(
        cls, stored: Mapping[str, Any], new: dict[str, Any], *, now: int
    ) -> dict[str, Any]:
        """A new client secret keeps the one it replaces, with the time; the same secret
        entered again keeps the previous one still in its hour."""
        old = str(stored.get("client_secret") or "")
        if not old:
            return new
        if old != new.get("client_secret"):
            return {**new, "previous_client_secret": old, "client_secret_replaced_at": now}
        kept = ("previous_client_secret", "client_secret_replaced_at")
        return {**new, **{name: stored[name] for name in kept if name in stored}}

    def webhook_secrets(self, *, now: float) -> list[str]:
        """The secrets a webhook may be signed with now: the client secret, and the one it
        replaced during the hour after (`WEBHOOK_SECRET_GRACE`)."""
        secrets = [self.client_secret.get_secret_value()]
        previous = self.previous_client_secret.get_secret_value()
        if previous and now - self.client_secret_replaced_at < WEBHOOK_SECRET_GRACE:
            secrets.append(previous)
        return secrets

    @field_validator("location_id", mode="before")
    @classmethod
    def _location_gid(cls, value: Any) -> Any:
        text = str(value).strip() if isinstance(value, str | int) else value
        if not isinstance(text, str):
            return value
        match = _LOCATION.match(text)
        if match is None:
            raise ValueError("must be a Shopify location id: a number or gid://shopify/Location/…")
        return LOCATION_GID + match.group(1)

    @model_validator(mode="after")
    def _refresh_needs_client_id(self) -> Self:
        if self.refresh_token.get_secret_value() and not self.client_id:
            raise ValueError("client_id is required with a refresh_token")
        return self
