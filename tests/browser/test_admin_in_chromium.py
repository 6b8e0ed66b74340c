"""The admin as staff use it, in Chromium at 1440 px: every page opened here is also checked
for JavaScript errors and for anything cut off or scrolling sideways (see conftest.Staff)."""

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from catalog.models import StockMovement
from channels import tabs
from channels.models import Listing, Scan

pytestmark = pytest.mark.django_db(transaction=True)


def tab_path(tab: tabs.Tab, channel, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"channel": channel.pk, **params}.items())
    return reverse(tab.changelist_url_name) + "?" + query


def result_count(page) -> int:
    """The number of rows the changelist says it has ("12 results" or "12 sold in channel")."""
    text = page.locator("#changelist .paginator").inner_text().strip()
    return int(re.search(r"(\d[\d,]*)\s+\D+$", text).group(1).replace(",", ""))


def messages(page) -> str:
    return (
        page.locator("ul.messagelist").inner_text()
        if page.locator("ul.messagelist").count()
        else ""
    )


def test_every_tab_shows_its_count_and_opens_on_as_many_rows(staff, shop):
    staff.open(tab_path(tabs.SOLD_IN_CHANNEL, shop.channel))
    bar = {}
    for link in staff.page.locator("nav.omni-tabs a").all():
        label = link.inner_text()
        title, count = label.rsplit(" ", 1) if label[-1].isdigit() else (label, "")
        bar[title.strip()] = int(count)
    assert list(bar) == [tab.title for tab in tabs.TABS]
    for tab in tabs.TABS:
        staff.open(tab_path(tab, shop.channel))
        assert result_count(staff.page) == bar[tab.title], tab.title
    assert bar["Sold in Channel"] > 0
    assert bar["Not in POS"] > 0


def test_a_partial_sku_finds_its_listings(staff, shop):
    listing = Listing.objects.filter(channel=shop.channel).exclude(variant=None).first()
    part = listing.sku_key[2:6]
    staff.open(tab_path(tabs.SOLD_IN_CHANNEL, shop.channel))
    staff.page.fill("#searchbar", part.upper())
    with staff.page.expect_navigation():
        staff.page.press("#searchbar", "Enter")
    staff.check_layout()
    skus = staff.page.locator("#result_list td.field-sku_cell").all_inner_texts()
    assert listing.sku in skus
    assert all(part in sku.lower() for sku in skus)


def test_listings_with_two_19_digit_ids_fit_the_screen_in_the_tabs_and_the_list(staff, shop):
    # given: listings whose ids are as long as TikTok Shop's and Tokopedia's
    listed = Listing.objects.filter(channel=shop.channel).exclude(variant=None).order_by("title")
    for n, listing in enumerate(listed[:5]):
        Listing.objects.filter(pk=listing.pk).update(
            item_id=f"17295000000000{n:05}", variant_ref=f"17296000000000{n:05}"
        )
    # when/then: the pages showing them open with nothing cut off (Staff.open checks)
    staff.open(tab_path(tabs.SOLD_IN_CHANNEL, shop.channel, o="1"))
    staff.open(reverse("admin:channels_listing_changelist") + "?q=17295")
    assert result_count(staff.page) == 5


def test_every_list_of_the_admin_fits_the_screen(staff, shop):
    # given: the shop scanned and a week of orders through the pipeline (the fixture), and the
    # ledger's longest cells: every trigger, a long reference and actor
    movement = StockMovement.objects.order_by("pk").first()
    for trigger in StockMovement.Trigger:
        movement.pk, movement.trigger = None, trigger
        movement.on_hand_delta, movement.on_hand_after = -1200, 98765
        movement.reference = "Shopee Demo order 2612073BH7KQ9R, cancelled by the buyer"
        movement.actor = "webhook: Shopee Demo (order status update)"
        movement.save()
    tab_models = {tab.proxy for tab in tabs.TABS}
    paths = []
    for model in admin.site._registry:
        opts = model._meta
        path = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        paths.append(path + (f"?channel={shop.channel.pk}" if model in tab_models else ""))
    # when/then: each opens with nothing cut off and no script error (Staff.open checks)
    for path in paths:
        staff.open(path)
    assert len(paths) > 30


