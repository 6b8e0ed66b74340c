"""`bench api`: requests per second for a product tab of a 100,000-listing channel, served the
way production serves it.

It builds (or reuses) a Shopee channel with that many listings straight in the database (80 %
mapped to POS variants, 20 % not in the POS), starts gunicorn on 127.0.0.1 with DEBUG off,
creates an API token, and runs a bounded load loop: `--concurrency` client threads sending
`GET /api/channels/{id}/listings` with the token, each on a kept-alive connection, until
`--requests` are done or `--seconds` have passed. It prints requests per second and latency
percentiles, once for the first pages (what a dashboard asks for) and once for pages spread over
the whole tab (what a full export does), then stops the server and revokes the token.

Server settings (gunicorn): `--workers` processes (default 3 on 2 cores) of the `gthread`
class with `--server-threads` threads each (default 2), so connections are kept alive between
requests; DB_CONN_MAX_AGE keeps one database connection per thread. The rate limit is raised
out of the way for the run (the counter still runs: its cost is measured too).

Requests per second depend on what else the machine is doing, so the CPU each request cost is
printed too, read from /proc for the gunicorn processes, the PostgreSQL backends serving them
and the load loop itself: the capacity of an otherwise idle machine follows from it.
"""

import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from catalog.models import Outlet, Product, Variant
from channels.models import Channel, Listing
from channels.tabs import API_TABS
from omni.auth import token_create, token_revoke
from omni.benchmarks import Report, positive_int

