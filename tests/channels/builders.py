"""Hand-made items for the emulated shops, the same for every marketplace's emulator.

`shop_item` builds any item a test puts into an emulator (`emulator.put_item(...)`);
`grid_item` is the one with many variants, a colour and size grid. Generated shops come from
`channels.emulators.shop.generate_shop` instead.
"""

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from channels.emulators.shop import ShopItem, ShopVariant

# Older than any scan watermark a test takes, so what a test changes is always newer.
LONG_AGO = int(time.time()) - 30 * 86400


def shop_item(
    name: str,
    *skus: str,
    options: Sequence[Mapping[str, str]] | None = None,
    price: str | Decimal = "150000",
    quantity: int = 4,
    **fields: Any,
) -> ShopItem:
    """A live item listing `skus`, last changed long ago.

    One SKU is an item without variants; several are one variant each, told apart by a Size
    option (S0, S1, ...) unless `options` gives each variant its own (which also makes a single
    SKU a variant). Every variant has `price` and `quantity`; `fields` sets any other ShopItem
    field (brand, category, status, updated_at, ...).
    """
    if options is None and len(skus) > 1:
        options = [{"Size": f"S{n}"} for n in range(len(skus))]
    chosen = list(options or [{} for _ in skus])
    values: dict[str, Any] = {
        "department": "Clothing",
        "category": "T-Shirts",
        "brand": "Lumo",
        "description": f"{name}, a sturdy everyday piece.",
        "weight_kg": Decimal("0.3"),
        "status": "live",
        "created_at": LONG_AGO,
        "updated_at": LONG_AGO,
        "option_names": tuple(chosen[0]) if chosen and chosen[0] else (),
        **fields,
    }
    variants = [
        ShopVariant(sku=sku, price=Decimal(price), quantity=quantity, options=dict(option))
        for sku, option in zip(skus, chosen, strict=True)
    ]
    return ShopItem(name=name, variants=variants, **values)


def grid_item(
    name: str,
    colors: int,
    sizes: int,
    *,
    sku: str = "GRID",
    price: str | Decimal = "19.90",
    quantity: int = 1,
) -> ShopItem:
    """An item with `colors` x `sizes` variants (options Color and Size), SKUs
    `<sku>-C00-S00`, `<sku>-C00-S01`, ..."""
    grid = [(c, s) for c in range(colors) for s in range(sizes)]
    return shop_item(
        name,
        *(f"{sku}-C{c:02d}-S{s:02d}" for c, s in grid),
        options=[{"Color": f"Color {c}", "Size": f"Size {s}"} for c, s in grid],
        price=price,
        quantity=quantity,
    )
