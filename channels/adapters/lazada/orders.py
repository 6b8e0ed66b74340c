"""Lazada orders and pushes as omni sees them: the status table and pure parsing functions.

Lazada orders have no status of their own: every order item (one unit each) has one, and the
order's state is derived from its items' states (`order_state`). /orders/get and /order/get
give the order headers; /orders/items/get the items, from which the lines are built.

Pushes: a JSON body naming `seller_id`, `message_type` and `data`; message type 0 is a trade
order status change. Lazada sends no delivery id: see `webhook_event`.
"""

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from channels.adapters.base import (
    AdapterError,
    OrderState,
    RemoteOrder,
    RemoteOrderLine,
    WebhookEvent,
    WebhookRejected,
)
from channels.adapters.convert import push_json, to_decimal

logger = logging.getLogger(__name__)

# Every order item status Lazada documents (§3.4: the union of GetOrders' filter values and
# its error table), plus "repacked" from the fulfilment flow guide, mapped onto omni's states.
# - pending .. toship: paid (or cash on delivery confirmed) and waiting for the courier.
# - failed_delivery: a delivery attempt failed; the parcel is still with the courier.
# - failed: the order failed before shipping (payment or fulfilment), so it is void.
# - shipped_back*, lost*, damaged_by_3pl, package_scrapped: the parcel never reached the buyer
#   or came back to the seller after shipping; the sale is undone after shipping, as a return.
STATUS_TABLE: dict[str, OrderState] = {
    "unpaid": OrderState.UNPAID,
    "pending": OrderState.PAID,
    "topack": OrderState.PAID,
    "packed": OrderState.PAID,
    "repacked": OrderState.PAID,
    "ready_to_ship": OrderState.PAID,
    "toship": OrderState.PAID,
    "shipping": OrderState.SHIPPED,
    "shipped": OrderState.SHIPPED,
    "failed_delivery": OrderState.SHIPPED,
    "delivered": OrderState.DELIVERED,
    "canceled": OrderState.CANCELLED,
    "failed": OrderState.CANCELLED,
    "returned": OrderState.RETURNED,
    "shipped_back": OrderState.RETURNED,
    "shipped_back_success": OrderState.RETURNED,
    "shipped_back_failed": OrderState.RETURNED,
    "lost": OrderState.RETURNED,
    "lost_by_3pl": OrderState.RETURNED,
    "damaged_by_3pl": OrderState.RETURNED,
    "package_scrapped": OrderState.RETURNED,
}
# How far an order that is going ahead has got, least to most.
PROGRESS = (OrderState.UNPAID, OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED)

ORDER_PUSH = 0  # message_type of a trade order push
PRODUCT_PUSHES = frozenset({1, 3, 4, 5})  # QC status, created, updated, deleted


def order_state(statuses: Sequence[str]) -> OrderState:
    """One state for an order from its items' statuses (Lazada has no order status).

    The rule: an order whose every item is cancelled is CANCELLED; cancelled items are
    otherwise ignored (a partly cancelled order goes ahead with the rest). If every remaining
    item was returned, the order is RETURNED; otherwise returned items are ignored too and the
    order is as far as its most advanced item (DELIVERED > SHIPPED > PAID > UNPAID): once any
    item has reached the buyer, the order is delivered. Statuses Lazada may add later and this
    table does not know are ignored; with none known, the order counts as UNPAID, the state in
    which nothing is done.
    """
    known = [STATUS_TABLE[s.lower()] for s in statuses if s.lower() in STATUS_TABLE]
    if not known:
        return OrderState.UNPAID
    going = [state for state in known if state is not OrderState.CANCELLED]
    if not going:
        return OrderState.CANCELLED
    ahead = [state for state in going if state is not OrderState.RETURNED]
    if not ahead:
        return OrderState.RETURNED
    return max(ahead, key=PROGRESS.index)


def order_from_payload(
    header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
) -> RemoteOrder:
    """A RemoteOrder from an /order(s)/get header and its /orders/items/get items.

    Lazada lists one order item per unit; items of the same SKU and paid price are one line
    (its id is the lowest order item id). Cancelled items are left out of the lines unless
    the whole order is cancelled. Total = price − voucher + shipping fee, Lazada's formula for
    what the buyer paid.
    """
    item_statuses = [str(item.get("status") or "") for item in items]
    statuses = item_statuses or [str(s) for s in header.get("statuses") or []]
    state = order_state(statuses)
    order_id = str(header.get("order_id"))
    unknown = sorted({s for s in statuses if s.lower() not in STATUS_TABLE})
    if unknown:
        logger.warning("Lazada order %s has statuses unknown to omni: %s", order_id, unknown)
    first = items[0] if items else {}
    paid_ms = _first(items, "payment_time")  # milliseconds; absent while unpaid
    return RemoteOrder(
        order_number=str(header.get("order_number") or order_id),
        order_id=order_id,
        status=",".join(dict.fromkeys(str(s) for s in header.get("statuses") or statuses)),
        state=state,
        created_at=order_time(header.get("created_at")),
        updated_at=order_time(header.get("updated_at")),
        currency=str(first.get("currency") or ""),
        total=to_decimal(header.get("price"))
        - to_decimal(header.get("voucher"))
        + to_decimal(header.get("shipping_fee")),
        lines=_order_lines(items, cancelled=state is OrderState.CANCELLED),
        paid_at=from_millis(paid_ms) if paid_ms.isdigit() else None,
        payment_method=str(header.get("payment_method") or ""),
        courier=_first(items, "shipment_provider"),
        tracking_number=_first(items, "tracking_code"),
        cancel_reason=_first(items, "reason") if state is OrderState.CANCELLED else "",
        source={"order": dict(header), "items": [dict(item) for item in items]},
        status_known=not unknown,
    )


