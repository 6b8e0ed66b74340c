"""Demo orders: a week of history in the Sync Logs, then a live stream of buyers.

Call `demo_orders_start(emulator, channel)` from the process that runs the Shopee emulator
(the emulator lives in memory there), after the channel has been connected to it:

- `backfill_days` of past orders are created in the emulator, moved through their statuses
  on the day they happened, and downloaded as they went, with the log rows dated that day, so
  the 7-day report and its chart have something to show at once;
- the emulator's order stream starts (`rate_per_minute` buyer events);
- with `download_every` seconds, a background thread downloads the channel's orders on that
  beat (what the 5-minute schedule does, sooner, so the demo moves while one watches).

`DemoOrders.stop()` stops the thread and the stream; stopping the emulator stops the stream too.
"""

import logging
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import close_old_connections, connection

from channels.models import Channel
from channels.services import adapter_for
from synclogs.models import SyncLog
from synclogs.pipeline import orders_process
from synclogs.services import orders_download

logger = logging.getLogger(__name__)

# Status paths a past order takes, with their weights: most complete, some are cancelled,
# a few are returned, some are still under way today.
PATHS: list[tuple[tuple[str, ...], int]] = [
    (("unpaid", "paid", "shipped", "delivered"), 60),
    (("unpaid", "cancelled"), 10),
    (("unpaid", "paid", "cancelled"), 5),
    (("unpaid", "paid", "shipped", "delivered", "returned"), 5),
    (("unpaid", "paid", "shipped"), 10),
    (("paid",), 10),
]


@dataclass
class DemoOrders:
    """A running demo: the order stream and, optionally, the download loop."""

    emulator: Any
    channel_id: int
    stop_event: threading.Event
    thread: threading.Thread | None
    backfilled: int

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.emulator.stop_order_stream()


def demo_orders_start(
    emulator: Any,
    channel: Channel,
    *,
    rate_per_minute: float = 20.0,
    seed: int = 1,
    download_every: float | None = 30.0,
    backfill_days: int = 7,
    backfill_per_day: int = 12,
) -> DemoOrders:
    """Backfill, start the stream and (optionally) the download loop; see the module doc.

    `emulator` is a running Shopee emulator (or any emulator with the same order helpers and
    `start_order_stream`); `channel` points at it. Costs a few HTTP calls per past order.
    """
    backfilled = demo_orders_backfill(
        emulator, channel, days=backfill_days, per_day=backfill_per_day, seed=seed
    )
    emulator.start_order_stream(rate_per_minute=rate_per_minute, seed=seed)
    stop = threading.Event()
    thread = None
    if download_every:
        thread = threading.Thread(
            target=_download_loop,
            args=(channel.pk, download_every, stop),
            name=f"demo-order-download-{channel.pk}",
            daemon=True,
        )
        thread.start()
    return DemoOrders(emulator, channel.pk, stop, thread, backfilled)


def demo_orders_backfill(
    emulator: Any, channel: Channel, *, days: int = 7, per_day: int = 12, seed: int = 1
) -> int:
    """Past orders, moved and downloaded day by day with their log rows dated then; how many.

    Only items whose listings are live take part. Returns 0 when the shop has none.
    """
    rng = random.Random(f"demo-orders-{seed}")
    listings = list(emulator.listing_quantities())
    if not listings or days < 1:
        return 0
    adapter = adapter_for(channel)
    now = datetime.now(UTC)
    created = 0
    for back in range(days - 1, -1, -1):
        day_start = (now - timedelta(days=back)).replace(hour=8, minute=0, second=0, microsecond=0)
        for _ in range(per_day):
            at = min(day_start + timedelta(minutes=rng.randint(0, 600)), now - timedelta(hours=1))
            _past_order(emulator, adapter, channel, rng, listings, at)
            created += 1
    return created


def _past_order(emulator, adapter, channel, rng, listings, at: datetime) -> None:
    picked = rng.sample(listings, k=min(len(listings), rng.randint(1, 3)))
    lines = [(item_id, variant_id, rng.randint(1, 2)) for item_id, variant_id in picked]
    path = rng.choices([p for p, _ in PATHS], weights=[w for _, w in PATHS])[0]
    number = emulator.create_order(lines, state=path[0], at=at.timestamp())
    _download(adapter, channel, number, at)
    for state in path[1:]:
        at = at + timedelta(minutes=rng.randint(20, 300))
        emulator.move_order(number, state, at=at.timestamp())
        _download(adapter, channel, number, at)


def _download(adapter, channel: Channel, number: str, at: datetime) -> None:
    orders = adapter.get_orders([number])
    orders_process(
        channel=channel,
        orders=orders,
        origin=SyncLog.Origin.SCHEDULE,
        actor="schedule",
        logged_at=min(at, datetime.now(UTC)),
    )


def _download_loop(channel_id: int, every: float, stop: threading.Event) -> None:
    try:
        while not stop.wait(every):
            close_old_connections()
            channel = Channel.objects.filter(pk=channel_id, is_active=True).first()
            if channel is None:
                continue
            result = orders_download(channel=channel)
            if result.error:
                logger.warning("demo order download: %s", result.error)
    finally:
        connection.close()
