"""Order downloads: scheduled (incremental by update time), by hand, and the missing-order check.

Every path ends in `synclogs.pipeline`, which writes the documents and the sync log rows.
"""

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from channels.adapters.base import AdapterError, OrderNumbersMalformed, OrderState, RemoteOrder
from channels.models import Channel
from channels.services import adapter_for
from omni.leases import Lease
from synclogs import selectors
from synclogs.exceptions import InvalidOrderNumbers, OrderDownloadFailed
from synclogs.models import OrderDownload, ReportSnapshot, SalesOrder, SyncLog, WebhookEvent
from synclogs.pipeline import OrdersFailed, order_json, orders_process

logger = logging.getLogger(__name__)

# Each scheduled run starts this long before the last watermark: an order updated while the
# previous run was listing, or stamped by a marketplace clock a little behind ours, is caught.
OVERLAP = timedelta(minutes=10)
# A channel's first download looks this far back (the Sync Logs report's span).
FIRST_LOOKBACK = timedelta(days=7)
MAX_MANUAL_NUMBERS = 200
MISSING_LOOKBACK_DAYS = 7
# The Sync Logs report is read from its snapshot while nothing was logged since, or while the
# snapshot is younger than this.
REPORT_FRESH_SECONDS = 60
# A stale snapshot whose count took longer than this is shown as it is while the worker counts
# again; a quicker one is counted again inside the request.
REPORT_INLINE_SECONDS = 0.5

Origin = SyncLog.Origin


@dataclass
class DownloadResult:
    """One scheduled download of one channel."""

    channel_id: int
    orders: int = 0
    rows: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error: str = ""
    locked_out: bool = False
    synced_until: datetime | None = None

    def count(self, rows: Sequence[SyncLog]) -> None:
        self.rows += len(rows)
        for row in rows:
            self.statuses[row.status] = self.statuses.get(row.status, 0) + 1


@dataclass
class ManualDownload:
    """What Manual Download Order did: the rows logged, the numbers the marketplace has
    (`found`) and those it does not know or refuses (`not_found`), as they were given."""

    logs: list[SyncLog]
    not_found: list[str]
    found: list[str] = field(default_factory=list)


# --- scheduled download -------------------------------------------------------------------------


def orders_download(*, channel: Channel, now: datetime | None = None) -> DownloadResult:
    """Download the orders updated since the channel's watermark (less OVERLAP) and run each
    through the pipeline, skipping orders unchanged since they were processed.

    The watermark moves to the run's start time only if every page was read and every order
    processed; otherwise the next run covers the same range again, which is harmless because
    every step is idempotent. One run per channel at a time (a lease on its OrderDownload row).
    Cost: the adapter's calls for the range (Shopee: one list call per 100 orders, one detail
    call per 50) plus the pipeline's queries per changed order.
    """
    now = now or timezone.now()
    result = DownloadResult(channel.pk)
    OrderDownload.objects.get_or_create(channel=channel)
    lease = Lease(OrderDownload.objects.filter(channel=channel))
    if not lease.take():
        result.locked_out = True
        return result
    state = OrderDownload.objects.get(channel=channel)
    since = state.synced_until - OVERLAP if state.synced_until else now - FIRST_LOOKBACK
    try:
        with lease.heartbeat():
            _download_range(channel, since, now, result)
    except (AdapterError, OrdersFailed) as exc:
        result.error = str(exc)[:500]
        logger.warning("order download of channel %s failed: %s", channel.pk, result.error)
    finished = {"last_run_at": timezone.now(), "last_error": result.error}
    finished["orders_seen"] = result.orders
    if not result.error:
        finished["synced_until"] = result.synced_until = now
    lease.release(**finished)
    return result


