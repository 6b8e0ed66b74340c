"""What a Shopee channel must store to call the Open Platform on behalf of one shop."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class ShopeeCredentials(BaseModel):
    """A shop's partner app keys and OAuth tokens.

    Secrets are `SecretStr`, so they print as `**********` in repr, logs and admin widgets;
    `as_dict()` is the one way to get them back in clear, for storage.
    Unknown keys are refused, so a misspelt key fails when the channel is saved, not at 3 a.m.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: int = Field(gt=0)
    partner_key: SecretStr = Field(min_length=1)
    shop_id: int = Field(gt=0)
    access_token: SecretStr
    refresh_token: SecretStr = SecretStr("")

    @field_validator("partner_key", "access_token", "refresh_token", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        # Keys pasted from Shopee's console often come with a trailing space or newline.
        return value.strip() if isinstance(value, str) else value

    def as_dict(self) -> dict[str, Any]:
        """Every field in clear, in the shape this model validates: what the channel stores."""
        return {
            "partner_id": self.partner_id,
            "partner_key": self.partner_key.get_secret_value(),
            "shop_id": self.shop_id,
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value(),
        }

    def with_tokens(self, *, access_token: str, refresh_token: str) -> "ShopeeCredentials":
        """A copy holding a newly issued token pair."""
        return self.model_copy(
            update={
                "access_token": SecretStr(access_token),
                "refresh_token": SecretStr(refresh_token),
            }
        )
