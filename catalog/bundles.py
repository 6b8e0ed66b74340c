"""Bundles (kits): a variant made of other variants (catalog.models.BundleComponent).

A bundle holds no stock of its own. What it has available is the fewest whole bundles its
components make (catalog.selectors.available_stock); selling it moves its components' stock
(synclogs.pipeline); `stock_apply` refuses any change to its own. A bundle may contain another
bundle: its leaf components are then the plain variants at the bottom, the units of each
multiplied down the levels and summed where one is reached twice (two kits of one gift box
sharing a mug take two mugs).

Reads, one query per level of nesting (per few thousand ids) whatever the number of variants:
- `bundle_compositions`: the direct components of bundles, and of the bundles inside them;
- `leaf_components`: the plain variants each bundle is made of, and how many of each;
- `bundles_containing`: every bundle that contains some variants, at any depth;
- `bundle_ids_among`: which of some variants are bundles;
- `components_among`: which of some variants are components of a bundle.

Writes go through `bundles_replace` (`bundle_set_components` for one bundle, by variant or by
SKU), which checks every rule first and writes nothing it refuses:
- a quantity is a whole number from 1 to MAX_QUANTITY, and a component is listed once;
- no cycle: a bundle cannot contain itself, nor a bundle that contains it, at any depth;
- a variant that holds stock (on hand or reserved, at any outlet) cannot become a bundle:
  that stock would be ignored.
A component in use cannot be deleted: `refuse_component_delete` says which bundles use it.

Concurrency (PostgreSQL; SQLite serialises writers anyway):
- composition changes take one advisory lock, to the end of their transaction, so two of them
  never build a cycle between them;
- a variant never becomes a bundle while a stock write to it is in flight, although that
  write's units are not committed yet for the check to see. The stock write checks for
  bundles after writing (catalog.services.stock_apply), and the composition change, before
  checking the stock of the variants becoming bundles, waits for the writes in flight: it
  locks their stock rows, and inserts (then removes) a zero row at each outlet where they have
  none, which waits for a concurrent insert of that row. Whichever commits second sees the
  other: the stock write is refused, or the variant's stock refuses the composition.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from catalog.exceptions import CatalogError
from catalog.models import BundleComponent, Outlet, Stock, Variant, sku_key
from catalog.signals import bundle_changed
from omni.bulk import chunks, int_array, matching_chunks

# The most units of one component a bundle may take (a box of 10,000 screws is a kit too).
MAX_QUANTITY = 100_000
# Past this many ids, `bundle_ids_among` reads every bundle's id (one index-only scan of a
# table that holds a few rows per bundle) rather than sending the ids.
WHOLE_TABLE_FROM = 5000
# The advisory lock that serialises composition changes (PostgreSQL). Any fixed number no
# other part of omni uses: it reads "bundles" in ASCII.
COMPOSITION_LOCK = 0x62756E646C6573

Composition = Sequence[tuple[int, int]]  # (component variant id, quantity) of one bundle


class BundleError(CatalogError):
    """A bundle's components were refused; nothing was written. `refusals` says which
    component (by its position in the list given) or which bundle each problem is about."""

    def __init__(self, refusals: Sequence["Refusal"]) -> None:
        self.refusals = list(refusals)
        self.problems = [r.text for r in self.refusals]
        super().__init__("; ".join(self.problems))


class ComponentInUse(CatalogError):
    """Variants to delete are components of bundles that are not deleted with them."""

    def __init__(self, uses: Mapping[str, Sequence[str]]) -> None:
        self.uses = {component: list(bundles) for component, bundles in uses.items()}
        super().__init__(in_use_message(self.uses))


def in_use_message(uses: Mapping[str, Sequence[str]]) -> str:
    """'Cannot delete MUG-RED: it is a component of the bundle KIT-1. …' for {component SKU:
    the SKUs of the bundles using it}."""
    parts = [
        f"{component} is a component of {_bundles_named(bundles)}"
        for component, bundles in uses.items()
    ]
    several = len(uses) > 1 or any(len(b) > 1 for b in uses.values())
    return (
        f"Cannot delete: {'; '.join(parts)}. Remove it from "
        f"{'those bundles' if several else 'the bundle'} first (a bundle's stock is its "
        "components')."
    )


def _bundles_named(skus: Sequence[str]) -> str:
    shown = ", ".join(skus[:10]) + (f" and {len(skus) - 10} more" if len(skus) > 10 else "")
    return f"the bundle{'s' if len(skus) > 1 else ''} {shown}"


# --- reads -----------------------------------------------------------------------------------


def _direct(bundle_ids: Collection[int]) -> dict[int, list[tuple[int, int]]]:
    """{bundle id: [(component id, quantity)]} for those of `bundle_ids` that are bundles."""
    rows = BundleComponent.objects.order_by("bundle_id", "pk").values_list(
        "bundle_id", "component_id", "quantity"
    )
    found: dict[int, list[tuple[int, int]]] = {}
    for chunk in matching_chunks(rows, "bundle_id", sorted(bundle_ids)):
        for bundle, component, quantity in chunk:
            found.setdefault(bundle, []).append((component, quantity))
    return found


def bundle_compositions(variant_ids: Iterable[int]) -> dict[int, list[tuple[int, int]]]:
    """{bundle id: [(component id, quantity)]} for the bundles among `variant_ids` and, level
    by level, the bundles among their components. Plain variants are absent.
    Cost: one query per level of nesting (and per chunk of ids: omni.bulk.matching_chunks);
    a set of plain variants costs one.
    """
    found: dict[int, list[tuple[int, int]]] = {}
    seen = set(variant_ids)
    frontier = seen
    while frontier:
        level = _direct(frontier)
        found.update(level)
        frontier = {c for components in level.values() for c, _ in components} - seen
        seen |= frontier
    return found


def leaves_of(
    compositions: Mapping[int, Sequence[tuple[int, int]]], bundle_ids: Iterable[int]
) -> dict[int, dict[int, int]]:
    """{bundle id: {leaf variant id: units one bundle takes}} for those of `bundle_ids` in
    `compositions` (as bundle_compositions reads them), worked out in memory.

    A bundle inside a bundle is replaced by its own leaves, multiplied by its quantity; a
    leaf reached along two paths sums. A component that would close a cycle (which the
    services refuse, so only a hand-made row could) is skipped rather than followed forever.
    """
    memo: dict[int, dict[int, int]] = {}

    def expand(bundle: int, path: frozenset[int]) -> dict[int, int]:
        if bundle in memo:
            return memo[bundle]
        total: dict[int, int] = {}
        for component, quantity in compositions[bundle]:
            if component in path:
                continue
            if component in compositions:
                inner = expand(component, path | {component})
                for leaf, units in inner.items():
                    total[leaf] = total.get(leaf, 0) + units * quantity
            else:
                total[component] = total.get(component, 0) + quantity
        memo[bundle] = total
        return total

    return {b: expand(b, frozenset({b})) for b in bundle_ids if b in compositions}


def leaf_components(variant_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """{bundle id: {leaf variant id: units one bundle takes}} for the bundles among
    `variant_ids`; plain variants are absent. Cost: bundle_compositions' queries."""
    ids = set(variant_ids)
    return leaves_of(bundle_compositions(ids), ids)


