"""Price rules: the price a channel is sent is the POS retail price through the channel's rule.

The rule (fields on Channel): a markup in percent, then a fixed amount, then rounding to a step
(to the nearest, up or down), optionally to a price ending in a given amount (900 with a step
of 1,000 gives 12,900); never below zero. A variant may have its own price on a channel
(PriceOverride), which wins over the rule.

Currency: a channel sells in one currency, the POS prices in one (settings.OMNI_POS_CURRENCY).
omni does not convert: a channel whose currency is not the POS's is never sent a price.
`channel_prices` raises PriceProblem for it, so:
- uploads to it are refused, product by product, with that message (a marketplace takes no
  product without a price, and sending the POS's number as another currency would be wrong);
- catalog pushes that carry prices (the synced fields, variants added) are recorded as failed
  with that message; enabling, disabling and deleting items still go, as they carry no price;
- price syncs are refused (the API answers 409), and a rule change queues none.

Price syncs (PriceSync) push the current price of a channel's listed variants after a rule
changed, an override changed, or when staff ask. The POS stays the source, as in catalog
pushes: the price is computed when it is sent, and the marketplace's own edits are overwritten.
A rule change or a manual push sends every mapped listing; an override change (or the retry of
failed pushes) sends only the listings whose last known price (as the last scan saw it, or as
last pushed) differs from the price they should have. Flow:

  price_rules_changed / price_overrides_changed / staff → price_sync_request (one queued sync
  per channel: asking twice returns the queued one) → after commit, a django-q task →
  price_sync_run: the listings in id order, a chunk at a time, their prices computed in bulk
  and sent through `adapter.update_prices` (batched within the marketplace's per-call limit);
  each accepted listing's `price` recorded; counts and progress_at written after each chunk.

Crashes: a running sync writes progress_at at least every HEARTBEAT_SECONDS. The recurring
check (`price_syncs_due`) gives a sync silent for RUNNING_STALE back to a worker, which resumes
it: listings the marketplace was seen holding the rule's price since the sync started are not
sent again, the rest are (sending a price twice is harmless). A queued sync whose task was lost
is queued again; a sync that failed for a reason that may pass (the marketplace unavailable) is
tried again after RETRY_AFTER. Only one sync of a channel runs at a time, so a price computed
earlier is never sent after a price computed later.
"""

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, TextIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from catalog.exceptions import UnknownSku
from catalog.imports.reading import (
    BadCell,
    Column,
    ImportResult,
    Progress,
    RowError,
    decimal_cell,
    read_csv,
)
from catalog.models import Variant, sku_key
from catalog.selectors import variant_ids_by_sku_key
from channels.adapters.base import AdapterError, CredentialsError, PriceUpdate, PushResult
from channels.exceptions import ChannelError
from channels.models import Channel, Listing, PriceOverride, PriceSync
from channels.services import adapter_for
from omni.bulk import bulk_set, chunks
from omni.leases import beating

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ROUND_MODES = {"nearest": "to the nearest", "up": "up", "down": "down"}


class PriceProblem(ChannelError):
    """The channel cannot be sent prices: it sells in another currency than the POS."""

    def __init__(self, channel: Channel, pos_currency: str) -> None:
        self.channel = channel
        self.currency = channel.currency
        self.pos_currency = pos_currency
        super().__init__(
            f"{channel} sells in {channel.currency}, the POS prices in {pos_currency}: omni "
            f"does not convert currencies; set the channel's prices there or its currency to "
            f"{pos_currency}."
        )


def pos_currency() -> str:
    return str(getattr(settings, "OMNI_POS_CURRENCY", "IDR")).strip().upper() or "IDR"


def price_problem(channel: Channel) -> PriceProblem | None:
    """Why the channel cannot be sent prices, or None when it can. No query."""
    pos = pos_currency()
    if (channel.currency or "").strip().upper() != pos:
        return PriceProblem(channel, pos)
    return None


# --- the rule -----------------------------------------------------------------------------------


def channel_price(channel: Channel, retail_price: Decimal) -> Decimal:
    """The price `channel`'s rule makes of a POS retail price: the markup in percent, then the
    amount, then the rounding; never negative; two decimal places. No query."""
    return _rounded(channel, _marked_up(channel, retail_price))


