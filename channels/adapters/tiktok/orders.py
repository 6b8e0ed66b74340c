"""TikTok Shop (and Tokopedia) orders and pushes as omni sees them: the status table and pure
parsing functions.

Search Orders and Get Order Detail both answer full orders, line items included: one line item
per unit sold. An order says where it was placed in `commerce_platform`; the value list is not
published: `"TIKTOK_SHOP"` appears in TikTok's samples, and `"TOKOPEDIA"` is the platform name
TikTok itself uses for Tokopedia in `integrated_platform_statuses`, so that is the value taken
to mean Tokopedia. An order without the field (older API versions) counts as TikTok Shop's.

Pushes: `Authorization` = lowercase hex HMAC-SHA256(app_secret, app_key + raw body)
(`client.webhook_signature`); the envelope is `{"type", "tts_notification_id", "shop_id",
"timestamp", "data"}`, type 1 an order status change.
"""

import re
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from channels.adapters.base import (
    AdapterError,
    OrderState,
    RemoteOrder,
    RemoteOrderLine,
    WebhookEvent,
    WebhookRejected,
    authorization_notice,
)
from channels.adapters.convert import order_state_of, push_json, to_decimal, utc_from_seconds
from channels.adapters.tiktok.client import SERVICE

DEAUTHORIZED_PUSH = 6  # push type: the seller deauthorized the app
AUTHORIZATION_EXPIRING_PUSH = 7  # push type: the authorization expires soon

# Every order status TikTok documents (reference §2.4), in omni's terms.
STATUS_TABLE: dict[str, OrderState] = {
    "UNPAID": OrderState.UNPAID,
    # UK only: paid, but the buyer may still cancel and the seller may not ship yet.
    "ON_HOLD": OrderState.PAID,
    "AWAITING_SHIPMENT": OrderState.PAID,
    # Some items have left, not all: the order as a whole still waits to be shipped.
    "PARTIALLY_SHIPPING": OrderState.PAID,
    # Packed and a pickup arranged, but not handed to the carrier yet.
    "AWAITING_COLLECTION": OrderState.PAID,
    "IN_TRANSIT": OrderState.SHIPPED,
    "DELIVERED": OrderState.DELIVERED,
    "COMPLETED": OrderState.DELIVERED,
    # Refined by `order_state`: cancelled after the carrier collected it means it came back.
    "CANCELLED": OrderState.CANCELLED,
}
TOKOPEDIA = "TOKOPEDIA"
TIKTOK_SHOP = "TIKTOK_SHOP"
ORDER_ID = re.compile(r"[0-9]+")  # an order number is the order id, all digits


def order_state(order: Mapping[str, Any], service: str = SERVICE) -> tuple[OrderState, bool]:
    """omni's state of a TikTok order, and whether its status is known: STATUS_TABLE, except
    that an order cancelled after the carrier collected it (failed delivery, parcel returned)
    counts as returned. TikTok has no order status for returns; returns after delivery live in
    its Return & Refund API. A status omni does not know is taken as unpaid and flagged
    (`convert.order_state_of`)."""
    status = str(order.get("status") or "")
    order_id = str(order.get("id") or "")
    state, known = order_state_of(status, STATUS_TABLE, service=service, order=order_id)
    if state is OrderState.CANCELLED and (
        order.get("collection_time") or order.get("delivery_time")
    ):
        return OrderState.RETURNED, known
    return state, known


def order_from_payload(
    order: Mapping[str, Any], service: str = SERVICE, *, single_sku: Collection[str] = ()
) -> RemoteOrder:
    """A RemoteOrder from a TikTok order (Search Orders or Get Order Detail). `single_sku`:
    ids of products known to have a single SKU (see `order_lines`)."""
    order_id = str(order.get("id") or "")
    if not order_id:
        raise AdapterError(f"{service} sent an order without an id", retryable=False, code="order")
    payment = order.get("payment") or {}
    state, known = order_state(order, service)
    return RemoteOrder(
        order_number=order_id,
        order_id=order_id,
        status=str(order.get("status") or ""),
        state=state,
        created_at=utc_from_seconds(order.get("create_time")),
        updated_at=utc_from_seconds(order.get("update_time")),
        currency=str(payment.get("currency") or ""),
        total=to_decimal(payment.get("total_amount"), finite=True),
        lines=order_lines(order, single_sku=single_sku),
        paid_at=utc_from_seconds(order["paid_time"]) if order.get("paid_time") else None,
        payment_method=str(order.get("payment_method_name") or ""),
        courier=str(order.get("shipping_provider") or ""),
        tracking_number=str(order.get("tracking_number") or ""),
        cancel_reason=str(order.get("cancel_reason") or ""),
        source=dict(order),
        status_known=known,
    )


