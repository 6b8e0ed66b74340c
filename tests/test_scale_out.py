"""Scaling out: two worker clusters (separate processes) take tasks from one Redis queue and
write to one PostgreSQL database while this process works as the web side does (stock changes,
scan requests, marketplace pushes, scheduled order downloads), against two emulated Shopee
shops. When all is done: no document twice, no listing showing another quantity than the POS,
no task lost."""

import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass

import pytest
import redis
from django.db.models import Sum
from django_q.conf import Conf
from django_q.models import Task
from django_q.signals import pre_enqueue
from django_q.tasks import async_task

from catalog.models import Stock, StockMovement
from catalog.services import StockChange, stock_apply
from channels.emulators.shopee import ShopeeEmulator
from channels.models import Channel, Listing, PendingPush, Scan
from channels.scans import ScanAlreadyRunning, scan_request
from channels.stock import channel_quantities
from omni.workers import WorkerProcess, database_url
from synclogs.models import Invoice, OutboundLogistic, Payment, SalesOrder, SalesOrderLine, SyncLog
from synclogs.webhooks import webhook_receive
from tests.factories import OutletFactory
from tests.synclogs.conftest import SKUS, Shop, make_shop, stock_up

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
STOP_SECONDS = 10.0  # the stop a worker owes SIGTERM
WAIT_SECONDS = 90.0  # anything else: generous, CI shares two cores
ROUNDS = 30


@dataclass
class Queue:
    """This run's queue: its own name, so parallel runs on one Redis never share tasks."""

    url: str
    name: str
    client: redis.Redis

    @property
    def waiting(self) -> int:
        return self.client.llen(f"django_q:{self.name}:q")


