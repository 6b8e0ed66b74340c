"""Writes to the catalog. Every stock change in omni goes through `stock_apply`."""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import islice, repeat
from operator import is_, itemgetter
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from catalog.bundles import bundle_ids_among, refuse_component_delete
from catalog.exceptions import StockError, UnknownOutlet, UnknownSku
from catalog.lock_objects import Level, stock_levels_locked
from catalog.models import (
    Brand,
    BundleComponent,
    Category,
    Outlet,
    Product,
    ProductImage,
    Stock,
    StockMovement,
    Variant,
    sku_key,
)
from catalog.selectors import storable, variant_ids_by_sku_key
from catalog.signals import product_changed, product_deleted, stock_changed
from omni.actors import NO_ACTOR, Actor
from omni.bulk import bulk_set, insert_rows, update_rows

Trigger = StockMovement.Trigger

# Rows locked and written per round trip; bounded so PostgreSQL's 65,535-parameter limit and
# SQLite's variable limit are never reached.
CHUNK = 2000
# Rows locked per query on PostgreSQL, where the pairs travel as two array parameters: the
# bound is only there to keep one result set to a few megabytes. A large batch is hashed
# against one read of the stock table (omni.bulk.keyed_lookup), so fewer, larger queries
# cost less.
PG_LOCK_CHUNK = 100_000
# The largest count a stock or ledger column (a 32-bit integer) can hold.
MAX_STORABLE = 2_147_483_647


class StockChange(NamedTuple):
    """One change of one stock row: either deltas, or an absolute on-hand count.

    A named tuple rather than a dataclass: imports build 100,000 at a time.
    """

    variant_id: int
    outlet_id: int
    on_hand_delta: int = 0
    reserved_delta: int = 0
    set_on_hand: int | None = None


class MovementRecord(NamedTuple):
    """One ledger row as `stock_apply` wrote it, with StockMovement's attribute names, and
    whether the same call created the stock row (`stock_created`).

    What `stock_apply` returns and what `stock_changed` carries. Not a model instance: a bulk
    import writes 100,000 of them per file, and building that many StockMovement instances
    costs seconds (a frozen dataclass, about four times what a named tuple does).
    """

    id: int
    stock_id: int
    variant_id: int
    outlet_id: int
    trigger: str
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int
    reference: str
    actor: str
    user_id: int | None
    source_channel_id: int | None
    created_at: datetime
    stock_created: bool

    @property
    def pk(self) -> int:
        return self.id


class _Planned(NamedTuple):
    """A change worked out under the lock: the row (None when it does not exist yet), the
    deltas and the levels it leaves."""

    stock_id: int | None
    variant_id: int
    outlet_id: int
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int


@dataclass(frozen=True, slots=True)
class _Entry:
    """What every ledger row of one stock_apply call shares."""

    trigger: str
    reference: str
    actor: str
    user_id: int | None
    source_channel_id: int | None
    created_at: datetime


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
    actor: Actor = NO_ACTOR,
    source_channel_id: int | None = None,
) -> list[MovementRecord]:
    """Apply stock changes atomically, one ledger row per changed stock row.

    Rows are locked in (variant, outlet) order, so concurrent callers never deadlock and never
    lose an update. Missing stock rows are created. Changes that leave a row unchanged write no
    ledger row. If any change would make on hand or reserved negative (or larger than a count
    can be stored), StockError lists every such row and nothing is written. A (variant, outlet)
    given twice is refused the same way. A stock row created by a concurrent transaction between
    our lock and our insert makes the insert fail with IntegrityError; nothing is written then.

    Sends `stock_changed` inside the transaction (see catalog.signals) with the returned
    records, in (variant, outlet) order.

    A bundle (catalog.bundles) holds no stock of its own: a change to one is refused with
    StockError naming its SKU, and nothing is written. The check comes after the writes, which
    are rolled back then: a variant becoming a bundle meanwhile waits for this write, or this
    write for it, and whichever commits second sees the other (catalog.bundles' docstring).

    Cost on PostgreSQL: one locking read per PG_LOCK_CHUNK rows, then one statement each for
    the new stock rows, the changed ones and the ledger, sent as arrays (catalog.lock_objects,
    omni.bulk); no model instances. Elsewhere: the same plan, written with the ORM in
    statements of CHUNK rows. Then one query for the bundle check.
    """
    ordered = sorted(changes, key=_PAIR)
    _refuse_duplicates(ordered)
    planned: list[_Planned] = []
    problems: list[str] = []
    lock_chunk = PG_LOCK_CHUNK if connection.vendor == "postgresql" else CHUNK
    for batch in _chunks(ordered, lock_chunk):
        levels = stock_levels_locked([(c.variant_id, c.outlet_id) for c in batch])
        _plan(batch, levels, planned, problems)
    if problems:
        _refuse_bundles(ordered)  # a bundle's own levels would say less than what it is
        raise StockError(problems)
    if not planned:
        _refuse_bundles(ordered)
        return []
    entry = _Entry(
        trigger=trigger,
        reference=reference[:120],
        actor=actor.label[:120],
        user_id=actor.user_id,
        source_channel_id=source_channel_id,
        created_at=timezone.now(),
    )
    if connection.vendor == "postgresql":
        records = _write_with_arrays(planned, entry)
    else:
        records = _write_with_orm(planned, entry)
    _refuse_bundles(ordered)  # after writing: see the docstring
    stock_changed.send(sender=StockMovement, movements=records, trigger=trigger)
    return records


