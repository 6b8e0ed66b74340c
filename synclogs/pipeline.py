"""The order pipeline: from a marketplace order's state to POS documents, one logged step at a time.

Which steps an order gets, by the state its marketplace reports (BRIEF §5):

| state               | order in the POS             | order not in the POS                |
| ------------------- | ---------------------------- | ----------------------------------- |
| unpaid              | Create Order                 | Create Order                        |
| paid                | Convert Order To Invoice,    | Create Invoice, Add Payment         |
|                     | Add Payment                  |                                     |
| shipped, delivered  | Convert Order To Invoice,    | Create Invoice, Create Outbound     |
|                     | Create Outbound Logistic,    | Logistic, Add Payment               |
|                     | Add Payment                  |                                     |
| cancelled, returned | Void Invoice                 | Create Order (400: nothing to make) |

A webhook is a status signal rather than a download: for a paid, shipped or delivered order the
POS never received, it does not create one but logs 404 on the step the push was about (Add
Payment, or Create Outbound Logistic), so staff download the order by hand. Downloads (scheduled
or manual) carry the whole order and create what is missing.

Every step writes exactly one SyncLog row: 200 done; 409 already done (nothing written twice);
400 the marketplace status does not allow it; 404 the order is not in the POS.

Stock (at the outlet the order reserved at; `source_channel_id` is the order's channel, so the
inventory sync never echoes a channel's own order back to it):
- Create Order reserves each mapped line (reserved +q, trigger order allocation).
- Invoicing deducts (on hand −q, reserved −q, trigger order fulfilment). Create Invoice, for
  an order never reserved, deducts with trigger order allocation (on hand −q), so the other
  channels hear of it. When on hand is short the deduction stops at zero and the log says by
  how much: the sale happened on the marketplace whatever the shelf count says.
- Voiding gives back exactly what the lines hold: a reservation is released (order release);
  a deduction is put back on hand — as a shipment cancellation when the parcel had left
  (an outbound logistic exists), else as an order release.

Concurrency: each order is processed in one transaction that locks its SalesOrder row; creating
one relies on the (channel, order number) unique constraint, so of two workers racing, one
creates and the other finds it done (409). Invoice, logistic and payment are one-to-one with the
order, so the database refuses a second one even if the lock were bypassed.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.exceptions import StockError
from catalog.lock_objects import stocks_locked
from catalog.models import StockMovement, Variant, sku_key
from catalog.services import Actor, StockChange, stock_apply
from channels.adapters.base import OrderState, RemoteOrder, RemoteOrderLine
from channels.models import Channel, Listing
from synclogs.models import (
    Invoice,
    OutboundLogistic,
    Payment,
    SalesOrder,
    SalesOrderLine,
    SyncLog,
)

logger = logging.getLogger(__name__)

Action = SyncLog.Action
Code = SyncLog.Status
Origin = SyncLog.Origin
Trigger = StockMovement.Trigger

PAID_STATES = frozenset({OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED})
SHIPPED_STATES = frozenset({OrderState.SHIPPED, OrderState.DELIVERED, OrderState.RETURNED})
VOID_STATES = frozenset({OrderState.CANCELLED, OrderState.RETURNED})

# (item_id, variant_id, normalised SKU) of a line -> the POS variant id, or None when unmapped.
LineKey = tuple[str, str, str]
VariantMap = Mapping[LineKey, int | None]


@dataclass(slots=True)
class Outcome:
    """What one step did: the log row's status, message, documents and response."""

    status: int
    message: str
    documents: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    """One order being processed: where it came from and what is known about it."""

    channel: Channel
    order: RemoteOrder
    origin: str
    actor: str
    variants: VariantMap
    doc: SalesOrder | None = None  # the POS order, locked, once found or created
    # Its lines, once read or built; new ones are inserted by `_save_lines` with the stock
    # they hold already filled in, saving an update per step.
    lines: list[SalesOrderLine] | None = None

    @property
    def stock_actor(self) -> Actor:
        return Actor(label=self.actor or f"orders:{self.origin}")

    @property
    def reference(self) -> str:
        return f"{self.channel.name} order {self.order.order_number}"

    @property
    def said(self) -> str:
        kind = self.channel.get_kind_display()
        return f"{kind} says {self.order.status} ({self.order.state.value})"