def _marked_up(channel: Channel, retail_price: Decimal) -> Decimal:
    percent = channel.price_markup_percent or Decimal("0")
    amount = channel.price_markup_amount or Decimal("0")
    return retail_price * (100 + percent) / 100 + amount


def _rounded(channel: Channel, price: Decimal) -> Decimal:
    step = channel.price_round_step
    if not step or step <= 0:
        return _cents(max(price, Decimal("0")))
    ending = channel.price_ending or Decimal("0")
    return round_to_step(price, step, ending, channel.price_round_mode).quantize(CENT)


def round_to_step(price: Decimal, step: Decimal, ending: Decimal, mode: str) -> Decimal:
    """The number ≡ `ending` (mod `step`) nearest to `price` (a tie goes up), at or above it
    ("up"), or at or below it ("down"); never negative: when the one chosen would be, the one
    at or above max(price, 0)."""
    below = ((price - ending) / step).to_integral_value(rounding=ROUND_FLOOR) * step + ending
    above = below if below == price else below + step
    if mode == "down":
        chosen = below
    elif mode == "up":
        chosen = above
    else:
        chosen = above if above - price <= price - below else below
    if chosen < 0:
        return round_to_step(max(price, Decimal("0")), step, ending, "up")
    return chosen


@dataclass(frozen=True, slots=True)
class PriceStep:
    label: str
    price: Decimal


def price_steps(channel: Channel, retail_price: Decimal) -> list[PriceStep]:
    """How the rule makes its price of `retail_price`, step by step, for staff and the API:
    each step's price shown to the cent, the last one `channel_price(channel, retail_price)`.
    No query."""
    steps = [PriceStep("POS retail price", retail_price)]
    price = retail_price
    percent = channel.price_markup_percent or Decimal("0")
    if percent:
        price = retail_price * (100 + percent) / 100
        steps.append(PriceStep(f"markup {percent.normalize():+f}%", _cents(price)))
    amount = channel.price_markup_amount or Decimal("0")
    if amount:
        price += amount
        steps.append(PriceStep(f"{'plus' if amount > 0 else 'minus'} {abs(amount)}", _cents(price)))
    final = _rounded(channel, price)
    step = channel.price_round_step
    if step:
        ending = channel.price_ending or Decimal("0")
        mode = ROUND_MODES.get(channel.price_round_mode, channel.price_round_mode)
        label = f"rounded {mode} to a step of {step}"
        if ending:
            label += f", ending in {ending}"
        steps.append(PriceStep(label + (" (never below zero)" if price < 0 else ""), final))
    elif price < 0:
        steps.append(PriceStep("never below zero", final))
    return steps


def _cents(price: Decimal) -> Decimal:
    return price.quantize(CENT, ROUND_HALF_UP)


def channel_prices(*, channel: Channel, variant_ids: Iterable[int]) -> dict[int, Decimal]:
    """{variant id: the price sent to `channel`}: the variant's override on the channel, else
    the rule's price of its retail price. Variants that do not exist are left out.

    PriceProblem when the channel sells in another currency (nothing may be sent).
    Cost: two queries (retail prices, overrides) whatever the number of variants.
    """
    problem = price_problem(channel)
    if problem is not None:
        raise problem
    ids = sorted(set(variant_ids))
    if not ids:
        return {}
    retail = dict(Variant.objects.filter(pk__in=ids).values_list("pk", "retail_price"))
    prices = {pk: channel_price(channel, price) for pk, price in retail.items()}
    overrides = PriceOverride.objects.filter(channel=channel, variant_id__in=ids)
    for variant_id, price in overrides.values_list("variant_id", "price"):
        if variant_id in prices:
            prices[variant_id] = price
    return prices


@dataclass(frozen=True)
class PriceExplanation:
    """One variant's price on one channel, and how it came about."""

    channel_id: int
    sku: str
    variant_id: int
    currency: str
    pos_currency: str
    pos_price: Decimal
    steps: list[PriceStep]
    rule_price: Decimal | None  # None when the currency problem stops the rule
    override: Decimal | None
    price: Decimal | None  # what is sent; None when nothing is
    problem: str = ""


