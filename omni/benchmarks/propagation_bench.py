"""`bench propagation`: the oversell window, in seconds.

One channel per marketplace, all in real-time inventory mode, each on its emulator answering
every call `--latency` seconds late (as real marketplaces answer in 100–300 ms), all listing the
same POS variants with the same stock. The web app runs under gunicorn (the webhook endpoint,
POST /api/webhooks/{channel id}) and the worker cluster as production runs it
(`manage.py worker`); the emulators run in threads of this process, so their stock is read
straight from memory, every POLL seconds.

Orders are placed on random marketplaces (one every `--every` seconds on average, 1–2 lines of
random listed variants), unpaid unless `--paid` says otherwise: a webhook for an unpaid order
creates it in the POS, one for a paid order the POS has not seen is logged 404 and waits for the
download (synclogs.pipeline). Each order's clock runs from its placing until EVERY OTHER channel
shows the new quantity of each ordered variant. Two runs:

- with webhooks: each order's push is delivered to omni as soon as it is placed, signed as its
  marketplace signs it;
- without: orders reach omni only through the scheduled download, queued every
  `--download-every` seconds as the schedule does (default: the project's schedule,
  `setup_schedules`).

An order's variants are not ordered again until it has propagated, so its target quantity is
exact: what the POS can sell once it is counted. Printed per run: p50, p95 and max, orders
measured, where the time went (median seconds from placing to each stage), the worker's tasks,
the marketplace calls, and the load average at start and end.
"""

import argparse
import contextlib
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django.test.utils import override_settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from catalog.models import Outlet, Product, Stock, StockMovement, Variant
from channels.emulators import emulator_class
from channels.emulators.base import Emulator
from channels.models import Channel, Listing
from omni.benchmarks import Report, positive_int
from omni.benchmarks.inventory_bench import connected_channel, shop_item, stocked_catalog
from omni.management.commands.setup_schedules import SCHEDULES
from omni.workers import WorkerProcess, database_url
from synclogs.models import SalesOrder, SyncLog, WebhookEvent

PREFIX = "omni-bench-prop-"
KINDS = ("shopee", "tiktok_shop", "tokopedia", "lazada", "shopify", "woocommerce")
PER_ITEM = 20  # variants per marketplace item
ON_HAND = 1000  # units of each variant: orders never run a variant out
POLL = 0.05  # seconds between two reads of the emulators' stock
WEBHOOK_TARGET = 5.0  # the p95 target with webhooks
SLACK = 5.0  # ... and without: the download interval plus this
WEB_OPTIONS = ("--workers=2", "--worker-class=gthread", "--threads=2")
WEB = "2 processes × 2 threads"
# omni's OrderState values: a webhook for an unpaid order creates it in the POS; one for a paid
# order the POS has not seen logs 404 and creates nothing (synclogs.pipeline.ORDER_STEPS).
UNPAID, PAID = "unpaid", "paid"


def _schedule_seconds(func: str) -> float:
    """The interval of the project's schedule running `func`, in seconds."""
    spec = next(spec for spec in SCHEDULES if spec["func"] == func)
    return float(spec["minutes"]) * 60


DOWNLOAD_EVERY = _schedule_seconds("synclogs.tasks.orders_download_all")
FLUSH_DUE_EVERY = _schedule_seconds("channels.tasks.inventory_flush_due")


