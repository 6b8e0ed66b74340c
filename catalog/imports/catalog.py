"""The catalog import: products with their variants, from a CSV of one row per variant.

Every row is checked against the file and the database before anything is written; the writes
are in bulk (omni.bulk), a fixed number of queries per few thousand rows.
"""

import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.imports.reading import (
    CHUNK,
    HANDLE,
    BadCell,
    Column,
    ImportFileError,
    ImportResult,
    Parser,
    Progress,
    ProgressCallback,
    RowError,
    Table,
    category_cell,
    decimal_cell,
    handle_cell,
    read_csv,
    text_cell,
    upc_cell,
    urls_cell,
    whole_cell,
    yes_no_cell,
)
from catalog.models import Brand, Category, Product, ProductImage, Variant
from catalog.services import product_saved
from omni.bulk import chunks, collector_paused, copy_insert, copy_update, matching_chunks

# --- the catalog file ------------------------------------------------------------------------

CATALOG_COLUMNS: tuple[Column, ...] = (
    Column("handle", "Groups rows into one product: letters, digits, - and _.", required=True),
    Column("name", "Product name.", required=True),
    Column("sku", "Variant SKU; compared trimmed and ignoring letter case.", required=True),
    Column("upc", "Barcode (UPC/EAN), at most 32 characters."),
    Column("retail_price", "Price, e.g. 49.90.", required=True),
    Column("option1_name", "e.g. Color; with option1_value, e.g. Red."),
    Column("option1_value", "Value of option 1 for this variant."),
    Column("option2_name", "e.g. Size."),
    Column("option2_value", "Value of option 2 for this variant."),
    Column("option3_name", "e.g. Material."),
    Column("option3_value", "Value of option 3 for this variant."),
    Column("brand", "Brand name; created if new."),
    Column("category", "Category name or path, e.g. Apparel > Shirts; created if new."),
    Column("description", "Product description."),
    Column("weight_kg", "Weight in kg, e.g. 0.25."),
    Column("length_cm", "Length in cm."),
    Column("width_cm", "Width in cm."),
    Column("height_cm", "Height in cm."),
    Column("active", "yes/no (true/false, 1/0); blank keeps it as it is (new: yes)."),
    Column("image_urls", "Image addresses separated by spaces or |."),
    Column("supplier", "POS only."),
    Column("supplier_code", "POS only."),
    Column("supplier_price", "POS only, e.g. 20.00."),
    Column("reorder_point", "POS only, whole number."),
    Column("reorder_quantity", "POS only, whole number."),
    Column("tax_rate", "POS only, percent, e.g. 11."),
    Column("tags", "POS only, comma-separated."),
)

_PRODUCT_PARSERS: dict[str, Parser] = {
    "name": text_cell(255),
    "option1_name": text_cell(100),
    "option2_name": text_cell(100),
    "option3_name": text_cell(100),
    "brand": text_cell(120),
    "category": category_cell,
    "description": text_cell(),
    "weight_kg": decimal_cell(8, 3),
    "length_cm": decimal_cell(8, 2),
    "width_cm": decimal_cell(8, 2),
    "height_cm": decimal_cell(8, 2),
    "active": yes_no_cell,
    "image_urls": urls_cell,
    "supplier": text_cell(120),
    "supplier_code": text_cell(80),
    "supplier_price": decimal_cell(12, 2),
    "reorder_point": whole_cell,
    "reorder_quantity": whole_cell,
    "tax_rate": decimal_cell(5, 2),
    "tags": text_cell(255),
}
_VARIANT_PARSERS: dict[str, Parser] = {
    "sku": text_cell(64),
    "upc": upc_cell,
    "retail_price": decimal_cell(12, 2),
    "option1_value": text_cell(100),
    "option2_value": text_cell(100),
    "option3_value": text_cell(100),
}
_REQUIRED = frozenset(c.name for c in CATALOG_COLUMNS if c.required)
_CASELESS = frozenset({"brand", "category", "option1_name", "option2_name", "option3_name"})
_OPTIONS = (1, 2, 3)
_OPTION_NAMES = tuple(f"option{i}_name" for i in _OPTIONS)
_OPTION_VALUES = tuple(f"option{i}_value" for i in _OPTIONS)

