"""The order pipeline end to end: Shopee emulator → adapter over HTTP → POS documents and logs."""

import pytest

from catalog.models import StockMovement
from channels.adapters.base import OrderState
from synclogs.models import Invoice, OutboundLogistic, Payment, SalesOrder, SyncLog
from synclogs.pipeline import order_step
from synclogs.services import order_manual_download
from tests.channels.builders import shop_item
from tests.synclogs.conftest import rows_of

pytestmark = pytest.mark.django_db
A = SyncLog.Action
T = StockMovement.Trigger


def documents() -> tuple[int, int, int, int]:
    return (
        SalesOrder.objects.count(),
        Invoice.objects.count(),
        OutboundLogistic.objects.count(),
        Payment.objects.count(),
    )


def triggers(number: str) -> list[tuple[str, int, int]]:
    return list(
        StockMovement.objects.filter(reference__endswith=number)
        .order_by("pk")
        .values_list("trigger", "on_hand_delta", "reserved_delta")
    )


def test_an_order_through_every_status_logs_each_step_once(shop):
    # given: a buyer orders 2 black M tees and a mug, not paid yet
    number = shop.order(("TEE-BLK-M", 2), ("MUG-RED", 1))

    # when / then: each status change, downloaded on schedule, does exactly its steps
    assert rows_of(shop.download()) == [(A.CREATE_ORDER, 200)]
    assert shop.stock("TEE-BLK-M") == (10, 2)  # reserved, not yet deducted

    shop.emulator.move_order(number, "paid")
    assert rows_of(shop.download()) == [(A.CONVERT_ORDER_TO_INVOICE, 200), (A.ADD_PAYMENT, 200)]
    assert shop.stock("TEE-BLK-M") == (8, 0)

    shop.emulator.move_order(number, "shipped")
    assert rows_of(shop.download()) == [
        (A.CONVERT_ORDER_TO_INVOICE, 409),
        (A.CREATE_OUTBOUND_LOGISTIC, 200),
        (A.ADD_PAYMENT, 409),
    ]

    shop.emulator.move_order(number, "delivered")
    assert rows_of(shop.download()) == [
        (A.CONVERT_ORDER_TO_INVOICE, 409),
        (A.CREATE_OUTBOUND_LOGISTIC, 409),
        (A.ADD_PAYMENT, 409),
    ]

    shop.emulator.move_order(number, "returned")
    assert rows_of(shop.download()) == [(A.VOID_INVOICE, 200)]

    # then: one of each document, the invoice voided, and the stock back where it was
    assert documents() == (1, 1, 1, 1)
    order = SalesOrder.objects.get()
    assert order.status == SalesOrder.Status.VOIDED
    assert order.invoice.voided_at is not None
    assert order.outbound_logistic.tracking_number.startswith("SPX")
    assert order.payment.amount == order.total == 75
    assert shop.stock("TEE-BLK-M") == (10, 0)
    assert shop.stock("MUG-RED") == (10, 0)
    # (movements of one change come in variant order; the tee's variant was created first)
    assert triggers(number) == [
        (T.ORDER_ALLOCATION, 0, 2),
        (T.ORDER_ALLOCATION, 0, 1),
        (T.ORDER_FULFILMENT, -2, -2),
        (T.ORDER_FULFILMENT, -1, -1),
        (T.SHIPMENT_CANCELLATION, 2, 0),
        (T.SHIPMENT_CANCELLATION, 1, 0),
    ]
    # every movement names the order's channel, so inventory sync never echoes it back
    assert set(
        StockMovement.objects.filter(reference__endswith=number).values_list(
            "source_channel_id", flat=True
        )
    ) == {shop.channel.pk}


def test_downloading_again_logs_409_and_writes_nothing_twice(shop):
    # given: a paid order already in the POS
    number = shop.order(("TEE-BLK-L", 1), state="paid")
    first = order_manual_download(channel=shop.channel, order_numbers=[number])
    assert rows_of(first) == [(A.CREATE_INVOICE, 200), (A.ADD_PAYMENT, 200)]
    movements = StockMovement.objects.count()

    # when: it is downloaded again, twice
    again = order_manual_download(channel=shop.channel, order_numbers=[number, f" {number} "])

    # then: both steps say "already done", and nothing was written twice
    assert rows_of(again) == [(A.CONVERT_ORDER_TO_INVOICE, 409), (A.ADD_PAYMENT, 409)]
    assert "Already done" in again[0].message
    assert again[0].documents == first[1].documents
    assert documents() == (1, 1, 0, 1)
    assert StockMovement.objects.count() == movements
    assert shop.stock("TEE-BLK-L") == (9, 0)