_PAIR = itemgetter(0, 1)  # a StockChange's (variant_id, outlet_id)


def _refuse_duplicates(ordered: Sequence[StockChange]) -> None:
    for previous, current in zip(ordered, ordered[1:], strict=False):
        if (previous.variant_id, previous.outlet_id) == (current.variant_id, current.outlet_id):
            raise StockError(
                [f"variant {current.variant_id} at outlet {current.outlet_id} appears twice"]
            )


def _refuse_bundles(ordered: Sequence[StockChange]) -> None:
    """Refuse changes to bundles, whose stock is their components'. One query; one more to
    name them."""
    if not ordered:
        return
    bundles = bundle_ids_among({change.variant_id for change in ordered})
    if bundles:
        skus = Variant.objects.filter(pk__in=bundles).order_by("sku").values_list("sku", flat=True)
        raise StockError([bundle_stock_problem(sku) for sku in skus])


def bundle_stock_problem(sku: str) -> str:
    """Why a bundle's own stock cannot change, in the words every door shows."""
    return f"{sku} is a bundle: its stock is its components'"


def _plan(
    batch: Sequence[StockChange],
    levels: Mapping[tuple[int, int], Level],
    planned: list[_Planned],
    problems: list[str],
) -> None:
    """Work out each change against the locked levels: a row to write, a problem, or nothing
    (a change that leaves the row as it is)."""
    for change in batch:
        stock_id, on_hand, reserved = levels.get((change.variant_id, change.outlet_id), _NO_ROW)
        if change.set_on_hand is not None:
            on_hand_delta = change.set_on_hand - on_hand
        else:
            on_hand_delta = change.on_hand_delta
        on_hand_after = on_hand + on_hand_delta
        reserved_after = reserved + change.reserved_delta
        if not (0 <= on_hand_after <= MAX_STORABLE and 0 <= reserved_after <= MAX_STORABLE):
            problems.append(_problem(change, (on_hand, reserved), (on_hand_after, reserved_after)))
            continue
        if on_hand_delta or change.reserved_delta:
            planned.append(
                _Planned(
                    stock_id,
                    change.variant_id,
                    change.outlet_id,
                    on_hand_delta,
                    change.reserved_delta,
                    on_hand_after,
                    reserved_after,
                )
            )


def _problem(change: StockChange, before: tuple[int, int], after: tuple[int, int]) -> str:
    text = (
        f"variant {change.variant_id} at outlet {change.outlet_id}: on hand {before[0]}, "
        f"reserved {before[1]}; the change would leave on hand {after[0]}, reserved {after[1]}"
    )
    if max(after) > MAX_STORABLE:
        text += f" (a count above {MAX_STORABLE} cannot be stored)"
    return text


# The levels of a stock row that does not exist yet: no id, nothing on hand, nothing reserved.
_NO_ROW: tuple[None, int, int] = (None, 0, 0)


