"""Inventory sync: which stock changes reach which channel, the outbox, and its flush (BRIEF §4).

Flow: `catalog.services.stock_apply` sends `stock_changed` inside its transaction →
`on_stock_changed` asks the trigger table which channels are sent anything and writes a
PendingPush per affected listing, and a BundleRecount per changed component of a bundle (same
transaction) → after commit one flush task per channel is queued → `inventory_flush` turns the
recount rows into PendingPushes for the bundles whose quantity moved, then reads the current
quantities and pushes them in batches within the marketplace's per-call limits.
"""

import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from catalog.bundles import bundles_containing, components_among
from catalog.models import BundleComponent, StockMovement
from catalog.services import MovementRecord
from channels.adapters.base import AdapterError, PushResult, QuantityUpdate
from channels.models import (
    OWN_ORDER_RESYNC,
    RULES_CHANGED,
    BundleRecount,
    Channel,
    InventorySync,
    Listing,
    PendingPush,
    StockRule,
    SyncTrigger,
)
from channels.services import adapter_for
from channels.stock import StockMoves, channel_quantities
from omni.bulk import bulk_set, matching_chunks, upsert_rows
from omni.leases import Lease

logger = logging.getLogger(__name__)

Mode = Channel.SyncMode
Trigger = StockMovement.Trigger

# Triggers that are not stock movements: the three kinds of full sync (SyncTrigger).
# Not a trigger of the table: the repair of own_orders_seen (channels.models.OWN_ORDER_RESYNC).

# The trigger table of BRIEF §4: for each trigger, the modes in which a channel is sent
# anything. This is the single place that decides it. Order triggers are split by whether the
# channel is the one the order came from: a channel's own order is not echoed back to it (the
# marketplace moved its stock itself), except to repair a push that overwrote that move
# (own_orders_seen).
TRIGGER_TABLE: dict[tuple[str, bool], frozenset[str]] = {
    (SyncTrigger.FULFILLMENT_RECURRING, False): frozenset({Mode.REALTIME, Mode.FULFILLMENT}),
    (SyncTrigger.FULFILLMENT_MANUAL, False): frozenset({Mode.REALTIME, Mode.FULFILLMENT}),
    (SyncTrigger.SALES_CHANNEL_MANUAL, False): frozenset(
        {Mode.NONE, Mode.REALTIME, Mode.FULFILLMENT}
    ),
    (Trigger.IMPORT, False): frozenset({Mode.REALTIME}),
    (Trigger.MANUAL, False): frozenset({Mode.REALTIME}),
    (Trigger.RECEIPT, False): frozenset({Mode.REALTIME}),
    (Trigger.ORDER_ALLOCATION, True): frozenset(),
    (Trigger.ORDER_ALLOCATION, False): frozenset({Mode.REALTIME}),
    (Trigger.SHIPMENT_CANCELLATION, False): frozenset({Mode.REALTIME}),
    (Trigger.API_BULK, False): frozenset({Mode.REALTIME, Mode.FULFILLMENT}),
    (Trigger.API_SINGLE, False): frozenset({Mode.REALTIME}),
    # omni's own row: stock returned by a cancelled or voided order.
    (Trigger.ORDER_RELEASE, True): frozenset(),
    (Trigger.ORDER_RELEASE, False): frozenset({Mode.REALTIME}),
    # Invoicing turns a reservation into a deduction: available stock does not change.
    (Trigger.ORDER_FULFILMENT, True): frozenset(),
    (Trigger.ORDER_FULFILMENT, False): frozenset(),
    # A stock rule, a priority channel or a bundle's components changed: what a channel should
    # show changed with no stock moving. Sent where stock changes are sent unattended.
    (RULES_CHANGED, False): frozenset({Mode.REALTIME, Mode.FULFILLMENT}),
}


def sends(trigger: str, mode: str, *, own_order: bool = False) -> bool:
    """Whether a channel in `mode` is sent anything for `trigger` (BRIEF §4's table)."""
    modes = TRIGGER_TABLE.get((trigger, own_order))
    if modes is None:  # a trigger with no own/other split reads the same for both
        modes = TRIGGER_TABLE.get((trigger, False), frozenset())
    return mode in modes