def _order_lines(
    items: Sequence[Mapping[str, Any]], *, cancelled: bool
) -> tuple[RemoteOrderLine, ...]:
    groups: dict[tuple[str, str, Decimal], list[Mapping[str, Any]]] = {}
    for item in items:
        status = STATUS_TABLE.get(str(item.get("status") or "").lower())
        if status is OrderState.CANCELLED and not cancelled:
            continue
        key = (str(item.get("product_id") or ""), str(item.get("sku_id") or ""), _paid(item))
        groups.setdefault(key, []).append(item)
    lines = []
    for (item_id, sku_id, price), group in groups.items():
        first = min(group, key=lambda i: _sortable_id(i.get("order_item_id")))
        variation = str(first.get("variation") or "")
        name = str(first.get("name") or "")
        lines.append(
            RemoteOrderLine(
                line_id=str(first.get("order_item_id")),
                item_id=item_id,
                variant_id=sku_id,
                sku=str(first.get("sku") or ""),
                title=f"{name} - {variation}" if variation else name,
                quantity=len(group),
                unit_price=price,
            )
        )
    return tuple(lines)


def webhook_event(body: bytes) -> WebhookEvent:
    """A verified push body as an event; WebhookRejected(400) if it is not a Lazada push.

    `delivery_id`: Lazada pushes carry no delivery id, so one is derived from the body. For an
    order push it is the hash of seller, order, order line, status and status time, which a
    redelivery repeats and the next change does not; for an order push without its status or
    status time, and for other pushes, the hash of the raw body (a redelivery sends the same
    bytes; two changes of one order never do).
    """
    no_type = "The Lazada push has no message_type"
    payload = push_json(body, not_json="The Lazada push body is not JSON", not_object=no_type)
    if "message_type" not in payload:
        raise WebhookRejected(no_type, status=400)
    try:
        message_type = int(payload["message_type"])
    except (TypeError, ValueError):
        raise WebhookRejected("The Lazada push message_type is not a number", status=400) from None
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    seller = str(payload.get("seller_id") or "")  # one app's pushes for all its sellers
    if message_type == ORDER_PUSH:
        order_id = str(data.get("trade_order_id") or "")
        if not order_id:
            raise WebhookRejected("The Lazada order push names no trade_order_id", status=400)
        change = (data.get("order_status"), data.get("status_update_time"))
        if all(part not in (None, "") for part in change):
            parts = (payload.get("seller_id"), order_id, data.get("trade_order_line_id"), *change)
            identity = "|".join(str(part) for part in parts).encode()
        else:  # a push that does not say which change it is: its bytes are its identity
            identity = body
        return WebhookEvent(
            delivery_id=hashlib.sha256(identity).hexdigest(),
            topic="order_status",
            order_number=order_id,
            payload=payload,
            shop=seller,
        )
    topic = "product" if message_type in PRODUCT_PUSHES else "other"
    return WebhookEvent(
        delivery_id=hashlib.sha256(body).hexdigest(), topic=topic, payload=payload, shop=seller
    )


# -- small conversions (the adapter reads listings with them too) -------------------------------


def from_millis(value: Any) -> datetime:
    """Lazada's millisecond timestamps (product update times, payment times) as aware UTC."""
    return datetime.fromtimestamp(to_int(value) / 1000, tz=UTC)


def order_time(value: Any) -> datetime:
    """Lazada's order time ("2024-12-01 10:00:00 +0800", or ISO 8601) as aware UTC."""
    text = str(value or "").strip()
    for parse in (
        lambda t: datetime.strptime(t, "%Y-%m-%d %H:%M:%S %z"),
        datetime.fromisoformat,
    ):
        try:
            parsed = parse(text)
        except ValueError:
            continue
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise AdapterError(
        f"Lazada sent an order time that cannot be read: {text!r}", retryable=False, code="time"
    )


def _paid(item: Mapping[str, Any]) -> Decimal:
    paid = item.get("paid_price")
    return to_decimal(paid if paid not in (None, "") else item.get("item_price"))


def to_int(value: Any) -> int:
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0


def _sortable_id(value: Any) -> tuple[int, str]:
    text = str(value or "")
    return (int(text), "") if text.isdigit() else (0, text)


def _first(items: Sequence[Mapping[str, Any]], field: str) -> str:
    return next((str(item[field]) for item in items if item.get(field)), "")