def _write_with_arrays(planned: list[_Planned], entry: _Entry) -> list[MovementRecord]:
    """PostgreSQL: insert the new stock rows, update the others, append the ledger; three
    statements, each column one array parameter (see omni.bulk)."""
    new = [p for p in planned if p.stock_id is None]
    created: dict[tuple[int, int], int] = {}
    if new:
        _s, variants, outlets, _dh, _dr, on_hands, reserveds = zip(*new, strict=True)
        returned = insert_rows(
            Stock,
            {
                "variant_id": variants,
                "outlet_id": outlets,
                "on_hand": on_hands,
                "reserved": reserveds,
            },
            constants={"created_at": entry.created_at, "updated_at": entry.created_at},
            returning=("id", "variant_id", "outlet_id"),
        )
        created = {(variant, outlet): pk for pk, variant, outlet in returned}
    changed = [p for p in planned if p.stock_id is not None]
    if changed:
        stock_ids, _v, _o, _dh, _dr, on_hands, reserveds = zip(*changed, strict=True)
        update_rows(
            Stock,
            stock_ids,
            {"on_hand": on_hands, "reserved": reserveds},
            constants={"updated_at": entry.created_at},
        )
    stock_ids = [
        p.stock_id if p.stock_id is not None else created[(p.variant_id, p.outlet_id)]
        for p in planned
    ]
    _s, variants, outlets, on_hand_deltas, reserved_deltas, on_hands, reserveds = zip(
        *planned, strict=True
    )
    returned = insert_rows(
        StockMovement,
        {
            "stock_id": stock_ids,
            "variant_id": variants,
            "outlet_id": outlets,
            "on_hand_delta": on_hand_deltas,
            "reserved_delta": reserved_deltas,
            "on_hand_after": on_hands,
            "reserved_after": reserveds,
        },
        constants={
            "trigger": entry.trigger,
            "reference": entry.reference,
            "actor": entry.actor,
            "user_id": entry.user_id,
            "source_channel_id": entry.source_channel_id,
            "created_at": entry.created_at,
        },
        returning=("stock_id", "id"),
    )
    # One ledger row per stock row in a call, so the stock id tells the ledger rows apart.
    movement_ids = dict(returned)
    return _records([movement_ids[pk] for pk in stock_ids], stock_ids, planned, entry)


def _write_with_orm(planned: list[_Planned], entry: _Entry) -> list[MovementRecord]:
    """Other databases: the same writes through bulk_create and bulk_set, CHUNK rows each."""
    when = entry.created_at
    new = [
        Stock(
            variant_id=p.variant_id,
            outlet_id=p.outlet_id,
            on_hand=p.on_hand_after,
            reserved=p.reserved_after,
            created_at=when,
            updated_at=when,
        )
        for p in planned
        if p.stock_id is None
    ]
    Stock.objects.bulk_create(new, batch_size=CHUNK)
    created = {(s.variant_id, s.outlet_id): s.pk for s in new}
    changed = [
        Stock(pk=p.stock_id, on_hand=p.on_hand_after, reserved=p.reserved_after, updated_at=when)
        for p in planned
        if p.stock_id is not None
    ]
    bulk_set(Stock, changed, ["on_hand", "reserved", "updated_at"])
    movements = [
        StockMovement(
            stock_id=p.stock_id if p.stock_id is not None else created[(p.variant_id, p.outlet_id)],
            variant_id=p.variant_id,
            outlet_id=p.outlet_id,
            trigger=entry.trigger,
            on_hand_delta=p.on_hand_delta,
            reserved_delta=p.reserved_delta,
            on_hand_after=p.on_hand_after,
            reserved_after=p.reserved_after,
            reference=entry.reference,
            actor=entry.actor,
            user_id=entry.user_id,
            source_channel_id=entry.source_channel_id,
            created_at=when,
        )
        for p in planned
    ]
    StockMovement.objects.bulk_create(movements, batch_size=CHUNK)
    return _records([m.pk for m in movements], [m.stock_id for m in movements], planned, entry)


# MovementRecord._make without its Python frame per row.
_new_record = partial(tuple.__new__, MovementRecord)


