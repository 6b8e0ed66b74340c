"""The marketplace adapters, by channel kind, loaded lazily.

Where each kind's adapter and credentials model live, and its production host, are read from
`channels.marketplaces.MARKETPLACES`; nothing else imports an adapter module directly.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from channels.adapters.base import AdapterError, CredentialsSaver
from channels.marketplaces import BY_KIND, Marketplace, load_listed

if TYPE_CHECKING:
    from pydantic import BaseModel

    from channels.adapters.base import Adapter


def adapter_class(kind: str) -> type["Adapter"]:
    """The adapter class for `kind`; AdapterError when omni has none (yet)."""
    cls: type[Adapter] = _load(kind, _marketplace(kind).adapter)
    return cls


def credentials_schema(kind: str) -> type["BaseModel"]:
    """The pydantic model a channel's credentials of this kind must validate against."""
    schema: type[BaseModel] = _load(kind, _marketplace(kind).credentials)
    return schema


def build_adapter(
    kind: str,
    *,
    base_url: str,
    credentials: Mapping[str, Any],
    on_credentials_changed: CredentialsSaver | None = None,
    max_in_flight: int | None = None,
    max_per_second: int | None = None,
) -> "Adapter":
    """An adapter for one channel.

    `on_credentials_changed(new_credentials)` is called when the marketplace issues new tokens
    during a call; the caller must persist the whole dict (refresh tokens are single-use).
    `max_in_flight` is the channel's own limit of calls at once (None: the marketplace's
    default, `Limits.max_in_flight`), `max_per_second` its quota of calls a second (None: no
    spacing between calls). Raises CredentialsError when `credentials` do not
    validate, naming the fields, never the values.
    """
    cls = adapter_class(kind)
    return cls(  # type: ignore[call-arg]
        base_url=base_url or BY_KIND[kind].base_url,
        credentials=credentials,
        on_credentials_changed=on_credentials_changed,
        max_in_flight=max_in_flight,
        max_per_second=max_per_second,
    )


def _load(kind: str, dotted_path: str) -> Any:
    """The class at `dotted_path`; AdapterError when its package is not written yet."""
    loaded = load_listed(dotted_path)
    if loaded is None:
        raise AdapterError(f"no adapter for {kind} yet", retryable=False, code="no_adapter")
    return loaded


def _marketplace(kind: str) -> Marketplace:
    if kind in BY_KIND:
        return BY_KIND[kind]
    known = ", ".join(sorted(BY_KIND))
    raise AdapterError(
        f"unknown channel kind {kind!r} (known: {known})", retryable=False, code="no_adapter"
    )
