"""Small conversions every marketplace package needs, written once.

- reading payloads: money and numbers (`to_decimal`), Unix seconds (`utc_from_seconds`), a
  push's headers (`header`) and body (`push_json`), an order's status (`order_state_of`);
- times in requests: a scan's watermark (`watermark_second`), an order range (`unix_range`),
  ISO 8601 in UTC (`iso_utc`);
- writing payloads: decimals in plain notation (`decimal_text`).

Pure functions: no calls, no state (`order_state_of` logs a status it does not know). What
differs between marketplaces (a non-finite amount kept or read as 0, how UTC is written) is a
parameter, never a second copy. What every marketplace checks of an upload before sending it is
in `uploads.py`.
"""

import json
import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from channels.adapters.base import OrderState, WebhookRejected

logger = logging.getLogger(__name__)

# -- reading payloads ---------------------------------------------------------------------------


def to_decimal(raw: Any, *, finite: bool = False) -> Decimal:
    """A money or number field as a marketplace sends it (a JSON number, a Decimal from
    `parse_float`, a numeric string); 0 when it is missing, blank or unreadable.

    With `finite`, NaN and infinities read as 0 too (TikTok, WooCommerce); without, they are
    kept as sent (Shopee, Lazada, Shopify).
    """
    if raw is None or raw == "":
        return Decimal(0)
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return Decimal(0)
    return Decimal(0) if finite and not value.is_finite() else value


def utc_from_seconds(timestamp: Any) -> datetime:
    """Unix seconds as sent (a number or a numeric string; missing is 0, the epoch) as an
    aware UTC datetime."""
    return datetime.fromtimestamp(int(timestamp or 0), tz=UTC)


def header(headers: Mapping[str, str], name: str) -> str:
    """The value of header `name`, in whatever letter case it came; "" when there is none."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def push_json(
    body: bytes,
    *,
    not_json: str,
    not_object: str,
    parse_float: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """The JSON object a push carries; WebhookRejected(400) saying `not_json` when the body is
    not JSON (or not text), `not_object` when it is JSON but not an object."""
    try:
        payload = json.loads(body, parse_float=parse_float)
    except ValueError:  # UnicodeDecodeError is one
        raise WebhookRejected(not_json, status=400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected(not_object, status=400)
    return payload


def order_state_of(
    status: str, table: Mapping[str, OrderState], *, service: str, order: str
) -> tuple[OrderState, bool]:
    """The state `table` gives a marketplace's order `status`, and whether the table knows it.

    A status the table does not know (one the marketplace added since) reads as UNPAID, in
    which the pipeline does nothing it would have to undo (it only reserves stock), and is
    logged; `RemoteOrder.status_known` carries the False to the sync log. Refusing the order
    instead would stop every later order of the channel at this one.
    """
    state = table.get(status)
    if state is not None:
        return state, True
    logger.warning(
        "%s order %s has status %r, unknown to omni: taken as unpaid", service, order, status
    )
    return OrderState.UNPAID, False


# -- times in requests --------------------------------------------------------------------------


def watermark_second(updated_since: datetime) -> int:
    """An incremental scan's watermark in whole Unix seconds, rounded down: a change in the
    watermark's own second comes back again rather than being missed. ValueError when the
    datetime is naive."""
    if updated_since.tzinfo is None:
        raise ValueError("updated_since must be an aware datetime")
    return math.floor(updated_since.timestamp())


def unix_range(updated_from: datetime, updated_to: datetime) -> tuple[int, int]:
    """[updated_from, updated_to) in whole Unix seconds, the start rounded down and the end up,
    so nothing in either edge second is missed. ValueError when either datetime is naive."""
    if updated_from.tzinfo is None or updated_to.tzinfo is None:
        raise ValueError("updated_from and updated_to must be aware datetimes")
    return math.floor(updated_from.timestamp()), math.ceil(updated_to.timestamp())


def iso_utc(second: int, *, zone: str) -> str:
    """Unix second `second` as ISO 8601 in UTC (`2025-01-02T08:00:00`), followed by `zone` as
    the marketplace writes UTC: "Z", "+00:00", or "" for a field that is UTC by definition."""
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + zone


# -- writing payloads ---------------------------------------------------------------------------


def decimal_text(value: Decimal, *, trimmed: bool = False) -> str:
    """A decimal as text in plain notation, never in exponent form ("19.90"). `trimmed` drops
    trailing zeros and a whole amount's point ("19.9", "20"), as TikTok writes amounts."""
    if not trimmed:
        return format(value, "f")
    if value != value.to_integral_value():
        return format(value.normalize(), "f")
    return str(int(value))
