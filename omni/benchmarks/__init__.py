"""Benchmarks run by `python manage.py bench <what>`.

Adding one is adding a module to this package that defines `register(subparsers)`: it adds its
subparser (named after what it measures) and sets a `run` default, a callable taking
`(options, report)` where `report` is a Report. The command finds such modules by itself.

Speed is proven by these figures, printed for a person to read, never by a timed test.
"""

import argparse
import importlib
import pkgutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import connection


class Run(Protocol):
    def __call__(self, options: dict[str, Any], report: "Report") -> None: ...


def register_all(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Let every module of this package that defines `register` add its subcommand."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)


def positive_int(raw: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def tidy_tables(tables: Iterable[str], *, vacuum: bool) -> None:
    """Do to `tables` what autovacuum soon would, for the benchmarks that fill and empty them
    where it is off or behind: refresh their statistics (without them a fresh database plans
    queries on empty-table estimates) and, with `vacuum`, remove their dead rows (so a run does
    not wade through those of the run before) and rebuild the indexes of a table left empty
    (instant then; the index pages a run's deletes emptied are otherwise kept, and each run on
    the same database was slower than the last). VACUUM only on PostgreSQL and outside a
    transaction (a test), where it can run; elsewhere ANALYZE alone. One or two statements a
    table."""
    vacuum = vacuum and connection.vendor == "postgresql" and not connection.in_atomic_block
    command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    with connection.cursor() as cursor:
        for table in map(connection.ops.quote_name, tables):
            if vacuum:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
                if not cursor.fetchone()[0]:
                    cursor.execute(f"REINDEX TABLE {table}")
            cursor.execute(f"{command} {table}")


@dataclass
class Phase:
    name: str
    rows: int = 0
    seconds: float = 0.0  # wall clock
    cpu: float = 0.0  # this process's CPU time: steadier than the wall clock on a busy machine
    counted: bool = True


class Report:
    """Times phases and prints one line per phase, then the total of the counted phases.

    Each line has the wall-clock seconds, this process's CPU seconds (the database server's
    work is not in them), the rows and the rows per wall-clock second.
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.phases: list[Phase] = []

    def line(self, text: str) -> None:
        self.write(text)

    def database(self) -> None:
        settings = connection.settings_dict
        self.write(f"database: {connection.vendor} ({settings['NAME']})")

    @contextmanager
    def phase(self, name: str, *, rows: int = 0, counted: bool = True) -> Iterator[Phase]:
        """Time the block; the caller may set `phase.rows` inside it."""
        phase = Phase(name, rows, counted=counted)
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            yield phase
        finally:
            phase.seconds = time.perf_counter() - start
            phase.cpu = time.process_time() - start_cpu
        self.phases.append(phase)
        suffix = "  (not in the total)" if not counted else ""
        self.write(f"{name:<30} {self._figures(phase)}{suffix}")

    def total(self) -> float:
        """Print and return the wall-clock seconds of the counted phases."""
        counted = [p for p in self.phases if p.counted]
        total = Phase(
            "total",
            rows=sum(p.rows for p in counted),
            seconds=sum(p.seconds for p in counted),
            cpu=sum(p.cpu for p in counted),
        )
        self.write(f"{'total':<30} {self._figures(total)}")
        return total.seconds

    @staticmethod
    def _figures(phase: Phase) -> str:
        rate = f"{phase.rows / phase.seconds:>9,.0f} rows/s" if phase.rows and phase.seconds else ""
        count = f"{phase.rows:>9,} rows" if phase.rows else ""
        cpu = f"(cpu {phase.cpu:6.2f} s)"
        return f"{phase.seconds:>7.2f} s {cpu}  {count}  {rate}".rstrip()