def _seconds(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _share(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {value}")
    return value


def _interval(raw: str) -> float:
    value = _seconds(raw)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "propagation",
        help="Seconds from an order on one marketplace until every other shows the new stock.",
    )
    parser.add_argument("--orders", type=positive_int, default=200)
    parser.add_argument("--variants", type=positive_int, default=300)
    parser.add_argument("--kinds", default=",".join(KINDS), help="marketplaces, one channel each")
    parser.add_argument(
        "--latency", type=_seconds, default=0.1, help="seconds per marketplace call"
    )
    parser.add_argument("--every", type=_seconds, default=1.0, help="mean seconds between orders")
    parser.add_argument(
        "--download-every",
        type=_interval,
        default=DOWNLOAD_EVERY,
        help=f"seconds between scheduled order downloads (the schedule's: {DOWNLOAD_EVERY:g})",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        help="seconds an order may take (beyond the download interval without webhooks) "
        "before it counts as not propagated",
    )
    parser.add_argument(
        "--paid",
        type=_share,
        default=0.0,
        help="share of orders placed already paid (the rest unpaid), from 0 to 1",
    )
    parser.add_argument("--workers", type=positive_int, default=None, help="Q_WORKERS")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--webhooks-only", action="store_true", help="only the run with webhooks")
    runs.add_argument("--no-webhooks-only", action="store_true", help="only the run without")
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    kinds = [kind.strip() for kind in options["kinds"].split(",") if kind.strip()]
    if len(kinds) < 2:
        raise CommandError("--kinds needs two marketplaces or more: one sells, the others follow")
    logging.getLogger("django-q").setLevel(logging.WARNING)
    _clean()
    workers = options["workers"] or settings.Q_CLUSTER["workers"]
    report.line(
        f"marketplaces {', '.join(kinds)}; {options['variants']:,} variants each; "
        f"worker cluster of {workers} workers; web app under gunicorn ({WEB})"
    )
    shops = None
    processes = Processes(options)
    try:
        shops = Shops.open(kinds, options["variants"])
        processes.start()
        shops.set_latency(options["latency"])
        _note_schedules(report, shops)
        bench = Bench(options, shops, processes.webhook_url)
        if not options["no_webhooks_only"]:
            bench.measure(report, webhooks=True)
        if not options["webhooks_only"]:
            bench.measure(report, webhooks=False)
    finally:
        processes.stop()
        if shops is not None:
            shops.close()
        _clean()


# --- the marketplaces ------------------------------------------------------------------------


@dataclass
class Shops:
    """The emulators (threads of this process) and their channels, each listing every variant."""

    emulators: list[Emulator]
    channels: list[Channel]
    variant_ids: list[int]
    # per channel: POS variant id -> (item id, variant id) as the emulator names the listing
    refs: list[dict[int, tuple[str, str]]]

    @classmethod
    def open(cls, kinds: list[str], count: int) -> "Shops":
        outlet, variants = stocked_catalog(count, prefix=PREFIX, per_item=PER_ITEM, on_hand=ON_HAND)
        skus = [v.sku for v in variants]
        emulators = [emulator_class(kind)(seed=n) for n, kind in enumerate(kinds)]
        for emulator in emulators:
            for start in range(0, len(skus), PER_ITEM):
                emulator.put_item(shop_item(f"Item {start}", skus[start : start + PER_ITEM]))
            emulator.start()
        shops = cls(emulators, [], [v.pk for v in variants], [])
        try:
            shops._connect(kinds, outlet)
        except BaseException:
            shops.close()
            raise
        return shops

    def _connect(self, kinds: list[str], outlet: Outlet) -> None:
        with override_settings(OMNI_FLUSH_ON_COMMIT=False):  # nothing queued: no worker yet
            for kind, emulator in zip(kinds, self.emulators, strict=True):
                self.channels.append(
                    connected_channel(
                        kind=kind,
                        name=f"{PREFIX}{kind}",
                        base_url=emulator.base_url,
                        credentials=emulator.credentials,
                        outlet=outlet,
                    )
                )
        for channel in self.channels:
            rows = Listing.objects.filter(channel=channel, variant__isnull=False)
            refs = {
                v: (item, ref)
                for v, item, ref in rows.values_list("variant_id", "item_id", "variant_ref")
            }
            if len(refs) != len(self.variant_ids):
                raise RuntimeError(
                    f"{channel.name} maps {len(refs)} of {len(self.variant_ids)} variants"
                )
            self.refs.append(refs)

    def set_latency(self, seconds: float) -> None:
        for emulator in self.emulators:
            emulator.set_faults(latency=seconds)

    def clear_logs(self) -> None:
        for emulator in self.emulators:
            emulator.log.clear()

    def calls(self) -> tuple[int, int]:
        """(reads, writes) the marketplaces answered since their logs were cleared."""
        total = sum(sum(e.log.counts.values()) for e in self.emulators)
        writes = sum(len(e.log.writes) for e in self.emulators)
        return total - writes, writes

    def close(self) -> None:
        for emulator in self.emulators:
            emulator.stop()


# --- the web app and the worker ---------------------------------------------------------------


class Processes:
    """gunicorn serving the web app (for the webhooks) and the worker cluster, both on this
    database and this process's task queue, with their output in var/."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.var = Path(settings.BASE_DIR) / "var"
        self.port = 0
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: WorkerProcess | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/"

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "Q_CLUSTER_NAME": Conf.PREFIX,  # the queue this process writes to and reads
            "Q_WORKERS": str(self.options["workers"] or settings.Q_CLUSTER["workers"]),
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "OMNI_CREDENTIALS_KEYS": ",".join(settings.OMNI_CREDENTIALS_KEYS),
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "omni.settings",
        }

    def start(self) -> None:
        self.var.mkdir(exist_ok=True)
        connections.close_all()  # children must not share this process's connections
        self.worker = WorkerProcess(log=self.var / "bench-propagation-worker.log", env=self.env())
        self.port = _free_port()
        self.web = _gunicorn(self.port, {**os.environ, **self.env()}, self.var)
        _wait_until_up(self.port, self.web)
        self.worker.wait_running(timeout=60)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=15)
        if self.web is not None and self.web.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)
                self.web.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gunicorn(port: int, env: dict[str, str], var: Path) -> subprocess.Popen[bytes]:
    """The web app as the README deploys it (gthread workers), in a session of its own."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "omni.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        *WEB_OPTIONS,
        "--log-level=warning",
    ]
    with (var / "bench-propagation-web.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
            command,
            env=env,
            cwd=settings.BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until_up(port: int, web: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {web.returncode} (var/bench-propagation-web.log)"
            )
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout:g} s")