@pytest.fixture
def queue(monkeypatch) -> Iterator[Queue]:
    """Redis, and this process queueing on it as a web process with REDIS_URL does (the test
    settings otherwise run tasks inline)."""
    client = redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {REDIS_URL} (set TEST_REDIS_URL to use another)")
    name = f"omni-scale-{uuid.uuid4().hex[:10]}"
    for option, value in {
        "SYNC": False,
        "ORM": None,
        "REDIS": REDIS_URL,
        "PREFIX": name,  # signs the tasks; the workers check with theirs
        "CLUSTER_NAME": name,
    }.items():
        monkeypatch.setattr(Conf, option, value)
    yield Queue(REDIS_URL, name, client)
    for key in client.scan_iter(f"*django_q:{name}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def clusters(queue: Queue, tmp_path) -> Iterator[list[WorkerProcess]]:
    """Two worker clusters of two workers each, on this test database and this run's queue."""
    env = {
        "DATABASE_URL": database_url(),
        "REDIS_URL": queue.url,
        "Q_CLUSTER_NAME": queue.name,
        "Q_WORKERS": "2",
    }
    workers = [WorkerProcess(log=tmp_path / f"cluster-{n}.log", env=env) for n in range(2)]
    try:
        for worker in workers:
            worker.wait_running(timeout=WAIT_SECONDS)
        yield workers
    finally:
        for worker in workers:
            worker.stop(timeout=15)


@pytest.fixture
def shops() -> Iterator[list[Shop]]:
    """Two real-time Shopee channels selling the same three SKUs, 30 of each in stock."""
    outlet = OutletFactory(code="main")
    with ExitStack() as running:
        made = []
        for n in range(2):
            emulator = running.enter_context(ShopeeEmulator(items=0, seed=20 + n))
            made.append(
                make_shop(
                    emulator,
                    name=f"Shopee {n}",
                    outlet=outlet,
                    inventory_sync_mode=Channel.SyncMode.REALTIME,
                )
            )
        stock_up(made[0], quantity=30)
        yield made


def test_two_worker_clusters_on_redis_write_each_document_once_and_leave_no_drift(
    queue, clusters, shops, record_property
):
    rng = random.Random(7)

    def logs() -> str:
        return "\n".join(worker.output()[-2500:] for worker in clusters)

    with queued_tasks() as queued:
        # given: both channels scanned, and their stock queued to be sent, by the clusters
        for shop in shops:
            scan_request(channel=shop.channel, kind=Scan.Kind.FULL)
        wait_for(lambda: not open_scans(), "the first scans", logs)
        for shop in shops:
            async_task("channels.tasks.inventory_sync", shop.channel.pk, "scale-out test")

        # when: stock changes, orders and their pushes, downloads and scans stream in
        orders: dict[tuple[int, str], str] = {}  # (channel id, number) -> state it ends in
        for round_ in range(ROUNDS):
            web_round(round_, rng, shops, orders)
            time.sleep(0.1)

        # ... and the schedule downloads orders until the clusters have nothing left to do
        started = time.monotonic()
        wait_for(
            lambda: settled(queue, shops, orders, queued),
            "the clusters to finish the work",
            lambda: f"{unfinished(queue, shops, orders, queued)}\n{logs()}",
            tick=lambda: missing_orders(orders) and schedule_downloads(shops),
        )
        record_property("settle_seconds", round(time.monotonic() - started, 1))
        record_property("tasks_queued_here", len(queued))
        record_property("orders", len(orders))

    # then: both clusters stop on SIGTERM
    for n, worker in enumerate(clusters):
        took = worker.stop(timeout=STOP_SECONDS)
        record_property(f"cluster_{n}_stop_seconds", took)
        assert took is not None, f"cluster {worker.pid} ignored SIGTERM\n{worker.output()[-3000:]}"

    # and both took tasks from the shared queue
    assert all("processing" in worker.output() for worker in clusters), "a cluster took none"

    # no document twice: one order per order placed, one invoice and payment per paid order,
    # one shipment per shipped order, each step done once (SyncLog 200)
    assert SalesOrder.objects.count() == len(orders)
    assert Invoice.objects.count() == Payment.objects.count() == len(orders)
    assert OutboundLogistic.objects.count() == sum(s == "shipped" for s in orders.values())
    done = Counter(
        SyncLog.objects.filter(status=200).values_list("channel_id", "order_number", "action")
    )
    assert set(done.values()) == {1}, [key for key, n in done.items() if n > 1]
    for variant in shops[0].variants.values():
        reserved = SalesOrderLine.objects.filter(variant=variant).aggregate(n=Sum("reserved"))["n"]
        stock = Stock.objects.get(variant=variant, outlet=shops[0].outlet)
        assert stock.reserved == (reserved or 0), variant.sku

    # no drift: every listing shows the quantity the POS gives its channel
    for shop in shops:
        assert drifted(shop) == [], shop.channel.name

    # no task lost: every task queued here ran and succeeded, and none anywhere failed
    ran = set(Task.objects.filter(id__in=queued, success=True).values_list("id", flat=True))
    assert set(queued) - ran == set(), [
        (queued[i], Task.objects.filter(id=i).values_list("success", "result").first())
        for i in set(queued) - ran
    ]
    assert not Task.objects.filter(success=False).exists(), list(
        Task.objects.filter(success=False).values_list("func", "result")[:3]
    )
    assert Scan.objects.exclude(status=Scan.Status.SUCCEEDED).count() == 0
    assert not PendingPush.objects.exists()


def web_round(round_: int, rng: random.Random, shops: list[Shop], orders: dict) -> None:
    """One round of what web processes and marketplaces do, by turns."""
    shop = shops[round_ % 2]
    variant = rng.choice(list(shop.variants.values()))
    stock_apply(
        changes=[StockChange(variant.pk, shop.outlet.pk, set_on_hand=rng.randint(20, 40))],
        trigger=StockMovement.Trigger.MANUAL,
    )
    if round_ % 3 == 0:  # a buyer pays for an order; the marketplace pushes it
        lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(SKUS, rng.randint(1, 2))]
        number = shop.order(*lines, state="paid")
        orders[(shop.channel.pk, number)] = "paid"
        push(shop, number)
    elif round_ % 3 == 1:  # an order paid earlier ships
        paid = [
            key for key, state in orders.items() if state == "paid" and key[0] == shop.channel.pk
        ]
        if paid:
            number = paid[0][1]
            shop.emulator.move_order(number, "shipped")
            orders[paid[0]] = "shipped"
            push(shop, number)
    if round_ % 5 == 0:
        schedule_downloads(shops)
    if round_ == ROUNDS // 2:
        for each in shops:
            with suppress(ScanAlreadyRunning):
                scan_request(channel=each.channel, kind=Scan.Kind.UPDATED)


