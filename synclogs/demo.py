"""Demo orders: a week of history in the Sync Logs, then a live stream of buyers.

Call `demo_orders_start(emulator, channel)` from the process that runs the Shopee emulator
(the emulator lives in memory there), after the channel has been connected to it:

- `backfill_days` of past orders are created in the emulator, moved through their statuses
  on the day they happened, and downloaded as they went, with the log rows dated that day, so
  the 7-day report and its chart have something to show at once: every status (200 done, 409
  already done, 400 wrong status, 404 missing, with the missing order left to download by
  hand) and orders with a line the POS does not know (see `demo_orders_backfill`);
- the emulator's order stream starts (`rate_per_minute` buyer events);
- with `download_every` seconds, a background thread downloads the channel's orders on that
  beat (what the 5-minute schedule does, sooner, so the demo moves while one watches).

`DemoOrders.stop()` stops the thread and the stream; stopping the emulator stops the stream too.
"""

import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import close_old_connections, connection
from django.db.models import Count

from channels.models import Channel, Listing
from channels.services import adapter_for
from synclogs.models import OrderDownload, SyncLog
from synclogs.pipeline import orders_process
from synclogs.services import orders_download, orders_reconcile

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
    logged: dict[int, int] = field(default_factory=dict)  # the channel's log rows by status

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
    logged = dict(
        SyncLog.objects.filter(channel=channel)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by("status")
    )
    return DemoOrders(emulator, channel.pk, stop, thread, backfilled, logged)


def demo_orders_backfill(
    emulator: Any, channel: Channel, *, days: int = 7, per_day: int = 12, seed: int = 1
) -> int:
    """Past orders, moved and downloaded day by day with their log rows dated then; how many.

    Orders are of live listings (those of the channel's last scan, else all the shop's). Most
    are everyday orders (PATHS); a few, spread over the days, show what needs staff (at least
    one of each once there are `days * per_day` >= 8 orders, more in a bigger backfill):

    - orders with a line the POS does not know (when the scan found such listings): the
      line is kept unmapped, no stock moves for it;
    - an order cancelled before any download saw it: Create Order logs 400;
    - an order the download missed: its status pushes log 404, the missing-order check
      lists it, and it waits for Manual Download Order. So that the schedule does not fetch
      it first, the channel's download watermark is put at now, as if the schedule had been
      running all week.

    Returns 0 when the shop has no listings.
    """
    rng = random.Random(f"demo-orders-{seed}")
    listings, unknown = _order_listings(emulator, channel)
    if not listings or days < 1:
        return 0
    adapter = adapter_for(channel)
    now = datetime.now(UTC)
    total = days * per_day
    kinds = _order_kinds(total, with_unknown=bool(unknown))
    rng.shuffle(kinds)
    shop = _Backfill(emulator, adapter, channel, rng, listings, unknown, now)
    # The newest order is an hour old, and the days are counted back from its day, so each
    # day's orders fall on that day (just after midnight, "today" has no hour-old orders yet).
    latest = now - timedelta(hours=1)
    for slot, kind in enumerate(kinds):
        back = days - 1 - slot // per_day
        day = (latest - timedelta(days=back)).replace(hour=0, minute=0, second=0, microsecond=0)
        at = min(day + timedelta(hours=8, minutes=rng.randint(0, 600)), latest)
        getattr(shop, kind)(at)
    orders_reconcile(channel=channel, now=now)
    OrderDownload.objects.update_or_create(
        channel=channel, defaults={"synced_until": now, "last_run_at": now, "orders_seen": total}
    )
    return total


