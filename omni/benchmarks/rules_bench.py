"""`bench rules`: what the allocation rules and bundles cost the inventory sync.

Two runs in one command, on the same catalog (`--variants`, 100,000 by default, 50 to a
product) and the same stock movements (`--movements`, 10,000, on `--components` variants, 2,000):

- **floor**: no rules and no bundles; three real-time channels;
- **rules**: `--bundles` of the variants (10,000) are bundles of 2–3 of the component variants
  (1–3 of each), the three channels have a share, a maximum, a low-stock cut-off, a buffer and
  price rules, and a few hundred variants have their own rule.

Each channel is a Shopee shop (an emulator in a process of its own) listing every variant; it
starts in agreement with the POS (its listings created with the quantity the channel should
show, then scanned), the clock starts, the movements are applied in transactions of
`--per-transaction` while two worker processes flush the outboxes (as the django-q2 cluster's
two workers do: inventory_bench.Workers), and the clock stops when every channel's shop holds
exactly what the POS says it should: for a component, and for every bundle containing it.
Printed per run: the time until every channel agrees, the listings pushed and the marketplace
calls; then the ratio of the two times (target ≤ 1.5) and the load average.
"""

import argparse
import multiprocessing
import os
import random
import time
from decimal import Decimal
from typing import Any

from django.db import connections
from django.test.utils import override_settings

from catalog.models import BundleComponent, Outlet, Product, StockMovement, Variant
from catalog.services import StockChange, stock_apply
from channels.models import BundleRecount, Channel, PendingPush, Scan, StockRule
from channels.scans import scan_request, scan_run
from channels.stock import channel_quantities
from omni.benchmarks import Report, positive_int, tidy_tables
from omni.benchmarks.inventory_bench import (
    MODELS_PER_ITEM,
    Workers,
    _check,
    _fork,
    _serve_shops,
)

