"""`python manage.py push_prices --channel ID`: queue a price sync of a channel."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels.models import Channel, PriceSync
from channels.pricing import MANUAL, PriceProblem, price_sync_request, price_sync_run


class Command(BaseCommand):
    help = (
        "Push the current price of every listed variant of a channel (its rule's, or its "
        "override): queues a price sync for the worker, or with --now runs it here and "
        "reports. Asking while one is queued adds none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--channel", type=int, required=True, metavar="ID", help="Channel id.")
        parser.add_argument(
            "--now", action="store_true", help="Run the sync in this process and wait for it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        channel = Channel.objects.filter(pk=options["channel"]).first()
        if channel is None:
            raise CommandError(f"No channel has the id {options['channel']}.")
        try:
            sync = price_sync_request(
                channel=channel,
                reason=MANUAL,
                requested_by="command:push_prices",
                enqueue=not options["now"],
            )
        except PriceProblem as exc:
            raise CommandError(str(exc)) from None
        if not options["now"]:
            self.stdout.write(f"Price sync #{sync.pk} of {channel} queued.")
            return
        sync = price_sync_run(sync_id=sync.pk)
        self.stdout.write(f"Price sync #{sync.pk} of {channel}: {sync.status}. {sync.message}")
        if sync.status != PriceSync.Status.SUCCEEDED:
            raise CommandError(
                f"Price sync #{sync.pk} did not succeed here ({sync.get_status_display()})."
            )
