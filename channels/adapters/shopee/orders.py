"""Shopee orders and pushes as omni sees them: the status table and pure parsing functions.

Sources (shared/reference/marketplace-apis.md §1.4–1.5): `get_order_list` pages by `cursor`
over a `time_range_field` window of at most 15 days; `get_order_detail` takes 1–50 `order_sn`
and leaves most fields out unless `response_optional_fields` names them; the tracking number
is not in the detail at all but comes from `v2.logistics.get_tracking_number`.

Pushes: `Authorization` = lowercase hex HMAC-SHA256(partner key, callback URL + "|" + raw body)
over the exact URL registered and the raw bytes received. The envelope is
`{"shop_id", "code", "timestamp", "data"}`; code 3 is an order status change. Shopee sends no
delivery id, so a delivery is identified by the hash of its raw body: a retried push carries the
same bytes, and two different status changes never do (their `update_time` differs).
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from channels.adapters.base import (
    AdapterError,
    OrderState,
    RemoteOrder,
    RemoteOrderLine,
    WebhookEvent,
    WebhookRejected,
    authorization_notice,
    signature_matches,
)
from channels.adapters.convert import (
    header,
    order_state_of,
    push_json,
    to_decimal,
    utc_from_seconds,
)
from channels.adapters.shopee.client import SERVICE

# Every order status Shopee documents, mapped onto omni's states.
# - IN_CANCEL is a buyer's cancellation request the seller has not answered: the order still
#   stands (it was paid) until Shopee says CANCELLED.
# - RETRY_SHIP and PROCESSED are still waiting for the courier; INVOICE_PENDING waits for a
#   seller's invoice (Brazil) before shipping.
# - TO_CONFIRM_RECEIVE: the parcel was delivered and the buyer has not confirmed yet.
# - TO_RETURN: the buyer asked for a return or refund after shipping.
STATUS_TABLE: dict[str, OrderState] = {
    "UNPAID": OrderState.UNPAID,
    "PENDING": OrderState.UNPAID,
    "READY_TO_SHIP": OrderState.PAID,
    "PROCESSED": OrderState.PAID,
    "RETRY_SHIP": OrderState.PAID,
    "INVOICE_PENDING": OrderState.PAID,
    "IN_CANCEL": OrderState.PAID,
    "SHIPPED": OrderState.SHIPPED,
    "TO_CONFIRM_RECEIVE": OrderState.DELIVERED,
    "COMPLETED": OrderState.DELIVERED,
    "CANCELLED": OrderState.CANCELLED,
    "TO_RETURN": OrderState.RETURNED,
}

# An order_sn is the order date (YYMMDD) and eight letters or digits, e.g. 241201ABCD1234:
# anything else (a comma above all, which would split order_sn_list) is refused unasked.
ORDER_SN = re.compile(r"[0-9A-Za-z]+")
ORDER_SN_FORM = "letters and digits, e.g. 241201ABCD1234"

# The status the emulator and the tests use to stand for each state.
STATE_STATUS: dict[OrderState, str] = {
    OrderState.UNPAID: "UNPAID",
    OrderState.PAID: "READY_TO_SHIP",
    OrderState.SHIPPED: "SHIPPED",
    OrderState.DELIVERED: "COMPLETED",
    OrderState.CANCELLED: "CANCELLED",
    OrderState.RETURNED: "TO_RETURN",
}

# States in which a parcel exists, so a tracking number is worth one extra call.
SHIPPED_STATES = frozenset({OrderState.SHIPPED, OrderState.DELIVERED, OrderState.RETURNED})

# What get_order_detail must be asked for: without them Shopee leaves these fields out.
DETAIL_FIELDS = (
    "item_list",
    "total_amount",
    "pay_time",
    "payment_method",
    "shipping_carrier",
    "package_list",
    "cancel_by",
    "cancel_reason",
    "buyer_cancel_reason",
)

ORDER_STATUS_PUSH = 3  # push code of an order status change
TRACKING_PUSH = 4  # push code of a tracking number update
AUTHORIZATION_CANCELLED_PUSH = 2  # the seller cancelled the app's authorization
AUTHORIZATION_EXPIRING_PUSH = 12  # the authorization expires in 7 days


def order_from_detail(detail: Mapping[str, Any], *, tracking_number: str = "") -> RemoteOrder:
    """One RemoteOrder from a get_order_detail entry asked with DETAIL_FIELDS.

    A status omni does not know is taken as unpaid and flagged (`convert.order_state_of`).
    """
    number = str(detail.get("order_sn") or "")
    status = str(detail.get("order_status") or "")
    if not number:
        raise AdapterError("Shopee returned an order without order_sn", retryable=False)
    state, known = order_state_of(status, STATUS_TABLE, service="Shopee", order=number)
    return RemoteOrder(
        order_number=number,
        order_id=number,
        status=status,
        state=state,
        created_at=utc_from_seconds(detail.get("create_time")),
        updated_at=utc_from_seconds(detail.get("update_time")),
        currency=str(detail.get("currency") or ""),
        total=to_decimal(detail.get("total_amount")),
        lines=order_lines(detail.get("item_list") or []),
        paid_at=utc_from_seconds(detail["pay_time"]) if detail.get("pay_time") else None,
        payment_method=str(detail.get("payment_method") or ""),
        courier=_courier(detail),
        tracking_number=tracking_number,
        cancel_reason=_cancel_reason(detail),
        source=dict(detail),
        status_known=known,
    )


def order_lines(items: list[Mapping[str, Any]]) -> tuple[RemoteOrderLine, ...]:
    """Lines of an order's item_list. A model's SKU wins over the item's; a line id is
    item/model, numbered when Shopee lists the same model twice (bundle and add-on deals)."""
    lines: list[RemoteOrderLine] = []
    seen: dict[str, int] = {}
    for item in items:
        model_id = int(item.get("model_id") or 0)
        base_id = f"{item.get('item_id')}/{model_id}"
        seen[base_id] = seen.get(base_id, 0) + 1
        line_id = base_id if seen[base_id] == 1 else f"{base_id}#{seen[base_id]}"
        name = str(item.get("item_name") or "")
        model_name = str(item.get("model_name") or "")
        price = item.get("model_discounted_price")
        if price is None:
            price = item.get("model_original_price")
        lines.append(
            RemoteOrderLine(
                line_id=line_id,
                item_id=str(item.get("item_id") or ""),
                variant_id=str(model_id) if model_id else "",
                sku=str(item.get("model_sku") or item.get("item_sku") or ""),
                title=f"{name} - {model_name}" if model_name else name,
                quantity=int(item.get("model_quantity_purchased") or 0),
                unit_price=to_decimal(price),
            )
        )
    return tuple(lines)


def push_signature(*, partner_key: str, url: str, body: bytes) -> str:
    """The Authorization header Shopee sends with a push to `url`."""
    message = url.encode() + b"|" + body
    return hmac.new(partner_key.encode(), message, hashlib.sha256).hexdigest()


def webhook_event(
    *, partner_key: str, url: str, headers: Mapping[str, str], body: bytes
) -> WebhookEvent:
    """A verified push, or WebhookRejected: 401 for a missing or wrong signature (checked
    first, so nothing about an unsigned body is revealed), 400 for a body that is not a
    Shopee push envelope. `shop` is the envelope's shop_id: Shopee sends every shop's pushes
    to the app's one push URL."""
    given = header(headers, "authorization").strip()
    if not given:
        raise WebhookRejected("the push has no Authorization header", status=401)
    expected = push_signature(partner_key=partner_key, url=url, body=body)
    if not signature_matches(given.lower(), expected):
        raise WebhookRejected(
            "the push signature does not match: check the partner key and that the callback "
            "URL registered with Shopee is exactly this one",
            status=401,
        )
    envelope = _envelope(body)
    code = envelope.get("code")
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    number = str(data.get("ordersn") or data.get("order_sn") or "")
    if code == ORDER_STATUS_PUSH and number:
        topic = "order_status"
    elif code == TRACKING_PUSH and number:
        topic = "tracking"
    elif code in (AUTHORIZATION_CANCELLED_PUSH, AUTHORIZATION_EXPIRING_PUSH):
        topic, number = "authorization", ""
    else:
        topic = "other"
    notice = (
        authorization_notice(
            SERVICE, cancelled=code == AUTHORIZATION_CANCELLED_PUSH, within="7 days"
        )
        if topic == "authorization"
        else ""
    )
    return WebhookEvent(
        delivery_id=hashlib.sha256(body).hexdigest()[:40],
        topic=topic,
        order_number=number,
        payload=envelope,
        notice=notice,
        shop=str(envelope.get("shop_id") or ""),
    )


def _envelope(body: bytes) -> dict[str, Any]:
    no_code = "the push body has no numeric `code`"
    envelope = push_json(body, not_json="the push body is not JSON", not_object=no_code)
    if not isinstance(envelope.get("code"), int):
        raise WebhookRejected(no_code, status=400)
    if "data" in envelope and not isinstance(envelope["data"], dict):
        raise WebhookRejected("the push body's `data` is not an object", status=400)
    return envelope


def _courier(detail: Mapping[str, Any]) -> str:
    if detail.get("shipping_carrier"):
        return str(detail["shipping_carrier"])
    for package in detail.get("package_list") or []:
        if package.get("shipping_carrier"):
            return str(package["shipping_carrier"])
    return ""


def _cancel_reason(detail: Mapping[str, Any]) -> str:
    reason = str(detail.get("cancel_reason") or detail.get("buyer_cancel_reason") or "")
    by = str(detail.get("cancel_by") or "")
    return f"{reason} (by {by})" if reason and by else reason