NAME = "omni-bench-api"
VARIANTS_PER_PRODUCT = 4
MAPPED_SHARE = 0.8
BATCH = 5000


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "api", help="Requests per second for GET /api/channels/{id}/listings under gunicorn."
    )
    parser.add_argument("--listings", type=positive_int, default=100_000)
    parser.add_argument("--tab", default="sold_in_channel", choices=API_TABS)
    parser.add_argument("--limit", type=positive_int, default=50, help="Rows per page (50).")
    parser.add_argument("--workers", type=positive_int, default=3, help="gunicorn processes.")
    parser.add_argument("--server-threads", type=positive_int, default=2)
    parser.add_argument("--concurrency", type=positive_int, default=6, help="Client threads.")
    parser.add_argument("--requests", type=positive_int, default=4000, help="Per load run.")
    parser.add_argument("--seconds", type=positive_int, default=30, help="Per load run, at most.")
    parser.add_argument("--rebuild", action="store_true", help="Rebuild the channel's data.")
    parser.add_argument("--drop", action="store_true", help="Delete the channel's data after.")
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    with report.phase("build or reuse the channel", counted=False) as phase:
        channel = _channel(options["listings"], rebuild=options["rebuild"])
        phase.rows = Listing.objects.filter(channel=channel).count()
    token, plain = token_create(name=NAME, scopes="read")
    port = _free_port()
    server = _start_server(options, port)
    options["server_pid"] = server.pid
    try:
        _wait_until_up(port, server)
        path = f"/api/channels/{channel.pk}/listings?tab={options['tab']}&limit={options['limit']}"
        total = _count(port, path, plain)
        report.line(f"tab {options['tab']}: {total:,} rows, {options['limit']} per page")
        _load(port, path, plain, pages=10, options=options, report=report, label="warm-up")
        _load(port, path, plain, pages=10, options=options, report=report, label="first pages")
        _load(
            port,
            path,
            plain,
            pages=max(1, total // options["limit"]),
            options=options,
            report=report,
            label="pages over the whole tab",
        )
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        token_revoke(token=token)
        token.delete()
        if options["drop"]:
            _drop()


# --- the data --------------------------------------------------------------------------------


def _channel(listings: int, *, rebuild: bool) -> Channel:
    """The bench channel with exactly `listings` listings, built once and reused."""
    channel = Channel.objects.filter(name=NAME).first()
    reusable = channel is not None and not rebuild
    if reusable and Listing.objects.filter(channel=channel).count() == listings:
        return channel
    _drop()
    return _build(listings)


@transaction.atomic
def _build(listings: int) -> Channel:
    outlet = Outlet.objects.create(code=NAME, name="API bench outlet")
    channel = Channel.objects.create(
        kind="shopee",
        name=NAME,
        api_base_url="http://127.0.0.1:9",  # never called: the bench only reads tabs
        credentials={"partner_id": 1, "partner_key": "x", "shop_id": 1, "access_token": "x"},
        order_outlet=outlet,
        inventory_sync_mode=Channel.SyncMode.NONE,
    )
    mapped = int(listings * MAPPED_SHARE)
    products = Product.objects.bulk_create(
        [
            Product(name=f"{NAME} product {i}", handle=f"{NAME}-{i}")
            for i in range(-(-mapped // VARIANTS_PER_PRODUCT))
        ],
        batch_size=BATCH,
    )
    variants = Variant.objects.bulk_create(
        [
            Variant(
                product=products[i // VARIANTS_PER_PRODUCT],
                sku=f"OBA-{i:07d}",
                retail_price=Decimal("49.90"),
                options={"Size": "SML"[i % 3]},
                position=i % VARIANTS_PER_PRODUCT,
            )
            for i in range(mapped)
        ],
        batch_size=BATCH,
    )
    rows = []
    for i in range(listings):
        variant = variants[i] if i < mapped else None
        sku = variant.sku if variant else f"UNKNOWN-{i:07d}"
        rows.append(
            Listing(
                channel=channel,
                item_id=str(800_000_000 + i),
                sku=sku,
                sku_key=sku.lower(),
                title=f"{NAME} item {i}",
                price=Decimal("50000"),
                quantity=i % 50,
                variant=variant,
            )
        )
        if len(rows) == BATCH:
            Listing.objects.bulk_create(rows)
            rows = []
    Listing.objects.bulk_create(rows)
    transaction.on_commit(_analyze)
    return channel


def _analyze() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE channels_listing")
            cursor.execute("ANALYZE catalog_variant")


def _drop() -> None:
    channel = Channel.objects.filter(name=NAME).first()
    if channel is not None:
        Listing.objects.filter(channel=channel).delete()
        channel.delete()
    Product.objects.filter(handle__startswith=f"{NAME}-").delete()
    Outlet.objects.filter(code=NAME).delete()


# --- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(options: dict[str, Any], port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "OMNI_CREDENTIALS_KEYS": ",".join(settings.OMNI_CREDENTIALS_KEYS),
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_RATE_LIMIT_PER_MINUTE": str(10**9),
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
        "DJANGO_SETTINGS_MODULE": "omni.settings",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "omni.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={options['workers']}",
        "--worker-class=gthread",
        f"--threads={options['server_threads']}",
        "--keep-alive=30",
        "--log-level=warning",
    ]
    return subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)


def _wait_until_up(port: int, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def _count(port: int, path: str, token: str) -> int:
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status} {body[:300]!r}")
    return int(json.loads(body)["count"])


# --- the load loop ---------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc); 0 for any gone."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _server_pids(server_pid: int) -> list[int]:
    try:
        with open(f"/proc/{server_pid}/task/{server_pid}/children") as children:
            return [server_pid, *map(int, children.read().split())]
    except OSError:
        return [server_pid]


def _backend_pids() -> list[int]:
    """PostgreSQL backends connected to this database (the server's, and this process's)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [row[0] for row in cursor.fetchall()]


def _load(
    port: int,
    path: str,
    token: str,
    *,
    pages: int,
    options: dict[str, Any],
    report: Report,
    label: str,
) -> None:
    """`--concurrency` threads, each on its own kept-alive connection, share a budget of
    `--requests` requests and stop at `--seconds`; offsets are drawn from the first `pages`."""
    budget = options["requests"] if label != "warm-up" else options["concurrency"] * 20
    deadline = time.monotonic() + options["seconds"]
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    remaining = [budget]

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or time.monotonic() > deadline:
                return False
            remaining[0] -= 1
            return True

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
        while take():
            url = f"{path}&offset={rng.randrange(pages) * options['limit']}"
            start = time.perf_counter()
            try:
                conn.request("GET", url, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                with lock:
                    errors.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors.append(f"HTTP {status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(options["concurrency"])]
    server_pids, backend_pids = _server_pids(options["server_pid"]), _backend_pids()
    cpu_before = (_cpu_seconds(server_pids), _cpu_seconds(backend_pids), time.process_time())
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu_after = (_cpu_seconds(server_pids), _cpu_seconds(backend_pids), time.process_time())
    done = len(latencies)
    if label == "warm-up" or not done:
        return
    app, database, loop = (
        1000 * (b - a) / done for a, b in zip(cpu_before, cpu_after, strict=True)
    )
    ms = sorted(x * 1000 for x in latencies) or [0.0]
    report.line(
        f"{label:<28} {done:>6,} requests in {seconds:6.2f} s = {done / seconds:8.1f} req/s; "
        f"latency ms p50 {statistics.median(ms):.1f} p95 {ms[int(len(ms) * 0.95) - 1]:.1f} "
        f"p99 {ms[int(len(ms) * 0.99) - 1]:.1f}; errors {len(errors)}"
        + (f" ({', '.join(sorted(set(errors))[:3])})" if errors else "")
    )
    cores = os.cpu_count() or 1
    report.line(
        f"{'':<28} CPU per request: gunicorn {app:.2f} ms, PostgreSQL {database:.2f} ms, "
        f"load loop {loop:.2f} ms → an idle {cores}-core machine serves about "
        f"{cores * 1000 / max(app + database, 0.001):,.0f} req/s "
        f"({cores * 1000 / max(app + database + loop, 0.001):,.0f} with this load loop on it)"
    )