# --- the outbox ----------------------------------------------------------------------------


def on_stock_changed(sender, movements: Sequence[MovementRecord], trigger: str, **kwargs) -> None:
    """Listener of catalog.signals.stock_changed: queue pushes in the stock change's transaction.

    A changed variant's listings are pushed when what the channel should show of them moved: a
    change the channel's rules absorb (a SKU held at its maximum, cut off, under its buffer)
    queues nothing (channels.stock.StockMoves). The channel an order came from is not sent the
    order's own stock change (the marketplace moved the listing it sold), except where the
    marketplace cannot have: the changed variants that are components of a bundle (the order
    may have sold the bundle, moving the component's stock in the POS only), and the bundles
    containing the changed variants.

    The bundles are not worked out here: a changed variant that is a component gets a
    BundleRecount row per channel, and the channel's flush queues the bundles containing it
    whose quantity moved (_recount_bundles). So a stock change costs the same whether its
    variants are in no bundle or in a thousand, and a burst of changes works each bundle out
    once.

    Cost: two queries for the channels and their outlets (none inside `channels_read_once`
    after the first call), one to learn whether any bundle exists and then one for the
    components among the changed variants, then per channel that is sent anything,
    StockMoves' few reads, one upsert of the outbox from its listings of the moved variants;
    one upsert of the recount rows for all channels.
    """
    sources = {m.source_channel_id for m in movements}
    components = _Components()
    moves = StockMoves(movements)
    active = _active_channels()
    recounts: list[tuple[int, int]] = []
    for channel in active:
        own = channel.pk in sources
        everywhere = sends(trigger, channel.inventory_sync_mode)
        if not (everywhere or sends(trigger, channel.inventory_sync_mode, own_order=own)):
            continue
        outlets = channel.stock_outlet_ids()
        changed = {m.variant_id for m in movements if m.outlet_id in outlets}
        if not changed:
            continue
        in_bundles = components.among(changed)
        recounts += [(channel.pk, variant) for variant in in_bundles]
        if own and not sends(trigger, channel.inventory_sync_mode, own_order=True):
            changed = in_bundles  # what the marketplace did not move itself
        variant_ids = moves.moved(channel, changed, active) if changed else set()
        if variant_ids:
            listings = Listing.objects.filter(channel=channel, variant_id__in=variant_ids).present()
            push_request(channel=channel, listings=listings, reason=trigger)
    if recounts:
        _recount_request(recounts, trigger)


class _Components:
    """Those of the changed variants that are components of a bundle, read once per set of
    variants in a signal (the channels of one stock change usually share their outlets)."""

    def __init__(self) -> None:
        self._any: bool | None = None
        self._seen: dict[frozenset[int], set[int]] = {}

    def among(self, variant_ids: set[int]) -> set[int]:
        if self._any is None:
            self._any = _any_bundle()
        if not self._any:
            return set()
        key = frozenset(variant_ids)
        if key not in self._seen:
            self._seen[key] = components_among(variant_ids)
        return self._seen[key]


def _recount_request(recounts: list[tuple[int, int]], reason: str) -> None:
    """Write the recount rows, (channel, component) pairs (a row written again bumps its
    request), and have each channel flushed once the change commits. Rows are taken in
    (channel, component) order, as the flush locks them, so the two never deadlock."""
    rows = sorted(recounts)
    upsert_rows(
        BundleRecount,
        {"channel_id": [c for c, _ in rows], "component_id": [v for _, v in rows]},
        constants={"reason": reason, "requested_at": timezone.now()},
        conflict=["channel", "component"],
        update=["reason", "requested_at"],
    )
    for channel_id in sorted({c for c, _ in rows}):
        transaction.on_commit(lambda channel_id=channel_id: flush_request(channel_id=channel_id))


# How far before an order's placing (by the marketplace's clock) a push to its listing counts
# as possibly sent after it: the two clocks may disagree by this much.
CLOCK_SKEW = timedelta(minutes=2)