# Product columns written to a Product field: column -> (attname, value when the cell is blank).
_PRODUCT_FIELDS: dict[str, tuple[str, Any]] = {
    "name": ("name", ""),
    "description": ("description", ""),
    "brand": ("brand_id", None),
    "category": ("category_id", None),
    "weight_kg": ("weight_kg", None),
    "length_cm": ("length_cm", None),
    "width_cm": ("width_cm", None),
    "height_cm": ("height_cm", None),
    "active": ("is_active", None),  # blank keeps the current value; see _product_values
    "supplier": ("supplier", ""),
    "supplier_code": ("supplier_code", ""),
    "supplier_price": ("supplier_price", None),
    "reorder_point": ("reorder_point", None),
    "reorder_quantity": ("reorder_quantity", None),
    "tax_rate": ("tax_rate", None),
    "tags": ("tags", ""),
}


@dataclass(slots=True)
class _Row:
    """One row of the catalog file: one variant, plus its product's columns."""

    line: int
    handle: str
    sku: str
    key: str  # the SKU normalised (catalog.models.sku_key)
    product: dict[str, Any]  # non-blank product columns, parsed
    variant: dict[str, Any]  # non-blank variant columns, parsed
    errors: list[str] = field(default_factory=list)
    product_error: bool = False

    def refuse(self, reason: str, *, product: bool = False) -> None:
        self.errors.append(reason)
        self.product_error = self.product_error or product


@dataclass(slots=True)
class _Group:
    """The rows sharing one handle: one product."""

    handle: str
    rows: list[_Row]
    values: dict[str, Any] = field(default_factory=dict)  # merged product columns
    lines: dict[str, int] = field(default_factory=dict)  # where each merged value came from
    existing: dict[str, Any] | None = None  # the product's current row, if it exists
    brand: int | str | None = None  # a Brand pk, or the key of a brand to create
    category: int | tuple[str, ...] | None = None  # a Category pk, or the path to create
    product_id: int | None = None

    @property
    def bad(self) -> bool:
        return any(row.product_error for row in self.rows)

    def option_names(self) -> list[str | None]:
        return [self.values.get(name) for name in _OPTION_NAMES]


def _parse_catalog_rows(table: Table, progress: Progress) -> list[_Row]:
    """Parse every record.

    The rows of one product usually repeat its cells, so a row whose product cells equal the
    previous row's shares that row's parse. Cost: linear in cells; the product cells of a
    repeating row cost one tuple comparison.
    """
    index = table.index()
    product_at = [(n, index[n]) for n in ("handle", *_PRODUCT_PARSERS) if n in index]
    variant_at = [(n, index[n], _VARIANT_PARSERS[n]) for n in _VARIANT_PARSERS if n in index]
    required_at = [(n, index[n]) for n in sorted(_REQUIRED)]
    product_key = operator.itemgetter(*(i for _n, i in product_at))
    handle_at, sku_at = index["handle"], index["sku"]
    tick = progress.ticker("checking", len(table.records))
    previous: tuple[Any, dict[str, Any], list[str]] = (None, {}, [])
    rows = []
    for count, record in enumerate(table.records, 1):
        values = record.values
        sku = values[sku_at]  # cells are stripped already: its key is its lower case
        row = _Row(record.line, values[handle_at], sku, sku.lower(), {}, {})
        if record.problem:
            row.refuse(record.problem)
        for name, i in required_at:
            if not values[i]:
                row.refuse(f"{name} is required", product=name in ("handle", "name"))
        key = product_key(values)
        if key != previous[0]:
            previous = (key, *_parse_product(values, product_at))
        row.product = previous[1]
        for reason in previous[2]:
            row.refuse(reason, product=True)
        for name, i, parse in variant_at:
            if values[i]:
                try:
                    row.variant[name] = parse(name, values[i])
                except BadCell as exc:
                    row.refuse(str(exc))
        rows.append(row)
        if count % CHUNK == 0:
            tick(CHUNK)
    tick(len(rows) % CHUNK)
    return rows


def _parse_product(
    values: list[str], product_at: list[tuple[str, int]]
) -> tuple[dict[str, Any], list[str]]:
    """The product cells of one row, parsed, and the reasons for refusing any of them."""
    product: dict[str, Any] = {}
    reasons: list[str] = []
    for name, i in product_at:
        if not values[i]:
            continue
        try:
            if name == "handle":
                handle_cell(name, values[i])
            else:
                product[name] = _PRODUCT_PARSERS[name](name, values[i])
        except BadCell as exc:
            reasons.append(str(exc))
    return product, reasons