def test_an_order_arriving_paid_is_created_with_its_invoice(shop):
    number = shop.order(("TEE-BLK-M", 3), state="shipped")

    logs = shop.download()

    assert rows_of(logs) == [
        (A.CREATE_INVOICE, 200),
        (A.CREATE_OUTBOUND_LOGISTIC, 200),
        (A.ADD_PAYMENT, 200),
    ]
    # allocated and deducted at once, so the other channels hear of the allocation
    assert triggers(number) == [(T.ORDER_ALLOCATION, -3, 0)]
    assert shop.stock("TEE-BLK-M") == (7, 0)
    assert logs[0].request["status"] == "SHIPPED"
    assert logs[0].request["marketplace"]["order_sn"] == number


def test_a_scheduled_run_skips_orders_that_have_not_changed(shop):
    shop.order(("MUG-RED", 1))
    assert len(shop.download()) == 1

    assert shop.download() == []


def test_an_order_cancelled_before_it_reached_the_pos_is_wrong_status_once(shop):
    number = shop.order(("MUG-RED", 1), state="cancelled")

    logs = shop.download()

    assert rows_of(logs) == [(A.CREATE_ORDER, 400)]
    assert "cancelled before it reached the POS" in logs[0].message
    assert SalesOrder.objects.count() == 0
    assert shop.download() == []  # said once is enough
    assert SyncLog.objects.filter(order_number=number).count() == 1


def test_a_step_the_status_does_not_allow_is_400_and_changes_nothing(shop):
    number = shop.order(("MUG-RED", 2))
    shop.download()
    remote = order_remote(shop, number)

    row = order_step(channel=shop.channel, order=remote, action=A.ADD_PAYMENT, origin="manual")

    assert row.status == 400
    assert "not paid" in row.message
    assert Payment.objects.count() == 0
    assert shop.stock("MUG-RED") == (10, 2)


def test_cancelling_an_open_order_releases_its_reservation(shop):
    number = shop.order(("TEE-BLK-M", 4))
    shop.download()
    assert shop.stock("TEE-BLK-M") == (10, 4)

    shop.emulator.move_order(number, "cancelled")
    logs = shop.download()

    assert rows_of(logs) == [(A.VOID_INVOICE, 200)]
    assert "Change of mind" in logs[0].message
    assert shop.stock("TEE-BLK-M") == (10, 0)
    assert triggers(number)[-1] == (T.ORDER_RELEASE, 0, -4)


def test_a_line_with_an_unknown_sku_is_kept_and_flagged(shop):
    # given: the channel sells an item whose SKU the POS does not know
    item = shop.emulator.put_item(shop_item("Mystery Box", "NOT-IN-POS"))
    number = shop.emulator.create_order([(str(item), "", 1), (*shop.refs["MUG-RED"], 1)])

    logs = shop.download()

    assert rows_of(logs) == [(A.CREATE_ORDER, 200)]
    assert "NOT-IN-POS" in logs[0].message
    assert "does not know" in logs[0].message
    order = SalesOrder.objects.get(order_number=number)
    assert order.unmapped_lines == 1
    assert [line.is_unmapped for line in order.lines.order_by("pk")] == [True, False]
    assert shop.stock("MUG-RED") == (10, 1)


def test_a_sale_beyond_the_shelf_stops_on_hand_at_zero_and_says_so(shop):
    number = shop.order(("MUG-RED", 12), state="paid")

    logs = shop.download()

    assert logs[0].status == 200
    assert "short" in logs[0].message
    assert "MUG-RED" in logs[0].message
    assert shop.stock("MUG-RED") == (0, 0)
    line = SalesOrder.objects.get(order_number=number).lines.get()
    assert (line.quantity, line.deducted) == (12, 10)


def order_remote(shop, number):
    from channels.services import adapter_for

    [remote] = adapter_for(shop.channel).get_orders([number])
    assert remote.state == OrderState.UNPAID
    return remote


def test_an_order_in_a_status_omni_does_not_know_reserves_and_asks_staff_to_look(shop):
    # given: an order in a status Shopee has added since omni's table was written, and a paid
    # order beside it
    odd = shop.order(("MUG-RED", 1))
    shop.emulator.state.orders[odd]["order_status"] = "AWAITING_SOMETHING_NEW"
    paid = shop.order(("TEE-BLK-M", 2), state="paid")
    # when
    logs = shop.download()
    # then: the odd order reserves its units, as an unpaid one, and its log row says why...
    assert rows_of(logs, odd) == [(A.CREATE_ORDER, 200)]
    (row,) = [log for log in logs if log.order_number == odd]
    assert row.attention.startswith(
        "Status 'AWAITING_SOMETHING_NEW' is unknown to omni: taken as unpaid"
    )
    assert shop.stock("MUG-RED") == (10, 1)
    # ...and the other order goes through as ever
    assert rows_of(logs, paid) == [(A.CREATE_INVOICE, 200), (A.ADD_PAYMENT, 200)]
    assert shop.stock("TEE-BLK-M") == (8, 0)
