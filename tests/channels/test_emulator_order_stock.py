"""Orders move the emulated seller stock as the marketplaces move theirs.

Placing an order takes its units off the listing's stock at once (WooCommerce: when it reaches
a status that reduces stock), cancelling puts them back exactly once, and a scan over HTTP reads
the new quantity. Marketplaces that never show stock below zero give up only what they have;
those whose registry row says `stock_below_zero` (Shopify, WooCommerce) record an oversold
listing below zero. How WooCommerce moves stock with each order status is in
test_woocommerce_emulator.py.
"""

import pytest

from channels.adapters import adapter_class
from channels.adapters.base import OrderState
from channels.emulators import emulator_class
from channels.emulators.shop import ShopItem
from channels.marketplaces import BY_KIND, KINDS
from tests.channels.builders import shop_item
from tests.channels.conftest import FAST_RETRY


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def emulator(kind):
    with emulator_class(kind)(items=0, seed=31) as server:
        yield server


def tee(stock: int, sizes: tuple[str, ...] = ()) -> ShopItem:
    """A live tee with `stock` units of each size (one listing without sizes)."""
    if not sizes:
        return shop_item("Tee", "TEE", quantity=stock)
    return shop_item(
        "Tee",
        *(f"TEE-{size}" for size in sizes),
        options=[{"Size": size} for size in sizes],
        quantity=stock,
    )


def listing_of(emulator, item_id: str) -> tuple[str, str]:
    return next(key for key in emulator.listing_quantities() if key[0] == str(item_id))


def scanned_quantities(kind: str, emulator) -> dict[tuple[str, str], int]:
    """What omni's adapter reads over HTTP, per (item id, variant id)."""
    client = adapter_class(kind)(
        base_url=emulator.base_url, credentials=emulator.credentials, retry=FAST_RETRY
    )
    return {
        (listing.item_id, listing.variant_id): listing.quantity
        for page in client.iter_listing_pages()
        for listing in page
    }


def test_placing_takes_the_units_and_the_scan_reads_them(kind, emulator):
    key = listing_of(emulator, emulator.put_item(tee(10)))
    # when
    emulator.create_order([(*key, 3)], state=OrderState.PAID)
    # then
    assert emulator.listing_quantities()[key] == 7
    assert scanned_quantities(kind, emulator)[key] == 7


def test_cancelling_puts_the_units_back_once(kind, emulator):
    key = listing_of(emulator, emulator.put_item(tee(10)))
    number = emulator.create_order([(*key, 4)], state=OrderState.PAID)
    other = emulator.create_order([(*key, 1)], state=OrderState.PAID)
    assert emulator.listing_quantities()[key] == 5
    # when
    emulator.move_order(number, OrderState.CANCELLED)
    emulator.move_order(number, OrderState.CANCELLED)
    # then: the cancelled order's units are back, once; the other order still holds its unit
    assert emulator.listing_quantities()[key] == 9
    assert scanned_quantities(kind, emulator)[key] == 9
    emulator.move_order(other, OrderState.CANCELLED)
    assert emulator.listing_quantities()[key] == 10


def test_an_order_created_cancelled_leaves_stock_as_it_was(kind, emulator):
    key = listing_of(emulator, emulator.put_item(tee(6)))
    number = emulator.create_order([(*key, 2)], state=OrderState.CANCELLED)
    emulator.move_order(number, OrderState.CANCELLED)
    assert emulator.listing_quantities()[key] == 6


def test_each_variant_gives_up_its_own_units(kind, emulator):
    item_id = emulator.put_item(tee(5, sizes=("S", "M")))
    small, medium = sorted(key for key in emulator.listing_quantities() if key[0] == str(item_id))
    number = emulator.create_order([(*small, 2), (*medium, 1)], state=OrderState.PAID)
    assert (emulator.listing_quantities()[small], emulator.listing_quantities()[medium]) == (3, 4)
    emulator.move_order(number, OrderState.CANCELLED)
    assert (emulator.listing_quantities()[small], emulator.listing_quantities()[medium]) == (5, 5)


def test_a_return_restocks_nothing(kind, emulator):
    key = listing_of(emulator, emulator.put_item(tee(8)))
    number = emulator.create_order([(*key, 2)], state=OrderState.PAID)
    for state in (OrderState.SHIPPED, OrderState.DELIVERED, OrderState.RETURNED):
        emulator.move_order(number, state)
    assert emulator.listing_quantities()[key] == 6


def test_an_order_beyond_stock(kind, emulator):
    key = listing_of(emulator, emulator.put_item(tee(2)))
    # when: the order asks for more than there is
    number = emulator.create_order([(*key, 5)], state=OrderState.PAID)
    # then: at zero where the marketplace never shows less, below it where it records backorders
    oversold = emulator.listing_quantities()[key]
    assert oversold == (-3 if BY_KIND[kind].stock_below_zero else 0)
    assert scanned_quantities(kind, emulator)[key] == oversold
    # and cancelling gives back exactly what was taken
    emulator.move_order(number, OrderState.CANCELLED)
    assert emulator.listing_quantities()[key] == 2