def _records(
    movement_ids: Sequence[int], stock_ids: Sequence[int], planned: list[_Planned], entry: _Entry
) -> list[MovementRecord]:
    """The records of the written ledger rows, in `planned` order. Built column by column
    through zip, so no Python function runs per row."""
    known, variants, outlets, on_hand_deltas, reserved_deltas, on_hands, reserveds = zip(
        *planned, strict=True
    )
    columns = zip(
        movement_ids,
        stock_ids,
        variants,
        outlets,
        repeat(entry.trigger),
        on_hand_deltas,
        reserved_deltas,
        on_hands,
        reserveds,
        repeat(entry.reference),
        repeat(entry.actor),
        repeat(entry.user_id),
        repeat(entry.source_channel_id),
        repeat(entry.created_at),
        map(is_, known, repeat(None)),  # no stock row before: this call created it
    )
    return list(map(_new_record, columns))


def stock_adjust(
    *,
    variant_id: int,
    outlet_id: int,
    delta: int,
    trigger: str = Trigger.MANUAL,
    reference: str = "",
    actor: Actor = NO_ACTOR,
) -> Stock:
    """Change one row's on hand by `delta` (a manual adjustment, a receipt, an API call).

    Returns the stock row as this change left it.
    """
    change = StockChange(variant_id, outlet_id, on_hand_delta=delta)
    return _apply_one(change, trigger=trigger, reference=reference, actor=actor)


def stock_set(
    *,
    variant_id: int,
    outlet_id: int,
    quantity: int,
    trigger: str = Trigger.MANUAL,
    reference: str = "",
    actor: Actor = NO_ACTOR,
) -> Stock:
    """Set one row's on hand to a counted `quantity`. Returns the stock row as it left it."""
    change = StockChange(variant_id, outlet_id, set_on_hand=quantity)
    return _apply_one(change, trigger=trigger, reference=reference, actor=actor)


@transaction.atomic
def _apply_one(change: StockChange, *, trigger: str, reference: str, actor: Actor) -> Stock:
    """stock_apply for one row, then the row, read in the same transaction (still locked, so
    as this change left it). An unchanged row that did not exist is created at zero."""
    movements = stock_apply(changes=[change], trigger=trigger, reference=reference, actor=actor)
    if movements:
        return Stock.objects.get(pk=movements[0].stock_id)
    return Stock.objects.get_or_create(variant_id=change.variant_id, outlet_id=change.outlet_id)[0]


def stock_import_levels(
    *,
    levels: Sequence[tuple[int, int, int]],
    trigger: str = Trigger.IMPORT,
    reference: str = "",
    actor: Actor = NO_ACTOR,
) -> list[MovementRecord]:
    """Set on-hand counts in bulk from (variant_id, outlet_id, quantity) rows."""
    variants, outlets, quantities = zip(*levels, strict=True) if levels else ((), (), ())
    changes = list(map(StockChange._make, zip(variants, outlets, repeat(0), repeat(0), quantities)))
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
    """Delete a product from the POS; its listings are deleted on the channels (BRIEF §3).

    Refused with catalog.bundles.ComponentInUse, naming the bundles, when one of its variants
    is a component of a bundle of another product (nothing is deleted)."""
    variant_ids = list(product.variants.values_list("pk", flat=True))
    refuse_component_delete(variant_ids=variant_ids)
    product_deleted.send(sender=Product, product_id=product.pk, variant_ids=variant_ids)
    # Its bundles' own component rows first: the database keeps a component from going while
    # a row names it, even a row that goes with it.
    BundleComponent.objects.filter(bundle_id__in=variant_ids).delete()
    product.delete()


def variant_delete(*, variant: Variant) -> None:
    """Delete one variant: variants_delete."""
    variants_delete(variant_ids=[variant.pk])


@transaction.atomic
def variants_delete(*, variant_ids: Collection[int]) -> None:
    """Delete variants. Refused with catalog.bundles.ComponentInUse, naming the bundles, while
    one is a component of a bundle not deleted with it (nothing is deleted); a bundle's own
    component rows go with it."""
    ids = list(variant_ids)
    refuse_component_delete(variant_ids=ids)
    BundleComponent.objects.filter(bundle_id__in=ids).delete()
    Variant.objects.filter(pk__in=ids).delete()


# --- the API's doors: products from plain values, stock by SKU and outlet code ---------------

# Stock columns are 32-bit integers; a count above this cannot be stored.
MAX_STOCK = 2_000_000_000
VARIANT_FIELDS = ("sku", "upc", "options", "retail_price", "is_active")


