"""WooCommerce's orders in omni's terms: its order statuses mapped to omni's states
(`STATUS_TABLE`), and a REST order (or an order webhook's body) turned into a RemoteOrder."""

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channels.adapters.base import OrderState, RemoteOrder, RemoteOrderLine
from channels.adapters.convert import order_state_of, to_decimal

# Every order status of WooCommerce (reference §5.4) in omni's terms. The order pipeline works
# from the state alone; the status itself is kept verbatim on the RemoteOrder.
STATUS_TABLE: dict[str, OrderState] = {
    "pending": OrderState.UNPAID,  # placed, awaiting payment
    "on-hold": OrderState.UNPAID,  # awaiting payment confirmation (bank transfer, cheque)
    "failed": OrderState.UNPAID,  # payment failed or declined; the buyer may still pay
    "checkout-draft": OrderState.UNPAID,  # a block-checkout cart, not placed yet (see LEFT_OUT)
    "processing": OrderState.PAID,  # paid, or cash on delivery accepted: to be fulfilled
    "completed": OrderState.DELIVERED,  # fulfilled and complete; core has no later status
    "cancelled": OrderState.CANCELLED,
    "trash": OrderState.CANCELLED,  # in the trash (see LEFT_OUT)
    "refunded": OrderState.RETURNED,  # refunded in full, shipped or not
    # Core has no "shipped" step; shipment-tracking and order-status plugins register these two
    # statuses, and stores that use them expect orders to move through them.
    "shipped": OrderState.SHIPPED,
    "delivered": OrderState.DELIVERED,
}
# Orders omni never downloads: carts not placed yet, and orders in the trash. Merchants trash
# old orders to tidy up; treating that as a cancellation would void invoices long settled.
LEFT_OUT = frozenset({"checkout-draft", "trash"})
# An order number is the order id, or what a numbering plugin makes of it ("WC-1042"): never
# white space or control characters.
ORDER_NUMBER = re.compile(r"[^\s\x00-\x1f\x7f]+")
ORDER_NUMBER_FORM = "the order id, or the number a plugin gives it, without spaces"
# Plugins may register any status: an unknown one is kept verbatim and taken as unpaid
# (`convert.order_state_of`).


def order_from_payload(payload: Mapping[str, Any]) -> RemoteOrder:
    """A RemoteOrder from a REST order (or an order webhook's body)."""
    status = str(payload.get("status") or "")
    state, known = order_state_of(
        status, STATUS_TABLE, service="WooCommerce", order=str(payload.get("id"))
    )
    lines = tuple(_order_line(item) for item in payload.get("line_items") or [])
    shipping = payload.get("shipping_lines") or []
    return RemoteOrder(
        order_number=order_number(payload),
        order_id=str(payload["id"]),
        status=status,
        state=state,
        created_at=parse_gmt(payload.get("date_created_gmt")) or EPOCH,
        updated_at=modified_at(payload),
        currency=str(payload.get("currency") or ""),
        total=to_decimal(payload.get("total"), finite=True),
        lines=lines,
        paid_at=parse_gmt(payload.get("date_paid_gmt")),
        payment_method=str(
            payload.get("payment_method_title") or payload.get("payment_method") or ""
        ),
        courier=str(shipping[0].get("method_title") or "") if shipping else "",
        source=dict(payload),
        status_known=known,
    )


def _order_line(item: Mapping[str, Any]) -> RemoteOrderLine:
    quantity = int(item.get("quantity") or 0)
    # Money fields are strings in WooCommerce's answers; blank or not a finite number reads as 0.
    total = to_decimal(item.get("total"), finite=True)
    # Line totals exclude tax in WooCommerce.
    paid = total + to_decimal(item.get("total_tax"), finite=True)
    unit_price = paid / quantity if quantity else paid
    exponent = total.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        unit_price = unit_price.quantize(Decimal(1).scaleb(exponent))
    variation_id = int(item.get("variation_id") or 0)
    return RemoteOrderLine(
        line_id=str(item.get("id") or ""),
        item_id=str(item.get("product_id") or ""),
        variant_id=str(variation_id) if variation_id else "",
        sku=str(item.get("sku") or ""),
        title=html.unescape(str(item.get("name") or "")),
        quantity=quantity,
        unit_price=unit_price,
    )


def order_number(payload: Mapping[str, Any]) -> str:
    """What staff know the order by: a numbering plugin's number, else the order id."""
    return str(payload.get("number") or payload.get("id") or "")


# -- reading WooCommerce payloads (products' fields read the same way) ---------------------------


EPOCH = datetime.fromtimestamp(0, tz=UTC)


def parse_gmt(raw: Any) -> datetime | None:
    """A `*_gmt` field ("2025-01-02T08:00:00", no zone: it is UTC) as an aware datetime."""
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def modified_at(row: Mapping[str, Any]) -> datetime:
    return (
        parse_gmt(row.get("date_modified_gmt")) or parse_gmt(row.get("date_created_gmt")) or EPOCH
    )