PREFIX = "omni-bench-rules-"
ON_HAND = 1000
RULES = [  # per channel: the stock rules and the price rule of the "rules" run
    {"stock_share_percent": 80, "stock_maximum": 400, "stock_cutoff": 5, "buffer": 1,
     "price_markup_percent": Decimal("10"), "price_round_step": Decimal("1000"),
     "price_ending": Decimal("900")},
    {"stock_share_percent": 50, "stock_cutoff": 10, "price_markup_amount": Decimal("2500"),
     "price_round_step": Decimal("100")},
    {"stock_maximum": 200, "buffer": 2, "price_markup_percent": Decimal("-5")},
]  # fmt: skip
OWN_RULES = 300  # variants with their own rule on the first channel, in the "rules" run


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "rules", help="Stock movements under allocation rules and bundles, against a floor."
    )
    parser.add_argument("--variants", type=positive_int, default=100_000)
    parser.add_argument("--bundles", type=positive_int, default=10_000)
    parser.add_argument("--components", type=positive_int, default=2_000)
    parser.add_argument("--movements", type=positive_int, default=10_000)
    parser.add_argument("--per-transaction", type=positive_int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    if options["bundles"] + options["components"] > options["variants"]:
        raise SystemExit("--bundles and --components must fit in --variants")
    report.line(f"load average at start {_load()}")
    floor = _one_run(options, report, rules=False)
    ruled = _one_run(options, report, rules=True)
    report.line(
        f"rules and bundles ÷ floor: {ruled / floor:.2f}× (target ≤ 1.5×); "
        f"load average at end {_load()}"
    )


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def _one_run(options: dict[str, Any], report: Report, *, rules: bool) -> float:
    rng = random.Random(options["seed"])
    _clean()
    tidy_tables(TABLES, vacuum=True)
    name = "rules and bundles" if rules else "floor: no rules, no bundles"
    try:
        with report.phase(f"{name}: catalog, channels and their shops", counted=False):
            outlet, variants, components = _catalog(options, rng, bundles=rules)
            channels = _channels(outlet, rules=rules, variants=variants)
            shops, server = _shops(channels, variants)
            tidy_tables(TABLES, vacuum=False)
        with override_settings(OMNI_FLUSH_ON_COMMIT=False):  # the worker processes flush
            seconds = _measure(options, report, rng, name, outlet, variants, components, channels)
            shops.send(("state",))
            state = shops.recv()
        _check(channels, [quantities for quantities, _ in state], variants)
        calls = sum(calls for _, calls in state)
        report.line(f"  {calls:,} marketplace calls (update_stock, one per item)")
        shops.send(("stop",))
        server.join(10)
        return seconds
    finally:
        _clean()


def _catalog(options, rng, *, bundles: bool) -> tuple[Outlet, list[Variant], list[Variant]]:
    """The variants (the first `components` of them the ones the movements hit, the last
    `bundles` bundles of those in the "rules" run), every one but the bundles stocked."""
    count = options["variants"]
    outlet = Outlet.objects.create(code=f"{PREFIX}outlet", name="Bench")
    products = Product.objects.bulk_create(
        Product(handle=f"{PREFIX}{n}", name=f"Bench {n}", weight_kg=Decimal("0.2"))
        for n in range(count // MODELS_PER_ITEM + 1)
    )
    variants = Variant.objects.bulk_create(
        (
            Variant(
                product=products[n // MODELS_PER_ITEM],
                sku=f"{PREFIX}{n}",
                retail_price=Decimal(10_000 + n % 500 * 137),
            )
            for n in range(count)
        ),
        batch_size=5000,
    )
    components = variants[: options["components"]]
    kits = variants[count - options["bundles"] :] if bundles else []
    if kits:
        BundleComponent.objects.bulk_create(
            (
                BundleComponent(bundle=kit, component=part, quantity=rng.randint(1, 3))
                for kit in kits
                for part in rng.sample(components, rng.randint(2, 3))
            ),
            batch_size=5000,
        )
    kit_ids = {kit.pk for kit in kits}
    stock_apply(
        changes=[
            StockChange(v.pk, outlet.pk, on_hand_delta=ON_HAND)
            for v in variants
            if v.pk not in kit_ids
        ],
        trigger=StockMovement.Trigger.RECEIPT,
    )
    return outlet, variants, components


def _channels(outlet: Outlet, *, rules: bool, variants: list[Variant]) -> list[Channel]:
    channels = [
        Channel.objects.create(
            kind="shopee",
            name=f"{PREFIX}{n}",
            api_base_url="http://127.0.0.1:9",  # the shop's, once it runs
            credentials={},
            order_outlet=outlet,
            inventory_sync_mode=Channel.SyncMode.REALTIME,
            **(RULES[n % len(RULES)] if rules else {}),
        )
        for n in range(3)
    ]
    if rules:
        StockRule.objects.bulk_create(
            StockRule(channel=channels[0], variant=v, maximum=3 + n % 7)
            for n, v in enumerate(variants[5000 : 5000 + OWN_RULES])
        )
    return channels


def _shops(channels: list[Channel], variants: list[Variant]):
    """One Shopee shop per channel, in a process of its own, listing every variant with the
    quantity the channel should show; the channels then scan them."""
    skus = {v.pk: v.sku for v in variants}
    wanted = []
    for channel in channels:
        quantities = channel_quantities(channel=channel, variant_ids=list(skus))
        wanted.append([(skus[pk], quantity) for pk, quantity in quantities.items()])
    connections.close_all()  # children must not share the parent's database connection
    shops, shops_end = multiprocessing.Pipe()
    server = _fork(_serve_shops, wanted, shops_end)
    for channel, (base_url, credentials) in zip(channels, shops.recv(), strict=True):
        Channel.objects.filter(pk=channel.pk).update(api_base_url=base_url, credentials=credentials)
        channel.refresh_from_db()
        scan = scan_run(
            scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk
        )
        if scan.status != Scan.Status.SUCCEEDED:
            raise RuntimeError(f"scan of {channel.name} failed: {scan.error}")
    shops.send(("clear",))
    return shops, server


def _measure(options, report, rng, name, outlet, variants, components, channels) -> float:
    workers = Workers([c.pk for c in channels])
    start = time.perf_counter()
    done, per = 0, options["per_transaction"]
    while done < options["movements"]:
        chosen = rng.sample(components, min(per, len(components), options["movements"] - done))
        stock_apply(
            changes=[
                StockChange(v.pk, outlet.pk, on_hand_delta=rng.randint(-3, 3) or 1) for v in chosen
            ],
            trigger=StockMovement.Trigger.MANUAL,
        )
        done += len(chosen)
    applied = time.perf_counter() - start
    left = PendingPush.objects.count() + BundleRecount.objects.count()
    workers.finish()
    agreed = time.perf_counter() - start
    report.line(f"{name}: {done:,} movements on {len(components):,} variants, 3 channels")
    report.line(f"  movements applied in       {applied:7.2f} s")
    report.line(
        f"  every channel agrees after {agreed:7.2f} s  "
        f"({left:,} pushes and bundle recounts left for the end)"
    )
    return agreed


# The tables the runs fill and empty: vacuumed before each run, so that the second does not
# wade through the first's dead rows and the two are compared fairly, and analyzed after its
# bulk load (omni.benchmarks.tidy_tables).
TABLES = (
    "catalog_product", "catalog_variant", "catalog_stock", "catalog_stockmovement",
    "catalog_bundlecomponent", "channels_channel", "channels_listing", "channels_stockrule",
    "channels_pendingpush", "channels_bundlerecount",
)  # fmt: skip


def _clean() -> None:
    """Remove what a run created (or any left by an interrupted run)."""
    Channel.objects.filter(name__startswith=PREFIX).delete()
    BundleComponent.objects.filter(bundle__sku__startswith=PREFIX).delete()
    Variant.objects.filter(sku__startswith=PREFIX).delete()
    Product.objects.filter(handle__startswith=PREFIX).delete()
    Outlet.objects.filter(code=f"{PREFIX}outlet").delete()
