"""Shopee orders over real HTTP: windows, cursors, detail batches, statuses, pushes, the stream."""

import hashlib
import hmac
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from channels.adapters.base import OrderState, WebhookRejected
from channels.adapters.shopee.adapter import ShopeeAdapter
from channels.adapters.shopee.orders import STATUS_TABLE
from channels.emulators.shopee import _ORDER_STATUSES, ShopeeEmulator
from tests.channels.builders import shop_item
from tests.channels.conftest import shopee_adapter, signed_call

LIST = "/api/v2/order/get_order_list"
DETAIL = "/api/v2/order/get_order_detail"
DAY = 86400


@pytest.fixture
def shopee():
    with ShopeeEmulator(seed=5) as emulator:
        emulator.put_item(shop_item("Red Mug", "MUG-RED"))
        yield emulator


def mug(emulator: ShopeeEmulator) -> tuple[str, str, int]:
    return (str(emulator.item_ids()[0]), "", 1)


def all_orders(adapter: ShopeeAdapter, days: float):
    now = datetime.now(UTC)
    pages = list(
        adapter.iter_orders(
            updated_from=now - timedelta(days=days), updated_to=now + timedelta(seconds=2)
        )
    )
    return pages, [order for page in pages for order in page]


def test_a_range_longer_than_15_days_is_split_into_windows_shopee_accepts(shopee):
    now = time.time()
    old = shopee.create_order([mug(shopee)], state="paid", at=now - 35 * DAY)
    middle = shopee.create_order([mug(shopee)], state="delivered", at=now - 20 * DAY)
    new = shopee.create_order([mug(shopee)])

    _, orders = all_orders(shopee_adapter(shopee), days=40)

    assert sorted(o.order_number for o in orders) == sorted([old, middle, new])
    assert shopee.log.count(LIST) == 3  # 40 days: 15 + 15 + 10
    assert shopee.log.faults == {}


def test_the_emulator_refuses_a_window_over_15_days():
    with ShopeeEmulator(seed=6) as emulator:
        now = int(time.time())
        reply = signed_call(
            emulator,
            "GET",
            LIST,
            params={
                "time_range_field": "update_time",
                "time_from": now - 16 * DAY,
                "time_to": now,
                "page_size": 10,
            },
        ).json()
    assert reply["error"] == "order.order_list_invalid_time"


def test_pages_follow_the_cursor_and_details_come_50_at_a_time(shopee):
    numbers = {shopee.create_order([mug(shopee)]) for _ in range(130)}

    pages, orders = all_orders(shopee_adapter(shopee), days=1)

    assert [len(page) for page in pages] == [100, 30]
    assert {o.order_number for o in orders} == numbers
    assert shopee.log.count(DETAIL) == 3  # 50 + 50 + 30


def test_an_order_reads_as_omni_needs_it(shopee):
    number = shopee.create_order([mug(shopee), mug(shopee)], state="shipped")

    [order] = shopee_adapter(shopee).get_orders([number, "NOSUCHORDER1"])

    assert (order.status, order.state) == ("SHIPPED", OrderState.SHIPPED)
    assert [line.line_id for line in order.lines] == [
        f"{order.lines[0].item_id}/0",
        f"{order.lines[0].item_id}/0#2",
    ]
    assert order.lines[0].sku == "MUG-RED"
    assert order.total == sum(line.unit_price * line.quantity for line in order.lines)
    assert order.tracking_number
    assert order.courier == "Shopee Express"
    assert order.paid_at is not None


def test_every_shopee_status_has_a_state():
    assert set(STATUS_TABLE) == set(_ORDER_STATUSES)


def test_an_unknown_status_is_taken_as_unpaid_and_flagged(shopee):
    number = shopee.create_order([mug(shopee)])
    shopee.state.orders[number]["order_status"] = "SOMETHING_NEW"

    (order,) = shopee_adapter(shopee).get_orders([number])

    assert (order.status, order.state) == ("SOMETHING_NEW", OrderState.UNPAID)
    assert not order.status_known


def test_a_push_is_verified_exactly_as_shopee_signs_it(shopee):
    url = "https://omni.example.com/hooks/shopee"
    body = json.dumps({"shop_id": 1, "code": 3, "data": {"ordersn": "A1", "status": "SHIPPED"}})
    signature = hmac.new(
        shopee.partner_key.encode(), f"{url}|{body}".encode(), hashlib.sha256
    ).hexdigest()
    adapter = shopee_adapter(shopee)

    event = adapter.verify_webhook(
        url=url, headers={"Authorization": signature}, body=body.encode()
    )

    assert (event.topic, event.order_number) == ("order_status", "A1")
    with pytest.raises(WebhookRejected) as refused:
        adapter.verify_webhook(
            url=url + "?x=1", headers={"Authorization": signature}, body=body.encode()
        )
    assert refused.value.status == 401


def test_the_order_stream_moves_orders_on_and_stops_with_the_emulator():
    emulator = ShopeeEmulator(seed=8)
    emulator.put_item(shop_item("Red Mug", "MUG-RED"))
    rng = random.Random(3)
    for _ in range(300):
        emulator.order_stream_step(rng)
    statuses = {emulator.order_status(n) for n in emulator.order_numbers()}
    assert {"UNPAID", "READY_TO_SHIP", "SHIPPED", "COMPLETED", "CANCELLED"} <= statuses
    before = len(emulator.order_numbers())

    emulator.start()
    emulator.start_order_stream(rate_per_minute=6000, seed=2)
    time.sleep(0.3)
    emulator.stop()
    count = len(emulator.order_numbers())
    time.sleep(0.1)
    assert count > before  # the stream ran
    assert len(emulator.order_numbers()) == count  # and stopped with the emulator
