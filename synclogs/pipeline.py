"""The order pipeline: from a marketplace order's state to POS documents, one logged step at a time.

Which steps an order gets is the table ORDER_STEPS (BRIEF §5). It has a row per state its
marketplace reports (states handled alike share one), giving the steps, in order, in each of
three cases:

- `in_pos`: the order is in the POS;
- `missing`: it is not, and the call carries the whole order (a download, scheduled or manual),
  so the steps create what is missing. A cancelled or returned order gets Create Order, which
  logs 400: there is nothing to make;
- `missing_signalled`: it is not, and the call is a status signal (a webhook,
  `create_missing=False`). For a paid, shipped or delivered order it creates nothing but logs
  404 on the step the push was about (Add Payment, or Create Outbound Logistic), so staff
  download the order by hand.

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
- A line of a bundle (catalog.bundles) does all of this to the bundle's leaf components
  (line quantity × units per bundle), as the bundle was made when the line first held stock:
  the line keeps that (SalesOrderLine.components), so a void gives back what was taken even
  after the bundle's components changed. The logged stock rows name each component's SKU,
  with the bundle's (`via`).

A page of orders is processed set by set rather than order by order: its orders in the POS are
read in one query, and each step is taken for every order of the page at once. A step first
checks each order against what is known (`Step.check`: the 409, 400 and 404 outcomes, which
write nothing), then does the rest in bulk (`Step.do`): one insert per kind of document for the
page. Stock is the exception: one stock_apply per order, so the ledger names the order each
movement belongs to.

Concurrency: a page is one transaction. It locks its orders that are in the POS, inserts the
new ones in order-number order — of two workers racing, one creates and the other, refused by
the (channel, order number) unique constraint, locks the order it lost and logs 409 — and locks
every stock row its steps change, in (variant, outlet) order, before the first change. Invoice,
logistic and payment are one-to-one with the order, so the database refuses a second one even
if a lock were bypassed. A page that fails as a whole (a broken order, a deadlock) is rolled
back and done again one order per transaction, so one broken order does not undo the others.
"""

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from catalog.bundles import leaf_components
from catalog.exceptions import StockError
from catalog.lock_objects import stock_levels_locked, stocks_locked
from catalog.models import BundleComponent, StockMovement, Variant, sku_key
from catalog.selectors import storable
from catalog.services import StockChange, stock_apply
from channels.adapters.base import OrderState, RemoteOrder, RemoteOrderLine
from channels.inventory import channels_read_once, own_orders_seen
from channels.models import Channel, Listing
from channels.sku_rules import SkuMapper
from omni.actors import Actor
from omni.bulk import bulk_set
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


class StateSteps(NamedTuple):
    """One row of ORDER_STEPS: the steps, in order, of an order in one of `states`, in each of
    the three cases the module's docstring describes."""

    states: tuple[OrderState, ...]
    in_pos: tuple[str, ...]
    missing: tuple[str, ...]
    missing_signalled: tuple[str, ...]


# Which steps an order gets, by its marketplace state: read by `_plan`.
ORDER_STEPS: tuple[StateSteps, ...] = (
    StateSteps(
        states=(OrderState.UNPAID,),
        in_pos=(Action.CREATE_ORDER,),
        missing=(Action.CREATE_ORDER,),
        missing_signalled=(Action.CREATE_ORDER,),
    ),
    StateSteps(
        states=(OrderState.PAID,),
        in_pos=(Action.CONVERT_ORDER_TO_INVOICE, Action.ADD_PAYMENT),
        missing=(Action.CREATE_INVOICE, Action.ADD_PAYMENT),
        missing_signalled=(Action.ADD_PAYMENT,),
    ),
    StateSteps(
        states=(OrderState.SHIPPED, OrderState.DELIVERED),
        in_pos=(
            Action.CONVERT_ORDER_TO_INVOICE,
            Action.CREATE_OUTBOUND_LOGISTIC,
            Action.ADD_PAYMENT,
        ),
        missing=(Action.CREATE_INVOICE, Action.CREATE_OUTBOUND_LOGISTIC, Action.ADD_PAYMENT),
        missing_signalled=(Action.CREATE_OUTBOUND_LOGISTIC,),
    ),
    StateSteps(
        states=(OrderState.CANCELLED, OrderState.RETURNED),
        in_pos=(Action.VOID_INVOICE,),
        missing=(Action.CREATE_ORDER,),
        missing_signalled=(Action.CREATE_ORDER,),
    ),
)
_STEPS_OF_STATE = {state: row for row in ORDER_STEPS for state in row.states}

# The steps that create the sales order of an order not in the POS, with the status it gets.
CREATES = {
    Action.CREATE_ORDER: SalesOrder.Status.OPEN,
    Action.CREATE_INVOICE: SalesOrder.Status.INVOICED,
}
# The steps that may change stock.
STOCK_STEPS = (
    Action.CREATE_ORDER,
    Action.CREATE_INVOICE,
    Action.CONVERT_ORDER_TO_INVOICE,
    Action.VOID_INVOICE,
)

# (item_id, variant_id, normalised SKU) of a line -> the POS variant id, or None when unmapped.
LineKey = tuple[str, str, str]
VariantMap = Mapping[LineKey, int | None]


@dataclass(slots=True)
class Outcome:
    """What one step did: the log row's status, message, documents and response, and why
    staff should still look at it (`attention`: blank when there is nothing to see)."""

    status: int
    message: str
    documents: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)
    attention: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """What every order of one call shares."""

    channel: Channel
    origin: str
    actor: str
    variants: VariantMap
    create_missing: bool = True
    skip_unchanged: bool = False
    logged_at: datetime | None = None
    only: str | None = None  # order_step: this one step, whatever the state calls for


