"""CSV imports: products with their variants, and inventory levels.

Both imports read a text stream (an upload, a file on disk, a StringIO), so the admin, the
management commands, the benchmark and the tests share one code path. Both check every row
before writing anything and report bad rows by their line in the file. By default a file with a
bad row writes nothing; with `partial=True` the good rows are written and the bad ones reported.
A row that csv cannot read (a quote never closed) refuses the whole file even then, because the
rows after it may belong to it; reading goes on from its next line, so the refusal still lists
every other bad row.

Writes are in bulk: a fixed number of queries per few thousand rows, never one per row. On
PostgreSQL new rows go in through COPY and updates through a temporary table, because Django's
bulk_create/bulk_update spend most of their time preparing each value in Python.
"""

import csv
import io
import itertools
import json
import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any, NamedTuple, TextIO

from django.core.validators import URLValidator
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from catalog.exceptions import CatalogError, UnknownOutlet
from catalog.models import (
    Brand,
    Category,
    Outlet,
    Product,
    ProductImage,
    Stock,
    Variant,
)
from catalog.selectors import variant_ids_by_sku_key
from catalog.services import Actor, MovementRecord, product_saved, stock_import_levels
from omni.bulk import collector_paused

# Keys looked up and rows written per query. Well under PostgreSQL's and SQLite's limits on
# query parameters, large enough that 100,000 rows take a few dozen round trips.
CHUNK = 5000
# Rows csv cannot read before the rest of the file is no longer checked: past a few, the file
# is not CSV of this shape, and each such row costs a read of the rest of the file.
MAX_UNREADABLE = 20
# Rows per stock_import_levels call: each call is one savepoint, one ledger insert and one
# stock_changed signal for those rows.
STOCK_CHUNK = 50_000
# The largest value of an IntegerField on every supported database.
MAX_INT = 2_147_483_647


class RowError(NamedTuple):
    line: int
    reason: str


class ImportFileError(CatalogError):
    """The file as a whole cannot be imported: not CSV, no header, unknown or missing columns.

    `errors` lists, by line, the rows found bad when the file could still be checked row by
    row (a row csv cannot read, such as a quote that is never closed, and the other bad rows),
    so staff can fix everything at once; it is empty otherwise.
    """

    def __init__(self, message: str, *, errors: Sequence[RowError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


ProgressCallback = Callable[[str, int, int], None]
"""Called as `(stage, done, total)` once per chunk; `total` is 0 while it is not known."""


@dataclass
class ImportResult:
    """What an import did (or, with `dry_run`, would do) with the file's good rows.

    `created`, `updated` and `unchanged` count rows of the file; `other` holds further counts
    (products created, brands created…) keyed by a label staff can read. `written` is true only
    when the good rows were committed.
    """

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False
    dry_run: bool = False
    other: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    help: str
    required: bool = False


def text_stream(binary: IO[bytes]) -> TextIO:
    """Wrap an uploaded or opened binary file for the imports: UTF-8, with or without a BOM.

    Bytes that are not UTF-8 surface from the import as an ImportFileError.
    """
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]


# --- reading CSV -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Record:
    line: int
    values: list[str]  # stripped cells, one per column of the table, "" when blank
    problem: str = ""


@dataclass(slots=True)
class _Table:
    columns: tuple[str, ...]  # the known columns the header names, in file order
    records: list[_Record]
    unreadable: list[RowError] = field(default_factory=list)  # rows csv cannot read

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.columns)}

    def refuse_if_unreadable(self, errors: list[RowError]) -> None:
        """Raise ImportFileError when some row could not be read as CSV, listing those rows
        and `errors` (the other bad rows) by line: the rows after a broken quote may belong
        to it, so nothing of such a file is written, even with `partial`."""
        if not self.unreadable:
            return
        lines = [e.line for e in self.unreadable]
        where = f"Line {lines[0]}" if len(lines) == 1 else f"Lines {', '.join(map(str, lines))}"
        raise ImportFileError(
            f"{where} cannot be read as CSV (is a closing quote missing?), so nothing was "
            "written, not even the good rows: the lines after a broken quote may belong to it. "
            f"The other lines were checked on their own: {len(errors)} bad row(s).",
            errors=sorted([*self.unreadable, *errors]),
        )