def own_orders_seen(*, channel: Channel, orders: Iterable[tuple[datetime, Iterable[int]]]) -> int:
    """Repair what a push may have overwritten on the channel an order came from.

    `orders` are (placed at, POS variant ids) of the channel's orders that omni has just
    recorded or seen change (placed, paid, cancelled…), in that transaction. The channel is not
    sent its own orders' stock changes: the marketplace moved its stock itself. But a push to
    one of the order's listings after the order was placed carried a quantity read before
    omni knew of the order, and overwrote the marketplace's own deduction (or, for a
    cancellation, its give-back). Such listings, and those with a push queued or in flight,
    are queued again; the flush then sends the quantity that includes the order. Listings not
    pushed since are left alone, so a quiet channel costs no calls.

    Cost: one query for the listings, plus push_request's when any is queued. Returns the
    number of listings queued.
    """
    since: dict[int, datetime] = {}
    for placed_at, variant_ids in orders:
        for variant_id in variant_ids:
            since[variant_id] = min(since.get(variant_id, placed_at), placed_at)
    if not since or not channel.is_active:
        return 0
    rows = (
        Listing.objects.filter(channel=channel, variant_id__in=since)
        .present()
        .values_list("pk", "variant_id", "pushed_at", "pending_push")
    )
    again = [
        pk
        for pk, variant_id, pushed_at, pending in rows
        if pending is not None
        or (pushed_at is not None and pushed_at >= since[variant_id] - CLOCK_SKEW)
    ]
    if not again:
        return 0
    queued, _ = push_request(
        channel=channel, listings=Listing.objects.filter(pk__in=again), reason=OWN_ORDER_RESYNC
    )
    return queued


class _ChannelsRead:
    """The active channels, and whether any bundle exists, as read by the first listener call
    of a `channels_read_once` block."""

    __slots__ = ("any_bundle", "channels")

    def __init__(self) -> None:
        self.channels: list[Channel] | None = None
        self.any_bundle: bool | None = None


_channels_read: ContextVar[_ChannelsRead | None] = ContextVar("channels_read", default=None)


@contextmanager
def channels_read_once() -> Iterator[None]:
    """Within the block, `on_stock_changed` reads the active channels and their outlets at its
    first call and reuses them, instead of reading them again on every stock change.

    For a caller making many stock changes in one transaction (a page of orders:
    synclogs.pipeline). A channel edited meanwhile is seen from the next block on; so is the
    first bundle made meanwhile, whose listings its own change pushes (on_bundle_changed).
    """
    token = _channels_read.set(_ChannelsRead())
    try:
        yield
    finally:
        _channels_read.reset(token)


def _any_bundle() -> bool:
    read = _channels_read.get()
    if read is not None and read.any_bundle is not None:
        return read.any_bundle
    found = BundleComponent.objects.exists()
    if read is not None:
        read.any_bundle = found
    return found


def _active_channels() -> list[Channel]:
    read = _channels_read.get()
    if read is not None and read.channels is not None:
        return read.channels
    channels = list(
        Channel.objects.filter(is_active=True)
        .annotate(has_stock_rules=Exists(StockRule.objects.filter(channel=OuterRef("pk"))))
        .prefetch_related("outlets")
    )
    if read is not None:
        read.channels = channels
    return channels


def push_request(
    *, channel: Channel, listings, reason: str, flush: bool = True
) -> tuple[int, list[Listing]]:
    """Queue pushes for these listings (a queryset; coalescing with any already queued),
    applying the channel's duplicate-SKU policy, and a flush once the change commits (not with
    `flush` false: the caller is the flush). Returns (queued, skipped duplicates).

    A listing that shares its SKU with another of the channel (its `duplicate_sku` flag, kept
    by scans, uploads and re-matching) is skipped unless the policy is “update all”. Cost: one
    statement on PostgreSQL (reads and upserts elsewhere), and one read of the skipped
    listings when there are any.
    """
    skip = channel.duplicate_sku_policy != Channel.DuplicatePolicy.UPDATE_ALL
    queued, skipped_ids = _outbox_upsert(channel.pk, listings, reason, skip_duplicates=skip)
    skipped: list[Listing] = []
    if skipped_ids:
        skipped = list(
            Listing.objects.filter(pk__in=skipped_ids)
            .order_by("pk")
            .only("pk", "sku", "title", "item_id", "variant_ref")
        )
        logger.info(
            "channel %s: %d listing(s) share a SKU with another listing; skipped by policy",
            channel.pk,
            len(skipped),
        )
    if queued and flush:
        transaction.on_commit(lambda: flush_request(channel_id=channel.pk))
    return queued, skipped


