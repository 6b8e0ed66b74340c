"""What a Shopify channel must store to call the GraphQL Admin API for one shop.

The shop itself is the channel's base URL (`https://<shop>.myshopify.com`); these are the keys.
"""

import re
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

LOCATION_GID = "gid://shopify/Location/"
_LOCATION = re.compile(r"^(?:gid://shopify/Location/)?(\d+)$")


class ShopifyCredentials(BaseModel):
    """An app's access token for one shop, the location omni stocks, and the app's client keys.

    - `access_token`: the offline Admin API token (`X-Shopify-Access-Token`).
    - `location_id`: the Shopify location whose "available" quantity omni sets, as a number or
      a `gid://shopify/Location/…` id; stored as the gid.
    - `client_secret`: the app's client secret. Shopify signs webhooks with it, and it
      authenticates a token refresh.
    - `client_id` and `refresh_token`: only for expiring offline tokens (one hour); with them
      the adapter trades the refresh token for a new pair when Shopify answers HTTP 401.

    Secrets are `SecretStr`, so they print as `**********` in repr, logs and admin widgets;
    `as_dict()` is the one way to get them back in clear, for storage. Unknown keys are
    refused, so a misspelt key fails when the channel is saved.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr = Field(min_length=1)
    location_id: str
    client_secret: SecretStr = Field(min_length=1)
    client_id: str = ""
    refresh_token: SecretStr = SecretStr("")

    @field_validator("access_token", "client_secret", "refresh_token", "client_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        # Keys copied from the Shopify admin often come with a trailing space or newline.
        return value.strip() if isinstance(value, str) else value

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

    def as_dict(self) -> dict[str, Any]:
        """Every field in clear, in the shape this model validates: what the channel stores."""
        return {
            "access_token": self.access_token.get_secret_value(),
            "location_id": self.location_id,
            "client_secret": self.client_secret.get_secret_value(),
            "client_id": self.client_id,
            "refresh_token": self.refresh_token.get_secret_value(),
        }

    def with_tokens(self, *, access_token: str, refresh_token: str) -> "ShopifyCredentials":
        """A copy holding a newly issued token pair."""
        return self.model_copy(
            update={
                "access_token": SecretStr(access_token),
                "refresh_token": SecretStr(refresh_token),
            }
        )