def _download_range(
    channel: Channel, since: datetime, until: datetime, result: DownloadResult
) -> None:
    adapter = adapter_for(channel)
    failures: list[OrdersFailed] = []
    for page in adapter.iter_orders(updated_from=since, updated_to=until):
        result.orders += len(page)
        try:
            rows = orders_process(
                channel=channel,
                orders=page,
                origin=Origin.SCHEDULE,
                actor="schedule",
                skip_unchanged=True,
            )
        except OrdersFailed as exc:  # the rest of the range is still worth downloading
            failures.append(exc)
            rows = exc.rows
        result.count(rows)
    if failures:
        raise failures[0]


def orders_download_all(*, now: datetime | None = None) -> list[DownloadResult]:
    """The schedule's entry point: a download for every active channel, one after another."""
    return [
        orders_download(channel=channel, now=now)
        for channel in Channel.objects.filter(is_active=True).order_by("pk")
    ]


# --- Manual Download Order ----------------------------------------------------------------------


def order_manual_download(
    *, channel: Channel, order_numbers: list[str], actor: str = ""
) -> list[SyncLog]:
    """Download the named orders now and run each through the pipeline; the rows logged.

    Numbers the marketplace does not know are left out of the result (see
    `orders_download_by_number` to learn which). Raises InvalidOrderNumbers for an empty or
    oversized list or a number the marketplace can never have (checked by the adapter before
    any call), OrderDownloadFailed when the marketplace cannot be asked; in every case nothing
    is written.
    """
    return orders_download_by_number(channel=channel, order_numbers=order_numbers, actor=actor).logs


def orders_download_by_number(
    *, channel: Channel, order_numbers: Sequence[str], actor: str = ""
) -> ManualDownload:
    """Manual Download Order, with the numbers the marketplace did not know."""
    numbers = parse_order_numbers(order_numbers)
    orders = _fetch(channel, numbers)
    logs = _process(channel, orders, origin=Origin.MANUAL, actor=actor)
    found = {_number_key(order.order_number) for order in orders}
    return ManualDownload(
        logs=logs,
        not_found=[n for n in numbers if _number_key(n) not in found],
        found=[n for n in numbers if _number_key(n) in found],
    )


def _number_key(number: str) -> str:
    """An order number as typed and as the marketplace spells it compare equal: "#1042" and
    "1042" (Shopify names, WooCommerce numbers), letter case aside."""
    return number.strip().lstrip("#").strip().lower()


def parse_order_numbers(raw: Sequence[str] | str) -> list[str]:
    """Order numbers from a list or from text (separated by commas, spaces or new lines),
    stripped and de-duplicated in their order."""
    parts = re.split(r"[\s,;]+", raw) if isinstance(raw, str) else list(raw)
    numbers = list(dict.fromkeys(str(part).strip() for part in parts if str(part).strip()))
    if not numbers:
        raise InvalidOrderNumbers("Give at least one order number.")
    if len(numbers) > MAX_MANUAL_NUMBERS:
        raise InvalidOrderNumbers(
            f"Give at most {MAX_MANUAL_NUMBERS} order numbers at a time ({len(numbers)} given)."
        )
    too_long = [n for n in numbers if len(n) > 64]
    if too_long:
        raise InvalidOrderNumbers(f"Not an order number (too long): {too_long[0][:80]!r}.")
    return numbers


def _fetch(channel: Channel, numbers: Sequence[str]) -> list[RemoteOrder]:
    try:
        return adapter_for(channel).get_orders(numbers)
    except OrderNumbersMalformed as exc:  # a mistyped number: the request's fault
        raise InvalidOrderNumbers(str(exc)) from exc
    except AdapterError as exc:
        raise OrderDownloadFailed(
            f"Could not download the orders from {channel.name}: {exc}", retryable=exc.retryable
        ) from exc


def _process(
    channel: Channel,
    orders: Sequence[RemoteOrder],
    *,
    origin: str,
    actor: str,
    create_missing: bool = True,
) -> list[SyncLog]:
    try:
        return orders_process(
            channel=channel,
            orders=orders,
            origin=origin,
            actor=actor,
            create_missing=create_missing,
        )
    except OrdersFailed as exc:
        raise OrderDownloadFailed(str(exc), retryable=True) from exc


# --- missing orders -----------------------------------------------------------------------------