_OUTBOX_UPSERT = """
WITH chosen (id, duplicate) AS ({listings}),
written AS (
    INSERT INTO {table} (listing_id, channel_id, reason, requested_at, attempts,
        next_attempt_at, last_error, failed)
    SELECT id, %s, %s, %s, 0, %s, '', false FROM chosen
    WHERE NOT (duplicate AND %s)
    ORDER BY id
    ON CONFLICT (listing_id) DO UPDATE SET reason = EXCLUDED.reason,
        requested_at = EXCLUDED.requested_at, next_attempt_at = EXCLUDED.next_attempt_at,
        attempts = 0, failed = false
    RETURNING 1
)
SELECT (SELECT count(*) FROM written),
    ARRAY(SELECT id FROM chosen WHERE duplicate AND %s ORDER BY id)
"""


def _outbox_upsert(
    channel_id: int, listings, reason: str, *, skip_duplicates: bool
) -> tuple[int, list[int]]:
    """One outbox row per listing of the `listings` queryset (but those sharing a SKU, with
    `skip_duplicates`): a new request resets attempts and bumps requested_at. Returns the rows
    written and the ids of the listings skipped.

    PostgreSQL gets one statement that reads the listings itself; other databases read them,
    then Django's upsert. Rows are taken in listing order, as the flush locks them, so the two
    never deadlock.
    """
    now = timezone.now()
    chosen = listings.order_by().values("pk", "duplicate_sku")
    if connection.vendor == "postgresql":
        sql, params = chosen.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                _OUTBOX_UPSERT.format(table=PendingPush._meta.db_table, listings=sql),
                [*params, channel_id, reason, now, now, skip_duplicates, skip_duplicates],
            )
            written, skipped = cursor.fetchone()
        return written, list(skipped)
    rows = sorted(chosen.values_list("pk", "duplicate_sku"))
    skipped = [pk for pk, duplicate in rows if duplicate and skip_duplicates]
    listing_ids = [pk for pk, duplicate in rows if not (duplicate and skip_duplicates)]
    PendingPush.objects.bulk_create(
        [
            PendingPush(
                listing_id=pk,
                channel_id=channel_id,
                reason=reason,
                requested_at=now,
                next_attempt_at=now,
            )
            for pk in listing_ids
        ],
        update_conflicts=True,
        unique_fields=["listing"],
        update_fields=["reason", "requested_at", "next_attempt_at", "attempts", "failed"],
        batch_size=1000,
    )
    return len(listing_ids), skipped


def flush_request(*, channel_id: int) -> None:
    """Queue one flush task for the channel unless one is already queued (debounce).

    A flag left set by a flusher that died (its lease lapsed) does not hold new work back.
    """
    if not getattr(settings, "OMNI_FLUSH_ON_COMMIT", True):
        return
    lapsed = Q(flush_locked_until__lt=timezone.now())
    claimed = Channel.objects.filter(Q(flush_queued=False) | lapsed, pk=channel_id).update(
        flush_queued=True
    )
    if claimed:
        from django_q.tasks import async_task

        async_task(
            "channels.tasks.inventory_flush",
            channel_id,
            group=f"inventory-{channel_id}",
            task_name=f"inventory-flush-{channel_id}",
        )


# --- the flush -----------------------------------------------------------------------------

FLUSH_BATCH = 2000
MAX_ATTEMPTS = 8
# Rows out of fast retries (or refused outright) are tried again this often, for good.
SLOW_RETRY_SECONDS = 3600.0


@dataclass
class FlushResult:
    pushed: int = 0
    failed: int = 0
    retrying: int = 0
    calls: int = 0
    locked_out: bool = False
    lease_lost: bool = False


