"""Writes to the catalog. Every stock change in omni goes through `stock_apply`."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.exceptions import StockError
from catalog.lock_objects import stocks_locked
from catalog.models import Product, Stock, StockMovement, Variant, sku_key
from catalog.signals import product_changed, product_deleted, stock_changed

Trigger = StockMovement.Trigger

# Rows locked and written per round trip; bounded so PostgreSQL's 65,535-parameter limit and
# SQLite's variable limit are never reached.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class StockChange:
    """One change of one stock row: either deltas, or an absolute on-hand count."""

    variant_id: int
    outlet_id: int
    on_hand_delta: int = 0
    reserved_delta: int = 0
    set_on_hand: int | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who or what caused a change, as the ledger records it."""

    label: str = ""
    user_id: int | None = None

    @classmethod
    def of_user(cls, user) -> "Actor":
        if user is None or not getattr(user, "is_authenticated", False):
            return cls(label="anonymous")
        return cls(label=f"user:{user.get_username()}", user_id=user.pk)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@transaction.atomic
def stock_apply(
    *,
    changes: Sequence[StockChange],
    trigger: str,
    reference: str = "",
    actor: Actor = Actor(),
    source_channel_id: int | None = None,
) -> list[StockMovement]:
    """Apply stock changes atomically, one ledger row per changed stock row.

    Rows are locked in (variant, outlet) order, so concurrent callers never deadlock and never
    lose an update. Missing stock rows are created. Changes that leave a row unchanged write no
    ledger row. If any change would make on hand or reserved negative, StockError lists every
    such row and nothing is written.

    Sends `stock_changed` inside the transaction (see catalog.signals).
    Cost: two to three queries per CHUNK rows, whatever the number of rows.
    """
    ordered = sorted(changes, key=lambda c: (c.variant_id, c.outlet_id))
    _refuse_duplicates(ordered)
    now = timezone.now()
    problems: list[str] = []
    to_create: list[Stock] = []
    to_update: list[Stock] = []
    movements: list[StockMovement] = []
    for batch in _chunks(ordered, CHUNK):
        rows = _lock_or_create(batch)
        for change in batch:
            stock = rows[(change.variant_id, change.outlet_id)]
            movement = _movement_for(stock, change, problems)
            if movement is None:
                continue
            stock.updated_at = now
            (to_create if stock.pk is None else to_update).append(stock)
            movements.append(movement)
    if problems:
        raise StockError(problems)
    Stock.objects.bulk_create(to_create, batch_size=CHUNK)
    Stock.objects.bulk_update(to_update, ["on_hand", "reserved", "updated_at"], batch_size=CHUNK)
    for movement in movements:
        movement.stock_id = movement.stock.pk
        movement.trigger = trigger
        movement.reference = reference[:120]
        movement.actor = actor.label[:120]
        movement.user_id = actor.user_id
        movement.source_channel_id = source_channel_id
        movement.created_at = now
    StockMovement.objects.bulk_create(movements, batch_size=CHUNK)
    if movements:
        stock_changed.send(sender=StockMovement, movements=movements, trigger=trigger)
    return movements


def _refuse_duplicates(ordered: Sequence[StockChange]) -> None:
    for previous, current in zip(ordered, ordered[1:], strict=False):
        if (previous.variant_id, previous.outlet_id) == (current.variant_id, current.outlet_id):
            raise StockError(
                [f"variant {current.variant_id} at outlet {current.outlet_id} appears twice"]
            )


def _lock_or_create(batch: Sequence[StockChange]) -> dict[tuple[int, int], Stock]:
    """The stock rows of `batch`, locked; rows that do not exist yet come back unsaved.

    A row created concurrently by another transaction surfaces as an IntegrityError on insert,
    which aborts this transaction cleanly rather than overwriting the other one.
    """
    variant_ids = sorted({c.variant_id for c in batch})
    outlet_ids = sorted({c.outlet_id for c in batch})
    rows = {(s.variant_id, s.outlet_id): s for s in stocks_locked(variant_ids, outlet_ids)}
    for change in batch:
        key = (change.variant_id, change.outlet_id)
        if key not in rows:
            rows[key] = Stock(variant_id=change.variant_id, outlet_id=change.outlet_id)
    return rows


