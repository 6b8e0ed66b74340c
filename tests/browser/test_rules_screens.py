"""The rules' screens in Chromium at 1440 px: stock allocation rules and their per-SKU preview,
bundles, SKU aliases and price rules, over a Shopee and a Lazada shop generated from the demo
catalog and scanned from their emulators. Every page opened is checked for JavaScript errors
and for anything cut off (conftest.Staff) or drawn behind the form; each screen is also
photographed into /tmp/shots/ for a person to look at (the photographs are not compared)."""

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.urls import reverse

from catalog.models import BundleComponent, Outlet, Stock, Variant
from channels.models import Channel, Listing, PriceOverride, PriceSync, SkuAlias, StockRule
from tests.browser.test_admin_in_chromium import messages, result_count
from tests.channels.builders import shop_item

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("/tmp/shots")
# The badge colours of omni.admin_tools (GREEN, RED, GREY, ORANGE) and of the bundle badge
# (catalog.admin.BUNDLE_COLOUR), as the browser computes them.
GREEN, RED, GREY, ORANGE = (
    "rgb(46, 125, 50)",
    "rgb(198, 40, 40)",
    "rgb(117, 117, 117)",
    "rgb(239, 108, 0)",
)
PURPLE = "rgb(106, 27, 154)"
# Lazada's own seller SKUs for two POS variants, mapped by SKU aliases.
OLD_CODES = ["LZD-88812", "LZD-88813"]


def look(staff, name: str) -> None:
    """The page staff are on: nothing cut off, no heading's band stretched behind other boxes
    (a box that follows a floated one), and its photograph for a person to look at."""
    staff.check_layout()
    tallest = staff.page.evaluate(
        "() => Math.max(0, ...[...document.querySelectorAll('.module > h2')]"
        ".map(h => h.getBoundingClientRect().height))"
    )
    assert tallest <= 60, f"{staff.page.url}: a module heading {tallest}px tall"
    SHOTS.mkdir(exist_ok=True)
    staff.page.screenshot(path=str(SHOTS / f"rules-{name}.png"), full_page=True)


def see(staff, path: str, name: str) -> None:
    staff.open(path)
    look(staff, name)


@dataclass
class RulesShop:
    shopee: Channel
    lazada: Channel
    variant: Variant  # on both channels; its own rule on Lazada, its product's on Shopee
    bundle: Variant


def available(variant: Variant) -> int:
    """On hand less reserved over every outlet (both channels sell from all of them)."""
    return sum(s.on_hand - s.reserved for s in Stock.objects.filter(variant=variant))


def listed_on_both(shopee: Channel, lazada: Channel) -> Variant:
    """The plain variant listed on both channels that has the most stock (so the rules bite)."""
    on_shopee = Listing.objects.filter(channel=shopee).values("variant_id")
    both = (
        Variant.objects.filter(channel_listings__channel=lazada, pk__in=on_shopee, components=None)
        .select_related("product")
        .distinct()
    )
    return max(both, key=available)


def connect(kind: str, label: str, emulator, **rules) -> Channel:
    channel = Channel.objects.create(
        kind=kind,
        name=f"{label} Demo",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=Outlet.objects.get(code="jkt-central"),
        **rules,
    )
    channel.outlets.set(Outlet.objects.all())
    return channel


@pytest.fixture
def rules_shop(transactional_db):
    """The demo, small, with its rules at work (see `rules_at_work`): the catalog (with its
    bundles), and a Shopee and a Lazada shop generated from it, served by their emulators."""
    from catalog.demo import demo_catalog_load
    from channels.demo import demo_pos_variants, demo_shop

    demo_catalog_load(products=30)
    pos = demo_pos_variants()
    shops = {
        kind: demo_shop(kind, items=40, seed=seed, pos_variants=pos, port=0)
        for kind, seed in (("shopee", 11), ("lazada", 14))
    }
    plain = list(Variant.objects.filter(components=None).order_by("sku")[:2])
    for code, variant in zip(OLD_CODES, plain, strict=True):
        shops["lazada"].put_item(shop_item(variant.product.name, code))
    for emulator in shops.values():
        emulator.start()
    try:
        yield rules_at_work(shops, plain)
    finally:
        for emulator in shops.values():
            emulator.stop()