def price_explain(*, channel: Channel, sku: str) -> PriceExplanation:
    """The POS price of the variant with `sku`, the rule's steps, its override on the channel
    and the price sent, or the currency problem. UnknownSku when no variant has it.
    Cost: two queries."""
    variant = Variant.objects.by_sku(sku).only("pk", "sku", "retail_price").first()
    if variant is None:
        raise UnknownSku(sku)
    override = (
        PriceOverride.objects.filter(channel=channel, variant=variant)
        .values_list("price", flat=True)
        .first()
    )
    problem = price_problem(channel)
    steps = price_steps(channel, variant.retail_price) if problem is None else []
    rule = channel_price(channel, variant.retail_price) if problem is None else None
    sent = None if problem else (override if override is not None else rule)
    return PriceExplanation(
        channel_id=channel.pk,
        sku=variant.sku,
        variant_id=variant.pk,
        currency=channel.currency,
        pos_currency=pos_currency(),
        pos_price=variant.retail_price,
        steps=steps,
        rule_price=rule,
        override=override,
        price=sent,
        problem=str(problem) if problem else "",
    )


# --- overrides ---------------------------------------------------------------------------------

PRICE_PARSER = decimal_cell(14, 2)


def price_value(raw: Decimal | str, column: str = "price") -> Decimal:
    """A price as staff or a client wrote it: a non-negative amount with at most two decimals
    that the column holds. ValidationError naming the problem."""
    try:
        return PRICE_PARSER(column, str(raw).strip())
    except BadCell as exc:
        raise ValidationError({column: str(exc)}) from None


def price_override_set(*, channel: Channel, sku: str, price: Decimal | str) -> PriceOverride:
    """Give the variant with `sku` its own price on `channel` (creating or changing its
    override). Setting the price it already has changes nothing and queues nothing; a change
    queues a price sync of the channel's listings whose price differs, after commit.
    UnknownSku for an unknown SKU, ValidationError for a price that is not one.
    Cost: three queries, plus the sync request when the price changed."""
    value = price_value(price)
    variant = Variant.objects.by_sku(sku).only("pk").first()
    if variant is None:
        raise UnknownSku(sku)
    with transaction.atomic():
        override, created = PriceOverride.objects.select_for_update().get_or_create(
            channel=channel, variant=variant, defaults={"price": value}
        )
        if not created and override.price != value:
            override.price = value
            override.save(update_fields=["price"])
        elif not created:
            return override
        price_overrides_changed(channel=channel)
    return override


def price_override_delete(*, channel: Channel, sku: str) -> bool:
    """Remove the variant's override on `channel`: its listings go back to the rule's price
    (a sync is queued). False when it had none (nothing changes). UnknownSku for an unknown
    SKU. Cost: two queries, plus the sync request when one was deleted."""
    variant = Variant.objects.by_sku(sku).only("pk").first()
    if variant is None:
        raise UnknownSku(sku)
    with transaction.atomic():
        deleted, _ = PriceOverride.objects.filter(channel=channel, variant=variant).delete()
        if deleted:
            price_overrides_changed(channel=channel)
    return bool(deleted)


def price_overrides_remove(*, override_ids: Iterable[int]) -> int:
    """Remove these overrides (any channels): their variants' listings go back to the rule's
    price, one sync queued per channel touched. The number removed. Cost: one read, one
    delete, and one sync request per channel."""
    ids = list(override_ids)
    with transaction.atomic():
        channel_ids = set(
            PriceOverride.objects.filter(pk__in=ids).values_list("channel_id", flat=True)
        )
        removed, _ = PriceOverride.objects.filter(pk__in=ids).delete()
        for channel in Channel.objects.filter(pk__in=channel_ids).order_by("pk"):
            price_overrides_changed(channel=channel)
    return removed


OVERRIDE_COLUMNS: tuple[Column, ...] = (
    Column("sku", "Variant SKU; compared trimmed and ignoring letter case.", required=True),
    Column(
        "price",
        "The variant's price on the channel, in its currency: an amount ≥ 0 with at most two "
        "decimals, a dot for decimals and no thousands separator (e.g. 129900 or 12.50).",
        required=True,
    ),
)
OVERRIDE_ALIASES = {"override": "price", "channel_price": "price"}
# Rows per upsert.
WRITE_CHUNK = 2000


@dataclass(slots=True)
class _OverrideRow:
    line: int
    sku: str
    key: str
    price: Decimal | None = None
    variant_id: int | None = None
    errors: list[str] = field(default_factory=list)