def product_create(
    *,
    fields: Mapping[str, Any],
    variants: Sequence[Mapping[str, Any]],
    images: Sequence[str] = (),
) -> Product:
    """Create a product with its variants and images from plain values.

    `fields` holds Product fields (synced and POS-only); `brand` and `category` are names, found
    or created. `variants` holds VARIANT_FIELDS. Every problem is reported at once as a
    ValidationError keyed by path ("name", "variants.1.sku"); nothing is written unless all of
    it is valid. Announces the product through `product_saved`.
    """
    product = Product()
    errors: dict[str, list[str]] = {}
    brand, category = _assign_product(product, fields, errors)
    new = _new_variants(variants, errors, first_position=0)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        product.brand, product.category = _saved_names(brand, category)
        product.save()
        for variant in new:
            variant.product = product
        Variant.objects.bulk_create(new)
        _images_replace(product, images)
        product_saved(product=product, changed=[*fields, "variants", "images"])
    return product


def product_update(
    *,
    product: Product,
    fields: Mapping[str, Any],
    variants: Sequence[Mapping[str, Any]] = (),
    images: Sequence[str] | None = None,
) -> list[str]:
    """Change some of a product's fields, update or add variants, replace its images.

    A variant with an `id` is one of this product's, updated with the fields given; one without
    is added. Variants not mentioned are left alone (deactivate one with `is_active: false`).
    `images`, when given, replaces the list. Validation as in `product_create`; the changed
    fields are announced through `product_saved`, so the channels receive them. Returns the
    names of what changed (empty when nothing did: saving the same values twice is one change).
    """
    errors: dict[str, list[str]] = {}
    before = {name: getattr(product, name) for name in fields if name not in ("brand", "category")}
    old_brand = product.brand.name if product.brand_id else None
    old_category = product.category.name if product.category_id else None
    brand, category = _assign_product(product, fields, errors)
    existing = {v.pk: v for v in product.variants.all()}
    seen: dict[str, str] = {}  # normalised SKU -> where in the payload, across both lists
    touched = _updated_variants(existing, variants, errors, seen)
    position = max((v.position for v in existing.values()), default=-1) + 1
    new = _new_variants(
        [v for v in variants if v.get("id") is None],
        errors,
        first_position=position,
        paths=[f"variants.{i}" for i, v in enumerate(variants) if v.get("id") is None],
        seen=seen,
    )
    if errors:
        raise ValidationError(errors)
    changed = [name for name, old in before.items() if getattr(product, name) != old]
    if "brand" in fields and fields["brand"] != old_brand:
        changed.append("brand")
    if "category" in fields and fields["category"] != old_category:
        changed.append("category")
    old_images = list(product.images.values_list("url", flat=True))
    if images is not None and list(images) != old_images:
        changed.append("images")
    if touched or new:
        changed.append("variants")
    if not changed:
        return []
    with transaction.atomic():
        product.brand, product.category = _saved_names(brand, category)
        product.save()
        Variant.objects.bulk_update(touched, [*VARIANT_FIELDS, "updated_at"])
        for variant in new:
            variant.product = product
        Variant.objects.bulk_create(new)
        if "images" in changed:
            _images_replace(product, images or ())
        product_saved(product=product, changed=changed, created_variant_ids=[v.pk for v in new])
    return changed