@dataclass(slots=True, eq=False)  # eq=False: hashed by identity, so it can key a dict
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
    created: bool = False  # `doc` was inserted by this page
    raced: bool = False  # `doc` was inserted by another worker after this page looked
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)  # (action, outcome)

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


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the pipeline, taken for a set of orders at once.

    `check` decides from what is known whether one order's step is refused, and how (409, 400
    or 404: nothing is written), or None to go on; `do` takes the step for every order that got
    None, in bulk, and returns their outcomes in the same order.
    """

    check: Callable[[Context], Outcome | None]
    do: Callable[[list[Context]], list[Outcome]]


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

    The page is one transaction. If it fails, it is rolled back and done again one order per
    transaction, so an order that fails (it is logged and re-raised at the end) does not undo
    the others. With `skip_unchanged`, an order whose marketplace status and update time are
    what the POS already processed is skipped without a row: scheduled downloads overlap their
    windows, and re-logging unchanged orders would bury the rows that matter.

    Queries, whatever the page's size: three to map SKUs (listings, the channel's aliases,
    variants), one to lock the page's orders in the POS and, when some are, one to read them;
    per step, one insert or update per kind of document (the new orders' insert in a
    savepoint), one to lock the stock rows, one to read the known orders' lines and one to
    learn which new lines are bundles (one per level of bundles, and one for their components'
    SKUs, when some are); then one insert of the log rows, one update of the marketplace
    statuses, and one read of the channel's listings of the page's lines (`own_orders_seen`:
    those a push may have overwritten are queued again, with push_request's queries). On top
    of that, per order that changes stock, its stock_apply (six round trips; one more to read
    the levels for a void or a deduction beyond on hand, and one to check the variants of a
    void that puts units back on hand). Measured: `manage.py bench orders`.
    """
    page = Page(
        channel,
        origin,
        actor,
        variants_for(channel=channel, orders=orders),
        create_missing=create_missing,
        skip_unchanged=skip_unchanged,
        logged_at=logged_at,
    )
    if len(orders) > 1:
        try:
            with transaction.atomic():
                return _run(page, orders)
        except Exception:  # noqa: BLE001 - done again order by order, where it is reported
            logger.warning(
                "channel %s: a page of %d orders failed; processing them one at a time",
                channel.pk,
                len(orders),
                exc_info=True,
            )
    return _one_by_one(page, orders)


def _one_by_one(page: Page, orders: Sequence[RemoteOrder]) -> list[SyncLog]:
    rows: list[SyncLog] = []
    failed: list[tuple[str, Exception]] = []
    for order in orders:
        try:
            with transaction.atomic():
                rows.extend(_run(page, [order]))
        except Exception as exc:  # noqa: BLE001 - one broken order must not stop the page
            logger.exception("channel %s order %s failed", page.channel.pk, order.order_number)
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
    create_missing: bool = True,
    skip_unchanged: bool = False,
    logged_at: datetime | None = None,
) -> list[SyncLog]:
    """Run every step `order.state` calls for (see the module's table); the rows logged.
    One transaction; an error is raised as it is."""
    page = Page(
        channel,
        origin,
        actor,
        variants_for(channel=channel, orders=[order]),
        create_missing=create_missing,
        skip_unchanged=skip_unchanged,
        logged_at=logged_at,
    )
    with transaction.atomic():
        return _run(page, [order])


def order_step(
    *, channel: Channel, order: RemoteOrder, action: str, origin: str, actor: str = ""
) -> SyncLog:
    """Run one named step for `order` whatever its state calls for (the step itself refuses
    with 400 what the state does not allow); the row logged."""
    variants = variants_for(channel=channel, orders=[order])
    page = Page(channel, origin, actor, variants, only=action)
    with transaction.atomic():
        [row] = _run(page, [order])
    return row


def variants_for(*, channel: Channel, orders: Iterable[RemoteOrder]) -> dict[LineKey, int | None]:
    """The POS variant of every line: through the channel's listing first (which keeps links
    made by hand), else by SKU under the channel's SKU rules (channels.sku_rules: an alias,
    else the SKU less the channel's prefix and suffix; trimmed, case ignored), as a scan maps
    it. Three queries whatever the count (listings, the aliases of the lines' SKUs, variants)."""
    lines = [line for order in orders for line in order.lines]
    item_ids = {line.item_id for line in lines}
    linked = {
        (item_id, variant_ref): variant_id
        for item_id, variant_ref, variant_id in Listing.objects.filter(
            channel=channel, item_id__in=item_ids, variant__isnull=False
        ).values_list("item_id", "variant_ref", "variant_id")
    }
    mapped = SkuMapper.for_channel(channel, skus=[line.sku for line in lines]).keys(
        line.sku for line in lines
    )
    keys = {key for key in mapped.values() if key and storable(key)}
    by_sku = dict(
        Variant.objects.filter(sku_key__in=keys).values_list("sku_key", "pk") if keys else []
    )
    result: dict[LineKey, int | None] = {}
    for line in lines:
        found = linked.get((line.item_id, line.variant_id)) or by_sku.get(mapped[line.sku or ""])
        result[_line_key(line)] = found
    return result


# --- a page ------------------------------------------------------------------------------------


