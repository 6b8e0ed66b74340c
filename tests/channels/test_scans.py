"""Scans and the six tabs, over real HTTP against the Shopee emulator."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.models import Product, ProductImage, Variant
from channels import scans, selectors
from channels.emulators.shopee import ShopeeEmulator
from channels.exceptions import ScanAlreadyRunning
from channels.listings import listings_download_to_pos, listings_upload
from channels.models import Channel, Listing, Scan
from channels.scans import scan_request, scan_run
from tests.channels.builders import shop_item
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pos():
    """The POS side: five variants, one of which the shop does not list."""
    skus = ["TEE-BLK-M", "TEE-WHT-M", "CUP-GRN", "MUG-01", "BAG-NAT"]
    return {sku: VariantFactory(sku=sku) for sku in skus}


@pytest.fixture
def shop():
    with ShopeeEmulator(items=0, seed=3) as emulator:
        ids = {
            "exact": emulator.put_item(shop_item("Black Tee", "TEE-BLK-M")),
            "noisy": emulator.put_item(shop_item("White Tee", " tee-wht-m ")),
            "blank": emulator.put_item(shop_item("Mystery Box", "")),
            "models": emulator.put_item(shop_item("Green Cup", "CUP-GRN", "UNKNOWN-9")),
            "dup_a": emulator.put_item(shop_item("Mug", "MUG-01")),
            "dup_b": emulator.put_item(shop_item("Mug (bundle)", "mug-01")),
            "gone": emulator.put_item(shop_item("Old Stock", "OLD-1")),
        }
        emulator.ids = ids
        yield emulator


# A 1×1 PNG: what a product photo needs to be for the marketplace to accept it.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def with_image(product: Product, emulator) -> Product:
    url = emulator.serve_file(f"/images/{product.pk}.png", PIXEL, "image/png")
    ProductImage.objects.create(product=product, url=url)
    return product


def make_channel(emulator, **credentials) -> Channel:
    outlet = OutletFactory(code="jkt")
    return Channel.objects.create(
        kind="shopee",
        name="Shopee Test",
        api_base_url=emulator.base_url,
        credentials={**emulator.credentials, **credentials},
        order_outlet=outlet,
    )


def run_scan(channel: Channel, kind: str = Scan.Kind.FULL) -> Scan:
    scan = scan_request(channel=channel, kind=kind, enqueue=False)
    return scan_run(scan_id=scan.pk)


def skus(queryset) -> list[str]:
    return sorted(queryset.values_list("sku", flat=True))


def test_full_scan_fills_each_tab_with_exactly_the_right_rows(pos, shop):
    # given
    channel = make_channel(shop)
    # when
    scan = run_scan(channel)
    # then
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    sold = {(lst.sku, lst.variant.sku) for lst in selectors.sold_in_channel(channel)}
    assert sold == {
        ("TEE-BLK-M", "TEE-BLK-M"),
        (" tee-wht-m ", "TEE-WHT-M"),
        ("CUP-GRN", "CUP-GRN"),
        ("MUG-01", "MUG-01"),
        ("mug-01", "MUG-01"),
    }
    assert skus(selectors.not_in_pos(channel)) == ["", "OLD-1", "UNKNOWN-9"]
    assert skus(selectors.multiple_listed_sku(channel)) == ["MUG-01", "mug-01"]
    assert skus(selectors.not_in_channel(channel)) == ["BAG-NAT"]
    assert selectors.in_pos().count() == 5
    stats = selectors.channel_statistic(channel)
    assert (stats.live_product, stats.sold_in_channel, stats.not_in_pos) == (8, 5, 3)
    assert (scan.seen, scan.new, scan.matched, scan.not_in_pos, scan.duplicates) == (8, 8, 5, 3, 2)
    channel.refresh_from_db()
    assert channel.last_scan_at == scan.started_at


def test_items_removed_on_the_channel_leave_every_tab_after_a_full_scan(pos, shop, settings):
    # two of the shop's eight listings go: a quarter, past the default safety valve
    settings.OMNI_SCAN_REMOVAL_CONFIRM_SHARE = 0.3
    channel = make_channel(shop)
    run_scan(channel)
    # when: the seller deletes one item and unlists the duplicate
    shop.delete_item(shop.ids["gone"])
    shop.delete_item(shop.ids["dup_b"])
    scan = run_scan(channel)
    # then
    assert scan.removed == 2
    assert "OLD-1" not in skus(selectors.not_in_pos(channel))
    assert skus(selectors.multiple_listed_sku(channel)) == []
    assert Listing.objects.get(item_id=str(shop.ids["gone"])).status == Listing.Status.REMOVED


def test_scan_updated_products_fetches_and_touches_only_what_changed(pos, shop):
    channel = make_channel(shop)
    run_scan(channel)
    before = dict(Listing.objects.values_list("pk", "updated_at"))
    shop.log.clear()
    # when: two items change on the channel
    shop.change_item(shop.ids["exact"], name="Black Tee (new photo)")
    shop.change_item(shop.ids["dup_a"], price=Decimal("45000"))
    scan = run_scan(channel, Scan.Kind.UPDATED)
    # then: only they were fetched and written
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    assert scan.seen == 2
    assert scan.changed == 2
    assert scan.new == 0
    assert scan.removed == 0
    touched = {lst.sku for lst in Listing.objects.all() if lst.updated_at != before[lst.pk]}
    assert touched == {"TEE-BLK-M", "MUG-01"}
    assert shop.log.count("/api/v2/product/get_model_list") == 0
    assert Listing.objects.get(sku="TEE-BLK-M").title == "Black Tee (new photo)"


def test_a_channel_side_title_change_never_reaches_the_pos(pos, shop):
    channel = make_channel(shop)
    run_scan(channel)
    name_before = pos["TEE-BLK-M"].product.name
    shop.change_item(shop.ids["exact"], name="Renamed on Shopee")
    run_scan(channel, Scan.Kind.UPDATED)
    assert Product.objects.get(pk=pos["TEE-BLK-M"].product_id).name == name_before


def test_wrong_partner_key_fails_clearly_and_changes_nothing(pos, shop):
    channel = make_channel(shop, partner_key="not-the-key")
    scan = run_scan(channel)
    assert scan.status == Scan.Status.FAILED
    assert "sign" in scan.error.lower()
    assert "partner key" in scan.error.lower()
    assert Listing.objects.count() == 0
    channel.refresh_from_db()
    assert channel.last_scan_at is None
    assert channel.last_error


def test_throttling_and_server_errors_are_retried_and_the_scan_completes(pos):
    with ShopeeEmulator(items=150, seed=11) as shop:
        shop.set_faults(error_rate=0.15, throttle_rate=0.15, retry_after=0.01)
        channel = make_channel(shop)
        scan = run_scan(channel)
        expected = len(shop.quantities())
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    assert Listing.objects.filter(channel=channel).present().count() == expected
    assert scan.http_calls > 0


def test_a_second_scan_request_is_told_one_is_running(pos, shop):
    channel = make_channel(shop)
    first = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    with pytest.raises(ScanAlreadyRunning, match=f"scan #{first.pk}"):
        scan_request(channel=channel, kind=Scan.Kind.UPDATED, enqueue=False)


def test_a_scan_task_delivered_twice_runs_once(pos, shop):
    channel = make_channel(shop)
    scan = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    scan_run(scan_id=scan.pk)
    calls = shop.log.count("/api/v2/product/get_item_list")
    again = scan_run(scan_id=scan.pk)
    assert again.status == Scan.Status.SUCCEEDED
    assert shop.log.count("/api/v2/product/get_item_list") == calls


def test_upload_creates_an_item_the_next_scan_shows_as_sold_in_channel(pos, shop):
    channel = make_channel(shop)
    run_scan(channel)
    bag = pos["BAG-NAT"]
    with_image(bag.product, shop)
    # when
    report = listings_upload(channel=channel, variant_ids=[bag.pk])
    # then
    assert report.failed == []
    assert len(report.done) == 1
    assert "BAG-NAT" in str([shop.item(i) for i in shop.item_ids()])
    run_scan(channel)
    assert "BAG-NAT" in skus(selectors.sold_in_channel(channel))
    assert "BAG-NAT" not in [v.sku for v in selectors.not_in_channel(channel)]


def test_upload_sends_synced_fields_only(pos, shop):
    channel = make_channel(shop)
    product = ProductFactory(name="Canvas Tote", supplier="Secret Supplier", description="Roomy.")
    with_image(product, shop)
    VariantFactory(product=product, sku="TOTE-1", options={"Color": "Natural"})
    VariantFactory(product=product, sku="TOTE-2", options={"Color": "Black"})
    listings_upload(channel=channel, variant_ids=product.variants.values_list("pk", flat=True))
    sent = str([call.body for call in shop.log.writes])
    assert "Canvas Tote" in sent
    assert "TOTE-2" in sent
    assert "Secret Supplier" not in sent


def test_download_to_pos_creates_the_product_and_refuses_a_blank_sku(pos, shop):
    channel = make_channel(shop)
    run_scan(channel)
    unknown = Listing.objects.get(sku="UNKNOWN-9")
    blank = Listing.objects.get(sku="")
    # when
    report = listings_download_to_pos(channel=channel, listing_ids=[unknown.pk, blank.pk])
    # then
    assert len(report.done) == 1
    assert "fill in the SKU" in report.skipped[0]
    variant = Variant.objects.get(sku="UNKNOWN-9")
    assert variant.product.name == "Green Cup"
    unknown.refresh_from_db()
    assert unknown.variant == variant
    assert "UNKNOWN-9" in skus(selectors.sold_in_channel(channel))


def test_a_listing_linked_by_hand_keeps_its_link_through_scans(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)
    blank = Listing.objects.get(sku="")
    url = reverse("admin:channels_listing_change", args=[blank.pk])
    response = admin_client.post(url, {"variant": pos["BAG-NAT"].pk})
    assert response.status_code == 302
    run_scan(channel)
    blank.refresh_from_db()
    assert blank.variant == pos["BAG-NAT"]
    assert blank.is_manual_link


TAB_URLS = [
    "admin:channels_soldinchannel_changelist",
    "admin:channels_notinpos_changelist",
    "admin:channels_notinchannel_changelist",
    "admin:channels_inpos_changelist",
    "admin:channels_multiplelistedsku_changelist",
    "admin:channels_channelstatistic_changelist",
]


@pytest.mark.parametrize("url_name", TAB_URLS)
def test_every_tab_page_runs_a_bounded_number_of_queries(url_name, admin_client):
    # given: a channel with few rows, then one with many more
    counts = []
    with ShopeeEmulator(items=0, seed=5) as shop:
        channel = make_channel(shop)
        for size in (5, 40):
            for n in range(size):
                variant = VariantFactory()
                shop.put_item(shop_item(f"Tee {size}-{n}", variant.sku))
                shop.put_item(shop_item(f"Tee {size}-{n} bis", variant.sku))  # a duplicate
                shop.put_item(shop_item(f"Stray {size}-{n}", f"STRAY-{size}-{n}"))
                VariantFactory()  # not in channel
            run_scan(channel)
            with CaptureQueriesContext(connection) as captured:
                response = admin_client.get(reverse(url_name) + f"?channel={channel.pk}")
            assert response.status_code == 200
            counts.append(len(captured))
    # then: eight times the rows, not one query more
    assert counts[1] <= counts[0], counts
    assert counts[1] <= 20


def test_tab_pages_show_the_tab_bar_and_the_rows(pos, shop, admin_client):
    channel = make_channel(shop)
    run_scan(channel)
    response = admin_client.get(
        reverse("admin:channels_notinpos_changelist") + f"?channel={channel.pk}"
    )
    html = response.content.decode()
    for label in (
        "Sold in Channel",
        "Not in POS",
        "Not in Channel",
        "In POS",
        "Multiple Listed SKU",
        "Channel Statistic",
    ):
        assert label in html
    assert "UNKNOWN-9" in html
    assert "TEE-BLK-M" not in html
    stats = admin_client.get(reverse("admin:channels_channelstatistic_changelist"))
    assert stats.status_code == 200  # every channel side by side
    assert "Scan Updated Products" in stats.content.decode()


def test_a_scan_abandoned_by_a_dead_worker_does_not_block_the_channel_forever(pos, shop):
    channel = make_channel(shop)
    stuck = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    Scan.objects.filter(pk=stuck.pk).update(
        status=Scan.Status.RUNNING, started_at=two_minutes_ago, progress_at=two_minutes_ago
    )
    # when: its heartbeat has been silent for two minutes
    fresh = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    # then
    stuck.refresh_from_db()
    assert stuck.status == Scan.Status.FAILED
    assert "Abandoned" in stuck.error
    assert scan_run(scan_id=fresh.pk).status == Scan.Status.SUCCEEDED


def test_a_running_scan_with_a_live_heartbeat_still_blocks_a_second_one(pos, shop):
    channel = make_channel(shop)
    running = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    Scan.objects.filter(pk=running.pk).update(
        status=Scan.Status.RUNNING,
        started_at=timezone.now() - timedelta(hours=2),
        progress_at=timezone.now() - timedelta(seconds=5),
    )
    with pytest.raises(ScanAlreadyRunning):
        scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)


@pytest.mark.django_db(transaction=True)
def test_a_running_scan_beats_while_it_waits_on_the_marketplace(pos, shop, monkeypatch):
    monkeypatch.setattr(scans, "HEARTBEAT_SECONDS", 0.05)
    channel = make_channel(shop)
    scan = scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False)
    beats = []

    def slow_page(current) -> None:
        before = Scan.objects.get(pk=current.pk).progress_at
        time.sleep(0.5)  # a slow marketplace: no page is written meanwhile
        beats.append(Scan.objects.get(pk=current.pk).progress_at > before)

    assert scan_run(scan_id=scan.pk, on_page=slow_page).status == Scan.Status.SUCCEEDED
    assert beats  # the scan read at least one page
    assert all(beats)


def test_a_second_full_scan_of_an_unchanged_shop_changes_nothing(pos, shop):
    channel = make_channel(shop)
    run_scan(channel)
    again = run_scan(channel)
    assert (again.seen, again.new, again.changed, again.removed) == (8, 0, 0, 0)


def test_a_scan_shows_its_progress_between_writes(pos, monkeypatch):
    """A batch takes a while to fill from a slow marketplace: the bar moves as pages are read."""
    monkeypatch.setattr(scans, "WRITE_BATCH", 100_000)  # one write, at the end
    monkeypatch.setattr(scans, "PROGRESS_SECONDS", 0)
    real_pages = scans._Waiting
    shown: list[tuple[int, int, int]] = []

    def watched(pages):
        def each():
            for page in pages:
                yield page  # resumed once the scan has handled this page
                scan = Scan.objects.get()
                shown.append((scan.pages_done, scan.listings_done, Listing.objects.count()))

        return real_pages(each())

    monkeypatch.setattr(scans, "_Waiting", watched)
    with ShopeeEmulator(items=250, seed=5) as emulator:
        scan = run_scan(make_channel(emulator))
    assert len(shown) >= 2
    assert [pages for pages, _, _ in shown] == list(range(1, len(shown) + 1))
    read = [listings for _, listings, _ in shown]
    assert read == sorted(read)
    assert 0 < read[0] < read[-1] <= scan.seen
    assert {written for _, _, written in shown} == {0}  # read, not written yet
    assert (scan.listings_done, Listing.objects.count()) == (scan.seen, scan.seen)


def test_a_first_scan_looks_up_only_the_items_it_has_written(pos, shop, monkeypatch):
    # given: a scan writing every page on its own, and an item listed again on a later page
    # (an offset walk sees one twice when an item before it moves)
    monkeypatch.setattr(scans, "WRITE_BATCH", 1)
    real_pages = scans._Waiting
    repeated: list[int] = []

    def shifted(pages):
        def again():
            first = None
            for page in pages:
                first = first or page
                yield page
            repeated.append(len(first))
            yield first  # the first page, listed once more at the end

        return real_pages(again())

    monkeypatch.setattr(scans, "_Waiting", shifted)
    channel = make_channel(shop)

    def scanned_with_lookups() -> tuple[Scan, int]:
        with CaptureQueriesContext(connection) as captured:
            scan = run_scan(channel)
        lookups = [
            q["sql"]
            for q in captured.captured_queries
            if q["sql"].lstrip().upper().startswith("SELECT")
            and "channels_listing" in q["sql"]
            and "item_id" in q["sql"]
        ]
        return scan, len(lookups)

    # when: the channel's first scan
    first, first_lookups = scanned_with_lookups()
    # then: only the page listed again was looked up, and it was not written twice
    assert (first.seen, first.new, first.changed) == (8 + repeated[0], 8, 0)
    assert first_lookups == 1
    assert Listing.objects.filter(channel=channel).count() == 8
    # when: a second scan, of a channel that has listings
    again, again_lookups = scanned_with_lookups()
    # then: every page is looked up, and once more the items left unseen at the end (none),
    # and nothing has changed
    assert (again.seen, again.new, again.changed) == (8 + repeated[1], 0, 0)
    assert again_lookups == again.pages_done + 1


@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "99999", ""])
def test_a_tab_asked_for_a_channel_that_is_not_one_opens_on_the_first_channel(
    value, pos, shop, admin_client
):
    # given: one channel; a bookmarked or hand-typed address naming no channel of it
    channel = make_channel(shop)
    url = reverse("admin:channels_soldinchannel_changelist")
    # when
    response = admin_client.get(url, {"channel": value, "q": "tee"})
    # then: the normal admin answer, the tab of the first channel, the search kept
    assert response.status_code == 302
    assert response.url == f"{url}?channel={channel.pk}&q=tee"
    assert admin_client.get(response.url).status_code == 200


def test_not_in_pos_narrows_to_the_listings_with_a_blank_sku(pos, shop, admin_client):
    # given: Not in POS holds a listing with no SKU and listings whose SKU the POS lacks
    channel = make_channel(shop)
    run_scan(channel)
    url = reverse("admin:channels_notinpos_changelist")
    # when
    blank = admin_client.get(url, {"channel": channel.pk, "sku": "blank"})
    filled = admin_client.get(url, {"channel": channel.pk, "sku": "filled"})
    # then: each page lists exactly its side, and the filter says so in the sidebar
    assert [row.title for row in blank.context["cl"].result_list] == ["Mystery Box"]
    assert sorted(row.sku for row in filled.context["cl"].result_list) == ["OLD-1", "UNKNOWN-9"]
    assert ">Blank</a>" in blank.content.decode()
