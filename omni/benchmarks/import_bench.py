"""`bench import`: the catalog CSV import, then one stock CSV import per outlet.

The files are generated in memory and go through the same services as the admin and the
commands (catalog.imports), parsing included. The run creates its own outlets (bench-1…) and
products (handles starting with HANDLE_PREFIX) and removes them afterwards unless --keep.

Each import is judged against its floor, measured in the same run right after it: the rows
that import wrote (products, variants and images; stock and ledger rows), read back untimed and
written again with COPY, as the Python values a writer holding them would send, into plain
tables of the same shape (FLOOR_PREFIX + the table's name: the same columns, types and
defaults, the SKU key still computed by the server, but no constraints and no indexes), in one
transaction committed as the import's is; FLOOR_TRIES times, the fastest being the floor.
They are ordinary logged tables, not TEMP or UNLOGGED ones: the import's rows must survive a
crash, so writing them to the WAL and flushing it at commit is work no import can avoid, and
a floor without it would count it as overhead. What the floor leaves out is what the import
adds: reading and checking the file, the lookups, choosing what to write, the constraints,
foreign keys and indexes of the real tables, and the stock_changed signal.
`import ÷ floor` shows how close to the bare writes the import came.

Beside it, the schema floor: the same rows written the same way into copies of the real tables
with their indexes, constraints and foreign keys (SCHEMA_PREFIX + the table's name; a key to a
table the same import writes points at that table's copy, any other at the real table), checked
before the commit as the import's are at its commit. It is what the schema alone costs,
whatever the import's code does: `import ÷ schema` is the part of the import's time that is
its own (reading, checking, looking up, deciding), and `schema ÷ floor` the part the schema
asks for.
"""

import argparse
import csv
import io
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.management.base import CommandError
from django.db import connection, models, transaction

from catalog.imports import ImportResult, catalog_csv_import, stock_csv_import
from catalog.models import (
    Brand,
    Category,
    Outlet,
    Product,
    ProductImage,
    Stock,
    StockMovement,
    Variant,
)
from omni.actors import Actor
from omni.benchmarks import Phase, Report, positive_int, tidy_tables

HANDLE_PREFIX = "omni-bench-import-"
OUTLET_PREFIX = "bench-"
# Exactly bench-1, bench-2…: other benchmarks' outlets must never match.
OUTLET_CODES = r"^bench-[0-9]+$"
# The floors' tables: FLOOR_PREFIX or SCHEMA_PREFIX + the real table's name (see the module's
# docstring), in the groups one import writes together.
FLOOR_PREFIX = "bench_floor_"
SCHEMA_PREFIX = "bench_schema_"
FLOOR_GROUPS = ((Product, ProductImage, Variant), (Stock, StockMovement))
FLOOR_MODELS = tuple(model for group in FLOOR_GROUPS for model in group)
FLOOR_TRIES = 3

ADJECTIVES = (
    "Classic", "Everyday", "Relaxed", "Slim", "Heritage", "Coastal", "Urban", "Essential",
    "Vintage", "Lightweight", "Organic", "Performance", "Garment-dyed", "Brushed",
)  # fmt: skip
MATERIALS = (
    "Linen", "Cotton", "Merino", "Denim", "Canvas", "Bamboo", "Flannel", "Oxford", "Jersey",
    "Corduroy", "Fleece", "Twill",
)  # fmt: skip
ITEMS = (
    ("Tee", "Apparel > Tops"), ("Shirt", "Apparel > Tops"), ("Polo", "Apparel > Tops"),
    ("Hoodie", "Apparel > Outerwear"), ("Jacket", "Apparel > Outerwear"),
    ("Chinos", "Apparel > Bottoms"), ("Shorts", "Apparel > Bottoms"),
    ("Cap", "Accessories > Headwear"), ("Beanie", "Accessories > Headwear"),
    ("Tote Bag", "Accessories > Bags"), ("Socks", "Apparel > Basics"),
)  # fmt: skip
BRANDS = (
    "Kestrel", "Tidewater", "Northwind Supply", "Oakhollow", "Larkspur", "Saltmarsh",
    "Ironbark", "Bluebell & Co",
)  # fmt: skip
COLORS = ("Black", "White", "Navy", "Sand", "Olive", "Rust", "Grey", "Sky")
SIZES = ("S", "M", "L", "XL")
CATALOG_HEADER = (
    "handle", "name", "sku", "upc", "retail_price", "option1_name", "option1_value",
    "option2_name", "option2_value", "brand", "category", "description", "weight_kg",
    "active", "image_urls", "supplier", "supplier_code", "supplier_price", "reorder_point",
    "tax_rate", "tags",
)  # fmt: skip


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "import",
        help="CSV import of the catalog, then of stock levels per outlet.",
        description=__doc__,
    )
    parser.add_argument(
        "--variants", type=positive_int, default=100_000, help="Catalog rows (default 100000)."
    )
    parser.add_argument(
        "--outlets", type=positive_int, default=3, help="Stock files, one per outlet (default 3)."
    )
    parser.add_argument(
        "--keep", action="store_true", help="Leave the imported data in place afterwards."
    )
    parser.add_argument(
        "--clean", action="store_true", help="Only remove what an earlier --keep run left."
    )
    parser.add_argument(
        "--reimport",
        action="store_true",
        help="Also time importing the same catalog again (every row unchanged).",
    )
    parser.add_argument("--seed", type=int, default=1, help="Random seed for the generated data.")
    parser.set_defaults(run=run)