def price_overrides_import(
    *, channel: Channel, stream: TextIO, partial: bool = False, dry_run: bool = False
) -> ImportResult:
    """Set overrides on `channel` from a CSV of sku,price rows (OVERRIDE_COLUMNS).

    Every row is checked first (a known SKU, a price that is a non-negative amount with at most
    two decimals, each SKU once); with a bad row and not `partial`, nothing is written.
    `created`, `updated` and `unchanged` count rows; importing the same file twice changes
    nothing the second time. One price sync is queued for all the changes, after commit.
    Raises ImportFileError for a file that cannot be read (not CSV, a header it refuses).
    Cost: one query for the SKUs, one for the current overrides, and one upsert per
    WRITE_CHUNK changed rows.
    """
    table = read_csv(
        stream, columns=OVERRIDE_COLUMNS, aliases=OVERRIDE_ALIASES, progress=Progress(None)
    )
    index = table.index()
    rows = [
        _override_row(record.line, record.values, record.problem, index) for record in table.records
    ]
    _check_repeated(rows)
    found = variant_ids_by_sku_key({row.key for row in rows if row.key})
    for row in rows:
        row.variant_id = found.get(row.key)
        if row.sku and row.variant_id is None:
            row.errors.append(f"no variant has the SKU {row.sku!r}")
    result = ImportResult(rows=len(rows), dry_run=dry_run)
    result.errors = [RowError(row.line, "; ".join(row.errors)) for row in rows if row.errors]
    table.refuse_if_unreadable(result.errors)
    if result.errors and not partial:
        return result
    good = {row.variant_id: row.price for row in rows if not row.errors}
    current = dict(
        PriceOverride.objects.filter(channel=channel, variant_id__in=list(good)).values_list(
            "variant_id", "price"
        )
    )
    changed = {vid: price for vid, price in good.items() if current.get(vid) != price}
    result.created = sum(1 for vid in changed if vid not in current)
    result.updated = len(changed) - result.created
    result.unchanged = len(good) - len(changed)
    if dry_run or not good:
        return result
    with transaction.atomic():
        _upsert_overrides(channel, changed)
        if changed:
            price_overrides_changed(channel=channel)
    result.written = True
    return result


def _override_row(
    line: int, values: list[str], problem: str, index: dict[str, int]
) -> _OverrideRow:
    sku, raw = values[index["sku"]], values[index["price"]]
    row = _OverrideRow(line, sku, sku_key(sku))
    if problem:
        row.errors.append(problem)
    if not sku:
        row.errors.append("sku is required")
    if not raw:
        row.errors.append("price is required")
    else:
        try:
            row.price = PRICE_PARSER("price", raw)
        except BadCell as exc:
            row.errors.append(str(exc))
    return row


def _check_repeated(rows: list[_OverrideRow]) -> None:
    """Refuse every row whose SKU (normalised) is on another row too: which price is meant?"""
    lines: dict[str, list[int]] = {}
    for row in rows:
        if row.key:
            lines.setdefault(row.key, []).append(row.line)
    for row in rows:
        others = [line for line in lines.get(row.key, ()) if line != row.line]
        if others:
            row.errors.append(
                f"the SKU {row.sku!r} is also on line {', '.join(map(str, others))} "
                "(SKUs are compared ignoring letter case and surrounding spaces)"
            )


def _upsert_overrides(channel: Channel, prices: dict[int, Decimal]) -> None:
    rows = [
        PriceOverride(channel=channel, variant_id=vid, price=price)
        for vid, price in sorted(prices.items())
    ]
    for chunk in chunks(rows, WRITE_CHUNK):
        PriceOverride.objects.bulk_create(
            chunk,
            update_conflicts=True,
            unique_fields=["channel", "variant"],
            update_fields=["price"],
        )


# --- price syncs: requesting -------------------------------------------------------------------

RULES_CHANGED = "rules_changed"
OVERRIDES_CHANGED = "overrides_changed"
MANUAL = "manual"
RETRY = "retry"
# Why a sync runs, and whether it sends every mapped listing (True) or only those whose last
# known price differs from the one they should have (False).
REASONS: dict[str, tuple[str, bool]] = {
    RULES_CHANGED: ("Price rule changed", True),
    MANUAL: ("Pushed by hand", True),
    OVERRIDES_CHANGED: ("Price overrides changed", False),
    RETRY: ("Retry of failed pushes", False),
}


def reason_label(reason: str) -> str:
    return REASONS.get(reason, (reason.replace("_", " ").capitalize(), True))[0]


