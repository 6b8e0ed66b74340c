"""Channel credentials, encrypted at rest with Fernet and rotatable keys.

`settings.OMNI_CREDENTIALS_KEYS` lists the keys, newest first: the first encrypts, every one
decrypts (`MultiFernet`). `Channel.credentials` is an `EncryptedJSONField`: Python code sees the
plain dict, the column holds a Fernet token ("" for no credentials).

A row that no configured key decrypts (the key was lost or left out) loads as
`UnreadableCredentials`, so its channel still lists, shows and saves (the stored token is written
back unchanged) and every other channel works as before; only using those credentials raises
`CredentialsUnreadable`, which names the channel and what to do.
"""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import models, transaction

from channels.adapters.base import CredentialsError
from channels.exceptions import ChannelError

if TYPE_CHECKING:
    from channels.models import Channel

KEYS_SETTING = "OMNI_CREDENTIALS_KEYS"


class UnreadableCredentials:
    """Stored credentials that no configured key decrypts: kept as stored, never usable.

    Truthy, because something is stored; not a mapping, so no code can mistake it for a
    (partial) set of credentials and write that back.
    """

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnreadableCredentials) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return "<UnreadableCredentials>"


StoredCredentials = dict[str, Any] | UnreadableCredentials


class CredentialsUnreadable(CredentialsError, ChannelError):
    """A channel's stored credentials cannot be decrypted with any configured key.

    A `CredentialsError` (not retryable), so scans, pushes and downloads record it as they
    record refused credentials; a `ChannelError`, so the API answers it as a 409 naming the
    channel instead of a 500.
    """

    def __init__(self, channel: "Channel") -> None:
        super().__init__(
            f"The stored credentials of channel “{channel}” (id {channel.pk}) cannot be "
            f"decrypted with any key in {KEYS_SETTING}: add the key they were encrypted with "
            f"back to {KEYS_SETTING}, or enter the channel's credentials again.",
            code="credentials_unreadable",
        )


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current_cipher() -> MultiFernet:
    """The configured keys as one cipher. Cost: a dict lookup once built (cached per key list)."""
    return _cipher(tuple(getattr(settings, KEYS_SETTING)))


def credentials_encrypt(values: dict[str, Any]) -> str:
    """The Fernet token of `values` as JSON, under the newest key; "" for no credentials.

    Cost: one AES-128-CBC encryption and one HMAC-SHA256 of a few hundred bytes (microseconds).
    """
    if not values:
        return ""
    plain = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return _current_cipher().encrypt(plain.encode()).decode("ascii")


def credentials_decrypt(token: str) -> StoredCredentials:
    """The dict a token holds, or `UnreadableCredentials` when no configured key opens it.

    Cost: one HMAC check per key tried (newest first) and one decryption.
    """
    if not token:
        return {}
    try:
        plain = _current_cipher().decrypt(token.encode())
    except InvalidToken:
        return UnreadableCredentials(token)
    return json.loads(plain)


def credentials_of(channel: "Channel") -> dict[str, Any]:
    """The channel's credentials, ready to use; raises `CredentialsUnreadable` if no key opens
    them."""
    stored = channel.credentials
    if isinstance(stored, UnreadableCredentials):
        raise CredentialsUnreadable(channel)
    return stored


class EncryptedJSONField(models.TextField):
    """A JSON object stored as a Fernet token; loads as the dict (or `UnreadableCredentials`).

    The column cannot be queried: every encryption of the same value differs, so any lookup
    raises a FieldError. `dumpdata` writes the token, never the plain values.
    """

    description = "A JSON object, encrypted (Fernet)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return credentials_decrypt(value or "")

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):  # a token, from a fixture or a form
            return credentials_decrypt(value)
        return value

    def get_prep_value(self, value: Any) -> str:
        if isinstance(value, UnreadableCredentials):
            return value.token
        if value is None:
            return ""
        if not isinstance(value, dict):
            raise TypeError(f"{self.name} must be a dict, got {type(value).__name__}")
        return credentials_encrypt(value)

    def value_to_string(self, obj: models.Model) -> str:
        return self.get_prep_value(self.value_from_object(obj))

    def get_lookup(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.name} is encrypted and cannot be filtered on ({lookup_name}).")

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.name} is encrypted and cannot be filtered on ({lookup_name}).")


@dataclass
class ReencryptReport:
    rewritten: int = 0
    unreadable: list[str] = field(default_factory=list)


def credentials_reencrypt_all() -> ReencryptReport:
    """Re-encrypt every channel's credentials under the newest key, one channel at a time.

    Each row is locked while it is rewritten, so a token refreshed meanwhile is never
    overwritten with an older one. Rows that no key opens are left as they are and named in
    the report. Safe to re-run. Cost: per channel, one locked read and one update.
    """
    from channels.models import Channel

    report = ReencryptReport()
    for pk in Channel.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            channel = Channel.objects.select_for_update().only("pk", "name", "credentials")
            channel = channel.filter(pk=pk).first()
            if channel is None:
                continue
            if isinstance(channel.credentials, UnreadableCredentials):
                report.unreadable.append(f"{channel} (id {channel.pk})")
                continue
            channel.save(update_fields=["credentials"])
            report.rewritten += 1
    return report
