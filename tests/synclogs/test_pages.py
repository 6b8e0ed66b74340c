"""A page of orders is processed set by set: mixed pages, repeats, a broken order, the cost."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import StockMovement
from channels.adapters.base import OrderState, RemoteOrder, RemoteOrderLine
from channels.services import adapter_for
from synclogs.models import Invoice, OutboundLogistic, Payment, SalesOrder, SyncLog
from synclogs.pipeline import OrdersFailed, orders_process
from synclogs.services import order_manual_download
from tests.synclogs.conftest import SKUS, rows_of

pytestmark = pytest.mark.django_db
A = SyncLog.Action

# What one order's stock change costs: stock_apply's savepoint, lock, update, ledger insert,
# bundle check and release, with one statement to spare.
STOCK_CHANGE_STATEMENTS = 7


def documents() -> tuple[int, int, int, int]:
    return (
        SalesOrder.objects.count(),
        Invoice.objects.count(),
        OutboundLogistic.objects.count(),
        Payment.objects.count(),
    )


def test_a_page_of_new_and_known_orders_gives_each_order_its_own_steps(shop):
    # given: three orders in the POS, then a page where two of them moved on and three are new
    still_open = shop.order(("TEE-BLK-M", 1))
    paid_later = shop.order(("TEE-BLK-L", 1))
    cancelled_later = shop.order(("MUG-RED", 2))
    assert rows_of(shop.download()) == [(A.CREATE_ORDER, 200)] * 3
    shop.emulator.move_order(paid_later, "paid")
    shop.emulator.move_order(cancelled_later, "cancelled")
    new_open = shop.order(("MUG-RED", 1))
    new_shipped = shop.order(("TEE-BLK-M", 2), state="shipped")
    new_cancelled = shop.order(("TEE-BLK-L", 1), state="cancelled")

    # when: the scheduled download takes them as one page
    logs = shop.download()

    # then: every order got exactly its steps, its rows together and in step order
    assert rows_of(logs, still_open) == []  # unchanged: skipped
    assert rows_of(logs, paid_later) == [(A.CONVERT_ORDER_TO_INVOICE, 200), (A.ADD_PAYMENT, 200)]
    assert rows_of(logs, cancelled_later) == [(A.VOID_INVOICE, 200)]
    assert rows_of(logs, new_open) == [(A.CREATE_ORDER, 200)]
    assert rows_of(logs, new_shipped) == [
        (A.CREATE_INVOICE, 200),
        (A.CREATE_OUTBOUND_LOGISTIC, 200),
        (A.ADD_PAYMENT, 200),
    ]
    assert rows_of(logs, new_cancelled) == [(A.CREATE_ORDER, 400)]
    numbers = [row.order_number for row in logs]
    assert [n for i, n in enumerate(numbers) if i == 0 or numbers[i - 1] != n] == list(
        dict.fromkeys(numbers)
    )
    assert all(row.sales_order_id is not None for row in logs if row.status == 200)
    assert documents() == (5, 2, 1, 2)
    assert shop.stock("TEE-BLK-M") == (8, 1)  # 2 shipped, 1 still reserved
    assert shop.stock("TEE-BLK-L") == (9, 0)  # 1 invoiced
    assert shop.stock("MUG-RED") == (10, 1)  # 2 released, 1 reserved

    # and downloading the whole page again writes nothing twice
    movements = StockMovement.objects.count()
    numbers = [still_open, paid_later, cancelled_later, new_open, new_shipped, new_cancelled]
    again = order_manual_download(channel=shop.channel, order_numbers=numbers)
    assert {row.status for row in again if row.order_number != new_cancelled} == {409}
    assert rows_of(again, new_cancelled) == [(A.CREATE_ORDER, 400)]
    assert documents() == (5, 2, 1, 2)
    assert StockMovement.objects.count() == movements


def test_an_order_twice_in_one_page_is_done_once(shop):
    number = shop.order(("MUG-RED", 1), state="paid")
    [remote] = adapter_for(shop.channel).get_orders([number])

    logs = orders_process(channel=shop.channel, orders=[remote, remote], origin="manual")

    assert rows_of(logs) == [
        (A.CREATE_INVOICE, 200),
        (A.ADD_PAYMENT, 200),
        (A.CONVERT_ORDER_TO_INVOICE, 409),
        (A.ADD_PAYMENT, 409),
    ]
    assert documents() == (1, 1, 0, 1)
    assert shop.stock("MUG-RED") == (9, 0)


def test_a_broken_order_does_not_stop_the_rest_of_its_page(shop):
    # given: a page of two good orders around one that cannot be processed
    first, last = shop.order(("MUG-RED", 1)), shop.order(("TEE-BLK-M", 2))
    remote = {o.order_number: o for o in adapter_for(shop.channel).get_orders([first, last])}
    broken = dataclasses.replace(remote[first], order_number="BROKEN-1", currency=None)

    # when
    with pytest.raises(OrdersFailed) as failure:
        orders_process(
            channel=shop.channel, orders=[remote[first], broken, remote[last]], origin="schedule"
        )

    # then: the page was done again order by order; only the broken one is missing
    assert [number for number, _ in failure.value.failed] == ["BROKEN-1"]
    assert rows_of(failure.value.rows) == [(A.CREATE_ORDER, 200)] * 2
    assert set(SalesOrder.objects.values_list("order_number", flat=True)) == {first, last}
    assert shop.stock("MUG-RED") == (10, 1)
    assert shop.stock("TEE-BLK-M") == (10, 2)


def test_a_page_costs_one_stock_change_per_order_and_a_fixed_number_of_statements_besides(shop):
    # given: pages of 4 and of 12 new orders, in the same mix of states
    few, many = _page("FEW", 4), _page("MANY", 12)

    # when / then: the 8 more orders cost only their stock changes
    first = _statements(shop.channel, few), _statements(shop.channel, many)
    assert first[1] - first[0] <= 8 * STOCK_CHANGE_STATEMENTS
    # and downloaded again (every step 409), a page costs the same whatever its size
    again = _statements(shop.channel, few), _statements(shop.channel, many)
    assert again[0] == again[1]
    assert SalesOrder.objects.count() == 16


def _statements(channel, orders: list[RemoteOrder]) -> int:
    with CaptureQueriesContext(connection) as captured:
        orders_process(channel=channel, orders=orders, origin="schedule")
    return len(captured)


def _page(prefix: str, count: int) -> list[RemoteOrder]:
    """`count` orders in turn unpaid, paid and shipped, each with a line of every SKU."""
    now = datetime.now(UTC)
    states = [OrderState.UNPAID, OrderState.PAID, OrderState.SHIPPED]
    lines = tuple(
        RemoteOrderLine(str(n), f"item-{n}", "", sku, sku, 1, Decimal("5.00"))
        for n, sku in enumerate(SKUS)
    )
    return [
        RemoteOrder(
            order_number=f"{prefix}-{i}",
            order_id=f"{prefix}-{i}",
            status=states[i % 3].value.upper(),
            state=states[i % 3],
            created_at=now,
            updated_at=now,
            currency="SGD",
            total=Decimal("15.00"),
            lines=lines,
            paid_at=None if states[i % 3] == OrderState.UNPAID else now,
            courier="SPX" if states[i % 3] == OrderState.SHIPPED else "",
        )
        for i in range(count)
    ]
