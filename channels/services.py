"""Writes to channels: creating and configuring them, and building their adapters."""

from typing import Any

from django.db import transaction
from pydantic import ValidationError as PydanticValidationError

from channels.adapters import build_adapter, credentials_schema
from channels.adapters.base import Adapter, AdapterError
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


def channel_set_credentials(*, channel: Channel, credentials: dict[str, Any]) -> None:
    channel.credentials = credentials_validate(kind=channel.kind, credentials=credentials)
    Channel.objects.filter(pk=channel.pk).update(credentials=channel.credentials)


def _saver(channel_id: int):
    """Persist refreshed tokens at once: a Shopee refresh token is single-use."""

    def save(new_credentials: dict[str, Any]) -> None:
        with transaction.atomic():
            row = Channel.objects.select_for_update().get(pk=channel_id)
            row.credentials = {**row.credentials, **_plain(new_credentials)}
            row.save(update_fields=["credentials", "updated_at"])

    return save


def adapter_for(channel: Channel) -> Adapter:
    return build_adapter(
        channel.kind,
        base_url=channel.base_url(),
        credentials=channel.credentials,
        on_credentials_changed=_saver(channel.pk),
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
