"""What a WooCommerce channel must store to call one store's REST API (v3)."""

from pydantic import Field, SecretStr, field_validator

from channels.adapters import kit


class WooCommerceCredentials(kit.Credentials):
    """A store's REST API key pair and the secret of its order webhooks.

    The key pair comes from WooCommerce > Settings > Advanced > REST API ("ck_…" and "cs_…").
    Both halves are `SecretStr`: WooCommerce itself keeps only a hash of the consumer key, and
    over HTTPS the pair is sent as Basic credentials, so either half is sensitive.
    `webhook_secret` is the "Secret" field of the store's webhooks; blank until webhooks are set
    up, and then every push is refused. `as_dict()` is the one way to read the values back.
    WooCommerce keys never expire, so there is no token to refresh.
    """

    consumer_key: SecretStr = Field(min_length=1)
    consumer_secret: SecretStr = Field(min_length=1)
    webhook_secret: SecretStr = SecretStr("")

    @field_validator("consumer_key")
    @classmethod
    def _looks_like_a_key(cls, value: SecretStr) -> SecretStr:
        # The message never quotes the value: pydantic would otherwise echo the secret back.
        if not value.get_secret_value().startswith("ck_"):
            raise ValueError(
                "a WooCommerce consumer key starts with ck_ (were key and secret swapped?)"
            )
        return value

    @field_validator("consumer_secret")
    @classmethod
    def _looks_like_a_secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("cs_"):
            raise ValueError(
                "a WooCommerce consumer secret starts with cs_ (were key and secret swapped?)"
            )
        return value