# --- entry points ------------------------------------------------------------------------------


def orders_process(
    *,
    channel: Channel,
    orders: Sequence[RemoteOrder],
    origin: str,
    actor: str = "",
    create_missing: bool = True,
    skip_unchanged: bool = False,
    logged_at: datetime | None = None,
) -> list[SyncLog]:
    """Run the pipeline for a page of orders; every log row written, in order.

    SKUs are mapped for the whole page in two queries. Each order is its own transaction, so
    one that fails (it is logged and re-raised at the end) does not undo the others.
    With `skip_unchanged`, an order whose marketplace status and update time are what the POS
    already processed is skipped without a row: scheduled downloads overlap their windows, and
    re-logging unchanged orders would bury the rows that matter.
    """
    variants = variants_for(channel=channel, orders=orders)
    # Orders not in the POS when the page starts skip the locking read: creating them relies
    # on the unique constraint, which also catches one created meanwhile by another worker.
    known = set(
        SalesOrder.objects.filter(
            channel=channel, order_number__in=[o.order_number for o in orders]
        ).values_list("order_number", flat=True)
    )
    rows: list[SyncLog] = []
    failed: list[tuple[str, Exception]] = []
    for order in orders:
        try:
            rows.extend(
                order_process(
                    channel=channel,
                    order=order,
                    origin=origin,
                    actor=actor,
                    variants=variants,
                    create_missing=create_missing,
                    skip_unchanged=skip_unchanged,
                    logged_at=logged_at,
                    known=order.order_number in known,
                )
            )
        except Exception as exc:  # noqa: BLE001 - one broken order must not stop the page
            logger.exception("channel %s order %s failed", channel.pk, order.order_number)
            failed.append((order.order_number, exc))
    if failed:
        raise OrdersFailed(failed, rows)
    return rows


class OrdersFailed(Exception):
    """Some orders of a page could not be processed; `rows` holds what the others logged."""

    def __init__(self, failed: list[tuple[str, Exception]], rows: list[SyncLog]) -> None:
        numbers = ", ".join(number for number, _ in failed[:10])
        first = failed[0][1]
        super().__init__(
            f"{len(failed)} order(s) could not be processed ({numbers}): "
            f"{type(first).__name__}: {first}"
        )
        self.failed = failed
        self.rows = rows


def order_process(
    *,
    channel: Channel,
    order: RemoteOrder,
    origin: str,
    actor: str = "",
    variants: VariantMap | None = None,
    create_missing: bool = True,
    skip_unchanged: bool = False,
    logged_at: datetime | None = None,
    known: bool = True,
) -> list[SyncLog]:
    """Run every step `order.state` calls for (see the module's table); the rows logged.

    `known=False` says the caller saw no such order in the POS a moment ago, which saves the
    locking read; a race with another worker is still caught by the unique constraint.

    One transaction; queries: 1 to lock the order, then per step 1–2 plus the stock changes
    (about 4 per stock_apply) and one bulk insert of the log rows.
    """
    if variants is None:
        variants = variants_for(channel=channel, orders=[order])
    ctx = Context(channel, order, origin, actor, variants)
    with transaction.atomic():
        ctx.doc = _locked_order(channel, order.order_number) if known else None
        if skip_unchanged and _unchanged(ctx):
            return []
        rows = [
            _log_row(ctx, action, STEPS[action](ctx), logged_at)
            for action in _plan(ctx, create_missing)
        ]
        SyncLog.objects.bulk_create(rows)
        _note_remote_state(ctx)
    return rows


def order_step(
    *, channel: Channel, order: RemoteOrder, action: str, origin: str, actor: str = ""
) -> SyncLog:
    """Run one named step for `order` whatever its state calls for (the step itself refuses
    with 400 what the state does not allow); the row logged."""
    ctx = Context(channel, order, origin, actor, variants_for(channel=channel, orders=[order]))
    with transaction.atomic():
        ctx.doc = _locked_order(channel, order.order_number)
        row = _log_row(ctx, action, STEPS[action](ctx), None)
        row.save()
        _note_remote_state(ctx)
    return row


