"""`bench scan`: a full scan of a large emulated shop, a Scan Updated Products run, and the tabs.

The emulator runs in a child process, so its CPU time does not count as omni's. The POS catalog
is made to match the shop the way a real one does (most SKUs known, some unknown, some only
differing in case or spaces), then removed afterwards unless --keep.

Real marketplaces answer in 100–300 ms and refuse calls beyond their limit. `--latency` makes
the emulator wait that long before every reply, and `--max-in-flight` is the number of calls it
handles at once (one more is answered throttled, as the marketplace would) and the channel's
own setting; by default both are the marketplace's `Limits.max_in_flight`. `--max-per-second`
is the calls the emulator handles in any one second (beyond them it answers throttled, as a
marketplace counting calls per app does) and `--calls-a-second` the channel's own "calls a
second"; by default neither limits anything. The full scan is then judged against its floor, the
least time any client could take for the same calls:

    floor = latency × max(calls ÷ calls in flight, chain)

and, where the emulator handles at most `rate` calls a second, at least
(calls − 1) ÷ rate seconds (rounded down) plus one latency: call k can start no earlier than
second k ÷ rate.

Every round trip takes `latency` and at most `calls in flight` are under way at a time, so the
calls need at least calls ÷ calls-in-flight round trips; and some calls cannot start before
another's answer (a cursor's next page, a page's details, the pages a first page's total
announces), so the longest such chain (`CallStats.chain`, as the adapter counted it) needs as
many round trips one after another. Whichever is longer is the floor. It leaves out the
emulator's own handling time and omni's: `wall ÷ floor` shows how close to it the scan came.
"""

import argparse
import math
import multiprocessing
import os
import statistics
import time
from decimal import Decimal
from typing import Any
from unittest import mock

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from catalog.models import Outlet, Product, Variant, sku_key
from channels import scans
from channels.adapters import adapter_class
from channels.adapters.base import Adapter
from channels.emulators import emulator_class
from channels.emulators.base import Faults
from channels.emulators.shop import ShopItem, generate_shop
from channels.models import MAX_CONCURRENT_CALLS, Channel, Listing, PendingPush, Scan
from channels.scans import scan_request, scan_run
from channels.tabs import TABS
from omni.benchmarks import Report, positive_int, tidy_tables

PREFIX = "omni-bench-scan-"
# The tables a run fills and empties (tidied by _clean).
FILLED = (Product, Variant, Listing, PendingPush, Scan, Channel)
TAB_TRIES = 3  # each tab is timed this many times, after one untimed request; the median shows
LISTINGS_PER_ITEM = 1.75  # the generator's default mix: a first guess, corrected once


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "scan", help="Scan a large emulated shop over HTTP; then an incremental scan; then tabs."
    )
    parser.add_argument("--kind", default="shopee", help="Marketplace kind (default shopee).")
    parser.add_argument("--items", type=positive_int, default=100_000, help="Listings in the shop.")
    parser.add_argument("--changed", type=positive_int, default=1000, help="Listings changed.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--latency",
        type=non_negative_float,
        default=0.0,
        help="Seconds the emulator waits before every reply (real marketplaces: 0.1–0.3).",
    )
    parser.add_argument(
        "--max-in-flight",
        type=positive_int,
        help="Calls the emulator handles at once, and the channel's calls at once "
        "(default: the marketplace's Limits.max_in_flight).",
    )
    parser.add_argument(
        "--max-per-second",
        type=positive_int,
        help="Calls the emulator handles in any one second (default: no limit).",
    )
    parser.add_argument(
        "--calls-a-second",
        type=positive_int,
        help="The channel's calls a second: its calls are spaced to stay under it "
        "(default: not spaced).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the channel and catalog.")
    parser.set_defaults(run=run)


def non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {raw}")
    return value


def run(options: dict[str, Any], report: Report) -> None:
    kind, seed = options["kind"], options["seed"]
    in_flight = options["max_in_flight"] or adapter_class(kind).limits.max_in_flight
    if in_flight > MAX_CONCURRENT_CALLS:
        raise ValueError(f"--max-in-flight is at most {MAX_CONCURRENT_CALLS}")
    faults = Faults(
        latency=options["latency"],
        max_in_flight=in_flight,
        max_per_second=options["max_per_second"] or 0,
    )
    _clean()
    with report.phase("generate shop", counted=False) as phase:
        items = _shop(options["items"], seed)
        phase.rows = sum(len(i.variants) for i in items)
    with report.phase("create matching POS catalog", counted=False) as phase:
        phase.rows = _catalog(items)
    connections.close_all()  # the child must not share the parent's database connection
    control, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_serve, args=(kind, seed, items, faults, child_end), daemon=True
    )
    child.start()
    base_url, credentials = control.recv()
    try:
        channel = _channel(
            kind, base_url, credentials, options["max_in_flight"], options["calls_a_second"]
        )
        _full_scan(channel, faults, control, report)
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


def _serve(kind: str, seed: int, items: list[ShopItem], faults: Faults, conn) -> None:
    """The child: serve the shop until told to stop; change listings when asked."""
    emulator = emulator_class(kind)(items=0, seed=seed, faults=faults)
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
            if message[0] == "refused":
                faults = emulator.log.faults
                conn.send(faults["in_flight"] + faults["rate"])
            if message[0] == "cpu":
                conn.send(time.process_time())


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


def _channel(
    kind: str, base_url: str, credentials: dict, in_flight: int | None, per_second: int | None
) -> Channel:
    outlet, _ = Outlet.objects.get_or_create(code=f"{PREFIX}outlet", defaults={"name": "Bench"})
    return Channel.objects.create(
        kind=kind,
        name=f"{PREFIX}{kind}-{int(time.time())}",
        api_base_url=base_url,
        credentials=credentials,
        order_outlet=outlet,
        max_concurrent_calls=in_flight,
        max_calls_per_second=per_second,
    )