def rules_at_work(shops: dict, plain: list[Variant]) -> RulesShop:
    """Both shops connected and scanned, with the demo's channel rules (Shopee the priority
    channel; Lazada sent 80 % and at most 50); a variant's own rule on Lazada and its
    product's on Shopee; Lazada's own seller SKUs for the `plain` variants mapped by aliases;
    four price overrides on Shopee, imported; and the price syncs that ran: the overrides'
    (pushed), a push by hand Shopee partly refused (an item in a promotion), one it refused
    wholly, and one of Lazada's waiting for a worker."""
    from channels.pricing import MANUAL, price_overrides_import, price_sync_request, price_sync_run
    from channels.scans import scan_request, scan_run
    from channels.sku_rules import sku_alias_create

    shopee = connect("shopee", "Shopee", shops["shopee"], is_priority=True, priority_threshold=3)
    lazada = connect(
        "lazada",
        "Lazada",
        shops["lazada"],
        stock_share_percent=80,
        stock_maximum=50,
        stock_cutoff=2,
    )
    for channel in (shopee, lazada):
        scan_run(scan_id=scan_request(channel=channel, kind="full", enqueue=False).pk)
    variant = listed_on_both(shopee, lazada)
    StockRule.objects.create(channel=lazada, variant=variant, maximum=5)
    StockRule.objects.create(channel=shopee, product=variant.product, buffer=2)
    for code, target in zip(OLD_CODES, plain, strict=True):
        sku_alias_create(channel=lazada, channel_sku=code, pos_sku=target.sku)
    mapped = Listing.objects.filter(channel=shopee).exclude(variant=None).order_by("sku")
    rows = [f"{lst.sku},{lst.variant.retail_price - 1000:.0f}" for lst in mapped[:4]]
    price_overrides_import(channel=shopee, stream=io.StringIO("sku,price\n" + "\n".join(rows)))
    items = sorted({int(lst.item_id) for lst in mapped})
    shops["shopee"].set_in_promotion(items[0])
    partly = price_sync_request(channel=shopee, reason=MANUAL, requested_by="ana", enqueue=False)
    price_sync_run(sync_id=partly.pk)
    for item in items:
        shops["shopee"].set_in_promotion(item)
    wholly = price_sync_request(channel=shopee, reason=MANUAL, requested_by="ana", enqueue=False)
    price_sync_run(sync_id=wholly.pk)
    for item in items:
        shops["shopee"].set_in_promotion(item, False)
    price_sync_request(channel=lazada, reason=MANUAL, requested_by="budi", enqueue=False)
    bundle = BundleComponent.objects.order_by("bundle__sku").first().bundle
    return RulesShop(shopee, lazada, variant, bundle)


def cells(row) -> list[str]:
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def column(page, name: str) -> list[str]:
    """A changelist column's cells (the first column's are th, the others td)."""
    return [t.strip() for t in page.locator(f"#result_list tbody .field-{name}").all_inner_texts()]


def lines_of(locator) -> int:
    """How many lines the text of an element takes on the screen."""
    return locator.evaluate(
        """e => { const r = document.createRange(); r.selectNodeContents(e);
                  return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"""
    )


def badge_colour(locator) -> str:
    return locator.evaluate("e => getComputedStyle(e).backgroundColor")


