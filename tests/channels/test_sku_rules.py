"""SKU mapping rules per channel: prefixes and suffixes stripped, aliases, re-matching on edit,
the alias import, and the admin and API screens for them. Marketplace behaviour over real HTTP
against the Shopee emulator (every marketplace: test_contract_sku_rules.py)."""

import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.imports import ImportFileError
from catalog.models import Product, Variant
from catalog.services import stock_adjust
from channels import scans, selectors, tabs
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import inventory_flush
from channels.listings import listing_link, listings_download_to_pos, listings_upload
from channels.models import RULES_CHANGED, Channel, Listing, PendingPush, Scan, SkuAlias
from channels.scans import scan_request, scan_run
from channels.sku_rules import (
    SkuMapper,
    sku_alias_create,
    sku_alias_delete,
    sku_aliases_import,
    sku_rules_rematch,
    sku_rules_rematch_request,
    split_affixes,
)
from omni.auth import token_create
from tests.api.conftest import ApiClient
from tests.channels.builders import shop_item
from tests.channels.test_scans import with_image
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db

SKUS = ("TEE-BLK-M", "TEE-WHT-M", "MUG-01", "BAG-NAT")


@pytest.fixture
def pos() -> dict[str, Variant]:
    return {sku: VariantFactory(sku=sku) for sku in SKUS}


@pytest.fixture
def shop():
    """A shop whose seller prefixed most SKUs: as Tokopedia sellers do with "TKP-"."""
    with ShopeeEmulator(items=0, seed=5) as emulator:
        emulator.ids = {
            "tee": emulator.put_item(shop_item("Black Tee", "TKP-TEE-BLK-M")),
            "white": emulator.put_item(shop_item("White Tee", " tkp-tee-wht-m-Promo ")),
            "mug": emulator.put_item(shop_item("Mug", "MUG-01")),
            "gift": emulator.put_item(shop_item("Gift Bag", "GIFT-7")),
            "bare": emulator.put_item(shop_item("Prefix Only", "TKP-")),
        }
        yield emulator


def make_channel(emulator, **fields) -> Channel:
    return Channel.objects.create(
        kind="shopee",
        name="Tokopedia via Shopee",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="jkt"),
        **fields,
    )


def run_scan(channel: Channel) -> Scan:
    scan = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    assert scan.status == Scan.Status.SUCCEEDED, scan.error
    return scan


def sold(channel: Channel) -> set[tuple[str, str]]:
    return {(lst.sku.strip(), lst.variant.sku) for lst in selectors.sold_in_channel(channel)}


def not_in_pos(channel: Channel) -> list[str]:
    return sorted(selectors.not_in_pos(channel).values_list("sku", flat=True))


def set_rules(channel: Channel, callbacks, *, prefixes="", suffixes="") -> None:
    """Edit the channel's rules as its save paths do: save, then queue the re-match."""
    with callbacks(execute=True):  # the worker runs it once the edit commits (inline here)
        Channel.objects.filter(pk=channel.pk).update(
            sku_strip_prefixes=prefixes, sku_strip_suffixes=suffixes
        )
        sku_rules_rematch_request(channel_id=channel.pk)
    channel.refresh_from_db()


# --- the mapping ---------------------------------------------------------------------------------


def test_prefixes_and_suffixes_are_stripped_ignoring_case_and_spaces():
    mapper = SkuMapper(
        prefixes=split_affixes(" tkp- , TKP-X-,,"), suffixes=split_affixes("-PROMO, -promo-2")
    )
    assert split_affixes(" tkp- , TKP-X-,, tkp-") == ("tkp-x-", "tkp-")
    assert mapper.key(" TKP-TEE-BLK-M ") == "tee-blk-m"
    assert mapper.key("Tee-Blk-M-Promo") == "tee-blk-m"
    assert mapper.key("tkp- tee-blk-m -PROMO") == "tee-blk-m"  # the spaces left are ignored
    assert mapper.key("TKP-X-TEE") == "tee"  # the longest prefix first
    assert mapper.key("TEE-PROMO-2") == "tee"
    assert mapper.key("TKP-TKP-TEE") == "tkp-tee"  # one prefix, once
    assert mapper.key("TEE-PROMO-X") == "tee-promo-x"  # a suffix only at the end
    assert mapper.key("XTKP-TEE") == "xtkp-tee"  # a prefix only at the start