def _containing(variant_ids: Iterable[int]) -> dict[int, int]:
    """{bundle id: the variant through which it was reached} for every bundle containing
    any of `variant_ids`, at any depth. One query per level."""
    rows = BundleComponent.objects.order_by().values_list("bundle_id", "component_id")
    reached: dict[int, int] = {}
    frontier = set(variant_ids)
    while frontier:
        level: dict[int, int] = {}
        for chunk in matching_chunks(rows, "component_id", sorted(frontier)):
            for bundle, component in chunk:
                if bundle not in reached:
                    level.setdefault(bundle, component)
        reached.update(level)
        frontier = set(level)
    return reached


def bundles_containing(variant_ids: Collection[int]) -> set[int]:
    """Every bundle that contains any of `variant_ids`, directly or through a bundle inside
    it (a gift box holding a kit holding the mug). Cost: one query per level of nesting (and
    per chunk of ids: omni.bulk.matching_chunks); variants in no bundle cost one."""
    return set(_containing(variant_ids))


def bundle_ids_among(variant_ids: Iterable[int]) -> set[int]:
    """Those of `variant_ids` that are bundles (have components). One query."""
    ids = set(variant_ids)
    if not ids:
        return set()
    rows = BundleComponent.objects.order_by().values_list("bundle_id", flat=True).distinct()
    if len(ids) > WHOLE_TABLE_FROM:
        return set(rows) & ids
    return {bundle for chunk in matching_chunks(rows, "bundle_id", sorted(ids)) for bundle in chunk}


def components_among(variant_ids: Collection[int]) -> set[int]:
    """Those of `variant_ids` that are components of a bundle. One query (per chunk of ids:
    omni.bulk.matching_chunks)."""
    rows = BundleComponent.objects.order_by().values_list("component_id", flat=True).distinct()
    return {
        component
        for chunk in matching_chunks(rows, "component_id", sorted(variant_ids))
        for component in chunk
    }