# --- one run ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Order:
    number: str
    index: int  # the channel it was placed on
    lines: list[tuple[int, int]]  # (POS variant id, quantity)
    targets: dict[int, int]  # POS variant id -> quantity every other channel should show
    placed: float  # perf_counter
    placed_wall: float  # time.time(), to compare with the database's timestamps
    hook_status: int | None = None
    hook_seconds: float | None = None
    reached: dict[int, float] = field(default_factory=dict)  # channel index -> seconds
    done: float | None = None
    timed_out: bool = False


class Watcher(threading.Thread):
    """Reads the emulators' stock every POLL seconds and notes, per open order, when each
    other channel shows its target quantities. An order past `limit` seconds is given up, and
    its variants are not ordered again: what the channels should show of them is unknown."""

    def __init__(self, shops: Shops, limit: float) -> None:
        super().__init__(name="propagation-watcher", daemon=True)
        self.shops = shops
        self.limit = limit
        self.lock = threading.Lock()
        self.open: list[Order] = []
        self.retired: set[int] = set()
        self.halt = threading.Event()

    def add(self, order: Order) -> None:
        with self.lock:
            self.open.append(order)

    def busy_variants(self) -> set[int]:
        """Variants of orders still open or given up: not to be ordered now."""
        with self.lock:
            return self.retired | {variant for order in self.open for variant, _ in order.lines}

    def pending(self) -> int:
        with self.lock:
            return len(self.open)

    def run(self) -> None:
        while not self.halt.wait(POLL):
            self.check()

    def check(self) -> None:
        with self.lock:
            orders = list(self.open)
        wanted = {i for o in orders for i in self._others(o) if i not in o.reached}
        held, at = {}, {}
        for i in wanted:
            held[i] = self.shops.emulators[i].listing_quantities()
            at[i] = time.perf_counter()
        finished = [order for order in orders if self._check(order, held, at)]
        with self.lock:
            self.open = [order for order in self.open if order not in finished]
            self.retired.update(v for o in finished if o.timed_out for v, _ in o.lines)

    def _check(self, order: Order, held: dict, at: dict) -> bool:
        for i in self._others(order):
            if i in order.reached:
                continue
            refs = self.shops.refs[i]
            if all(held[i].get(refs[v]) == q for v, q in order.targets.items()):
                order.reached[i] = at[i] - order.placed
        if len(order.reached) == len(self.shops.channels) - 1:
            order.done = max(order.reached.values())
            return True
        order.timed_out = time.perf_counter() - order.placed > self.limit
        return order.timed_out

    def _others(self, order: Order) -> list[int]:
        return [i for i in range(len(self.shops.channels)) if i != order.index]