def order_lines(
    order: Mapping[str, Any], *, single_sku: Collection[str] = ()
) -> tuple[RemoteOrderLine, ...]:
    """TikTok lists one line item per unit: units of one SKU at one price become one line,
    with the first unit's line item id. Units cancelled on their own (a partial cancel) are
    left out; a cancelled order keeps them all, to show what it was.

    `variant_id` is "" for a product with a single SKU, as in omni's listings: a product in
    `single_sku`, or a line naming no option (`sku_name` empty), the usual mark of one. Else the
    SKU id. (A single SKU with an option, unknown to `single_sku`, gets its SKU id; the order
    pipeline then matches the line by SKU.)
    """
    items = [i for i in order.get("line_items") or [] if isinstance(i, dict)]
    if order.get("status") != "CANCELLED":
        items = [i for i in items if i.get("display_status") != "CANCELLED"]
    grouped: dict[tuple[str, str, Decimal], list[Mapping[str, Any]]] = {}
    for item in items:
        key = (str(item.get("product_id") or ""), str(item.get("sku_id") or ""), _sale_price(item))
        grouped.setdefault(key, []).append(item)
    lines = []
    for (product_id, sku_id, unit_price), units in grouped.items():
        first = units[0]
        option = str(first.get("sku_name") or "").strip()
        name = str(first.get("product_name") or "")
        lines.append(
            RemoteOrderLine(
                line_id=str(first.get("id") or ""),
                item_id=product_id,
                variant_id=sku_id if option and product_id not in single_sku else "",
                sku=str(first.get("seller_sku") or ""),
                title=f"{name} - {option}" if option else name,
                quantity=sum(_units(unit) for unit in units),
                unit_price=unit_price,
            )
        )
    return tuple(lines)


def webhook_event(body: bytes, *, service: str = SERVICE) -> WebhookEvent:
    """A verified push body as a WebhookEvent; WebhookRejected(400) if it is malformed."""
    payload = push_json(
        body,
        not_json=f"{service} push body is not JSON",
        not_object=f"{service} push body is not a JSON object",
        parse_float=Decimal,
    )
    delivery_id = str(payload.get("tts_notification_id") or "").strip()
    if not delivery_id:
        raise WebhookRejected(f"{service} push without tts_notification_id", status=400)
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    kind = payload.get("type")
    if kind == 1:  # ORDER_STATUS_CHANGE
        order_id = str(data.get("order_id") or "").strip()
        if not order_id:
            raise WebhookRejected(f"{service} order push without data.order_id", status=400)
        return WebhookEvent(delivery_id, "order_status", order_id, payload)
    if kind in (DEAUTHORIZED_PUSH, AUTHORIZATION_EXPIRING_PUSH):
        cancelled = kind == DEAUTHORIZED_PUSH
        notice = authorization_notice(service, cancelled=cancelled, within="a few days")
        return WebhookEvent(delivery_id, "authorization", "", payload, notice=notice)
    topic = "product" if kind in (5, 37) else "other"  # 5: product status, 37: product audit
    return WebhookEvent(delivery_id, topic, "", payload)


def _sale_price(item: Mapping[str, Any]) -> Decimal:
    return to_decimal(item.get("sale_price") or item.get("original_price"), finite=True)


def _units(item: Mapping[str, Any]) -> int:
    quantity = item.get("quantity")
    return quantity if isinstance(quantity, int) and quantity > 0 else 1
