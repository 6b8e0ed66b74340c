"""Writes to channels: creating and configuring them, and building their adapters."""

import threading
import time
from collections.abc import Callable
from typing import Any, cast

from django.db import connection, transaction
from pydantic import ValidationError as PydanticValidationError

from catalog.models import Outlet
from channels.adapters import build_adapter, credentials_schema
from channels.adapters.base import Adapter, AdapterError
from channels.adapters.kit import Credentials
from channels.credentials_store import credentials_of
from channels.exceptions import InvalidCredentials
from channels.models import Channel


def credentials_validate(*, kind: str, credentials: dict[str, Any]) -> dict[str, Any]:
    """Check credentials against the kind's schema; the cleaned dict to store.

    The error names the fields and what is wrong with them, never their values.
    """
    try:
        schema = credentials_schema(kind)
    except AdapterError as exc:
        raise InvalidCredentials(f"Cannot connect a {kind} channel: {exc}.") from None
    try:
        parsed = schema.model_validate(credentials)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'credentials'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise InvalidCredentials(f"Credentials for {kind} are not valid: {problems}") from None
    return _plain(parsed.model_dump())


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Unwrap pydantic SecretStr values so the dict can be stored as JSON."""
    return {
        key: value.get_secret_value() if hasattr(value, "get_secret_value") else value
        for key, value in values.items()
    }


def channel_replace_credentials(*, channel: Channel, credentials: dict[str, Any]) -> None:
    """Put `credentials` (validated) in place of the channel's, unsaved: the new ones, plus
    what the marketplace still needs of the old ones for a while (`Credentials.replacing`:
    Shopify may sign webhooks with a rotated secret for an hour). Changed credentials are the
    answer to an authorization notice, so it is cleared; the same ones entered again are not.
    """
    stored = channel.credentials
    if isinstance(stored, dict) and stored:  # not for a new channel, nor unreadable ones
        schema = cast(type[Credentials], credentials_schema(channel.kind))
        credentials = schema.replacing(stored, credentials, now=int(time.time()))
    if credentials != stored:
        channel.authorization_notice, channel.authorization_notice_at = "", None
    channel.credentials = credentials


class _ChannelCredentials:
    """A channel's row as the keeper of its credentials for every process (`SharedCredentials`).

    Refreshed tokens are persisted at once (a Shopee refresh token is single-use), and a token
    refresh runs under the row's lock, so two workers meeting an expired token together trade
    the refresh token once and the later one adopts what the first stored. The lock is
    PostgreSQL's FOR NO KEY UPDATE, held while the marketplace answers the refresh: other
    refreshes and row locks of the channel wait for it, rows referring to the channel are
    written as usual. SQLite's IMMEDIATE transactions serialise the refresh against every
    writer instead.

    A scan reads with several threads, so a token may be refreshed on one of the adapter's
    own; that thread's database connection is closed again afterwards (Django opens one per
    thread and nothing else would close it).
    """

    def __init__(self, channel_id: int) -> None:
        self._channel_id = channel_id
        self._owner = threading.get_ident()

    def __call__(self, new_credentials: dict[str, Any]) -> None:
        self.refresh(lambda stored: new_credentials)

    def refresh(self, renew: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        try:
            with transaction.atomic():
                locked = Channel.objects.select_for_update(no_key=True)
                row = locked.get(pk=self._channel_id)
                stored = credentials_of(row)
                renewed = renew(stored)
                if renewed is None:
                    return stored
                row.credentials = {**stored, **_plain(renewed)}
                row.save(update_fields=["credentials", "updated_at"])
                return row.credentials
        finally:
            if threading.get_ident() != self._owner:
                connection.close()


def adapter_for(channel: Channel) -> Adapter:
    """The channel's adapter, with as many calls in flight as the channel allows (its
    `max_concurrent_calls`, else the marketplace's default) and no more calls a second than its
    `max_calls_per_second`; `CredentialsUnreadable` if no configured key decrypts its
    credentials."""
    return build_adapter(
        channel.kind,
        base_url=channel.base_url(),
        credentials=credentials_of(channel),
        on_credentials_changed=_ChannelCredentials(channel.pk),
        max_in_flight=channel.max_concurrent_calls,
        max_per_second=channel.max_calls_per_second,
    )


OVERSELL_WARNING = (
    "Duplicate SKUs set to “update all”: every listing that shares a SKU is sent the same "
    "quantity, which may oversell. The channel's inventory mode is now “Synchronize with "
    "fulfillment channel”, so each full sync corrects any drift."
)


def channel_apply_duplicate_policy(*, channel: Channel) -> str:
    """Choosing “update all” switches the channel to fulfillment sync (BRIEF §4).

    Call before saving a channel; returns the warning to show, or "".
    """
    if channel.duplicate_sku_policy != Channel.DuplicatePolicy.UPDATE_ALL:
        return ""
    channel.inventory_sync_mode = Channel.SyncMode.FULFILLMENT
    return OVERSELL_WARNING


# The channel settings that may be blank: null in a change clears them.
CLEARABLE = frozenset({"stock_maximum", "stock_cutoff", "priority_threshold", "price_round_step"})


def channel_save(*, channel: Channel, data: dict[str, Any], requested_by: str = "") -> str:
    """Apply `data` to `channel`, validate everything, then save; the policy warning or "".

    `data` holds model fields, plus `outlets` (codes), `order_outlet` (a code) and
    `credentials` (validated for the kind, then stored; never echoed).

    Outlets are named by code; unknown codes are a 404. Nothing is written unless all of it is
    valid.
    """
    outlet_codes = data.pop("outlets", None)
    order_code = data.pop("order_outlet", None)
    credentials = data.pop("credentials", None)
    existing = channel.pk is not None
    before = {name: getattr(channel, name) for name in data}
    was_priority = channel.is_priority
    old_order_outlet = channel.order_outlet_id if channel.pk else None
    for name, value in data.items():
        if name == "api_base_url":
            channel.api_base_url = value or ""  # null or "" → the marketplace's own host
        elif value is not None or name in CLEARABLE:  # null leaves a required setting as it is
            setattr(channel, name, value)
    codes = set(outlet_codes or []) | ({order_code} if order_code else set())
    outlets = {o.code: o for o in Outlet.objects.filter(code__in=codes)}
    missing = sorted(codes - outlets.keys())
    if missing:
        raise Outlet.DoesNotExist(f"No outlet has the code(s) {', '.join(missing)}.")
    if order_code:
        channel.order_outlet = outlets[order_code]
    if credentials is not None:
        validated = credentials_validate(kind=channel.kind, credentials=credentials)
        channel_replace_credentials(channel=channel, credentials=validated)
    elif not channel.credentials:
        raise InvalidCredentials("A channel needs its credentials.")
    warning = channel_apply_duplicate_policy(channel=channel)
    channel.full_clean(exclude=["credentials"])
    with transaction.atomic():
        changed = {name for name, value in before.items() if getattr(channel, name) != value}
        if channel.order_outlet_id != old_order_outlet:
            changed.add("order_outlet")
        channel.save()
        if outlet_codes is not None:
            channel.outlets.set([outlets[code] for code in outlet_codes])
            changed.add("outlets")
        if existing or channel.is_priority:  # what channels are sent may have changed
            from channels.rules import channel_settings_changed  # rules → inventory → services

            channel_settings_changed(
                channel=channel,
                changed=changed,
                was_priority=was_priority,
                requested_by=requested_by,
            )
    return warning
