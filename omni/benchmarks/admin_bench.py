"""`bench admin`: the server time of the admin pages staff use all day, on a large database.

It builds its own data (or, with --reuse, times the dataset an earlier --reuse run left):
two channels, the first with `--listings` listings (default 100,000) and the second with one
tenth as many, and POS products and variants, so that every product tab has rows. Of the first
channel's listings, 88% are mapped to a variant of their own (a few inactive or removed), 8%
are not in the POS (one in eight of those with a blank SKU) and 4% copy the SKU of a mapped
listing (so 8% are in Multiple Listed SKU); one variant in seventeen is on no listing (Not in
Channel). Then `--logs` sync log rows (default 1,000,000) spread over the last `--log-days`
days (default 8), four steps per order number, across the six steps and the statuses
200/409/400/404. Rows go in through COPY (omni.bulk.copy_insert), then the tables are vacuumed
and analysed, as autovacuum soon would.

Then a superuser (logged in with the test client's force_login) asks for each page: every
product tab of the first channel, Sold in Channel searched for part of a SKU, the channel list,
Sync Logs All, one step's tab, Sync Logs filtered by status 404 and a channel, searched for part
of an order number, and the 7-day report (as kept, and counted again). Each page is asked once
to warm caches, once to count its queries and add up their time, then `--repeat` times to time
it. The time is the whole request in this process: middleware, views, queries and template
rendering; no network, no browser. A page that does not answer 200 fails the run. For a page
over the 200 ms target on PostgreSQL, the plan of its slowest query (EXPLAIN ANALYZE) is
printed.

It writes to the configured database: use a scratch one. Its rows are named omni-bench-admin…
and removed afterwards, unless --reuse, which leaves them for the next --reuse run.
"""

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Max, Min, Q
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from catalog.models import Outlet, Product, Variant, sku_key
from channels.models import Channel, Listing, PendingPush
from channels.tabs import BY_SLUG, TABS, Rows
from omni.benchmarks import Report, positive_int
from omni.bulk import copy_insert
from synclogs.admin import CHANNEL_PARAM, STATUS_PARAM
from synclogs.models import ACTION_MODELS, SyncLog

NAME = "omni-bench-admin"
FIRST, SECOND = f"{NAME}-1", f"{NAME}-2"
STAFF = f"{NAME}-staff"
TARGET_MS = 200
REUSE_HOURS = 20  # an older dataset's newest logs are too far behind "now": built again
VARIANTS_PER_PRODUCT = 4
SIZES = ("S", "M", "L", "XL")
WORDS = ("Linen", "Cotton", "Merino", "Denim", "Canvas", "Bamboo", "Flannel", "Oxford")
ITEMS = ("Tee", "Shirt", "Polo", "Hoodie", "Jacket", "Chinos", "Shorts", "Cap")
BATCH = 100_000  # rows built in memory at a time, then sent by COPY
# Four steps per order: the usual path, and one order in five paid at once then voided.
PATHS = (
    (
        SyncLog.Action.CREATE_ORDER,
        SyncLog.Action.CONVERT_ORDER_TO_INVOICE,
        SyncLog.Action.CREATE_OUTBOUND_LOGISTIC,
        SyncLog.Action.ADD_PAYMENT,
    ),
    (
        SyncLog.Action.CREATE_INVOICE,
        SyncLog.Action.ADD_PAYMENT,
        SyncLog.Action.CREATE_OUTBOUND_LOGISTIC,
        SyncLog.Action.VOID_INVOICE,
    ),
)
# Out of 20 rows: 12 done, 4 already done, 2 wrong status, 2 missing in the POS.
STATUSES = (200,) * 12 + (409,) * 4 + (400,) * 2 + (404,) * 2
MESSAGES = {
    200: "Done.",
    409: "Already done: nothing was written twice.",
    400: "The marketplace status does not allow this step yet.",
    404: "The order is missing in the POS: download it with Manual Download Order.",
}


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "admin",
        help="Server time of the admin pages staff use all day, on a large database.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listings", type=positive_int, default=100_000, help="On the first channel (100000)."
    )
    parser.add_argument(
        "--logs", type=positive_int, default=1_000_000, help="Sync log rows (1000000)."
    )
    parser.add_argument(
        "--log-days",
        type=positive_int,
        default=8,
        help="Days the log rows span (8: the 7-day report's window is full; 90 is the retention).",
    )
    parser.add_argument("--repeat", type=positive_int, default=5, help="Timed asks per page (5).")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Time the dataset an earlier --reuse run left, if it has these sizes (built "
        "otherwise), and leave it in place afterwards.",
    )
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    report.line(
        f"writes to the configured database ({connection.settings_dict['NAME']}): channels, "
        f"products and an outlet named {NAME}…, their listings and logs; use a scratch database"
    )
    report.line(f"load average at start: {_load()}")
    if settings.DEBUG:
        report.line("DEBUG is on: every query is recorded; run with DEBUG=false for real figures")
    _refuse_unmigrated()
    try:
        first = _dataset(options, report)
        _describe(first, report)
        pages = _pages(first, options["listings"], options["logs"])
        with _logged_in() as client:
            timings = [_time(client, page, options["repeat"]) for page in pages]
        _print(timings, report)  # while the data is there: it explains the slowest queries
    finally:
        if not options["reuse"]:
            with report.phase("remove the data", counted=False):
                _clean()
    report.line(f"load average at end: {_load()}")
    failed = [t for t in timings if t.failure]
    if failed:
        raise CommandError(
            "These pages did not answer 200: "
            + "; ".join(f"{t.page.label} ({t.failure})" for t in failed)
        )