class _Progress:
    """Forwards progress to an optional callback, at most once per CHUNK units."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback

    def report(self, stage: str, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(stage, done, total)

    def ticker(self, stage: str, total: int) -> Callable[[int], None]:
        done = 0
        self.report(stage, 0, total)

        def tick(count: int) -> None:
            nonlocal done
            done += count
            self.report(stage, done, total)

        return tick


def _header_name(raw: str) -> str:
    """'Retail Price' and 'retail-price' name the column retail_price."""
    return re.sub(r"[\s-]+", "_", raw.strip().lstrip("\ufeff").strip().lower())


def _read_csv(
    stream: TextIO,
    *,
    columns: Sequence[Column],
    aliases: Mapping[str, str],
    progress: _Progress,
) -> _Table:
    """Read the whole file: the known columns it names and its non-blank rows with line numbers.

    Accepts a BOM, Windows line endings, blank lines, and `,`, `;` or tab as the delimiter
    (taken from the header line). Raises ImportFileError when the file is empty, is not text,
    is not CSV, or its header names unknown columns or lacks required ones. A later row that
    csv cannot read goes to the table's `unreadable`, and reading goes on from its next line.
    Cost: one pass over the file (plus one over the rest of it per unreadable row); every row
    is held in memory.
    """
    reading = None
    try:
        first, skipped = _first_line(stream)
        if "\0" in first:
            raise ImportFileError(
                "The file is not CSV text (it holds binary data): is it a spreadsheet (.xlsx)? "
                "Save it as CSV and try again."
            )
        delimiter = max((",", ";", "\t"), key=first.count)
        reading = _Reading(itertools.chain([first], stream), delimiter, offset=skipped)
        header = [_header_name(cell) for cell in next(reading.reader)]
        names = _check_header(header, columns, aliases)
        table = _Table(columns=tuple(n for n in names if n), records=[])
        _read_rows(reading, names, table, progress)
    except UnicodeDecodeError as exc:
        where = f" after line {reading.line}" if reading is not None else ""
        raise ImportFileError(
            f"The file is not UTF-8 text (an unreadable byte{where}, "
            f"{exc.object[exc.start : exc.start + 1]!r}). Save it as “CSV UTF-8” and try again."
        ) from None
    except csv.Error as exc:  # in the header line: there are no columns to check rows by
        raise ImportFileError(
            f"The file cannot be read as CSV at the start: {exc} (is a closing quote missing?)."
        ) from None
    return table


def _first_line(stream: TextIO) -> tuple[str, int]:
    """The header line, and how many blank lines came before it."""
    for skipped, line in enumerate(iter(stream.readline, "")):
        if line.strip().lstrip("\ufeff").strip():
            return line, skipped
    raise ImportFileError("The file is empty: the first line should name the columns.")


def _check_header(
    header: list[str], columns: Sequence[Column], aliases: Mapping[str, str]
) -> list[str]:
    """The canonical column name of each header cell ('' for cells with no name)."""
    known = {c.name for c in columns}
    names = [aliases.get(name, name) for name in header]
    unknown = [raw for raw, name in zip(header, names, strict=True) if name and name not in known]
    if unknown:
        start = "The first line should name the columns" if len(unknown) == len(header) else ""
        listed = ", ".join(repr(u) for u in unknown)
        raise ImportFileError(
            (f"{start}; " if start else "")
            + f"unknown column(s): {listed}. The columns this import knows are: "
            + ", ".join(c.name for c in columns)
            + "."
        )
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise ImportFileError(
            f"The header names these columns more than once: {', '.join(repeated)}."
        )
    missing = [c.name for c in columns if c.required and c.name not in names]
    if missing:
        raise ImportFileError(f"The file has no {', '.join(missing)} column (required).")
    return names


class _Reading:
    """csv.reader over the file's lines, with the lines it read since the last `forget()` kept
    (by itertools.tee, at no cost per line in Python), so that after a row csv cannot read,
    reading can start again on that row's next line.

    `offset` is the number of file lines before the reader's first line.
    """

    def __init__(self, lines: Iterator[str], delimiter: str, *, offset: int) -> None:
        self.delimiter, self.offset = delimiter, offset
        self._start(lines)

    def _start(self, lines: Iterator[str]) -> None:
        ahead, self.behind = itertools.tee(lines)
        self.behind_at = 0  # the reader's lines that `behind` has passed
        self.reader = csv.reader(ahead, delimiter=self.delimiter, strict=True)

    @property
    def line(self) -> int:
        """The file's line number of the last line read."""
        return self.reader.line_num + self.offset

    def forget(self) -> None:
        """Drop the lines kept so far: call between rows only."""
        self._skip(self.reader.line_num - self.behind_at)

    def restart_after(self, line: int) -> None:
        """Read on from the file line after `line`."""
        self._skip(line - self.offset - self.behind_at)
        self.offset = line
        self._start(self.behind)

    def _skip(self, count: int) -> None:
        next(itertools.islice(self.behind, count, count), None)
        self.behind_at += count


