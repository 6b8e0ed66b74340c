"""`python manage.py import_stock FILE --outlet CODE`: set on-hand counts from a CSV."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from catalog.imports import stock_csv_import
from catalog.management.commands.import_catalog import add_common_arguments, run_import
from omni.actors import Actor


class Command(BaseCommand):
    help = (
        "Set on-hand counts from a CSV with the columns sku and quantity (or on_hand), for the "
        "outlet given with --outlet, or per row from an outlet column. Each changed count is "
        "one ledger row (trigger: import) referencing the file name."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)
        parser.add_argument(
            "--outlet",
            metavar="CODE",
            help="Outlet code for every row; leave out when the file has an outlet column.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run_import(
            self,
            options,
            lambda stream, progress: stock_csv_import(
                stream=stream,
                outlet_code=options["outlet"],
                reference=options["file"].name,
                actor=Actor(label="command:import_stock"),
                partial=options["partial"],
                dry_run=options["dry_run"],
                on_progress=progress,
            ),
        )
