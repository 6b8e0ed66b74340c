"""Reads of the sync logs shared by the admin and the JSON API."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from channels.models import Channel
from synclogs.models import SyncLog

Status = SyncLog.Status


def sync_logs(
    *,
    action: str | None = None,
    status: int | None = None,
    channel_id: int | None = None,
    order_number: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[SyncLog]:
    """Log rows newest first, with their channel, filtered by whatever is given.

    Every combination of filters is served by one of SyncLog's indexes (see its Meta).
    """
    rows = SyncLog.objects.select_related("channel")
    if action:
        rows = rows.filter(action=action)
    if status:
        rows = rows.filter(status=status)
    if channel_id:
        rows = rows.filter(channel_id=channel_id)
    if order_number:
        rows = rows.filter(order_number=order_number.strip())
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return rows.order_by("-created_at", "-id")


def order_log(*, channel_id: int, order_number: str) -> QuerySet[SyncLog]:
    """The Order Log: every row of one channel's order number, oldest first."""
    return (
        SyncLog.objects.filter(channel_id=channel_id, order_number=order_number)
        .select_related("channel")
        .order_by("created_at", "id")
    )


@dataclass
class ReportRow:
    """One channel and step over the report's range. `days` holds (day, transactions) for
    every day of the range, oldest first, zeros included, for the chart."""

    channel_id: int
    channel_name: str
    action: str
    action_label: str
    since: datetime
    until: datetime
    transactions: int = 0
    successful: int = 0
    conflict: int = 0
    wrong_status: int = 0
    missing: int = 0
    days: list[tuple[date, int]] = field(default_factory=list)


def report_range(*, days: int = 7, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start of the day `days - 1` days ago, start of tomorrow), in the site's time zone:
    "the last 7 days" is today and the six days before, whole days."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    zone = timezone.get_current_timezone()
    since = datetime.combine(first, time.min, tzinfo=zone)
    until = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    return since, until


def sync_report(*, days: int = 7, now: datetime | None = None) -> list[ReportRow]:
    """Per channel and step over the last `days` days: transactions, successful (200),
    conflict (409), wrong status (400) and missing (404), with a count per day.

    One aggregate query grouped by channel, action, status and day, answered from the
    `synclogs_log_report` index, plus one query for channel names. Rows are ordered by
    channel name, then step in menu order; pairs with no rows are left out.
    """
    since, until = report_range(days=days, now=now)
    grouped = (
        SyncLog.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=TruncDate("created_at"))
        .values_list("channel_id", "action", "status", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows: dict[tuple[int, str], ReportRow] = {}
    per_day: dict[tuple[int, str], dict[date, int]] = {}
    for channel_id, action, status, day, n in grouped:
        key = (channel_id, action)
        row = rows.get(key)
        if row is None:
            label = SyncLog.Action(action).label if action in SyncLog.Action.values else action
            row = rows[key] = ReportRow(channel_id, "", action, label, since, until)
        _add(row, status, n)
        counts = per_day.setdefault(key, {})
        counts[day] = counts.get(day, 0) + n
    names = dict(Channel.objects.filter(pk__in={k[0] for k in rows}).values_list("pk", "name"))
    all_days = [since.date() + timedelta(days=i) for i in range(days)]
    order = {action: i for i, action in enumerate(SyncLog.Action.values)}
    for key, row in rows.items():
        row.channel_name = names.get(row.channel_id, f"channel {row.channel_id}")
        row.days = [(day, per_day[key].get(day, 0)) for day in all_days]
    return sorted(rows.values(), key=lambda r: (r.channel_name, order.get(r.action, 99)))


def _add(row: ReportRow, status: int, n: int) -> None:
    row.transactions += n
    if status == Status.OK:
        row.successful += n
    elif status == Status.CONFLICT:
        row.conflict += n
    elif status == Status.WRONG_STATUS:
        row.wrong_status += n
    elif status == Status.MISSING:
        row.missing += n
