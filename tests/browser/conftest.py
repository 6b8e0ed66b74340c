"""Browser tests: a real Chromium (Debian's package) driven by Playwright, against the admin
served by pytest-django's live server, over a small shop built the way the demo builds it.

`make test` installs chromium where it can (as root, with apt); elsewhere these tests are
skipped with the reason and how to enable them.
"""

import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse

# Playwright's sync API keeps an event loop running in this thread, which Django takes for an
# async context and refuses ORM calls in; the tests' own calls are plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1440


def browser_missing() -> str:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return (
            "the browser tests need Debian's chromium: `sudo apt-get install -y chromium` "
            "(make test installs it when run as root)"
        )
    if importlib.util.find_spec("playwright") is None:
        return "the browser tests need playwright: pip install -e '.[dev]'"
    return ""


def pytest_collection_modifyitems(config, items) -> None:
    reason = browser_missing()
    if reason:
        for item in items:
            if "tests/browser/" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Staff:
    """A logged-in page, with what went wrong on the pages it opened."""

    page: object
    base: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.base + path, wait_until="networkidle")
        self.check_layout()

    def check_layout(self) -> None:
        """Nothing wider than the window, and no table scrolling sideways inside the page (a
        changelist under the filter sidebar, an inline, a module). A box that lets what sticks
        out show (overflow visible) hides nothing; the page's own width catches it."""
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"{self.page.url}: page {width}px wide"
        hidden = self.page.evaluate(
            """() => Math.max(0, ...[...document.querySelectorAll(
                         '#changelist .results, .inline-group, .module')]
                       .filter(e => getComputedStyle(e).overflowX !== 'visible')
                       .map(e => e.scrollWidth - e.clientWidth))"""
        )
        assert hidden <= 1, f"{self.page.url}: {hidden}px of a table cut off"


# One browser per test, not per session: Playwright's sync API runs an event loop in this
# thread while it is open, and the suite's other browser tests start their own.
@pytest.fixture
def chromium():
    if browser_missing():
        pytest.skip(browser_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=["--no-sandbox"],
        )
        yield browser
        browser.close()


@pytest.fixture
def staff(chromium, live_server, admin_user) -> Iterator[Staff]:
    """A member of staff logged in at 1440 px; at the end, no JavaScript error on any page."""
    context = chromium.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    staff = Staff(page, live_server.url)
    page.on("console", lambda m: m.type == "error" and staff.errors.append(m.text))
    page.on("pageerror", lambda exc: staff.errors.append(str(exc)))
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    with page.expect_navigation():
        page.click("input[type=submit]")
    yield staff
    context.close()
    assert staff.errors == []


# A 1×1 PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@dataclass
class Shop:
    channel: object
    emulator: object


@pytest.fixture
def shop(transactional_db) -> Iterator[Shop]:
    """The demo, small: a POS catalog, a Shopee shop overlapping it (known, unknown, blank and
    duplicated SKUs), scanned, with a week of orders through the pipeline."""
    from catalog.demo import demo_catalog_load
    from catalog.models import Outlet, ProductImage, Variant
    from channels.emulators.shopee import ShopeeEmulator
    from channels.models import Channel, Scan
    from channels.scans import scan_request, scan_run
    from synclogs.demo import demo_orders_backfill

    demo_catalog_load(products=30)
    skus = list(Variant.objects.order_by("pk").values_list("sku", flat=True))
    emulator = ShopeeEmulator(items=40, seed=11, pos_skus=skus)
    emulator.start()
    channel = Channel.objects.create(
        kind="shopee",
        name="Shopee Demo",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=Outlet.objects.get(code="jkt-central"),
    )
    channel.outlets.set(Outlet.objects.all())
    # product photos the marketplace can fetch when a product is uploaded
    ProductImage.objects.update(url=emulator.serve_file("/images/demo.png", PIXEL, "image/png"))
    scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    demo_orders_backfill(emulator, channel, days=7, per_day=3)
    yield Shop(channel, emulator)
    emulator.stop()


@pytest.fixture
def worker(monkeypatch):
    """Queued scans run in a thread of this process, as the django-q worker would run them."""
    from channels import scans

    threads: list[threading.Thread] = []

    def run(scan_id: int) -> None:
        try:
            scans.scan_run(scan_id=scan_id)
        finally:
            connections.close_all()

    def enqueue(scan_id: int) -> None:
        thread = threading.Thread(target=run, args=(scan_id,), daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(scans, "_enqueue", enqueue)
    yield
    for thread in threads:
        thread.join(timeout=60)