def _scan(channel: Channel, kind: str) -> tuple[Scan, float, Adapter]:
    """Run one scan; the scan, its wall time and the adapter it used (for its call figures)."""
    used: list[Adapter] = []

    def adapter_for(channel: Channel) -> Adapter:
        used.append(real_adapter_for(channel))
        return used[-1]

    real_adapter_for = scans.adapter_for
    start = time.perf_counter()
    with mock.patch.object(scans, "adapter_for", adapter_for):
        scan = scan_run(scan_id=scan_request(channel=channel, kind=kind, enqueue=False).pk)
    wall = time.perf_counter() - start
    if scan.status != Scan.Status.SUCCEEDED:
        raise RuntimeError(f"scan failed: {scan.error}")
    return scan, wall, used[0]


def _full_scan(channel: Channel, faults: Faults, control, report: Report) -> None:
    control.send(("cpu",))
    emulator_cpu = control.recv()
    cpu = time.process_time()
    scan, wall, adapter = _scan(channel, Scan.Kind.FULL)
    cpu = time.process_time() - cpu
    control.send(("cpu",))
    emulator_cpu = control.recv() - emulator_cpu
    load = os.getloadavg()
    own = wall - scan.http_seconds
    report.line(
        f"full scan: {scan.seen:,} listings ({scan.matched:,} matched, "
        f"{scan.not_in_pos:,} not in POS, {scan.duplicates:,} duplicates)"
    )
    report.line(f"  wall time                {wall:8.2f} s")
    report.line(
        f"  HTTP calls               {scan.http_calls:8,}   ({adapter.stats.retries:,} retries)"
    )
    report.line(f"  waiting on HTTP          {scan.http_seconds:8.2f} s")
    report.line(f"  omni's own code and DB   {own:8.2f} s   (target ≤ 10 s)")
    report.line(f"  omni's CPU (all threads) {cpu:8.2f} s")
    report.line(
        f"  the emulator's CPU       {emulator_cpu:8.2f} s   (its own process, on the same "
        "cores: building its answers, which the floor leaves out)"
    )
    report.line(f"  listings per second      {scan.seen / wall:8,.0f}")
    control.send(("refused",))
    report.line(f"  refused as too many      {control.recv():8,}   (calls beyond the limit)")
    _floor(scan, wall, adapter, faults, report)
    report.line(
        f"  load average             {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"(1, 5, 15 min; {os.cpu_count()} cores, shared)"
    )


def _floor(scan: Scan, wall: float, adapter: Adapter, faults: Faults, report: Report) -> None:
    """The least time the scan's calls can take at this latency and limit (module docstring)."""
    in_flight = adapter.max_in_flight  # type: ignore[attr-defined]
    rounds = math.ceil(scan.http_calls / in_flight)
    chain = adapter.stats.chain
    floor = faults.latency * max(rounds, chain)
    rate = faults.max_per_second
    needed = scan.http_calls - adapter.stats.retries  # the calls refused were not needed
    by_rate = (needed - 1) // rate + faults.latency if rate else 0.0
    report.line(
        f"  marketplace              {faults.latency:.3f} s per reply, {in_flight} calls in "
        f"flight (peak used {adapter.gate.peak})" + (f", {rate} calls a second" if rate else "")  # type: ignore[attr-defined]
    )
    bulk = getattr(adapter, "bulk_stats", None)
    if bulk is not None and bulk.read:
        report.line(
            "  floor                        none     read through a bulk operation: its time "
            "is the operation running on the marketplace's side, not calls (target: 100,000 "
            "products within 3 minutes)"
        )
        return
    report.line(
        f"  floor                    {max(floor, by_rate):8.2f} s   = {faults.latency:g} s × max("
        f"{scan.http_calls:,} calls ÷ {in_flight} = {rounds:,} round trips, "
        f"a chain of {chain} calls one after another)"
        + (
            f", or {needed:,} calls at {rate} a second: {by_rate:.2f} s, whichever is longer"
            if rate
            else ""
        )
    )
    floor = max(floor, by_rate)
    if floor:
        report.line(f"  wall ÷ floor             {wall / floor:8.2f}     (target ≤ 1.3)")


def _analyze() -> None:
    """Refresh the planner's statistics after a bulk load, as autovacuum soon would."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _incremental(channel: Channel, control, listings: int, report: Report) -> None:
    control.send(("touch", listings))
    changed = control.recv()
    scan, wall, _adapter = _scan(channel, Scan.Kind.UPDATED)
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
        times = []
        for _ in range(TAB_TRIES):
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        ms = statistics.median(times)
        report.line(
            f"  tab {tab.slug:<20} {ms:7.0f} ms  (HTTP {response.status_code}, median of "
            f"{TAB_TRIES}, target ≤ 200 ms)"
        )
    user.delete()


def _clean() -> None:
    """Remove what a run (this one, or an earlier one with --keep) created, and tidy the tables
    it emptied (omni.benchmarks.tidy_tables): without it, each Lazada run on one database took
    more own time than the last (7.5 s, 10.9 s, 12.0 s; 10.0 s, 11.7 s, 12.6 s with the dead
    rows vacuumed but the emptied index pages kept; 9.2 s once the indexes were rebuilt)."""
    Channel.objects.filter(name__startswith=PREFIX).delete()
    Variant.objects.filter(product__handle__startswith=PREFIX)._raw_delete("default")
    Product.objects.filter(handle__startswith=PREFIX).delete()
    Outlet.objects.filter(code=f"{PREFIX}outlet").delete()
    tidy_tables([model._meta.db_table for model in FILLED], vacuum=True)
