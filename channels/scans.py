"""Scans: read a channel's catalog and map its listings to POS variants by normalised SKU."""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from catalog.selectors import variant_ids_by_sku_key
from channels.adapters.base import AdapterError, CallStats, CredentialsError, RemoteListing
from channels.exceptions import ChannelError, ScanAlreadyRunning
from channels.inventory import push_request, sends
from channels.listing_store import (
    SCANNED,
    ListingRow,
    listings_mark_duplicates,
    listings_of_items,
    listings_seen,
    listings_upsert,
)
from channels.models import LISTING_RETURNED, Channel, Listing, Scan, SyncTrigger
from channels.services import adapter_for
from channels.sku_rules import SkuMapper, sku_rules_rematch_request
from omni.leases import beating

logger = logging.getLogger(__name__)

# Scan Updated Products asks for changes since the last scan minus this much, so a change made
# on the marketplace while the last scan was running, or under clock skew, is not missed.
WATERMARK_OVERLAP = timedelta(minutes=5)
# Unseen items a full scan asks after one by one before marking their listings removed
# (_confirm_unseen): under a minute of calls on a marketplace answering in 100 ms.
CONFIRM_ITEMS = 1000

# A running scan's heartbeat moves its progress time this often; one silent for RUNNING_STALE
# has lost its worker. A queued scan whose task never started (a lost task, a worker down) is
# given QUEUED_STALE, since a busy worker may take a while to reach it.
HEARTBEAT_SECONDS = 10.0
RUNNING_STALE = timedelta(seconds=60)
QUEUED_STALE = timedelta(minutes=15)
OPEN = [Scan.Status.QUEUED, Scan.Status.RUNNING]

# A scan writes in batches of about this many listings (several marketplace pages). Between
# writes, its progress (pages and listings read) is saved at least every PROGRESS_SECONDS, so
# the bar moves while a slow marketplace fills a batch.
WRITE_BATCH = 5000
PROGRESS_SECONDS = 2.0

# The safety valve: a full scan that would mark more than this share of the channel's present
# listings removed marks none and waits for staff to confirm. A project setting
# (OMNI_SCAN_REMOVAL_CONFIRM_SHARE) overrides it.
REMOVAL_CONFIRM_SHARE = 0.2

# Where the scanned status sits in a row of `listings_of_items`: (id, item_id, variant_ref,
# *SCANNED, is_manual_link).
_OLD_STATUS = 3 + SCANNED.index("status")