def push(shop: Shop, number: str) -> None:
    """The marketplace's order push, received as the webhook endpoint receives it."""
    url = f"http://testserver/api/webhooks/{shop.channel.pk}"
    headers, body = shop.emulator.signed_webhook(number, url)
    receipt = webhook_receive(channel=shop.channel, url=url, headers=headers, body=body)
    assert receipt.status == 200, receipt.body


def schedule_downloads(shops: list[Shop]) -> None:
    for shop in shops:
        async_task("synclogs.tasks.orders_download", shop.channel.pk)


def settled(queue: Queue, shops, orders, queued) -> bool:
    return not unfinished(queue, shops, orders, queued)


def unfinished(queue: Queue, shops, orders, queued) -> str:
    """What is still to be done, or "" once everything is."""
    ran = set(Task.objects.filter(id__in=queued).values_list("id", flat=True))
    waiting = {
        "tasks waiting in Redis": queue.waiting,
        "queued tasks not run": len(set(queued) - ran),
        "open scans": open_scans(),
        "outbox rows": PendingPush.objects.count(),
        "orders not in the POS as they stand": missing_orders(orders),
    }
    return ", ".join(f"{what}: {n}" for what, n in waiting.items() if n)


def missing_orders(orders: dict[tuple[int, str], str]) -> int:
    """How many orders placed are not in the POS, or not in the state they are in now."""
    rows = SalesOrder.objects.values_list("channel_id", "order_number", "state")
    states = {(channel_id, number): state for channel_id, number, state in rows}
    return sum(states.get(key) != state for key, state in orders.items())


def open_scans() -> int:
    return Scan.objects.filter(status__in=[Scan.Status.QUEUED, Scan.Status.RUNNING]).count()


def drifted(shop: Shop) -> list[tuple[str, int, int]]:
    """(SKU, quantity on the marketplace, quantity the POS gives) of listings that disagree."""
    shown = shop.emulator.listing_quantities()
    listings = list(Listing.objects.filter(channel=shop.channel, variant__isnull=False))
    owed = channel_quantities(
        channel=shop.channel, variant_ids={lst.variant_id for lst in listings}
    )
    return [
        (lst.sku, shown[(lst.item_id, lst.variant_ref)], owed[lst.variant_id])
        for lst in listings
        if shown[(lst.item_id, lst.variant_ref)] != owed[lst.variant_id]
    ]


@contextmanager
def queued_tasks() -> Iterator[dict[str, str]]:
    """Every task this process queues meanwhile: id -> function."""
    seen: dict[str, str] = {}

    def note(sender, task, **kwargs) -> None:
        seen[task["id"]] = task["func"]

    pre_enqueue.connect(note, dispatch_uid="scale-out-test")
    try:
        yield seen
    finally:
        pre_enqueue.disconnect(dispatch_uid="scale-out-test")


def wait_for(
    condition: Callable[[], bool],
    what: str,
    log: Callable[[], str],
    *,
    tick: Callable[[], None] | None = None,
) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    last_tick = time.monotonic()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT_SECONDS:g} s for {what}: {log()[-6000:]}")
        if tick is not None and time.monotonic() - last_tick > 2:
            tick()
            last_tick = time.monotonic()
        time.sleep(0.2)