def _run(page: Page, orders: Sequence[RemoteOrder]) -> list[SyncLog]:
    """The pipeline for `orders` in the caller's transaction; the rows logged, in order.

    An order number that comes twice is run again after the first time (it then finds what
    the first did), as it would be on a later page.
    """
    rows: list[SyncLog] = []
    with channels_read_once():  # one read of the channels for the page's stock changes
        for batch in _distinct(orders):
            rows.extend(_run_distinct(page, batch))
    return rows


def _distinct(orders: Sequence[RemoteOrder]) -> Iterator[list[RemoteOrder]]:
    """`orders` cut into runs in which no order number comes twice."""
    batch: list[RemoteOrder] = []
    seen: set[str] = set()
    for order in orders:
        if order.order_number in seen:
            yield batch
            batch, seen = [], set()
        batch.append(order)
        seen.add(order.order_number)
    if batch:
        yield batch


def _run_distinct(page: Page, orders: Sequence[RemoteOrder]) -> list[SyncLog]:
    """Orders of distinct numbers: read (and lock) those in the POS, plan each order's steps,
    take them round by round (first steps, then second steps…), then log every row at once."""
    found = _locked_orders(page.channel, [order.order_number for order in orders])
    ctxs = [
        Context(
            page.channel,
            order,
            page.origin,
            page.actor,
            page.variants,
            doc=found.get(order.order_number),
        )
        for order in orders
    ]
    if page.skip_unchanged:
        ctxs = _changed(page.channel, ctxs)
    plans = [(ctx, [page.only] if page.only else _plan(ctx, page.create_missing)) for ctx in ctxs]
    for n in range(max((len(plan) for _, plan in plans), default=0)):
        _round(page.channel, [(ctx, plan[n]) for ctx, plan in plans if n < len(plan)])
    rows = [
        _log_row(ctx, action, outcome, page.logged_at)
        for ctx in ctxs
        for action, outcome in ctx.outcomes
    ]
    SyncLog.objects.bulk_create(rows)
    _note_remote_states(ctxs)
    own_orders_seen(channel=page.channel, orders=[_placed(ctx) for ctx in ctxs if _counted(ctx)])
    return rows


def _counted(ctx: Context) -> bool:
    """Whether the POS quantity a resync would push counts this order as the marketplace does:
    an order the POS holds, or one cancelled (its units back on both sides). A live order the
    POS does not hold (logged 404, to download) is in the marketplace's stock but not yet in
    the POS's: pushing would undo the marketplace's deduction, a sold unit back on sale."""
    return ctx.doc is not None or ctx.order.state == OrderState.CANCELLED


def _placed(ctx: Context) -> tuple[datetime, list[int]]:
    """When the order was placed, and the POS variants of its mapped lines."""
    variants = (ctx.variants.get(_line_key(line)) for line in ctx.order.lines)
    return ctx.order.created_at, [v for v in variants if v is not None]


def _round(channel: Channel, items: Sequence[tuple[Context, str]]) -> None:
    """Take one step of each order: the refusals first, order by order, then for each step
    the orders left, all at once. New sales orders are inserted and the stock rows locked
    before any step is done."""
    ready: dict[str, list[Context]] = {}
    for ctx, action in items:
        refusal = STEPS[action].check(ctx)
        if refusal is None:
            ready.setdefault(action, []).append(ctx)
        else:
            ctx.outcomes.append((action, refusal))
    _orders_insert(
        channel,
        [(ctx, action) for action in CREATES for ctx in ready.get(action, []) if ctx.doc is None],
    )
    _stock_lock([ctx for action in STOCK_STEPS for ctx in ready.get(action, [])])
    for action, ctxs in ready.items():
        for ctx, outcome in zip(ctxs, STEPS[action].do(ctxs), strict=True):
            ctx.outcomes.append((action, outcome))


# --- the plan ----------------------------------------------------------------------------------


def _plan(ctx: Context, create_missing: bool) -> list[str]:
    """The order's steps, from its row of ORDER_STEPS."""
    row = _STEPS_OF_STATE[ctx.order.state]
    if ctx.doc is not None:
        return list(row.in_pos)
    return list(row.missing if create_missing else row.missing_signalled)


def _changed(channel: Channel, ctxs: list[Context]) -> list[Context]:
    """The orders left once those already processed as they are now are taken out: an order
    in the POS with this marketplace status and update time, or one cancelled before it
    reached the POS and already logged 400 for it. One query, for the cancelled ones."""
    cancelled = [
        ctx.order.order_number for ctx in ctxs if ctx.doc is None and ctx.order.state in VOID_STATES
    ]
    said = set(
        SyncLog.objects.filter(
            channel=channel,
            order_number__in=cancelled,
            action=Action.CREATE_ORDER,
            status=Code.WRONG_STATUS,
        ).values_list("order_number", flat=True)
        if cancelled
        else []
    )
    return [ctx for ctx in ctxs if not _unchanged(ctx, said)]


def _unchanged(ctx: Context, said: set[str]) -> bool:
    doc, order = ctx.doc, ctx.order
    if doc is not None:
        return doc.remote_status == order.status and doc.remote_updated_at >= order.updated_at
    # Cancelled before it reached the POS: said once (400) is enough.
    return order.order_number in said


# --- the steps ---------------------------------------------------------------------------------
#
# Each step is a check (one order: its refusal, or None) and a do (every order that passed).
# When a step's do runs, the new orders of the round are inserted (`ctx.created`, or
# `ctx.raced` when another worker was first) and the stock rows they change are locked.