def _assign_product(
    product: Product, fields: Mapping[str, Any], errors: dict[str, list[str]]
) -> tuple[Any, Any]:
    """Set `fields` on `product` in memory and validate it; brand and category stay names."""
    names = {"brand": product.brand, "category": product.category}
    for name, value in fields.items():
        if name in names:
            names[name] = value
        elif name in Product.SYNCED_FIELDS or name in Product.POS_ONLY_FIELDS:
            setattr(product, name, value)
        else:
            errors.setdefault(name, []).append("Not a product field.")
    try:
        product.full_clean(exclude=["brand", "category"], validate_constraints=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    return names["brand"], names["category"]


def _saved_names(brand: Any, category: Any) -> tuple[Brand | None, Category | None]:
    """Brand and category rows for the names given (created when new); rows pass through."""
    if isinstance(brand, str):
        brand = Brand.objects.get_or_create(name=brand.strip())[0] if brand.strip() else None
    if isinstance(category, str):
        name = category.strip()
        # A top-level category of that name first; otherwise the first one of that name.
        found = (
            Category.objects.filter(name=name).order_by("parent_id", "pk").first() if name else None
        )
        category = found or (Category.objects.create(name=name) if name else None)
    return brand, category


def _new_variants(
    values: Sequence[Mapping[str, Any]],
    errors: dict[str, list[str]],
    *,
    first_position: int,
    paths: Sequence[str] | None = None,
    seen: dict[str, str] | None = None,
) -> list[Variant]:
    paths = paths or [f"variants.{i}" for i in range(len(values))]
    seen = {} if seen is None else seen
    built = []
    for position, (path, data) in enumerate(zip(paths, values, strict=True), first_position):
        variant = Variant(position=position, **{k: v for k, v in data.items() if k != "id"})
        _check_variant(variant, path, errors, seen)
        built.append(variant)
    return built


def _updated_variants(
    existing: Mapping[int, Variant],
    values: Sequence[Mapping[str, Any]],
    errors: dict[str, list[str]],
    seen: dict[str, str],
) -> list[Variant]:
    touched = []
    for i, data in enumerate(values):
        if data.get("id") is None:
            continue
        path = f"variants.{i}"
        variant = existing.get(data["id"])
        if variant is None:
            errors.setdefault(f"{path}.id", []).append(f"This product has no variant {data['id']}.")
            continue
        changes = {k: v for k, v in data.items() if k != "id" and getattr(variant, k) != v}
        for name, value in changes.items():
            setattr(variant, name, value)
        if changes:
            _check_variant(variant, path, errors, seen)
            variant.updated_at = timezone.now()  # bulk_update does not apply auto_now
            touched.append(variant)
    return touched


def _check_variant(
    variant: Variant, path: str, errors: dict[str, list[str]], seen: dict[str, str]
) -> None:
    try:
        variant.full_clean(exclude=["product", "sku_key"], validate_constraints=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(f"{path}.{name}", []).extend(messages)
    key = sku_key(variant.sku)
    if key in seen:
        errors.setdefault(f"{path}.sku", []).append(
            f"SKU {variant.sku!r} is also given at {seen[key]}: each variant needs its own SKU."
        )
        return
    seen[key] = path
    try:
        variant_sku_check(sku=variant.sku, exclude_pk=variant.pk)
    except ValidationError as exc:
        for messages in exc.message_dict.values():
            errors.setdefault(f"{path}.sku", []).extend(messages)


def _images_replace(product: Product, urls: Iterable[str]) -> None:
    ProductImage.objects.filter(product=product).delete()
    ProductImage.objects.bulk_create(
        ProductImage(product=product, url=url, position=i) for i, url in enumerate(urls)
    )


def stock_change_by_sku(
    *,
    sku: str,
    outlet_code: str,
    delta: int | None = None,
    quantity: int | None = None,
    trigger: str = Trigger.API_SINGLE,
    reference: str = "",
    actor: Actor = NO_ACTOR,
) -> Stock:
    """Add `delta` to, or set `quantity` as, the on hand of one SKU at one outlet.

    Exactly one of `delta` and `quantity`. Raises UnknownSku, UnknownOutlet, or StockError when
    the result would be negative or too large to store; nothing is written then.
    """
    if (delta is None) == (quantity is None):
        raise ValidationError("Give exactly one of delta and quantity.")
    variant = Variant.objects.by_sku(sku).only("pk").first()
    if variant is None:
        raise UnknownSku(sku)
    outlet = Outlet.objects.filter(code=outlet_code.strip()).only("pk").first()
    if outlet is None:
        raise UnknownOutlet(outlet_code)
    if delta is not None:
        current = (
            Stock.objects.filter(variant=variant, outlet=outlet)
            .values_list("on_hand", flat=True)
            .first()
        )
        after = (current or 0) + delta
        if not 0 <= after <= MAX_STOCK:  # said in the caller's terms; stock_apply re-checks
            problem = f"{sku} at {outlet_code}: on hand is {current or 0}; "
            raise StockError([problem + f"the change would leave {after}"])
        return stock_adjust(
            variant_id=variant.pk,
            outlet_id=outlet.pk,
            delta=delta,
            trigger=trigger,
            reference=reference,
            actor=actor,
        )
    return stock_set(
        variant_id=variant.pk,
        outlet_id=outlet.pk,
        quantity=quantity or 0,
        trigger=trigger,
        reference=reference,
        actor=actor,
    )


@dataclass(frozen=True, slots=True)
class BulkStockRow:
    sku: str
    outlet: str
    quantity: int


@dataclass(slots=True)
class BulkStockResult:
    """What became of one row: `error` says why it was refused; otherwise the new levels."""

    row: int  # position in the request, from 0
    sku: str
    outlet: str
    error: str = ""
    on_hand: int | None = None
    available: int | None = None

    @property
    def ok(self) -> bool:
        return not self.error


def stock_bulk_set(
    *,
    rows: Sequence[BulkStockRow],
    trigger: str = Trigger.API_BULK,
    reference: str = "",
    actor: Actor = NO_ACTOR,
) -> list[BulkStockResult]:
    """Set counted on-hand quantities from (SKU, outlet code, quantity) rows.

    A row with an unknown SKU or outlet, a bundle's SKU (its stock is its components'), a
    quantity out of range, or the same SKU (normalised) and outlet as another row is refused
    with its reason, and does not stop the others. The good rows are written by ONE
    `stock_apply` call: one transaction, one trigger, so each channel receives one push per
    listing. Sending the same rows twice changes nothing the second time.
    Cost: per 2,000 rows three lookups, then stock_apply's, then one read of the new levels.
    """
    results = [BulkStockResult(i, row.sku, row.outlet) for i, row in enumerate(rows)]
    variants = variant_ids_by_sku_key({sku_key(row.sku) for row in rows if _storable(row.sku)})
    bundles = bundle_ids_among(variants.values())
    outlets = dict(
        Outlet.objects.filter(
            code__in={row.outlet.strip() for row in rows if _storable(row.outlet)}
        ).values_list("code", "pk")
    )
    targets: dict[tuple[int, int], list[int]] = {}
    for result, row in zip(results, rows, strict=True):
        result.error = _bulk_row_error(row, variants, outlets, bundles)
        if not result.error:
            pair = (variants[sku_key(row.sku)], outlets[row.outlet.strip()])
            targets.setdefault(pair, []).append(result.row)
    changes = []
    for (variant_id, outlet_id), indexes in targets.items():
        if len(indexes) > 1:
            for i in indexes:
                results[i].error = (
                    f"The same SKU and outlet appear in rows {', '.join(map(str, indexes))}: "
                    "send each once."
                )
            continue
        changes.append(StockChange(variant_id, outlet_id, set_on_hand=rows[indexes[0]].quantity))
    stock_apply(changes=changes, trigger=trigger, reference=reference, actor=actor)
    levels = _levels({(c.variant_id, c.outlet_id) for c in changes})
    for change in changes:
        on_hand, reserved = levels.get((change.variant_id, change.outlet_id), (0, 0))
        for i in targets[(change.variant_id, change.outlet_id)]:
            results[i].on_hand, results[i].available = on_hand, on_hand - reserved
    return results


def _storable(text: str) -> bool:
    """Whether `text` can be sent to the database as a lookup value at all."""
    return len(text) <= 200 and storable(text)


def _bulk_row_error(
    row: BulkStockRow, variants: Mapping[str, int], outlets: Mapping, bundles: set[int]
) -> str:
    if not _storable(row.sku) or sku_key(row.sku) not in variants:
        return f"No variant has the SKU {row.sku[:80]!r}."
    if variants[sku_key(row.sku)] in bundles:
        return bundle_stock_problem(row.sku.strip()) + ": set the components' stock instead."
    if not _storable(row.outlet) or row.outlet.strip() not in outlets:
        return f"No outlet has the code {row.outlet[:80]!r}."
    if not 0 <= row.quantity <= MAX_STOCK:
        return f"Quantity must be between 0 and {MAX_STOCK}, got {row.quantity}."
    return ""


def _levels(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int]]:
    """(on hand, reserved) of the given (variant, outlet) rows that exist."""
    levels: dict[tuple[int, int], tuple[int, int]] = {}
    for batch in _chunks(sorted(pairs), CHUNK):
        variant_ids = {v for v, _ in batch}
        outlet_ids = {o for _, o in batch}
        for v, o, on_hand, reserved in Stock.objects.filter(
            variant_id__in=variant_ids, outlet_id__in=outlet_ids
        ).values_list("variant_id", "outlet_id", "on_hand", "reserved"):
            levels[(v, o)] = (on_hand, reserved)
    return levels
