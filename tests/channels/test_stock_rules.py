"""The allocation rules: each at its edges, products' and variants' own rules, what a rule
change pushes, the per-SKU preview, and the rules' CSV import and admin pages."""

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.services import stock_set
from channels.models import Channel, Listing, PendingPush, StockRule
from channels.services import channel_save
from channels.stock import Rule, Step, allocate, channel_quantities, decided_by
from channels.stock_rules import stock_rules_import
from tests.channels.builders import shop_item
from tests.channels.test_inventory import connect, drain, received
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


def sent(available: int, **rule) -> tuple[int, str]:
    steps: list[Step] = []
    quantity = allocate(
        available, Rule(**{k: v for k, v in rule.items() if k != "threshold"}),
        priority_threshold=rule.get("threshold"), steps=steps,
    )  # fmt: skip
    return quantity, decided_by(steps)


# --- each rule at its edges ---------------------------------------------------------------------


def test_a_share_is_rounded_down():
    assert sent(7, share_percent=80) == (5, "share")  # 5.6
    assert sent(1, share_percent=99) == (0, "share")  # 0.99
    assert sent(10, share_percent=100) == (10, "available")
    assert sent(10, share_percent=0) == (0, "share")


def test_the_cutoff_sends_stock_at_the_threshold_and_none_below_it():
    assert sent(3, cutoff=3) == (3, "available")
    assert sent(2, cutoff=3) == (0, "cut-off")
    # the cut-off reads the available stock, not what the share left
    assert sent(4, share_percent=50, cutoff=3) == (2, "share")


def test_a_maximum_below_the_buffer_sends_nothing():
    # the rules apply in order: at most 3, then 5 held back of those 3
    assert sent(100, maximum=3, buffer=5) == (0, "buffer")
    assert sent(100, maximum=8, buffer=5) == (3, "buffer")
    assert sent(100, maximum=0) == (0, "maximum")


def test_never_below_zero():
    assert sent(-4) == (0, "available")  # more reserved than on hand
    assert sent(2, buffer=5) == (0, "buffer")


def test_the_priority_hold_takes_effect_at_the_threshold_and_lifts_above_it():
    assert sent(5, threshold=5) == (0, "priority")
    assert sent(6, threshold=5) == (6, "available")
    assert sent(0, threshold=5) == (0, "available")  # nothing to hold


# --- over the engine, against the Shopee emulator ------------------------------------------------


@pytest.fixture
def shop(shopee):
    for sku in ("TEE-1", "TEE-2", "CAP-1"):
        shopee.put_item(shop_item(sku, sku, quantity=0))
    return shopee


@pytest.fixture
def catalog():
    tee = ProductFactory(name="Tee", handle="tee")
    return {
        "TEE-1": VariantFactory(product=tee, sku="TEE-1"),
        "TEE-2": VariantFactory(product=tee, sku="TEE-2"),
        "CAP-1": VariantFactory(sku="CAP-1"),
    }


def test_a_variant_rule_falls_back_to_its_product_rule_then_the_channel(shop, catalog):
    outlet = OutletFactory(code="jkt")
    channel = connect(shop, outlet=outlet, stock_share_percent=50, buffer=1)
    StockRule.objects.create(channel=channel, product=catalog["TEE-1"].product, maximum=4)
    StockRule.objects.create(channel=channel, variant=catalog["TEE-2"], share_percent=100)
    for variant in catalog.values():
        stock_set(variant_id=variant.pk, outlet_id=outlet.pk, quantity=20)
    got = channel_quantities(channel=channel, variant_ids=[v.pk for v in catalog.values()])
    # TEE-1: product rule max 4 over the channel's 50% of 20, less its buffer of 1
    # TEE-2: its own share of 100%, then its product's max 4, then the channel's buffer
    # CAP-1: the channel's rule alone
    assert got == {catalog["TEE-1"].pk: 3, catalog["TEE-2"].pk: 3, catalog["CAP-1"].pk: 9}


def test_the_rule_book_reads_rules_in_a_bounded_number_of_queries(shop, catalog):
    outlet = OutletFactory(code="jkt")
    channel = connect(shop, outlet=outlet)
    variants = [VariantFactory() for _ in range(40)]
    for variant in variants[:20]:
        StockRule.objects.create(channel=channel, variant=variant, maximum=1)
    for variant in variants[20:30]:
        StockRule.objects.create(channel=channel, product=variant.product, share_percent=10)
    with CaptureQueriesContext(connection) as queries:
        channel_quantities(channel=channel, variant_ids=[v.pk for v in variants])
    assert len(queries) <= 7


def test_changing_a_channel_rule_pushes_only_the_listings_it_changes(
    shop, catalog, django_capture_on_commit_callbacks
):
    outlet = OutletFactory(code="jkt")
    channel = connect(shop, outlet=outlet)
    stock_set(variant_id=catalog["TEE-1"].pk, outlet_id=outlet.pk, quantity=30)
    stock_set(variant_id=catalog["TEE-2"].pk, outlet_id=outlet.pk, quantity=3)
    drain(channel)
    shop.log.clear()
    # when: staff cap the channel at 5 units a SKU (tasks run inline in the tests)
    with django_capture_on_commit_callbacks(execute=True):
        channel_save(channel=channel, data={"stock_maximum": 5})
    drain(channel)
    # then: only TEE-1 (30 → 5) is pushed; TEE-2 (3) and CAP-1 (0) already show their quantity
    listing = Listing.objects.get(channel=channel, sku="TEE-1")
    assert [str(call["item_id"]) for call in received(shop)] == [listing.item_id]
    assert Listing.objects.get(channel=channel, sku="TEE-1").quantity == 5