def test_the_channel_page_shows_its_rules_and_pushes_its_prices(staff, rules_shop):
    shopee = rules_shop.shopee
    see(staff, reverse("admin:channels_channel_change", args=[shopee.pk]), "channel")
    headings = {h.strip() for h in staff.page.locator("fieldset.module h2").all_inner_texts()}
    assert {"Stock rules", "SKU mapping", "Prices"} <= headings
    rules = staff.page.locator("p.omni-tab-links", has_text="Rules:")
    assert rules.inner_text().startswith("Rules: 1 product or variant stock rule · 0 SKU aliases")
    assert "0 SKU aliases" in rules.inner_text()
    assert "4 price overrides" in rules.inner_text()
    # each count opens its list, filtered to the channel, on as many rows
    for label, count in [("stock rule", 1), ("price overrides", 4)]:
        with staff.page.expect_navigation():
            rules.locator("a", has_text=label).click()
        staff.check_layout()
        assert result_count(staff.page) == count, label
        assert column(staff.page, "channel") == ["Shopee Demo"] * count, label
        staff.page.go_back()
    # when: staff push the prices by hand
    with staff.page.expect_navigation():
        staff.page.click(".omni-strip button:text-is('Push prices now')")
    # then: the sync it queued, run by the worker (inline here), with its outcome
    assert "of Shopee Demo queued: every listed variant's price" in messages(staff.page)
    staff.page.wait_for_selector(".field-progress .omni-progress[data-state=succeeded]")
    look(staff, "pushed")
    sync = PriceSync.objects.filter(channel=shopee).latest("pk")
    assert (sync.reason, sync.status, sync.failed) == ("manual", "succeeded", 0)
    bar = staff.page.locator(".field-progress .omni-progress").inner_text()
    assert f"Pushed {sync.considered} listings checked" in " ".join(bar.split())


def test_the_stock_preview_names_the_rule_that_decided_each_channel(staff, rules_shop):
    variant = rules_shop.variant
    see(staff, reverse("admin:channels_stockrule_changelist"), "stockrules")
    assert result_count(staff.page) == 2
    assert f"{variant.sku} ({variant.product.name}) · preview" in column(staff.page, "target")
    with staff.page.expect_navigation():
        staff.page.click(".object-tools a:text-is('Preview a SKU')")
    staff.page.fill("#preview-sku", f" {variant.sku.lower()} ")
    with staff.page.expect_navigation():
        staff.page.click("input[value=Show]")
    look(staff, "preview")
    rows = {
        cells(row)[0].split(" · ")[0]: cells(row)
        for row in staff.page.locator("#stock-preview tbody tr").all()
    }
    units = available(variant)
    # Lazada: 80 % of the stock, then the variant's own "at most 5"
    assert rows["Lazada Demo"][1] == f"{units:,}"
    assert "share (80% rounded down)" in rows["Lazada Demo"][2]
    assert rows["Lazada Demo"][3:6] == ["5", "maximum", "variant"]
    # Shopee, the priority channel: all of it less its product's buffer of 2
    assert "priority channel" in rows["Shopee Demo"][0]
    assert rows["Shopee Demo"][3:6] == [f"{units - 2:,}", "buffer", "product"]
    # a bundle's stock is what its components make, and the page says so
    bundle = rules_shop.bundle
    staff.page.fill("#preview-sku", bundle.sku)
    with staff.page.expect_navigation():
        staff.page.click("input[value=Show]")
    look(staff, "preview-bundle")
    said = staff.page.locator(".stock-preview-bundle").inner_text()
    assert said.startswith(f"{bundle.sku} is a bundle of ")
    for part in bundle.components.select_related("component"):
        assert f"{part.quantity} × {part.component.sku}" in said
    assert staff.page.locator("#stock-preview tbody tr").count() == 2
    # an unknown SKU is said to be one
    staff.page.fill("#preview-sku", "NOPE-404")
    with staff.page.expect_navigation():
        staff.page.click("input[value=Show]")
    assert "No variant has the SKU “NOPE-404”." in messages(staff.page)
    assert staff.page.locator("#stock-preview").count() == 0


