"""`python manage.py import_price_overrides --channel ID FILE`: set variants' own prices on a
channel from a CSV of sku,price rows."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.management.commands.import_catalog import add_common_arguments, run_import
from channels.models import Channel
from channels.pricing import OVERRIDE_COLUMNS, price_overrides_import, price_problem


class Command(BaseCommand):
    help = (
        "Set price overrides on a channel from a CSV with the columns "
        + ", ".join(c.name for c in OVERRIDE_COLUMNS)
        + ": each variant's own price there, in the channel's currency, in place of the price "
        "its rule makes. Every row is checked first; one bad row writes nothing unless "
        "--partial. The changes queue one price sync of the channel."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--channel", type=int, required=True, metavar="ID", help="Channel id.")
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        channel = Channel.objects.filter(pk=options["channel"]).first()
        if channel is None:
            raise CommandError(f"No channel has the id {options['channel']}.")
        result = run_import(
            self,
            options,
            lambda stream, _progress: price_overrides_import(
                channel=channel,
                stream=stream,
                partial=options["partial"],
                dry_run=options["dry_run"],
            ),
        )
        if result.written and (result.created or result.updated):
            problem = price_problem(channel)
            self.stdout.write(
                f"{problem} The overrides are kept; no price is sent."
                if problem
                else f"One price sync of {channel} queued for the changed prices."
            )
