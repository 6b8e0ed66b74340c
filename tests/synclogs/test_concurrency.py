"""Two workers processing the same orders at once end with one of each document per order."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum

from catalog.models import Stock
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


def _pages(adapter, numbers):
    for start in range(0, len(numbers), 50):
        yield adapter.get_orders(numbers[start : start + 50])
