"""django-q2 entry points: take ids, call one service, report a line."""

from datetime import timedelta

from django.utils import timezone

from channels.models import Channel
from synclogs import services, webhooks
from synclogs.exceptions import OrderDownloadFailed

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
    """Download the order a push named (held instead while its channel is paused); a failed
    download raises, so django-q2 retries it."""
    return webhooks.webhook_event_process(event_id=event_id)


def synclogs_prune(days: int = RETENTION_DAYS) -> str:
    before = timezone.now() - timedelta(days=days)
    deleted = services.synclogs_prune(before=before, commit=True)
    return f"deleted {deleted} row(s) older than {days} days"


def report_recount(days: int) -> str:
    report = services.report_recount(days=days)
    return f"report of {days} days counted up to log row {report.up_to_id}"
