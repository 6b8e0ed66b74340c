"""What a TikTok Shop (or Tokopedia) channel must store to call the Partner API for one shop."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class TikTokCredentials(BaseModel):
    """A partner app's keys, the seller's OAuth tokens and the shop they act on.

    Secrets are `SecretStr`, so they print as `**********` in repr, logs and admin widgets;
    `as_dict()` is the one way to get them back in clear, for storage. Unknown keys are refused,
    so a misspelt key fails when the channel is saved, not at 3 a.m.

    - `shop_cipher` selects the shop among those the token may act on (Get Authorized Shops
      lists them); it identifies, it does not authenticate, so it is not a secret.
    - `warehouse_id` is the warehouse omni's quantities go to. Empty: the shop's default
      warehouse (a SKU stocked in several warehouses then needs it set).
    - `access_token_expires_at` is TikTok's absolute expiry (Unix seconds) of the access
      token, kept after a refresh so staff can see when the shop must be reconnected; 0 when
      unknown. The adapter refreshes on TikTok's "expired" answer, not on this clock.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_key: str = Field(min_length=1)
    app_secret: SecretStr = Field(min_length=1)
    access_token: SecretStr = Field(min_length=1)
    refresh_token: SecretStr = SecretStr("")
    shop_cipher: str = Field(min_length=1)
    warehouse_id: str = ""
    access_token_expires_at: int = Field(default=0, ge=0)

    @field_validator(
        "app_key",
        "app_secret",
        "access_token",
        "refresh_token",
        "shop_cipher",
        "warehouse_id",
        mode="before",
    )
    @classmethod
    def _strip(cls, value: Any) -> Any:
        # Keys pasted from Partner Center often come with a trailing space or newline.
        return value.strip() if isinstance(value, str) else value

    def as_dict(self) -> dict[str, Any]:
        """Every field in clear, in the shape this model validates: what the channel stores."""
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret.get_secret_value(),
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value(),
            "shop_cipher": self.shop_cipher,
            "warehouse_id": self.warehouse_id,
            "access_token_expires_at": self.access_token_expires_at,
        }

    def with_tokens(
        self, *, access_token: str, refresh_token: str, access_token_expires_at: int = 0
    ) -> "TikTokCredentials":
        """A copy holding a newly issued token pair."""
        return self.model_copy(
            update={
                "access_token": SecretStr(access_token),
                "refresh_token": SecretStr(refresh_token),
                "access_token_expires_at": max(0, access_token_expires_at),
            }
        )
