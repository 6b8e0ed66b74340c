"""`python manage.py prune_synclogs --days 90 [--commit]`: delete old sync log rows."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from synclogs.services import synclogs_prune


class Command(BaseCommand):
    help = (
        "Delete sync log rows and webhook events older than --days, in batches. A dry run "
        "(counting only) unless --commit is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=90, help="Keep this many days (90).")
        parser.add_argument(
            "--batch-size", type=int, default=10_000, help="Rows deleted per statement."
        )
        parser.add_argument("--commit", action="store_true", help="Really delete.")

    def handle(self, *args: Any, **options: Any) -> None:
        days, batch = options["days"], options["batch_size"]
        if days < 1:
            raise CommandError("--days must be at least 1")
        if batch < 1:
            raise CommandError("--batch-size must be at least 1")
        before = timezone.now() - timedelta(days=days)
        count = synclogs_prune(before=before, batch_size=batch, commit=options["commit"])
        when = f"{timezone.localtime(before):%Y-%m-%d %H:%M}"
        if options["commit"]:
            self.stdout.write(f"Deleted {count} row(s) older than {when}.")
        else:
            self.stdout.write(
                f"Dry run: {count} row(s) older than {when} would be deleted. "
                "Run again with --commit to delete them."
            )
