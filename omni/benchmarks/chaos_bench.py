"""`bench chaos`: stock changes and orders under marketplace faults and a killed worker.

Three channels of different marketplaces in real-time mode, each listing every SKU, served by
emulators in a process of their own. A real worker cluster (`manage.py worker`, on the
configured broker) does the work the stock changes and orders queue. While 2,000 stock changes
stream in, 300 orders are placed on the marketplaces (which take the units off their own stock
at once) and some of them cancelled; a fifth of all marketplace calls fail (500s and 429s);
midway every process of the worker cluster is killed with SIGKILL and the cluster started
again. The bench plays the scheduler: every two seconds it queues each channel's order download
and the retry of due pushes, as the schedules and webhooks would.

When the stream ends the faults stop, and the clock runs until every channel agrees: every
order placed is in the POS (or logged as cancelled before it got there) and every listing
shows the POS's quantity. Then it prints drifted listings, lost orders, duplicate documents,
stock that orders moved twice or not at all, and the seconds from the last fault until every
channel agreed.
"""

import argparse
import logging
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Count
from django.test.utils import override_settings
from django_q.brokers import get_broker
from django_q.tasks import async_task

from catalog.models import Product, Stock, StockMovement, Variant
from catalog.services import stock_adjust
from channels.adapters.base import OrderState
from channels.emulators import emulator_class
from channels.models import Channel, Listing, PendingPush
from channels.stock import channel_quantities
from omni.benchmarks import Report, positive_int
from omni.benchmarks.inventory_bench import connected_channel, shop_item, stocked_catalog
from omni.workers import WorkerProcess
from synclogs.models import SalesOrder, SyncLog

PREFIX = "omni-bench-chaos-"
PER_ITEM = 20
INITIAL = 1000
TICK = 2.0  # seconds between the bench's scheduler rounds


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "chaos",
        help="Stock changes and orders under marketplace faults and a killed worker.",
    )
    parser.add_argument("--changes", type=positive_int, default=2000)
    parser.add_argument("--orders", type=positive_int, default=300)
    parser.add_argument("--variants", type=positive_int, default=150)
    parser.add_argument("--kinds", default="shopee,lazada,shopify")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--settle-timeout", type=positive_int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    kinds = [kind.strip() for kind in options["kinds"].split(",") if kind.strip()]
    logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per task otherwise
    report.line(f"load average {os.getloadavg()[0]:.2f}; marketplaces {', '.join(kinds)}")
    _clean()
    outlet, variants = stocked_catalog(
        options["variants"], prefix=PREFIX, per_item=PER_ITEM, on_hand=INITIAL
    )
    connections.close_all()  # children must not share the parent's database connection
    shops, shops_end = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=_serve_shops, args=(kinds, [v.sku for v in variants], shops_end), daemon=True
    )
    server.start()
    worker = None
    try:
        with override_settings(OMNI_FLUSH_ON_COMMIT=False):
            channels = [
                connected_channel(
                    kind=kind,
                    name=f"{PREFIX}{kind}",
                    base_url=base_url,
                    credentials=credentials,
                    outlet=outlet,
                )
                for kind, (base_url, credentials) in zip(kinds, shops.recv(), strict=True)
            ]
        worker = Worker()
        chaos = Chaos(options, shops, channels, outlet, variants)
        chaos.stream(worker, report)
        chaos.settle(report)
        chaos.verdict(report)
    finally:
        if worker is not None:
            worker.stop()
        shops.send(("stop",))
        server.join(10)


class Worker:
    """The worker cluster as production runs it (`manage.py worker`), in a session of its own."""

    def __init__(self) -> None:
        self.log = Path(settings.BASE_DIR) / "var" / "bench-chaos-worker.log"
        self.log.parent.mkdir(exist_ok=True)
        self.process = self._start()

    def _start(self) -> WorkerProcess:
        process = WorkerProcess(log=self.log)
        process.wait_running(timeout=60)
        return process

    def kill(self) -> None:
        """SIGKILL every process of the cluster (main, guard, pusher, monitor, workers)."""
        self.process.kill()

    def restart(self) -> None:
        self.process = self._start()

    def stop(self) -> None:
        self.process.stop()