def _skus(variant_ids: Iterable[int]) -> dict[int, str]:
    rows = Variant.objects.order_by().values_list("pk", "sku")
    return {
        pk: sku
        for chunk in matching_chunks(rows, "pk", sorted(set(variant_ids)))
        for pk, sku in chunk
    }


# --- the rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a bundle's new components are refused: `index` is the position, in the list given
    for the bundle, of the component the problem is about; None when it is the bundle's."""

    bundle_id: int
    index: int | None
    text: str


def bundles_check(
    compositions: Mapping[int, Composition], *, locked: bool = False
) -> list[Refusal]:
    """Every problem with giving each bundle of `compositions` (bundle id -> its whole new
    list of (component id, quantity)) those components, each naming the SKUs it is about.

    A bundle refused for one reason is taken as keeping its current components when the
    others are checked for cycles, as it would if the others were written without it. With
    `locked` (bundles_replace, about to write), the bundles' stock rows are read locked.
    Cost: one query for the SKUs, one for the stock of the bundles, bundle_compositions'
    (one per level) for the cycles, one more for the SKUs on a cycle path.
    """
    ids = set(compositions) | {c for components in compositions.values() for c, _ in components}
    skus = _skus(ids)
    refusals: list[Refusal] = []
    for bundle, components in compositions.items():
        refusals += _list_problems(bundle, components, skus)
    refusals += _stock_problems([b for b, c in compositions.items() if c], skus, locked=locked)
    refusals += _cycle_problems(compositions, {r.bundle_id for r in refusals}, skus)
    return sorted(refusals, key=lambda r: (r.bundle_id, -1 if r.index is None else r.index))


def _list_problems(bundle: int, components: Composition, skus: Mapping[int, str]) -> list[Refusal]:
    name = skus.get(bundle, f"variant {bundle}")
    if bundle not in skus:
        return [Refusal(bundle, None, f"No variant has the id {bundle}.")]
    refusals = []
    positions: dict[int, list[int]] = {}
    for index, (component, quantity) in enumerate(components):
        positions.setdefault(component, []).append(index)
        if component not in skus:
            refusals.append(Refusal(bundle, index, f"No variant has the id {component}."))
        elif component == bundle:
            refusals.append(Refusal(bundle, index, f"{name} cannot contain itself."))
        if not 1 <= quantity <= MAX_QUANTITY:
            refusals.append(
                Refusal(
                    bundle,
                    index,
                    f"The quantity of {skus.get(component, component)} in {name} must be a "
                    f"whole number from 1 to {MAX_QUANTITY:,}, not {quantity}.",
                )
            )
    for component, where in positions.items():
        if len(where) > 1 and component in skus:
            for index in where:
                refusals.append(
                    Refusal(
                        bundle,
                        index,
                        f"{skus[component]} is listed {len(where)} times in {name}: list it "
                        "once, with the total quantity.",
                    )
                )
    return refusals


def _stock_problems(
    bundle_ids: Sequence[int], skus: Mapping[int, str], *, locked: bool
) -> list[Refusal]:
    """A variant holding stock anywhere cannot become (or stay) a bundle. One query.

    With `locked`, the rows are locked and read as the writes in flight leave them: every
    row, since a row at zero in this transaction's snapshot may hold units once the write
    that holds it commits (a locking read filters rows as its snapshot sees them)."""
    rows = Stock.objects.order_by("variant_id", "outlet__code").values_list(
        "variant_id", "outlet__code", "on_hand", "reserved"
    )
    if locked:
        rows = rows.select_for_update(of=("self",))
    held: dict[int, list[str]] = {}
    for chunk in matching_chunks(rows, "variant_id", sorted(bundle_ids)):
        for variant, outlet, on_hand, reserved in chunk:
            if not (on_hand or reserved):
                continue
            held.setdefault(variant, []).append(
                f"on hand {on_hand}, reserved {reserved} at {outlet}"
            )
    return [
        Refusal(
            variant,
            None,
            f"{skus[variant]} holds stock ({'; '.join(where)}): a bundle's stock is its "
            "components', so its own would be ignored. Bring its stock to 0 first.",
        )
        for variant, where in held.items()
    ]


