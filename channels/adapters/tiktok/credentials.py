"""What a TikTok Shop (or Tokopedia) channel must store to call the Partner API for one shop."""

from pydantic import Field, SecretStr

from channels.adapters.kit import Credentials


class TikTokCredentials(Credentials):
    """A partner app's keys, the seller's OAuth tokens and the shop they act on.

    - `shop_cipher` selects the shop among those the token may act on (Get Authorized Shops
      lists them); it identifies, it does not authenticate, so it is not a secret.
    - `warehouse_id` is the warehouse omni's quantities go to. Empty: the shop's default
      warehouse (a SKU stocked in several warehouses then needs it set).
    - `access_token_expires_at` is TikTok's absolute expiry (Unix seconds) of the access
      token, kept after a refresh so staff can see when the shop must be reconnected; 0 when
      unknown. The adapter refreshes on TikTok's "expired" answer, not on this clock.
    """

    app_key: str = Field(min_length=1)
    app_secret: SecretStr = Field(min_length=1)
    access_token: SecretStr = Field(min_length=1)
    refresh_token: SecretStr = SecretStr("")
    shop_cipher: str = Field(min_length=1)
    warehouse_id: str = ""
    access_token_expires_at: int = Field(default=0, ge=0)