def _refuse_unmigrated() -> None:
    """Pages of a model whose table is missing answer 500: say why before building anything."""
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in pending[:5])
        raise CommandError(f"The database has unapplied migrations ({names}): run migrate first.")


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


# --- the data --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sizes:
    listings: int  # on the first channel
    logs: int
    log_days: int


def _dataset(options: dict[str, Any], report: Report) -> Channel:
    """The first channel of a dataset of the asked sizes: the one left by --reuse, or new."""
    sizes = Sizes(options["listings"], options["logs"], options["log_days"])
    if options["reuse"]:
        found = _existing(sizes)
        if found is not None:
            report.line(f"reusing the dataset built at {found.created_at:%Y-%m-%d %H:%M} UTC")
            return found
        report.line(f"no dataset of these sizes under {REUSE_HOURS} hours old: building one")
    with report.phase("remove earlier data", counted=False):
        _clean()
    with transaction.atomic():
        first = _build(sizes, report)
    with report.phase("vacuum and analyse", counted=False):
        _analyze()
    return first


def _existing(sizes: Sizes) -> Channel | None:
    first = Channel.objects.filter(name=FIRST).first()
    if first is None or first.created_at < timezone.now() - timedelta(hours=REUSE_HOURS):
        return None
    if Listing.objects.filter(channel=first).count() != sizes.listings:
        return None
    logs = SyncLog.objects.filter(channel__name__in=[FIRST, SECOND]).aggregate(
        rows=Count("pk"), oldest=Min("created_at")
    )
    if logs["rows"] != sizes.logs:
        return None
    span = (first.created_at - logs["oldest"]) / timedelta(days=1)
    return first if abs(span - sizes.log_days) < 0.5 else None


def _build(sizes: Sizes, report: Report) -> Channel:
    outlet = Outlet.objects.create(code=NAME, name="Admin bench outlet")
    first, second = (
        Channel.objects.create(
            kind=kind,
            name=name,
            api_base_url="http://127.0.0.1:9",  # never called: the bench only reads pages
            credentials={},
            order_outlet=outlet,
            inventory_sync_mode=Channel.SyncMode.NONE,
        )
        for kind, name in (("shopee", FIRST), ("lazada", SECOND))
    )
    plan = _plan(sizes.listings)
    with report.phase("products and variants", counted=False) as phase:
        variant_ids = _catalog(_variant_count(plan))
        phase.rows = len(variant_ids)
    with report.phase("listings", counted=False) as phase:
        phase.rows = _listings(first, second, plan, variant_ids)
    with report.phase("sync log rows", counted=False) as phase:
        phase.rows = _logs(first, second, sizes.logs, sizes.log_days)
    return first


@dataclass(frozen=True, slots=True)
class Planned:
    """One listing of the first channel: its SKU, the variant it is mapped to (an index into
    the bench's variants, None: not in POS), whether it shares its SKU, and its status."""

    sku: str
    variant: int | None
    duplicate: bool
    status: str