class Bench:
    def __init__(self, options: dict[str, Any], shops: Shops, webhook_url: str) -> None:
        self.options = options
        self.shops = shops
        self.webhook_url = webhook_url
        self.rng = random.Random(options["seed"])
        # What the POS can sell of each variant once every order placed so far is counted:
        # what every channel other than an order's own shows once the order has propagated.
        self.level = dict.fromkeys(shops.variant_ids, ON_HAND)
        self.session = requests.Session()

    def measure(self, report: Report, *, webhooks: bool) -> None:
        every = self.options["download_every"]
        limit = self.options["timeout"] + (0 if webhooks else every)
        load = os.getloadavg()[0]
        self.shops.clear_logs()
        started, started_wall = time.perf_counter(), timezone.now()
        schedule = Scheduler(downloads=None if webhooks else every)
        watcher = Watcher(self.shops, limit)
        watcher.start()
        try:
            orders = self._place_all(watcher, schedule, webhooks)
            while watcher.pending():
                schedule.sleep(POLL)
        finally:
            watcher.halt.set()
            watcher.join()
        seconds = time.perf_counter() - started
        Figures(self, orders, webhooks, load, seconds, started_wall).write(report)

    def _place_all(self, watcher: Watcher, schedule: "Scheduler", webhooks: bool) -> list[Order]:
        orders = []
        next_at = time.perf_counter()
        every = self.options["every"]
        for _ in range(self.options["orders"]):
            next_at += self.rng.expovariate(1 / every) if every else 0.0
            schedule.sleep(max(0.0, next_at - time.perf_counter()))
            if not self._variants_free(watcher, schedule):
                break  # every variant given up on: the figures say which orders
            order = self._place(watcher.busy_variants())
            if webhooks:
                self._deliver(order)
            watcher.add(order)
            orders.append(order)
        return orders

    def _variants_free(self, watcher: Watcher, schedule: "Scheduler") -> bool:
        """Wait until two variants may be ordered (only tiny catalogs ever wait); False when
        none will be, every other one having been given up on."""
        while len(watcher.busy_variants()) > len(self.level) - 2:
            if not watcher.pending():
                return False
            schedule.sleep(POLL)
        return True

    def _place(self, busy: set[int]) -> Order:
        index = self.rng.randrange(len(self.shops.channels))
        free = [v for v in self.shops.variant_ids if v not in busy]
        chosen = self.rng.sample(free, self.rng.choice([1, 2]))
        lines = [(v, self.rng.choice([1, 1, 2])) for v in chosen]
        refs = self.shops.refs[index]
        paid = self.options["paid"] and self.rng.random() < self.options["paid"]
        number = self.shops.emulators[index].create_order(
            [(*refs[v], qty) for v, qty in lines], state=PAID if paid else UNPAID
        )
        placed, placed_wall = time.perf_counter(), time.time()
        for variant, qty in lines:
            self.level[variant] -= qty
        targets = {v: self.level[v] for v, _ in lines}
        return Order(str(number), index, lines, targets, placed, placed_wall)

    def _deliver(self, order: Order) -> None:
        """The marketplace's push for the order, signed for the channel's webhook URL."""
        url = f"{self.webhook_url}{self.shops.channels[order.index].pk}"
        headers, body = self.shops.emulators[order.index].signed_webhook(order.number, url)
        try:
            reply = self.session.post(url, data=body, headers=headers, timeout=30)
            order.hook_status = reply.status_code
        except requests.RequestException:
            order.hook_status = 0
        order.hook_seconds = time.perf_counter() - order.placed


