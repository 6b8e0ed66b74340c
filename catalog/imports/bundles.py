"""The bundles import: bundles' components from a CSV of bundle_sku,component_sku,quantity rows.

One row per component; the rows of one bundle, wherever they are in the file, are its whole new
list of components and replace the ones it has (a variant without components becomes a
bundle). Bundles the file does not name are left alone. Every row is checked first, then the
rules of catalog.bundles (no cycle, no bundle holding stock) for every bundle at once; a bad
row refuses its whole bundle, since writing the others alone would leave the bundle short of a
component. By default one bad row writes nothing; with `partial` the good bundles are written.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from catalog.bundles import MAX_QUANTITY, bundles_replace
from catalog.imports.reading import (
    BadCell,
    Column,
    ImportResult,
    Progress,
    ProgressCallback,
    Record,
    RowError,
    read_csv,
    whole_cell,
)
from catalog.models import sku_key
from catalog.selectors import variant_ids_by_sku_key

BUNDLE_COLUMNS: tuple[Column, ...] = (
    Column(
        "bundle_sku",
        "The bundle's SKU. All the rows of one bundle together replace its components.",
        required=True,
    ),
    Column(
        "component_sku",
        "A component's SKU: a variant, or another bundle. Once per bundle.",
        required=True,
    ),
    Column(
        "quantity",
        f"Units of the component in one bundle: a whole number from 1 to {MAX_QUANTITY:,}.",
        required=True,
    ),
)


@dataclass(slots=True)
class _BundleRow:
    line: int
    bundle_sku: str
    component_sku: str
    quantity: int | None = None
    bundle_id: int | None = None
    component_id: int | None = None
    errors: list[str] = field(default_factory=list)


def _parse(records: list[Record], index: Mapping[str, int]) -> list[_BundleRow]:
    rows = []
    for record in records:
        values = record.values
        row = _BundleRow(record.line, values[index["bundle_sku"]], values[index["component_sku"]])
        if record.problem:
            row.errors.append(record.problem)
        for column, value in (("bundle_sku", row.bundle_sku), ("component_sku", row.component_sku)):
            if not value:
                row.errors.append(f"{column} is required")
        row.quantity = _quantity(values[index["quantity"]], row.errors)
        rows.append(row)
    return rows


def _quantity(raw: str, errors: list[str]) -> int | None:
    if not raw:
        errors.append("quantity is required")
        return None
    try:
        value = whole_cell("quantity", raw)
    except BadCell as exc:
        errors.append(str(exc))
        return None
    if not 1 <= value <= MAX_QUANTITY:
        errors.append(
            f"quantity must be a whole number from 1 to {MAX_QUANTITY:,}, not {raw} (a bundle "
            "takes at least one of each of its components)"
        )
        return None
    return value


def _find_variants(rows: list[_BundleRow]) -> None:
    """Attach the variants of both SKUs. One query (catalog.selectors)."""
    keys = {sku_key(sku) for row in rows for sku in (row.bundle_sku, row.component_sku)}
    found = variant_ids_by_sku_key(keys)
    for row in rows:
        row.bundle_id = found.get(sku_key(row.bundle_sku))
        row.component_id = found.get(sku_key(row.component_sku))
        for column, sku, pk in (
            ("bundle_sku", row.bundle_sku, row.bundle_id),
            ("component_sku", row.component_sku, row.component_id),
        ):
            if sku and pk is None:
                row.errors.append(
                    f"{column} {sku!r} matches no variant (SKUs are compared trimmed and "
                    "ignoring letter case)"
                )


def _check_repeated(rows: list[_BundleRow]) -> None:
    """Refuse every row whose component is given again for the same bundle."""
    lines: dict[tuple[int, int], list[_BundleRow]] = {}
    for row in rows:
        if row.bundle_id is not None and row.component_id is not None:
            lines.setdefault((row.bundle_id, row.component_id), []).append(row)
    for same in lines.values():
        if len(same) < 2:
            continue
        for row in same:
            others = ", ".join(str(other.line) for other in same if other is not row)
            row.errors.append(
                f"component_sku {row.component_sku!r} is also given for this bundle on line "
                f"{others}: give it once, with the total quantity"
            )


def _refuse_whole_bundles(rows: list[_BundleRow]) -> None:
    """A bundle's rows go together: the good rows of a bundle with a bad row are refused too."""
    bad_lines: dict[str, list[int]] = {}
    for row in rows:
        if row.errors and row.bundle_sku:
            bad_lines.setdefault(sku_key(row.bundle_sku), []).append(row.line)
    for row in rows:
        lines = bad_lines.get(sku_key(row.bundle_sku))
        if lines and not row.errors:
            listed = ", ".join(map(str, lines[:5])) + (" …" if len(lines) > 5 else "")
            row.errors.append(
                f"not imported: the bundle {row.bundle_sku!r} has a bad row (line "
                f"{listed}), and a bundle's rows replace its components together"
            )