def check_create_order(ctx: Context) -> Outcome | None:
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
    return None


def do_create_order(ctxs: list[Context]) -> list[Outcome]:
    outcomes = [_order_created(ctx) if ctx.created else _raced(ctx) for ctx in ctxs]
    _save_lines([ctx for ctx in ctxs if ctx.created])
    return outcomes


def _order_created(ctx: Context) -> Outcome:
    doc = _doc(ctx)
    reserved = _reserve(ctx)
    held = _units(reserved, of="reserved_delta")
    text = f"Created sales order #{doc.pk} and reserved {held} at {doc.outlet}."
    return Outcome(
        Code.OK,
        text + _unmapped_note(ctx),
        _documents(ctx),
        {"stock": reserved},
        attention=_attention(_unmapped_skus(ctx)),
    )


def _raced(ctx: Context) -> Outcome:
    return _already(ctx, f"Another worker created sales order #{_doc(ctx).pk} a moment ago.")


def check_create_invoice(ctx: Context) -> Outcome | None:
    if ctx.doc is not None:
        return check_convert_to_invoice(ctx)
    if ctx.order.state not in PAID_STATES:
        return _not_paid(ctx)
    return None


def do_create_invoice(ctxs: list[Context]) -> list[Outcome]:
    """Orders this page created are invoiced and deducted in one go; orders in the POS
    already, or created by another worker a moment ago, are converted as Convert Order To
    Invoice would."""
    outcomes: dict[Context, Outcome] = {}
    converting: list[Context] = []
    for ctx in ctxs:
        if ctx.created:
            continue
        refusal = check_convert_to_invoice(ctx) if ctx.raced else None  # the others passed it
        if refusal is None:
            converting.append(ctx)
        else:
            outcomes[ctx] = refusal
    if converting:
        outcomes.update(zip(converting, do_convert_to_invoice(converting), strict=True))
    created = [ctx for ctx in ctxs if ctx.created]
    for ctx, invoice in zip(created, _invoices_insert(created), strict=True):
        outcomes[ctx] = _created_invoiced(ctx, invoice)
    _save_lines(created)
    return [outcomes[ctx] for ctx in ctxs]


def _created_invoiced(ctx: Context, invoice: Invoice) -> Outcome:
    doc = _doc(ctx)
    # Never reserved: allocated and deducted in one movement, so the other channels hear of
    # the allocation and the ledger shows one row per SKU.
    deducted, short = _fulfil(ctx, Trigger.ORDER_ALLOCATION)
    taken = _units(deducted, of="on_hand_delta")
    text = (
        f"The order arrived {ctx.order.state.value} and was not in the POS: created sales order "
        f"#{doc.pk} with invoice {invoice.number}, deducting {taken} from {doc.outlet}."
    )
    response = {"stock_deducted": deducted, "short": short}
    return Outcome(
        Code.OK,
        text + _short_note(short) + _unmapped_note(ctx),
        _documents(ctx),
        response,
        attention=_attention(_unmapped_skus(ctx), short),
    )


def check_convert_to_invoice(ctx: Context) -> Outcome | None:
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
    return None


def do_convert_to_invoice(ctxs: list[Context]) -> list[Outcome]:
    invoices = _invoices_insert(ctxs)
    SalesOrder.objects.filter(pk__in=[_doc(ctx).pk for ctx in ctxs]).update(
        status=SalesOrder.Status.INVOICED
    )
    outcomes = []
    for ctx, invoice in zip(ctxs, invoices, strict=True):
        doc = _doc(ctx)
        doc.status = SalesOrder.Status.INVOICED
        deducted, short = _fulfil(ctx, Trigger.ORDER_FULFILMENT)
        left = _units(deducted, of="on_hand_delta")
        text = f"Created invoice {invoice.number}; {left} left {doc.outlet}."
        response = {"stock_deducted": deducted, "short": short}
        outcomes.append(
            Outcome(
                Code.OK,
                text + _short_note(short),
                _documents(ctx),
                response,
                attention=_attention([], short),
            )
        )
    _save_lines(ctxs)
    return outcomes


def check_create_outbound_logistic(ctx: Context) -> Outcome | None:
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
    return None


def do_create_outbound_logistic(ctxs: list[Context]) -> list[Outcome]:
    logistics = OutboundLogistic.objects.bulk_create(
        OutboundLogistic(
            order=_doc(ctx),
            courier=ctx.order.courier[:100],
            tracking_number=ctx.order.tracking_number[:100],
        )
        for ctx in ctxs
    )
    return [
        Outcome(
            Code.OK,
            f"Recorded the shipment: {logistic.courier or 'courier not given'}, tracking number "
            f"{logistic.tracking_number or 'not given yet'}.",
            _documents(ctx),
        )
        for ctx, logistic in zip(ctxs, logistics, strict=True)
    ]


def check_add_payment(ctx: Context) -> Outcome | None:
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
    return None


def do_add_payment(ctxs: list[Context]) -> list[Outcome]:
    now = timezone.now()
    payments = Payment.objects.bulk_create(
        Payment(
            order=_doc(ctx),
            invoice=_invoice(_doc(ctx)),
            amount=ctx.order.total,
            method=ctx.order.payment_method[:60],
            paid_at=ctx.order.paid_at or now,
        )
        for ctx in ctxs
    )
    outcomes = []
    for ctx, payment in zip(ctxs, payments, strict=True):
        amount = f"{payment.amount} {ctx.order.currency}".strip()
        text = f"Recorded a payment of {amount} ({payment.method or 'method not given'})."
        outcomes.append(Outcome(Code.OK, text, _documents(ctx)))
    return outcomes