def test_a_prefix_or_suffix_never_strips_a_sku_to_nothing():
    mapper = SkuMapper(prefixes=("tkp-", "tkp-a"), suffixes=("-promo",))
    assert mapper.key("TKP-") == "tkp-"
    assert mapper.key(" tkp-  ") == "tkp-"
    assert mapper.key("-PROMO") == "-promo"
    assert mapper.key("TKP--PROMO") == "-promo"  # the prefix goes; the suffix would leave nothing
    assert mapper.key("TKP-A") == "a"  # "tkp-a" would leave nothing: the next prefix is taken
    assert mapper.key("") == ""
    assert mapper.key(None) == ""


def test_an_alias_wins_over_the_rules(pos, shop):
    channel = make_channel(shop, sku_strip_prefixes="TKP-")
    SkuAlias.objects.create(
        channel=channel,
        channel_sku="TKP-TEE-BLK-M",
        channel_sku_key="tkp-tee-blk-m",
        variant=pos["MUG-01"],
    )
    mapper = SkuMapper.for_channel(channel)
    assert mapper.key("  tkp-tee-blk-M") == "mug-01"
    assert mapper.map("TKP-TEE-BLK-M").rule == "alias"
    assert mapper.key("TKP-TEE-WHT-M") == "tee-wht-m"
    # an alias of another channel changes nothing here
    other = Channel.objects.create(
        kind="shopee", name="Other", credentials={}, order_outlet=channel.order_outlet
    )
    assert SkuMapper.for_channel(other).key("TKP-TEE-BLK-M") == "tkp-tee-blk-m"


def test_a_scan_matches_prefixed_suffixed_and_aliased_skus_to_the_pos(pos, shop):
    # given: the channel's rules, and an alias for a SKU no rule can turn into a POS SKU
    channel = make_channel(shop, sku_strip_prefixes="TKP-", sku_strip_suffixes="-promo")
    sku_alias_create(channel=channel, channel_sku="gift-7", pos_sku="bag-nat")
    # when
    scan = run_scan(channel)
    # then
    assert sold(channel) == {
        ("TKP-TEE-BLK-M", "TEE-BLK-M"),
        ("tkp-tee-wht-m-Promo", "TEE-WHT-M"),
        ("MUG-01", "MUG-01"),
        ("GIFT-7", "BAG-NAT"),
    }
    assert not_in_pos(channel) == ["TKP-"]  # never stripped to nothing
    assert (scan.matched, scan.not_in_pos) == (4, 1)
    tee = Listing.objects.get(channel=channel, sku="TKP-TEE-BLK-M")
    assert tee.sku_key == "tee-blk-m"  # the key it is matched by; the SKU stays the channel's
    assert skus_of(selectors.not_in_channel(channel)) == []


def skus_of(variants) -> list[str]:
    return sorted(v.sku for v in variants)


def test_a_listing_that_maps_onto_another_listings_sku_is_a_duplicate(pos, shop):
    # given: the shop lists the mug twice, once with the channel's prefix
    shop.put_item(shop_item("Mug (promo)", "TKP-MUG-01"))
    channel = make_channel(shop, sku_strip_prefixes="TKP-")
    # when
    run_scan(channel)
    # then: Multiple Listed SKU groups them, as listings of one POS SKU
    shared = selectors.multiple_listed_sku(channel)
    assert sorted(shared.values_list("sku", flat=True)) == ["MUG-01", "TKP-MUG-01"]


# --- re-matching when the rules change -----------------------------------------------------------


