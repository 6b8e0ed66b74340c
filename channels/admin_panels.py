"""What the channel screens show beside their tables: progress of scans and inventory syncs,
and the channel's own buttons (scan, scan updated products, sync inventory, test connection).

Kept apart from channels/admin.py, which registers the tables; everything here is read by more
than one screen (the tabs, Channel Statistic, the channel page, Scans, Inventory syncs).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from channels.models import Channel, InventorySync, PendingPush, Scan
from omni.admin_tools import Progress

# --- scans -----------------------------------------------------------------------------------

SCAN_STATES = {
    Scan.Status.QUEUED: "queued",
    Scan.Status.RUNNING: "running",
    Scan.Status.SUCCEEDED: "succeeded",
    Scan.Status.FAILED: "failed",
    Scan.Status.TO_CONFIRM: "to confirm",
}


def scan_progress(scan: Scan, expected: int | None = None) -> Progress:
    """A scan as a progress bar. `expected`: the listings its channel's last full scan saw, the
    best guess of a full scan's length (None: unknown, and the bar slides)."""
    state = SCAN_STATES[scan.status]
    total = expected if scan.kind == Scan.Kind.FULL and scan.status == Scan.Status.RUNNING else None
    if total is not None:
        total = max(total, scan.listings_done)
    done = scan.listings_done if scan.status != Scan.Status.SUCCEEDED else scan.seen
    return Progress(
        state=state,
        label=f"{scan.get_kind_display()}: {scan.get_status_display()}",
        done=done,
        total=total,
        unit="listings",
        started_at=scan.started_at,
        error=scan.error or (scan.note if scan.status == Scan.Status.TO_CONFIRM else ""),
        poll_url=reverse("admin:channels_scan_progress", args=[scan.pk]),
    )


def expected_listings(channel_ids: Iterable[int]) -> dict[int, int]:
    """Per channel, the listings its last succeeded full scan saw. One query."""
    rows = (
        Scan.objects.filter(
            channel_id__in=list(channel_ids), kind=Scan.Kind.FULL, status=Scan.Status.SUCCEEDED
        )
        .order_by("channel_id", "-finished_at")
        .values_list("channel_id", "seen")
    )
    expected: dict[int, int] = {}
    for channel_id, seen in rows:
        expected.setdefault(channel_id, seen)
    return expected


def expected_listings_of_channel() -> Subquery:
    """`expected_listings` as an annotation of a Scan queryset: one subquery per row."""
    return Subquery(
        Scan.objects.filter(
            channel_id=OuterRef("channel_id"), kind=Scan.Kind.FULL, status=Scan.Status.SUCCEEDED
        )
        .order_by("-finished_at")
        .values("seen")[:1]
    )


def latest_scans(channel_ids: Iterable[int]) -> dict[int, Scan]:
    """Per channel, its most recent scan (running or not). One query per call, bounded by the
    number of channels (each reads its newest scan through the (channel, created_at) order)."""
    ids = list(channel_ids)
    latest: dict[int, Scan] = {}
    for channel_id in ids:
        scan = Scan.objects.filter(channel_id=channel_id).order_by("-created_at").first()
        if scan is not None:
            latest[channel_id] = scan
    return latest


def scan_panel(channel: Channel) -> dict:
    """The scan strip of a tab and the channel page: last scan, the latest scan's bar, buttons."""
    latest = latest_scans([channel.pk]).get(channel.pk)
    expected = expected_listings([channel.pk]).get(channel.pk)
    return {
        "channel": channel,
        "last_scan": (
            f"{timesince(channel.last_scan_at)} ago" if channel.last_scan_at else "never scanned"
        ),
        "progress": scan_progress(latest, expected) if latest else None,
        "scan_url": reverse("admin:channels_channel_scan", args=[channel.pk, Scan.Kind.FULL]),
        "scan_updated_url": reverse(
            "admin:channels_channel_scan", args=[channel.pk, Scan.Kind.UPDATED]
        ),
        "scans_url": reverse("admin:channels_scan_changelist")
        + f"?channel__id__exact={channel.pk}",
    }


# --- inventory syncs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbox:
    """A channel's pushes still to go out, and those that failed."""

    waiting: int = 0
    failed: int = 0


def sync_progress(record: InventorySync, outbox: Outbox | None) -> Progress:
    """An inventory sync as a progress bar: the pushes it queued going out to the marketplace.

    Only the channel's latest sync is followed live (`outbox` given): the channel's outbox
    is what remains of it. An older one shows how it ended.
    """
    poll_url = reverse("admin:channels_inventorysync_progress", args=[record.pk])
    if record.finished_at is None:
        return Progress("running", "Measuring drift", unit="listings", poll_url=poll_url)
    if outbox is None or not record.queued:
        return Progress("succeeded", "Queued", done=record.queued, unit="pushes queued")
    done = max(record.queued - outbox.waiting - outbox.failed, 0)
    if outbox.waiting:
        return Progress(
            "running",
            "Pushing",
            done=done,
            total=record.queued,
            unit="listings pushed",
            started_at=record.finished_at,
            poll_url=poll_url,
        )
    if outbox.failed:
        return Progress(
            "failed",
            "Some pushes failed",
            done=done,
            total=record.queued,
            unit="listings pushed",
            error=f"{outbox.failed} push(es) failed: they are retried hourly (Pending pushes).",
        )
    return Progress("succeeded", "Pushed", done=record.queued, total=record.queued, unit="listings")


def sync_outbox_annotations() -> dict:
    """For an InventorySync queryset: `is_latest` (no later sync of its channel) and its
    channel's `outbox_waiting` and `outbox_failed` counts, as subqueries per row."""

    def outbox_count(failed: bool) -> Coalesce:
        pushes = (
            PendingPush.objects.filter(channel_id=OuterRef("channel_id"), failed=failed)
            .order_by()
            .values("channel_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(pushes), 0)

    later = InventorySync.objects.filter(
        channel_id=OuterRef("channel_id"), created_at__gt=OuterRef("created_at")
    )
    return {
        "is_latest": ~Exists(later),
        "outbox_waiting": outbox_count(False),
        "outbox_failed": outbox_count(True),
    }


def age(moment) -> str:
    return f"{timesince(moment, timezone.now())} ago" if moment else "never"
