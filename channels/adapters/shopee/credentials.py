"""What a Shopee channel must store to call the Open Platform on behalf of one shop."""

from pydantic import Field, SecretStr

from channels.adapters import kit


class ShopeeCredentials(kit.Credentials):
    """A shop's partner app keys and OAuth tokens (secrets as `SecretStr`, text trimmed,
    unknown keys refused: see `kit.Credentials`)."""

    partner_id: int = Field(gt=0)
    partner_key: SecretStr = Field(min_length=1)
    shop_id: int = Field(gt=0)
    access_token: SecretStr
    refresh_token: SecretStr = SecretStr("")