def test_editing_the_rules_rematches_the_listings_without_a_scan_and_pushes_the_newly_mapped(
    pos, shop, settings, django_capture_on_commit_callbacks
):
    # given: a real-time channel scanned before it had rules; 7 of each tee in stock
    settings.OMNI_FLUSH_ON_COMMIT = False  # the "worker" below flushes the outbox
    channel = make_channel(shop)
    run_scan(channel)
    assert sold(channel) == {("MUG-01", "MUG-01")}
    for sku in ("TEE-BLK-M", "TEE-WHT-M"):
        stock_adjust(variant_id=pos[sku].pk, outlet_id=channel.order_outlet_id, delta=7)
    calls = sum(shop.log.counts.values())
    # when
    set_rules(channel, django_capture_on_commit_callbacks, prefixes="TKP-", suffixes="-PROMO")
    # then: the listings moved to Sold in Channel, and the marketplace was not asked anything
    assert sold(channel) == {
        ("TKP-TEE-BLK-M", "TEE-BLK-M"),
        ("tkp-tee-wht-m-Promo", "TEE-WHT-M"),
        ("MUG-01", "MUG-01"),
    }
    assert not_in_pos(channel) == ["GIFT-7", "TKP-"]
    assert sum(shop.log.counts.values()) == calls
    assert Scan.objects.filter(channel=channel).count() == 1
    # and the newly mapped listings' stock is queued, and reaches the marketplace
    queued = PendingPush.objects.filter(channel=channel)
    assert {(p.listing.sku.strip(), p.reason) for p in queued} == {
        ("TKP-TEE-BLK-M", RULES_CHANGED),
        ("tkp-tee-wht-m-Promo", RULES_CHANGED),
    }
    inventory_flush(channel_id=channel.pk)
    quantities = shop.listing_quantities()
    assert quantities[(str(shop.ids["tee"]), "")] == 7
    assert quantities[(str(shop.ids["white"]), "")] == 7
    # when: the rules are taken away again, the listings go back to Not in POS
    set_rules(channel, django_capture_on_commit_callbacks)
    assert sold(channel) == {("MUG-01", "MUG-01")}


def test_a_channel_that_is_not_synced_is_rematched_but_sent_nothing(
    pos, shop, django_capture_on_commit_callbacks
):
    channel = make_channel(shop, inventory_sync_mode=Channel.SyncMode.NONE)
    run_scan(channel)
    set_rules(channel, django_capture_on_commit_callbacks, prefixes="TKP-")
    assert ("TKP-TEE-BLK-M", "TEE-BLK-M") in sold(channel)
    assert not PendingPush.objects.exists()


def test_a_listing_linked_by_hand_keeps_its_link_when_the_rules_change(
    pos, shop, django_capture_on_commit_callbacks
):
    channel = make_channel(shop)
    run_scan(channel)
    tee = Listing.objects.get(channel=channel, sku="TKP-TEE-BLK-M")
    listing_link(listing=tee, variant=pos["BAG-NAT"])
    # when
    set_rules(channel, django_capture_on_commit_callbacks, prefixes="TKP-")
    result = sku_rules_rematch(channel=channel)  # once more, to read what it says
    # then: the hand-made link stands; the key follows the rules
    tee.refresh_from_db()
    assert (tee.variant_id, tee.is_manual_link, tee.sku_key) == (
        pos["BAG-NAT"].pk,
        True,
        "tee-blk-m",
    )
    assert result.kept_manual == 1
    assert (result.rekeyed, result.newly_mapped, result.remapped) == (0, 0, 0)
    # and a later scan keeps it too
    run_scan(channel)
    tee.refresh_from_db()
    assert tee.variant_id == pos["BAG-NAT"].pk


def test_adding_and_deleting_an_alias_rematches_its_listings(
    pos, shop, settings, django_capture_on_commit_callbacks
):
    settings.OMNI_FLUSH_ON_COMMIT = False
    channel = make_channel(shop)
    run_scan(channel)
    gift = Listing.objects.get(channel=channel, sku="GIFT-7")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        alias = sku_alias_create(channel=channel, channel_sku=" Gift-7 ", pos_sku="BAG-NAT")
    # then
    gift.refresh_from_db()
    assert (gift.variant_id, gift.sku_key) == (pos["BAG-NAT"].pk, "bag-nat")
    assert PendingPush.objects.get().listing_id == gift.pk
    # when: the alias goes, so does the match
    with django_capture_on_commit_callbacks(execute=True):
        sku_alias_delete(alias=alias)
    gift.refresh_from_db()
    assert (gift.variant_id, gift.sku_key) == (None, "gift-7")


