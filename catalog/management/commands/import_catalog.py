"""`python manage.py import_catalog FILE`: create and update products and variants from a CSV.

The helpers below (progress bars, the summary) are shared with `import_stock`.
"""

from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from tqdm import tqdm

from catalog.exceptions import CatalogError
from catalog.imports import CATALOG_COLUMNS, ImportFileError, ImportResult, catalog_csv_import


class ProgressBars:
    """A progress callback for the imports: one tqdm bar per stage, on stderr.

    Silent when disabled (stderr is not a terminal, or --no-progress).
    """

    def __init__(self, stderr: OutputWrapper, *, enabled: bool) -> None:
        self.out = _BarStream(stderr)
        self.enabled = enabled
        self.bar: tqdm[Any] | None = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage or self.bar is None:
            self.close()
            self.bar = tqdm(total=total or None, desc=stage, unit="row", file=self.out)
            self.stage = stage
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _BarStream:
    """stderr for tqdm: its redraws must not get the newline and the error colour that
    OutputWrapper adds to each write."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, style_func=lambda plain: plain, ending="")

    def flush(self) -> None:
        self.out.flush()


def add_common_arguments(parser: CommandParser) -> None:
    parser.add_argument("file", type=Path, help="The CSV file (UTF-8; comma, semicolon or tab).")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="Write the good rows even if some rows are bad (default: write nothing then).",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Check the file and count; write nothing."
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="No progress bar (none is shown off a terminal)."
    )


def open_csv(path: Path) -> TextIO:
    """The file as the imports read it: UTF-8 with or without a BOM, newlines left to csv."""
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CommandError(f"Cannot open {path}: {exc.strerror}.") from None


def run_import(command: BaseCommand, options: dict[str, Any], run: Any) -> ImportResult:
    """Call `run(stream, on_progress)` on the opened file, map domain errors to CommandError,
    print the summary and fail when bad rows kept the file from being written."""
    bars = ProgressBars(
        command.stderr, enabled=not options["no_progress"] and command.stderr.isatty()
    )
    try:
        with open_csv(options["file"]) as stream:
            result: ImportResult = run(stream, bars)
    except CatalogError as exc:
        bars.close()
        for line, reason in exc.errors if isinstance(exc, ImportFileError) else ():
            command.stdout.write(f"line {line}: {reason}")
        raise CommandError(str(exc)) from None
    finally:
        bars.close()
    report(command.stdout, result)
    if _refused(result, partial=options["partial"]):
        raise CommandError(
            f"Nothing was written: {len(result.errors)} bad row(s). Fix them"
            + ("." if options["partial"] else ", or use --partial to write the good rows.")
        )
    return result


def _refused(result: ImportResult, *, partial: bool) -> bool:
    """True when bad rows keep the file (or, in a dry run, would keep it) from being written."""
    if not result.errors:
        return False
    return not partial or len(result.errors) == result.rows


def report(out: OutputWrapper, result: ImportResult) -> None:
    """The summary, then every bad row as `line N: reason`."""
    out.write(
        f"Read {result.rows:,} row(s): {result.created:,} created, {result.updated:,} updated, "
        f"{result.unchanged:,} unchanged, {len(result.errors):,} bad."
    )
    others = ", ".join(f"{label}: {count:,}" for label, count in result.other.items() if count)
    if others:
        out.write(f"Also {others}.")
    for line, reason in result.errors:
        out.write(f"line {line}: {reason}")
    if result.dry_run:
        out.write("Dry run: nothing was written.")
    elif result.written and result.errors:
        out.write("The good rows were written; the bad rows listed above were not.")
    elif result.written:
        out.write("Written.")


class Command(BaseCommand):
    help = (
        "Create and update products and variants from a catalog CSV: one row per variant, rows "
        "with the same handle form one product; an existing SKU updates its variant. Columns: "
        + ", ".join(f"{c.name}{' (required)' if c.required else ''}" for c in CATALOG_COLUMNS)
        + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        run_import(
            self,
            options,
            lambda stream, progress: catalog_csv_import(
                stream=stream,
                partial=options["partial"],
                dry_run=options["dry_run"],
                on_progress=progress,
            ),
        )