def sends_every_listing(reason: str) -> bool:
    """Whether a sync for `reason` sends every mapped listing (unknown reasons do)."""
    return REASONS.get(reason, ("", True))[1]


def price_sync_request(
    *, channel: Channel, reason: str, requested_by: str = "", enqueue: bool = True
) -> PriceSync:
    """Queue a price sync of `channel`, run by a worker once the transaction commits.

    One queued sync per channel: asking while one is queued returns it (asking twice has one
    effect); a queued sync that sends only differing listings becomes one that sends every
    listing when that is what is asked. A running sync is left to finish and a new one queued
    after it, which then sends the prices as they are by then.
    PriceProblem when the channel sells in another currency.
    `enqueue=False` leaves running it to the caller (a command that runs it in its own
    process). Cost: the channel's row lock, one read, and one write when a sync is created or
    widened.
    """
    problem = price_problem(channel)
    if problem is not None:
        raise problem
    with transaction.atomic():
        # Serialises requests for one channel (PostgreSQL; SQLite writes one at a time anyway).
        Channel.objects.select_for_update().filter(pk=channel.pk).values_list("pk").first()
        queued = (
            PriceSync.objects.filter(channel=channel, status=PriceSync.Status.QUEUED)
            .order_by("pk")
            .first()
        )
        if queued is not None:
            if sends_every_listing(reason) and not sends_every_listing(queued.reason):
                queued.reason, queued.requested_by = reason, requested_by[:120]
                queued.save(update_fields=["reason", "requested_by"])
            return queued
        sync = PriceSync.objects.create(
            channel=channel, reason=reason[:40], requested_by=requested_by[:120]
        )
    if enqueue:
        transaction.on_commit(lambda: _enqueue(sync.pk))
    return sync


def price_rules_changed(*, channel: Channel, requested_by: str = "") -> PriceSync | None:
    """What a channel save calls when any price field changed (currency, markup, rounding):
    queue a sync sending every mapped listing its new price. None, queuing nothing, for a
    channel that sells in another currency (price_problem says why)."""
    if price_problem(channel) is not None:
        return None
    return price_sync_request(channel=channel, reason=RULES_CHANGED, requested_by=requested_by)


def price_overrides_changed(*, channel: Channel, requested_by: str = "") -> PriceSync | None:
    """What a change of overrides calls (one call for any number of them): queue a sync of the
    listings whose price now differs. None for a channel that sells in another currency."""
    if price_problem(channel) is not None:
        return None
    return price_sync_request(channel=channel, reason=OVERRIDES_CHANGED, requested_by=requested_by)


def _enqueue(sync_id: int) -> None:
    from django_q.tasks import async_task

    async_task("channels.tasks.price_sync_run", sync_id, group="price-syncs")


# --- price syncs: running ----------------------------------------------------------------------

CHUNK = 1000  # listings read, priced and recorded at a time
SAMPLE = 20  # failures kept with the marketplace's words
HEARTBEAT_SECONDS = 10.0
RUNNING_STALE = timedelta(minutes=3)  # a running sync silent this long has lost its worker
QUEUED_STALE = timedelta(minutes=15)  # a queued sync not started this long: its task was lost
RETRY_AFTER = timedelta(hours=1)  # a sync that failed for a passing reason is tried again


class _Hold:
    """A running attempt's hold on its sync: the progress time it last wrote. Whoever gives
    the sync to another worker moves that time, so this attempt's next write matches no row
    and it stops. Shared by the attempt and its heartbeat thread."""

    def __init__(self, sync_id: int, mark: datetime) -> None:
        self.rows = PriceSync.objects.filter(pk=sync_id, status=PriceSync.Status.RUNNING)
        self.mark = mark
        self.lost = False
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> bool:
        """Move progress_at on (and write `fields`) if the sync is still this attempt's."""
        with self._lock:
            if self.lost:
                return False
            now = max(timezone.now(), self.mark + timedelta(microseconds=1))
            if self.rows.filter(progress_at=self.mark).update(progress_at=now, **fields):
                self.mark = now
            else:
                self.lost = True
            return not self.lost