class _Unreadable(Exception):
    """csv cannot read the row starting on file line `start`; it failed on line `at`."""

    def __init__(self, start: int, at: int, error: csv.Error) -> None:
        super().__init__(str(error))
        self.start, self.at = start, at

    @property
    def reason(self) -> str:
        message = str(self)
        if "end of data" in message or "field limit" in message:
            return (
                "a quote opens in this row and is never closed, so the rest of the file would be "
                'one cell: close it, or double a quote that belongs in the text ("")'
            )
        if self.at == self.start:
            return (
                f"cannot be read as CSV ({message}): a quote inside a quoted cell must be "
                'doubled ("")'
            )
        return (
            f"cannot be read as CSV: a quote opens in this row and closes only on line "
            f"{self.at}, followed by more text ({message}); is a closing quote missing?"
        )


def _read_rows(reading: _Reading, names: list[str], table: _Table, progress: _Progress) -> None:
    """Every row after the header into `table`: the rows csv reads as records, the rows it
    cannot read (a quote never closed, text after a closing quote) as `unreadable`, reading
    on from the line after each. Past MAX_UNREADABLE of those, the rest is not read."""
    while True:
        try:
            table.records.extend(_records(reading, names, progress))
            return
        except _Unreadable as exc:
            table.unreadable.append(RowError(exc.start, exc.reason))
            start = exc.start
        if len(table.unreadable) == MAX_UNREADABLE:
            reason = "not checked, nor any line after it: too many rows cannot be read as CSV"
            table.unreadable.append(RowError(start + 1, reason))
            return
        reading.restart_after(start)


def _records(reading: _Reading, names: list[str], progress: _Progress) -> Iterator[_Record]:
    """Non-blank rows as their named cells, stripped, with the line each row starts on.
    Raises _Unreadable for a row csv cannot read."""
    reader = reading.reader
    width = len(names)
    named = [i for i, name in enumerate(names) if name]
    unnamed = [i for i, name in enumerate(names) if not name]
    pick = operator.itemgetter(*named) if len(named) > 1 else lambda cells: (cells[named[0]],)
    offset = reading.offset
    last_line = reader.line_num
    count = 0
    try:
        for cells in reader:
            line = last_line + 1 + offset
            last_line = reader.line_num
            if not "".join(cells).strip():
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            record = _Record(line, list(map(str.strip, pick(cells))))
            if (len(cells) > width and "".join(cells[width:]).strip()) or (
                unnamed and any(cells[i].strip() for i in unnamed)
            ):
                record.problem = "has a value in a column that has no name in the header row"
            yield record
            count += 1
            if count % CHUNK == 0:
                reading.forget()
                progress.report("reading", count, 0)
    except csv.Error as exc:
        raise _Unreadable(last_line + 1 + offset, reader.line_num + offset, exc) from None


# --- cell parsers ----------------------------------------------------------------------------


class _Bad(ValueError):
    """A cell's value is refused; the message is shown to staff as it is."""


Parser = Callable[[str, str], Any]

_HANDLE = re.compile(r"[-a-zA-Z0-9_]+")
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_EXCEL_NUMBER = re.compile(r"\d+(?:\.\d+)?[eE]\+?\d+")
_URL_SEPARATORS = re.compile(r"[\s|;]+|,(?=\s*https?://)")
# URLValidator's own pattern, compiled once: the validator itself goes through a lazy object
# on every call, which costs more than the match.
_URL = re.compile(URLValidator.regex.pattern, URLValidator.regex.flags)
_TRUE = frozenset({"yes", "true", "1"})
_FALSE = frozenset({"no", "false", "0"})


def _text(max_length: int | None = None) -> Parser:
    def parse(column: str, raw: str) -> str:
        if max_length is not None and len(raw) > max_length:
            raise _Bad(f"{column} is too long ({len(raw)} characters; at most {max_length})")
        return raw

    return parse