def inventory_flush(*, channel_id: int, max_rounds: int = 1000, wait: bool = True) -> FlushResult:
    """Push every due outbox row of the channel: current quantities, in batches within the
    marketplace's limits, skip-and-continue per listing, failures backed off and retried.
    First the bundles recorded for a recount are queued (_recount_bundles).

    Only one flush per channel runs at a time (a lease on the channel row, renewed by a
    heartbeat: omni.leases), so a value read later is never sent before a value read earlier:
    no stale overwrite. With `wait`, a flush that finds the lease held by a flusher that died
    waits for it to lapse (at most LEASE_SECONDS) and takes over; a live holder is left to
    finish, and requeues any work that arrived meanwhile when it lets go.
    """
    result = FlushResult()
    lease = _flush_lease(channel_id)
    taken = lease.take_when_free(flush_queued=False) if wait else lease.take(flush_queued=False)
    if not taken:
        result.locked_out = True
        return result
    try:
        with lease.heartbeat():
            channel = Channel.objects.prefetch_related("outlets").get(pk=channel_id)
            _recount_bundles(channel)  # what arrives later is left for the next flush
            try:
                adapter = adapter_for(channel)
            except AdapterError as exc:  # credentials no key decrypts, or no longer valid
                result.failed = _cannot_push(channel, str(exc))
                return result
            for _ in range(max_rounds):
                batch = _due(channel)
                if not batch:
                    break
                if not lease.renew():  # lapsed and taken over: the new holder goes on
                    result.lease_lost = True
                    break
                _push_batch(channel, adapter, batch, result)
            result.calls = adapter.stats.calls
    finally:
        released = lease.release(flush_queued=False)
    if released and _due_exists(channel_id):
        transaction.on_commit(lambda: flush_request(channel_id=channel_id))
    return result


def inventory_flush_due() -> list[FlushResult]:
    """Flush every active channel with outbox rows due or bundles to recount, one after
    another; a channel that cannot be flushed (unreadable credentials…) is logged and skipped.
    Two queries, then the flushes."""
    due = PendingPush.objects.filter(next_attempt_at__lte=timezone.now())
    channel_ids = set()
    for rows in (due, BundleRecount.objects.all()):
        channel_ids.update(
            rows.filter(channel__is_active=True).values_list("channel_id", flat=True).distinct()
        )
    results = []
    for channel_id in sorted(channel_ids):
        try:
            results.append(inventory_flush(channel_id=channel_id))
        except Exception:  # noqa: BLE001 - one broken channel must not hold up the others
            logger.exception("flush of channel %s failed", channel_id)
    return results


def _cannot_push(channel: Channel, error: str) -> int:
    """The channel cannot be pushed to at all: its due rows are marked failed with the reason
    (for the outbox page and the channel's last error) and wait for the slow retry, by which
    staff may have fixed the credentials. Two updates; the rows marked."""
    error = error[:500]
    Channel.objects.filter(pk=channel.pk).update(last_error=error)
    return PendingPush.objects.filter(channel=channel, next_attempt_at__lte=timezone.now()).update(
        attempts=F("attempts") + 1,
        failed=True,
        last_error=error,
        next_attempt_at=timezone.now() + _slow_retry(),
    )


def _flush_lease(channel_id: int) -> Lease:
    return Lease(
        Channel.objects.filter(pk=channel_id), until="flush_locked_until", token="flush_lease"
    )


def _due_exists(channel_id: int) -> bool:
    due = PendingPush.objects.filter(channel_id=channel_id, next_attempt_at__lte=timezone.now())
    return due.exists() or BundleRecount.objects.filter(channel_id=channel_id).exists()


# What a flush reads of an outbox row and its listing: what it sends and what it records.
PUSH_FIELDS = [
    *(f.name for f in PendingPush._meta.concrete_fields),
    *(
        f"listing__{name}"
        for name in ("variant", "item_id", "variant_ref")
        + ("quantity", "pushed_quantity", "pushed_at", "push_error")
    ),
]


def _due(channel: Channel) -> list[PendingPush]:
    return list(
        PendingPush.objects.filter(channel=channel, next_attempt_at__lte=timezone.now())
        .select_related("listing")
        .only(*PUSH_FIELDS)
        .order_by("next_attempt_at", "pk")[:FLUSH_BATCH]
    )