def _movement_for(stock: Stock, change: StockChange, problems: list[str]) -> StockMovement | None:
    """Apply `change` to `stock` in memory; the ledger row for it, or None if nothing changes."""
    if change.set_on_hand is not None:
        on_hand_delta = change.set_on_hand - stock.on_hand
    else:
        on_hand_delta = change.on_hand_delta
    new_on_hand = stock.on_hand + on_hand_delta
    new_reserved = stock.reserved + change.reserved_delta
    if new_on_hand < 0 or new_reserved < 0:
        problems.append(
            f"variant {stock.variant_id} at outlet {stock.outlet_id}: on hand {stock.on_hand}, "
            f"reserved {stock.reserved}; the change would leave on hand {new_on_hand}, "
            f"reserved {new_reserved}"
        )
        return None
    if on_hand_delta == 0 and change.reserved_delta == 0:
        return None
    stock.on_hand, stock.reserved = new_on_hand, new_reserved
    return StockMovement(
        stock=stock,
        variant_id=stock.variant_id,
        outlet_id=stock.outlet_id,
        on_hand_delta=on_hand_delta,
        reserved_delta=change.reserved_delta,
        on_hand_after=new_on_hand,
        reserved_after=new_reserved,
    )


def stock_adjust(
    *,
    variant_id: int,
    outlet_id: int,
    delta: int,
    trigger: str = Trigger.MANUAL,
    reference: str = "",
    actor: Actor = Actor(),
) -> Stock:
    """Change one row's on hand by `delta` (a manual adjustment, a receipt, an API call)."""
    movements = stock_apply(
        changes=[StockChange(variant_id, outlet_id, on_hand_delta=delta)],
        trigger=trigger,
        reference=reference,
        actor=actor,
    )
    return _stock_after(variant_id, outlet_id, movements)


def stock_set(
    *,
    variant_id: int,
    outlet_id: int,
    quantity: int,
    trigger: str = Trigger.MANUAL,
    reference: str = "",
    actor: Actor = Actor(),
) -> Stock:
    """Set one row's on hand to a counted `quantity`."""
    movements = stock_apply(
        changes=[StockChange(variant_id, outlet_id, set_on_hand=quantity)],
        trigger=trigger,
        reference=reference,
        actor=actor,
    )
    return _stock_after(variant_id, outlet_id, movements)


def _stock_after(variant_id: int, outlet_id: int, movements: list[StockMovement]) -> Stock:
    if movements:
        return movements[0].stock
    return Stock.objects.get_or_create(variant_id=variant_id, outlet_id=outlet_id)[0]


def stock_import_levels(
    *,
    levels: Sequence[tuple[int, int, int]],
    trigger: str = Trigger.IMPORT,
    reference: str = "",
    actor: Actor = Actor(),
) -> list[StockMovement]:
    """Set on-hand counts in bulk from (variant_id, outlet_id, quantity) rows."""
    changes = [StockChange(v, o, set_on_hand=q) for v, o, q in levels]
    return stock_apply(changes=changes, trigger=trigger, reference=reference, actor=actor)


# --- products and variants -------------------------------------------------------------------


def variant_sku_check(*, sku: str, exclude_pk: int | None = None) -> None:
    """Refuse a blank SKU or one already used once normalised, saying which variant has it."""
    if not sku_key(sku):
        raise ValidationError({"sku": "A SKU is required: it is the join key with every channel."})
    clash = Variant.objects.by_sku(sku).exclude(pk=exclude_pk).select_related("product").first()
    if clash is not None:
        raise ValidationError(
            {
                "sku": (
                    f"SKU {sku!r} clashes with {clash.sku!r} of “{clash.product.name}”: "
                    "SKUs are compared trimmed and ignoring letter case, so they would be the same."
                )
            }
        )


def product_saved(*, product: Product, changed: Iterable[str], created_variant_ids=()) -> None:
    """Announce that a product's synced data changed (called after the write, by every door)."""
    synced = [f for f in changed if f in Product.SYNCED_FIELDS or f in ("variants", "images")]
    if synced or created_variant_ids:
        product_changed.send(
            sender=Product,
            product_id=product.pk,
            changed=synced,
            created_variant_ids=list(created_variant_ids),
        )


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product from the POS; its listings are deleted on the channels (BRIEF §3)."""
    variant_ids = list(product.variants.values_list("pk", flat=True))
    product_deleted.send(sender=Product, product_id=product.pk, variant_ids=variant_ids)
    product.delete()