def orders_reconcile(
    *, channel: Channel, days: int = MISSING_LOOKBACK_DAYS, now: datetime | None = None
) -> list[SyncLog]:
    """List the channel's orders updated in the last `days` and log, as 404 on Create Order,
    each one the POS lacks (cancelled and returned ones excepted: they need nothing). An order
    already logged missing in the last day is not logged again. Creates no documents: staff
    download them (the admin action or Manual Download Order).

    Cost: the adapter's calls for the whole range, one query per page, one bulk insert.
    """
    now = now or timezone.now()
    try:
        pages = list(
            adapter_for(channel).iter_orders(
                updated_from=now - timedelta(days=days), updated_to=now
            )
        )
    except AdapterError as exc:
        raise OrderDownloadFailed(
            f"Could not list the orders of {channel.name}: {exc}", retryable=exc.retryable
        ) from exc
    rows: list[SyncLog] = []
    for page in pages:
        rows.extend(_missing_rows(channel, page, now))
    SyncLog.objects.bulk_create(rows)
    return rows


def _missing_rows(channel: Channel, page: Sequence[RemoteOrder], now: datetime) -> list[SyncLog]:
    wanted = [o for o in page if o.state not in (OrderState.CANCELLED, OrderState.RETURNED)]
    numbers = [o.order_number for o in wanted]
    known = set(
        SalesOrder.objects.filter(channel=channel, order_number__in=numbers).values_list(
            "order_number", flat=True
        )
    )
    flagged = set(
        SyncLog.objects.filter(
            channel=channel,
            order_number__in=numbers,
            status=SyncLog.Status.MISSING,
            created_at__gte=now - timedelta(days=1),
        ).values_list("order_number", flat=True)
    )
    kind = channel.get_kind_display()
    return [
        SyncLog(
            channel=channel,
            order_number=order.order_number,
            action=SyncLog.Action.CREATE_ORDER,
            status=SyncLog.Status.MISSING,
            origin=Origin.RECONCILE,
            message=(
                f"{kind} has this order ({order.status}, updated "
                f"{timezone.localtime(order.updated_at):%Y-%m-%d %H:%M}) but the POS does not: "
                "it was missed by the automatic download. Download it with Manual Download Order."
            ),
            request=order_json(order),
            actor="missing-order check",
            created_at=now,
        )
        for order in wanted
        if order.order_number not in known and order.order_number not in flagged
    ]


def missing_order_numbers(
    *, channel: Channel, days: int = MISSING_LOOKBACK_DAYS, now: datetime | None = None
) -> list[str]:
    """Order numbers logged 404 in the last `days` that are still not in the POS."""
    since = (now or timezone.now()) - timedelta(days=days)
    logged = (
        SyncLog.objects.filter(
            channel=channel, status=SyncLog.Status.MISSING, created_at__gte=since
        )
        .order_by()
        .values_list("order_number", flat=True)
        .distinct()
    )
    numbers = set(logged)
    known = set(
        SalesOrder.objects.filter(channel=channel, order_number__in=numbers).values_list(
            "order_number", flat=True
        )
    )
    return sorted(numbers - known)


def orders_download_missing(
    *, channel: Channel, days: int = MISSING_LOOKBACK_DAYS, actor: str = ""
) -> ManualDownload:
    """Manual Download Order for every order of the channel logged missing and still absent."""
    numbers = missing_order_numbers(channel=channel, days=days)
    if not numbers:
        return ManualDownload(logs=[], not_found=[])
    total = ManualDownload(logs=[], not_found=[])
    for start in range(0, len(numbers), MAX_MANUAL_NUMBERS):
        chunk = numbers[start : start + MAX_MANUAL_NUMBERS]
        done = orders_download_by_number(channel=channel, order_numbers=chunk, actor=actor)
        total.logs += done.logs
        total.not_found += done.not_found
        total.found += done.found
    return total


# --- webhook-driven ----------------------------------------------------------------------------


