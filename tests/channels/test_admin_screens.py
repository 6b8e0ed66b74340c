# ruff: noqa: F811  (the fixtures pos and shop come from test_scans)
"""The channel screens as staff use them: the tab bar, the channel's buttons, progress."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels import tabs
from channels.models import Channel, InventorySync, Listing, PendingPush, Scan, SyncTrigger
from tests.channels.test_scans import make_channel, pos, run_scan, shop  # noqa: F401
from tests.factories import CHANNEL_FORM_RULES

pytestmark = pytest.mark.django_db


def tab_url(tab: tabs.Tab, channel: Channel, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"channel": channel.pk, **params}.items())
    return reverse(tab.changelist_url_name) + "?" + query


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_each_tab_shows_its_count_and_the_count_is_its_rows(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)
    page = admin_client.get(tab_url(tabs.SOLD_IN_CHANNEL, channel))
    bar = {row["label"]: row["count"] for row in page.context["tabs"]}
    for tab in tabs.TABS:
        shown = admin_client.get(tab_url(tab, channel)).context["cl"].result_count
        assert bar[tab.title] == shown, tab.title
    assert bar["Not in POS"] == 3  # the blank SKU, UNKNOWN-9 and OLD-1
    assert '<span class="omni-count">3</span>' in page.content.decode()


def test_a_tab_page_counts_its_rows_once_and_a_search_counts_what_it_found(pos, shop, admin_client):
    """The tab bar's count of the open tab is the changelist's too: over 100,000 listings each
    count is tens of milliseconds of the page."""
    channel = make_channel(shop)
    Channel.objects.create(
        kind="shopee", name="Another", credentials={}, order_outlet=channel.order_outlet
    )
    run_scan(channel)
    for tab in tabs.TABS:
        with CaptureQueriesContext(connection) as queries:
            page = admin_client.get(tab_url(tab, channel))
        counts = [query["sql"] for query in queries if query["sql"].startswith("SELECT COUNT(")]
        listed = page.context["cl"]
        assert listed.result_count == len(listed.result_list) > 0, tab.title
        if tab is tabs.CHANNEL_STATISTIC:  # the bar counts every channel, the page the one picked
            assert (listed.result_count, len(counts)) == (1, len(tabs.TABS) + 1)
            channels = [sql for sql in counts if '"channels_channel"' in sql]
            assert len(channels) == 2, channels
            assert not any("JOIN" in sql for sql in channels), channels
        else:
            assert len(counts) == len(tabs.TABS), (tab.title, counts)  # the tab bar's own
    found = admin_client.get(tab_url(tabs.SOLD_IN_CHANNEL, channel, q="tee-w")).context["cl"]
    assert found.result_count == len(found.result_list) == 1
    ordered = admin_client.get(tab_url(tabs.SOLD_IN_CHANNEL, channel, o="1", p="1"))
    assert ordered.context["cl"].result_count == ordered.context["tabs"][0]["count"]


def test_switching_tab_keeps_the_search_and_only_the_filters_the_tab_has(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)
    page = admin_client.get(tab_url(tabs.NOT_IN_POS, channel, q="mystery", sku="blank"))
    links = {row["label"]: row["url"] for row in page.context["tabs"]}
    sold = parse_qs(urlsplit(links["Sold in Channel"]).query)
    assert sold == {"channel": [str(channel.pk)], "q": ["mystery"]}  # no "sku": it has none
    # and every link opens (no filter the tab does not know)
    for url in links.values():
        assert admin_client.get(url).status_code == 200
    # the picker keeps the search and the filter when the channel changes
    assert ("q", "mystery") in page.context["picker_keep"]
    assert ("sku", "blank") in page.context["picker_keep"]


def test_a_partial_sku_finds_its_listing(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)
    middle = admin_client.get(tab_url(tabs.SOLD_IN_CHANNEL, channel, q="BLK"))
    start = admin_client.get(tab_url(tabs.SOLD_IN_CHANNEL, channel, q="tee-w"))
    assert [row.sku for row in middle.context["cl"].result_list] == ["TEE-BLK-M"]
    assert [row.title for row in start.context["cl"].result_list] == ["White Tee"]


def test_the_scan_button_queues_a_scan_and_returns_to_the_tab(
    pos, shop, admin_client, django_capture_on_commit_callbacks
):
    channel = make_channel(shop)
    back = tab_url(tabs.SOLD_IN_CHANNEL, channel)
    url = reverse("admin:channels_channel_scan", args=[channel.pk, Scan.Kind.FULL])
    # a GET (a prefetch, a crawler) only asks
    assert admin_client.get(url).status_code == 200
    assert not Scan.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):  # the worker takes it (inline here)
        response = admin_client.post(url, {"next": back})
    assert response.status_code == 302
    assert response.url == back
    assert "Full scan of Shopee Test queued" in messages_of(response)[0]
    assert Scan.objects.get().status == Scan.Status.SUCCEEDED
    # the tab now shows it, coloured, with what it saw
    html = admin_client.get(back).content.decode()
    assert "Full scan: Succeeded" in html
    assert "8 listings" in html


def test_a_scan_page_is_not_sent_elsewhere_than_this_site(pos, shop, admin_client):
    channel = make_channel(shop)
    url = reverse("admin:channels_channel_scan", args=[channel.pk, Scan.Kind.UPDATED])
    response = admin_client.post(url, {"next": "https://evil.example/"})
    assert response.url == reverse("admin:channels_channel_change", args=[channel.pk])


def test_a_running_scan_shows_a_bar_that_polls_until_it_ends(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)  # the last full scan saw 8 listings: the next one's expected length
    running = Scan.objects.create(
        channel=channel,
        kind=Scan.Kind.FULL,
        status=Scan.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=20),
        listings_done=2,
    )
    poll = reverse("admin:channels_scan_progress", args=[running.pk])
    bar = admin_client.get(poll).content.decode()
    assert f'data-poll="{poll}"' in bar
    assert 'data-state="running"' in bar
    assert "2 of 8 listings" in bar
    assert "width:25%" in bar
    assert "left" in bar  # an estimate from the pace so far
    # the tab's strip and Channel Statistic show the same bar
    assert (
        "2 of 8 listings"
        in admin_client.get(tab_url(tabs.SOLD_IN_CHANNEL, channel)).content.decode()
    )
    statistic = reverse(tabs.CHANNEL_STATISTIC.changelist_url_name)
    assert "2 of 8 listings" in admin_client.get(statistic).content.decode()
    # when it ends, the bar says how, and stops polling
    Scan.objects.filter(pk=running.pk).update(
        status=Scan.Status.FAILED, error="Shopee answered 500", finished_at=timezone.now()
    )
    bar = admin_client.get(poll).content.decode()
    assert 'data-state="failed"' in bar
    assert "Shopee answered 500" in bar
    assert "data-poll" not in bar


def test_test_connection_shows_the_marketplace_answer(pos, shop, admin_client):
    good = make_channel(shop)
    url = reverse("admin:channels_channel_test_connection", args=[good.pk])
    assert admin_client.get(url).status_code == 405  # a signed call is made on POST only
    ok = messages_of(admin_client.post(url))
    assert "connected" in ok[0]
    bad = Channel.objects.create(
        kind="shopee",
        name="Wrong key",
        api_base_url=shop.base_url,
        credentials={**shop.credentials, "partner_key": "not-the-key"},
        order_outlet=good.order_outlet,
    )
    refused = messages_of(
        admin_client.post(reverse("admin:channels_channel_test_connection", args=[bad.pk]))
    )
    assert "the connection failed" in refused[-1]
    assert "Wrong sign" in refused[-1]  # what Shopee said


def test_the_channel_page_carries_its_buttons_tab_links_and_webhook_url(pos, shop, admin_client):
    channel = make_channel(shop)
    html = admin_client.get(reverse("admin:channels_channel_change", args=[channel.pk])).content
    html = html.decode()
    for label in ("Test connection", "Scan Updated Products", "Sync inventory now"):
        assert label in html
    for tab in tabs.TABS:
        assert tab_url(tab, channel).replace("&", "&amp;") in html or tab_url(tab, channel) in html
    assert f"http://testserver/api/webhooks/{channel.pk}" in html


def test_sync_inventory_now_then_its_pushes_fill_the_bar(pos, shop, admin_client, settings):
    settings.OMNI_FLUSH_ON_COMMIT = False  # keep the pushes queued, as before a worker takes them
    channel = make_channel(shop)
    run_scan(channel)
    url = reverse("admin:channels_channel_sync_inventory", args=[channel.pk])
    admin_client.post(url)
    record = InventorySync.objects.get()
    assert record.trigger == SyncTrigger.SALES_CHANNEL_MANUAL
    assert record.queued == PendingPush.objects.count() > 0
    page = reverse("admin:channels_inventorysync_changelist")
    assert f"0 of {record.queued} listings pushed" in admin_client.get(page).content.decode()
    # as the worker pushes, the bar fills; when the outbox is empty, it says so
    PendingPush.objects.all().delete()
    poll = admin_client.get(reverse("admin:channels_inventorysync_progress", args=[record.pk]))
    assert 'data-state="succeeded"' in poll.content.decode()
    assert f"{record.queued} of {record.queued} listings" in poll.content.decode()


def test_channel_statistic_shows_every_channel_or_the_one_picked(pos, shop, admin_client):
    first = make_channel(shop)
    other = Channel.objects.create(
        kind="shopee", name="Another", credentials={}, order_outlet=first.order_outlet
    )
    run_scan(first)
    url = reverse(tabs.CHANNEL_STATISTIC.changelist_url_name)
    every = admin_client.get(url)
    assert {row.name for row in every.context["cl"].result_list} == {"Shopee Test", "Another"}
    one = admin_client.get(url, {"channel": other.pk})
    assert [row.name for row in one.context["cl"].result_list] == ["Another"]
    counted = next(row for row in every.context["cl"].result_list if row.pk == first.pk)
    share = round(100 * counted.sold_in_channel / (counted.sold_in_channel + counted.not_in_pos))
    assert counted.not_in_pos == 3
    assert f"{share}% matched" in every.content.decode()
    assert admin_client.get(url, {"channel": "abc"}).status_code == 302


def test_link_by_hand_returns_to_the_tab_it_came_from(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)
    blank = Listing.objects.get(sku="")
    tab = tab_url(tabs.NOT_IN_POS, channel, sku="blank")
    change = reverse("admin:channels_listing_change", args=[blank.pk])
    form = admin_client.get(change, HTTP_REFERER="http://testserver" + tab)
    assert f'name="next" value="http://testserver{tab}"'.replace("&", "&amp;") in (
        form.content.decode()
    )
    response = admin_client.post(
        change, {"variant": pos["BAG-NAT"].pk, "next": "http://testserver" + tab}
    )
    assert response.url == "http://testserver" + tab


def test_scans_filter_by_a_date_range(pos, shop, admin_client):
    channel = make_channel(shop)
    old = run_scan(channel)
    Scan.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    new = run_scan(channel)
    url = reverse("admin:channels_scan_changelist")
    today = timezone.localdate().isoformat()
    recent = admin_client.get(url, {"created_at__from": today, "created_at__to": today})
    assert [scan.pk for scan in recent.context["cl"].result_list] == [new.pk]
    assert admin_client.get(url, {"created_at__from": "yesterday"}).url.endswith("?e=1")


def test_link_by_hand_offers_variants_by_sku_name_and_options(
    pos, shop, admin_client, django_assert_max_num_queries
):
    from tests.factories import VariantFactory

    VariantFactory(
        sku="TEE-RED-L", options={"Color": "Red", "Size": "L"}, product__name="Linen Tee"
    )
    with django_assert_max_num_queries(6):  # not one query per option offered
        answer = admin_client.get(
            "/admin/autocomplete/",
            {
                "app_label": "channels",
                "model_name": "listing",
                "field_name": "variant",
                "term": "tee",
            },
        ).json()
    offered = {result["text"].split(" · ")[0]: result["text"] for result in answer["results"]}
    _, name, options = offered["TEE-RED-L"].split(" · ")
    assert name == "Linen Tee"
    assert set(options.split(" / ")) == {"Red", "L"}  # PostgreSQL keeps JSON keys in its order
    assert len(offered) == 6  # the factory's products are all "Cotton Tee …"


def test_the_calls_in_flight_and_a_second_of_a_channel_are_set_on_its_page(pos, shop, admin_client):
    channel = make_channel(shop)
    url = reverse("admin:channels_channel_change", args=[channel.pk])
    data = {
        "kind": channel.kind,
        "name": channel.name,
        "api_base_url": channel.api_base_url,
        "is_active": "on",
        "inventory_sync_mode": channel.inventory_sync_mode,
        "fulfillment_sync_minutes": channel.fulfillment_sync_minutes,
        "duplicate_sku_policy": channel.duplicate_sku_policy,
        "order_outlet": channel.order_outlet_id,
        "buffer": 0,
        "new_credentials": "",
        "max_concurrent_calls": 12,
        "max_calls_per_second": 40,
        **CHANNEL_FORM_RULES,
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel.refresh_from_db()
    assert (channel.max_concurrent_calls, channel.max_calls_per_second) == (12, 40)
    for field in ("max_concurrent_calls", "max_calls_per_second"):
        refused = admin_client.post(url, {**data, field: 0})
        assert field in refused.context["adminform"].form.errors


@pytest.mark.postgres
def test_every_field_the_listing_search_reads_is_served_by_an_index(pos, shop, rf, admin_user):
    """Titles and SKUs by any part (trigrams), item ids by their start (a B-tree): with one
    field unindexed, PostgreSQL would read every listing for each search."""
    from django.contrib.admin import site

    channel = make_channel(shop)
    run_scan(channel)
    request = rf.get("/", {"q": "17295"})
    request.user = admin_user
    listings = site._registry[Listing]
    found, _ = listings.get_search_results(request, Listing.objects.all(), "17295")
    with connection.cursor() as cursor:
        # On a table this small, reading all of it (or all of some index) would win: rule out
        # every plan but index conditions, so one field without its index shows as a Seq Scan.
        for plan in ("seqscan", "indexscan", "indexonlyscan"):
            cursor.execute(f"SET LOCAL enable_{plan} = off")
        plan = found.explain()
    assert "Seq Scan on channels_listing" not in plan, plan
    assert "BitmapOr" in plan, plan
    assert "channels_listing_item_id_prefix" in plan, plan
    assert "channels_listing_title_trgm" in plan, plan
