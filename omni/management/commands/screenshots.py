"""`python manage.py screenshots`: PNGs of the main admin screens, from the demo data.

Loads the demo into the configured database (`make screenshots` points it at a scratch SQLite
file), gives it a few price overrides when it has none (the demo sets none), serves the admin on
a local port in this process, and has Debian's chromium (driven by Playwright) log in and
photograph each screen at 1440 x 900.
"""

import io
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from django.core.wsgi import get_wsgi_application
from django.db.models import Count
from django.urls import reverse
from django.utils.http import urlencode

from catalog.models import BundleComponent
from channels.models import Channel, Listing, PriceOverride
from channels.pricing import price_overrides_import


def stock_preview_path() -> str | None:
    """The stock preview of the SKU listed on the most channels (each channel's rule at work on
    it); None without listings."""
    row = (
        Listing.objects.exclude(variant=None)
        .values("variant__sku")
        .annotate(channels=Count("channel", distinct=True))
        .order_by("-channels", "variant__sku")
        .first()
    )
    if row is None:
        return None
    query = urlencode({"sku": row["variant__sku"]})
    return reverse("admin:channels_stockrule_preview") + "?" + query


def bundle_path() -> str | None:
    """The variant page of the first bundle (its components, what they make per outlet)."""
    bundle_id = BundleComponent.objects.order_by("bundle__sku").values("bundle_id").first()
    if bundle_id is None:
        return None
    return reverse("admin:catalog_variant_change", args=[bundle_id["bundle_id"]])


OVERRIDES = 6  # sample overrides on a demo without any


def price_overrides_sample() -> None:
    """A few listed variants sold 5 % below their price on the channel that prices by a rule of
    its own (TikTok Shop's in the demo), so the overrides' list shows both prices; nothing when
    the database has overrides already. One import: one price sync queued for the worker."""
    if PriceOverride.objects.exists():
        return
    channel = (
        Channel.objects.filter(kind="tiktok_shop").first() or Channel.objects.order_by("pk").first()
    )
    if channel is None:
        return
    listed = (
        Listing.objects.filter(channel=channel)
        .exclude(variant=None)
        .order_by("variant__sku")
        .values_list("variant__sku", "variant__retail_price")
        .distinct()[:OVERRIDES]
    )
    rows = [f"{sku},{round(price * 95 / 100, -2):.0f}" for sku, price in listed]
    if rows:
        price_overrides_import(channel=channel, stream=io.StringIO("sku,price\n" + "\n".join(rows)))


# (file name, path): the screens staff live in, as the README shows them. A path that depends on
# the demo's rows is a function, called once the demo is loaded (None: nothing to show).
SCREENS: list[tuple[str, str | Callable[[], str | None]]] = [
    ("01-index", "/admin/"),
    ("02-sold-in-channel", "/admin/channels/soldinchannel/?channel=1"),
    ("03-not-in-pos-blank-sku", "/admin/channels/notinpos/?channel=1&sku=blank"),
    ("04-channel-statistic", "/admin/channels/channelstatistic/"),
    ("05-channel-page", "/admin/channels/channel/1/change/"),
    ("06-sync-logs", "/admin/synclogs/synclog/"),
    ("07-sync-log-report", "/admin/synclogs/synclog/report/"),
    ("08-scans", "/admin/channels/scan/"),
    ("09-inventory-syncs", "/admin/channels/inventorysync/"),
    ("10-product", "/admin/catalog/product/1/change/"),
    ("11-catalog-import", "/admin/catalog/product/import/"),
    ("12-stock-preview", stock_preview_path),
    ("13-bundle", bundle_path),
    ("14-price-overrides", "/admin/channels/priceoverride/"),
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (Django's signature)
        pass


class Command(BaseCommand):
    help = "Write PNGs of the main admin screens, from the demo data, with a headless chromium."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", default="docs/screenshots", help="Where the PNGs go.")
        parser.add_argument("--port", type=int, default=8799, help="The local port to serve on.")

    def handle(self, *args: Any, **options: Any) -> None:
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        if not Path(chromium).exists():
            raise CommandError("needs Debian's chromium: apt-get install -y chromium")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise CommandError("needs playwright: pip install -e '.[dev]'") from exc
        call_command("demo", "--setup-only", stdout=io.StringIO())
        price_overrides_sample()
        # the paths read the database here: Playwright's loop below is no place for the ORM
        screens = [(name, where() if callable(where) else where) for name, where in SCREENS]
        password = secrets.token_urlsafe(12)
        admin = get_user_model().objects.get(username="admin")
        admin.set_password(password)
        admin.save()
        server = WSGIServer(("127.0.0.1", options["port"]), QuietHandler)
        server.set_app(StaticFilesHandler(get_wsgi_application()))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{options['port']}"
        out = Path(options["out"])
        if not out.is_absolute():
            out = Path(settings.BASE_DIR) / out
        out.mkdir(parents=True, exist_ok=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(base + "/admin/login/")
                page.fill("#id_username", "admin")
                page.fill("#id_password", password)
                with page.expect_navigation():
                    page.click("input[type=submit]")
                for name, path in screens:
                    if path is None:
                        self.stdout.write(f"{name}: nothing to show in this database, skipped")
                        continue
                    page.goto(base + path, wait_until="networkidle")
                    target = out / f"{name}.png"
                    page.screenshot(path=str(target))
                    base_dir = Path(settings.BASE_DIR)
                    shown = (
                        target.relative_to(base_dir) if target.is_relative_to(base_dir) else target
                    )
                    self.stdout.write(f"{shown}  ({path})")
                browser.close()
        finally:
            server.shutdown()
