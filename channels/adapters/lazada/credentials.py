"""What a Lazada channel must store to call the Open Platform on behalf of one seller."""

from pydantic import Field, SecretStr

from channels.adapters import kit


class LazadaCredentials(kit.Credentials):
    """An app's key and secret, and the seller's OAuth tokens for one country.

    The app key is not a secret: Lazada sends it in every query string. Keys pasted from the
    Lazada console often come with a trailing space or newline; the base trims them.
    `seller_id` (optional) is the seller the tokens are for, which Lazada's pushes name: one
    app sends every seller's pushes to its one push URL. A token refresh learns it.
    """

    app_key: str = Field(min_length=1, max_length=64)
    app_secret: SecretStr = Field(min_length=1)
    access_token: SecretStr = Field(min_length=1)
    refresh_token: SecretStr = SecretStr("")
    seller_id: str = Field(default="", max_length=32, pattern=r"^[0-9]*$")