def run(options: dict[str, Any], report: Report) -> None:
    floors = connection.vendor == "postgresql"  # COPY and LIKE are PostgreSQL's
    if options["clean"]:
        with report.phase("clean up", counted=False):
            _cleanup(created_after=None)
            if floors:
                _floor_tables_drop()
                _vacuum()
        return
    _refuse_leftovers()
    report.line(f"load average at start: {_load()}")
    if not floors:
        report.line("no floor: it is measured with COPY, which needs PostgreSQL")
    created_after = (
        Brand.objects.aggregate(m=models.Max("pk"))["m"] or 0,
        Category.objects.aggregate(m=models.Max("pk"))["m"] or 0,
    )
    codes = [f"{OUTLET_PREFIX}{n}" for n in range(1, options["outlets"] + 1)]
    Outlet.objects.bulk_create([Outlet(code=code, name=f"Bench {code}") for code in codes])
    if floors:
        _floor_tables_create()
    try:
        _measure(options, report, codes, floors=floors)
    finally:
        if floors:
            _floor_tables_drop()
        if not options["keep"]:
            with report.phase("clean up", counted=False):
                _cleanup(created_after=created_after)
                if floors:
                    _vacuum()
    report.line(f"load average at end: {_load()}")


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


@dataclass(frozen=True, slots=True)
class _Judged:
    """One import's phase, its floor's and its schema floor's (None: it wrote no rows, or the
    floors cannot be measured on this database)."""

    phase: Phase
    floor: Phase | None
    schema: Phase | None


def _measure(options: dict[str, Any], report: Report, codes: list[str], *, floors: bool) -> None:
    rng = random.Random(options["seed"])
    judged: list[_Judged] = []

    def judge(phase: Phase, written: Callable[[], list[_Rows]]) -> None:
        if not floors:
            judged.append(_Judged(phase, None, None))
            return
        rows = written()
        judged.append(_Judged(phase, _floor(report, rows), _floor(report, rows, schema=True)))

    with report.phase("generate catalog CSV", counted=False) as phase:
        catalog = _catalog_csv(options["variants"], rng)
        phase.rows = options["variants"]
    with report.phase("import catalog") as phase:
        phase.rows = _checked(catalog_csv_import(stream=io.StringIO(catalog, newline=""))).rows
    judge(phase, _catalog_written)
    skus = list(
        Variant.objects.filter(product__handle__startswith=HANDLE_PREFIX).values_list(
            "sku", flat=True
        )
    )
    for code in codes:
        with report.phase(f"generate stock CSV {code}", counted=False):
            levels = _stock_csv(skus, rng)
        with report.phase(f"import stock {code}") as phase:
            result = stock_csv_import(
                stream=io.StringIO(levels, newline=""),
                outlet_code=code,
                reference=f"{code}.csv",
                actor=Actor(label="bench"),
            )
            phase.rows = _checked(result).rows
        judge(phase, partial(_stock_written, code))
    if options["reimport"]:
        with report.phase("import catalog again") as phase:
            phase.rows = _checked(catalog_csv_import(stream=io.StringIO(catalog, newline=""))).rows
        judged.append(_Judged(phase, None, None))  # every row unchanged: nothing written
    report.total()
    if floors:
        _print_ratios(report, judged)


