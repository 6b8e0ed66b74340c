"""`python manage.py emulator shopee --port 9101 --items 2000 --seed 1`: a local marketplace.

Runs one emulator in the foreground until Ctrl-C and prints its base URL and the (fake)
credentials a channel needs to connect to it. Nothing is written anywhere, so there is no
dry-run mode: `--from-catalog` only reads the POS SKUs.
"""

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels.emulators import emulator_class
from channels.emulators.base import Emulator, Faults
from channels.marketplaces import BY_KIND, KINDS


class Command(BaseCommand):
    help = (
        "Run a marketplace emulator on 127.0.0.1 until Ctrl-C, with a generated shop; prints "
        "its base URL and the credentials to give the channel."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS), help="Which marketplace.")
        parser.add_argument("--port", type=int, help="Port (default: the kind's demo port).")
        parser.add_argument("--items", type=int, default=200, help="Items in the shop.")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same shop.")
        parser.add_argument(
            "--from-catalog",
            action="store_true",
            help="Give most listings SKUs of POS variants, so the shop overlaps the catalog.",
        )
        parser.add_argument("--error-rate", type=float, default=0.0, help="Share of HTTP 500s.")
        parser.add_argument(
            "--throttle-rate", type=float, default=0.0, help="Share of throttled calls (429)."
        )
        parser.add_argument(
            "--retry-after", type=float, default=1.0, help="Retry-After seconds when throttling."
        )
        parser.add_argument("--latency", type=float, default=0.0, help="Seconds added per reply.")
        parser.add_argument(
            "--max-in-flight",
            type=int,
            default=0,
            help="Calls handled at once; one more is answered throttled (default 0: no limit).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        emulator = self._build(options)
        try:
            emulator.start()
        except OSError as exc:
            raise CommandError(
                f"Could not listen on port {emulator.requested_port}: {exc}"
            ) from exc
        self._announce(emulator)
        try:
            threading.Event().wait()  # until Ctrl-C
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            emulator.stop()

    def _build(self, options: dict[str, Any]) -> Emulator:
        kind = options["kind"]
        if options["items"] < 0:
            raise CommandError("--items cannot be negative")
        try:
            faults = Faults(
                error_rate=options["error_rate"],
                throttle_rate=options["throttle_rate"],
                retry_after=options["retry_after"],
                latency=options["latency"],
                max_in_flight=options["max_in_flight"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        pos_skus = _catalog_skus() if options["from_catalog"] else []
        if options["from_catalog"]:
            self.stdout.write(f"{len(pos_skus)} POS SKUs read from the catalog.")
        port = options["port"] if options["port"] is not None else BY_KIND[kind].demo_port
        cls: Any = emulator_class(kind)
        return cls(
            items=options["items"],
            seed=options["seed"],
            pos_skus=pos_skus,
            port=port,
            faults=faults,
        )

    def _announce(self, emulator: Emulator) -> None:
        self.stdout.write(self.style.SUCCESS(f"{emulator.name} emulator at {emulator.base_url}"))
        # A local test server's own fake credentials: printing them is the point.
        for name, value in getattr(emulator, "credentials", {}).items():
            self.stdout.write(f"  {name}: {value}")
        self.stdout.write("Ctrl-C to stop.")


def _catalog_skus() -> list[str]:
    from catalog.models import Variant  # the catalog is only needed with --from-catalog

    return list(Variant.objects.values_list("sku", flat=True))
