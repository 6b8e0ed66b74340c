"""django-q2 entry points: take ids, call one service, report a line."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from channels.models import Channel
from synclogs import services
from synclogs.exceptions import OrderDownloadFailed
from synclogs.models import WebhookEvent

RETENTION_DAYS = 90


def orders_download_all() -> str:
    results = services.orders_download_all()
    lines = [
        f"channel {r.channel_id}: "
        + ("busy" if r.locked_out else r.error or f"{r.orders} order(s), {r.rows} row(s)")
        for r in results
    ]
    return "; ".join(lines) or "no active channel"


def orders_download(channel_id: int) -> str:
    result = services.orders_download(channel=Channel.objects.get(pk=channel_id))
    return result.error or f"channel {channel_id}: {result.orders} order(s), {result.rows} row(s)"


def orders_reconcile_all() -> str:
    found = []
    for channel in Channel.objects.filter(is_active=True).order_by("pk"):
        try:
            found.append(f"{channel.pk}: {len(services.orders_reconcile(channel=channel))} missing")
        except OrderDownloadFailed as exc:
            found.append(f"{channel.pk}: {exc}")
    return "; ".join(found) or "no active channel"


def process_webhook_event(event_id: int) -> str:
    """Download the order a push named. Claimed first, so a second delivery of the task does
    nothing; a failed download releases the claim and raises, so django-q2 retries it."""
    now = timezone.now()
    claimed = WebhookEvent.objects.filter(Q(processed_at__isnull=True), pk=event_id).update(
        processed_at=now
    )
    if not claimed:
        return f"event {event_id}: already processed"
    event = WebhookEvent.objects.select_related("channel").get(pk=event_id)
    try:
        rows = services.order_download_pushed(
            channel=event.channel, order_number=event.order_number
        )
    except OrderDownloadFailed as exc:
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=None, error=str(exc)[:500])
        raise
    WebhookEvent.objects.filter(pk=event_id).update(error="")
    return f"event {event_id}: order {event.order_number}, {len(rows)} row(s)"


def synclogs_prune(days: int = RETENTION_DAYS) -> str:
    before = timezone.now() - timedelta(days=days)
    deleted = services.synclogs_prune(before=before, commit=True)
    return f"deleted {deleted} row(s) older than {days} days"
