"""Scans: read a channel's catalog and map its listings to POS variants by normalised SKU."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Variant, sku_key
from channels.adapters.base import AdapterError, RemoteListing
from channels.exceptions import ScanAlreadyRunning
from channels.models import Channel, Listing, Scan
from channels.services import adapter_for

logger = logging.getLogger(__name__)

# Scan Updated Products asks for changes since the last scan minus this much, so a change made
# on the marketplace while the last scan was running, or under clock skew, is not missed.
WATERMARK_OVERLAP = timedelta(minutes=5)

# Fields a scan copies from the channel onto a listing.
SCANNED_FIELDS = ("sku", "sku_key", "title", "price", "quantity", "status", "channel_updated_at")


def scan_request(
    *, channel: Channel, kind: str, requested_by: str = "", enqueue: bool = True
) -> Scan:
    """Record a queued scan and, unless told not to, enqueue it once the transaction commits.

    Raises ScanAlreadyRunning if the channel already has a queued or running scan.
    """
    try:
        with transaction.atomic():
            scan = Scan.objects.create(channel=channel, kind=kind, requested_by=requested_by[:120])
    except IntegrityError:
        running = Scan.objects.filter(channel=channel, status__in=["queued", "running"]).first()
        raise ScanAlreadyRunning(channel, running) from None
    if enqueue:
        transaction.on_commit(lambda: _enqueue(scan.pk))
    return scan


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


def scan_run(*, scan_id: int, on_page: Callable[[Scan], None] | None = None) -> Scan:
    """Run a queued scan to the end. The channel's watermark moves only if it succeeds.

    Cost: per page, three queries (existing listings, POS variants by SKU, the bulk write)
    plus the marketplace's own calls; the end of a full scan adds one update for removals.
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
    adapter = adapter_for(channel)
    counts = _Counts()
    try:
        for page in adapter.iter_listing_pages(updated_since=since):
            _upsert_page(channel, page, started, counts)
            counts.pages += 1
            _save_progress(scan, counts, adapter.stats)
            if on_page:
                on_page(scan)
        removed = _mark_removed(channel, started) if scan.kind == Scan.Kind.FULL else 0
    except AdapterError as exc:
        return _finish(scan, counts, adapter.stats, error=str(exc))
    except Exception as exc:
        logger.exception("scan %s of channel %s failed", scan.pk, channel.pk)
        _finish(scan, counts, adapter.stats, error=f"Unexpected error: {exc}")
        raise
    Channel.objects.filter(pk=channel.pk).update(last_scan_at=started, last_error="")
    return _finish(scan, counts, adapter.stats, removed=removed)


def _upsert_page(channel: Channel, page: Sequence[RemoteListing], now, counts: _Counts) -> None:
    """Insert new listings and update changed ones of one page, in bulk, mapped by SKU."""
    refs = {(r.item_id, r.variant_id): r for r in page}
    existing = {
        (lst.item_id, lst.variant_ref): lst
        for lst in Listing.objects.filter(channel=channel, item_id__in={r.item_id for r in page})
    }
    keys = {sku_key(r.sku) for r in page} - {""}
    variants = dict(Variant.objects.filter(sku_key__in=keys).values_list("sku_key", "pk"))
    to_create, to_update, unchanged = [], [], []
    for ref, remote in refs.items():
        values = _listing_values(remote)
        listing = existing.get(ref)
        if listing is None or not listing.is_manual_link:
            values["variant_id"] = variants.get(values["sku_key"])
        if listing is None:
            listing = Listing(channel=channel, item_id=ref[0], variant_ref=ref[1])
            to_create.append(listing)
        elif any(getattr(listing, name) != value for name, value in values.items()):
            to_update.append(listing)
        else:
            unchanged.append(listing)
        for name, value in values.items():
            setattr(listing, name, value)
        listing.last_seen_at = listing.updated_at = now
        counts.matched += listing.variant_id is not None
    with transaction.atomic():
        Listing.objects.bulk_create(to_create, batch_size=1000)
        Listing.objects.bulk_update(
            to_update, [*SCANNED_FIELDS, "variant", "last_seen_at", "updated_at"], batch_size=1000
        )
        Listing.objects.filter(pk__in=[lst.pk for lst in unchanged]).update(last_seen_at=now)
    counts.seen += len(refs)
    counts.new += len(to_create)
    counts.changed += len(to_update)


def _listing_values(remote: RemoteListing) -> dict:
    return {
        "sku": remote.sku,
        "sku_key": sku_key(remote.sku),
        "title": remote.title[:300],
        "price": remote.price,
        "quantity": remote.quantity,
        "status": remote.status,
        "channel_updated_at": remote.updated_at,
    }


def _mark_removed(channel: Channel, started) -> int:
    """A full scan saw every listing still on the channel; the rest were removed there."""
    unseen = Q(last_seen_at__lt=started) | Q(last_seen_at__isnull=True)
    return (
        Listing.objects.filter(unseen, channel=channel)
        .present()
        .update(status=Listing.Status.REMOVED, updated_at=timezone.now())
    )


def _save_progress(scan: Scan, counts: _Counts, stats) -> None:
    scan.pages_done, scan.listings_done = counts.pages, counts.seen
    Scan.objects.filter(pk=scan.pk).update(
        pages_done=counts.pages,
        listings_done=counts.seen,
        http_calls=stats.calls,
        http_seconds=stats.seconds,
    )


def _finish(scan: Scan, counts: _Counts, stats, *, removed: int = 0, error: str = "") -> Scan:
    channel = scan.channel
    present = Listing.objects.filter(channel=channel).present()
    duplicates = (
        present.exclude(sku_key="").values("sku_key").annotate(n=Count("pk")).filter(n__gt=1)
    )
    scan.status = Scan.Status.FAILED if error else Scan.Status.SUCCEEDED
    scan.finished_at = timezone.now()
    scan.pages_done, scan.listings_done, scan.seen = counts.pages, counts.seen, counts.seen
    scan.new, scan.changed, scan.matched = counts.new, counts.changed, counts.matched
    scan.not_in_pos = counts.seen - counts.matched
    scan.duplicates = sum(row["n"] for row in duplicates)
    scan.removed = removed
    scan.http_calls, scan.http_seconds = stats.calls, round(stats.seconds, 3)
    scan.error = error
    scan.save()
    if error:
        Channel.objects.filter(pk=channel.pk).update(last_error=error[:500])
    return scan
