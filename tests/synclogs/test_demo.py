"""The demo hook fills the Sync Logs with a week of history and starts a live stream."""

import time

import pytest

from synclogs.demo import demo_orders_start
from synclogs.models import SalesOrder, SyncLog
from synclogs.selectors import sync_report

pytestmark = pytest.mark.django_db


def test_demo_orders_backfill_a_week_and_stream(shop):
    demo = demo_orders_start(
        shop.emulator,
        shop.channel,
        rate_per_minute=600,
        download_every=None,
        backfill_days=3,
        backfill_per_day=4,
    )
    try:
        assert demo.backfilled == 12
        days = {row.created_at.date() for row in SyncLog.objects.all()}
        assert len(days) >= 3  # rows dated on the days the orders happened
        assert SalesOrder.objects.count() >= 10
        report = sync_report()
        # each step of each order counted once, however many times it was logged
        steps = set(SyncLog.objects.values_list("channel_id", "action", "order_number"))
        assert sum(r.transactions for r in report) == len(steps)
        time.sleep(0.5)
        assert len(shop.emulator.order_numbers()) > 12  # the stream is creating orders
    finally:
        demo.stop()