def variants_for(*, channel: Channel, orders: Iterable[RemoteOrder]) -> dict[LineKey, int | None]:
    """The POS variant of every line: through the channel's listing first (which keeps links
    made by hand), else by SKU (trimmed, case ignored). Two queries whatever the count."""
    lines = [line for order in orders for line in order.lines]
    item_ids = {line.item_id for line in lines}
    linked = {
        (item_id, variant_ref): variant_id
        for item_id, variant_ref, variant_id in Listing.objects.filter(
            channel=channel, item_id__in=item_ids, variant__isnull=False
        ).values_list("item_id", "variant_ref", "variant_id")
    }
    keys = {sku_key(line.sku) for line in lines} - {""}
    by_sku = dict(
        Variant.objects.filter(sku_key__in=keys).values_list("sku_key", "pk") if keys else []
    )
    result: dict[LineKey, int | None] = {}
    for line in lines:
        key = _line_key(line)
        result[key] = linked.get((line.item_id, line.variant_id)) or by_sku.get(key[2])
    return result


# --- the plan ----------------------------------------------------------------------------------


def _plan(ctx: Context, create_missing: bool) -> list[str]:
    state, exists = ctx.order.state, ctx.doc is not None
    if state == OrderState.UNPAID:
        return [Action.CREATE_ORDER]
    if state in VOID_STATES:
        return [Action.VOID_INVOICE] if exists else [Action.CREATE_ORDER]
    shipped = state in SHIPPED_STATES
    if not exists and not create_missing:
        # A push about a later step of an order the POS never received: one 404, on that step.
        return [Action.CREATE_OUTBOUND_LOGISTIC if shipped else Action.ADD_PAYMENT]
    invoice = Action.CONVERT_ORDER_TO_INVOICE if exists else Action.CREATE_INVOICE
    if shipped:
        return [invoice, Action.CREATE_OUTBOUND_LOGISTIC, Action.ADD_PAYMENT]
    return [invoice, Action.ADD_PAYMENT]


def _unchanged(ctx: Context) -> bool:
    doc, order = ctx.doc, ctx.order
    if doc is not None:
        return doc.remote_status == order.status and doc.remote_updated_at >= order.updated_at
    if order.state in VOID_STATES:
        # Cancelled before it reached the POS: said once (400) is enough.
        return SyncLog.objects.filter(
            channel=ctx.channel,
            order_number=order.order_number,
            action=Action.CREATE_ORDER,
            status=Code.WRONG_STATUS,
        ).exists()
    return False


# --- the steps ---------------------------------------------------------------------------------


def step_create_order(ctx: Context) -> Outcome:
    if ctx.doc is not None:
        return _already(
            ctx,
            "The order is already in the POS as sales order "
            f"#{ctx.doc.pk} ({ctx.doc.get_status_display().lower()}).",
        )
    if ctx.order.state in VOID_STATES:
        return Outcome(
            Code.WRONG_STATUS,
            f"{ctx.said}: it was {ctx.order.state.value} before it reached the POS, so there "
            "is no order to create and no stock to reserve.",
        )
    created = _create_order(ctx, status=SalesOrder.Status.OPEN)
    if created is not None:
        return created
    reserved = _reserve(ctx)
    _save_lines(ctx)
    held = _units(reserved, of="reserved_delta")
    text = f"Created sales order #{ctx.doc.pk} and reserved {held} at {ctx.doc.outlet}."
    return Outcome(Code.OK, text + _unmapped_note(ctx), _documents(ctx), {"stock": reserved})


