"""`bench orders`: marketplace orders through the order pipeline, then the 7-day Sync Logs report.

Orders are RemoteOrder objects built in memory (no HTTP: the pipeline's own cost is what is
measured), `--lines` lines each over a pool of POS variants, in a mix of states as a scheduled
download meets them: 40% unpaid (Create Order), 40% paid (Create Invoice + Add Payment), 20%
shipped (Create Invoice + Create Outbound Logistic + Add Payment). They go through
`orders_process` a page of 100 at a time, as a download does. A second pass downloads them all
again (every step 409: the idempotence checks' cost). Each pass prints the statements it sent
per order, savepoints included.

Then `--log-rows` sync log rows are bulk-inserted, spread evenly over `--log-days` days (90 is
the retention), and `sync_report(days=7)` is timed.

The run creates its own outlet, variants and channel (named omni-bench-orders…) and removes
them and their orders and logs afterwards unless --keep. Use a scratch database.
"""

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from catalog.models import Outlet, Product, Stock, StockMovement, Variant
from catalog.services import StockChange, stock_apply
from channels.adapters.base import OrderState, RemoteOrder, RemoteOrderLine
from channels.models import Channel
from omni.benchmarks import Report, positive_int
from synclogs.models import (
    Invoice,
    OutboundLogistic,
    Payment,
    SalesOrder,
    SalesOrderLine,
    SyncLog,
)
from synclogs.pipeline import orders_process
from synclogs.selectors import sync_report

PREFIX = "omni-bench-orders"
PAGE = 100
STATUS_OF = {
    OrderState.UNPAID: "UNPAID",
    OrderState.PAID: "READY_TO_SHIP",
    OrderState.SHIPPED: "SHIPPED",
}


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "orders", help="Orders through the pipeline; the 7-day report.", description=__doc__
    )
    parser.add_argument("--orders", type=positive_int, default=10_000, help="Default 10000.")
    parser.add_argument("--lines", type=positive_int, default=3, help="Lines per order (3).")
    parser.add_argument("--variants", type=positive_int, default=500, help="SKU pool (500).")
    parser.add_argument(
        "--log-rows", type=int, default=1_000_000, help="Log rows for the report (1000000)."
    )
    parser.add_argument(
        "--log-days", type=positive_int, default=90, help="Days the log rows span (90)."
    )
    parser.add_argument("--keep", action="store_true", help="Leave the data in place.")
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    _clean()
    try:
        channel, variants = _setup(options["variants"])
        orders = _orders(options["orders"], options["lines"], variants)
        report.line(
            f"{len(orders):,} orders × {options['lines']} lines over {len(variants)} SKUs "
            "(40% unpaid, 40% paid, 20% shipped), built in memory"
        )
        _pipeline(report, channel, orders, "pipeline: first download")
        _pipeline(report, channel, orders, "pipeline: downloaded again (409)")
        _report(report, channel, options["log_rows"], options["log_days"])
    finally:
        if not options["keep"]:
            _clean()


def _pipeline(report: Report, channel: Channel, orders: list[RemoteOrder], name: str) -> None:
    rows = 0
    queries = _QueryCount()
    with report.phase(name, rows=len(orders)) as phase, connection.execute_wrapper(queries):
        for start in range(0, len(orders), PAGE):
            rows += len(
                orders_process(
                    channel=channel, orders=orders[start : start + PAGE], origin="schedule"
                )
            )
        phase.rows = len(orders)
    report.line(
        f"  {len(orders) / phase.seconds:,.0f} orders/s, {rows:,} log rows written, "
        f"{queries.count / len(orders):.1f} statements per order (savepoints included)"
    )