class Scheduler:
    """The schedules' part, played by the bench: the flush of due pushes every minute, and
    (without webhooks) the order download every `downloads` seconds, queued on the worker's
    queue as django-q2's scheduler queues them. The first download is queued at once."""

    def __init__(self, *, downloads: float | None) -> None:
        now = time.perf_counter()
        self.due = {"channels.tasks.inventory_flush_due": (FLUSH_DUE_EVERY, now + FLUSH_DUE_EVERY)}
        if downloads is not None:
            self.due["synclogs.tasks.orders_download_all"] = (downloads, now)

    def sleep(self, seconds: float) -> None:
        """Sleep, queueing whatever comes due meanwhile."""
        end = time.perf_counter() + seconds
        while True:
            self.tick()
            left = end - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, POLL))

    def tick(self) -> None:
        now = time.perf_counter()
        for func, (every, at) in self.due.items():
            if now >= at:
                async_task(func, sync=False)  # on the queue even where tests run tasks inline
                self.due[func] = (every, at + every)


# --- the figures -----------------------------------------------------------------------------


class Figures:
    def __init__(
        self, bench: Bench, orders: list[Order], webhooks: bool, load: float, seconds: float, since
    ) -> None:
        self.bench = bench
        self.orders = orders
        self.webhooks = webhooks
        self.load = load
        self.seconds = seconds
        self.since = since
        self.measured = [o for o in orders if o.done is not None]

    def write(self, report: Report) -> None:
        options = self.bench.options
        every = options["download_every"]
        if self.webhooks:
            report.line("with webhooks: each order's push delivered to omni as it is placed")
            target = WEBHOOK_TARGET
        else:
            report.line(
                f"without webhooks: orders downloaded every {every:g} s only "
                f"(the schedule's interval is {DOWNLOAD_EVERY:g} s)"
            )
            target = every + SLACK
        report.line(
            f"  {len(self.orders)} orders in {self.seconds:.1f} s, one every "
            f"{options['every']:g} s on average, {options['paid']:.0%} placed paid, "
            f"marketplaces answering in {options['latency']:g} s"
        )
        report.line(
            f"  orders measured     {len(self.measured)} of {len(self.orders)}"
            f" (every other channel showed the new quantity)"
        )
        self._window(report, target)
        self._stages(report)
        self._failures(report)
        self._tasks(report)
        reads, writes = self.bench.shops.calls()
        per = max(len(self.orders), 1)
        report.line(
            f"  marketplace calls   {reads:,} reads, {writes:,} writes "
            f"({reads / per:.1f} and {writes / per:.1f} per order)"
        )
        report.line(
            f"  load average        {self.load:.2f} at start, {os.getloadavg()[0]:.2f} at end"
        )

    def _window(self, report: Report, target: float) -> None:
        done = sorted(o.done for o in self.measured)
        if not done:
            report.line("  no order propagated")
            return
        p95 = _percentile(done, 0.95)
        verdict = "met" if p95 <= target and len(done) == len(self.orders) else "NOT met"
        report.line(
            f"  seconds until every other channel shows it: p50 {_percentile(done, 0.5):.2f}"
            f"  p95 {p95:.2f}  max {done[-1]:.2f}   (target p95 ≤ {target:g} s: {verdict})"
        )
        if self.webhooks:
            floor = 2 * self.bench.options["latency"]
            report.line(
                f"  floor {floor:.2f} s: one call reads the order, one pushes the quantity"
                + (f"; p50 is {_percentile(done, 0.5) / floor:.1f}× it" if floor else "")
            )

    def _stages(self, report: Report) -> None:
        """Median seconds from placing to each stage, from the database's own timestamps."""
        stages: dict[str, list[float]] = {}
        created = self._created()
        claimed = self._claimed() if self.webhooks else {}
        for order in self.measured:
            key = (self.bench.shops.channels[order.index].pk, order.number)
            if order.hook_seconds is not None:
                stages.setdefault("webhook answered", []).append(order.hook_seconds)
            if key in claimed:
                stages.setdefault("worker took the push", []).append(
                    claimed[key] - order.placed_wall
                )
            if key in created:
                stages.setdefault("order in the POS", []).append(created[key] - order.placed_wall)
            stages.setdefault("first other channel", []).append(min(order.reached.values()))
            stages.setdefault("last other channel", []).append(order.done)
        parts = [
            f"{name} {_percentile(sorted(values), 0.5):.2f}" for name, values in stages.items()
        ]
        if parts:
            report.line("  median s from placing: " + " · ".join(parts))

    def _created(self) -> dict[tuple[int, str], float]:
        rows = SalesOrder.objects.filter(
            channel__in=self.bench.shops.channels, created_at__gte=self.since
        ).values_list("channel_id", "order_number", "created_at")
        return {(c, n): at.timestamp() for c, n, at in rows}

    def _claimed(self) -> dict[tuple[int, str], float]:
        rows = WebhookEvent.objects.filter(
            channel__in=self.bench.shops.channels, received_at__gte=self.since
        ).values_list("channel_id", "order_number", "processed_at")
        return {(c, n): at.timestamp() for c, n, at in rows if at is not None}

    def _failures(self, report: Report) -> None:
        refused = [o for o in self.orders if o.hook_status not in (None, 200)]
        if refused:
            statuses = sorted({o.hook_status for o in refused})
            report.line(f"  webhooks not answered 200: {len(refused)} (HTTP {statuses})")
        late = [o for o in self.orders if o.timed_out]
        if late:
            past = "" if self.webhooks else " past the download interval"
            timeout = self.bench.options["timeout"]
            report.line(f"  gave up on {len(late)} order(s) after {timeout:g} s{past}:")
            for order in late[:5]:
                report.line(f"    {self._late(order)}")
        errors = SyncLog.objects.filter(
            channel__in=self.bench.shops.channels, created_at__gte=self.since, status__gte=400
        ).count()
        if errors:
            report.line(f"  sync log rows with a 4xx status: {errors}")

    def _late(self, order: Order) -> str:
        channels = self.bench.shops.channels
        missing = [
            channels[i].kind
            for i in range(len(channels))
            if i != order.index and i not in order.reached
        ]
        return (
            f"{channels[order.index].kind} order {order.number}: not shown on {', '.join(missing)}"
        )

    def _tasks(self, report: Report) -> None:
        """The worker's tasks queued during the run: how many, and the median seconds from
        queued to done (django-q2 stamps `started` when a task is queued)."""
        rows = Task.objects.filter(started__gte=self.since).values_list(
            "func", "started", "stopped"
        )
        took: dict[str, list[float]] = {}
        for func, started, stopped in rows:
            took.setdefault(func.rpartition(".")[2], []).append((stopped - started).total_seconds())
        if took:
            parts = [
                f"{name} ×{len(values)} {statistics.median(values):.2f} s"
                for name, values in sorted(took.items())
            ]
            report.line("  worker tasks, median s from queued to done: " + "; ".join(parts))
        if 0 < Conf.SAVE_LIMIT <= Task.objects.count():
            report.line(f"    (django-q2 keeps the last {Conf.SAVE_LIMIT:,} results only)")