@dataclass
class _Tally:
    considered: int = 0
    pushed: int = 0
    failed: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, sku: str, item_id: str, variant_ref: str, error: str, retryable: bool) -> None:
        self.failed += 1
        entry = {
            "sku": sku,
            "item": item_id,
            "variant": variant_ref,
            "error": error[:300],
            "retryable": retryable,
        }
        # The first SAMPLE, plus the first that may pass if none of those may: whether to try
        # again later is read from the sample.
        if len(self.sample) < SAMPLE or (
            retryable and not any(s["retryable"] for s in self.sample)
        ):
            self.sample.append(entry)


def price_sync_run(
    *, sync_id: int, on_chunk: Callable[[PriceSync], None] | None = None
) -> PriceSync:
    """Run a queued price sync to the end (see the module docstring).

    Left queued, without a call, while its channel is paused or another sync of the channel is
    running (the one running queues it again when it ends). Failed, without a call, when the
    channel sells in another currency or its adapter cannot be built. A sync already taken by
    a worker (a task delivered twice) is left to it. `on_chunk(sync)` is called after each
    chunk is recorded.

    Cost per CHUNK listings: one read of the listings, two for their prices, the marketplace's
    calls (as few as its per-call limit allows), one bulk write of the accepted prices and one
    progress write.
    """
    sync = PriceSync.objects.select_related("channel").get(pk=sync_id)
    channel = sync.channel
    if sync.status != PriceSync.Status.QUEUED:
        return sync
    if not channel.is_active:
        _note(sync, f"Waiting: {channel} is paused; its prices are sent once it is active again.")
        return sync
    claimed = _claim(sync)
    if claimed is None:
        return sync
    hold, resumed = claimed
    with beating(hold.write, every=HEARTBEAT_SECONDS):
        return _run(sync, channel, hold, resumed, on_chunk)


def _note(sync: PriceSync, message: str) -> None:
    PriceSync.objects.filter(pk=sync.pk, status=PriceSync.Status.QUEUED).update(message=message)
    sync.message = message


def _claim(sync: PriceSync) -> tuple[_Hold, bool] | None:
    """Take the sync for this worker, and whether an earlier attempt had started it: None when
    another sync of the channel is running (this one stays queued) or a worker has it
    already."""
    now = timezone.now()
    with transaction.atomic():
        Channel.objects.select_for_update().filter(pk=sync.channel_id).values_list("pk").first()
        other = (
            PriceSync.objects.filter(channel_id=sync.channel_id, status=PriceSync.Status.RUNNING)
            .exclude(pk=sync.pk)
            .first()
        )
        if other is not None:
            _note(sync, f"Waiting for price sync #{other.pk} of the channel to end.")
            return None
        resumed = sync.started_at is not None
        message = "Resumed after its worker stopped." if resumed else ""
        claimed = PriceSync.objects.filter(pk=sync.pk, status=PriceSync.Status.QUEUED).update(
            status=PriceSync.Status.RUNNING,
            started_at=sync.started_at or now,
            progress_at=now,
            message=message,
        )
    if not claimed:
        return None
    sync.status, sync.progress_at, sync.message = PriceSync.Status.RUNNING, now, message
    sync.started_at = sync.started_at or now
    return _Hold(sync.pk, now), resumed


def _run(sync: PriceSync, channel: Channel, hold: _Hold, resumed: bool, on_chunk) -> PriceSync:
    tally = _Tally()
    problem = price_problem(channel)
    if problem is not None:
        return _finish(sync, hold, tally, calls=0, error=str(problem), retryable=False)
    try:
        adapter = adapter_for(channel)
    except AdapterError as exc:  # credentials no key decrypts, or no longer valid
        return _finish(sync, hold, tally, calls=0, error=str(exc), retryable=exc.retryable)
    every = sends_every_listing(sync.reason)
    calls_before = sync.calls
    try:
        for rows in _listing_chunks(channel):
            _push_chunk(sync, channel, adapter, rows, tally, every=every, resumed=resumed)
            progress = {
                "considered": tally.considered,
                "pushed": tally.pushed,
                "failed": tally.failed,
                "calls": calls_before + adapter.stats.calls,
                "failure_sample": tally.sample,
            }
            if not hold.write(**progress):
                return sync  # given to another worker meanwhile: it goes on
            if on_chunk is not None:
                on_chunk(sync)
    except (CredentialsError, PriceProblem) as exc:  # no further call can succeed
        calls = calls_before + adapter.stats.calls
        return _finish(sync, hold, tally, calls=calls, error=str(exc), retryable=False)
    except Exception as exc:
        logger.exception("price sync %s of channel %s failed", sync.pk, channel.pk)
        calls = calls_before + adapter.stats.calls
        _finish(sync, hold, tally, calls=calls, error=f"Unexpected error: {exc}", retryable=True)
        raise
    return _finish(sync, hold, tally, calls=calls_before + adapter.stats.calls)