def test_a_new_priority_channel_takes_low_stock_from_the_others(
    shop, catalog, django_capture_on_commit_callbacks
):
    outlet = OutletFactory(code="jkt")
    channel = connect(shop, outlet=outlet)
    stock_set(variant_id=catalog["TEE-1"].pk, outlet_id=outlet.pk, quantity=2)
    drain(channel)
    assert Listing.objects.get(channel=channel, sku="TEE-1").quantity == 2
    other = Channel(kind="shopee", api_base_url=shop.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        channel_save(
            channel=other,
            data={
                "name": "Priority", "credentials": shop.credentials, "order_outlet": "jkt",
                "is_priority": True, "priority_threshold": 2,
            },
        )  # fmt: skip
    drain(channel)
    assert Listing.objects.get(channel=channel, sku="TEE-1").quantity == 0


def test_a_rule_in_the_admin_pushes_and_the_preview_says_which_rule_decided(
    shop, catalog, admin_client, django_capture_on_commit_callbacks
):
    outlet = OutletFactory(code="jkt")
    channel = connect(shop, outlet=outlet, buffer=2)
    stock_set(variant_id=catalog["CAP-1"].pk, outlet_id=outlet.pk, quantity=10)
    drain(channel)
    assert Listing.objects.get(channel=channel, sku="CAP-1").quantity == 8
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:channels_stockrule_add"),
            {"channel": channel.pk, "variant": catalog["CAP-1"].pk, "maximum": 0, "buffer": ""},
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    drain(channel)
    assert Listing.objects.get(channel=channel, sku="CAP-1").quantity == 0
    page = admin_client.get(reverse("admin:channels_stockrule_preview"), {"sku": "cap-1 "})
    html = page.content.decode()
    assert page.status_code == 200
    assert "at most 0" in html
    assert "<td>maximum</td>" in html  # decided by
    assert "<td>variant</td>" in html  # whose rule
    # the variant's own page links to it, and its rules are edited there
    variant_page = admin_client.get(
        reverse("admin:catalog_variant_change", args=[catalog["CAP-1"].pk])
    )
    assert reverse("admin:channels_stockrule_preview") in variant_page.content.decode()
    assert "Stock rules on channels" in variant_page.content.decode()
    product_page = admin_client.get(
        reverse("admin:catalog_product_change", args=[catalog["TEE-1"].product_id])
    )
    assert "Stock rules on channels" in product_page.content.decode()


def test_an_unknown_sku_in_the_preview_says_so(admin_client):
    page = admin_client.get(
        reverse("admin:channels_stockrule_preview"), {"sku": "NOPE"}, follow=True
    )
    assert "No variant has the SKU" in page.content.decode()


# --- CSV ------------------------------------------------------------------------------------------


def test_a_csv_of_rules_reports_each_bad_line_and_writes_nothing(shop, catalog):
    channel = connect(shop)
    text = (
        "sku,handle,share_percent,maximum,cutoff,buffer\n"
        "TEE-1,,50,,,\n"  # 2: good
        "NOPE,,10,,,\n"  # 3: unknown SKU
        ",tee,,4,,\n"  # 4: good, a product's rule
        "CAP-1,tee,,1,,\n"  # 5: both
        "CAP-1,,150,,,\n"  # 6: share above 100
        "CAP-1,,,x,,\n"  # 7: not a number
        "tee-1,,,3,,\n"  # 8: the same variant as line 2
        "CAP-1,,,,,\n"  # 9: no rule
    )
    result = stock_rules_import(channel=channel, stream=io.StringIO(text))
    assert [line for line, _ in result.errors] == [3, 5, 6, 7, 8, 9]
    assert "no variant has the SKU 'NOPE'" in result.errors[0].reason
    assert "line 2" in result.errors[4].reason
    assert not result.written
    assert not StockRule.objects.exists()
    # with the good rows taken: two rules, and a second import of them changes nothing
    result = stock_rules_import(channel=channel, stream=io.StringIO(text), partial=True)
    assert (result.created, result.written) == (2, True)
    again = stock_rules_import(channel=channel, stream=io.StringIO(text), partial=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert StockRule.objects.get(variant=catalog["TEE-1"]).share_percent == 50
    assert StockRule.objects.get(product__handle="tee").maximum == 4


def test_the_rules_import_page_shows_bad_lines(shop, catalog, admin_client):
    channel = connect(shop)
    upload = io.BytesIO(b"sku,maximum\nNOPE,3\nTEE-1,2\n")
    upload.name = "rules.csv"
    page = admin_client.post(
        reverse("admin:channels_stockrule_import"), {"channel": channel.pk, "file": upload}
    )
    html = page.content.decode()
    assert "no variant has the SKU" in html
    assert "Nothing was written" in html
    assert not StockRule.objects.exists()
    assert PendingPush.objects.count() == 0