def order_download_pushed(*, channel: Channel, order_number: str) -> list[SyncLog]:
    """Download one order a push was about and run it through the pipeline as a status
    signal: a paid or shipped order the POS never received is logged 404, not created."""
    orders = _fetch(channel, [order_number])
    return _process(channel, orders, origin=Origin.WEBHOOK, actor="webhook", create_missing=False)


def synclogs_prune(*, before: datetime, batch_size: int = 10_000, commit: bool = False) -> int:
    """Delete (or, without `commit`, count) log rows and webhook events older than `before`,
    in batches of `batch_size` primary keys, each its own transaction, so no statement holds
    locks on millions of rows at once. The number of rows."""
    total = 0
    for model, field_name in ((SyncLog, "created_at"), (WebhookEvent, "received_at")):
        old = model.objects.filter(**{f"{field_name}__lt": before})
        if not commit:
            total += old.count()
            continue
        while True:
            ids = list(old.order_by().values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            model.objects.filter(pk__in=ids).delete()
            total += len(ids)
    return total


# --- the report ---------------------------------------------------------------------------------


def report_snapshot(*, days: int = 7, refresh: bool = False) -> selectors.SyncReport:
    """The Sync Logs report by channel (selectors.sync_report_by_channel), from its stored
    snapshot while that is fresh: same range, and nothing logged since or computed under
    REPORT_FRESH_SECONDS ago. Otherwise (or with `refresh`) counted again: inside the request
    when the last count was quick; when it took longer than REPORT_INLINE_SECONDS (a week of a
    busy shop's log), the stale snapshot is returned, marked `recounting`, and the worker
    counts again (report_recount), so no page view waits seconds for it.

    Cost: one or two small reads when a snapshot is used; else the report's aggregate queries
    and one write.
    """
    since, until = selectors.report_range(days=days)
    stored = ReportSnapshot.objects.filter(days=days).first()
    if stored is not None and not refresh and stored.since == since:
        if _fresh(stored):
            return _from_snapshot(stored)
        if stored.compute_seconds > REPORT_INLINE_SECONDS:
            _recount_later(days)
            return replace(_from_snapshot(stored), recounting=True)
    return report_recount(days=days)


def report_recount(*, days: int = 7) -> selectors.SyncReport:
    """Count the report again and store it as the snapshot of `days`."""
    cache.delete(_recount_key(days))  # views from now on may queue the next one
    started = time.monotonic()
    report = selectors.sync_report_by_channel(days=days)
    fields = {
        "since": report.since,
        "until": report.until,
        "up_to_id": report.up_to_id,
        "computed_at": report.computed_at,
        "compute_seconds": time.monotonic() - started,
        "channels": selectors.sync_report_as_json(report),
    }
    if ReportSnapshot.objects.filter(days=days).update(**fields):
        return report
    try:
        with transaction.atomic():
            ReportSnapshot.objects.create(days=days, **fields)
    except IntegrityError:  # another request stored its snapshot first: as good as ours
        pass
    return report


def _from_snapshot(stored: ReportSnapshot) -> selectors.SyncReport:
    return selectors.sync_report_from_json(
        stored.channels,
        since=stored.since,
        until=stored.until,
        up_to_id=stored.up_to_id,
        computed_at=stored.computed_at,
    )


def _recount_key(days: int) -> str:
    return f"synclogs:report-recount:{days}"


def _recount_later(days: int) -> None:
    """Queue one recount of the report; views meanwhile (a minute at most) queue none."""
    if cache.add(_recount_key(days), True, timeout=REPORT_FRESH_SECONDS):
        from django_q.tasks import async_task

        transaction.on_commit(
            lambda: async_task("synclogs.tasks.report_recount", days, group="report")
        )


def _fresh(stored: ReportSnapshot) -> bool:
    age = timezone.now() - stored.computed_at
    if timedelta(0) <= age < timedelta(seconds=REPORT_FRESH_SECONDS):
        return True
    newest = SyncLog.objects.aggregate(newest=Max("id"))["newest"] or 0
    return newest == stored.up_to_id