# --- the floor ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rows:
    """Rows an import wrote, as read back from one table: its insert columns, in order."""

    model: type[models.Model]
    columns: list[str]
    values: list[tuple[Any, ...]]


def _floor_table(model: type[models.Model], *, schema: bool = False) -> str:
    prefix = SCHEMA_PREFIX if schema else FLOOR_PREFIX
    return connection.ops.quote_name(prefix + model._meta.db_table)


def _floor_tables_create() -> None:
    """The floors' tables. The floor's: each real table's columns, types and defaults, and its
    generated columns still computed by the server (the variants' SKU key), but no constraints,
    indexes or identity. The schema floor's: all of the real table (LIKE … INCLUDING ALL) and
    its foreign keys, pointed at the copy of a table of the same group. Ordinary tables, so
    their rows go to the WAL as the real ones do."""
    quote = connection.ops.quote_name
    _floor_tables_drop()  # left by a run that was killed
    with connection.cursor() as cursor:
        for group in FLOOR_GROUPS:
            copied = {model._meta.db_table: _floor_table(model, schema=True) for model in group}
            for model in group:
                real = quote(model._meta.db_table)
                cursor.execute(
                    f"CREATE TABLE {_floor_table(model)} "
                    f"(LIKE {real} INCLUDING DEFAULTS INCLUDING GENERATED)"
                )
                cursor.execute(
                    f"CREATE TABLE {_floor_table(model, schema=True)} (LIKE {real} INCLUDING ALL)"
                )
            for model in group:
                for target, definition in _foreign_keys(cursor, model._meta.db_table):
                    if target in copied:
                        definition = definition.replace(
                            f"REFERENCES {quote(target)}(", f"REFERENCES {copied[target]}(", 1
                        ).replace(f"REFERENCES {target}(", f"REFERENCES {copied[target]}(", 1)
                    cursor.execute(
                        f"ALTER TABLE {_floor_table(model, schema=True)} ADD {definition}"
                    )


def _foreign_keys(cursor: Any, table: str) -> list[tuple[str, str]]:
    """(referenced table, definition) of each foreign key of `table`, as PostgreSQL writes it."""
    cursor.execute(
        "SELECT confrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [connection.ops.quote_name(table)],
    )
    return [(target.strip('"'), definition) for target, definition in cursor.fetchall()]


def _floor_tables_drop() -> None:
    with connection.cursor() as cursor:
        for schema in (True, False):  # the schema floor's first: their keys point at each other
            tables = ", ".join(_floor_table(m, schema=schema) for m in FLOOR_MODELS)
            cursor.execute(f"DROP TABLE IF EXISTS {tables}")


def _written(model: type[models.Model], where: str, params: Sequence[Any]) -> _Rows:
    """The rows of `model` matching `where` (SQL on the table's columns), every column the
    import wrote: the generated ones are left to the server, as they are by the import. JSON is
    read as its text, which is what the import sends too."""
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.generated]
    selected = ", ".join(
        f"{quote(f.column)}::text" if isinstance(f, models.JSONField) else quote(f.column)
        for f in fields
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {selected} FROM {quote(model._meta.db_table)} WHERE {where}", params
        )
        values = cursor.fetchall()
    return _Rows(model, [quote(f.column) for f in fields], values)


def _catalog_written() -> list[_Rows]:
    products = "handle LIKE %s"
    table = connection.ops.quote_name(Product._meta.db_table)
    of_products = f"product_id IN (SELECT id FROM {table} WHERE {products})"
    prefix = [f"{HANDLE_PREFIX}%"]
    return [
        _written(Product, products, prefix),
        _written(ProductImage, of_products, prefix),
        _written(Variant, of_products, prefix),
    ]


def _stock_written(code: str) -> list[_Rows]:
    table = connection.ops.quote_name(Outlet._meta.db_table)
    of_outlet = f"outlet_id = (SELECT id FROM {table} WHERE code = %s)"
    return [_written(Stock, of_outlet, [code]), _written(StockMovement, of_outlet, [code])]