def _push_batch(channel, adapter, batch: list[PendingPush], result: FlushResult) -> None:
    unmapped = [p for p in batch if p.listing.variant_id is None]
    PendingPush.objects.filter(pk__in=[p.pk for p in unmapped]).delete()
    batch = [p for p in batch if p.listing.variant_id is not None]
    quantities = channel_quantities(
        channel=channel, variant_ids={p.listing.variant_id for p in batch}
    )
    updates = [
        QuantityUpdate(p.listing.item_id, p.listing.variant_ref, quantities[p.listing.variant_id])
        for p in batch
    ]
    try:
        outcomes = adapter.update_quantities(updates)
    except AdapterError as exc:  # the whole call failed: every listing in it waits to retry
        outcomes = [
            PushResult(u.item_id, u.variant_id, ok=False, error=str(exc), retryable=exc.retryable)
            for u in updates
        ]
    by_ref = {(o.item_id, o.variant_id): o for o in outcomes}
    _record(batch, updates, by_ref, result)


def _record(batch, updates, by_ref, result: FlushResult) -> None:
    now = timezone.now()
    done_listings, failed_listings, retry_rows = [], [], []
    for push, update in zip(batch, updates, strict=True):
        outcome = by_ref.get((update.item_id, update.variant_id))
        listing = push.listing
        if outcome is not None and outcome.ok:
            listing.pushed_quantity = listing.quantity = update.quantity
            listing.pushed_at, listing.push_error = now, ""
            done_listings.append((listing, push))
            continue
        error = outcome.error if outcome else "the marketplace did not answer for this listing"
        push.attempts += 1
        push.last_error = listing.push_error = error[:500]
        retryable = outcome.retryable if outcome else True
        push.failed = not retryable or push.attempts >= MAX_ATTEMPTS
        push.next_attempt_at = now + (_slow_retry() if push.failed else _backoff(push.attempts))
        retry_rows.append(push)
        failed_listings.append(listing)
        result.failed += push.failed
        result.retrying += not push.failed
    with transaction.atomic():
        _delete_unless_requested_again([push for _, push in done_listings], retry_rows)
        bulk_set(
            Listing,
            [lst for lst, _ in done_listings],
            ["pushed_quantity", "quantity", "pushed_at", "push_error"],
        )
        bulk_set(Listing, failed_listings, ["push_error"])
        bulk_set(PendingPush, retry_rows, ["attempts", "last_error", "failed", "next_attempt_at"])
    result.pushed += len(done_listings)


def _delete_unless_requested_again(
    pushes: Sequence[PendingPush], retrying: Sequence[PendingPush] = ()
) -> None:
    """Delete sent rows, except those requested again while the push was in flight.

    The rows about to be marked for a retry (`retrying`) are locked with them, all in listing
    order: the order a stock change's `_outbox_upsert` takes them in, so neither can hold a row
    the other waits for while waiting for one it holds (a deadlock).
    """
    _delete_unchanged(
        PendingPush.objects.select_for_update().order_by("listing_id"),
        "pk",
        sorted(push.pk for push in [*pushes, *retrying]),
        {push.pk: push.requested_at for push in pushes},
    )


def _delete_unchanged(locked, key: str, keys: Sequence[Any], read: dict[int, datetime]) -> None:
    """Delete the rows `read` ({pk: requested_at as read}) that nobody requested again since.

    The rows of `locked` (a select_for_update queryset, ordered as writers take its rows) whose
    `key` is one of `keys` are locked first, so a request racing with the delete either lands
    before it (and is kept, its requested_at having moved) or after it (and inserts a fresh
    row). Call inside a transaction. Cost: per chunk of keys (omni.bulk.matching_chunks), one
    statement to lock and one to delete.
    """
    current = {
        pk: requested_at
        for chunk in matching_chunks(locked.values_list("pk", "requested_at"), key, keys)
        for pk, requested_at in chunk
    }
    unchanged = sorted(pk for pk, requested_at in read.items() if current.get(pk) == requested_at)
    for chunk in matching_chunks(locked.model.objects.all(), "pk", unchanged):
        chunk.delete()


def _slow_retry() -> timedelta:
    seconds = getattr(settings, "OMNI_PUSH_SLOW_RETRY_SECONDS", SLOW_RETRY_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))  # noqa: S311 - jitter only