def test_a_scan_shows_its_progress_until_it_succeeds(staff, shop, worker):
    shop.emulator.set_faults(latency=0.4)  # a marketplace that takes its time
    staff.open(tab_path(tabs.SOLD_IN_CHANNEL, shop.channel))
    with staff.page.expect_navigation():
        staff.page.click(".omni-strip button:text-is('Scan')")
    assert "Full scan of Shopee Demo queued" in messages(staff.page)
    bar = staff.page.locator(".omni-strip .omni-progress")
    assert bar.get_attribute("data-state") in ("queued", "running")
    # the page asks for the bar again every 2 s: it moves on without a reload
    staff.page.wait_for_selector(".omni-strip .omni-progress[data-state=succeeded]", timeout=60_000)
    assert "Full scan: Succeeded" in bar.inner_text()
    assert Scan.objects.filter(channel=shop.channel).latest("created_at").status == "succeeded"


def test_upload_from_not_in_channel(staff, shop):
    staff.open(tab_path(tabs.NOT_IN_CHANNEL, shop.channel))
    sku = (
        staff.page.locator("#result_list tbody tr").first.locator("td.field-sku_link").inner_text()
    )
    staff.page.locator("#result_list tbody tr").first.locator("input.action-select").check()
    staff.page.select_option("select[name=action]", "upload")
    with staff.page.expect_navigation():
        staff.page.click("button[name=index]")
    assert "Uploaded 1" in messages(staff.page)
    assert Listing.objects.filter(channel=shop.channel, sku=sku).exists()


def test_download_to_pos_of_a_blank_sku_says_why_not(staff, shop):
    staff.open(tab_path(tabs.NOT_IN_POS, shop.channel, sku="blank"))
    rows = staff.page.locator("#result_list tbody tr")
    assert rows.count() > 0
    rows.first.locator("input.action-select").check()
    staff.page.select_option("select[name=action]", "download_to_pos")
    with staff.page.expect_navigation():
        staff.page.click("button[name=index]")
    assert "has no SKU: fill in the SKU on Shopee first" in messages(staff.page)


def test_manual_download_order_brings_an_order_into_the_pos(staff, shop):
    from synclogs.models import SalesOrder

    listing = Listing.objects.filter(channel=shop.channel).exclude(variant=None).first()
    number = shop.emulator.create_order([(listing.item_id, listing.variant_ref, 1)], state="paid")
    staff.open(reverse("admin:synclogs_report"))
    staff.page.select_option("select[name=channel]", str(shop.channel.pk))
    staff.page.fill("textarea[name=order_numbers]", number)
    with staff.page.expect_navigation():
        staff.page.click("input[value='Download orders']")
    staff.check_layout()
    assert number in messages(staff.page)
    assert SalesOrder.objects.filter(order_number=number).exists()


def test_a_report_number_opens_exactly_its_rows(staff, shop):
    staff.open(reverse("admin:synclogs_report"))
    links = staff.page.locator("table.omni-report-table td.num a")
    assert links.count() > 6
    for index in (0, 1, 2):  # an order count, the 200s, the 409s of the channel's first line
        link = links.nth(index)
        number = int(link.inner_text().replace(",", ""))
        href = link.get_attribute("href")
        staff.open(href)
        assert result_count(staff.page) == number, href
        staff.open(reverse("admin:synclogs_report"))


def test_a_catalog_csv_with_a_bad_row_names_the_line_and_writes_nothing(staff, shop, tmp_path):
    from catalog.models import Variant

    before = Variant.objects.count()
    csv = tmp_path / "products.csv"
    csv.write_text(
        "handle,name,sku,retail_price\n"
        "linen-tee,Linen Tee,LT-S,149000\n"
        "linen-tee,Linen Tee,LT-M,not a price\n"
    )
    staff.open(reverse("admin:catalog_product_import"))
    staff.page.set_input_files("input[name=file]", str(csv))
    with staff.page.expect_navigation():
        staff.page.click("#content-main input[type=submit], #content-main button[type=submit]")
    # the import runs on the worker (inline here); its page shows how it ended
    staff.page.wait_for_selector("#import-result", timeout=20_000)
    staff.check_layout()
    problems = staff.page.locator("#import-errors tbody tr").all_inner_texts()
    assert any(row.startswith("3") and "retail_price" in row for row in problems), problems
    assert Variant.objects.count() == before  # one bad row: nothing written
