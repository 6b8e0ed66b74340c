"""`bench inventory`: 10,000 stock movements, three real-time channels, until all agree.

A worker thread flushes the channels' outboxes while the movements are applied, as the
django-q2 worker does; the clock stops when every channel's emulator holds exactly the
quantities the POS says it should.
"""

import argparse
import random
import threading
import time
from decimal import Decimal
from typing import Any

from django.db import connection
from django.test.utils import override_settings

from catalog.models import Outlet, Product, StockMovement, Variant
from catalog.services import StockChange, stock_apply
from channels.emulators.shop import ShopItem, ShopVariant
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import SALES_CHANNEL_MANUAL, inventory_flush, inventory_sync_run
from channels.models import Channel, PendingPush, Scan
from channels.scans import scan_request, scan_run
from channels.stock import channel_quantities
from omni.benchmarks import Report, positive_int

PREFIX = "omni-bench-inv-"
MODELS_PER_ITEM = 50  # Shopee's per-call limit: one update_stock call per item


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
    outlet, variants = _catalog(options["variants"])
    emulators = [ShopeeEmulator(items=0, seed=n).start() for n in range(options["channels"])]
    channels = []
    try:
        with report.phase("set up channels and scan", counted=False):
            channels = [
                _connect(emulator, variants, outlet, n) for n, emulator in enumerate(emulators)
            ]
        with override_settings(OMNI_FLUSH_ON_COMMIT=False):  # the thread below is the worker
            _measure(options, report, rng, outlet, variants, channels, emulators)
    finally:
        for emulator in emulators:
            emulator.stop()
        _clean(channels)


def _measure(options, report, rng, outlet, variants, channels, emulators) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=_worker, args=(channels, stop), daemon=True)
    start = time.perf_counter()
    worker.start()
    movements = _apply(options, rng, outlet, variants)
    applied = time.perf_counter() - start
    stop.set()
    worker.join()
    for channel in channels:
        _drain(channel)
    agreed = time.perf_counter() - start
    _check(channels, emulators, variants)
    calls = sum(e.update_calls("stock") for e in emulators)
    report.line(
        f"{movements:,} movements over {len(variants):,} variants, {len(channels)} channels"
    )
    report.line(f"  movements applied in      {applied:7.2f} s")
    report.line(f"  every channel agrees after {agreed:6.2f} s   (target ≤ 20 s)")
    report.line(f"  push calls                {calls:7,}")


def _catalog(count: int) -> tuple[Outlet, list[Variant]]:
    outlet, _ = Outlet.objects.get_or_create(code=f"{PREFIX}outlet", defaults={"name": "Bench"})
    products = Product.objects.bulk_create(
        Product(handle=f"{PREFIX}{n}", name=f"Bench {n}", weight_kg=Decimal("0.2"))
        for n in range(count // MODELS_PER_ITEM + 1)
    )
    variants = Variant.objects.bulk_create(
        Variant(product=products[n // MODELS_PER_ITEM], sku=f"{PREFIX}{n}", retail_price=1)
        for n in range(count)
    )
    stock_apply(
        changes=[StockChange(v.pk, outlet.pk, on_hand_delta=1000) for v in variants],
        trigger=StockMovement.Trigger.RECEIPT,
    )
    return outlet, variants


def _connect(emulator: ShopeeEmulator, variants, outlet, n: int) -> Channel:
    for start in range(0, len(variants), MODELS_PER_ITEM):
        chunk = variants[start : start + MODELS_PER_ITEM]
        emulator.put_item(_item(f"Bench item {start}", [v.sku for v in chunk]))
    channel = Channel.objects.create(
        kind="shopee",
        name=f"{PREFIX}{n}-{int(time.time())}",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=outlet,
        inventory_sync_mode=Channel.SyncMode.REALTIME,
    )
    scan = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    if scan.status != Scan.Status.SUCCEEDED:
        raise RuntimeError(f"scan failed: {scan.error}")
    # A newly connected channel starts from a full sync, so it agrees before the clock starts.
    inventory_sync_run(channel=channel, trigger=SALES_CHANNEL_MANUAL, requested_by="bench")
    with override_settings(OMNI_FLUSH_ON_COMMIT=True):
        _drain(channel)
    emulator.log.clear()
    return channel


def _item(name: str, skus: list[str]) -> ShopItem:
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


def _worker(channels, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            for channel in channels:
                inventory_flush(channel_id=channel.pk)
            time.sleep(0.05)
    finally:
        connection.close()


def _drain(channel: Channel) -> None:
    for _ in range(100):
        inventory_flush(channel_id=channel.pk)
        if not PendingPush.objects.filter(channel=channel, failed=False).exists():
            return
    raise RuntimeError(f"the outbox of {channel} did not drain")


def _check(channels, emulators, variants) -> None:
    for channel, emulator in zip(channels, emulators, strict=True):
        expected = channel_quantities(channel=channel, variant_ids=[v.pk for v in variants])
        by_sku = {v.sku: expected[v.pk] for v in variants}
        on_channel = emulator.listing_quantities()
        wrong = 0
        for listing in channel.listings.all():
            if on_channel[(listing.item_id, listing.variant_ref)] != by_sku[listing.sku]:
                wrong += 1
        if wrong:
            raise RuntimeError(f"{channel}: {wrong} listing(s) disagree with the POS")


def _clean(channels) -> None:
    for channel in channels:
        channel.delete()
    Variant.objects.filter(sku__startswith=PREFIX).delete()
    Product.objects.filter(handle__startswith=PREFIX).delete()
    Outlet.objects.filter(code=f"{PREFIX}outlet").delete()