def _cycle_problems(
    compositions: Mapping[int, Composition], bad: set[int], skus: dict[int, str]
) -> list[Refusal]:
    """Bundles that would contain themselves, through any mix of their new components and the
    current components of everything else. Refused bundles keep their current components, so
    this is worked out again until no new refusal appears."""
    involved = set(compositions) | {c for comps in compositions.values() for c, _ in comps}
    current = {b: [c for c, _ in comps] for b, comps in bundle_compositions(involved).items()}
    refusals: list[Refusal] = []
    bad = set(bad)
    while True:
        graph = dict(current)
        graph.update(
            {b: [c for c, _ in comps] for b, comps in compositions.items() if b not in bad}
        )
        found = [
            (bundle, path)
            for bundle in sorted(set(compositions) - bad)
            if (path := _cycle_through(graph, bundle)) is not None
        ]
        if not found:
            return refusals
        missing = {v for _, path in found for v in path} - set(skus)
        skus.update(_skus(missing) if missing else {})
        for bundle, path in found:
            bad.add(bundle)
            index = next(i for i, (c, _) in enumerate(compositions[bundle]) if c == path[1])
            names = [skus.get(v, f"variant {v}") for v in path]
            refusals.append(
                Refusal(
                    bundle,
                    index,
                    f"{names[0]} cannot contain {names[1]}: {names[0]} would contain itself "
                    f"({' → '.join(names)}). A bundle cannot contain itself, nor a bundle that "
                    "contains it.",
                )
            )


def _cycle_through(graph: Mapping[int, Sequence[int]], start: int) -> list[int] | None:
    """A path start → … → start in `graph` (bundle id -> component ids), or None."""
    parent: dict[int, int] = {}
    stack = [(start, iter(graph.get(start, ())))]
    visited = {start}
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if child == start:
            path = [start, child]
            while node != start:
                path.insert(1, node)
                node = parent[node]
            return path
        if child not in visited and child in graph:
            visited.add(child)
            parent[child] = node
            stack.append((child, iter(graph[child])))
    return None


# --- writes ----------------------------------------------------------------------------------


@dataclass(slots=True)
class BundlesOutcome:
    """What `bundles_replace` did (or, refused or in a dry run, would do) with the good
    bundles: component rows created, with a new quantity, unchanged and removed, and the
    bundles whose components changed."""

    refusals: list[Refusal] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    changed_bundles: list[int] = field(default_factory=list)
    written: bool = False


def bundles_replace(
    *,
    compositions: Mapping[int, Composition],
    partial: bool = False,
    dry_run: bool = False,
) -> BundlesOutcome:
    """Give each bundle of `compositions` (bundle id -> its whole new list of (component id,
    quantity); an empty list makes it a plain variant again) exactly those components.

    Every rule is checked first (bundles_check). With a refusal and not `partial`, nothing is
    written; with `partial`, the bundles without one are. Bundles whose components change are
    written in one transaction, and announced through `bundle_changed` inside it, so the
    channels re-send what they have available. Writing the same components again changes
    nothing. (On PostgreSQL it waits for composition changes and, for variants becoming
    bundles, stock writes in flight: see the module's docstring.)
    Cost: bundles_check's queries, one to read the current components, then per few thousand
    bundles one delete and one insert; on PostgreSQL, three more for the waits.
    """
    if not compositions:
        return BundlesOutcome()
    with transaction.atomic():
        fence: list[int] = []
        if not dry_run:
            fence = _wait_for_writers([b for b, c in compositions.items() if c])
        outcome = BundlesOutcome(refusals=bundles_check(compositions, locked=not dry_run))
        bad = {r.bundle_id for r in outcome.refusals}
        good = {b: list(c) for b, c in compositions.items() if b not in bad}
        current = _direct(good)
        for bundle, components in good.items():
            _count(outcome, bundle, dict(current.get(bundle, [])), dict(components))
        if fence:
            Stock.objects.filter(pk__in=fence).delete()
        if dry_run or (outcome.refusals and not partial) or not outcome.changed_bundles:
            return outcome
        _write({b: good[b] for b in outcome.changed_bundles})
        outcome.written = True
        bundle_changed.send(sender=BundleComponent, bundle_ids=list(outcome.changed_bundles))
    return outcome


def _count(outcome: BundlesOutcome, bundle: int, old: dict[int, int], new: dict[int, int]) -> None:
    created = sum(1 for c in new if c not in old)
    updated = sum(1 for c, q in new.items() if c in old and old[c] != q)
    removed = sum(1 for c in old if c not in new)
    outcome.created += created
    outcome.updated += updated
    outcome.removed += removed
    outcome.unchanged += len(new) - created - updated
    if created or updated or removed:
        outcome.changed_bundles.append(bundle)


def _write(compositions: Mapping[int, Composition]) -> None:
    """Replace the components of these bundles: per few thousand, one delete, one insert."""
    for chunk in matching_chunks(BundleComponent.objects.all(), "bundle_id", sorted(compositions)):
        chunk.delete()
    rows = [
        BundleComponent(bundle_id=bundle, component_id=component, quantity=quantity)
        for bundle, components in sorted(compositions.items())
        for component, quantity in components
    ]
    for batch in chunks(rows, 2000):
        BundleComponent.objects.bulk_create(batch)


