"""Shopify's orders in omni's terms: its statuses mapped to omni's states, and an order node
turned into a RemoteOrder."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import product as cartesian
from typing import Any

from channels.adapters.base import OrderState, RemoteOrder, RemoteOrderLine
from channels.adapters.convert import order_state_of, to_decimal

# -- orders: Shopify's statuses and omni's states ------------------------------------------------

FINANCIAL_STATUSES = (
    "AUTHORIZED",
    "EXPIRED",
    "PAID",
    "PARTIALLY_PAID",
    "PARTIALLY_REFUNDED",
    "PENDING",
    "REFUNDED",
    "VOIDED",
)
FULFILLMENT_STATUSES = (
    "FULFILLED",
    "FULFILLMENT_NOT_REQUIRED",
    "IN_PROGRESS",
    "ON_HOLD",
    "OPEN",
    "PARTIALLY_FULFILLED",
    "PENDING_FULFILLMENT",
    "REQUEST_DECLINED",
    "RESTOCKED",
    "SCHEDULED",
    "UNFULFILLED",
)
SHIPPED_FULFILLMENTS = frozenset({"FULFILLED", "PARTIALLY_FULFILLED"})
# An authorised card payment is as good as paid for shipping: the merchant captures it when
# fulfilling. Pending, partly paid and expired authorisations are not paid yet.
PAID_FINANCIALS = frozenset({"PAID", "PARTIALLY_REFUNDED", "AUTHORIZED"})


def order_status(financial: str, fulfillment: str, *, cancelled: bool, closed: bool) -> str:
    """An order's status as omni records it: Shopify's own values joined by "/".

    `FINANCIAL/FULFILLMENT`, with `/CLOSED` when the order is archived, or `CANCELLED/...` when
    `cancelledAt` is set (a cancelled order is closed too, so CLOSED is left out then).
    """
    if cancelled:
        return f"CANCELLED/{financial}/{fulfillment}"
    return f"{financial}/{fulfillment}" + ("/CLOSED" if closed else "")


def order_state(financial: str, fulfillment: str, *, cancelled: bool, closed: bool) -> OrderState:
    """The rule behind STATUS_TABLE, first match wins:

    1. cancelled (`cancelledAt` set) -> cancelled;
    2. refunded in full, or restocked -> returned if anything had shipped or was restocked,
       else cancelled (money back and nothing sent: the sale is off);
    3. payment voided -> cancelled;
    4. fulfilled or partly fulfilled -> delivered once the order is closed (archived: Shopify
       closes fulfilled, paid orders when done), else shipped, paid or not (cash on delivery);
    5. not paid (pending, partly paid, authorisation expired) -> unpaid;
    6. paid with nothing to ship (digital goods) -> delivered;
    7. otherwise paid and waiting to ship (unfulfilled, on hold, scheduled, in progress...).
    """
    shipped = fulfillment in SHIPPED_FULFILLMENTS
    if cancelled:
        return OrderState.CANCELLED
    if financial == "REFUNDED" or fulfillment == "RESTOCKED":
        if shipped or fulfillment == "RESTOCKED":
            return OrderState.RETURNED
        return OrderState.CANCELLED
    if financial == "VOIDED":
        return OrderState.CANCELLED
    if shipped:
        return OrderState.DELIVERED if closed else OrderState.SHIPPED
    if financial not in PAID_FINANCIALS:
        return OrderState.UNPAID
    if fulfillment == "FULFILLMENT_NOT_REQUIRED":
        return OrderState.DELIVERED
    return OrderState.PAID


# Every status omni can record for a Shopify order (8 financial x 11 fulfillment statuses, each
# open, closed or cancelled), mapped by the rule above. The order pipeline reads only the state.
STATUS_TABLE: dict[str, OrderState] = {
    order_status(financial, fulfillment, cancelled=cancelled, closed=closed): order_state(
        financial, fulfillment, cancelled=cancelled, closed=closed
    )
    for financial, fulfillment in cartesian(FINANCIAL_STATUSES, FULFILLMENT_STATUSES)
    for cancelled, closed in ((False, False), (False, True), (True, False))
}


def order_from_node(
    node: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None = None
) -> RemoteOrder:
    """One RemoteOrder from an order node as client.ORDER_FIELDS asks for it; `lines` are all
    its line nodes (default: those in the node). A status omni does not know (a financial
    status Shopify leaves null, one it adds) is taken as unpaid and flagged
    (`convert.order_state_of`)."""
    name = str(node.get("name") or "")
    financial = str(node.get("displayFinancialStatus") or "")
    fulfillment = str(node.get("displayFulfillmentStatus") or "")
    status = order_status(
        financial,
        fulfillment,
        cancelled=bool(node.get("cancelledAt")),
        closed=bool(node.get("closed")),
    )
    number = name or str(node.get("id") or "")
    state, known = order_state_of(status, STATUS_TABLE, service="Shopify", order=number)
    money = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    if lines is None:
        lines = (node.get("lineItems") or {}).get("nodes") or []
    tracking = _tracking(node)
    return RemoteOrder(
        order_number=name,
        order_id=tail(node.get("id")),
        status=status,
        state=state,
        created_at=parse_time(node.get("createdAt")),
        updated_at=parse_time(node.get("updatedAt")),
        currency=str(money.get("currencyCode") or ""),
        total=to_decimal(money.get("amount")),
        lines=tuple(_order_line(line) for line in lines),
        payment_method=", ".join(str(g) for g in node.get("paymentGatewayNames") or []),
        courier=str(tracking.get("company") or ""),
        tracking_number=str(tracking.get("number") or ""),
        cancel_reason=str(node.get("cancelReason") or "") if node.get("cancelledAt") else "",
        source=dict(node),
        status_known=known,
    )


def _order_line(line: Mapping[str, Any]) -> RemoteOrderLine:
    product = line.get("product") if isinstance(line.get("product"), dict) else {}
    variant = line.get("variant") if isinstance(line.get("variant"), dict) else {}
    price = (
        (line.get("discountedUnitPriceAfterAllDiscountsSet") or {}).get("shopMoney") or {}
    ).get("amount")
    return RemoteOrderLine(
        line_id=tail(line.get("id")),
        item_id=tail(product.get("id")),
        # A line of a product without options refers to it as the listing does: variant "".
        variant_id="" if product.get("hasOnlyDefaultVariant") else tail(variant.get("id")),
        sku=str(line.get("sku") or ""),
        title=str(line.get("name") or ""),
        quantity=int(line.get("quantity") or 0),
        unit_price=to_decimal(price),
    )


def _tracking(node: Mapping[str, Any]) -> Mapping[str, Any]:
    for fulfillment in node.get("fulfillments") or []:
        for info in (fulfillment or {}).get("trackingInfo") or []:
            if isinstance(info, dict):
                return info
    return {}


# -- small conversions, shared with the adapter ----------------------------------------------------


def tail(gid: Any) -> str:
    """The number at the end of a gid ("gid://shopify/Product/12" -> "12"); "" for none."""
    return str(gid or "").rsplit("/", 1)[-1]


def parse_time(raw: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return datetime.fromtimestamp(0, tz=UTC)