class _QueryCount:
    """An execute wrapper counting the statements sent (transaction commits are not: Django
    sends those outside `execute`)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def _report(report: Report, channel: Channel, count: int, days: int) -> None:
    if count <= 0:
        return
    with report.phase("log rows: bulk insert", rows=count, counted=False):
        _log_rows(channel, count, days)
    if connection.vendor == "postgresql":
        # What autovacuum does soon after a bulk load: statistics, and the visibility map
        # that lets the report be answered from its index alone.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE synclogs_synclog")
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        rows = sync_report(days=7)
        timings.append((time.perf_counter() - started) * 1000)
    in_window = sum(r.transactions for r in rows)
    total = SyncLog.objects.count()
    report.line(
        f"7-day report over {total:,} log rows ({in_window:,} in the window, {len(rows)} "
        f"report rows): best {min(timings):.0f} ms, median {statistics.median(timings):.0f} ms"
    )


def _setup(count: int) -> tuple[Channel, list[Variant]]:
    outlet = Outlet.objects.create(code=PREFIX, name="Bench orders outlet")
    product = Product.objects.create(name=f"{PREFIX} product")
    Variant.objects.bulk_create(
        Variant(product=product, sku=f"{PREFIX}-{i:05d}", retail_price=Decimal("10.00"))
        for i in range(count)
    )
    variants = list(Variant.objects.filter(product=product).order_by("pk"))
    stock_apply(
        changes=[StockChange(v.pk, outlet.pk, set_on_hand=1_000_000) for v in variants],
        trigger=StockMovement.Trigger.IMPORT,
    )
    channel = Channel.objects.create(
        kind="shopee",
        name=PREFIX,
        api_base_url="http://127.0.0.1:9",
        credentials={},
        order_outlet=outlet,
        inventory_sync_mode=Channel.SyncMode.NONE,
    )
    return channel, variants


def _orders(count: int, lines: int, variants: list[Variant]) -> list[RemoteOrder]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    states = [OrderState.UNPAID] * 4 + [OrderState.PAID] * 4 + [OrderState.SHIPPED] * 2
    orders = []
    for i in range(count):
        state = states[i % len(states)]
        picked = rng.sample(variants, lines)
        order_lines = tuple(
            RemoteOrderLine(
                line_id=f"{n}",
                item_id=f"{900_000 + variant.pk}",
                variant_id="",
                sku=variant.sku,
                title=f"Bench item {variant.sku}",
                quantity=rng.randint(1, 3),
                unit_price=Decimal("10.00"),
            )
            for n, variant in enumerate(picked)
        )
        orders.append(
            RemoteOrder(
                order_number=f"BENCH{i:08d}",
                order_id=f"BENCH{i:08d}",
                status=STATUS_OF[state],
                state=state,
                created_at=now,
                updated_at=now,
                currency="SGD",
                total=sum((line.unit_price * line.quantity for line in order_lines), Decimal(0)),
                lines=order_lines,
                paid_at=None if state == OrderState.UNPAID else now,
                payment_method="ShopeePay",
                courier="Shopee Express" if state == OrderState.SHIPPED else "",
                tracking_number=f"SPX{i:010d}" if state == OrderState.SHIPPED else "",
                source={"order_sn": f"BENCH{i:08d}", "order_status": STATUS_OF[state]},
            )
        )
    return orders


def _log_rows(channel: Channel, count: int, days: int) -> None:
    """`count` rows spread evenly over the last `days` days, every step and status."""
    now = datetime.now(UTC)
    span = days * 86400
    actions, statuses = list(SyncLog.Action.values), [200, 200, 200, 409, 409, 400, 404]
    batch: list[SyncLog] = []
    for i in range(count):
        batch.append(
            SyncLog(
                channel=channel,
                order_number=f"LOG{i:09d}",
                action=actions[i % len(actions)],
                status=statuses[i % len(statuses)],
                origin="schedule",
                message="Bench row.",
                request={"order_number": f"LOG{i:09d}"},
                created_at=now - timedelta(seconds=span * i / count),
            )
        )
        if len(batch) == 10_000:
            SyncLog.objects.bulk_create(batch)
            batch = []
    SyncLog.objects.bulk_create(batch)


def _clean() -> None:
    channels = Channel.objects.filter(name=PREFIX)
    SyncLog.objects.filter(channel__in=channels).delete()
    orders = SalesOrder.objects.filter(channel__in=channels)
    Payment.objects.filter(order__in=orders).delete()
    OutboundLogistic.objects.filter(order__in=orders).delete()
    Invoice.objects.filter(order__in=orders).delete()
    SalesOrderLine.objects.filter(order__in=orders).delete()
    orders.delete()
    channels.delete()
    StockMovement.objects.filter(outlet__code=PREFIX).delete()
    Stock.objects.filter(outlet__code=PREFIX).delete()
    Product.objects.filter(name=f"{PREFIX} product").delete()
    Outlet.objects.filter(code=PREFIX).delete()
