"""`bench inventory`: 10,000 stock movements, three real-time channels, until all agree.

Two worker processes flush the channels' outboxes while the movements are applied, as the
django-q2 cluster's two workers do, and the marketplaces (Shopee emulators) run in a process of
their own; the clock stops when every channel's shop holds exactly the quantities the POS says
it should.
"""

import argparse
import multiprocessing
import random
import time
from decimal import Decimal
from typing import Any

from django.db import connection, connections
from django.test.utils import override_settings

from catalog.models import Outlet, Product, StockMovement, Variant
from catalog.services import StockChange, stock_apply
from channels.emulators.shop import ShopItem, ShopVariant
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import inventory_flush, inventory_sync_run
from channels.models import BundleRecount, Channel, PendingPush, Scan, SyncTrigger
from channels.scans import scan_request, scan_run
from channels.stock import channel_quantities
from omni.benchmarks import Report, positive_int

PREFIX = "omni-bench-inv-"
MODELS_PER_ITEM = 50  # Shopee's per-call limit: one update_stock call per item
WORKERS = 2  # flush workers: the django-q2 cluster's default here (Q_WORKERS)
DRAIN_SECONDS = 120  # what the workers may take to push what is left after the last change


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "inventory", help="Apply stock movements across three real-time channels until all agree."
    )
    parser.add_argument("--movements", type=positive_int, default=10_000)
    parser.add_argument("--variants", type=positive_int, default=1000)
    parser.add_argument("--channels", type=positive_int, default=3)
    parser.add_argument("--per-transaction", type=positive_int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    rng = random.Random(options["seed"])
    _clean()
    outlet, variants = stocked_catalog(options["variants"])
    skus = [v.sku for v in variants]
    connections.close_all()  # children must not share the parent's database connection
    shops, shops_end = multiprocessing.Pipe()
    server = _fork(_serve_shops, [[(sku, 0) for sku in skus]] * options["channels"], shops_end)
    channels: list[Channel] = []
    try:
        with report.phase("set up channels and scan", counted=False):
            for n, (base_url, credentials) in enumerate(shops.recv()):
                channels.append(
                    connected_channel(
                        kind="shopee",
                        name=f"{PREFIX}{n}",
                        base_url=base_url,
                        credentials=credentials,
                        outlet=outlet,
                    )
                )
            shops.send(("clear",))
        with override_settings(OMNI_FLUSH_ON_COMMIT=False):  # the worker process flushes
            _measure(options, report, rng, outlet, variants, channels, shops)
    finally:
        shops.send(("stop",))
        server.join(10)
        _clean()


def _fork(target, *args) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=target, args=args, daemon=True)
    process.start()
    return process


def _serve_shops(shops: list[list[tuple[str, int]]], conn) -> None:
    """The marketplaces, in their own process: one Shopee shop per list of (SKU, quantity),
    listing those SKUs in items of MODELS_PER_ITEM variants. Answers "state" with each shop's
    listing quantities and stock update calls; "clear" forgets the calls made so far."""
    emulators = [ShopeeEmulator(items=0, seed=n) for n in range(len(shops))]
    for emulator, rows in zip(emulators, shops, strict=True):
        for start in range(0, len(rows), MODELS_PER_ITEM):
            chunk = rows[start : start + MODELS_PER_ITEM]
            item = shop_item(f"Bench item {start}", [sku for sku, _ in chunk])
            for variant, (_, quantity) in zip(item.variants, chunk, strict=True):
                variant.quantity = quantity
            emulator.put_item(item)
        emulator.start()
    conn.send([(e.base_url, e.credentials) for e in emulators])
    while (message := conn.recv())[0] != "stop":
        if message[0] == "clear":
            for emulator in emulators:
                emulator.log.clear()
        elif message[0] == "state":
            conn.send([(e.listing_quantities(), e.update_calls("stock")) for e in emulators])
    for emulator in emulators:
        emulator.stop()


def _measure(options, report, rng, outlet, variants, channels, shops) -> None:
    workers = Workers([c.pk for c in channels])
    start = time.perf_counter()
    movements = _apply(options, rng, outlet, variants)
    applied = time.perf_counter() - start
    workers.finish()
    agreed = time.perf_counter() - start
    shops.send(("state",))
    state = shops.recv()
    _check(channels, [quantities for quantities, _ in state], variants)
    calls = sum(calls for _, calls in state)
    report.line(
        f"{movements:,} movements over {len(variants):,} variants, {len(channels)} channels"
    )
    report.line(f"  movements applied in      {applied:7.2f} s")
    report.line(f"  every channel agrees after {agreed:6.2f} s   (target ≤ 20 s)")
    report.line(f"  push calls                {calls:7,}")