def _plan(listings: int) -> list[Planned]:
    """Per hundred listings: 8 not in POS (one blank), 4 sharing the SKU of the listing four
    places on, 88 mapped each to its own variant (2 of them inactive and 1 removed)."""
    plan = []
    for i in range(listings):
        cycle, place = divmod(i, 100)
        if place < 8 or (place < 12 and i + 4 >= listings):
            plan.append(Planned("" if place == 0 else f"NIP{i:07d}", None, False, "live"))
        elif place < 12:
            variant = _mapped_variant(cycle, place + 4)
            plan.append(Planned(_sku(variant), variant, True, "live"))
        else:
            variant = _mapped_variant(cycle, place)
            status = "removed" if place == 99 else "inactive" if place >= 97 else "live"
            plan.append(Planned(_sku(variant), variant, place < 16, status))
    return plan


def _mapped_variant(cycle: int, place: int) -> int:
    return cycle * 88 + place - 12


def _sku(variant: int) -> str:
    return f"ADM{variant:06d}-{SIZES[variant % len(SIZES)]}"


def _variant_count(plan: list[Planned]) -> int:
    """The mapped variants, and one in sixteen more that no listing carries (Not in Channel)."""
    mapped = 1 + max((p.variant for p in plan if p.variant is not None), default=-1)
    return mapped + max(1, mapped // 16)


def _product_name(product: int) -> str:
    word, item = WORDS[product % len(WORDS)], ITEMS[product // len(WORDS) % len(ITEMS)]
    return f"{word} {item} {product}"


def _catalog(variants: int) -> list[int]:
    """Products of four variants each; the variants' primary keys, in order."""
    now = timezone.now()
    products = -(-variants // VARIANTS_PER_PRODUCT)
    product_ids = copy_insert(
        Product,
        [
            {"handle": f"{NAME}-{p}", "name": _product_name(p), "updated_at": now}
            for p in range(products)
        ],
        _ignore,
    )
    rows = [
        {
            "product_id": product_ids[v // VARIANTS_PER_PRODUCT],
            "sku": _sku(v),
            "options": {"Size": SIZES[v % len(SIZES)]},
            "retail_price": Decimal("49.90"),
            "position": v % VARIANTS_PER_PRODUCT,
            "updated_at": now,
        }
        for v in range(variants)
    ]
    return copy_insert(Variant, rows, _ignore)


def _listings(first: Channel, second: Channel, plan: list[Planned], variant_ids: list[int]) -> int:
    """The first channel's listings as planned; the second's, one tenth as many, all mapped."""
    now = timezone.now()
    rows = [_listing(first, i, p, variant_ids, now) for i, p in enumerate(plan)]
    mapped = [p for p in plan if p.variant is not None and not p.duplicate]
    rows += [
        _listing(second, i, p, variant_ids, now)
        for i, p in enumerate(mapped[: max(1, len(plan) // 10)])
    ]
    for start in range(0, len(rows), BATCH):
        copy_insert(Listing, rows[start : start + BATCH], _ignore, keys=False)
    return len(rows)


def _listing(
    channel: Channel, i: int, planned: Planned, variant_ids: list[int], now: Any
) -> dict[str, Any]:
    variant = planned.variant
    name = _product_name(variant // VARIANTS_PER_PRODUCT) if variant is not None else "Bundle"
    return {
        "channel_id": channel.pk,
        "item_id": str(700_000_000 + i // 3),
        "variant_ref": str(900_000_000 + i),
        "sku": planned.sku,
        "sku_key": sku_key(planned.sku),
        "title": f"{name} {i}",
        "price": Decimal("50000"),
        "quantity": i % 50,
        "status": planned.status,
        "variant_id": variant_ids[variant] if variant is not None else None,
        "duplicate_sku": planned.duplicate,
        "last_seen_at": now,
        "updated_at": now,
    }


def _logs(first: Channel, second: Channel, count: int, days: int) -> int:
    """`count` rows, four per order number, newest first, over the last `days` days; three
    orders in four on the first channel."""
    now = timezone.now()
    orders = -(-count // 4)
    for start in range(0, count, BATCH):
        rows = []
        for i in range(start, min(count, start + BATCH)):
            order, step = divmod(i, 4)
            number = _order_number(order)
            status = STATUSES[(order * 7 + step) % len(STATUSES)]
            rows.append(
                {
                    "channel_id": (first if order % 4 else second).pk,
                    "order_number": number,
                    "action": PATHS[1 if order % 5 == 0 else 0][step],
                    "status": status,
                    "origin": SyncLog.Origin.SCHEDULE,
                    "message": MESSAGES[status],
                    "request": {"order_number": number},
                    "created_at": now - timedelta(seconds=days * 86400 * order / orders - step),
                }
            )
        copy_insert(SyncLog, rows, _ignore, keys=False)
    return count


def _order_number(order: int) -> str:
    return f"24{order:08d}AD"


def _ignore(rows: int) -> None:
    """copy_insert's progress callback: nothing to show."""


def _analyze() -> None:
    """Statistics and the visibility map after a bulk load, as autovacuum soon would."""
    tables = ("catalog_product", "catalog_variant", "channels_listing", "synclogs_synclog")
    verb = "VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE"
    if connection.in_atomic_block:
        verb = "ANALYZE"  # VACUUM cannot run inside a transaction
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{verb} {connection.ops.quote_name(table)}")


def _describe(first: Channel, report: Report) -> None:
    channels = Channel.objects.filter(name__in=[FIRST, SECOND])
    logs = SyncLog.objects.filter(channel__in=channels).aggregate(
        rows=Count("pk"),
        week=Count("pk", filter=Q(created_at__gte=timezone.now() - timedelta(days=7))),
        oldest=Min("created_at"),
        newest=Max("created_at"),
    )
    span = (logs["newest"] - logs["oldest"]) / timedelta(days=1) if logs["rows"] else 0
    tab_rows = ", ".join(
        f"{tab.queryset(first).count():,} {tab.title}" for tab in TABS if tab.rows is Rows.LISTINGS
    )
    report.line(
        f"dataset: {Listing.objects.filter(channel=first).count():,} listings on {FIRST} "
        f"({tab_rows}), {Listing.objects.filter(channel__name=SECOND).count():,} on {SECOND}, "
        f"{Variant.objects.filter(product__handle__startswith=f'{NAME}-').count():,} variants, "
        f"{logs['rows']:,} sync log rows over {span:.1f} days ({logs['week']:,} in the last 7)"
    )
    report.line(
        f"the database holds {Listing.objects.count():,} listings on "
        f"{Channel.objects.count():,} channels and {SyncLog.objects.count():,} sync log rows"
    )


def _clean() -> None:
    """Remove the bench's rows with plain DELETEs, children first; no rows are loaded.
    A row of someone else's pointing at them makes this fail rather than lose it."""
    channels = Channel.objects.filter(name__in=[FIRST, SECOND])
    SyncLog.objects.filter(channel__in=channels)._raw_delete(SyncLog.objects.db)
    PendingPush.objects.filter(channel__in=channels).delete()
    Listing.objects.filter(channel__in=channels)._raw_delete(Listing.objects.db)
    channels.delete()
    Variant.objects.filter(product__handle__startswith=f"{NAME}-")._raw_delete(Variant.objects.db)
    Product.objects.filter(handle__startswith=f"{NAME}-")._raw_delete(Product.objects.db)
    Outlet.objects.filter(code=NAME).delete()
    get_user_model().objects.filter(username=STAFF).delete()


# --- the pages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    label: str
    url: str


def _pages(first: Channel, listings: int, logs: int) -> list[Page]:
    """Every page timed, for the first channel; the searches look for the middle four
    characters of a SKU and of an order number that are in the data."""
    sold = BY_SLUG["sold_in_channel"]
    sold_url = reverse(sold.changelist_url_name) + f"?channel={first.pk}"
    sku = _middle(_sku(_mapped_variant(listings // 200, 50)))
    number = _middle(_order_number(logs // 8))
    synclogs = reverse("admin:synclogs_synclog_changelist")
    return [
        *(Page(t.title, reverse(t.changelist_url_name) + f"?channel={first.pk}") for t in TABS),
        Page(f"{sold.title} · search {sku}", f"{sold_url}&{urlencode({'q': sku})}"),
        Page("Channels", reverse("admin:channels_channel_changelist")),
        Page("Sync Logs · All", synclogs),
        _step_page(),
        Page(
            "Sync Logs · 404 on one channel",
            f"{synclogs}?{urlencode({STATUS_PARAM: 404, CHANNEL_PARAM: first.pk})}",
        ),
        Page(f"Sync Logs · search {number}", f"{synclogs}?{urlencode({'q': number})}"),
        Page("Sync Logs · 7-day report", _report_url()),
        # Its "Count again now" link: the figures computed afresh rather than read as kept.
        Page("Sync Logs · 7-day report, counted again", f"{_report_url()}?refresh=1"),
    ]


def _middle(text: str) -> str:
    start = (len(text) - 4) // 2
    return text[start : start + 4]


def _step_page() -> Page:
    """The first step's tab (Create Order) that the admin registers."""
    for model in ACTION_MODELS.values():
        if admin.site.is_registered(model):
            opts = model._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            return Page(f"Sync Logs · {opts.verbose_name_plural}", url)
    raise CommandError("The admin registers no Sync Logs step tab.")


def _report_url() -> str:
    """The 7-day report: a page of the SyncLog admin's own URLs, whatever it is named."""
    model_admin = admin.site.get_model_admin(SyncLog)
    names = [p.name for p in model_admin.get_urls() if p.name and "report" in p.name]
    if not names:
        raise CommandError("The SyncLog admin has no report URL.")
    return reverse(f"admin:{names[0]}")


@dataclass
class Timing:
    page: Page
    queries: int = 0
    ms: list[float] | None = None
    failure: str = ""
    db_ms: float = 0.0  # the queries' time in the counted ask (a warm one)
    slowest: str = ""  # the slowest query's SQL, from the counted ask
    slowest_ms: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.ms or [0.0])

    @property
    def max(self) -> float:
        return max(self.ms or [0.0])


@contextmanager
def _logged_in() -> Iterator[Client]:
    """A test client with a superuser logged in; logged out and the user removed after."""
    user, _ = get_user_model().objects.get_or_create(
        username=STAFF, defaults={"is_staff": True, "is_superuser": True}
    )
    # A page that raises answers 500 (logged with its traceback) and the run goes on.
    client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    client.force_login(user)
    # The host must be one the settings accept, and DEBUG=false accepts none unless told.
    try:
        with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "127.0.0.1"]):
            yield client
    finally:
        client.logout()
        user.delete()


def _time(client: Client, page: Page, repeat: int) -> Timing:
    """Ask once to warm caches, once counting queries, then `repeat` times timed."""
    timing = Timing(page)
    timing.failure = _failure(client.get(page.url, secure=True))
    if timing.failure:
        return timing
    with CaptureQueriesContext(connection) as captured:
        response = client.get(page.url, secure=True)
    timing.failure = _failure(response)
    if timing.failure:
        return timing
    queries = captured.captured_queries
    timing.queries = len(queries)
    timing.db_ms = sum(float(q["time"]) for q in queries) * 1000
    slowest = max(queries, key=lambda q: float(q["time"]))
    timing.slowest, timing.slowest_ms = slowest["sql"], float(slowest["time"]) * 1000
    timing.ms = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(page.url, secure=True)
        timing.ms.append((time.perf_counter() - start) * 1000)
        timing.failure = _failure(response)
        if timing.failure:
            return timing
    return timing


def _failure(response: HttpResponse) -> str:
    """Why the answer is not a page (empty when it is one)."""
    if response.status_code == 200:
        return ""
    where = response.get("Location", "")
    if response.status_code == 302 and "/login/" in where:
        return f"HTTP 302 to the login page {where}: the superuser's login did not hold"
    return f"HTTP {response.status_code}" + (f" to {where}" if where else "")


def _print(timings: list[Timing], report: Report) -> None:
    report.line(
        f"{'page':<40} {'median ms':>10} {'max ms':>8} {'queries':>8} {'their ms':>9}  (once)"
    )
    for t in timings:
        if t.failure:
            report.line(f"{t.page.label:<40} FAILED: {t.failure}")
            continue
        report.line(
            f"{t.page.label:<40} {t.median:>10.1f} {t.max:>8.1f} {t.queries:>8} {t.db_ms:>9.1f}"
        )
    over = [t for t in timings if not t.failure and t.median > TARGET_MS]
    summary = ", ".join(f"{t.page.label} ({t.median:.0f} ms)" for t in over) or "none"
    report.line(f"target ≤ {TARGET_MS} ms median per page; over it: {summary}")
    for t in over:
        _explain(t, report)


def _explain(timing: Timing, report: Report) -> None:
    """The plan of the page's slowest query (PostgreSQL, SELECTs only)."""
    report.line(f"{timing.page.label}: {timing.page.url}")
    sql = timing.slowest
    if connection.vendor != "postgresql" or not sql.lstrip().upper().startswith(("SELECT", "WITH")):
        report.line(f"  slowest query ({timing.slowest_ms:.0f} ms): {sql[:300]}")
        return
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + sql)
        plan = [row[0] for row in cursor.fetchall()]
    report.line(
        f"  slowest query ({timing.slowest_ms:.0f} ms): {sql[:300]}{'…' if len(sql) > 300 else ''}"
    )
    for line in plan:
        report.line(f"    {line}")