def _backoff(attempts: int) -> timedelta:
    base = getattr(settings, "OMNI_PUSH_BACKOFF_SECONDS", 30.0)
    seconds = min(base * 2 ** (attempts - 1), 3600.0)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only


# --- rule changes ----------------------------------------------------------------------------

RULES_CHUNK = 5000


def stock_rules_changed(
    *, channel_ids: Iterable[int] | None = None, variant_ids: Iterable[int] | None = None
) -> int:
    """Queue a push for every listing whose quantity a rule change changed: a channel's stock
    rules, a priority channel, a product's or a variant's own rule, a bundle's components.

    `channel_ids` None means every channel (a priority channel changes what the others are
    sent); `variant_ids` None means every listing of those channels. In the modes in which
    stock changes are sent unattended (the trigger table's row for RULES_CHANGED); in the
    others the next manual sync sends it. Cost: per channel, _queue_differing's. Returns the
    listings queued.
    """
    channels = Channel.objects.filter(is_active=True).prefetch_related("outlets")
    if channel_ids is not None:
        channels = channels.filter(pk__in=list(channel_ids))
    wanted = None if variant_ids is None else sorted(set(variant_ids))
    return sum(
        _queue_differing(channel, wanted, RULES_CHANGED)
        for channel in channels
        if sends(RULES_CHANGED, channel.inventory_sync_mode)
    )


def _queue_differing(
    channel: Channel, variant_ids: list[int] | None, reason: str, *, flush: bool = True
) -> int:
    """Queue the channel's listings (of `variant_ids`; None: all) whose quantity as last
    scanned or pushed differs from what they should show (push_request, with `flush`).
    Cost per chunk of RULES_CHUNK listings: one read of the listings, the queries of
    channel_quantities, and push_request's. Returns the listings queued."""
    listings = Listing.objects.filter(channel=channel).present().mapped()
    groups = (
        [listings] if variant_ids is None else matching_chunks(listings, "variant_id", variant_ids)
    )
    queued = 0
    for group in groups:
        last = 0
        while rows := list(
            group.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "variant_id", "quantity")[:RULES_CHUNK]
        ):
            last = rows[-1][0]
            expected = channel_quantities(channel=channel, variant_ids={v for _, v, _ in rows})
            differ = [pk for pk, vid, quantity in rows if expected[vid] != quantity]
            if differ:
                with transaction.atomic():
                    count, _ = push_request(
                        channel=channel,
                        listings=next(matching_chunks(Listing.objects.all(), "pk", differ)),
                        reason=reason,
                        flush=flush,
                    )
                queued += count
    return queued


def _recount_bundles(channel: Channel) -> int:
    """Turn the channel's recount rows (written by on_stock_changed) into pushes: the
    bundles containing their components, at any depth, whose listings show another quantity
    than the channel's rules now give (as stock_rules_changed does; a listing whose quantity
    the rules hold where it was is left alone). The pushes carry the newest row's reason.

    A row written again meanwhile (its requested_at moved) is kept for the next round, so
    no change is lost; a round that dies before deleting its rows is done again, which queues
    the same pushes. Cost: one read of the rows, bundles_containing's, _queue_differing's, and
    two statements (per chunk of ids: omni.bulk.matching_chunks) to delete the rows. Returns
    the listings queued.
    """
    rows = list(
        BundleRecount.objects.filter(channel=channel).values_list(
            "pk", "component_id", "reason", "requested_at"
        )
    )
    if not rows:
        return 0
    bundles = bundles_containing({component for _, component, _, _ in rows})
    reason = max(rows, key=lambda row: row[3])[2]
    # the flush that called this pushes them: no other flush is requested
    queued = _queue_differing(channel, sorted(bundles), reason, flush=False) if bundles else 0
    with transaction.atomic():  # locked in component order, as stock changes take them
        _delete_unchanged(
            BundleRecount.objects.select_for_update()
            .filter(channel=channel)
            .order_by("component_id"),
            "component_id",
            sorted(component for _, component, _, _ in rows),
            {pk: requested_at for pk, _, _, requested_at in rows},
        )
    return queued