def bundles_csv_import(
    *,
    stream: TextIO,
    partial: bool = False,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Replace bundles' components from a CSV of bundle_sku,component_sku,quantity rows (see
    BUNDLE_COLUMNS and the module's docstring).

    Each bad row is reported by its line: a SKU no variant has, a quantity that is not a whole
    number from 1 to MAX_QUANTITY, a component given twice for one bundle, and the rules of
    catalog.bundles.bundles_check (a bundle containing itself, directly or through another
    bundle; a bundle that holds stock). Writes go through catalog.bundles.bundles_replace, in
    one transaction. `created` counts component rows new to their bundle, `updated` those whose
    quantity changed, `unchanged` the others; `other` counts the bundles changed and the
    components they no longer have. Raises ImportFileError for a file that cannot be read.
    Cost: one query for the SKUs, then bundles_replace's (a fixed number per level of bundle
    nesting, and per few thousand bundles).
    """
    progress = Progress(on_progress)
    table = read_csv(stream, columns=BUNDLE_COLUMNS, aliases={}, progress=progress)
    tick = progress.ticker("checking", len(table.records))
    rows = _parse(table.records, table.index())
    _find_variants(rows)
    _check_repeated(rows)
    tick(len(rows))
    good = [row for row in rows if not row.errors]
    compositions: dict[int, list[tuple[int, int]]] = {}
    where: dict[int, list[_BundleRow]] = {}
    for row in good:
        # A row without errors has both variants and its quantity.
        bundle, pair = row.bundle_id, (row.component_id, row.quantity)
        compositions.setdefault(bundle, []).append(pair)  # type: ignore[arg-type]
        where.setdefault(bundle, []).append(row)  # type: ignore[arg-type]
    # Bundles with a bad row are not sent on: their rows are refused together below.
    refused_bundles = {row.bundle_id for row in rows if row.errors}
    compositions = {b: c for b, c in compositions.items() if b not in refused_bundles}
    # Only checked when nothing may be written: a row csv cannot read refuses the whole file.
    any_bad = any(row.errors for row in rows)
    only_check = dry_run or bool(table.unreadable) or (any_bad and not partial)
    write_tick = progress.ticker("writing", len(good))
    outcome = bundles_replace(compositions=compositions, partial=partial, dry_run=only_check)
    write_tick(len(good))
    for refusal in outcome.refusals:
        bundle_rows = where[refusal.bundle_id]
        for row in bundle_rows if refusal.index is None else [bundle_rows[refusal.index]]:
            if refusal.text not in row.errors:
                row.errors.append(refusal.text)
    _refuse_whole_bundles(rows)
    result = ImportResult(rows=len(rows), dry_run=dry_run)
    result.errors = [RowError(row.line, "; ".join(row.errors)) for row in rows if row.errors]
    table.refuse_if_unreadable(result.errors)
    if result.errors and not partial:
        return result
    result.created, result.updated, result.unchanged = (
        outcome.created,
        outcome.updated,
        outcome.unchanged,
    )
    result.other = {
        "bundles changed": len(outcome.changed_bundles),
        "components removed": outcome.removed,
    }
    result.written = outcome.written
    return result