def test_a_rule_edited_during_a_scan_is_applied_once_the_scan_ends(
    pos, shop, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the prefix is set while the scan is reading the shop
    channel = make_channel(shop)
    real = scans._upsert_page

    def edited_meanwhile(*args, **kwargs):
        Channel.objects.filter(pk=channel.pk).update(sku_strip_prefixes="TKP-")
        return real(*args, **kwargs)

    monkeypatch.setattr(scans, "_upsert_page", edited_meanwhile)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        run_scan(channel)
    # then: the listings were written with the old rules, then re-matched with the new
    assert ("TKP-TEE-BLK-M", "TEE-BLK-M") in sold(channel)


def test_rematching_costs_the_same_number_of_queries_for_ten_listings_and_for_a_hundred(pos):
    def channel_with(count: int, name: str) -> Channel:
        channel = Channel.objects.create(
            kind="shopee",
            name=name,
            credentials={},
            order_outlet=OutletFactory(code="jkt"),
            sku_strip_prefixes="TKP-",
        )
        Listing.objects.bulk_create(
            Listing(
                channel=channel,
                item_id=str(n),
                sku=f"TKP-{SKUS[n % 4]}" if n % 5 else f"TKP-UNKNOWN-{n}",
                sku_key=f"tkp-{SKUS[n % 4].lower()}",
                title=f"Item {n}",
                price=Decimal("1"),
            )
            for n in range(count)
        )
        return channel

    def queries(channel: Channel) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            result = sku_rules_rematch(channel=channel)
        return len(captured), result.newly_mapped

    few, many = channel_with(10, "Few"), channel_with(100, "Many")
    assert queries(few) == (queries(many)[0], 8)
    assert Listing.objects.filter(channel=many, variant__isnull=False).count() == 80


def test_a_duplicate_made_by_the_rules_is_not_pushed_under_the_skip_policy(
    pos, shop, settings, django_capture_on_commit_callbacks
):
    settings.OMNI_FLUSH_ON_COMMIT = False
    shop.put_item(shop_item("Mug (promo)", "TKP-MUG-01"))
    channel = make_channel(shop)
    run_scan(channel)
    set_rules(channel, django_capture_on_commit_callbacks, prefixes="TKP-")
    assert sorted(selectors.multiple_listed_sku(channel).values_list("sku", flat=True)) == [
        "MUG-01",
        "TKP-MUG-01",
    ]
    pushed = set(PendingPush.objects.values_list("listing__sku", flat=True))
    assert "TKP-MUG-01" not in pushed  # shares its POS SKU with the other mug: skipped
    assert "TKP-TEE-BLK-M" in pushed


# --- uploads and Download to POS -----------------------------------------------------------------


def test_an_upload_is_recorded_as_the_next_scan_maps_it(pos, shop):
    channel = make_channel(shop, sku_strip_prefixes="TKP-")
    run_scan(channel)
    product = with_image(ProductFactory(name="Canvas Tote"), shop)
    VariantFactory(product=product, sku="TOTE-NAT", options={"Color": "Natural"})
    report = listings_upload(
        channel=channel, variant_ids=product.variants.values_list("pk", flat=True)
    )
    assert report.failed == []
    listing = Listing.objects.get(channel=channel, sku="TOTE-NAT")
    assert listing.variant.sku == "TOTE-NAT"
    # and the next scan finds it as it was recorded
    again = run_scan(channel)
    listing.refresh_from_db()
    assert listing.variant.sku == "TOTE-NAT"
    assert again.new == 0
    assert ("TKP-TEE-BLK-M", "TEE-BLK-M") in sold(channel)


def test_download_to_pos_creates_the_variant_under_its_pos_sku(pos, shop):
    # given: a listing Not in POS whose SKU carries the channel's prefix
    shop.put_item(shop_item("Canvas Cap", "tkp-CAP-RED"))
    channel = make_channel(shop, sku_strip_prefixes="TKP-")
    run_scan(channel)
    cap = Listing.objects.get(channel=channel, sku="tkp-CAP-RED")
    assert cap.variant is None
    # when
    report = listings_download_to_pos(channel=channel, listing_ids=[cap.pk])
    # then: the POS variant has the SKU the listing is matched by, its letter case kept
    assert report.done == ["Canvas Cap (1 variant(s))"]
    cap.refresh_from_db()
    assert cap.variant.sku == "CAP-RED"
    run_scan(channel)
    cap.refresh_from_db()
    assert cap.variant.sku == "CAP-RED"
    assert Product.objects.filter(name="Canvas Cap").count() == 1


# --- importing aliases ---------------------------------------------------------------------------

BAD_FILE = (
    "channel_sku,pos_sku\n"
    "TKP-BUNDLE-1,TEE-BLK-M\n"  # 2: good
    ",MUG-01\n"  # 3: no channel SKU
    "OLD-9,\n"  # 4: no POS SKU
    "OLD-10,NOPE-1\n"  # 5: an unknown POS SKU
    "dup-1,MUG-01\n"  # 6: the same channel SKU as line 7
    " DUP-1 ,BAG-NAT\n"  # 7
    f"{'X' * 121},MUG-01\n"  # 8: too long
    f"LONG-POS,{'Y' * 65}\n"  # 9: too long
)


def test_an_alias_file_with_bad_rows_writes_nothing_and_says_what_is_wrong_by_line(pos, shop):
    channel = make_channel(shop)
    result = sku_aliases_import(channel=channel, stream=io.StringIO(BAD_FILE))
    assert not result.written
    assert not SkuAlias.objects.exists()
    problems = dict(result.errors)
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9]
    assert problems[3] == "channel_sku is required"
    assert problems[4] == "pos_sku is required"
    assert problems[5] == "pos_sku 'NOPE-1' is not the SKU of any POS variant"
    assert problems[6].startswith("channel_sku 'dup-1' is also on line 7")
    assert problems[7].startswith("channel_sku 'DUP-1' is also on line 6")
    assert problems[8] == "channel_sku is too long (121 characters; at most 120)"
    assert problems[9] == "pos_sku is too long (65 characters; at most 64)"