def _floor(report: Report, written: list[_Rows], *, schema: bool = False) -> Phase | None:
    """Time writing `written` into the floor's tables (with `schema`, the schema floor's) with
    COPY, in one transaction (committed unless a caller holds one; deferred keys are checked
    before it ends either way), FLOOR_TRIES times, emptying them after each (untimed); the
    fastest try is the floor, since noise from other work on the machine only ever adds."""
    rows = sum(len(table.values) for table in written)
    if not rows:
        return None
    name = "  its schema floor: full tables" if schema else "  its floor: COPY, plain tables"
    tables = [_floor_table(table.model, schema=schema) for table in written]
    tries = []
    for _ in range(FLOOR_TRIES):
        phase = Phase(name, rows, counted=False)
        start, start_cpu = time.perf_counter(), time.process_time()
        with transaction.atomic(), connection.cursor() as cursor:
            for table, name_of in zip(written, tables, strict=True):
                sql = f"COPY {name_of} ({', '.join(table.columns)}) FROM STDIN"
                with cursor.cursor.copy(sql) as copy:
                    for values in table.values:
                        copy.write_row(values)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred key checks, now
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        phase.seconds = time.perf_counter() - start
        phase.cpu = time.process_time() - start_cpu
        tries.append(phase)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
    best = min(tries, key=lambda phase: phase.seconds)
    report.line(
        f"{best.name:<30} {best.seconds:>7.2f} s (cpu {best.cpu:6.2f} s)  {rows:>9,} rows  "
        f"{rows / best.seconds:>9,.0f} rows/s  (best of {FLOOR_TRIES}; not in the total)"
    )
    return best


def _print_ratios(report: Report, judged: list[_Judged]) -> None:
    report.line(
        f"{'import ÷ floors':<30} {'import':>9} {'floor':>9} {'ratio':>8}  "
        f"{'schema':>9} {'import ÷':>8} {'schema ÷':>8}"
    )
    report.line(f"{'':<61}{'floor':>9} {'schema':>8} {'floor':>8}")
    totals = [0.0, 0.0, 0.0]
    for entry in judged:
        if entry.floor is None or entry.schema is None:
            report.line(
                f"  {entry.phase.name:<28} {entry.phase.seconds:>7.2f} s   (no rows written)"
            )
            continue
        seconds = (entry.phase.seconds, entry.floor.seconds, entry.schema.seconds)
        report.line(_ratio_line(entry.phase.name, *seconds))
        totals = [total + part for total, part in zip(totals, seconds, strict=True)]
    if totals[1]:
        report.line(_ratio_line("total (phases with a floor)", *totals))


def _ratio_line(name: str, seconds: float, floor: float, schema: float) -> str:
    def ratio(over: float, under: float) -> str:
        return f"{over / under:>7.1f}×" if under else "       –"

    return (
        f"  {name:<28} {seconds:>7.2f} s {floor:>7.2f} s {ratio(seconds, floor)}  "
        f"{schema:>7.2f} s {ratio(seconds, schema)} {ratio(schema, floor)}"
    )


def _checked(result: ImportResult) -> ImportResult:
    if result.errors:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in result.errors[:5])
        raise CommandError(
            f"The generated file was refused ({len(result.errors)} bad rows): {shown}"
        )
    return result


def _catalog_rows(variants: int, rng: random.Random) -> Iterator[list[str]]:
    """About four variants per product: four sizes of one colour, or two colours in two sizes."""
    made = 0
    product = 0
    while made < variants:
        product += 1
        adjective, material = rng.choice(ADJECTIVES), rng.choice(MATERIALS)
        item, category = rng.choice(ITEMS)
        name = f"{adjective} {material} {item}"
        handle = f"{HANDLE_PREFIX}{product:06d}"
        price = Decimal(rng.randrange(990, 24900)) / 100
        common = {
            "brand": rng.choice(BRANDS),
            "category": category,
            "description": f"{name}, cut for everyday wear.",
            "weight_kg": f"{rng.randrange(80, 1500) / 1000:.3f}",
            "active": "yes",
            "image_urls": f"https://images.example.com/bench/{handle}.jpg",
            "supplier": "PT Sumber Kain",
            "supplier_code": f"SK-{product:06d}",
            "supplier_price": f"{price * Decimal('0.45'):.2f}",
            "reorder_point": str(rng.randrange(2, 12)),
            "tax_rate": "11",
            "tags": f"{material.lower()},{item.lower()}",
        }
        for colour, size in _variant_options(rng)[: variants - made]:
            made += 1
            yield [
                handle, name, f"BN{product:06d}-{colour[:3].upper()}-{size}",
                f"{899_000_000_000 + made}", f"{price:.2f}", "Color", colour, "Size", size,
                *(common[column] for column in CATALOG_HEADER[9:]),
            ]  # fmt: skip


