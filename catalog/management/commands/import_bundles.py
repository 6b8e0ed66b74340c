"""`python manage.py import_bundles FILE`: bundles' components from a CSV."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from catalog.imports.bundles import BUNDLE_COLUMNS, bundles_csv_import
from catalog.management.commands.import_catalog import add_common_arguments, run_import


class Command(BaseCommand):
    help = (
        "Set bundles' components from a CSV with the columns "
        + ", ".join(c.name for c in BUNDLE_COLUMNS)
        + ": one row per component; the rows of one bundle replace its components. A bad row "
        "(unknown SKU, quantity that is not a whole number from 1 up, a bundle that would "
        "contain itself or that holds stock) refuses its whole bundle."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        run_import(
            self,
            options,
            lambda stream, progress: bundles_csv_import(
                stream=stream,
                partial=options["partial"],
                dry_run=options["dry_run"],
                on_progress=progress,
            ),
        )
