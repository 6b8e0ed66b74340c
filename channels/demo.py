"""Demo channels: one emulated shop per marketplace, overlapping the demo catalog.

Each shop is generated from the POS SKUs the way a real one overlaps its POS (most SKUs known,
some unknown, some blank, some duplicated, some typed in another case), served on its demo port
by an emulator in this process, registered as a channel and scanned, so every tab has rows.
"""

import logging
from dataclasses import dataclass

from catalog.models import Outlet, Variant
from channels.emulators import emulator_class
from channels.emulators.base import Emulator
from channels.inventory import inventory_sync_run
from channels.marketplaces import MARKETPLACES
from channels.models import Channel, Scan, SyncTrigger
from channels.scans import scan_request, scan_run

logger = logging.getLogger(__name__)


@dataclass
class DemoChannel:
    channel: Channel
    emulator: Emulator
    scan: Scan


def demo_channels_start(*, order_outlet: str = "jkt-central", seed: int = 11) -> list[DemoChannel]:
    """Start every demo shop, (re)register its channel and scan it; the running shops.

    Safe to re-run: channels are found by name and pointed at the freshly started shop.
    """
    skus = list(Variant.objects.order_by("pk").values_list("sku", flat=True))
    outlet = Outlet.objects.get(code=order_outlet)
    outlets = list(Outlet.objects.filter(is_active=True))
    started: list[DemoChannel] = []
    for n, marketplace in enumerate(MARKETPLACES):
        # Each shop lists a different slice of the catalog, as real shops differ.
        pos_skus = skus[n * 37 % max(len(skus), 1) :] + skus[: n * 37 % max(len(skus), 1)]
        emulator = emulator_class(marketplace.kind)(
            items=marketplace.demo_items,
            seed=seed + n,
            pos_skus=pos_skus,
            port=marketplace.demo_port,
        )
        emulator.start()
        channel, _ = Channel.objects.update_or_create(
            name=f"{marketplace.label} Demo",
            defaults={
                "kind": marketplace.kind,
                "api_base_url": emulator.base_url,
                "credentials": emulator.credentials,
                "order_outlet": outlet,
            },
        )
        channel.outlets.set(outlets)
        scan = scan_run(
            scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk
        )
        # The shop's own stock numbers are the generator's; bring them in line with the POS.
        inventory_sync_run(
            channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL, requested_by="demo"
        )
        started.append(DemoChannel(channel, emulator, scan))
    return started
