"""Reads of the sync logs shared by the admin and the JSON API."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

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


# The report's status columns: SyncLog.Status -> ReportRow attribute.
STATUS_COLUMNS = {
    Status.OK: "successful",
    Status.CONFLICT: "conflict",
    Status.WRONG_STATUS: "wrong_status",
    Status.MISSING: "missing",
}


@dataclass
class ReportRow:
    """One channel and step over the report's range (`action` None: every step of the
    channel). Numbers count ORDERS, each once however many rows it has (a download repeated
    three times is one order with three 409 rows): `transactions` the orders logged,
    `successful` those with a 200 row, `conflict` 409, `wrong_status` 400 and `missing` 404.
    `attention` counts ROWS marked as needing attention. `days` holds (day, orders logged
    that day) for every day of the range, oldest first, zeros included, for the chart; it is
    left empty on a channel's row."""

    channel_id: int
    channel_name: str
    action: str | None
    action_label: str
    since: datetime
    until: datetime
    transactions: int = 0
    successful: int = 0
    conflict: int = 0
    wrong_status: int = 0
    missing: int = 0
    attention: int = 0
    days: list[tuple[date, int]] = field(default_factory=list)


@dataclass
class ChannelReport:
    """A channel's line of the report (`total`: every step at once) and its steps' lines."""

    total: ReportRow
    steps: list[ReportRow]


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
    """Per channel and step over the last `days` days: the orders logged, and those with a
    200, 409, 400 and 404 row; rows needing attention; orders per day.

    Three aggregate queries over the range (counts per channel and step with the channel's
    name, per day, the attention counts), answered from the `synclogs_log_report_orders`
    and `synclogs_log_attention` indexes on PostgreSQL (and the small channel table).
    Rows are ordered by channel name, then step in menu order; pairs with no rows are left
    out.
    """
    since, until = report_range(days=days, now=now)
    window = _window(since, until)
    rows: dict[tuple[int, str], ReportRow] = {}
    for counts in _orders_counted(window, "channel_id", "channel__name", "action"):
        key = (counts["channel_id"], counts["action"])
        rows[key] = _row(counts, since, until, action=counts["action"])
    per_day: dict[tuple[int, str], dict[date, int]] = {}
    daily = window.values("channel_id", "action", day=TruncDate("created_at")).annotate(
        n=Count("order_number", distinct=True)
    )
    for item in daily.order_by():
        per_day.setdefault((item["channel_id"], item["action"]), {})[item["day"]] = item["n"]
    for (channel_id, action), n in _attention_counted(window, "channel_id", "action"):
        if (channel_id, action) in rows:
            rows[(channel_id, action)].attention = n
    all_days = [since.date() + timedelta(days=i) for i in range(days)]
    for key, row in rows.items():
        row.days = [(day, per_day.get(key, {}).get(day, 0)) for day in all_days]
    order = {action: i for i, action in enumerate(SyncLog.Action.values)}
    return sorted(rows.values(), key=lambda r: (r.channel_name, order.get(r.action or "", 99)))


@dataclass
class SyncReport:
    """The report by channel as it stood at `computed_at`: it counted the rows with
    id ≤ `up_to_id` (the newest row then)."""

    since: datetime
    until: datetime
    up_to_id: int
    computed_at: datetime
    channels: list[ChannelReport]
    recounting: bool = False  # a stale copy, shown while the worker counts again


def sync_report_by_channel(*, days: int = 7, now: datetime | None = None) -> SyncReport:
    """sync_report() grouped by channel, each with its line for every step at once (the
    orders it logged in any step, and so on), read in one snapshot of the database so that
    `up_to_id` bounds exactly the rows counted. Three more queries: the newest row's id and
    the channels' aggregates."""
    since, until = report_range(days=days, now=now)
    with _one_snapshot():
        up_to_id = SyncLog.objects.aggregate(newest=Max("id"))["newest"] or 0
        steps = sync_report(days=days, now=now)
        window = _window(since, until)
        totals = {
            counts["channel_id"]: _row(counts, since, until, action=None)
            for counts in (_orders_counted(window, "channel_id") if steps else [])
        }
        for (channel_id,), n in _attention_counted(window, "channel_id") if steps else []:
            if channel_id in totals:
                totals[channel_id].attention = n
    grouped: dict[int, list[ReportRow]] = {}
    for row in steps:
        grouped.setdefault(row.channel_id, []).append(row)
    channels = [
        ChannelReport(_named(totals[channel_id], rows[0].channel_name), rows)
        for channel_id, rows in grouped.items()
        if channel_id in totals
    ]
    return SyncReport(since, until, up_to_id, timezone.now(), channels)


def sync_report_as_json(report: SyncReport) -> list[dict[str, Any]]:
    """`report.channels` as plain data, for ReportSnapshot.channels."""
    return [asdict(channel) for channel in report.channels]


def sync_report_from_json(
    channels: list[dict[str, Any]],
    *,
    since: datetime,
    until: datetime,
    up_to_id: int,
    computed_at: datetime,
) -> SyncReport:
    """The inverse of sync_report_as_json, with the snapshot's own fields."""

    def row(data: dict[str, Any]) -> ReportRow:
        days = [(date.fromisoformat(str(day)), int(n)) for day, n in data.pop("days")]
        del data["since"], data["until"]  # the snapshot's own, as datetimes
        return ReportRow(**data, since=since, until=until, days=days)

    return SyncReport(
        since,
        until,
        up_to_id,
        computed_at,
        [
            ChannelReport(row(dict(item["total"])), [row(dict(step)) for step in item["steps"]])
            for item in channels
        ],
    )


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """Reads that see the database as of one moment: a REPEATABLE READ transaction on
    PostgreSQL (SQLite's transactions already are). Inside a caller's transaction, that one."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _window(since: datetime, until: datetime) -> QuerySet[SyncLog]:
    return SyncLog.objects.filter(created_at__gte=since, created_at__lt=until).order_by()


def _orders_counted(window: QuerySet[SyncLog], *keys: str) -> QuerySet:
    """Distinct orders per `keys`: all of them, and those with a row of each status."""

    def orders(**having: Any) -> Count:
        return Count("order_number", distinct=True, filter=Q(**having) if having else None)

    columns = {name: orders(status=code) for code, name in STATUS_COLUMNS.items()}
    return window.values(*keys).annotate(transactions=orders(), **columns)


def _attention_counted(window: QuerySet[SyncLog], *keys: str) -> list[tuple[tuple, int]]:
    """Rows needing attention per `keys` (the partial index `synclogs_log_attention`)."""
    counted = window.exclude(attention="").values_list(*keys).annotate(n=Count("*"))
    return [(tuple(item[:-1]), item[-1]) for item in counted]


def _row(
    counts: dict[str, Any], since: datetime, until: datetime, *, action: str | None
) -> ReportRow:
    if action is None:
        label = "All steps"
    else:
        label = SyncLog.Action(action).label if action in SyncLog.Action.values else action
    name = counts.get("channel__name") or ""
    row = ReportRow(counts["channel_id"], name, action, label, since, until)
    row.transactions = counts["transactions"]
    for column in STATUS_COLUMNS.values():
        setattr(row, column, counts[column])
    return row


def _named(row: ReportRow, name: str) -> ReportRow:
    row.channel_name = name
    return row