def step_create_invoice(ctx: Context) -> Outcome:
    if ctx.doc is not None:
        return step_convert_to_invoice(ctx)
    if ctx.order.state not in PAID_STATES:
        return _not_paid(ctx)
    created = _create_order(ctx, status=SalesOrder.Status.INVOICED)
    if created is not None:
        return step_convert_to_invoice(ctx) if created.status == Code.CONFLICT else created
    invoice = Invoice.objects.create(order=ctx.doc, total=ctx.order.total)
    # Never reserved: allocated and deducted in one movement, so the other channels hear of
    # the allocation and the ledger shows one row per SKU.
    deducted, short = _fulfil(ctx, Trigger.ORDER_ALLOCATION)
    _save_lines(ctx)
    taken = _units(deducted, of="on_hand_delta")
    text = (
        f"The order arrived {ctx.order.state.value} and was not in the POS: created sales order "
        f"#{ctx.doc.pk} with invoice {invoice.number}, deducting {taken} from {ctx.doc.outlet}."
    )
    response = {"stock_deducted": deducted, "short": short}
    return Outcome(
        Code.OK, text + _short_note(short) + _unmapped_note(ctx), _documents(ctx), response
    )


def step_convert_to_invoice(ctx: Context) -> Outcome:
    doc = ctx.doc
    if doc is None:
        return _missing(ctx)
    invoice = _invoice(doc)
    if invoice is not None:
        when = timezone.localtime(invoice.created_at).strftime("%Y-%m-%d %H:%M")
        return _already(ctx, f"Invoice {invoice.number} was created on {when}.")
    if doc.status == SalesOrder.Status.VOIDED:
        return _voided(ctx)
    if ctx.order.state not in PAID_STATES:
        return _not_paid(ctx)
    invoice = Invoice.objects.create(order=doc, total=ctx.order.total)
    SalesOrder.objects.filter(pk=doc.pk).update(status=SalesOrder.Status.INVOICED)
    doc.status = SalesOrder.Status.INVOICED
    deducted, short = _fulfil(ctx, Trigger.ORDER_FULFILMENT)
    _save_lines(ctx)
    left = _units(deducted, of="on_hand_delta")
    text = f"Created invoice {invoice.number}; {left} left {doc.outlet}."
    response = {"stock_deducted": deducted, "short": short}
    return Outcome(Code.OK, text + _short_note(short), _documents(ctx), response)


def step_create_outbound_logistic(ctx: Context) -> Outcome:
    doc = ctx.doc
    if doc is None:
        return _missing(ctx)
    existing = _related(doc, "outbound_logistic")
    if existing is not None:
        return _already(
            ctx,
            f"The shipment was recorded already (tracking number "
            f"{existing.tracking_number or 'not given'}).",
        )
    if ctx.order.state not in SHIPPED_STATES:
        return Outcome(
            Code.WRONG_STATUS,
            f"{ctx.said}: the parcel has not left yet, so there is no shipment to record.",
        )
    invoice = _invoice(doc)
    if invoice is None or invoice.voided_at is not None:
        return _voided(ctx) if doc.status == SalesOrder.Status.VOIDED else _not_invoiced(ctx)
    logistic = OutboundLogistic.objects.create(
        order=doc, courier=ctx.order.courier[:100], tracking_number=ctx.order.tracking_number[:100]
    )
    text = (
        f"Recorded the shipment: {logistic.courier or 'courier not given'}, tracking number "
        f"{logistic.tracking_number or 'not given yet'}."
    )
    return Outcome(Code.OK, text, _documents(ctx))


def step_add_payment(ctx: Context) -> Outcome:
    doc = ctx.doc
    if doc is None:
        return _missing(ctx)
    existing = _related(doc, "payment")
    if existing is not None:
        return _already(ctx, f"A payment of {existing.amount} was recorded already.")
    if ctx.order.state not in PAID_STATES:
        return _not_paid(ctx)
    invoice = _invoice(doc)
    if invoice is None or invoice.voided_at is not None:
        return _voided(ctx) if doc.status == SalesOrder.Status.VOIDED else _not_invoiced(ctx)
    payment = Payment.objects.create(
        order=doc,
        invoice=invoice,
        amount=ctx.order.total,
        method=ctx.order.payment_method[:60],
        paid_at=ctx.order.paid_at or timezone.now(),
    )
    amount = f"{payment.amount} {ctx.order.currency}".strip()
    text = f"Recorded a payment of {amount} ({payment.method or 'method not given'})."
    return Outcome(Code.OK, text, _documents(ctx))