_text_120 = _text(120)
_text_32 = _text(32)


def _decimal(max_digits: int, places: int) -> Parser:
    quantum = Decimal(1).scaleb(-places)
    limit = Decimal(10) ** (max_digits - places)

    def parse(column: str, raw: str) -> Decimal:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            hint = "; use a dot for decimals and no thousands separator" if "," in raw else ""
            raise _Bad(f"{column} must be a number like 12.50, not {raw!r}{hint}")
        if value < 0:
            raise _Bad(f"{column} must not be negative ({raw})")
        if value >= limit:
            raise _Bad(f"{column} is too large ({raw}; at most {limit - quantum})")
        if value != value.quantize(quantum):
            raise _Bad(f"{column} has more than {places} decimals ({raw})")
        return value.quantize(quantum)

    return parse


def _whole(column: str, raw: str) -> int:
    if not _WHOLE.fullmatch(raw):
        raise _Bad(f"{column} must be a whole number, not {raw!r}")
    value = int(raw.split(".")[0])
    if value < 0:
        raise _Bad(f"{column} must not be negative ({raw})")
    if value > MAX_INT:
        raise _Bad(f"{column} is too large ({raw})")
    return value


def _yes_no(column: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _Bad(f"{column} must be yes or no (or true/false, 1/0), not {raw!r}")


def _handle(column: str, raw: str) -> str:
    if not _HANDLE.fullmatch(raw):
        raise _Bad(
            f"{column} may only contain letters, digits, hyphens and underscores, not {raw!r}"
        )
    return _text_120(column, raw)


def _upc(column: str, raw: str) -> str:
    if _EXCEL_NUMBER.fullmatch(raw):
        raise _Bad(
            f"{column} {raw!r} looks like a barcode a spreadsheet turned into a number; "
            "format the column as text and export again"
        )
    return _text_32(column, raw)


def _urls(column: str, raw: str) -> tuple[str, ...]:
    urls = tuple(url for url in _URL_SEPARATORS.split(raw) if url)
    for url in urls:
        if url.partition("://")[0].lower() not in ("http", "https") or not _URL.search(url):
            raise _Bad(
                f"{column}: {url!r} is not a web address (it must start with http:// or https://)"
            )
        if len(url) > 500:
            raise _Bad(f"{column}: a web address is too long (at most 500 characters)")
    return urls


def _category(column: str, raw: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in raw.split(">"))
    if not all(parts):
        raise _Bad(f"{column} {raw!r} has an empty level; write a path like 'Apparel > Shirts'")
    for part in parts:
        _text_120(column, part)
    return parts


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
    "name": _text(255),
    "option1_name": _text(100),
    "option2_name": _text(100),
    "option3_name": _text(100),
    "brand": _text(120),
    "category": _category,
    "description": _text(),
    "weight_kg": _decimal(8, 3),
    "length_cm": _decimal(8, 2),
    "width_cm": _decimal(8, 2),
    "height_cm": _decimal(8, 2),
    "active": _yes_no,
    "image_urls": _urls,
    "supplier": _text(120),
    "supplier_code": _text(80),
    "supplier_price": _decimal(12, 2),
    "reorder_point": _whole,
    "reorder_quantity": _whole,
    "tax_rate": _decimal(5, 2),
    "tags": _text(255),
}
_VARIANT_PARSERS: dict[str, Parser] = {
    "sku": _text(64),
    "upc": _upc,
    "retail_price": _decimal(12, 2),
    "option1_value": _text(100),
    "option2_value": _text(100),
    "option3_value": _text(100),
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


def _parse_catalog_rows(table: _Table, progress: _Progress) -> list[_Row]:
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
                except _Bad as exc:
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
                _handle(name, values[i])
            else:
                product[name] = _PRODUCT_PARSERS[name](name, values[i])
        except _Bad as exc:
            reasons.append(str(exc))
    return product, reasons


def _group_rows(rows: list[_Row]) -> list[_Group]:
    """Rows by handle, in order of first appearance. Rows without a valid handle join none."""
    groups: dict[str, _Group] = {}
    for row in rows:
        if not row.handle or not _HANDLE.fullmatch(row.handle) or len(row.handle) > 120:
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
    seen: dict[tuple[str, ...], int] = {}
    for row in group.rows:
        values = [row.variant.get(column, "") for _i, _name, column in options]
        for (i, name, column), value in zip(options, values, strict=True):
            if value and not name:
                row.refuse(f"{column} {value!r} has no option{i}_name (e.g. Color)")
            elif name and not value:
                row.refuse(
                    f"{column} is blank, but the product's option{i}_name is {name!r}"
                    if column in present
                    else f"option{i}_name {name!r} is given but the file has no {column}"
                )
        combo = tuple(value.casefold() for value in values)
        if any(combo) and combo in seen:
            row.refuse(
                f"same options as line {seen[combo]}; each variant of a product needs its own "
                "option values"
            )
        seen.setdefault(combo, row.line)


def _check_duplicate_skus(rows: Iterable[_Row]) -> None:
    """Refuse every row whose SKU appears on another row once trimmed and ignoring case."""
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


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _AnyOf(models.Lookup):  # type: ignore[type-arg]
    """`column = ANY(%s)` with the keys as one array parameter (PostgreSQL).

    Unlike `__in`, the query text stays the same size however many keys there are, so
    building, sending and planning it costs no more for 20,000 keys than for 20.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*params, self.rhs)


def _matching(
    queryset: models.QuerySet[Any], attname: str, keys: Sequence[Any]
) -> Iterator[models.QuerySet[Any]]:
    """`queryset` narrowed to rows whose `attname` is one of `keys`, in a few chunks: one
    query each when evaluated (4 × CHUNK keys per query on PostgreSQL, CHUNK elsewhere)."""
    if connection.vendor == "postgresql":
        for chunk in _chunks(keys, 4 * CHUNK):
            yield queryset.filter(_AnyOf(models.F(attname), chunk))
    else:
        for chunk in _chunks(keys):
            yield queryset.filter(**{f"{attname}__in": chunk})


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
                raise _Bad(
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
    for queryset in _matching(Product.objects.values(*fields), "handle", list(by_handle)):
        for values in queryset:
            by_handle[values["handle"]].existing = values


def _load_variants(rows: list[_Row]) -> dict[str, dict[str, Any]]:
    """Existing variants by normalised SKU, through the sku_key index. One query per chunk."""
    keys = sorted({row.key for row in rows if row.sku})
    found: dict[str, dict[str, Any]] = {}
    fields = ("pk", "sku", "sku_key", "product_id", "upc", "retail_price", "options")
    queryset = Variant.objects.values(*fields, "product__handle", "product__name")
    for chunk in _matching(queryset, "sku_key", keys):
        found.update({values["sku_key"]: values for values in chunk})
    return found


def _load_images(groups: list[_Group]) -> dict[int, tuple[str, ...]]:
    """Current image addresses of the existing products, in order. One query per chunk."""
    pks = [g.existing["pk"] for g in groups if g.existing]
    urls: dict[int, list[str]] = defaultdict(list)
    queryset = ProductImage.objects.order_by("product_id", "position", "pk")
    for chunk in _matching(queryset.values_list("product_id", "url"), "product_id", pks):
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
            except _Bad as exc:
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


# --- bulk writes -----------------------------------------------------------------------------


def _insert_columns(model: type[models.Model]) -> list["models.Field[Any, Any]"]:
    return [f for f in model._meta.concrete_fields if not f.generated]


def _copy_value(field_: "models.Field[Any, Any]") -> Callable[[Any], Any]:
    """How a Python value goes into COPY's text format for this field."""
    if isinstance(field_, models.JSONField):
        return lambda value: None if value is None else json.dumps(value)
    return lambda value: value


def _insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    tick: Callable[[int], None],
    *,
    keys: bool = True,
) -> list[int]:
    """Insert rows given as {attname: value}; with `keys`, the new primary keys, in order.

    Fields a row leaves out take their model default. On PostgreSQL: one COPY per CHUNK rows,
    after one query reserving the keys when they are wanted. Elsewhere: bulk_create, which
    needs a database that returns inserted keys (SQLite 3.35+).
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        for chunk in _chunks(objs):
            model.objects.bulk_create(chunk)
            tick(len(chunk))
        return [obj.pk for obj in objs] if keys else []
    return _copy_insert(model, rows, tick, keys=keys)


def _copy_insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    tick: Callable[[int], None],
    *,
    keys: bool,
) -> list[int]:
    meta = model._meta
    pk_name = meta.pk.attname
    columns = [f for f in _insert_columns(model) if keys or not f.primary_key]
    defaults = {f.attname: f.get_default() for f in columns if not f.primary_key}
    values_of = operator.itemgetter(*(f.attname for f in columns))
    json_at = [i for i, f in enumerate(columns) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in columns)
    with connection.cursor() as cursor:
        pks: list[int] = []
        if keys:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            pks = [pk for (pk,) in cursor.fetchall()]
            rows = [{**row, pk_name: pk} for row, pk in zip(rows, pks, strict=True)]
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({names}) FROM STDIN") as copy:
                for row in chunk:
                    values = list(values_of({**defaults, **row}))
                    for i in json_at:
                        values[i] = None if values[i] is None else json.dumps(values[i])
                    copy.write_row(values)
            tick(len(chunk))
    return pks


def _update(
    model: type[models.Model],
    attnames: Sequence[str],
    rows: list[tuple[int, dict[str, Any]]],
    tick: Callable[[int], None],
) -> None:
    """Set `attnames` (plus updated_at) on the rows given as (pk, {attname: value}).

    On PostgreSQL: COPY into a temporary table, then one UPDATE … FROM. Elsewhere: one
    executemany of a single-row UPDATE, which SQLite runs without a round trip per row.
    """
    if not rows:
        return
    meta = model._meta
    fields = [meta.get_field(a) for a in attnames] + [meta.get_field("updated_at")]
    now = timezone.now()
    full = [(pk, [*(values[a] for a in attnames), now]) for pk, values in rows]
    if connection.vendor == "postgresql":
        _copy_update(model, fields, full, tick)
        return
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        for chunk in _chunks(full):
            params = [
                [
                    *(f.get_db_prep_save(v, connection) for f, v in zip(fields, vals, strict=True)),
                    pk,
                ]
                for pk, vals in chunk
            ]
            cursor.executemany(sql, params)
            tick(len(chunk))


def _copy_update(
    model: type[models.Model],
    fields: list["models.Field[Any, Any]"],
    rows: list[tuple[int, list[Any]]],
    tick: Callable[[int], None],
) -> None:
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    columns = [quote(f.column) for f in fields]
    adapters = [_copy_value(f) for f in fields]
    temp = quote("import_update")
    with connection.cursor() as cursor:
        names = ", ".join(columns)
        cursor.execute(
            f"CREATE TEMPORARY TABLE {temp} AS SELECT {pk}, {names} FROM {table} WITH NO DATA"
        )
        sql = f"COPY {temp} ({pk}, {names}) FROM STDIN"
        for chunk in _chunks(rows):
            with cursor.cursor.copy(sql) as copy:
                for row_pk, values in chunk:
                    copy.write_row([row_pk, *(a(v) for a, v in zip(adapters, values, strict=True))])
            tick(len(chunk))
        assignments = ", ".join(f"{c} = u.{c}" for c in columns)
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM {temp} AS u WHERE t.{pk} = u.{pk}"
        )
        cursor.execute(f"DROP TABLE {temp}")


def _write_catalog(
    plan: _Plan, brands: _Brands, categories: _Categories, progress: _Progress
) -> None:
    """Write the plan (the caller holds the transaction), then announce changed products.

    Cost: a fixed number of queries per CHUNK rows of each kind.
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
    new_pks = _insert(Product, [values for _group, values in plan.new_products], tick)
    for (group, _values), pk in zip(plan.new_products, new_pks, strict=True):
        group.product_id = pk
    _update(Product, plan.product_fields, plan.changed_products, tick)


