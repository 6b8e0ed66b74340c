"""`python manage.py scan CHANNEL [--updated]`: scan a channel in the foreground."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from channels.exceptions import ChannelError
from channels.models import Channel, Scan
from channels.scans import scan_request, scan_run


class Command(BaseCommand):
    help = (
        "Scan a channel's catalog and map its listings to POS variants by SKU. A full scan by "
        "default; --updated scans only what changed since the last successful scan."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("channel", help="Channel id or exact name.")
        parser.add_argument(
            "--updated", action="store_true", help="Scan Updated Products (since the last scan)."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        channel = _channel(options["channel"])
        kind = Scan.Kind.UPDATED if options["updated"] else Scan.Kind.FULL
        try:
            scan = scan_request(
                channel=channel, kind=kind, requested_by="scan command", enqueue=False
            )
        except ChannelError as exc:
            raise CommandError(str(exc)) from exc
        # The command runs the scan itself, in the foreground, so none is queued for the worker.
        bar = tqdm(
            desc=f"{Scan.Kind(kind).label} {channel}",
            unit=" listings",
            disable=options["no_progress"] or None,
        )

        def on_page(progress: Scan) -> None:
            bar.update(progress.listings_done - bar.n)

        scan = scan_run(scan_id=scan.pk, on_page=on_page)
        bar.close()
        if scan.status == Scan.Status.FAILED:
            raise CommandError(f"Scan #{scan.pk} failed: {scan.error}")
        self.stdout.write(
            f"Scan #{scan.pk} {scan.status}: {scan.seen} seen, {scan.new} new, "
            f"{scan.changed} changed, {scan.matched} matched, {scan.not_in_pos} not in POS, "
            f"{scan.duplicates} duplicates, {scan.removed} removed "
            f"({scan.http_calls} HTTP calls, {scan.http_seconds:.1f} s waiting on HTTP)."
        )


def _channel(value: str) -> Channel:
    lookup = {"pk": int(value)} if value.isdigit() else {"name": value}
    try:
        return Channel.objects.get(**lookup)
    except Channel.DoesNotExist:
        names = ", ".join(Channel.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"No channel {value!r}. Channels: {names}.") from None
