"""`python manage.py bench <what> [options]`: run one benchmark and print its figures."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from omni.benchmarks import Report, register_all


class Command(BaseCommand):
    help = (
        "Run a benchmark against the configured database and print seconds and rows per second "
        "per phase. `bench <what> --help` lists a benchmark's options."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="what", required=True, metavar="<what>", title="benchmarks"
        )
        register_all(subparsers)

    def handle(self, *args: Any, **options: Any) -> None:
        report = Report(self.stdout.write)
        report.database()
        options["run"](options, report)