def _wait_for_writers(bundle_ids: Sequence[int]) -> list[int]:
    """PostgreSQL: take the composition lock, then wait for the stock writes in flight to the
    variants about to become bundles (see the module's docstring) by inserting a zero stock
    row wherever they have none; returns those rows' ids, to delete before committing (their
    existing rows are locked by bundles_check). Nothing elsewhere."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [COMPOSITION_LOCK])
    becoming = sorted(set(bundle_ids) - bundle_ids_among(bundle_ids))
    if not becoming:
        return []
    quote = connection.ops.quote_name
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Stock._meta.db_table)} "
            "(variant_id, outlet_id, on_hand, reserved, created_at, updated_at) "
            f"SELECT v, o.id, 0, 0, %s, %s FROM unnest(%s::bigint[]) AS v "
            f"CROSS JOIN {quote(Outlet._meta.db_table)} AS o "
            "ON CONFLICT (variant_id, outlet_id) DO NOTHING RETURNING id",
            [now, now, int_array(becoming)],
        )
        return [pk for (pk,) in cursor.fetchall()]


def bundle_set_components(
    *, bundle: Variant, components: Sequence[tuple[Variant, int]]
) -> list[BundleComponent]:
    """Replace `bundle`'s components with `components` ((variant, quantity) pairs; empty makes
    it a plain variant again), atomically. Raises BundleError naming every problem (see
    bundles_check); nothing is written then. Returns the bundle's components as saved."""
    outcome = bundles_replace(compositions={bundle.pk: [(v.pk, q) for v, q in components]})
    if outcome.refusals:
        raise BundleError(outcome.refusals)
    return list(bundle.components.select_related("component").order_by("pk"))


def bundle_set_components_by_sku(
    *, bundle: Variant, components: Sequence[tuple[str, int]]
) -> list[BundleComponent]:
    """bundle_set_components with the components named by SKU (trimmed, letter case
    ignored), as the API takes them. An unknown SKU, or one given twice, is a ValidationError
    keyed by its place ("components.1.sku"); the rules of bundles_check raise BundleError.
    Cost: one query for the SKUs, then bundle_set_components'."""
    keys = [sku_key(sku) for sku, _ in components]
    found = {
        variant.sku_key: variant
        for chunk in chunks(sorted(set(filter(None, keys))), 2000)
        for variant in Variant.objects.filter(sku_key__in=chunk).only("pk", "sku", "sku_key")
    }
    errors: dict[str, list[ValidationError]] = {}
    first: dict[str, int] = {}
    for index, ((sku, _), key) in enumerate(zip(components, keys, strict=True)):
        where = f"components.{index}.sku"
        if key not in found:
            problem = ValidationError(f"No variant has the SKU {sku!r}.", code="unknown_sku")
            errors.setdefault(where, []).append(problem)
        elif key in first:
            problem = ValidationError(
                f"{found[key].sku} is also component {first[key]}: list it once, with the "
                "total quantity.",
                code="repeated",
            )
            errors.setdefault(where, []).append(problem)
        else:
            first[key] = index
    if errors:
        raise ValidationError(errors)
    pairs = [(found[key], quantity) for key, (_, quantity) in zip(keys, components, strict=True)]
    return bundle_set_components(bundle=bundle, components=pairs)


# --- deleting components ---------------------------------------------------------------------


def components_in_use(variant_ids: Collection[int]) -> dict[str, list[str]]:
    """{component SKU: SKUs of the bundles using it} for those of `variant_ids` that are
    components of a bundle not itself among `variant_ids` (deleting a bundle with its
    components is fine). One query per few thousand ids."""
    deleted = set(variant_ids)
    rows = BundleComponent.objects.order_by("component__sku", "bundle__sku").values_list(
        "component__sku", "bundle__sku", "bundle_id"
    )
    uses: dict[str, list[str]] = {}
    for chunk in matching_chunks(rows, "component_id", sorted(deleted)):
        for component, bundle, bundle_id in chunk:
            if bundle_id not in deleted:
                uses.setdefault(component, []).append(bundle)
    return uses


def refuse_component_delete(*, variant_ids: Collection[int]) -> None:
    """Raise ComponentInUse, naming the bundles, when any of `variant_ids` is a component of
    a bundle that is not deleted with it."""
    uses = components_in_use(variant_ids)
    if uses:
        raise ComponentInUse(uses)