def test_the_good_rows_are_imported_when_asked_and_an_existing_alias_is_changed(
    pos, shop, django_capture_on_commit_callbacks
):
    channel = make_channel(shop)
    run_scan(channel)
    SkuAlias.objects.create(
        channel=channel, channel_sku="GIFT-7", channel_sku_key="gift-7", variant=pos["MUG-01"]
    )
    SkuAlias.objects.create(
        channel=channel, channel_sku="SAME", channel_sku_key="same", variant=pos["MUG-01"]
    )
    text = BAD_FILE + "gift-7,BAG-NAT\nSAME,mug-01\n"
    # when
    with django_capture_on_commit_callbacks(execute=True):
        result = sku_aliases_import(channel=channel, stream=io.StringIO(text), partial=True)
    # then
    assert result.written
    assert (result.rows, result.created, result.updated, result.unchanged) == (10, 1, 1, 1)
    assert len(result.errors) == 7
    aliases = dict(SkuAlias.objects.values_list("channel_sku", "variant__sku"))
    assert aliases == {"TKP-BUNDLE-1": "TEE-BLK-M", "gift-7": "BAG-NAT", "SAME": "MUG-01"}
    # and the listing carrying the changed alias was re-matched, without a scan
    assert Listing.objects.get(channel=channel, sku="GIFT-7").variant.sku == "BAG-NAT"


def test_an_alias_file_without_its_columns_is_refused_whole(pos, shop):
    channel = make_channel(shop)
    with pytest.raises(ImportFileError, match="no pos_sku column"):
        sku_aliases_import(channel=channel, stream=io.StringIO("channel_sku\nA\n"))


def test_the_import_command_imports_a_file_and_fails_on_bad_rows(pos, shop, tmp_path):
    channel = make_channel(shop)
    good = tmp_path / "aliases.csv"
    good.write_text("channel_sku;pos_sku\nGIFT-7;BAG-NAT\nOLD-1;mug-01\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import_sku_aliases", "--channel", str(channel.pk), str(good), stdout=out)
    assert "Read 2 row(s): 2 created, 0 updated, 0 unchanged, 0 bad." in out.getvalue()
    assert SkuAlias.objects.filter(channel=channel).count() == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_FILE, encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was written: 7 bad row"):
        call_command("import_sku_aliases", "--channel", channel.name, str(bad), stdout=out)
    assert "line 5: pos_sku 'NOPE-1' is not the SKU of any POS variant" in out.getvalue()
    assert SkuAlias.objects.count() == 2
    with pytest.raises(CommandError, match="No channel '999'"):
        call_command("import_sku_aliases", "--channel", "999", str(good))


# --- the admin -----------------------------------------------------------------------------------


def aliases_of(channel: Channel, pos: dict[str, Variant], count: int, start: int = 0) -> None:
    SkuAlias.objects.bulk_create(
        SkuAlias(
            channel=channel,
            channel_sku=f"OLD-{n}",
            channel_sku_key=f"old-{n}",
            variant=pos[SKUS[n % 4]],
        )
        for n in range(start, start + count)
    )


