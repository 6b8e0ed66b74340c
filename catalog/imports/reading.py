"""Reading an import's CSV file, and parsing its cells: what the catalog import and the stock
import share.

The rows are read whole before anything is checked, and reported by their line in the file. A
row that csv cannot read (a quote never closed) refuses the whole file, because the rows after
it may belong to it; reading goes on from its next line, so the refusal still lists every other
bad row.
"""

import csv
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any, NamedTuple, TextIO

from django.core.validators import URLValidator

from catalog.exceptions import CatalogError

# Rows read, and rows checked, between two progress reports; reading also drops the lines it
# keeps (to read again after a row csv cannot read) this often.
CHUNK = 5000
# Rows csv cannot read before the rest of the file is no longer checked: past a few, the file
# is not CSV of this shape, and each such row costs a read of the rest of the file.
MAX_UNREADABLE = 20
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
class Record:
    line: int
    values: list[str]  # stripped cells, one per column of the table, "" when blank
    problem: str = ""


@dataclass(slots=True)
class Table:
    columns: tuple[str, ...]  # the known columns the header names, in file order
    records: list[Record]
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


class Progress:
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


def read_csv(
    stream: TextIO,
    *,
    columns: Sequence[Column],
    aliases: Mapping[str, str],
    progress: Progress,
) -> Table:
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
        first, skipped, delimiter = _opening(stream)
        reading = _Reading(itertools.chain([first], stream), delimiter, offset=skipped)
        header = [_header_name(cell) for cell in next(reading.reader)]
        names = _check_header(header, columns, aliases)
        table = Table(columns=tuple(n for n in names if n), records=[])
        _read_rows(reading, names, table, progress)
    except UnicodeDecodeError as exc:
        where = f" after line {reading.line}" if reading is not None else ""
        raise not_utf8(where, exc) from None
    except csv.Error as exc:  # in the header line: there are no columns to check rows by
        raise _unreadable_header(exc) from None
    return table


def read_header(
    stream: TextIO, *, columns: Sequence[Column], aliases: Mapping[str, str]
) -> tuple[str, ...]:
    """The known columns the file's header names, checked as `read_csv` checks them (raising
    the same ImportFileError), without reading the rows: what an upload can be told at once.
    """
    try:
        first, _skipped, delimiter = _opening(stream)
        reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter, strict=True)
        header = [_header_name(cell) for cell in next(reader)]
    except UnicodeDecodeError as exc:
        raise not_utf8("", exc) from None
    except csv.Error as exc:
        raise _unreadable_header(exc) from None
    return tuple(name for name in _check_header(header, columns, aliases) if name)


NOT_TEXT = (
    "The file is not CSV text (it holds binary data): is it a spreadsheet (.xlsx)? "
    "Save it as CSV and try again."
)


def not_utf8(where: str, exc: UnicodeDecodeError) -> ImportFileError:
    """The refusal of a file that is not UTF-8; `where` says where, as " after line 3"."""
    return ImportFileError(
        f"The file is not UTF-8 text (an unreadable byte{where}, "
        f"{exc.object[exc.start : exc.start + 1]!r}). Save it as “CSV UTF-8” and try again."
    )


def _unreadable_header(exc: csv.Error) -> ImportFileError:
    return ImportFileError(
        f"The file cannot be read as CSV at the start: {exc} (is a closing quote missing?)."
    )


def _opening(stream: TextIO) -> tuple[str, int, str]:
    """The header line, how many blank lines came before it, and the delimiter it uses."""
    first, skipped = _first_line(stream)
    if "\0" in first:
        raise ImportFileError(NOT_TEXT)
    return first, skipped, max((",", ";", "\t"), key=first.count)


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


def _read_rows(reading: _Reading, names: list[str], table: Table, progress: Progress) -> None:
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


def _records(reading: _Reading, names: list[str], progress: Progress) -> Iterator[Record]:
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
            record = Record(line, list(map(str.strip, pick(cells))))
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


class BadCell(ValueError):
    """A cell's value is refused; the message is shown to staff as it is."""


Parser = Callable[[str, str], Any]

HANDLE = re.compile(r"[-a-zA-Z0-9_]+")
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_EXCEL_NUMBER = re.compile(r"\d+(?:\.\d+)?[eE]\+?\d+")
_URL_SEPARATORS = re.compile(r"[\s|;]+|,(?=\s*https?://)")
# URLValidator's own pattern, compiled once: the validator itself goes through a lazy object
# on every call, which costs more than the match.
_URL = re.compile(URLValidator.regex.pattern, URLValidator.regex.flags)
_TRUE = frozenset({"yes", "true", "1"})
_FALSE = frozenset({"no", "false", "0"})


def text_cell(max_length: int | None = None) -> Parser:
    def parse(column: str, raw: str) -> str:
        if max_length is not None and len(raw) > max_length:
            raise BadCell(f"{column} is too long ({len(raw)} characters; at most {max_length})")
        return raw

    return parse


_text_120 = text_cell(120)
_text_32 = text_cell(32)


def decimal_cell(max_digits: int, places: int) -> Parser:
    quantum = Decimal(1).scaleb(-places)
    limit = Decimal(10) ** (max_digits - places)

    def parse(column: str, raw: str) -> Decimal:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            hint = "; use a dot for decimals and no thousands separator" if "," in raw else ""
            raise BadCell(f"{column} must be a number like 12.50, not {raw!r}{hint}")
        if value < 0:
            raise BadCell(f"{column} must not be negative ({raw})")
        if value >= limit:
            raise BadCell(f"{column} is too large ({raw}; at most {limit - quantum})")
        if value != value.quantize(quantum):
            raise BadCell(f"{column} has more than {places} decimals ({raw})")
        return value.quantize(quantum)

    return parse


def whole_cell(column: str, raw: str) -> int:
    if not _WHOLE.fullmatch(raw):
        raise BadCell(f"{column} must be a whole number, not {raw!r}")
    value = int(raw.split(".")[0])
    if value < 0:
        raise BadCell(f"{column} must not be negative ({raw})")
    if value > MAX_INT:
        raise BadCell(f"{column} is too large ({raw})")
    return value


def yes_no_cell(column: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadCell(f"{column} must be yes or no (or true/false, 1/0), not {raw!r}")


def handle_cell(column: str, raw: str) -> str:
    if not HANDLE.fullmatch(raw):
        raise BadCell(
            f"{column} may only contain letters, digits, hyphens and underscores, not {raw!r}"
        )
    return _text_120(column, raw)


def upc_cell(column: str, raw: str) -> str:
    if _EXCEL_NUMBER.fullmatch(raw):
        raise BadCell(
            f"{column} {raw!r} looks like a barcode a spreadsheet turned into a number; "
            "format the column as text and export again"
        )
    return _text_32(column, raw)


def urls_cell(column: str, raw: str) -> tuple[str, ...]:
    urls = tuple(url for url in _URL_SEPARATORS.split(raw) if url)
    for url in urls:
        if url.partition("://")[0].lower() not in ("http", "https") or not _URL.search(url):
            raise BadCell(
                f"{column}: {url!r} is not a web address (it must start with http:// or https://)"
            )
        if len(url) > 500:
            raise BadCell(f"{column}: a web address is too long (at most 500 characters)")
    return urls


def category_cell(column: str, raw: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in raw.split(">"))
    if not all(parts):
        raise BadCell(f"{column} {raw!r} has an empty level; write a path like 'Apparel > Shirts'")
    for part in parts:
        _text_120(column, part)
    return parts