def _percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ordered list."""
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


# --- setting up ------------------------------------------------------------------------------


def _note_schedules(report: Report, shops: Shops) -> None:
    others = Channel.objects.filter(is_active=True).exclude(pk__in=[c.pk for c in shops.channels])
    if others.exists():
        report.line(f"  note: {others.count()} other active channel(s) are downloaded too")
    if Schedule.objects.exists():
        report.line(
            f"  note: the worker also runs this database's {Schedule.objects.count()} schedule(s)"
        )


def _clean() -> None:
    """Remove what a run made (or an interrupted run left)."""
    channels = Channel.objects.filter(name__startswith=PREFIX)
    orders = SalesOrder.objects.filter(channel__in=channels)
    for name in ("payment", "outbound_logistic", "invoice"):
        SalesOrder._meta.get_field(name).related_model.objects.filter(order__in=orders).delete()
    orders.delete()
    SyncLog.objects.filter(channel__in=channels).delete()
    channels.delete()
    StockMovement.objects.filter(outlet__code=f"{PREFIX}outlet").delete()
    Stock.objects.filter(outlet__code=f"{PREFIX}outlet").delete()
    Variant.objects.filter(sku__startswith=PREFIX).delete()
    Product.objects.filter(handle__startswith=PREFIX).delete()
    Outlet.objects.filter(code=f"{PREFIX}outlet").delete()