def test_the_alias_list_shows_channel_skus_pos_skus_and_products_in_bounded_queries(
    pos, shop, admin_client
):
    channel = make_channel(shop)
    url = reverse("admin:channels_skualias_changelist")

    def page(**params):
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(url, params)
        assert response.status_code == 200
        return response, len(captured)

    aliases_of(channel, pos, 5)
    _, few = page()
    aliases_of(channel, pos, 25, start=5)
    response, many = page()
    assert many == few
    html = response.content.decode()
    for header in ("SKU on the channel", "Channel", "POS SKU", "Product"):
        assert header in html
    assert pos["MUG-01"].product.name in html
    assert "Import aliases" in html
    # searched by a part of the channel SKU or of the POS SKU, any case
    found, _ = page(q="old-2")
    assert {a.channel_sku for a in found.context["cl"].result_list} >= {"OLD-2", "OLD-20"}
    found, _ = page(q=" bag-n ")
    assert {a.variant.sku for a in found.context["cl"].result_list} == {"BAG-NAT"}
    filtered, _ = page(channel__id__exact=channel.pk)
    assert filtered.context["cl"].result_count == SkuAlias.objects.count()


def test_saving_and_deleting_an_alias_in_the_admin_rematches_its_listings(
    pos, shop, admin_client, django_capture_on_commit_callbacks
):
    channel = make_channel(shop)
    run_scan(channel)
    add = reverse("admin:channels_skualias_add")
    page = admin_client.get(add)
    assert page.status_code == 200
    assert "admin-autocomplete" in page.content.decode()  # the variant is searched, not listed
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            add, {"channel": channel.pk, "channel_sku": " gift-7 ", "variant": pos["BAG-NAT"].pk}
        )
    # then
    assert response.status_code == 302
    alias = SkuAlias.objects.get()
    assert (alias.channel_sku, alias.channel_sku_key) == ("gift-7", "gift-7")
    assert ("GIFT-7", "BAG-NAT") in sold(channel)
    # the same channel SKU twice is refused, saying which alias has it
    again = admin_client.post(
        add, {"channel": channel.pk, "channel_sku": "GIFT-7", "variant": pos["MUG-01"].pk}
    )
    assert again.status_code == 200
    assert "already has an alias on Tokopedia via Shopee, to the POS SKU “BAG-NAT”" in (
        again.content.decode()
    )
    # when: it is pointed at another variant, then deleted
    change = reverse("admin:channels_skualias_change", args=[alias.pk])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            change, {"channel": channel.pk, "channel_sku": "gift-7", "variant": pos["MUG-01"].pk}
        )
    assert ("GIFT-7", "MUG-01") in sold(channel)
    delete = reverse("admin:channels_skualias_delete", args=[alias.pk])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(delete, {"post": "yes"})
    assert not SkuAlias.objects.exists()
    assert "GIFT-7" in not_in_pos(channel)


def upload(admin_client, channel: Channel, text: str, **options):
    url = reverse("admin:channels_skualias_import")
    data = {"channel": channel.pk, "file": SimpleUploadedFile("aliases.csv", text.encode())}
    return admin_client.post(url, {**data, **options})


def test_the_import_page_shows_every_bad_line_and_writes_nothing(pos, shop, admin_client):
    channel = make_channel(shop)
    url = reverse("admin:channels_skualias_import")
    form = admin_client.get(url)
    assert form.status_code == 200
    html = form.content.decode()
    assert "Import the good rows even if some rows are bad" in html
    assert "<code>channel_sku</code>" in html
    assert "<code>pos_sku</code>" in html
    # when
    page = upload(admin_client, channel, BAD_FILE)
    # then
    html = page.content.decode()
    assert "Nothing was written: fix the bad rows, or tick “import the good rows”" in html
    lines = [bad.line for bad in page.context["errors_shown"]]
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    problem = page.context["errors_shown"][2].problems[0]
    assert (problem.column, problem.text) == (
        "pos_sku",
        "'NOPE-1' is not the SKU of any POS variant",
    )
    assert not SkuAlias.objects.exists()