def stock_rules_changed_request(
    *, channel_ids: Iterable[int] | None = None, variant_ids: Iterable[int] | None = None
) -> None:
    """Run stock_rules_changed in the worker once the change that called it commits."""
    channels = None if channel_ids is None else sorted(set(channel_ids))
    variants = None if variant_ids is None else sorted(set(variant_ids))

    def enqueue() -> None:
        from django_q.tasks import async_task

        async_task("channels.tasks.stock_rules_push", channels, variants, group="stock-rules")

    transaction.on_commit(enqueue)


def on_bundle_changed(sender, bundle_ids: Iterable[int], **kwargs) -> None:
    """Listener of catalog.signals.bundle_changed: the bundles (and the bundles containing
    them) may now make another quantity; their listings are checked once it commits."""
    changed = set(bundle_ids)
    if changed:
        stock_rules_changed_request(variant_ids=changed | bundles_containing(changed))


# --- full syncs ------------------------------------------------------------------------------

DRIFT_SAMPLE = 50


def inventory_sync_run(*, channel: Channel, trigger: str, requested_by: str = "") -> InventorySync:
    """A full sync: report drift, then queue the absolute quantity of every mapped listing.

    `trigger` is one of the three full-sync triggers; whether it runs in the channel's mode is
    the trigger table's call (a sales-channel manual sync runs whatever the mode).
    """
    record = InventorySync.objects.create(
        channel=channel, trigger=trigger, requested_by=requested_by
    )
    if not channel.is_active or not sends(trigger, channel.inventory_sync_mode):
        record.message = (
            f"Nothing sent: {channel} is paused."
            if not channel.is_active
            else f"Nothing sent: a {trigger.replace('_', ' ')} does not sync a channel set to "
            f"“{channel.get_inventory_sync_mode_display()}”."
        )
        record.finished_at = timezone.now()
        record.save()
        return record
    listings = Listing.objects.filter(channel=channel).present().mapped()
    _measure_drift(channel, listings, record)
    with transaction.atomic():
        record.queued, skipped = push_request(channel=channel, listings=listings, reason=trigger)
    record.skipped_duplicates = len(skipped)
    record.skipped_sample = [
        {"sku": row.sku, "item": row.item_id, "variant": row.variant_ref, "title": row.title}
        for row in skipped[:DRIFT_SAMPLE]
    ]
    record.message = _summary(record)
    record.finished_at = timezone.now()
    record.save()
    Channel.objects.filter(pk=channel.pk).update(last_inventory_sync_at=record.finished_at)
    return record


def _measure_drift(channel: Channel, listings, record: InventorySync) -> None:
    rows = list(listings.values_list("sku", "variant_id", "quantity"))
    expected = channel_quantities(channel=channel, variant_ids={vid for _, vid, _ in rows})
    drifted = [(sku, qty, expected[vid]) for sku, vid, qty in rows if qty != expected[vid]]
    record.considered, record.drift = len(rows), len(drifted)
    record.drift_sample = [
        {"sku": sku, "channel": qty, "pos": pos} for sku, qty, pos in drifted[:DRIFT_SAMPLE]
    ]


def _summary(record: InventorySync) -> str:
    text = (
        f"{record.considered} mapped listing(s); {record.drift} differed from the POS; "
        f"{record.queued} queued for push."
    )
    if record.skipped_duplicates:
        text += (
            f" {record.skipped_duplicates} skipped: they share a SKU with another listing and the "
            "channel's duplicate-SKU policy is “skip”."
        )
    return text


def inventory_sync_due(*, now=None) -> list[int]:
    """The recurring job: run a full sync for every channel whose interval has passed."""
    now = now or timezone.now()
    ran = []
    candidates = Channel.objects.filter(
        is_active=True, inventory_sync_mode__in=[Mode.REALTIME, Mode.FULFILLMENT]
    )
    for channel in candidates:
        last = channel.last_inventory_sync_at
        if last is None or now - last >= timedelta(minutes=channel.fulfillment_sync_minutes):
            inventory_sync_run(
                channel=channel, trigger=SyncTrigger.FULFILLMENT_RECURRING, requested_by="schedule"
            )
            ran.append(channel.pk)
    return ran
