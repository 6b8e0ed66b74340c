"""What a Shopify channel must store to call the GraphQL Admin API for one shop.

The shop itself is the channel's base URL (`https://<shop>.myshopify.com`); these are the keys.
"""

import re
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from channels.adapters.kit import Credentials

LOCATION_GID = "gid://shopify/Location/"
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
    """

    access_token: SecretStr = Field(min_length=1)
    location_id: str
    client_secret: SecretStr = Field(min_length=1)
    client_id: str = ""
    refresh_token: SecretStr = SecretStr("")

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