def test_the_import_page_imports_the_good_rows_when_ticked(
    pos, shop, admin_client, django_capture_on_commit_callbacks
):
    channel = make_channel(shop)
    run_scan(channel)
    with django_capture_on_commit_callbacks(execute=True):
        page = upload(admin_client, channel, BAD_FILE + "GIFT-7,bag-nat\n", partial="on")
    html = page.content.decode()
    assert "The good rows were written; the bad rows were not" in html
    assert page.context["summary"]["created"] == 2
    assert set(SkuAlias.objects.values_list("channel_sku", flat=True)) == {"TKP-BUNDLE-1", "GIFT-7"}
    assert ("GIFT-7", "BAG-NAT") in sold(channel)


def test_the_import_page_refuses_a_file_it_cannot_read(pos, shop, admin_client):
    channel = make_channel(shop)
    page = upload(admin_client, channel, "sku,quantity\nA,1\n")
    assert "CSV file: The first line should name the columns; unknown column(s)" in (
        page.content.decode()
    )
    example = admin_client.get(reverse("admin:channels_skualias_import"), {"example": 1})
    assert example["Content-Type"].startswith("text/csv")
    assert example.content.decode().startswith("channel_sku,pos_sku")


# --- the API -------------------------------------------------------------------------------------


@pytest.fixture
def api(db) -> ApiClient:
    return ApiClient(token_create(name="ERP", scopes="read,write")[1])


def test_the_api_creates_lists_and_deletes_aliases(
    pos, shop, api, django_capture_on_commit_callbacks
):
    channel = make_channel(shop)
    run_scan(channel)
    url = f"/api/channels/{channel.pk}/sku-aliases"
    # when
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(url, {"channel_sku": " Gift-7 ", "pos_sku": "bag-nat"})
    # then
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in ("channel_sku", "pos_sku", "variant_id", "product_name")} == {
        "channel_sku": "Gift-7",
        "pos_sku": "BAG-NAT",
        "variant_id": pos["BAG-NAT"].pk,
        "product_name": pos["BAG-NAT"].product.name,
    }
    assert ("GIFT-7", "BAG-NAT") in sold(channel)
    listed = api.get(url, {"limit": 10}).json()
    assert listed["count"] == 1
    assert listed["items"][0]["id"] == body["id"]
    # the same channel SKU again, in another case: 409, naming the alias it has
    twice = api.post(url, {"channel_sku": "GIFT-7", "pos_sku": "MUG-01"})
    assert twice.status_code == 409
    assert "already has an alias" in twice.json()["detail"]
    # an unknown POS SKU: 422 on pos_sku, saying why
    unknown = api.post(url, {"channel_sku": "OLD-1", "pos_sku": "NOPE"})
    assert unknown.status_code == 422
    [error] = unknown.json()["detail"]
    assert error["loc"] == ["body", "payload", "pos_sku"]
    assert error["type"] == "unknown_sku"
    assert "No POS variant has the SKU “NOPE”" in error["msg"]
    # an unknown channel: 404
    assert (
        api.post(
            "/api/channels/999999/sku-aliases", {"channel_sku": "A", "pos_sku": "MUG-01"}
        ).status_code
        == 404
    )
    assert api.get("/api/channels/999999/sku-aliases").status_code == 404
    # when: deleted
    with django_capture_on_commit_callbacks(execute=True):
        gone = api.delete(f"{url}/{body['id']}")
    assert gone.status_code == 204
    assert "GIFT-7" in not_in_pos(channel)
    assert api.delete(f"{url}/{body['id']}").status_code == 404


def test_the_api_list_costs_the_same_for_five_aliases_and_for_fifty(pos, shop, api):
    channel = make_channel(shop)
    url = f"/api/channels/{channel.pk}/sku-aliases?limit=500"
    api.get(url)  # the token's first use writes its last-used time

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(url).status_code == 200
        return len(captured)

    aliases_of(channel, pos, 5)
    few = queries()
    SkuAlias.objects.all().delete()
    aliases_of(channel, pos, 50)
    assert queries() == few <= 4


