"""`python manage.py import_sku_aliases --channel ID FILE`: a channel's SKU aliases from a CSV."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.management.commands.import_catalog import add_common_arguments, run_import
from channels.models import Channel
from channels.sku_rules import ALIAS_COLUMNS, sku_aliases_import


class Command(BaseCommand):
    help = (
        "Create and change a channel's SKU aliases from a CSV with the columns "
        + " and ".join(c.name for c in ALIAS_COLUMNS)
        + ": each row maps a SKU on the channel to a POS SKU; a channel SKU that already has "
        "an alias gets the row's POS SKU. The worker then re-matches the channel's listings "
        "that carry those SKUs, without a scan."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--channel", required=True, metavar="ID", help="The channel's id or exact name."
        )
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        channel = _channel(options["channel"])
        run_import(
            self,
            options,
            lambda stream, progress: sku_aliases_import(
                channel=channel,
                stream=stream,
                partial=options["partial"],
                dry_run=options["dry_run"],
            ),
        )


def _channel(value: str) -> Channel:
    lookup = {"pk": int(value)} if value.isdigit() else {"name": value}
    channel = Channel.objects.filter(**lookup).first()
    if channel is None:
        raise CommandError(f"No channel {value!r}: give its id or its exact name.")
    return channel