def step_void_invoice(ctx: Context) -> Outcome:
    doc = ctx.doc
    if doc is None:
        return _missing(ctx)
    if doc.status == SalesOrder.Status.VOIDED:
        return _already(
            ctx, f"The order was voided already ({doc.void_reason or 'no reason given'})."
        )
    if ctx.order.state not in VOID_STATES:
        return Outcome(
            Code.WRONG_STATUS,
            f"{ctx.said}: the order stands on the marketplace, so the POS keeps it.",
        )
    reason = (ctx.order.cancel_reason or ctx.order.status)[:300]
    now = timezone.now()
    invoice = _invoice(doc)
    returned, trigger = _give_back(ctx)
    _save_lines(ctx)
    if invoice is not None:
        Invoice.objects.filter(pk=invoice.pk).update(voided_at=now, void_reason=reason)
        invoice.voided_at, invoice.void_reason = now, reason
        what = f"Voided invoice {invoice.number}"
    else:
        what = f"Voided sales order #{doc.pk} (it had no invoice)"
    SalesOrder.objects.filter(pk=doc.pk).update(
        status=SalesOrder.Status.VOIDED, voided_at=now, void_reason=reason
    )
    doc.status, doc.voided_at, doc.void_reason = SalesOrder.Status.VOIDED, now, reason
    why = f" ({ctx.order.cancel_reason})" if ctx.order.cancel_reason else ""
    text = f"{what}: {ctx.said}{why}. Returned {_returned(returned)} at {doc.outlet}."
    if _related(doc, "payment") is not None:
        text += " Its payment stays recorded: refund it in the POS if the buyer was refunded."
    response = {"stock_returned": returned, "trigger": trigger}
    return Outcome(Code.OK, text, _documents(ctx), response)


STEPS: dict[str, Callable[[Context], Outcome]] = {
    Action.CREATE_ORDER: step_create_order,
    Action.CONVERT_ORDER_TO_INVOICE: step_convert_to_invoice,
    Action.CREATE_INVOICE: step_create_invoice,
    Action.CREATE_OUTBOUND_LOGISTIC: step_create_outbound_logistic,
    Action.ADD_PAYMENT: step_add_payment,
    Action.VOID_INVOICE: step_void_invoice,
}


# --- outcomes shared by the steps --------------------------------------------------------------


def _already(ctx: Context, text: str) -> Outcome:
    return Outcome(
        Code.CONFLICT, f"Already done: {text} Nothing was written again.", _documents(ctx)
    )


def _missing(ctx: Context) -> Outcome:
    return Outcome(
        Code.MISSING,
        f"{ctx.said}, but the order is not in the POS (it was never downloaded, or creating it "
        "failed). Download it with Manual Download Order.",
    )


def _not_paid(ctx: Context) -> Outcome:
    return Outcome(
        Code.WRONG_STATUS,
        f"{ctx.said}: it is not paid, so it is not invoiced and no payment is recorded.",
        _documents(ctx),
    )


def _not_invoiced(ctx: Context) -> Outcome:
    return Outcome(
        Code.WRONG_STATUS,
        f"{ctx.said}, but sales order #{ctx.doc.pk if ctx.doc else '?'} has no invoice yet.",
        _documents(ctx),
    )


def _voided(ctx: Context) -> Outcome:
    doc = ctx.doc
    assert doc is not None
    return Outcome(
        Code.WRONG_STATUS,
        f"{ctx.said}, but the POS voided this order ({doc.void_reason or 'no reason given'}): "
        "check the order on the marketplace and in the POS by hand.",
        _documents(ctx),
    )


# --- documents ---------------------------------------------------------------------------------


def _locked_order(channel: Channel, number: str) -> SalesOrder | None:
    """The order row, locked, with its outlet and one-to-one documents in the same query
    (only the order row is locked: PostgreSQL cannot lock the outer-joined side)."""
    return (
        SalesOrder.objects.select_for_update(of=("self",))
        .select_related("outlet", "invoice", "outbound_logistic", "payment")
        .filter(channel=channel, order_number=number)
        .first()
    )