def test_the_api_imports_a_csv_and_answers_counts_and_bad_lines(pos, shop, api):
    channel = make_channel(shop)
    url = f"/api/channels/{channel.pk}/sku-aliases/import"
    refused = api.post(url, {"csv": BAD_FILE})
    assert refused.status_code == 200
    body = refused.json()
    assert (body["written"], body["rows"], body["created"]) == (False, 8, 0)
    assert {"line": 5, "problem": "pos_sku 'NOPE-1' is not the SKU of any POS variant"} in (
        body["errors"]
    )
    assert body["message"].startswith("Nothing was written: 7 bad row(s)")
    assert not SkuAlias.objects.exists()
    checked = api.post(url, {"csv": BAD_FILE, "partial": True, "dry_run": True}).json()
    assert (checked["written"], checked["created"]) == (False, 1)
    assert not SkuAlias.objects.exists()
    partial = api.post(url, {"csv": BAD_FILE, "partial": True}).json()
    assert (partial["written"], partial["created"], len(partial["errors"])) == (True, 1, 7)
    assert SkuAlias.objects.get().channel_sku == "TKP-BUNDLE-1"
    unreadable = api.post(url, {"csv": "sku,qty\nA,1\n"})
    assert unreadable.status_code == 422
    assert unreadable.json()["detail"][0]["loc"] == ["body", "payload", "csv"]
    assert "unknown column(s)" in unreadable.json()["detail"][0]["msg"]


def test_the_api_says_what_a_channel_sku_maps_to_and_why(pos, shop, api):
    channel = make_channel(shop, sku_strip_prefixes="TKP-", sku_strip_suffixes="-promo")
    sku_alias_create(channel=channel, channel_sku="GIFT-7", pos_sku="BAG-NAT")
    url = f"/api/channels/{channel.pk}/sku-mapping"
    both = api.get(url, {"sku": "tkp-Tee-Blk-M-PROMO"}).json()
    assert {k: both[k] for k in ("key", "rule", "prefix", "suffix", "alias")} == {
        "key": "tee-blk-m",
        "rule": "prefix and suffix",
        "prefix": "tkp-",
        "suffix": "-promo",
        "alias": None,
    }
    assert both["variant"]["sku"] == "TEE-BLK-M"
    aliased = api.get(url, {"sku": "gift-7"}).json()
    assert (aliased["rule"], aliased["key"], aliased["alias"]["channel_sku"]) == (
        "alias",
        "bag-nat",
        "GIFT-7",
    )
    assert aliased["variant"]["id"] == pos["BAG-NAT"].pk
    unknown = api.get(url, {"sku": "TKP-NOPE"}).json()
    assert (unknown["rule"], unknown["key"], unknown["variant"]) == ("prefix", "nope", None)
    assert api.get("/api/channels/999999/sku-mapping", {"sku": "A"}).status_code == 404


# --- searching listings by the SKU the channel shows -------------------------------------------


def test_a_listing_is_found_by_its_sku_as_the_channel_shows_it(pos, shop, admin_client):
    # given: a channel whose rules take "TKP-" and "-promo" off, and alias GIFT-7 to BAG-NAT
    channel = make_channel(shop, sku_strip_prefixes="TKP-", sku_strip_suffixes="-promo")
    sku_alias_create(channel=channel, channel_sku="GIFT-7", pos_sku="BAG-NAT")
    run_scan(channel)
    tab = reverse(tabs.SOLD_IN_CHANNEL.changelist_url_name)
    everywhere = reverse("admin:channels_listing_changelist")

    def found(url: str, term: str) -> set[str]:
        response = admin_client.get(url, {"channel": channel.pk, "q": term})
        assert response.status_code == 200
        return {listing.title for listing in response.context["cl"].result_list}

    # when/then: the SKU as the seller typed it finds its listing, in the tab and in the list
    # of every channel's listings, whole or in part, in any case
    for url in (tab, everywhere):
        assert found(url, "TKP-TEE-BLK-M") == {"Black Tee"}
        assert found(url, " tkp-tee-wht-m-Promo ") == {"White Tee"}
        assert found(url, "Tkp-Tee") == {"Black Tee", "White Tee"}
        assert found(url, "GIFT-7") == {"Gift Bag"}
        # the key it is matched by still finds it, and so do titles
        assert found(url, "tee-blk") == {"Black Tee"}
        assert found(url, "mug") == {"Mug"}
    # then: it is the channel's rules that find them: another channel's rules do not
    Channel.objects.filter(pk=channel.pk).update(sku_strip_prefixes="", sku_strip_suffixes="")
    Channel.objects.create(
        kind="shopee",
        name="Other",
        credentials={},
        order_outlet=channel.order_outlet,
        sku_strip_prefixes="TKP-",
    )
    assert found(tab, "TKP-TEE-BLK-M") == set()
    assert found(everywhere, "TKP-TEE-BLK-M") == set()
