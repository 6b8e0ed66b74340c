"""`python manage.py screenshots`: PNGs of the main admin screens, from the demo data.

Loads the demo into the configured database (`make screenshots` points it at a scratch SQLite
file), serves the admin on a local port in this process, and has Debian's chromium (driven by
Playwright) log in and photograph each screen at 1440 x 900.
"""

import io
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from django.core.wsgi import get_wsgi_application

# (file name, path): the screens staff live in, as the README shows them.
SCREENS = [
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
                for name, path in SCREENS:
                    page.goto(base + path, wait_until="networkidle")
                    target = out / f"{name}.png"
                    page.screenshot(path=str(target))
                    self.stdout.write(f"{target.relative_to(settings.BASE_DIR)}  ({path})")
                browser.close()
        finally:
            server.shutdown()