def _create_order(ctx: Context, *, status: str) -> Outcome | None:
    """Insert the sales order and its lines; None when done, or the 409 when another worker
    created it first (then `ctx.doc` is that order, locked)."""
    order, channel = ctx.order, ctx.channel
    lines = [_line(ctx, line) for line in order.lines]
    doc = SalesOrder(
        channel=channel,
        order_number=order.order_number,
        remote_id=order.order_id,
        outlet_id=channel.order_outlet_id,
        status=status,
        remote_status=order.status,
        state=order.state.value,
        currency=order.currency[:3],
        total=order.total,
        ordered_at=order.created_at,
        remote_updated_at=order.updated_at,
        unmapped_lines=sum(line.variant_id is None for line in lines),
    )
    try:
        with transaction.atomic():  # a savepoint: losing the race must not end the transaction
            doc.save(force_insert=True)
    except IntegrityError:
        ctx.doc = _locked_order(channel, order.order_number)
        if ctx.doc is None:
            raise
        return _already(ctx, f"Another worker created sales order #{ctx.doc.pk} a moment ago.")
    for line in lines:
        line.order = doc
    doc.outlet = channel.order_outlet
    for name in ("invoice", "outbound_logistic", "payment"):  # a new order has none yet
        getattr(SalesOrder, name).related.set_cached_value(doc, None)
    ctx.doc, ctx.lines = doc, lines
    return None


def _line(ctx: Context, line: RemoteOrderLine) -> SalesOrderLine:
    return SalesOrderLine(
        line_id=line.line_id[:64],
        variant_id=ctx.variants.get(_line_key(line)),
        sku=line.sku[:120],
        title=line.title[:300] or line.sku[:300],
        quantity=max(line.quantity, 0),
        unit_price=line.unit_price,
    )


def _invoice(doc: SalesOrder) -> Invoice | None:
    return _related(doc, "invoice")


def _related(doc: SalesOrder, name: str) -> Any:
    """A one-to-one document of the order, from the cache filled by `_locked_order` or by
    creating it (a new document caches itself on the order); None when there is none."""
    try:
        return getattr(doc, name)
    except ObjectDoesNotExist:
        return None


def _documents(ctx: Context) -> dict[str, Any]:
    """The order's documents by kind, ids only: what a log row says it touched."""
    doc = ctx.doc
    if doc is None:
        return {}
    found: dict[str, Any] = {"sales_order": doc.pk}
    for name in ("invoice", "outbound_logistic", "payment"):
        document = _related(doc, name)
        if document is not None:
            found[name] = document.pk
    return found


# --- stock -------------------------------------------------------------------------------------


def _mapped_lines(ctx: Context) -> list[SalesOrderLine]:
    """The order's lines that map to a POS variant (read once per order)."""
    if ctx.lines is None:
        assert ctx.doc is not None
        ctx.lines = list(ctx.doc.lines.all())
    return [line for line in ctx.lines if line.variant_id is not None]


def _save_lines(ctx: Context) -> None:
    """Insert lines built in this step, or write back the stock the existing ones hold."""
    lines = ctx.lines or []
    new = [line for line in lines if line.pk is None]
    old = [line for line in lines if line.pk is not None and line.variant_id is not None]
    if new:
        SalesOrderLine.objects.bulk_create(new)
    if old:
        SalesOrderLine.objects.bulk_update(old, ["reserved", "deducted"])


def _reserve(ctx: Context) -> list[dict[str, Any]]:
    """Reserve every mapped line at the order's outlet (trigger: order allocation)."""
    doc = ctx.doc
    assert doc is not None
    lines = _mapped_lines(ctx)
    per_variant: dict[int, int] = {}
    for line in lines:
        per_variant[line.variant_id] = per_variant.get(line.variant_id, 0) + line.quantity
        line.reserved = line.quantity
    _apply(ctx, {v: (0, q) for v, q in per_variant.items()}, Trigger.ORDER_ALLOCATION)
    return _stock_json(lines, {v: (0, q) for v, q in per_variant.items()})


