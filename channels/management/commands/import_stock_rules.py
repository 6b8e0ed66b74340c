"""`python manage.py import_stock_rules --channel ID FILE`: products' and variants' own stock
rules on a channel, from a CSV."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.management.commands.import_catalog import add_common_arguments, run_import
from channels.models import Channel
from channels.stock_rules import COLUMNS, stock_rules_import


class Command(BaseCommand):
    help = (
        "Import stock rules for one channel from a CSV with the columns "
        + ", ".join(column.name for column in COLUMNS)
        + ": one row per variant (sku) or product (handle); blank cells follow the channel's "
        "rule. The listings whose quantity changes are pushed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)
        parser.add_argument("--channel", type=int, required=True, metavar="ID")

    def handle(self, *args: Any, **options: Any) -> None:
        channel = Channel.objects.filter(pk=options["channel"]).first()
        if channel is None:
            raise CommandError(f"No channel has the id {options['channel']}.")
        run_import(
            self,
            options,
            lambda stream, progress: stock_rules_import(
                channel=channel,
                stream=stream,
                partial=options["partial"],
                dry_run=options["dry_run"],
            ),
        )