def _group_rows(rows: list[_Row]) -> list[_Group]:
    """Rows by handle, in order of first appearance. Rows without a valid handle join none."""
    groups: dict[str, _Group] = {}
    for row in rows:
        if not row.handle or not HANDLE.fullmatch(row.handle) or len(row.handle) > 120:
            continue
        groups.setdefault(row.handle, _Group(row.handle, [])).rows.append(row)
    return list(groups.values())


def _compare_key(name: str, value: Any) -> Any:
    if name in _CASELESS:
        return tuple(v.casefold() for v in value) if isinstance(value, tuple) else value.casefold()
    return value


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(" > ".join(value)) if value and "://" not in value[0] else repr(" ".join(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(str(value))


def _merge_product(group: _Group) -> None:
    """One value per product column: blank cells take the value of the rows that have one;
    two different values are a conflict, reported on the later row."""
    first = group.rows[0].product
    for index, row in enumerate(group.rows):
        if index and (row.product is first or row.product == first):
            continue  # the usual case: the row repeats the product's cells
        for name, value in row.product.items():
            if name not in group.values:
                group.values[name], group.lines[name] = value, row.line
            elif _compare_key(name, value) != _compare_key(name, group.values[name]):
                row.refuse(
                    f"{name} is {_shown(value)} here but {_shown(group.values[name])} on line "
                    f"{group.lines[name]}; rows with the same handle describe one product",
                    product=True,
                )


def _check_options(group: _Group, present: frozenset[str]) -> None:
    """Option names are the product's, values the variant's; each variant's values differ."""
    names = group.option_names()
    if not any(names) and not present.intersection(_OPTION_VALUES):
        return
    folded = [n.casefold() for n in names if n]
    if len(folded) != len(set(folded)):
        group.rows[0].refuse("two options of this product have the same name", product=True)
    # Only options the product names or the file has a value column for can be checked.
    options = [
        (i, name, column)
        for i, name, column in zip(_OPTIONS, names, _OPTION_VALUES, strict=True)
        if name or column in present
    ]
    columns = [column for _i, _name, column in options]
    # The usual case: every option is named, so a row is right when it has every value.
    named = all(name for _i, name, _column in options)
    seen: dict[tuple[str, ...], int] = {}
    for row in group.rows:
        variant = row.variant
        values = [variant.get(column, "") for column in columns]
        if not (named and all(values)):
            _check_option_values(row, options, values, present)
        combo = tuple(map(str.casefold, values))
        if any(combo) and combo in seen:
            row.refuse(
                f"same options as line {seen[combo]}; each variant of a product needs its own "
                "option values"
            )
        seen.setdefault(combo, row.line)


def _check_option_values(
    row: _Row,
    options: list[tuple[int, str | None, str]],
    values: list[str],
    present: frozenset[str],
) -> None:
    """Refuse a value for an option the product does not name, and a blank for one it does."""
    for (i, name, column), value in zip(options, values, strict=True):
        if value and not name:
            row.refuse(f"{column} {value!r} has no option{i}_name (e.g. Color)")
        elif name and not value:
            row.refuse(
                f"{column} is blank, but the product's option{i}_name is {name!r}"
                if column in present
                else f"option{i}_name {name!r} is given but the file has no {column}"
            )


def _check_duplicate_skus(rows: list[_Row]) -> None:
    """Refuse every row whose SKU appears on another row once trimmed and ignoring case.
    Cost: one set of the keys when no SKU repeats (the usual file); the lines of each key
    only when some does."""
    keys = [row.key for row in rows if row.sku]
    if len(set(keys)) == len(keys):
        return
    lines: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.sku:
            lines[row.key].append(row.line)
    by_line = {row.line: row for row in rows}
    for same in lines.values():
        if len(same) < 2:
            continue
        for line in same:
            others = ", ".join(str(n) for n in same if n != line)
            by_line[line].refuse(
                f"the SKU {by_line[line].sku!r} is also on line {others} (SKUs are compared "
                "ignoring letter case and surrounding spaces)"
            )


# --- what the database already holds ---------------------------------------------------------


class _Brands:
    """Brands by name ignoring case; new ones are planned, created at write time."""

    def __init__(self) -> None:
        self.pks: dict[str, int] = {}
        for pk, name in Brand.objects.order_by("-pk").values_list("pk", "name"):
            self.pks[name.casefold()] = pk  # the oldest wins if two differ only in case
        self.new: dict[str, str] = {}

    def resolve(self, name: str) -> int | str:
        key = name.casefold()
        if key in self.pks:
            return self.pks[key]
        self.new.setdefault(key, name)
        return key

    def create(self) -> dict[str, int]:
        """Create the planned brands; their pks by key. One query."""
        made = Brand.objects.bulk_create([Brand(name=name) for name in self.new.values()])
        return {brand.name.casefold(): brand.pk for brand in made}


class _Categories:
    """Categories by name or path ('Apparel > Shirts'), ignoring case; new ones planned.

    A single name matches a top-level category of that name, else the only category anywhere
    with that name; several matches are refused as ambiguous. Loads every category once
    (categories are few).
    """

    def __init__(self) -> None:
        rows = list(Category.objects.values_list("pk", "name", "parent_id"))
        self.child = {(parent, name.casefold()): pk for pk, name, parent in rows}
        self.named: dict[str, list[int]] = defaultdict(list)
        for pk, name, _parent in rows:
            self.named[name.casefold()].append(pk)
        # Path key -> (display name, parent: existing pk, path key of a new one, or None).
        self.new: dict[tuple[str, ...], tuple[str, int | tuple[str, ...] | None]] = {}

    def resolve(self, path: tuple[str, ...]) -> int | tuple[str, ...]:
        folded = tuple(part.casefold() for part in path)
        if len(path) == 1 and (None, folded[0]) not in self.child:
            found = self.named.get(folded[0], [])
            if len(found) > 1:
                raise BadCell(
                    f"category {path[0]!r} matches {len(found)} categories; write its full path, "
                    "e.g. 'Apparel > Shirts'"
                )
            if found:
                return found[0]
        parent: int | tuple[str, ...] | None = None
        for depth, name in enumerate(path, 1):
            key = folded[:depth]
            pk = self.child.get((parent, key[-1])) if not isinstance(parent, tuple) else None
            if pk is None:
                self.new.setdefault(key, (name, parent))
                parent = key
            else:
                parent = pk
        assert parent is not None
        return parent

    def create(self) -> dict[tuple[str, ...], int]:
        """Create the planned categories, parents first; their pks by path key.
        One query per level of depth."""
        made: dict[tuple[str, ...], int] = {}
        for depth in sorted({len(key) for key in self.new}):
            level = [
                (key, name, parent) for key, (name, parent) in self.new.items() if len(key) == depth
            ]
            objs = [
                Category(name=name, parent_id=made[parent] if isinstance(parent, tuple) else parent)
                for _key, name, parent in level
            ]
            Category.objects.bulk_create(objs)
            made.update({key: obj.pk for (key, _n, _p), obj in zip(level, objs, strict=True)})
        return made


def _product_attnames(present: frozenset[str]) -> list[str]:
    return [attname for column, (attname, _blank) in _PRODUCT_FIELDS.items() if column in present]


def _load_products(groups: list[_Group], present: frozenset[str]) -> None:
    """Attach each group's existing product row. One query per chunk of handles."""
    fields = ["pk", "handle", *_product_attnames(present)]
    by_handle = {g.handle: g for g in groups}
    for queryset in matching_chunks(Product.objects.values(*fields), "handle", list(by_handle)):
        for values in queryset:
            by_handle[values["handle"]].existing = values


def _load_variants(rows: list[_Row]) -> dict[str, dict[str, Any]]:
    """Existing variants by normalised SKU, through the sku_key index. One query per chunk."""
    keys = sorted({row.key for row in rows if row.sku})
    found: dict[str, dict[str, Any]] = {}
    fields = ("pk", "sku", "sku_key", "product_id", "upc", "retail_price", "options")
    queryset = Variant.objects.values(*fields, "product__handle", "product__name")
    for chunk in matching_chunks(queryset, "sku_key", keys):
        found.update({values["sku_key"]: values for values in chunk})
    return found


def _load_images(groups: list[_Group]) -> dict[int, tuple[str, ...]]:
    """Current image addresses of the existing products, in order. One query per chunk."""
    pks = [g.existing["pk"] for g in groups if g.existing]
    urls: dict[int, list[str]] = defaultdict(list)
    queryset = ProductImage.objects.order_by("product_id", "position", "pk")
    for chunk in matching_chunks(queryset.values_list("product_id", "url"), "product_id", pks):
        for product_id, url in chunk:
            urls[product_id].append(url)
    return {pk: tuple(found) for pk, found in urls.items()}


def _check_sku_owners(groups: list[_Group], variants: Mapping[str, Mapping[str, Any]]) -> None:
    """A SKU already in the POS may only be updated through its own product's handle."""
    for group in groups:
        own = group.existing["pk"] if group.existing else None
        for row in group.rows:
            found = variants.get(row.key) if row.sku else None
            if found is None or found["product_id"] == own:
                continue
            owner = f"“{found['product__name']}”"
            if found["product__handle"]:
                advice = f"(handle {found['product__handle']!r}); a SKU belongs to one product"
            else:
                advice = (
                    f", which has no handle; give it the handle {group.handle!r} in the admin to "
                    "update it from a file"
                )
            row.refuse(f"the SKU {found['sku']!r} already belongs to the product {owner} {advice}")


def _resolve_references(groups: list[_Group], brands: _Brands, categories: _Categories) -> None:
    for group in groups:
        if "brand" in group.values:
            group.brand = brands.resolve(group.values["brand"])
        if "category" in group.values:
            try:
                group.category = categories.resolve(group.values["category"])
            except BadCell as exc:
                next(r for r in group.rows if r.line == group.lines["category"]).refuse(
                    str(exc), product=True
                )


# --- choosing the rows to write --------------------------------------------------------------


def _collect_errors(rows: list[_Row], groups: list[_Group]) -> list[RowError]:
    """Every refused row with its reasons; in a product with a refused product column, every
    row of that product is refused too, so no product is half-written."""
    for group in groups:
        if not group.bad:
            continue
        bad_lines = ", ".join(str(r.line) for r in group.rows if r.product_error)
        for row in group.rows:
            if not row.errors:
                row.errors.append(
                    f"not imported: line {bad_lines} of the same product "
                    f"(handle {group.handle!r}) has an error"
                )
    return [RowError(row.line, "; ".join(row.errors)) for row in rows if row.errors]


def _good_groups(groups: list[_Group]) -> list[_Group]:
    """The groups to write, each holding only its good rows."""
    kept = []
    for group in groups:
        if group.bad:
            continue
        group.rows = [row for row in group.rows if not row.errors]
        if group.rows:
            kept.append(group)
    return kept


# --- planning the writes ---------------------------------------------------------------------


@dataclass
class _Plan:
    new_products: list[tuple[_Group, dict[str, Any]]] = field(default_factory=list)
    changed_products: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    product_changes: dict[int, list[str]] = field(default_factory=dict)  # pk -> field names
    images: list[tuple[_Group, tuple[str, ...]]] = field(default_factory=list)
    new_variants: list[tuple[_Group, dict[str, Any]]] = field(default_factory=list)
    changed_variants: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    product_fields: list[str] = field(default_factory=list)
    variant_fields: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return (
            len(self.new_products)
            + len(self.changed_products)
            + len(self.new_variants)
            + len(self.changed_variants)
            + sum(len(urls) for _g, urls in self.images)
        )


def _product_values(group: _Group, present: frozenset[str]) -> dict[str, Any]:
    """The product's fields as the file sets them (by attname), for the columns it has."""
    values: dict[str, Any] = {}
    for column, (attname, blank) in _PRODUCT_FIELDS.items():
        if column not in present:
            continue
        value = group.values.get(column, blank)
        if column == "brand":
            value = group.brand
        elif column == "category":
            value = group.category
        elif column == "active" and value is None:
            value = group.existing[attname] if group.existing else True
        values[attname] = value
    return values


def _variant_attnames(present: frozenset[str]) -> list[str]:
    """The variant fields an import sets: the keys _variant_values fills."""
    names = ["sku", "retail_price"]
    if "upc" in present:
        names.append("upc")
    if present.intersection(_OPTION_VALUES):
        names.append("options")
    return names


def _variant_values(
    row: _Row, attnames: list[str], options: list[tuple[str, str]]
) -> dict[str, Any]:
    """`options`: (option name, value column) of the product's named options."""
    variant = row.variant
    values: dict[str, Any] = {"sku": row.sku, "retail_price": variant["retail_price"]}
    if "upc" in attnames:
        values["upc"] = variant.get("upc", "")
    if "options" in attnames:
        values["options"] = {name: variant[column] for name, column in options if column in variant}
    return values


def _changed(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    return [name for name, value in new.items() if old[name] != value]


def _plan(
    groups: list[_Group],
    variants: Mapping[str, Mapping[str, Any]],
    images: Mapping[int, tuple[str, ...]],
    present: frozenset[str],
    result: ImportResult,
) -> _Plan:
    """Decide what to create and update, and count rows as created, updated or unchanged.
    Cost: linear in rows; no queries."""
    plan = _Plan(
        product_fields=_product_attnames(present), variant_fields=_variant_attnames(present)
    )
    for group in groups:
        product_changed = _plan_product(plan, group, images, present)
        options = [
            (name, column)
            for name, column in zip(group.option_names(), _OPTION_VALUES, strict=True)
            if name
        ]
        for position, row in enumerate(group.rows):
            values = _variant_values(row, plan.variant_fields, options)
            found = variants.get(row.key)
            if found is None:
                values["position"] = position
                plan.new_variants.append((group, values))
                result.created += 1
                continue
            if changed := _changed(values, found):
                plan.changed_variants.append((found["pk"], values))
                plan.product_changes.setdefault(found["product_id"], []).append("variants")
            if changed or product_changed:
                result.updated += 1
            else:
                result.unchanged += 1
    return plan


def _plan_product(
    plan: _Plan, group: _Group, images: Mapping[int, tuple[str, ...]], present: frozenset[str]
) -> bool:
    """Plan the product's own writes; true if an existing product changes."""
    values = _product_values(group, present)
    urls = group.values.get("image_urls", ()) if "image_urls" in present else None
    if group.existing is None:
        plan.new_products.append((group, {"handle": group.handle, **values}))
        if urls:
            plan.images.append((group, urls))
        return False
    pk = group.product_id = group.existing["pk"]
    changed = [_field_name(attname) for attname in _changed(values, group.existing)]
    if changed:
        plan.changed_products.append((pk, values))
    if urls is not None and urls != images.get(pk, ()):
        plan.images.append((group, urls))
        changed.append("images")
    if changed:
        plan.product_changes[pk] = changed
    return bool(changed)


def _field_name(attname: str) -> str:
    return attname.removesuffix("_id") if attname in ("brand_id", "category_id") else attname


# --- writing (omni.bulk) ----------------------------------------------------------------------


def _write_catalog(
    plan: _Plan, brands: _Brands, categories: _Categories, progress: Progress
) -> None:
    """Write the plan (the caller holds the transaction), then announce changed products.

    Cost: a fixed number of queries per omni.bulk.CHUNK rows of each kind.
    """
    tick = progress.ticker("writing", plan.size)
    now = timezone.now()
    brand_pks, category_pks = brands.create(), categories.create()
    for values in itertools.chain(
        (v for _g, v in plan.new_products), (v for _pk, v in plan.changed_products)
    ):
        _resolve_fk(values, "brand_id", brand_pks)
        _resolve_fk(values, "category_id", category_pks)
    _write_products(plan, now, tick)
    _write_images(plan, now, tick)
    created = _write_variants(plan, now, tick)
    _announce(plan, created)


def _write_products(plan: _Plan, now: datetime, tick: Callable[[int], None]) -> None:
    for _group, values in plan.new_products:
        values["created_at"] = values["updated_at"] = now
    new_pks = copy_insert(Product, [values for _group, values in plan.new_products], tick)
    for (group, _values), pk in zip(plan.new_products, new_pks, strict=True):
        group.product_id = pk
    copy_update(Product, plan.product_fields, plan.changed_products, tick)


def _write_variants(
    plan: _Plan, now: datetime, tick: Callable[[int], None]
) -> dict[int, list[int]]:
    """Insert the new variants, update the changed ones. The pks of the new variants of
    products that existed before, by product (the ones product_saved announces): read back by
    product and SKU, since a new product's variants need no keys at all."""
    for group, values in plan.new_variants:
        values["product_id"] = group.product_id
        values["created_at"] = values["updated_at"] = now
    copy_insert(Variant, [values for _group, values in plan.new_variants], tick, keys=False)
    copy_update(Variant, plan.variant_fields, plan.changed_variants, tick)
    added = {(g.product_id, v["sku"]) for g, v in plan.new_variants if g.existing}
    created: dict[int, list[int]] = defaultdict(list)
    products = sorted({product_id for product_id, _sku in added})
    queryset = Variant.objects.order_by("pk").values_list("product_id", "sku", "pk")
    for chunk in matching_chunks(queryset, "product_id", products):
        for product_id, sku, pk in chunk:
            if (product_id, sku) in added:
                created[product_id].append(pk)
    return created


def _resolve_fk(values: dict[str, Any], attname: str, created: Mapping[Any, int]) -> None:
    if attname in values and values[attname] is not None and not isinstance(values[attname], int):
        values[attname] = created[values[attname]]


def _write_images(plan: _Plan, now: datetime, tick: Callable[[int], None]) -> None:
    """Replace the images of products whose image list changed. One DELETE per omni.bulk.CHUNK
    products."""
    replaced = [g.product_id for g, _urls in plan.images if g.existing]
    for chunk in chunks(replaced):
        ProductImage.objects.filter(product_id__in=chunk).delete()
    rows = [
        {
            "product_id": group.product_id,
            "url": url,
            "position": position,
            "created_at": now,
            "updated_at": now,
        }
        for group, urls in plan.images
        for position, url in enumerate(urls)
    ]
    copy_insert(ProductImage, rows, tick, keys=False)


def _announce(plan: _Plan, created: Mapping[int, list[int]]) -> None:
    """product_saved for products that existed before and changed (`created`: their new
    variants' pks); new products are not listed anywhere yet, so they are skipped.
    Cost: one call per changed existing product."""
    for product_id in sorted(plan.product_changes.keys() | created.keys()):
        product_saved(
            product=Product(pk=product_id),
            changed=sorted(set(plan.product_changes.get(product_id, []))),
            created_variant_ids=created.get(product_id, []),
        )


@collector_paused()  # builds several objects per row: see omni.bulk
def catalog_csv_import(
    *,
    stream: TextIO,
    partial: bool = False,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Create and update products and variants from a catalog CSV (see CATALOG_COLUMNS).

    One row per variant; rows sharing a handle are one product. A SKU that exists (compared
    trimmed, ignoring case) updates its variant; a handle that exists updates its product;
    brands and categories are created by name as needed. Columns the file lacks are left as
    they are; a blank cell in a column the file has clears that field (blank `active` keeps it),
    except that a product's blank cell takes the value of another row of the same product.
    Nothing is deleted: variants missing from the file stay.

    Every row is checked first. With bad rows and not `partial`, nothing is written. With
    `dry_run`, nothing is written and the counts say what would be.
    Raises ImportFileError when the file cannot be read as a catalog CSV at all, or when some
    row of it cannot be read as CSV (then listing that row and every other bad row).
    Cost: about one query per omni.bulk.CHUNK rows to look up what exists, the same to write;
    the whole file is held in memory.
    """
    progress = Progress(on_progress)
    table = read_csv(stream, columns=CATALOG_COLUMNS, aliases={}, progress=progress)
    present = frozenset(table.columns)
    rows = _parse_catalog_rows(table, progress)
    groups = _group_rows(rows)
    for group in groups:
        _merge_product(group)
        _check_options(group, present)
    _check_duplicate_skus(rows)
    variants = _load_variants(rows)
    _load_products(groups, present)
    _check_sku_owners(groups, variants)
    brands, categories = _Brands(), _Categories()
    _resolve_references(groups, brands, categories)
    result = ImportResult(rows=len(rows), dry_run=dry_run)
    result.errors = _collect_errors(rows, groups)
    table.refuse_if_unreadable(result.errors)
    if result.errors and not partial:
        return result
    groups = _good_groups(groups)
    images = _load_images(groups) if "image_urls" in present else {}
    plan = _plan(groups, variants, images, present, result)
    result.other = {
        "products created": len(plan.new_products),
        "products updated": len(plan.product_changes),
        "brands created": len(brands.new),
        "categories created": len(categories.new),
    }
    if dry_run:
        return result
    try:
        with transaction.atomic():
            _write_catalog(plan, brands, categories, progress)
    except IntegrityError as exc:
        raise ImportFileError(
            "The catalog changed while the file was being imported (a SKU, handle or brand was "
            f"added at the same time). Nothing was written; import the file again. ({exc})"
        ) from exc
    result.written = True
    return result