def test_the_product_and_variant_pages_show_their_own_rules(staff, rules_shop):
    variant = rules_shop.variant
    see(staff, reverse("admin:catalog_product_change", args=[variant.product_id]), "product")
    rule = staff.page.locator("#stock_rules-group tbody tr.has_original")
    assert rule.count() == 1
    assert rule.locator("select[name$=channel] option:checked").inner_text() == "Shopee Demo"
    assert rule.locator("input[name$=buffer]").input_value() == "2"
    # the row reads by its channel and fields, not by the rule's ids
    assert "stock rule for" not in staff.page.locator("#stock_rules-group").inner_text()
    see(staff, reverse("admin:catalog_variant_change", args=[variant.pk]), "variant")
    rule = staff.page.locator("#stock_rules-group tbody tr.has_original")
    assert rule.locator("select[name$=channel] option:checked").inner_text() == "Lazada Demo"
    assert rule.locator("input[name$=maximum]").input_value() == "5"
    assert "stock rule for" not in staff.page.locator("#stock_rules-group").inner_text()
    assert "Not a bundle" in staff.page.locator(".field-bundle_available").inner_text()
    with staff.page.expect_navigation():
        staff.page.click(".field-channel_quantities_link a")
    staff.check_layout()
    assert staff.page.locator("#stock-preview tbody tr").count() == 2