class Chaos:
    def __init__(self, options, shops, channels: list[Channel], outlet, variants) -> None:
        self.options = options
        self.rng = random.Random(options["seed"])
        self.shops = shops
        self.channels = channels
        self.outlet = outlet
        self.variants = variants
        self.refs = [
            {
                lst.variant_id: (lst.item_id, lst.variant_ref)
                for lst in Listing.objects.filter(channel=channel)
            }
            for channel in channels
        ]
        self.deltas: Counter[int] = Counter()
        self.placed: list[tuple[int, str, list[tuple[int, int]], str]] = []
        self.next_tick = 0.0
        self.faults_off_at = 0.0

    # -- the stream -------------------------------------------------------------------------

    def stream(self, worker: Worker, report: Report) -> None:
        changes, orders = self.options["changes"], self.options["orders"]
        self._faults(self.options["fault_rate"])
        start = time.perf_counter()
        order_every = max(1, changes // orders)
        for n in range(changes):
            if n == changes // 2:
                worker.kill()
                report.line(f"  worker cluster killed with SIGKILL after {n:,} changes")
                worker.restart()
            self._change()
            if n % order_every == 0 and len(self.placed) < orders:
                self._order()
            if n % 50 == 0 and self.placed:
                self._maybe_cancel()
            self._tick()
        while len(self.placed) < orders:
            self._order()
        self._faults(0.0)
        self.faults_off_at = time.perf_counter()
        report.line(
            f"  {changes:,} stock changes and {len(self.placed)} orders "
            f"({sum(state == OrderState.CANCELLED for *_, state in self.placed)} cancelled) "
            f"in {self.faults_off_at - start:.1f} s, {self.options['fault_rate']:.0%} of "
            "marketplace calls failing"
        )

    def _change(self) -> None:
        variant = self.rng.choice(self.variants)
        delta = self.rng.choice([-3, -2, -1, 1, 2, 3])
        stock_adjust(variant_id=variant.pk, outlet_id=self.outlet.pk, delta=delta)
        self.deltas[variant.pk] += delta

    def _order(self) -> None:
        index = self.rng.randrange(len(self.channels))
        chosen = self.rng.sample(self.variants, self.rng.choice([1, 1, 2]))
        lines = [(v.pk, self.rng.choice([1, 2])) for v in chosen]
        state = OrderState.PAID if self.rng.random() < 0.7 else OrderState.UNPAID
        refs = [(*self.refs[index][pk], qty) for pk, qty in lines]
        self.shops.send(("order", index, refs, state))
        number = self.shops.recv()
        self.placed.append((index, number, lines, state))

    def _maybe_cancel(self) -> None:
        unpaid = [n for n, p in enumerate(self.placed) if p[3] == OrderState.UNPAID]
        if unpaid and self.rng.random() < 0.5:
            n = self.rng.choice(unpaid)
            index, number, lines, _ = self.placed[n]
            self.shops.send(("move", index, number, OrderState.CANCELLED))
            self.shops.recv()
            self.placed[n] = (index, number, lines, OrderState.CANCELLED)

    def _tick(self) -> None:
        """The schedules' part: order downloads and due pushes, every TICK seconds."""
        now = time.perf_counter()
        if now < self.next_tick:
            return
        self.next_tick = now + TICK
        if get_broker().queue_size() > 4 * len(self.channels):
            return  # the worker is behind (or dead): do not pile requests up
        for channel in self.channels:
            async_task("synclogs.tasks.orders_download", channel.pk)
        async_task("channels.tasks.inventory_flush_due")

    def _faults(self, rate: float) -> None:
        self.shops.send(("faults", rate))
        self.shops.recv()

    # -- settling and the verdict -----------------------------------------------------------

    def settle(self, report: Report) -> None:
        deadline = self.faults_off_at + self.options["settle_timeout"]
        while time.perf_counter() < deadline:
            self._tick()
            drifted, lost = self._disagreements()
            if not drifted and not lost:
                seconds = time.perf_counter() - self.faults_off_at
                report.line(f"  every channel agrees {seconds:.1f} s after the last fault")
                self.agreed_after = seconds
                return
            time.sleep(0.5)
        report.line(
            f"  channels did not agree within {self.options['settle_timeout']} s of the last fault"
        )
        self.agreed_after = None

    def _disagreements(self) -> tuple[int, int]:
        self.shops.send(("state",))
        held = self.shops.recv()
        drifted = 0
        for channel, quantities in zip(self.channels, held, strict=True):
            listings = list(
                Listing.objects.filter(channel=channel, variant__isnull=False).values_list(
                    "item_id", "variant_ref", "variant_id"
                )
            )
            pos = channel_quantities(channel=channel, variant_ids={v for *_, v in listings})
            drifted += sum(
                quantities.get((item, ref)) != pos[variant] for item, ref, variant in listings
            )
        return drifted, len(self._lost())

    def _lost(self) -> list[str]:
        recorded = set(
            SalesOrder.objects.filter(channel__in=self.channels).values_list(
                "channel_id", "order_number"
            )
        ) | set(
            SyncLog.objects.filter(
                channel__in=self.channels,
                action=SyncLog.Action.CREATE_ORDER,
                status=400,
            ).values_list("channel_id", "order_number")
        )
        return [
            number
            for index, number, _, _ in self.placed
            if (self.channels[index].pk, number) not in recorded
        ]

    def verdict(self, report: Report) -> None:
        drifted, lost = self._disagreements()
        duplicates = (
            SalesOrder.objects.filter(channel__in=self.channels)
            .values("channel_id", "order_number")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .count()
        )
        wrong = self._wrong_stock()
        pending = PendingPush.objects.filter(channel__in=self.channels).count()
        report.line(f"  drifted listings     {drifted:6}   (target 0)")
        report.line(f"  lost orders          {lost:6}   (target 0)")
        report.line(f"  duplicate documents  {duplicates:6}   (target 0)")
        report.line(f"  variants whose stock orders moved twice or not at all {wrong}")
        report.line(f"  outbox rows left     {pending:6}")
        if self.agreed_after is not None:
            report.line(f"  seconds from the last fault until every channel agrees "
                        f"{self.agreed_after:.1f}   (target ≤ 60)")  # fmt: skip

    def _wrong_stock(self) -> int:
        """Variants whose on hand and reserved differ from the stream's changes and the orders'
        own effects: a paid order deducts once, an unpaid one reserves once, a cancelled one
        nothing."""
        on_hand = {v.pk: INITIAL + self.deltas[v.pk] for v in self.variants}
        reserved = dict.fromkeys(on_hand, 0)
        for _, _, lines, state in self.placed:
            for variant_id, qty in lines:
                if state == OrderState.PAID:
                    on_hand[variant_id] -= qty
                elif state == OrderState.UNPAID:
                    reserved[variant_id] += qty
        rows = Stock.objects.filter(outlet=self.outlet).values_list(
            "variant_id", "on_hand", "reserved"
        )
        return sum((on_hand[v], reserved[v]) != (h, r) for v, h, r in rows)


# --- setting up ----------------------------------------------------------------------------------


def _clean() -> None:
    channels = Channel.objects.filter(name__startswith=PREFIX)
    for channel in channels:
        orders = SalesOrder.objects.filter(channel=channel)
        for name in ("payment", "outbound_logistic", "invoice"):
            model = SalesOrder._meta.get_field(name).related_model
            model.objects.filter(order__in=orders).delete()
        orders.delete()
    channels.delete()
    StockMovement.objects.filter(outlet__code=f"{PREFIX}outlet").delete()
    Stock.objects.filter(outlet__code=f"{PREFIX}outlet").delete()
    Variant.objects.filter(sku__startswith=PREFIX).delete()
    Product.objects.filter(handle__startswith=PREFIX).delete()


def _serve_shops(kinds: list[str], skus: list[str], conn) -> None:
    """The marketplaces, in their own process: one shop per channel listing every SKU."""
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - connections the killed worker cut
    emulators = [emulator_class(kind)(items=0, seed=n) for n, kind in enumerate(kinds)]
    for emulator in emulators:
        for start in range(0, len(skus), PER_ITEM):
            emulator.put_item(shop_item(f"Chaos item {start}", skus[start : start + PER_ITEM]))
        emulator.start()
    conn.send([(e.base_url, e.credentials) for e in emulators])
    while (message := conn.recv())[0] != "stop":
        what, *args = message
        if what == "faults":
            half = args[0] / 2
            for emulator in emulators:
                emulator.set_faults(error_rate=half, throttle_rate=half, retry_after=0.05)
            conn.send(None)
        elif what == "order":
            index, lines, state = args
            conn.send(emulators[index].create_order(lines, state=state))
        elif what == "move":
            index, number, state = args
            emulators[index].move_order(number, state)
            conn.send(None)
        elif what == "state":
            conn.send([e.listing_quantities() for e in emulators])
    for emulator in emulators:
        emulator.stop()
