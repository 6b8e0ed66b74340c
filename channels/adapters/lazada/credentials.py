"""What a Lazada channel must store to call the Open Platform on behalf of one seller."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class LazadaCredentials(BaseModel):
    """An app's key and secret, and the seller's OAuth tokens for one country.

    Secrets are `SecretStr`, so they print as `**********` in repr, logs and admin widgets;
    `as_dict()` is the one way to get them back in clear, for storage. The app key is not a
    secret: Lazada sends it in every query string. Unknown keys are refused, so a misspelt key
    fails when the channel is saved, not during the night's first sync.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_key: str = Field(min_length=1, max_length=64)
    app_secret: SecretStr = Field(min_length=1)
    access_token: SecretStr = Field(min_length=1)
    refresh_token: SecretStr = SecretStr("")

    @field_validator("app_key", "app_secret", "access_token", "refresh_token", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        # Keys pasted from the Lazada console often come with a trailing space or newline.
        return value.strip() if isinstance(value, str) else value

    def as_dict(self) -> dict[str, Any]:
        """Every field in clear, in the shape this model validates: what the channel stores."""
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret.get_secret_value(),
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value(),
        }

    def with_tokens(self, *, access_token: str, refresh_token: str) -> "LazadaCredentials":
        """A copy holding a newly issued token pair."""
        return self.model_copy(
            update={
                "access_token": SecretStr(access_token),
                "refresh_token": SecretStr(refresh_token),
            }
        )
