"""Fixtures for the order pipeline: a POS catalog, a Shopee shop selling the same SKUs, and
the channel that connects them."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Outlet, Stock, Variant
from catalog.services import StockChange, stock_apply
from channels.emulators.shopee import ShopeeEmulator
from channels.models import Channel
from synclogs.models import SyncLog
from synclogs.services import orders_download
from tests.channels.builders import shop_item
from tests.factories import OutletFactory, VariantFactory

SKUS = ("TEE-BLK-M", "TEE-BLK-L", "MUG-RED")


@dataclass
class Shop:
    """The POS side and the Shopee side of one channel, and the ids to order with."""

    emulator: ShopeeEmulator
    channel: Channel
    outlet: Outlet
    variants: dict[str, Variant]
    refs: dict[str, tuple[str, str]]  # SKU -> (item_id, model_id or "")

    def order(self, *skus_qty: tuple[str, int], state: str = "unpaid") -> str:
        lines = [(*self.refs[sku], qty) for sku, qty in skus_qty]
        return self.emulator.create_order(lines, state=state)

    def stock(self, sku: str) -> tuple[int, int]:
        row = Stock.objects.filter(variant=self.variants[sku], outlet=self.outlet).first()
        return (row.on_hand, row.reserved) if row else (0, 0)

    def download(self) -> list[SyncLog]:
        """A scheduled run; `now` a little ahead, as the emulator may stamp a change made
        twice in one second with the next second."""
        before = SyncLog.objects.count()
        result = orders_download(channel=self.channel, now=timezone.now() + timedelta(seconds=5))
        assert not result.error, result.error
        return list(SyncLog.objects.order_by("pk")[before:])


def make_shop(emulator: ShopeeEmulator, *, name: str = "Shopee SG", outlet=None, **fields) -> Shop:
    outlet = outlet or OutletFactory(code="main")
    variants = {
        sku: Variant.objects.filter(sku=sku).first() or VariantFactory(sku=sku) for sku in SKUS
    }
    tee = emulator.put_item(shop_item("Cotton Tee", *SKUS[:2], price="25.00", quantity=5))
    mug = emulator.put_item(shop_item("Red Mug", SKUS[2], price="25.00", quantity=5))
    models = emulator.item(tee)["models"]["model"]
    refs = {m["model_sku"]: (str(tee), str(m["model_id"])) for m in models}
    refs[SKUS[2]] = (str(mug), "")
    channel = Channel.objects.create(
        kind="shopee",
        name=name,
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=outlet,
        **fields,
    )
    return Shop(emulator, channel, outlet, variants, refs)


def stock_up(shop: Shop, quantity: int = 10) -> None:
    stock_apply(
        changes=[
            StockChange(v.pk, shop.outlet.pk, set_on_hand=quantity) for v in shop.variants.values()
        ],
        trigger="import",
    )


@pytest.fixture
def emulator() -> Iterator[ShopeeEmulator]:
    with ShopeeEmulator(items=0, seed=11) as running:
        yield running


@pytest.fixture
def shop(emulator: ShopeeEmulator) -> Shop:
    created = make_shop(emulator)
    stock_up(created)
    return created


def rows_of(logs, number: str | None = None) -> list[tuple[str, int]]:
    """(action, status) of log rows, optionally of one order only."""
    return [
        (row.action, row.status) for row in logs if number is None or row.order_number == number
    ]
