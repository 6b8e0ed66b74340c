"""Demo channels: one emulated shop per marketplace, overlapping the demo catalog.

Each shop lists the POS products the way a real Indonesian seller does (see
`channels.emulators.shop`): one item per product, under the product's name, with its option
values and its price in rupiah, a little above the POS price at most; then the shop's own
products the POS does not know, a few blank SKUs, SKUs typed in another case and items listed
twice. It is served on its demo port by an emulator in this process, registered as a channel
and scanned, so every tab has rows.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from catalog.models import Outlet, Variant
from channels.emulators import emulator_class
from channels.emulators.base import Emulator
from channels.emulators.shop import PosVariant, generate_shop
from channels.inventory import inventory_sync_run
from channels.marketplaces import MARKETPLACES
from channels.models import Channel, Scan, SyncTrigger
from channels.scans import scan_request, scan_run

logger = logging.getLogger(__name__)

# The demo shops sell in Indonesia: prices in rupiah, shops registered in region ID. Tokopedia's
# emulator is Indonesian already; Lazada's prices carry no currency.
SHOP_OPTIONS: dict[str, dict[str, Any]] = {
    "shopee": {"region": "ID"},
    "tiktok_shop": {"region": "ID", "currency": "IDR"},
    "shopify": {"currency": "IDR"},
    "woocommerce": {"currency": "IDR"},
}


@dataclass
class DemoChannel:
    channel: Channel
    emulator: Emulator
    scan: Scan


def demo_pos_variants() -> list[PosVariant]:
    """The active POS variants as the demo shops list them: SKU, product name, option values,
    retail price, product, category and brand. One query."""
    rows = (
        Variant.objects.active()
        .order_by("product_id", "position", "pk")
        .values_list(
            "sku",
            "product__name",
            "options",
            "retail_price",
            "product_id",
            "product__category__name",
            "product__brand__name",
        )
    )
    return [
        PosVariant(
            sku=sku,
            title=title,
            options={str(name): str(value) for name, value in (options or {}).items()},
            price=price,
            product=str(product_id),
            category=category or "",
            brand=brand or "",
        )
        for sku, title, options, price, product_id, category, brand in rows
    ]


# A few of the rules every shop sets, so the demo shows them at work: Shopee keeps the last
# units of each SKU, Lazada is sent a share and at most 50, TikTok Shop and Tokopedia price
# their own way, and Tokopedia's SKUs may carry its prefix.
DEMO_RULES: dict[str, dict[str, object]] = {
    "shopee": {"is_priority": True, "priority_threshold": 3},
    "lazada": {"stock_share_percent": 80, "stock_maximum": 50, "stock_cutoff": 2},
    "tiktok_shop": {
        "price_markup_percent": Decimal("5"),
        "price_round_step": Decimal("1000"),
        "price_ending": Decimal("900"),
    },
    "tokopedia": {
        "sku_strip_prefixes": "TKP-",
        "price_markup_amount": Decimal("2500"),
        "price_round_step": Decimal("500"),
    },
}


def demo_channels_start(
    *,
    order_outlet: str = "jkt-central",
    seed: int = 11,
    items: int | None = None,
    fixed_ports: bool = True,
) -> list[DemoChannel]:
    """Start every demo shop, (re)register its channel and scan it; the running shops.

    Each shop lists `items` items (default: the marketplace's `demo_items`), on its demo port
    (any free port without `fixed_ports`). Safe to re-run: channels are found by name and
    pointed at the freshly started shop.
    """
    pos_variants = demo_pos_variants()
    outlet = Outlet.objects.get(code=order_outlet)
    outlets = list(Outlet.objects.filter(is_active=True))
    started: list[DemoChannel] = []
    for n, marketplace in enumerate(MARKETPLACES):
        emulator = demo_shop(
            marketplace.kind,
            items=marketplace.demo_items if items is None else items,
            seed=seed + n,
            pos_variants=pos_variants,
            port=marketplace.demo_port if fixed_ports else 0,
        )
        emulator.start()
        channel, _ = Channel.objects.update_or_create(
            name=f"{marketplace.label} Demo",
            defaults={
                "kind": marketplace.kind,
                "api_base_url": emulator.base_url,
                "credentials": emulator.credentials,
                "order_outlet": outlet,
                **DEMO_RULES.get(marketplace.kind, {}),
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


def demo_shop(
    kind: str, *, items: int, seed: int, pos_variants: list[PosVariant], port: int
) -> Emulator:
    """An emulator of `kind` (not started) holding a shop generated from the POS variants,
    put in through `put_item` as the emulator itself puts a generated shop in."""
    emulator = emulator_class(kind)(seed=seed, port=port, **SHOP_OPTIONS.get(kind, {}))
    shop = generate_shop(items, seed, pos_variants=pos_variants, now=emulator.now())
    for shop_item in shop:
        emulator.put_item(shop_item)
    return emulator
