"""Stock that emulated orders hold, as the marketplaces keep it.

A marketplace takes an order's units off the listing's stock when the order is placed (or, on
WooCommerce, when it reaches a status that reduces stock) and puts them back when the order is
cancelled. `OrderStock` remembers, per order (or per order item), what was actually taken from
which listing, so a cancellation gives back exactly that, once, however often it is repeated.
How a listing's stock moves (where it lives, whether it may go below zero) is the emulator's
business: it passes an `adjust(target, delta) -> applied delta` function.
"""

from collections.abc import Callable, Hashable, Iterable
from typing import Any

Adjust = Callable[[Any, int], int]


class OrderStock:
    """The units each order holds. Guarded by the emulator's lock, like the rest of its state."""

    def __init__(self) -> None:
        self._held: dict[Hashable, list[tuple[Any, int]]] = {}

    def take(self, order: Hashable, lines: Iterable[tuple[Any, int]], adjust: Adjust) -> None:
        """Take `qty` units off each `(target, qty)` for `order`, unless it already holds some.
        What `adjust` really took (less where stock may not go below zero) is remembered."""
        if order in self._held:
            return
        self._held[order] = [(target, -adjust(target, -qty)) for target, qty in lines]

    def give_back(self, order: Hashable, adjust: Adjust) -> None:
        """Put back what `order` took; nothing when it holds nothing (given back already)."""
        for target, units in self._held.pop(order, []):
            if units:
                adjust(target, units)


def floored(current: int, delta: int) -> int:
    """The part of `delta` that keeps `current` at zero or more: stock that cannot go below
    zero gives up only what it has."""
    return max(delta, -max(current, 0))