class RemovalNotHeld(ChannelError):
    """A removal confirmation for a scan that holds none."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        super().__init__(
            f"Scan #{scan.pk} holds no removal to confirm "
            f"(it is {scan.get_status_display().lower()})."
        )


def scan_request(
    *, channel: Channel, kind: str, requested_by: str = "", enqueue: bool = True
) -> Scan:
    """Record a queued scan and, unless told not to, enqueue it once the transaction commits.

    Raises ScanAlreadyRunning if the channel already has a queued or running scan. A scan that
    has lost its worker (a running scan whose heartbeat stopped, a queued one never started)
    is marked failed and replaced.
    """
    for _attempt in range(2):
        try:
            with transaction.atomic():
                scan = Scan.objects.create(
                    channel=channel, kind=kind, requested_by=requested_by[:120]
                )
            break
        except IntegrityError:
            running = Scan.objects.filter(channel=channel, status__in=OPEN).first()
            if running is None or not _abandon_if_stale(running):
                raise ScanAlreadyRunning(channel, running) from None
    else:  # pragma: no cover - a second race lost to another request
        raise ScanAlreadyRunning(channel, None)
    if enqueue:
        transaction.on_commit(lambda: _enqueue(scan.pk))
    return scan


def _abandon_if_stale(scan: Scan) -> bool:
    running = scan.status == Scan.Status.RUNNING
    last_sign_of_life = scan.progress_at or scan.started_at or scan.created_at
    stale_after = RUNNING_STALE if running else QUEUED_STALE
    if timezone.now() - last_sign_of_life < stale_after:
        return False
    why = (
        "its worker stopped answering mid-scan"
        if running
        else "no worker started it (was the worker stopped?)"
    )
    return bool(
        Scan.objects.filter(pk=scan.pk, status=scan.status).update(
            status=Scan.Status.FAILED,
            finished_at=timezone.now(),
            error=f"Abandoned: {why}; a new scan replaced it.",
        )
    )


def _enqueue(scan_id: int) -> None:
    from django_q.tasks import async_task

    async_task("channels.tasks.scan_run", scan_id, group="scans", task_name=f"scan-{scan_id}")


@dataclass
class _Counts:
    seen: int = 0
    new: int = 0
    changed: int = 0
    matched: int = 0
    pages: int = 0


@dataclass(frozen=True, slots=True)
class _Removals:
    """What the end of a full scan did about the listings it did not see."""

    removed: int = 0
    held: int = 0
    note: str = ""


NOTHING_REMOVED = _Removals()


def scan_run(*, scan_id: int, on_page: Callable[[Scan], None] | None = None) -> Scan:
    """Run a queued scan to the end. The channel's watermark moves only if it succeeds.

    A full scan marks the listings it did not see removed only once the adapter has read the
    whole catalog (an incomplete read is an AdapterError: the scan fails and removes nothing),
    once the marketplace, asked item by item, no longer has them (`_confirm_unseen`: a list
    paged by offset skips an item for each one deleted behind the read), and only up to the
    safety valve's share (`removal_confirm_share`); past it the scan ends
    as TO_CONFIRM, removing nothing until `scan_confirm_removal`. Listings found back on the
    channel after being marked removed have their stock queued for a push.

    Cost: per page, four queries (existing listings, the channel's aliases of the page's
    SKUs, POS variants by mapped SKU, the bulk write) plus the marketplace's own calls, and two
    more on a page with returned listings; the end of a full scan adds two counts and one
    update, and (but on a channel's first scan) one read of the unseen items and the calls
    asking for them (`_confirm_unseen`); every scan one read of the channel's SKU rules.
    """
    scan = Scan.objects.select_related("channel").get(pk=scan_id)
    channel = scan.channel
    started = timezone.now()
    since = None
    if scan.kind == Scan.Kind.UPDATED and channel.last_scan_at:
        since = channel.last_scan_at - WATERMARK_OVERLAP
    claimed = Scan.objects.filter(pk=scan.pk, status=Scan.Status.QUEUED).update(
        status=Scan.Status.RUNNING, started_at=started, since=since
    )
    if not claimed:  # already run (a task delivered twice): one scan, one effect
        return scan
    scan.status, scan.started_at, scan.since = Scan.Status.RUNNING, started, since
    with beating(_alive(scan.pk), every=HEARTBEAT_SECONDS):
        return _read(scan, channel, started, on_page)


def _alive(scan_id: int) -> Callable[[], bool]:
    """The heartbeat of a running scan: its progress time, while it is still running."""
    running = Scan.objects.filter(pk=scan_id, status=Scan.Status.RUNNING)
    return lambda: bool(running.update(progress_at=timezone.now()))


def _read(scan: Scan, channel: Channel, started: datetime, on_page) -> Scan:
    counts = _Counts()
    try:
        adapter = adapter_for(channel)
    except AdapterError as exc:  # credentials no key decrypts, or that no longer validate
        return _finish(scan, counts, CallStats(), 0.0, error=str(exc))
    pages = _Waiting(adapter.iter_listing_pages(updated_since=scan.since))
    buffer: list[RemoteListing] = []
    # A channel without listings (its first scan) can only hold those this scan writes: the
    # items it has not written yet are not looked up (see _upsert_page).
    written = None if Listing.objects.filter(channel=channel).exists() else set[str]()
    progress_due = time.monotonic() + PROGRESS_SECONDS
    try:
        for page in pages:
            buffer.extend(page)
            counts.pages += 1
            if len(buffer) >= WRITE_BATCH:
                _write(
                    scan, channel, buffer, started, counts, written, adapter.stats, pages, on_page
                )
                buffer = []
                progress_due = time.monotonic() + PROGRESS_SECONDS
            elif time.monotonic() >= progress_due:
                _save_progress(scan, counts, adapter.stats, pages.seconds, unwritten=len(buffer))
                progress_due = time.monotonic() + PROGRESS_SECONDS
        _write(scan, channel, buffer, started, counts, written, adapter.stats, pages, on_page)
        removals = NOTHING_REMOVED
        if scan.kind == Scan.Kind.FULL:
            if written is None:  # a first scan can have left nothing unseen
                _confirm_unseen(channel, adapter, started, counts)
            removals = _end_of_full_scan(scan, channel)
    except AdapterError as exc:
        return _finish(scan, counts, adapter.stats, pages.seconds, error=_read_error(scan, exc))
    except Exception as exc:
        logger.exception("scan %s of channel %s failed", scan.pk, channel.pk)
        _finish(scan, counts, adapter.stats, pages.seconds, error=f"Unexpected error: {exc}")
        raise
    Channel.objects.filter(pk=channel.pk).update(last_scan_at=started, last_error="")
    _rematch_if_rules_changed(channel)
    return _finish(scan, counts, adapter.stats, pages.seconds, removals=removals)


def _rematch_if_rules_changed(channel: Channel) -> None:
    """A prefix or suffix edited while the scan ran re-matched the listings then, but the
    scan went on writing with the rules it started with: re-match once more. (Aliases are
    read afresh for every batch.) One query."""
    rules = ("sku_strip_prefixes", "sku_strip_suffixes")
    now = Channel.objects.filter(pk=channel.pk).values_list(*rules).first()
    if now is not None and now != tuple(getattr(channel, name) for name in rules):
        sku_rules_rematch_request(channel_id=channel.pk)


def _read_error(scan: Scan, exc: AdapterError) -> str:
    if scan.kind != Scan.Kind.FULL:
        return str(exc)
    return (
        f"{str(exc).rstrip('.')}. The scan stopped before it had read the whole catalog, so "
        "no listing was marked removed."
    )


def _write(scan, channel, buffer, started, counts, written, stats, pages, on_page) -> None:
    if buffer:
        _upsert_page(channel, buffer, started, counts, written)
    _save_progress(scan, counts, stats, pages.seconds)
    if on_page:
        on_page(scan)


class _Waiting:
    """Iterate pages, adding up the wall-clock seconds spent waiting for the marketplace.

    That is what `Scan.http_seconds` reports: the rest of a scan's time is omni's own code and
    database. (The adapter's own call statistics add up time per call, which exceeds wall
    time when it fetches concurrently.)
    """

    def __init__(self, pages) -> None:
        self._pages = iter(pages)
        self.seconds = 0.0

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self._pages)
        finally:
            self.seconds += time.perf_counter() - start


def _upsert_page(
    channel: Channel,
    page: Sequence[RemoteListing],
    now,
    counts: _Counts,
    written: set[str] | None = None,
) -> None:
    """Insert new listings and update changed ones, in bulk, mapped to POS variants by SKU
    under the channel's SKU rules (channels.sku_rules: aliases, prefixes and suffixes).

    `written`, on a channel that had no listings when the scan began: the items the scan has
    written so far, the only ones that can have rows; the others are not looked up, and this
    page's are added. (A listing another writer, an upload, adds meanwhile is then written
    over as a new one: counted new rather than changed.)

    Cost: three reads (existing listings of these items, none when no item can have any; the
    channel's aliases of these SKUs; variants by mapped SKU) and at most two writes, whatever
    the number of listings.
    """
    refs = {(r.item_id, r.variant_id): r for r in page}
    items = {r.item_id for r in page}
    existing = {
        (row[1], row[2]): row
        for row in listings_of_items(
            channel_id=channel.pk, item_ids=items if written is None else items & written
        )
    }
    mapped = SkuMapper.for_channel(channel, skus=[r.sku for r in page]).keys(r.sku for r in page)
    variants = variant_ids_by_sku_key(set(mapped.values()))
    writes: list[ListingRow] = []
    unchanged: list[int] = []
    returned: list[int] = []
    for ref, remote in refs.items():
        key = mapped[remote.sku]
        old = existing.get(ref)
        manual = old is not None and old[-1]
        row = ListingRow(
            remote.item_id,
            remote.variant_id,
            remote.sku,
            key,
            remote.title[:300],
            remote.price,
            remote.quantity,
            remote.status,
            remote.updated_at,
            old[-2] if manual else variants.get(key),
        )
        if old is None:
            counts.new += 1
            writes.append(row)
        elif tuple(old[3:-1]) != tuple(row[2:]):
            counts.changed += 1
            writes.append(row)
            if old[_OLD_STATUS] == Listing.Status.REMOVED and row.status != Listing.Status.REMOVED:
                returned.append(old[0])
        else:
            unchanged.append(old[0])
        counts.matched += row.variant_id is not None
    with transaction.atomic():
        listings_upsert(channel_id=channel.pk, rows=writes, now=now)
        listings_seen(ids=unchanged, now=now)
        _push_returned(channel, returned)
    if written is not None:
        written |= items
    counts.seen += len(refs)


def _push_returned(channel: Channel, listing_ids: list[int]) -> None:
    """Queue the stock of listings back on the channel after being marked removed: the
    marketplace has not been sent their quantity since. Pushed in the modes in which the
    recurring full sync would send it, without waiting for that sync.

    Cost: nothing without returned listings; else the outbox's read and upsert."""
    if not listing_ids or not channel.is_active:
        return
    if not sends(SyncTrigger.FULFILLMENT_RECURRING, channel.inventory_sync_mode):
        return
    listings = Listing.objects.filter(pk__in=listing_ids).present().mapped()
    push_request(channel=channel, listings=listings, reason=LISTING_RETURNED)


def removal_confirm_share() -> float:
    """The safety valve's share: OMNI_SCAN_REMOVAL_CONFIRM_SHARE or REMOVAL_CONFIRM_SHARE."""
    return float(getattr(settings, "OMNI_SCAN_REMOVAL_CONFIRM_SHARE", REMOVAL_CONFIRM_SHARE))


def _unseen(channel: Channel, started: datetime):
    """The channel's present listings that no scan has seen since `started`."""
    unseen = Q(last_seen_at__lt=started) | Q(last_seen_at__isnull=True)
    return Listing.objects.filter(unseen, channel=channel).present()


def _confirm_unseen(channel: Channel, adapter, started: datetime, counts: _Counts) -> None:
    """Ask the marketplace, item by item, for the items a full read did not see, and write
    what it still has as seen (base.Adapter.confirm_listings): on a list paged by offset, an
    item deleted behind the read moves the next one out of it, and that one must not be marked
    removed. Up to CONFIRM_ITEMS items; past that (a mass deletion, or a read gone wrong) the
    safety valve decides as before. Nothing on a marketplace whose read cannot skip an item.

    A marketplace refusing the question for good (a non-retryable error: an id it no longer
    knows at all, say) leaves the removal unconfirmed, as before there was this question, so
    one such item cannot fail every later scan; a passing failure fails the scan, which then
    removes nothing.

    Cost: one query, the adapter's calls (one or two per item, fewer where it batches) and one
    page write (_upsert_page) when any item is still there.
    """
    items = list(
        _unseen(channel, started)
        .order_by()
        .values_list("item_id", flat=True)
        .distinct()[: CONFIRM_ITEMS + 1]
    )
    if not items or len(items) > CONFIRM_ITEMS:
        return
    try:
        found = adapter.confirm_listings(items) or []
    except AdapterError as exc:
        if exc.retryable or isinstance(exc, CredentialsError):
            raise
        logger.warning(
            "channel %s: the %d items a full scan did not see could not be asked for (%s); "
            "their listings are removed unconfirmed",
            channel.pk,
            len(items),
            exc,
        )
        return
    # Those the marketplace says are gone stay unseen: the end of the scan removes and counts
    # them with the rest.
    still_there = [listing for listing in found if listing.status != Listing.Status.REMOVED]
    if still_there:
        _upsert_page(channel, still_there, started, counts)


def _mark_removed(listings) -> int:
    return listings.update(status=Listing.Status.REMOVED, updated_at=timezone.now())


def _end_of_full_scan(scan: Scan, channel: Channel) -> _Removals:
    """Mark removed what a full scan, having read the whole catalog, did not see, unless that
    is more than the safety valve's share of the channel's present listings: then hold it.

    Cost: two counts and one update (none when nothing is unseen), and one update that ends
    older scans' held removals.
    """
    _supersede_held(scan)
    unseen = _unseen(channel, scan.started_at)
    missing = unseen.count()
    if not missing:
        return NOTHING_REMOVED
    present = Listing.objects.filter(channel=channel).present().count()
    share = removal_confirm_share()
    if missing <= share * present:
        return _Removals(removed=_mark_removed(unseen))
    note = (
        f"This scan read the whole catalog but did not see {missing} of the channel's "
        f"{present} listings ({missing / present:.0%}), more than the {share:.0%} a scan "
        "removes on its own. None was marked removed: confirm the removal if they really "
        "left the channel, or scan again."
    )
    return _Removals(held=missing, note=note)


def _supersede_held(scan: Scan) -> None:
    """A newer full scan decides removals afresh: older held ones can no longer be confirmed."""
    Scan.objects.filter(channel_id=scan.channel_id, status=Scan.Status.TO_CONFIRM).exclude(
        pk=scan.pk
    ).update(
        status=Scan.Status.SUCCEEDED,
        note=Concat(
            "note",
            Value(f" Superseded by scan #{scan.pk} before confirmation: none removed."),
            output_field=TextField(),
        ),
    )


def scan_confirm_removal(*, scan_id: int, confirmed_by: str) -> Scan:
    """Apply a held removal: mark removed the channel's listings the scan did not see and no
    scan has seen since. Once per scan; RemovalNotHeld when the scan holds none (never held,
    already confirmed, or superseded by a newer full scan).

    Cost: the scan's row lock, one update of the listings, the duplicate-SKU marking and one
    save.
    """
    with transaction.atomic():
        scan = Scan.objects.select_for_update().select_related("channel").get(pk=scan_id)
        if scan.status != Scan.Status.TO_CONFIRM:
            raise RemovalNotHeld(scan)
        removed = _mark_removed(_unseen(scan.channel, scan.started_at))
        now = timezone.now()
        scan.status = Scan.Status.SUCCEEDED
        scan.removed = removed
        scan.removal_confirmed_by = confirmed_by[:120]
        scan.removal_confirmed_at = now
        scan.note = (
            f"{scan.note} Confirmed by {confirmed_by or 'an unnamed user'}: {removed} removed."
        )
        scan.duplicates = listings_mark_duplicates(channel_id=scan.channel_id)
        scan.save(
            update_fields=[
                "status",
                "removed",
                "removal_confirmed_by",
                "removal_confirmed_at",
                "note",
                "duplicates",
            ]
        )
    return scan


def _save_progress(
    scan: Scan, counts: _Counts, stats, waited: float, *, unwritten: int = 0
) -> None:
    """The pages and listings read so far (`unwritten` of them not written yet), the calls."""
    scan.pages_done, scan.listings_done = counts.pages, counts.seen + unwritten
    Scan.objects.filter(pk=scan.pk).update(
        progress_at=timezone.now(),
        pages_done=scan.pages_done,
        listings_done=scan.listings_done,
        http_calls=stats.calls,
        http_seconds=round(waited, 3),
    )


def _finish(
    scan: Scan,
    counts: _Counts,
    stats,
    waited: float,
    *,
    removals: _Removals = NOTHING_REMOVED,
    error: str = "",
) -> Scan:
    channel = scan.channel
    if error:
        scan.status = Scan.Status.FAILED
    elif removals.held:
        scan.status = Scan.Status.TO_CONFIRM
    else:
        scan.status = Scan.Status.SUCCEEDED
    scan.finished_at = timezone.now()
    scan.pages_done, scan.listings_done, scan.seen = counts.pages, counts.seen, counts.seen
    scan.new, scan.changed, scan.matched = counts.new, counts.changed, counts.matched
    scan.not_in_pos = max(0, counts.seen - counts.matched)
    scan.duplicates = listings_mark_duplicates(channel_id=channel.pk)
    scan.removed, scan.removal_held, scan.note = removals.removed, removals.held, removals.note
    scan.http_calls, scan.http_seconds = stats.calls, round(waited, 3)
    scan.error = error
    scan.save()
    if error:
        Channel.objects.filter(pk=channel.pk).update(last_error=error[:500])
    return scan