def _fulfil(ctx: Context, trigger: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deduct every mapped line from on hand and release what it reserved.

    Tried in full first (one stock_apply); if the catalog refuses because on hand is short,
    the locked rows are read and the deduction stops at what is on hand (and the release at
    what is reserved), so the catalog's rules always hold and the sale is still recorded.
    """
    lines = _mapped_lines(ctx)
    changes: dict[int, tuple[int, int]] = {}
    for line in lines:
        old = changes.get(line.variant_id, (0, 0))
        changes[line.variant_id] = (old[0] - line.quantity, old[1] - line.reserved)
    try:
        _apply(ctx, changes, trigger)  # its own savepoint: a refusal leaves ours usable
    except StockError:
        return _fulfil_clamped(ctx, lines, trigger)
    for line in lines:
        line.deducted, line.reserved = line.quantity, 0
    return _stock_json(lines, changes), []


def _fulfil_clamped(
    ctx: Context, lines: list[SalesOrderLine], trigger: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    doc = ctx.doc
    assert doc is not None
    stocks = {
        s.variant_id: s
        for s in stocks_locked(sorted({ln.variant_id for ln in lines}), [doc.outlet_id])
    }
    on_hand = {v: s.on_hand for v, s in stocks.items()}
    reserved = {v: s.reserved for v, s in stocks.items()}
    changes: dict[int, tuple[int, int]] = {}
    short: list[dict[str, Any]] = []
    for line in lines:
        take = min(line.quantity, on_hand.get(line.variant_id, 0))
        release = min(line.reserved, reserved.get(line.variant_id, 0))
        on_hand[line.variant_id] = on_hand.get(line.variant_id, 0) - take
        reserved[line.variant_id] = reserved.get(line.variant_id, 0) - release
        old = changes.get(line.variant_id, (0, 0))
        changes[line.variant_id] = (old[0] - take, old[1] - release)
        line.deducted, line.reserved = take, 0
        if take < line.quantity:
            short.append({"sku": line.sku, "ordered": line.quantity, "deducted": take})
    _apply(ctx, changes, trigger)
    return _stock_json(lines, changes), short


def _give_back(ctx: Context) -> tuple[list[dict[str, Any]], str]:
    """Return what the lines hold: deductions back on hand, reservations released."""
    doc = ctx.doc
    assert doc is not None
    lines = _mapped_lines(ctx)
    shipped = _related(doc, "outbound_logistic") is not None
    deducted = any(line.deducted for line in lines)
    trigger = Trigger.SHIPMENT_CANCELLATION if shipped and deducted else Trigger.ORDER_RELEASE
    stocks = {
        s.variant_id: s
        for s in stocks_locked(sorted({ln.variant_id for ln in lines}), [doc.outlet_id])
    }
    reserved = {v: s.reserved for v, s in stocks.items()}
    changes: dict[int, tuple[int, int]] = {}
    for line in lines:
        release = min(line.reserved, reserved.get(line.variant_id, 0))
        reserved[line.variant_id] = reserved.get(line.variant_id, 0) - release
        old = changes.get(line.variant_id, (0, 0))
        changes[line.variant_id] = (old[0] + line.deducted, old[1] - release)
        line.deducted = line.reserved = 0
    _apply(ctx, changes, trigger)
    return _stock_json(lines, changes), trigger


def _apply(ctx: Context, changes: Mapping[int, tuple[int, int]], trigger: str) -> None:
    doc = ctx.doc
    assert doc is not None
    rows = [
        StockChange(variant_id, doc.outlet_id, on_hand_delta=on_hand, reserved_delta=held)
        for variant_id, (on_hand, held) in sorted(changes.items())
        if on_hand or held
    ]
    if rows:
        stock_apply(
            changes=rows,
            trigger=trigger,
            reference=ctx.reference,
            actor=ctx.stock_actor,
            source_channel_id=ctx.channel.pk,
        )


def _stock_json(
    lines: Sequence[SalesOrderLine], changes: Mapping[int, tuple[int, int]]
) -> list[dict[str, Any]]:
    skus = {line.variant_id: line.sku for line in lines}
    return [
        {"sku": skus[v], "variant_id": v, "on_hand_delta": on_hand, "reserved_delta": held}
        for v, (on_hand, held) in sorted(changes.items())
        if on_hand or held
    ]


# --- log rows ----------------------------------------------------------------------------------


def _log_row(ctx: Context, action: str, outcome: Outcome, logged_at: datetime | None) -> SyncLog:
    return SyncLog(
        channel=ctx.channel,
        order_number=ctx.order.order_number,
        action=action,
        status=outcome.status,
        origin=ctx.origin,
        sales_order=ctx.doc,
        documents=outcome.documents,
        message=outcome.message,
        request=order_json(ctx.order),
        response=outcome.response,
        actor=ctx.actor[:120],
        created_at=logged_at or timezone.now(),
    )


def order_json(order: RemoteOrder) -> dict[str, Any]:
    """The marketplace order a step was based on, as the log keeps it (no credentials: an
    order payload carries none)."""
    return {
        "order_number": order.order_number,
        "order_id": order.order_id,
        "status": order.status,
        "state": order.state.value,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "paid_at": order.paid_at,
        "currency": order.currency,
        "total": order.total,
        "payment_method": order.payment_method,
        "courier": order.courier,
        "tracking_number": order.tracking_number,
        "cancel_reason": order.cancel_reason,
        "lines": [
            {
                "line_id": line.line_id,
                "item_id": line.item_id,
                "variant_id": line.variant_id,
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for line in order.lines
        ],
        "marketplace": order.source,
    }


def _note_remote_state(ctx: Context) -> None:
    """Remember the newest marketplace status seen, never going back to an older one."""
    doc, order = ctx.doc, ctx.order
    if doc is None or doc.remote_updated_at > order.updated_at:
        return
    if (doc.remote_status, doc.remote_updated_at) == (order.status, order.updated_at):
        return
    SalesOrder.objects.filter(pk=doc.pk).filter(Q(remote_updated_at__lte=order.updated_at)).update(
        remote_status=order.status, state=order.state.value, remote_updated_at=order.updated_at
    )


# --- wording -----------------------------------------------------------------------------------


def _line_key(line: RemoteOrderLine) -> LineKey:
    return (line.item_id, line.variant_id, sku_key(line.sku))


def _units(stock: Sequence[Mapping[str, Any]], *, of: str) -> str:
    """ "N units of M SKUs", counting the `of` deltas ("on_hand_delta" or "reserved_delta")."""
    moved = [row for row in stock if row[of]]
    total = sum(abs(row[of]) for row in moved)
    if not moved:
        return "no stock (no line maps to a POS variant, or none was on hand)"
    skus = len(moved)
    return f"{total} unit{'s' if total != 1 else ''} of {skus} SKU{'s' if skus != 1 else ''}"


def _returned(stock: Sequence[Mapping[str, Any]]) -> str:
    """What a void gave back: units put back on hand, else reservations released."""
    if any(row["on_hand_delta"] for row in stock):
        return _units(stock, of="on_hand_delta") + " back on hand"
    return "the reservation of " + _units(stock, of="reserved_delta")


def _unmapped_note(ctx: Context) -> str:
    doc = ctx.doc
    if doc is None or not doc.unmapped_lines:
        return ""
    skus = [
        line.sku or "(blank)"
        for line in ctx.order.lines
        if ctx.variants.get(_line_key(line)) is None
    ]
    return (
        f" {doc.unmapped_lines} line(s) have a SKU the POS does not know ({', '.join(skus[:5])}): "
        "they are kept on the order with no stock change; fix the SKU on the channel or link "
        "the listing to a POS variant."
    )


def _short_note(short: Sequence[Mapping[str, Any]]) -> str:
    if not short:
        return ""
    parts = [
        f"{row['sku']} (sold {row['ordered']}, deducted {row['deducted']})" for row in short[:5]
    ]
    return (
        " Stock was short, so on hand stopped at zero for: "
        + ", ".join(parts)
        + ". Count these shelves."
    )