def _listing_chunks(channel: Channel):
    """The channel's mapped present listings in id order, CHUNK at a time (keyset: each chunk
    one query, however far in)."""
    listings = Listing.objects.filter(channel=channel).present().mapped().order_by("pk")
    fields = ("pk", "item_id", "variant_ref", "sku", "variant_id", "price", "updated_at")
    last = 0
    while True:
        rows = list(listings.filter(pk__gt=last).values_list(*fields)[:CHUNK])
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _push_chunk(sync, channel, adapter, rows: list, tally: _Tally, *, every: bool, resumed: bool):
    prices = channel_prices(channel=channel, variant_ids={row[4] for row in rows})
    tally.considered += len(rows)
    send = []
    for row in rows:
        pk, item_id, ref, sku, variant_id, known, updated_at = row
        price = prices.get(variant_id)
        if price is None:
            continue  # the variant was deleted meanwhile: its listing is unmapped
        seen_since = resumed and updated_at >= sync.started_at
        if known == price and (not every or seen_since):
            continue  # the marketplace holds it already
        send.append((row, PriceUpdate(item_id, ref, price)))
    if not send:
        return
    try:
        outcomes = adapter.update_prices([update for _, update in send])
    except CredentialsError:
        raise
    except AdapterError as exc:  # the whole call failed: every listing in it
        outcomes = [
            PushResult(u.item_id, u.variant_id, ok=False, error=str(exc), retryable=exc.retryable)
            for _, u in send
        ]
    _record(send, outcomes, tally)


def _record(send: list, outcomes: Sequence[PushResult], tally: _Tally) -> None:
    by_ref = {(o.item_id, o.variant_id): o for o in outcomes}
    now = timezone.now()
    accepted = []
    for row, update in send:
        outcome = by_ref.get((update.item_id, update.variant_id))
        if outcome is not None and outcome.ok:
            accepted.append(Listing(pk=row[0], price=update.price, updated_at=now))
            continue
        error = outcome.error if outcome else "the marketplace did not answer for this listing"
        retryable = outcome.retryable if outcome else True
        tally.fail(row[3], update.item_id, update.variant_id, error, retryable)
    bulk_set(Listing, accepted, ["price", "updated_at"])
    tally.pushed += len(accepted)


def _finish(
    sync: PriceSync,
    hold: _Hold,
    tally: _Tally,
    *,
    calls: int,
    error: str = "",
    retryable: bool = False,
) -> PriceSync:
    """Record the outcome (if the sync is still this attempt's), then queue the channel's next
    queued sync, which waited for this one."""
    if error:
        tally.sample = [
            {"sku": "", "item": "", "variant": "", "error": error[:300], "retryable": retryable},
            *tally.sample,
        ][: SAMPLE + 1]
    failed = bool(error) or tally.failed > 0
    status = PriceSync.Status.FAILED if failed else PriceSync.Status.SUCCEEDED
    message = _summary(sync, tally, error)
    now = timezone.now()
    done = hold.write(
        status=status,
        finished_at=now,
        considered=tally.considered,
        pushed=tally.pushed,
        failed=tally.failed,
        calls=calls,
        failure_sample=tally.sample,
        message=message,
    )
    if done:
        sync.status, sync.finished_at, sync.message = status, now, message
        sync.considered, sync.pushed, sync.failed = tally.considered, tally.pushed, tally.failed
        sync.calls, sync.failure_sample = calls, tally.sample
        _queue_next(sync.channel_id)
    return sync


def _summary(sync: PriceSync, tally: _Tally, error: str) -> str:
    before = f"{sync.message} " if sync.message else ""
    if error and not tally.considered:
        return f"{before}Nothing sent: {error}"
    right = tally.considered - tally.pushed - tally.failed
    text = f"{tally.considered:,} listed variant(s): {tally.pushed:,} price(s) sent"
    if tally.failed:
        text += f", {tally.failed:,} refused"
    if right:
        text += f", {right:,} already at their price"
    text += "."
    if error:
        text += f" Stopped: {error}"
    elif tally.failed:
        text += " The refused ones keep their old price on the channel: see the sample."
    return before + text