def test_a_bundle_shows_its_components_and_how_many_they_make(staff, rules_shop):
    bundle = rules_shop.bundle
    bundles = set(BundleComponent.objects.values_list("bundle__sku", flat=True))
    see(staff, reverse("admin:catalog_variant_changelist") + "?bundle=yes", "variants-bundles")
    assert result_count(staff.page) == len(bundles) >= 1
    assert set(column(staff.page, "sku_label")) == bundles
    badges = staff.page.locator("#result_list td.field-bundle_badge span")
    assert badges.all_inner_texts() == ["Bundle"] * len(bundles)
    assert badge_colour(badges.first) == PURPLE
    with staff.page.expect_navigation():
        staff.page.locator("#result_list").get_by_role("link", name=bundle.sku, exact=True).click()
    look(staff, "bundle")
    parts = list(bundle.components.select_related("component").order_by("pk"))
    rows = staff.page.locator("#components-group tbody tr.has_original").all()
    skus = [row.locator("select option:checked").inner_text() for row in rows]
    quantities = [row.locator("input[name$=quantity]").input_value() for row in rows]
    assert list(zip(skus, quantities, strict=True)) == [
        (part.component.sku, str(part.quantity)) for part in parts
    ]
    # per outlet, the fewest whole bundles its components make there
    field = staff.page.locator(".field-bundle_available")
    assert "Available as a bundle" in field.inner_text()
    shown = {cells(row)[0]: cells(row)[1] for row in field.locator("tbody tr").all()}
    expected = {}
    for outlet in Outlet.objects.all():
        units = {
            s.variant_id: s.on_hand - s.reserved
            for s in Stock.objects.filter(outlet=outlet, variant__in=[p.component for p in parts])
        }
        made = min(units.get(p.component_id, 0) // p.quantity for p in parts)
        expected[outlet.code] = str(max(0, made))
    assert shown == expected


def test_price_syncs_overrides_and_aliases_lists(staff, rules_shop):
    see(staff, reverse("admin:channels_pricesync_changelist"), "pricesyncs")
    outcome: dict[str, set] = {}
    for row in staff.page.locator("#result_list tbody tr").all():
        bar = row.locator(".omni-progress")
        badge = bar.locator(".omni-progress-line > span").first
        outcome.setdefault(bar.get_attribute("data-state"), set()).add(
            (badge.inner_text(), badge_colour(badge))
        )
    assert outcome == {
        "succeeded": {("Pushed", GREEN)},
        "partial": {("Some refused", ORANGE)},
        "failed": {("Failed", RED)},
        "queued": {("Queued", GREY)},
    }
    # a sync that did not succeed says why, in the marketplace's words on its page
    partial = staff.page.locator("#result_list tbody tr", has_text="Some refused")
    assert "refused" in partial.locator(".omni-progress").inner_text()
    with staff.page.expect_navigation():
        partial.locator("th a").click()
    look(staff, "pricesync-partial")
    refusals = staff.page.locator(".field-failures tbody tr").all_inner_texts()
    assert refusals
    assert all("promotion" in row for row in refusals)
    # the overrides: beside the POS price and the rule's price, each SKU on one line
    see(staff, reverse("admin:channels_priceoverride_changelist"), "overrides")
    assert result_count(staff.page) == 4
    skus = staff.page.locator("#result_list td.field-sku")
    assert skus.count() == 4
    assert [lines_of(sku) for sku in skus.all()] == [1] * 4, skus.all_inner_texts()
    # the aliases matched Lazada's own seller SKUs to their POS variants
    see(staff, reverse("admin:channels_skualias_changelist"), "aliases")
    assert sorted(column(staff.page, "channel_sku")) == OLD_CODES
    lazada = rules_shop.lazada
    for code in OLD_CODES:
        alias = SkuAlias.objects.get(channel=lazada, channel_sku=code)
        assert Listing.objects.get(channel=lazada, sku=code).variant_id == alias.variant_id


# (the import page, the channel picked on it, a file with bad lines, those lines)
BAD_FILES = {
    "stock rules": (
        "admin:channels_stockrule_import",
        "lazada",
        "sku,handle,share_percent,maximum,cutoff,buffer\n{sku},,50,,,\nNOPE-404,,,5,,\n"
        "{sku},,150,,,\n",
        {3, 4},
    ),
    "bundles": (
        "admin:catalog_variant_bundle_import",
        None,
        "bundle_sku,component_sku,quantity\n{bundle},{sku},0\n{bundle},NOPE-404,1\n",
        {2, 3},
    ),
    "SKU aliases": (
        "admin:channels_skualias_import",
        "lazada",
        "channel_sku,pos_sku\nLZD-90001,{sku}\n,{sku}\nLZD-90002,NOPE-404\n",
        {3, 4},
    ),
    "price overrides": (
        "admin:channels_priceoverride_import",
        "shopee",
        "sku,price\n{sku},129900\nNOPE-404,10\n{bundle},-1\n",
        {3, 4},
    ),
}


def rules_written() -> tuple:
    return (
        list(StockRule.objects.values_list("pk", "share_percent", "maximum")),
        list(BundleComponent.objects.values_list("pk", "component_id", "quantity")),
        list(SkuAlias.objects.values_list("pk", "variant_id")),
        list(PriceOverride.objects.values_list("pk", "price")),
    )


def test_each_import_page_lists_the_bad_lines_of_a_bad_file(staff, rules_shop, tmp_path):
    before = rules_written()
    for name, (url, channel, text, lines) in BAD_FILES.items():
        csv = tmp_path / f"{name}.csv"
        csv.write_text(text.format(sku=rules_shop.variant.sku, bundle=rules_shop.bundle.sku))
        staff.open(reverse(url))
        if channel:
            staff.page.select_option("select[name=channel]", str(getattr(rules_shop, channel).pk))
        staff.page.set_input_files("input[name=file]", str(csv))
        with staff.page.expect_navigation():
            staff.page.click("#content-main input[type=submit]")
        look(staff, "import-" + name.replace(" ", "-").lower())
        heading = staff.page.locator("#import-result h2").inner_text()
        assert re.match("Nothing (was )?written: fix the bad rows", heading), (name, heading)
        shown = staff.page.locator("#import-errors td.import-line").all_inner_texts()
        assert {int(line) for line in shown} == lines, name
        assert "NOPE-404" in staff.page.locator("#import-errors").inner_text(), name
    assert rules_written() == before