def _order_kinds(total: int, *, with_unknown: bool) -> list[str]:
    """What each past order is: mostly everyday, with the awkward ones named in
    `demo_orders_backfill`."""
    each = max(1, total // 40) if total >= 8 else 0
    kinds = ["with_unknown_line"] * (2 * each if with_unknown else 0)
    kinds += ["cancelled_before_download"] * each + ["missed_by_download"] * each
    return kinds[:total] + ["everyday"] * max(total - len(kinds), 0)


Line = tuple[str, str]  # (item_id, variant_id), variant "" for an item without variants


def _order_listings(emulator: Any, channel: Channel) -> tuple[list[Line], list[Line]]:
    """The channel's live listings and, of them, those not in the POS (those with a SKU first:
    a SKU the POS does not know, rather than none), from its last scan; every listing of the
    shop, and none known to be missing, when it was never scanned."""
    rows = list(
        Listing.objects.filter(channel=channel, status=Listing.Status.LIVE)
        .order_by("pk")
        .values_list("item_id", "variant_ref", "variant_id", "sku")
    )
    if not rows:
        return list(emulator.listing_quantities()), []
    unknown = sorted(
        ((item, ref) for item, ref, variant, _ in rows if variant is None),
        key=lambda line: not _sku_of(rows, line),
    )
    return [(item, ref) for item, ref, _, _ in rows], unknown


def _sku_of(rows: list[tuple[str, str, int | None, str]], line: Line) -> str:
    return next((sku.strip() for item, ref, _, sku in rows if (item, ref) == line), "")


@dataclass
class _Backfill:
    """Places past orders in the shop and downloads them as the schedule would have."""

    emulator: Any
    adapter: Any
    channel: Channel
    rng: random.Random
    listings: list[Line]
    unknown: list[Line]
    now: datetime

    def everyday(self, at: datetime) -> None:
        path = self.rng.choices([p for p, _ in PATHS], weights=[w for _, w in PATHS])[0]
        self._place(self._lines(), path, at)

    def with_unknown_line(self, at: datetime) -> None:
        lines = self._lines(first=self.rng.choice(self.unknown[:5]))
        self._place(lines, ("unpaid", "paid", "shipped", "delivered"), at)

    def cancelled_before_download(self, at: datetime) -> None:
        number = self.emulator.create_order(self._lines(), state="unpaid", at=at.timestamp())
        at = self._later(at)
        self.emulator.move_order(number, "cancelled", at=at.timestamp())
        self._download(number, at)  # Create Order: 400, nothing to create

    def missed_by_download(self, at: datetime) -> None:
        number = self.emulator.create_order(self._lines(), state="paid", at=at.timestamp())
        self._pushed(number, at)  # Add Payment: 404, the order is not in the POS
        at = self._later(at)
        self.emulator.move_order(number, "shipped", at=at.timestamp())
        self._pushed(number, at)  # Create Outbound Logistic: 404

    def _lines(self, first: Line | None = None) -> list[tuple[str, str, int]]:
        count = self.rng.randint(1, 3)
        picked = self.rng.sample(self.listings, k=min(len(self.listings), count))
        if first is not None:
            picked = [first, *[line for line in picked if line != first][: count - 1]]
        return [(item_id, variant_id, self.rng.randint(1, 2)) for item_id, variant_id in picked]

    def _place(
        self, lines: list[tuple[str, str, int]], path: tuple[str, ...], at: datetime
    ) -> None:
        number = self.emulator.create_order(lines, state=path[0], at=at.timestamp())
        self._download(number, at)
        for state in path[1:]:
            at = self._later(at)
            self.emulator.move_order(number, state, at=at.timestamp())
            self._download(number, at)

    def _later(self, at: datetime) -> datetime:
        # Never in the future, and not in the last minutes either: the live demo's first
        # scheduled download starts a few minutes back and must not find old orders there.
        latest = self.now - timedelta(minutes=20)
        return max(at, min(at + timedelta(minutes=self.rng.randint(20, 300)), latest))

    def _download(self, number: str, at: datetime) -> None:
        orders_process(
            channel=self.channel,
            orders=self.adapter.get_orders([number]),
            origin=SyncLog.Origin.SCHEDULE,
            actor="schedule",
            logged_at=min(at, self.now),
        )

    def _pushed(self, number: str, at: datetime) -> None:
        """The marketplace's status push for the order, handled as a webhook is."""
        orders_process(
            channel=self.channel,
            orders=self.adapter.get_orders([number]),
            origin=SyncLog.Origin.WEBHOOK,
            actor="webhook",
            create_missing=False,
            logged_at=min(at, self.now),
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