def _variant_options(rng: random.Random) -> list[tuple[str, str]]:
    if rng.random() < 0.5:
        colour = rng.choice(COLORS)
        return [(colour, size) for size in SIZES]
    colours = rng.sample(COLORS, 2)
    sizes = rng.sample(SIZES, 2)
    return [(colour, size) for colour in colours for size in sizes]


def _catalog_csv(variants: int, rng: random.Random) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CATALOG_HEADER)
    writer.writerows(_catalog_rows(variants, rng))
    return out.getvalue()


def _stock_csv(skus: list[str], rng: random.Random) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("sku", "quantity"))
    writer.writerows((sku, rng.randrange(0, 40)) for sku in skus)
    return out.getvalue()


def _refuse_leftovers() -> None:
    if (
        Outlet.objects.filter(code__regex=OUTLET_CODES).exists()
        or Product.objects.filter(handle__startswith=HANDLE_PREFIX).exists()
    ):
        raise CommandError(
            f"Data of an earlier run is still there (outlets {OUTLET_PREFIX}…, products "
            f"{HANDLE_PREFIX}…). Remove it with `manage.py bench import --clean`."
        )


@transaction.atomic
def _cleanup(*, created_after: tuple[int, int] | None) -> None:
    """Remove the run's rows with plain DELETEs, children first; no rows are loaded.

    Brands and categories go only when named as this benchmark names them, unused, and newer
    than `created_after` (the highest brand and category pks before the run); with None (the
    --clean of an earlier run) they stay, since they might be someone's own.
    Rows of other apps that point at the removed rows are handled by their on_delete rule.
    """
    outlets = Outlet.objects.filter(code__regex=OUTLET_CODES)
    products = Product.objects.filter(handle__startswith=HANDLE_PREFIX)
    variants = Variant.objects.filter(product__in=products)
    movements = StockMovement.objects.filter(
        models.Q(outlet__in=outlets) | models.Q(variant__in=variants)
    )
    stocks = Stock.objects.filter(models.Q(outlet__in=outlets) | models.Q(variant__in=variants))
    images = ProductImage.objects.filter(product__in=products)
    tables = set(connection.introspection.table_names())
    for queryset in (movements, stocks, images, variants, products, outlets):
        _release_references(queryset, tables)
        queryset._raw_delete(queryset.db)
    if created_after is not None:
        brands_after, categories_after = created_after
        Brand.objects.filter(name__in=BRANDS, products__isnull=True, pk__gt=brands_after).delete()
        _delete_unused_categories(categories_after)


def _vacuum() -> None:
    """Vacuum the tables the run filled and emptied (omni.benchmarks.tidy_tables): otherwise
    the next run's inserts and lookups wade through this run's dead rows, and each run is
    slower than the last where autovacuum is off or behind."""
    filled = (Product, ProductImage, Variant, Stock, StockMovement, Outlet)
    tidy_tables([model._meta.db_table for model in filled], vacuum=True)


def _release_references(queryset: models.QuerySet[Any], tables: set[str]) -> None:
    """Apply on_delete for rows of models outside the catalog that point at `queryset`'s rows.

    Models whose table does not exist (an app not migrated yet) hold no such rows.
    """
    catalog = {Outlet, Product, ProductImage, Variant, Stock, StockMovement}
    for relation in queryset.model._meta.related_objects:
        model = relation.related_model
        if model in catalog or model._meta.db_table not in tables or not relation.field.concrete:
            continue
        pointing = model._base_manager.filter(**{f"{relation.field.name}__in": queryset})
        if relation.on_delete is models.CASCADE:
            pointing.delete()
        elif relation.on_delete is models.SET_NULL:
            pointing.update(**{relation.field.name: None})
        elif pointing.exists():
            raise CommandError(
                f"{model._meta.label} rows point at benchmark data and block its removal; "
                "remove them first."
            )


def _delete_unused_categories(after: int) -> None:
    """Leaves first, until none of the benchmark's unused categories newer than `after` is left."""
    names = {part.strip() for _item, path in ITEMS for part in path.split(">")}
    unused = Category.objects.filter(
        name__in=names, pk__gt=after, products__isnull=True, children__isnull=True
    )
    while unused.delete()[0]:
        pass