def _write_variants(
    plan: _Plan, now: datetime, tick: Callable[[int], None]
) -> dict[int, list[int]]:
    """Insert the new variants, update the changed ones. The pks of the new variants of
    products that existed before, by product (the ones product_saved announces): read back by
    product and SKU, since a new product's variants need no keys at all."""
    for group, values in plan.new_variants:
        values["product_id"] = group.product_id
        values["created_at"] = values["updated_at"] = now
    _insert(Variant, [values for _group, values in plan.new_variants], tick, keys=False)
    _update(Variant, plan.variant_fields, plan.changed_variants, tick)
    added = {(g.product_id, v["sku"]) for g, v in plan.new_variants if g.existing}
    created: dict[int, list[int]] = defaultdict(list)
    products = sorted({product_id for product_id, _sku in added})
    queryset = Variant.objects.order_by("pk").values_list("product_id", "sku", "pk")
    for chunk in _matching(queryset, "product_id", products):
        for product_id, sku, pk in chunk:
            if (product_id, sku) in added:
                created[product_id].append(pk)
    return created


def _resolve_fk(values: dict[str, Any], attname: str, created: Mapping[Any, int]) -> None:
    if attname in values and values[attname] is not None and not isinstance(values[attname], int):
        values[attname] = created[values[attname]]


