"""The stock import: on-hand counts from a CSV of sku,quantity rows, for one outlet or per row."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from django.db import transaction

from catalog.bundles import bundle_ids_among
from catalog.exceptions import UnknownOutlet
from catalog.imports.reading import (
    BadCell,
    Column,
    ImportFileError,
    ImportResult,
    Progress,
    ProgressCallback,
    Record,
    RowError,
    read_csv,
    whole_cell,
)
from catalog.models import Outlet, Stock
from catalog.selectors import variant_ids_by_sku_key
from catalog.services import MovementRecord, stock_import_levels
from omni.actors import Actor
from omni.bulk import chunks, collector_paused, matching_chunks

# Rows per stock_import_levels call: each call is one savepoint, one ledger insert and one
# stock_changed signal for those rows.
STOCK_CHUNK = 50_000

STOCK_COLUMNS: tuple[Column, ...] = (
    Column("sku", "Variant SKU; compared trimmed and ignoring letter case.", required=True),
    Column(
        "quantity",
        "On-hand count, a whole number ≥ 0 (the column may be named on_hand).",
        required=True,
    ),
    Column("outlet", "Outlet code; only when no outlet is chosen for the whole file."),
)
STOCK_ALIASES = {"on_hand": "quantity"}


@dataclass(slots=True)
class _StockRow:
    line: int
    sku: str
    key: str  # the SKU normalised (catalog.models.sku_key)
    quantity: int | None
    outlet_id: int | None
    variant_id: int | None = None
    errors: list[str] = field(default_factory=list)


def stock_outlets(outlet_code: str | None, columns: tuple[str, ...]) -> dict[str, int]:
    """Outlet pks by code: the chosen outlet (under the key ''), or every outlet for the
    file's outlet column."""
    if outlet_code and "outlet" in columns:
        raise ImportFileError(
            "The file has an outlet column and an outlet was also chosen; keep only one."
        )
    if outlet_code:
        outlet = Outlet.objects.filter(code=outlet_code).first()
        if outlet is None:
            raise UnknownOutlet(outlet_code)
        return {"": outlet.pk}
    if "outlet" not in columns:
        raise ImportFileError("Choose an outlet, or add an outlet column with outlet codes.")
    return dict(Outlet.objects.values_list("code", "pk"))


def _parse_stock_rows(
    records: list[Record], index: Mapping[str, int], outlets: Mapping[str, int]
) -> list[_StockRow]:
    """Each record as a row with its problems. Cost: one pass; a plain count of up to nine
    digits (nearly every cell) is read without the general number parser."""
    sku_at, quantity_at = index["sku"], index["quantity"]
    outlet_at = index.get("outlet")
    fixed_outlet = outlets.get("")
    rows = []
    for record in records:
        values = record.values
        sku, quantity = values[sku_at], values[quantity_at]
        row = _StockRow(record.line, sku, sku.lower(), None, fixed_outlet)
        if record.problem:
            row.errors.append(record.problem)
        if not sku:
            row.errors.append("sku is required")
        if quantity.isdigit() and quantity.isascii() and len(quantity) < 10:
            row.quantity = int(quantity)
        elif not quantity:
            row.errors.append("quantity is required")
        else:
            try:
                row.quantity = whole_cell("quantity", quantity)
            except BadCell as exc:
                row.errors.append(str(exc))
        if outlet_at is not None:
            code = values[outlet_at]
            row.outlet_id = outlets.get(code) if code else None
            if row.outlet_id is None:
                row.errors.append(_outlet_problem(code, outlets))
        rows.append(row)
    return rows


def _outlet_problem(code: str, outlets: Mapping[str, int]) -> str:
    if not code:
        return "outlet is required"
    known = sorted(outlets)
    listed = f" (known codes: {', '.join(known)})" if len(known) <= 10 else ""
    return f"no outlet has the code {code!r}{listed}"


def _find_variants(rows: list[_StockRow]) -> None:
    """Attach variant pks by normalised SKU, refusing bundles (their stock is their
    components'). Two queries (catalog.selectors, catalog.bundles)."""
    pks = variant_ids_by_sku_key({row.key for row in rows})
    bundles = bundle_ids_among(pks.values())
    for row in rows:
        if row.sku:
            row.variant_id = pks.get(row.key)
            if row.variant_id is None:
                row.errors.append(f"no variant has the SKU {row.sku!r}")
            elif row.variant_id in bundles:
                row.errors.append(
                    f"the SKU {row.sku!r} is a bundle: its stock is its components' (import "
                    "the components' counts instead)"
                )