def check_void_invoice(ctx: Context) -> Outcome | None:
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
    return None


def do_void_invoice(ctxs: list[Context]) -> list[Outcome]:
    now = timezone.now()
    outcomes = [_voided_now(ctx, now) for ctx in ctxs]
    _save_lines(ctxs)
    docs = [_doc(ctx) for ctx in ctxs]
    invoices = [invoice for doc in docs if (invoice := _invoice(doc)) is not None]
    bulk_set(Invoice, invoices, ["voided_at", "void_reason"])
    bulk_set(SalesOrder, docs, ["status", "voided_at", "void_reason"])
    return outcomes


def _voided_now(ctx: Context, now: datetime) -> Outcome:
    """Give the order's stock back and mark it (and its invoice) voided, in memory: the
    caller writes the documents of every order at once."""
    doc = _doc(ctx)
    reason = (ctx.order.cancel_reason or ctx.order.status)[:300]
    invoice = _invoice(doc)
    returned, trigger = _give_back(ctx)
    if invoice is not None:
        invoice.voided_at, invoice.void_reason = now, reason
        what = f"Voided invoice {invoice.number}"
    else:
        what = f"Voided sales order #{doc.pk} (it had no invoice)"
    doc.status, doc.voided_at, doc.void_reason = SalesOrder.Status.VOIDED, now, reason
    why = f" ({ctx.order.cancel_reason})" if ctx.order.cancel_reason else ""
    text = f"{what}: {ctx.said}{why}. Returned {_returned(returned)} at {doc.outlet}."
    if _related(doc, "payment") is not None:
        text += " Its payment stays recorded: refund it in the POS if the buyer was refunded."
    response = {"stock_returned": returned, "trigger": trigger}
    return Outcome(Code.OK, text, _documents(ctx), response)