def stocked_catalog(
    count: int, *, prefix: str = PREFIX, per_item: int = MODELS_PER_ITEM, on_hand: int = 1000
) -> tuple[Outlet, list[Variant]]:
    """`count` variants named `prefix`N, `per_item` to a product, each with `on_hand` units at
    the outlet `prefix`outlet."""
    outlet, _ = Outlet.objects.get_or_create(code=f"{prefix}outlet", defaults={"name": "Bench"})
    products = Product.objects.bulk_create(
        Product(handle=f"{prefix}{n}", name=f"Bench {n}", weight_kg=Decimal("0.2"))
        for n in range(count // per_item + 1)
    )
    variants = Variant.objects.bulk_create(
        Variant(product=products[n // per_item], sku=f"{prefix}{n}", retail_price=1)
        for n in range(count)
    )
    stock_apply(
        changes=[StockChange(v.pk, outlet.pk, on_hand_delta=on_hand) for v in variants],
        trigger=StockMovement.Trigger.RECEIPT,
    )
    return outlet, variants


def connected_channel(*, kind: str, name: str, base_url: str, credentials: dict, outlet) -> Channel:
    """A real-time channel of the emulated shop, scanned and brought in line by a full sync."""
    channel = Channel.objects.create(
        kind=kind,
        name=f"{name}-{int(time.time())}",
        api_base_url=base_url,
        credentials=credentials,
        order_outlet=outlet,
        inventory_sync_mode=Channel.SyncMode.REALTIME,
    )
    scan = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    if scan.status != Scan.Status.SUCCEEDED:
        raise RuntimeError(f"scan of {channel.name} failed: {scan.error}")
    # A newly connected channel starts from a full sync, so it agrees before the clock starts.
    inventory_sync_run(
        channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL, requested_by="bench"
    )
    with override_settings(OMNI_FLUSH_ON_COMMIT=False):
        _drain(channel)
    return channel


def shop_item(name: str, skus: list[str]) -> ShopItem:
    """An item listing `skus` as its variants, as the benchmarks' shops hold them."""
    now = int(time.time()) - 86400
    return ShopItem(
        name=name,
        department="Clothing",
        category="T-Shirts",
        brand="Bench",
        description=name,
        weight_kg=Decimal("0.2"),
        status="live",
        created_at=now,
        updated_at=now,
        variants=[
            ShopVariant(sku=sku, price=Decimal("10"), quantity=0, options={"Size": f"S{i}"})
            for i, sku in enumerate(skus)
        ],
        option_names=("Size",),
    )


def _apply(options, rng, outlet, variants) -> int:
    done = 0
    per = options["per_transaction"]
    while done < options["movements"]:
        chosen = rng.sample(variants, min(per, options["movements"] - done, len(variants)))
        stock_apply(
            changes=[
                StockChange(v.pk, outlet.pk, on_hand_delta=rng.randint(-3, 3) or 1) for v in chosen
            ],
            trigger=StockMovement.Trigger.MANUAL,
        )
        done += len(chosen)
    return done


class Workers:
    """The django-q2 cluster's part, as WORKERS processes of their own: each flushes, in
    turn, every channel no other worker is flushing (the flush's lease), as the cluster's
    workers run one channel's flush task each; a worker with nothing to do sleeps a little.
    `finish` lets them drain whatever is left once the caller has committed its last change,
    and waits for them to be done."""

    def __init__(self, channel_ids: list[int], count: int = WORKERS) -> None:
        self.stop = multiprocessing.get_context("fork").Event()
        connections.close_all()  # children must not share the parent's database connection
        self.processes = [
            _fork(_worker, channel_ids[n:] + channel_ids[:n], self.stop) for n in range(count)
        ]

    def finish(self) -> None:
        self.stop.set()
        for process in self.processes:
            process.join()
        if any(process.exitcode for process in self.processes):
            raise RuntimeError("a flush worker failed: see its traceback above")


def _worker(channel_ids: list[int], stop) -> None:
    """Flush the channels in turn; once `stop` is set, go on until a round finds nothing
    left to push on any of them (or fail after DRAIN_SECONDS: pushes the shops keep
    refusing)."""
    drain_started = None
    try:
        while True:
            draining = stop.is_set()  # read first: every change is committed by then
            if draining and drain_started is None:
                drain_started = time.monotonic()
            pushed = 0
            for channel_id in channel_ids:  # a channel another worker is flushing is skipped
                pushed += inventory_flush(channel_id=channel_id, wait=False).pushed
            if not pushed:
                if draining and not _work_left(channel_ids):
                    return
                if drain_started is not None and time.monotonic() - drain_started > DRAIN_SECONDS:
                    raise RuntimeError(f"the outboxes did not drain in {DRAIN_SECONDS} s")
                time.sleep(0.05)
    finally:
        connection.close()


def _work_left(channel_ids: list[int]) -> bool:
    return (
        PendingPush.objects.filter(channel_id__in=channel_ids, failed=False).exists()
        or BundleRecount.objects.filter(channel_id__in=channel_ids).exists()
    )


def _drain(channel: Channel) -> None:
    for _ in range(100):
        inventory_flush(channel_id=channel.pk)
        if not _work_left([channel.pk]):
            return
    raise RuntimeError(f"the outbox of {channel} did not drain")


def _check(channels, quantities, variants) -> None:
    for channel, on_channel in zip(channels, quantities, strict=True):
        expected = channel_quantities(channel=channel, variant_ids=[v.pk for v in variants])
        by_sku = {v.sku: expected[v.pk] for v in variants}
        wrong = sum(
            on_channel[(listing.item_id, listing.variant_ref)] != by_sku[listing.sku]
            for listing in channel.listings.all()
        )
        if wrong:
            raise RuntimeError(f"{channel}: {wrong} listing(s) disagree with the POS")


def _clean(channels=()) -> None:
    """Remove what a run created (this one's channels, or any left by an interrupted run)."""
    Channel.objects.filter(name__startswith=PREFIX).delete()
    Variant.objects.filter(sku__startswith=PREFIX).delete()
    Product.objects.filter(handle__startswith=PREFIX).delete()
    Outlet.objects.filter(code=f"{PREFIX}outlet").delete()