def _write_images(plan: _Plan, now: datetime, tick: Callable[[int], None]) -> None:
    """Replace the images of products whose image list changed. One DELETE per CHUNK products."""
    replaced = [g.product_id for g, _urls in plan.images if g.existing]
    for chunk in _chunks(replaced):
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
    _insert(ProductImage, rows, tick, keys=False)


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
    Cost: about one query per CHUNK rows to look up what exists, the same to write; the whole
    file is held in memory.
    """
    progress = _Progress(on_progress)
    table = _read_csv(stream, columns=CATALOG_COLUMNS, aliases={}, progress=progress)
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


# --- inventory levels ------------------------------------------------------------------------

STOCK_COLUMNS: tuple[Column, ...] = (
    Column("sku", "Variant SKU; compared trimmed and ignoring letter case.", required=True),
    Column(
        "quantity",
        "On-hand count, a whole number ≥ 0 (the column may be named on_hand).",
        required=True,
    ),
    Column("outlet", "Outlet code; only when no outlet is chosen for the whole file."),
)


@dataclass(slots=True)
class _StockRow:
    line: int
    sku: str
    key: str  # the SKU normalised (catalog.models.sku_key)
    quantity: int | None
    outlet_id: int | None
    variant_id: int | None = None
    errors: list[str] = field(default_factory=list)


def _stock_outlets(outlet_code: str | None, columns: tuple[str, ...]) -> dict[str, int]:
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
    records: list[_Record], index: Mapping[str, int], outlets: Mapping[str, int]
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
                row.quantity = _whole("quantity", quantity)
            except _Bad as exc:
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
    """Attach variant pks by normalised SKU. One query (catalog.selectors)."""
    pks = variant_ids_by_sku_key({row.key for row in rows})
    for row in rows:
        if row.sku:
            row.variant_id = pks.get(row.key)
            if row.variant_id is None:
                row.errors.append(f"no variant has the SKU {row.sku!r}")


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
    of variants (see _matching)."""
    outlets = sorted({outlet for _v, outlet, _q in levels})
    variants = sorted({variant for variant, _o, _q in levels})
    queryset = Stock.objects.filter(outlet_id__in=outlets).values_list(
        "variant_id", "outlet_id", "on_hand"
    )
    found: dict[tuple[int, int], int] = {}
    for chunk in _matching(queryset, "variant_id", variants):
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
    Every row is checked first (known SKU, whole quantity ≥ 0, SKU once per outlet, known
    outlet); with bad rows and not `partial`, nothing is written. Writes go through
    catalog.services.stock_import_levels (trigger IMPORT, `reference` and `actor` on each ledger
    row), in one transaction, so rows whose count is unchanged write no ledger row.
    `created` counts stock rows created, `updated` counts rows whose count changed.
    Raises ImportFileError for an unreadable file (listing, when some row cannot be read as
    CSV, that row and every other bad row), UnknownOutlet for an unknown `outlet_code`.
    Cost: one query to look up the SKUs, then stock_import_levels' own (a few statements per
    STOCK_CHUNK rows); a dry run reads the current counts instead, one query per CHUNK rows.
    """
    progress = _Progress(on_progress)
    table = _read_csv(
        stream, columns=STOCK_COLUMNS, aliases={"on_hand": "quantity"}, progress=progress
    )
    outlets = _stock_outlets(outlet_code, table.columns)
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
    levels: list[tuple[int, int, int]], *, reference: str, actor: Actor, progress: _Progress
) -> list[MovementRecord]:
    """Every level (changed or not: stock_apply locks each row and decides under the lock), in
    one transaction, STOCK_CHUNK rows per call in (variant, outlet) order, so the lock order is
    the one every stock writer uses."""
    tick = progress.ticker("writing", len(levels))
    movements: list[MovementRecord] = []
    with transaction.atomic():
        for chunk in _chunks(levels, STOCK_CHUNK):
            movements += stock_import_levels(levels=chunk, reference=reference, actor=actor)
            tick(len(chunk))
    return movements