STEPS: dict[str, Step] = {
    Action.CREATE_ORDER: Step(check_create_order, do_create_order),
    Action.CONVERT_ORDER_TO_INVOICE: Step(check_convert_to_invoice, do_convert_to_invoice),
    Action.CREATE_INVOICE: Step(check_create_invoice, do_create_invoice),
    Action.CREATE_OUTBOUND_LOGISTIC: Step(
        check_create_outbound_logistic, do_create_outbound_logistic
    ),
    Action.ADD_PAYMENT: Step(check_add_payment, do_add_payment),
    Action.VOID_INVOICE: Step(check_void_invoice, do_void_invoice),
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
    doc = _doc(ctx)
    return Outcome(
        Code.WRONG_STATUS,
        f"{ctx.said}, but the POS voided this order ({doc.void_reason or 'no reason given'}): "
        "check the order on the marketplace and in the POS by hand.",
        _documents(ctx),
    )


# --- documents ---------------------------------------------------------------------------------


def _locked_orders(channel: Channel, numbers: Sequence[str]) -> dict[str, SalesOrder]:
    """The orders of these numbers that are in the POS, by number: locked, in primary-key
    order (as every page locks them), then read with their outlet and one-to-one documents.

    Two queries (one when none is in the POS): a query that waits on a lock goes on with the
    other tables as they were before it waited, so documents read by the locking query would
    miss those the worker it waited for had just committed (a shipment recorded twice,
    refused by the unique constraint, failing the page). Read once the locks are held, they
    are the latest.
    """
    locked = list(
        SalesOrder.objects.select_for_update()
        .filter(channel=channel, order_number__in=numbers)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not locked:
        return {}
    orders = SalesOrder.objects.select_related(
        "outlet", "invoice", "outbound_logistic", "payment"
    ).filter(pk__in=locked)
    return {doc.order_number: doc for doc in orders}


def _orders_insert(channel: Channel, items: Sequence[tuple[Context, str]]) -> None:
    """Insert the sales orders of these orders not in the POS, with the status their step
    (CREATES) gives, in one statement; their lines are built and saved by the step, with the
    stock they hold.

    In order-number order, so two workers inserting the same orders wait on each other instead
    of deadlocking. When another worker created one of them since the page looked, the unique
    constraint refuses the insert: the orders that are there now are locked and read (marked
    `raced`), and the others inserted again. Cost: a savepoint and one insert; per race lost,
    one read and one insert more.
    """
    pending = sorted(items, key=lambda item: item[0].order.order_number)
    while pending:
        built = [_new_order(ctx, status=CREATES[action]) for ctx, action in pending]
        try:
            with transaction.atomic():  # a savepoint: losing a race must not end the transaction
                SalesOrder.objects.bulk_create(doc for doc, _ in built)
        except IntegrityError as exc:
            pending = _races_lost(channel, pending, exc)
            continue
        for (ctx, _), (doc, lines) in zip(pending, built, strict=True):
            for line in lines:
                line.order = doc
            doc.outlet = channel.order_outlet
            for name in ("invoice", "outbound_logistic", "payment"):  # a new order has none yet
                getattr(SalesOrder, name).related.set_cached_value(doc, None)
            ctx.doc, ctx.lines, ctx.created = doc, lines, True
        return


def _races_lost(
    channel: Channel, pending: list[tuple[Context, str]], exc: IntegrityError
) -> list[tuple[Context, str]]:
    """After an insert refused: lock and read the orders another worker created meanwhile,
    and return those still to insert. Re-raises `exc` when there is none (then the insert
    failed for another reason)."""
    found = _locked_orders(channel, [ctx.order.order_number for ctx, _ in pending])
    if not found:
        raise exc
    for ctx, _ in pending:
        ctx.doc = found.get(ctx.order.order_number)
        ctx.raced = ctx.doc is not None
    return [(ctx, action) for ctx, action in pending if ctx.doc is None]


def _new_order(ctx: Context, *, status: str) -> tuple[SalesOrder, list[SalesOrderLine]]:
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
    return doc, lines


def _line(ctx: Context, line: RemoteOrderLine) -> SalesOrderLine:
    return SalesOrderLine(
        line_id=line.line_id[:64],
        variant_id=ctx.variants.get(_line_key(line)),
        sku=line.sku[:120],
        title=line.title[:300] or line.sku[:300],
        quantity=max(line.quantity, 0),
        unit_price=line.unit_price,
    )


def _invoices_insert(ctxs: Sequence[Context]) -> list[Invoice]:
    """One invoice per order, one statement; each caches itself on its order."""
    return Invoice.objects.bulk_create(
        Invoice(order=_doc(ctx), total=ctx.order.total) for ctx in ctxs
    )


def _doc(ctx: Context) -> SalesOrder:
    """The order's POS document, for a step whose check made sure there is one."""
    assert ctx.doc is not None
    return ctx.doc


def _invoice(doc: SalesOrder) -> Invoice | None:
    return _related(doc, "invoice")


def _related(doc: SalesOrder, name: str) -> Any:
    """A one-to-one document of the order, from the cache filled by `_locked_orders` or by
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


def _note_remote_states(ctxs: Sequence[Context]) -> None:
    """Remember the newest marketplace status seen of each order, never going back to an older
    one. The orders are locked (or were created by this page), so what was read of them is
    current. One statement for the page."""
    changed = []
    for ctx in ctxs:
        doc, order = ctx.doc, ctx.order
        if doc is None or doc.remote_updated_at > order.updated_at:
            continue
        if (doc.remote_status, doc.remote_updated_at) == (order.status, order.updated_at):
            continue
        doc.remote_status, doc.state = order.status, order.state.value
        doc.remote_updated_at = order.updated_at
        changed.append(doc)
    bulk_set(SalesOrder, changed, ["remote_status", "state", "remote_updated_at"])


# --- stock -------------------------------------------------------------------------------------


def _mapped_lines(ctx: Context) -> list[SalesOrderLine]:
    """The order's lines that map to a POS variant (read once per order)."""
    if ctx.lines is None:
        ctx.lines = list(_doc(ctx).lines.all())
    return [line for line in ctx.lines if line.variant_id is not None]


def _lines_load(ctxs: Sequence[Context]) -> None:
    """Read the lines of these orders in the POS, one query for all."""
    if not ctxs:
        return
    by_order: dict[int, list[SalesOrderLine]] = {}
    for line in SalesOrderLine.objects.filter(order__in=[_doc(ctx).pk for ctx in ctxs]):
        by_order.setdefault(line.order_id, []).append(line)
    for ctx in ctxs:
        ctx.lines = by_order.get(_doc(ctx).pk, [])


def _stock_lock(ctxs: Sequence[Context]) -> None:
    """Lock every stock row these orders' steps may change, in (variant, outlet) order, before
    the first change. Each order's stock_apply then finds its rows held already, so the page
    takes its stock locks in the one order every stock writer uses, and two pages (or a page
    and an import) cannot deadlock. A bundle's line locks its components' rows (see
    `_bundle_lines_expand`). Cost: one query, one for the lines of known orders, and
    `_bundle_lines_expand`'s for lines holding no stock yet."""
    _lines_load([ctx for ctx in ctxs if ctx.lines is None])
    _bundle_lines_expand([line for ctx in ctxs for line in _mapped_lines(ctx)])
    pairs = {
        (variant_id, _doc(ctx).outlet_id)
        for ctx in ctxs
        for line in _mapped_lines(ctx)
        for variant_id, _units, _part in _parts(line)
    }
    stock_levels_locked(sorted(pairs))


def _bundle_lines_expand(lines: Sequence[SalesOrderLine]) -> None:
    """Give each line of a bundle that holds no stock yet the bundle's leaf components as it
    is made now (catalog.bundles.leaf_components): what the line then reserves, deducts and
    gives back, whatever the bundle is made of later. A line already holding stock keeps what
    it holds. Cost: one query per level of bundles (one when no line is a bundle), and one for
    the components' SKUs when some is."""
    fresh = [ln for ln in lines if not (ln.components or ln.reserved or ln.deducted)]
    if not fresh:
        return
    leaves = leaf_components({line.variant_id for line in fresh})
    if not leaves:
        return
    leaf_ids = {leaf for parts in leaves.values() for leaf in parts}
    skus = dict(Variant.objects.filter(pk__in=leaf_ids).values_list("pk", "sku"))
    for line in fresh:
        parts = leaves.get(line.variant_id, {})
        line.components = [
            {"variant_id": leaf, "sku": skus.get(leaf, ""), "per_unit": units}
            | {"reserved": 0, "deducted": 0}
            for leaf, units in sorted(parts.items())
        ]


# (variant id, units the line takes of it, its entry in line.components or None for the
# line's own variant): what one line moves, variant by variant.
Part = tuple[int, int, dict[str, Any] | None]


def _parts(line: SalesOrderLine) -> list[Part]:
    if line.components:
        return [(p["variant_id"], line.quantity * p["per_unit"], p) for p in line.components]
    return [(line.variant_id, line.quantity, None)]


def _held(line: SalesOrderLine, part: dict[str, Any] | None, what: str) -> int:
    """What the line holds of one part: `what` is "reserved" or "deducted"."""
    return int(part[what] if part is not None else getattr(line, what))


def _add(changes: dict[int, tuple[int, int]], variant_id: int, on_hand: int, held: int) -> None:
    old = changes.get(variant_id, (0, 0))
    changes[variant_id] = (old[0] + on_hand, old[1] + held)


def _whole_bundles(line: SalesOrderLine, what: str) -> int:
    """How many whole bundles a bundle's line holds (its `reserved` or `deducted`)."""
    return min(p[what] // p["per_unit"] for p in line.components)


def _save_lines(ctxs: Sequence[Context]) -> None:
    """Insert the lines built for these orders, and write back the stock the existing ones
    hold: one statement each, for all the orders."""
    lines = [line for ctx in ctxs for line in ctx.lines or []]
    new = [line for line in lines if line.pk is None]
    old = [line for line in lines if line.pk is not None and line.variant_id is not None]
    if new:
        SalesOrderLine.objects.bulk_create(new)
    bulk_set(SalesOrderLine, old, ["reserved", "deducted", "components"])


def _reserve(ctx: Context) -> list[dict[str, Any]]:
    """Reserve every mapped line at the order's outlet (trigger: order allocation); a bundle's
    line reserves its components."""
    doc = ctx.doc
    assert doc is not None
    lines = _mapped_lines(ctx)
    changes: dict[int, tuple[int, int]] = {}
    for line in lines:
        for variant_id, units, part in _parts(line):
            _add(changes, variant_id, 0, units)
            if part is not None:
                part["reserved"] = units
        line.reserved = line.quantity
    _apply(ctx, changes, Trigger.ORDER_ALLOCATION)
    return _stock_json(lines, changes)


def _fulfil(ctx: Context, trigger: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deduct every mapped line from on hand and release what it reserved (a bundle's line:
    its components, as it reserved them).

    Tried in full first (one stock_apply); if the catalog refuses because on hand is short,
    the locked rows are read and the deduction stops at what is on hand (and the release at
    what is reserved), so the catalog's rules always hold and the sale is still recorded.
    """
    lines = _mapped_lines(ctx)
    changes: dict[int, tuple[int, int]] = {}
    for line in lines:
        for variant_id, units, part in _parts(line):
            _add(changes, variant_id, -units, -_held(line, part, "reserved"))
    try:
        _apply(ctx, changes, trigger)  # its own savepoint: a refusal leaves ours usable
    except StockError:
        return _fulfil_clamped(ctx, lines, trigger)
    for line in lines:
        for _variant_id, units, part in _parts(line):
            if part is not None:
                part["deducted"], part["reserved"] = units, 0
        line.deducted, line.reserved = line.quantity, 0
    return _stock_json(lines, changes), []


def _fulfil_clamped(
    ctx: Context, lines: list[SalesOrderLine], trigger: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    doc = ctx.doc
    assert doc is not None
    variant_ids = sorted({variant_id for line in lines for variant_id, _u, _p in _parts(line)})
    stocks = {s.variant_id: s for s in stocks_locked(variant_ids, [doc.outlet_id])}
    on_hand = {v: s.on_hand for v, s in stocks.items()}
    reserved = {v: s.reserved for v, s in stocks.items()}
    changes: dict[int, tuple[int, int]] = {}
    short: list[dict[str, Any]] = []
    for line in lines:
        for variant_id, units, part in _parts(line):
            take = min(units, on_hand.get(variant_id, 0))
            release = min(_held(line, part, "reserved"), reserved.get(variant_id, 0))
            on_hand[variant_id] = on_hand.get(variant_id, 0) - take
            reserved[variant_id] = reserved.get(variant_id, 0) - release
            _add(changes, variant_id, -take, -release)
            if part is None:
                line.deducted = take
            else:
                part["deducted"], part["reserved"] = take, 0
            if take < units:
                row = {"sku": line.sku, "ordered": units, "deducted": take}
                short.append(row if part is None else {**row, "sku": part["sku"], "via": line.sku})
        if line.components:
            line.deducted = _whole_bundles(line, "deducted")
        line.reserved = 0
    _apply(ctx, changes, trigger)
    return _stock_json(lines, changes), short


def _give_back(ctx: Context) -> tuple[list[dict[str, Any]], str]:
    """Return what the lines hold: deductions back on hand, reservations released; a bundle's
    line returns what it took of each component, whatever the bundle is made of now.

    Units deducted from a variant that can no longer hold stock (deleted from the POS since,
    or made a bundle since) are not put back: they are listed in the answer as
    `not_returned`, and the line keeps them, for staff to count in by hand."""
    doc = ctx.doc
    assert doc is not None
    lines = _mapped_lines(ctx)
    shipped = _related(doc, "outbound_logistic") is not None
    deducted = [v for ln in lines for v, _u, part in _parts(ln) if _held(ln, part, "deducted")]
    trigger = Trigger.SHIPMENT_CANCELLATION if shipped and deducted else Trigger.ORDER_RELEASE
    cannot = _cannot_hold_stock(deducted)
    variant_ids = sorted({variant_id for line in lines for variant_id, _u, _p in _parts(line)})
    stocks = {s.variant_id: s for s in stocks_locked(variant_ids, [doc.outlet_id])}
    reserved = {v: s.reserved for v, s in stocks.items()}
    changes: dict[int, tuple[int, int]] = {}
    kept: list[dict[str, Any]] = []
    for line in lines:
        for variant_id, _units, part in _parts(line):
            back = _held(line, part, "deducted")
            if back and variant_id in cannot:
                sku = line.sku if part is None else part["sku"]
                kept.append(_not_returned(sku, variant_id, back, cannot[variant_id], part, line))
                continue
            release = min(_held(line, part, "reserved"), reserved.get(variant_id, 0))
            reserved[variant_id] = reserved.get(variant_id, 0) - release
            _add(changes, variant_id, back, -release)
            if part is None:
                line.deducted = line.reserved = 0
            else:
                part["deducted"] = part["reserved"] = 0
        if line.components:
            line.deducted, line.reserved = _whole_bundles(line, "deducted"), 0
    _apply(ctx, changes, trigger)
    return _stock_json(lines, changes) + kept, trigger


def _cannot_hold_stock(variant_ids: Sequence[int]) -> dict[int, str]:
    """{variant id: why} for those of `variant_ids` that can take no stock back: deleted from
    the POS, or made a bundle since the order took their units. One query (none when empty)."""
    if not variant_ids:
        return {}
    is_bundle = Exists(BundleComponent.objects.filter(bundle_id=OuterRef("pk")))
    found = dict(
        Variant.objects.filter(pk__in=set(variant_ids))
        .annotate(is_bundle=is_bundle)
        .values_list("pk", "is_bundle")
    )
    return {
        v: "it is a bundle now: its stock is its components'" if v in found else "it was deleted"
        for v in set(variant_ids)
        if found.get(v, True)
    }


def _not_returned(
    sku: str,
    variant_id: int,
    units: int,
    why: str,
    part: dict[str, Any] | None,
    line: SalesOrderLine,
) -> dict[str, Any]:
    row = {"sku": sku, "variant_id": variant_id, "on_hand_delta": 0, "reserved_delta": 0}
    row |= {"not_returned": units, "why": f"not put back on hand: {why}; count it in by hand"}
    return row if part is None else {**row, "via": line.sku}


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
    """The stock rows moved, one per variant: its SKU (a line's own, as the channel sent it),
    and for a bundle's component the bundle SKU(s) it was moved for (`via`)."""
    skus = {line.variant_id: line.sku for line in lines if not line.components}
    via: dict[int, list[str]] = {}
    for line in lines:
        for part in line.components:
            skus.setdefault(part["variant_id"], part["sku"])
            via.setdefault(part["variant_id"], []).append(line.sku)
    rows = []
    for v, (on_hand, held) in sorted(changes.items()):
        if on_hand or held:
            row = {
                "sku": skus[v],
                "variant_id": v,
                "on_hand_delta": on_hand,
                "reserved_delta": held,
            }
            if v in via:
                row["via"] = ", ".join(dict.fromkeys(via[v]))
            rows.append(row)
    return rows


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
        attention=_with_status_note(ctx.order, outcome.attention),
        created_at=logged_at or timezone.now(),
    )


def _with_status_note(order: RemoteOrder, attention: str) -> str:
    """`attention`, and first, for an order whose marketplace status omni does not know
    (`RemoteOrder.status_known`), that it was taken as unpaid."""
    if order.status_known:
        return attention
    note = f"Status {order.status!r} is unknown to omni: taken as unpaid (stock only reserved)"
    text = "; ".join(part for part in (note, attention) if part)
    return text if len(text) <= 300 else text[:299] + "…"


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


def _unmapped_skus(ctx: Context) -> list[str]:
    """The SKUs, as the channel sent them, of the order's lines that map to no POS variant."""
    doc = ctx.doc
    if doc is None or not doc.unmapped_lines:
        return []
    return [
        line.sku or "(blank)"
        for line in ctx.order.lines
        if ctx.variants.get(_line_key(line)) is None
    ]


def _attention(unmapped: Sequence[str], short: Sequence[Mapping[str, Any]] = ()) -> str:
    """Why a done step still needs staff, in a line short enough for a tooltip (≤ 300
    characters, SyncLog.attention); "" when nothing does. `unmapped` are the SKUs of the
    lines no POS variant matched ("(blank)" for a line with none)."""
    reasons = []
    blank = sum(sku == "(blank)" for sku in unmapped)
    unknown = [sku for sku in unmapped if sku != "(blank)"]
    if unknown:
        what = "1 line with a SKU" if len(unknown) == 1 else f"{len(unknown)} lines with SKUs"
        reasons.append(f"{what} the POS does not know: {_few(unknown)}")
    if blank:
        reasons.append("1 line with no SKU" if blank == 1 else f"{blank} lines with no SKU")
    if short:
        skus = [str(row["sku"]) for row in short]
        what = "1 SKU" if len(skus) == 1 else f"{len(skus)} SKUs"
        reasons.append(f"stock was short for {what}: {_few(skus)}")
    text = "; ".join(reasons)
    text = text[:1].upper() + text[1:]
    return text if len(text) <= 300 else text[:299] + "…"


def _few(names: Sequence[str], shown: int = 5) -> str:
    unique = list(dict.fromkeys(names))
    more = f" and {len(unique) - shown} more" if len(unique) > shown else ""
    return ", ".join(unique[:shown]) + more


def _unmapped_note(ctx: Context) -> str:
    doc = ctx.doc
    skus = _unmapped_skus(ctx)
    if doc is None or not skus:
        return ""
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