def _check_duplicate_stock_rows(rows: list[_StockRow]) -> None:
    """Refuse every row whose SKU (normalised) appears on another row for the same outlet."""
    first: dict[tuple[str, int | None], _StockRow] = {}
    repeated: dict[tuple[str, int | None], list[_StockRow]] = {}
    for row in rows:
        if not row.sku or row.outlet_id is None:
            continue
        pair = (row.key, row.outlet_id)
        seen = first.setdefault(pair, row)
        if seen is not row:
            repeated.setdefault(pair, [seen]).append(row)
    for same in repeated.values():
        for row in same:
            others = ", ".join(str(other.line) for other in same if other is not row)
            row.errors.append(
                f"the SKU {row.sku!r} is also on line {others} for the same outlet "
                "(SKUs are compared ignoring letter case and surrounding spaces)"
            )


def _current_levels(levels: list[tuple[int, int, int]]) -> dict[tuple[int, int], int]:
    """On hand of the existing stock rows of these (variant, outlet) pairs. One query per chunk
    of variants (see omni.bulk.matching_chunks)."""
    outlets = sorted({outlet for _v, outlet, _q in levels})
    variants = sorted({variant for variant, _o, _q in levels})
    queryset = Stock.objects.filter(outlet_id__in=outlets).values_list(
        "variant_id", "outlet_id", "on_hand"
    )
    found: dict[tuple[int, int], int] = {}
    for chunk in matching_chunks(queryset, "variant_id", variants):
        found.update({(v, o): n for v, o, n in chunk})
    return found


@collector_paused()  # builds several objects per row: see omni.bulk
def stock_csv_import(
    *,
    stream: TextIO,
    outlet_code: str | None,
    reference: str,
    actor: Actor,
    partial: bool = False,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Set on-hand counts from a CSV of sku,quantity rows (see STOCK_COLUMNS).

    For the outlet `outlet_code`, or, when it is None, per row by the file's outlet column.
    Every row is checked first (known SKU that is not a bundle, whole quantity ≥ 0, SKU once
    per outlet, known outlet); with bad rows and not `partial`, nothing is written. Writes go
    through catalog.services.stock_import_levels (trigger IMPORT, `reference` and `actor` on
    each ledger row), in one transaction, so rows whose count is unchanged write no ledger row.
    `created` counts stock rows created, `updated` counts rows whose count changed.
    Raises ImportFileError for an unreadable file (listing, when some row cannot be read as
    CSV, that row and every other bad row), UnknownOutlet for an unknown `outlet_code`.
    Cost: two queries to look up the SKUs and the bundles, then stock_import_levels' own (a
    few statements per STOCK_CHUNK rows); a dry run reads the current counts instead, one
    query per omni.bulk.CHUNK rows.
    """
    progress = Progress(on_progress)
    table = read_csv(stream, columns=STOCK_COLUMNS, aliases=STOCK_ALIASES, progress=progress)
    outlets = stock_outlets(outlet_code, table.columns)
    tick = progress.ticker("checking", len(table.records))
    index = table.index()
    rows = _parse_stock_rows(table.records, index, outlets)
    _check_duplicate_stock_rows(rows)
    _find_variants(rows)
    tick(len(rows))
    result = ImportResult(rows=len(rows), dry_run=dry_run)
    result.errors = [RowError(row.line, "; ".join(row.errors)) for row in rows if row.errors]
    table.refuse_if_unreadable(result.errors)
    if result.errors and not partial:
        return result
    levels = sorted(
        (row.variant_id, row.outlet_id, row.quantity)  # type: ignore[misc]
        for row in rows
        if not row.errors
    )
    if dry_run:
        current = _current_levels(levels)
        changed = [level[:2] for level in levels if current.get(level[:2], 0) != level[2]]
        result.created = sum(1 for pair in changed if pair not in current)
    else:
        movements = _write_levels(levels, reference=reference, actor=actor, progress=progress)
        changed = movements
        result.created = sum(m.stock_created for m in movements)
        result.written = True
    result.updated = len(changed) - result.created
    result.unchanged = len(levels) - len(changed)
    return result


def _write_levels(
    levels: list[tuple[int, int, int]], *, reference: str, actor: Actor, progress: Progress
) -> list[MovementRecord]:
    """Every level (changed or not: stock_apply locks each row and decides under the lock), in
    one transaction, STOCK_CHUNK rows per call in (variant, outlet) order, so the lock order is
    the one every stock writer uses."""
    tick = progress.ticker("writing", len(levels))
    movements: list[MovementRecord] = []
    with transaction.atomic():
        for chunk in chunks(levels, STOCK_CHUNK):
            movements += stock_import_levels(levels=chunk, reference=reference, actor=actor)
            tick(len(chunk))
    return movements
