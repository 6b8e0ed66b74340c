"""The admin index as staff read it."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_the_admin_index_names_every_table_in_proper_plurals(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Pending pushes" in html
    assert "Catalog pushes" in html
    # no English plural ends in "shs", "chs" or "xs" the way Django's default "+s" makes them
    assert not re.search(r"\b\w+(sh|ch|x)s\b", html), re.findall(r"\b\w+(?:sh|ch|x)s\b", html)


def test_every_admin_page_carries_the_favicon(admin_client, client):
    from django.contrib.staticfiles import finders

    pages = [
        admin_client.get(reverse("admin:index")),
        admin_client.get(reverse("admin:channels_channel_changelist")),
        client.get(reverse("admin:login")),  # before signing in, too
    ]
    for page in pages:
        assert '<link rel="icon" href="/static/omni/favicon.svg"' in page.content.decode()
    assert finders.find("omni/favicon.svg")


def test_sync_triggers_and_push_reasons_read_as_words(admin_client):
    from catalog.models import StockMovement
    from channels.models import Channel, InventorySync, Listing, PendingPush, SyncTrigger
    from tests.factories import OutletFactory

    # given: a manual sync of a channel, and a push queued by a stock import
    channel = Channel.objects.create(
        kind="shopee", name="Shop", order_outlet=OutletFactory(), credentials={}
    )
    InventorySync.objects.create(channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL)
    listing = Listing.objects.create(channel=channel, item_id="1", variant_ref="", sku="A")
    now = timezone.now()
    PendingPush.objects.create(
        listing=listing,
        channel=channel,
        reason=StockMovement.Trigger.IMPORT,
        requested_at=now,
        next_attempt_at=now,
    )
    # when
    syncs = admin_client.get(reverse("admin:channels_inventorysync_changelist"))
    pushes = admin_client.get(reverse("admin:channels_pendingpush_changelist"))
    # then: the words of the trigger table, never the stored values
    shown = _text(syncs.content.decode())
    assert "Sales channel manual sync" in shown
    assert "sales_channel_manual" not in shown
    assert StockMovement.Trigger.IMPORT.label in _text(pushes.content.decode())


def _text(html: str) -> str:
    """What a page shows: its text, without tags and their attributes."""
    return re.sub(r"<[^>]+>", " ", html)


def test_the_index_and_sidebar_read_in_dealpos_order(admin_client):
    from channels import tabs

    html = admin_client.get(reverse("admin:index")).content.decode()
    captions = re.findall(r'<a href="[^"]*" class="section"[^>]*>([^<]+)</a>', html)
    assert captions == [
        "Channel products",
        "Sync Logs",
        "Channels",
        "Catalog",
        "Operations",
        "Access",
        # django-q's own tables are under Operations: no other section is left
    ]
    names = re.findall(r'<th scope="row"[^>]*>\s*<a href="[^"]*"[^>]*>([^<]+)</a>', html)
    # the six product tabs first, in the tab bar's order; then the six steps, All, the report
    assert names[:6] == [tab.title for tab in tabs.TABS]
    assert names[6:14] == [
        "Create Order",
        "Convert Order To Invoice",
        "Create Invoice",
        "Create Outbound Logistic",
        "Add Payment",
        "Void Invoice",
        "All",
        "Report · last 7 days",
    ]
    operations = html.split(">Operations<", 1)[1].split("</table>", 1)[0]
    for internal in ["Pending pushes", "Catalog pushes", "Inventory syncs", "Scans", "Webhook"]:
        assert internal in operations
    assert "Idempotent requests" in operations or "Idempotency" in operations


def test_navigation_names_every_registered_model():
    from django.contrib import admin

    from omni.admin_site import NAVIGATION, model_key

    named = {getattr(e, "model", e) for section in NAVIGATION for e in section.entries}
    assert {model_key(model) for model in admin.site._registry} <= named


def test_the_sidebar_follows_the_same_order(admin_client):
    page = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()
    sidebar = page.split('id="nav-sidebar"', 1)[1]
    assert (
        sidebar.index("Sold in Channel")
        < sidebar.index("Create Order")
        < sidebar.index("Pending pushes")
    )
