"""Two workers processing the same orders at once end with one of each document per order."""

import dataclasses
import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from catalog.models import Stock
from channels.adapters.base import OrderState
from channels.services import adapter_for
from synclogs.models import Invoice, OutboundLogistic, Payment, SalesOrder, SalesOrderLine, SyncLog
from synclogs.pipeline import orders_process

STATES = ("unpaid", "paid", "shipped", "delivered")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_200_orders_write_each_document_once(shop):
    # given: 200 orders in every live state, downloaded once into memory
    numbers = [
        shop.order(("TEE-BLK-M", 1 + i % 2), ("MUG-RED", 1), state=STATES[i % 4])
        for i in range(200)
    ]
    orders = [o for page in _pages(adapter_for(shop.channel), numbers) for o in page]
    assert len(orders) == 200
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            for chunk in range(0, 200, 20):
                orders_process(
                    channel=shop.channel, orders=orders[chunk : chunk + 20], origin="schedule"
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    # when: two workers process all of them at the same time
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then: no error, and exactly one order / invoice / shipment / payment per order
    assert errors == []
    paid = sum(1 for i in range(200) if STATES[i % 4] != "unpaid")
    shipped = sum(1 for i in range(200) if STATES[i % 4] in ("shipped", "delivered"))
    assert SalesOrder.objects.count() == 200
    assert Invoice.objects.count() == Payment.objects.count() == paid
    assert OutboundLogistic.objects.count() == shipped
    # each step was done (200) by exactly one worker; the other logged 409
    done = Counter(SyncLog.objects.filter(status=200).values_list("order_number", "action"))
    assert set(done.values()) == {1}
    assert SyncLog.objects.filter(status=409).count() == SyncLog.objects.filter(status=200).count()
    # and stock agrees with the documents: what the lines hold is what the rows hold
    for variant in shop.variants.values():
        lines = SalesOrderLine.objects.filter(variant=variant).aggregate(
            reserved=Sum("reserved"), deducted=Sum("deducted")
        )
        stock = Stock.objects.get(variant=variant, outlet=shop.outlet)
        assert stock.reserved == (lines["reserved"] or 0)
        assert stock.on_hand == 10 - (lines["deducted"] or 0)
    assert len(numbers) == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_waited_on_another_sees_the_shipment_it_recorded(shop):
    # given: a paid order in the POS, shipped since on the marketplace
    number = shop.order(("MUG-RED", 1), state="shipped")
    shipped = adapter_for(shop.channel).get_orders([number])
    paid = [dataclasses.replace(order, state=OrderState.PAID) for order in shipped]
    orders_process(channel=shop.channel, orders=paid, origin="schedule")
    assert OutboundLogistic.objects.count() == 0
    errors: list[BaseException] = []

    def second_worker() -> None:  # its webhook: a page of one order, with no retry
        try:
            orders_process(channel=shop.channel, orders=shipped, origin="webhook")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    # when: a worker records the shipment, and before it commits another takes the same
    # order and waits on its lock
    with transaction.atomic():
        orders_process(channel=shop.channel, orders=shipped, origin="schedule")
        thread = threading.Thread(target=second_worker)
        thread.start()
        _wait_for_a_lock_wait()
    thread.join(timeout=60)

    # then: the second saw the shipment the first committed, and logged it as done already
    assert errors == []
    assert OutboundLogistic.objects.count() == 1
    logged = SyncLog.objects.filter(action=SyncLog.Action.CREATE_OUTBOUND_LOGISTIC)
    assert sorted(logged.values_list("status", flat=True)) == [200, 409]


def _wait_for_a_lock_wait() -> None:
    """Until another session of this database waits on a lock (10 s at most). Inside a
    transaction PostgreSQL shows the sessions as first read: each look clears that."""
    with connection.cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the second worker never waited on the first's locks")


def _pages(adapter, numbers):
    for start in range(0, len(numbers), 50):
        yield adapter.get_orders(numbers[start : start + 50])