def _queue_next(channel_id: int) -> None:
    queued = (
        PriceSync.objects.filter(channel_id=channel_id, status=PriceSync.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if queued is not None:
        transaction.on_commit(lambda: _enqueue(queued))


# --- price syncs: the recurring check ----------------------------------------------------------


@dataclass
class DueReport:
    resumed: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)


def price_syncs_due(*, now: datetime | None = None) -> DueReport:
    """The recurring check: no sync is lost for good.

    - a running sync silent for RUNNING_STALE lost its worker: it is queued again and resumed
      (or, when another sync of its channel is queued, which sends the prices anew, ended);
    - a queued sync not started for QUEUED_STALE lost its task: it is queued again (a paused
      channel's wait until it is active);
    - the latest sync of a channel that failed RETRY_AFTER ago for a reason that may pass is
      followed by a sync of the listings whose price still differs.
    Cost: three reads, then one write per sync acted on (few: one per channel at most).
    """
    now = now or timezone.now()
    report = DueReport()
    for sync in PriceSync.objects.filter(
        status=PriceSync.Status.RUNNING, progress_at__lt=now - RUNNING_STALE
    ).order_by("pk"):
        if _give_back(sync, now):
            report.resumed.append(sync.pk)
    lost = PriceSync.objects.filter(
        Q(progress_at__isnull=True) | Q(progress_at__lt=now - QUEUED_STALE),
        status=PriceSync.Status.QUEUED,
        created_at__lt=now - QUEUED_STALE,
        channel__is_active=True,
    ).order_by("pk")
    for sync in lost:
        if PriceSync.objects.filter(pk=sync.pk, status=PriceSync.Status.QUEUED).update(
            progress_at=now
        ):
            transaction.on_commit(lambda pk=sync.pk: _enqueue(pk))
            report.requeued.append(sync.pk)
    for sync in _failed_latest(now):
        if any(entry.get("retryable") for entry in sync.failure_sample or []):
            try:
                retry = price_sync_request(
                    channel=sync.channel, reason=RETRY, requested_by="schedule"
                )
            except PriceProblem:
                continue
            report.retried.append(retry.pk)
    return report


def _give_back(sync: PriceSync, now: datetime) -> bool:
    """A running sync whose worker stopped: queued again to be resumed, or ended when a sync
    queued after it will send the prices anew anyway."""
    newer = (
        PriceSync.objects.filter(channel_id=sync.channel_id, status=PriceSync.Status.QUEUED)
        .values_list("pk", flat=True)
        .first()
    )
    stale = PriceSync.objects.filter(
        pk=sync.pk, status=PriceSync.Status.RUNNING, progress_at=sync.progress_at
    )
    if newer is not None:
        ended = stale.update(
            status=PriceSync.Status.FAILED,
            finished_at=now,
            progress_at=now,
            message=f"Abandoned: its worker stopped answering; price sync #{newer} sends the "
            "prices anew.",
        )
        if ended:
            transaction.on_commit(lambda: _enqueue(newer))
        return False
    if not stale.update(status=PriceSync.Status.QUEUED, progress_at=now):
        return False
    transaction.on_commit(lambda: _enqueue(sync.pk))
    return True


def _failed_latest(now: datetime):
    """The latest sync of each active channel, when it failed RETRY_AFTER ago or more."""
    later = PriceSync.objects.filter(channel_id=OuterRef("channel_id"), pk__gt=OuterRef("pk"))
    return (
        PriceSync.objects.filter(
            status=PriceSync.Status.FAILED,
            finished_at__lte=now - RETRY_AFTER,
            channel__is_active=True,
        )
        .exclude(Exists(later))
        .select_related("channel")
        .order_by("pk")
    )


# --- what the admin and the API show of a sync -------------------------------------------------


def listed_counts(channel_ids: Collection[int]) -> dict[int, int]:
    """{channel id: its mapped present listings}: the length of a sync still under way.
    One query."""
    rows = (
        Listing.objects.filter(channel_id__in=list(channel_ids))
        .present()
        .mapped()
        .order_by()
        .values("channel_id")
        .annotate(n=Count("pk"))
        .values_list("channel_id", "n")
    )
    return dict(rows)
