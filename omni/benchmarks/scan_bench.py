"""`bench scan`: a full scan of a large emulated shop, a Scan Updated Products run, and the tabs.

The emulator runs in a child process, so its CPU time does not count as omni's. The POS catalog
is made to match the shop the way a real one does (most SKUs known, some unknown, some only
differing in case or spaces), then removed afterwards unless --keep.
"""

import argparse
import multiprocessing
import time
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from catalog.models import Outlet, Product, Variant, sku_key
from channels.emulators import emulator_class
from channels.emulators.shop import ShopItem, generate_shop
from channels.models import Channel, Scan
from channels.scans import scan_request, scan_run
from channels.tabs import TABS
from omni.benchmarks import Report, positive_int

PREFIX = "omni-bench-scan-"
LISTINGS_PER_ITEM = 1.75  # the generator's default mix: a first guess, corrected once


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "scan", help="Scan a large emulated shop over HTTP; then an incremental scan; then tabs."
    )
    parser.add_argument("--kind", default="shopee", help="Marketplace kind (default shopee).")
    parser.add_argument("--items", type=positive_int, default=100_000, help="Listings in the shop.")
    parser.add_argument("--changed", type=positive_int, default=1000, help="Listings changed.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the channel and catalog.")
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    kind, seed = options["kind"], options["seed"]
    _clean()
    with report.phase("generate shop", counted=False) as phase:
        items = _shop(options["items"], seed)
        phase.rows = sum(len(i.variants) for i in items)
    with report.phase("create matching POS catalog", counted=False) as phase:
        phase.rows = _catalog(items)
    connections.close_all()  # the child must not share the parent's database connection
    control, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_serve, args=(kind, seed, items, child_end), daemon=True
    )
    child.start()
    base_url, credentials = control.recv()
    try:
        channel = _channel(kind, base_url, credentials)
        _full_scan(channel, report)
        _analyze()
        _incremental(channel, control, options["changed"], report)
        _tabs(channel, report)
    finally:
        control.send(("stop",))
        child.join(10)
        if not options["keep"]:
            _clean()


def _shop(listings: int, seed: int) -> list[ShopItem]:
    items = generate_shop(max(1, round(listings / LISTINGS_PER_ITEM)), seed)
    per_item = sum(len(i.variants) for i in items) / len(items)
    items = generate_shop(max(1, round(listings / per_item)), seed)
    return items


def _catalog(items: list[ShopItem]) -> int:
    """POS variants for 92% of the shop's SKUs, as a real catalog overlaps its shop."""
    keys: dict[str, str] = {}
    for n, item in enumerate(items):
        for variant in item.variants:
            key = sku_key(variant.sku)
            if key and key not in keys and n % 25 != 0:  # every 25th item stays unknown
                keys[key] = variant.sku.strip()
    products = Product.objects.bulk_create(
        Product(handle=f"{PREFIX}{n}", name=f"Bench product {n}", weight_kg=Decimal("0.2"))
        for n in range(len(keys) // 4 + 1)
    )
    Variant.objects.bulk_create(
        (
            Variant(product=products[n // 4], sku=sku, retail_price=Decimal("10"))
            for n, sku in enumerate(keys.values())
        ),
        batch_size=5000,
    )
    return len(keys)


def _serve(kind: str, seed: int, items: list[ShopItem], conn) -> None:
    """The child: serve the shop until told to stop; change listings when asked."""
    emulator = emulator_class(kind)(items=0, seed=seed)
    for item in items:
        emulator.put_item(item)
    with emulator:
        conn.send((emulator.base_url, emulator.credentials))
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return
            if message[0] == "touch":
                conn.send(_touch(emulator, message[1]))


def _touch(emulator, listings: int) -> int:
    """Rename whole items until at least `listings` listings changed; how many did."""
    by_item: dict[str, int] = {}
    for item_id, _variant in emulator.listing_quantities():
        by_item[item_id] = by_item.get(item_id, 0) + 1
    changed = 0
    for item_id, count in by_item.items():
        if changed >= listings:
            break
        emulator.touch_item(item_id, name=f"Renamed item {item_id}")
        changed += count
    return changed


def _channel(kind: str, base_url: str, credentials: dict) -> Channel:
    outlet, _ = Outlet.objects.get_or_create(code=f"{PREFIX}outlet", defaults={"name": "Bench"})
    return Channel.objects.create(
        kind=kind,
        name=f"{PREFIX}{kind}-{int(time.time())}",
        api_base_url=base_url,
        credentials=credentials,
        order_outlet=outlet,
    )


def _scan(channel: Channel, kind: str) -> tuple[Scan, float]:
    start = time.perf_counter()
    scan = scan_run(scan_id=scan_request(channel=channel, kind=kind, enqueue=False).pk)
    wall = time.perf_counter() - start
    if scan.status != Scan.Status.SUCCEEDED:
        raise RuntimeError(f"scan failed: {scan.error}")
    return scan, wall


def _full_scan(channel: Channel, report: Report) -> None:
    scan, wall = _scan(channel, Scan.Kind.FULL)
    own = wall - scan.http_seconds
    report.line(
        f"full scan: {scan.seen:,} listings ({scan.matched:,} matched, "
        f"{scan.not_in_pos:,} not in POS, {scan.duplicates:,} duplicates)"
    )
    report.line(f"  wall time                {wall:8.2f} s")
    report.line(f"  HTTP calls               {scan.http_calls:8,}")
    report.line(f"  waiting on HTTP          {scan.http_seconds:8.2f} s")
    report.line(f"  omni's own code and DB   {own:8.2f} s   (target ≤ 10 s)")
    report.line(f"  listings per second      {scan.seen / wall:8,.0f}")


def _analyze() -> None:
    """Refresh the planner's statistics after a bulk load, as autovacuum soon would."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _incremental(channel: Channel, control, listings: int, report: Report) -> None:
    control.send(("touch", listings))
    changed = control.recv()
    scan, wall = _scan(channel, Scan.Kind.UPDATED)
    report.line(
        f"Scan Updated Products after {changed:,} listings changed: {wall:.2f} s wall "
        f"(target ≤ 3 s), {scan.seen:,} fetched, {scan.http_calls:,} HTTP calls"
    )


def _tabs(channel: Channel, report: Report) -> None:
    user, _ = get_user_model().objects.get_or_create(
        username=f"{PREFIX}admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    for tab in TABS:
        url = reverse(tab.changelist_url_name) + f"?channel={channel.pk}"
        client.get(url)  # warm caches (templates, URL resolver) once
        start = time.perf_counter()
        response = client.get(url)
        ms = (time.perf_counter() - start) * 1000
        report.line(
            f"  tab {tab.slug:<20} {ms:7.0f} ms  (HTTP {response.status_code}, target ≤ 200 ms)"
        )
    user.delete()


def _clean() -> None:
    """Remove what a run (this one, or an earlier one with --keep) created."""
    Channel.objects.filter(name__startswith=PREFIX).delete()
    Variant.objects.filter(product__handle__startswith=PREFIX)._raw_delete("default")
    Product.objects.filter(handle__startswith=PREFIX).delete()
    Outlet.objects.filter(code=f"{PREFIX}outlet").delete()
