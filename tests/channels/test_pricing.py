"""Price rules (channels.pricing): the rule's arithmetic at its edges, overrides, the currency
rule, price syncs over the Shopee emulator (batching, a crash and its resumption), the CSV
import, the API, the admin pages and the commands."""

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import Product, Variant
from catalog.services import product_saved
from channels import pricing
from channels.emulators.shopee import ShopeeEmulator
from channels.listings import listings_upload
from channels.models import CatalogPush, Channel, Listing, PriceOverride, PriceSync, Scan
from channels.pricing import (
    PriceProblem,
    channel_price,
    channel_prices,
    price_explain,
    price_override_set,
    price_overrides_import,
    price_rules_changed,
    price_sync_request,
    price_sync_run,
    price_syncs_due,
    round_to_step,
)
from channels.scans import scan_request, scan_run
from omni.auth import token_create
from tests.channels.builders import grid_item, shop_item
from tests.channels.test_scans import with_image
from tests.factories import OutletFactory, ProductFactory, VariantFactory

D = Decimal


def rule(**fields) -> Channel:
    """An unsaved channel holding a price rule (the arithmetic needs no database)."""
    return Channel(**{"name": "Rule", "currency": "IDR", **fields})


# --- the rule's arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "mode", "expected"),
    [
        ("150", "nearest", "200"),  # the half goes up
        ("149.99", "nearest", "100"),
        ("150.01", "nearest", "200"),
        ("100", "nearest", "100"),  # on a step: unchanged in every mode
        ("100", "up", "100"),
        ("100", "down", "100"),
        ("100.01", "up", "200"),
        ("199.99", "down", "100"),
    ],
)
def test_rounding_to_a_step_of_100(price, mode, expected):
    channel = rule(price_round_step=D("100"), price_round_mode=mode)
    assert channel_price(channel, D(price)) == D(expected)


@pytest.mark.parametrize(
    ("price", "mode", "expected"),
    [
        ("12900", "nearest", "12900"),  # on an ending: unchanged
        ("12900", "up", "12900"),
        ("12900", "down", "12900"),
        ("12899.99", "up", "12900"),  # just below an ending
        ("12899.99", "down", "11900"),
        ("12900.01", "up", "13900"),  # just above an ending
        ("12900.01", "down", "12900"),
        ("12900.01", "nearest", "12900"),
        ("13400", "nearest", "13900"),  # halfway between 12,900 and 13,900: up
        ("13399.99", "nearest", "12900"),
        ("12345", "nearest", "11900"),  # 445 above 11,900, 555 below 12,900
    ],
)
def test_rounding_to_prices_ending_in_900(price, mode, expected):
    channel = rule(price_round_step=D("1000"), price_ending=D("900"), price_round_mode=mode)
    assert channel_price(channel, D(price)) == D(expected)


@pytest.mark.parametrize("mode", ["nearest", "up", "down"])
@pytest.mark.parametrize("price", ["0", "100", "399.99", "900"])
def test_small_prices_never_round_below_zero(price, mode):
    # the ending below a small price is negative (-100): the one at or above is taken
    channel = rule(price_round_step=D("1000"), price_ending=D("900"), price_round_mode=mode)
    assert channel_price(channel, D(price)) == D("900")


@pytest.mark.parametrize(
    ("price", "mode", "expected"),
    [
        ("1.024", "nearest", "1.00"),
        ("1.025", "nearest", "1.05"),
        ("1.02", "up", "1.05"),
        ("1.049", "down", "1.00"),
        ("0.01", "down", "0.00"),
        ("19.99", "nearest", "20.00"),
    ],
)
def test_a_step_of_five_cents_for_a_dollar_shop(price, mode, expected):
    channel = rule(currency="USD", price_round_step=D("0.05"), price_round_mode=mode)
    assert channel_price(channel, D(price)) == D(expected)
    assert channel_price(channel, D(price)).as_tuple().exponent == -2


def test_markup_percent_then_amount_then_rounding():
    channel = rule(
        price_markup_percent=D("12.5"),
        price_markup_amount=D("2500"),
        price_round_step=D("1000"),
        price_ending=D("900"),
        price_round_mode="up",
    )
    # 100,000 × 1.125 = 112,500; + 2,500 = 115,000; up to an ending in 900: 115,900
    assert channel_price(channel, D("100000")) == D("115900")
    steps = [(s.label, s.price) for s in pricing.price_steps(channel, D("100000"))]
    assert steps == [
        ("POS retail price", D("100000")),
        ("markup +12.5%", D("112500.00")),
        ("plus 2500", D("115000.00")),
        ("rounded up to a step of 1000, ending in 900", D("115900.00")),
    ]


def test_without_a_step_the_price_is_to_the_cent_and_never_negative():
    assert channel_price(rule(price_markup_percent=D("33.333")), D("10")) == D("13.33")
    assert channel_price(rule(price_markup_percent=D("-90")), D("10")) == D("1.00")
    assert channel_price(rule(price_markup_amount=D("-50")), D("10")) == D("0.00")
    assert round_to_step(D("-500"), D("1000"), D("900"), "down") == D("900")


def test_an_ending_must_be_below_its_step_and_a_currency_three_letters():
    unchecked = ["kind", "order_outlet", "credentials"]
    with pytest.raises(ValidationError) as refused:
        rule(currency="RP", price_round_step=D("100"), price_ending=D("100")).full_clean(
            exclude=unchecked, validate_unique=False, validate_constraints=False
        )
    assert set(refused.value.message_dict) == {"currency", "price_ending"}
    rule(price_round_step=D("1000"), price_ending=D("900")).full_clean(
        exclude=unchecked, validate_unique=False, validate_constraints=False
    )


# --- overrides and the currency rule ---------------------------------------------------------


@pytest.fixture
def outlet(db):
    return OutletFactory(code="jkt")


def channel_on(shop, **rule_fields) -> Channel:
    return Channel.objects.create(
        kind="shopee",
        name=f"Shopee {Channel.objects.count() + 1}",
        api_base_url=shop.base_url,
        credentials=shop.credentials,
        order_outlet=OutletFactory(code="jkt"),
        **rule_fields,
    )


@pytest.mark.django_db
def test_an_override_wins_over_the_rule_in_two_queries(django_assert_num_queries, outlet):
    channel = Channel.objects.create(
        kind="shopee", name="S", order_outlet=outlet, price_markup_percent=D("10")
    )
    plain, special = VariantFactory(retail_price=D("100")), VariantFactory(retail_price=D("200"))
    PriceOverride.objects.create(channel=channel, variant=special, price=D("150"))
    with django_assert_num_queries(2):
        prices = channel_prices(channel=channel, variant_ids=[plain.pk, special.pk, 999_999])
    assert prices == {plain.pk: D("110.00"), special.pk: D("150")}


@pytest.mark.django_db
def test_a_channel_in_another_currency_is_refused_with_the_reason(outlet):
    channel = Channel.objects.create(kind="shopify", name="US", order_outlet=outlet, currency="USD")
    variant = VariantFactory(sku="TEE-1", retail_price=D("100000"))
    with pytest.raises(PriceProblem) as refused:
        channel_prices(channel=channel, variant_ids=[variant.pk])
    assert str(refused.value) == (
        "US sells in USD, the POS prices in IDR: omni does not convert currencies; set the "
        "channel's prices there or its currency to IDR."
    )
    assert price_rules_changed(channel=channel) is None
    with pytest.raises(PriceProblem):
        price_sync_request(channel=channel, reason="manual")
    assert not PriceSync.objects.exists()
    explained = price_explain(channel=channel, sku=" tee-1 ")
    assert (explained.price, explained.steps, explained.problem) == (None, [], str(refused.value))


@pytest.fixture
def shop():
    with ShopeeEmulator(items=0, seed=5) as emulator:
        yield emulator


@pytest.mark.django_db
def test_nothing_is_sent_to_a_channel_in_another_currency(shop, django_capture_on_commit_callbacks):
    # given: a listed product, then the channel is said to sell in dollars
    product = ProductFactory(name="Linen Shirt")
    with_image(product, shop)
    VariantFactory(product=product, sku="LIN-WHT", retail_price=D("120000"), options={})
    channel = channel_on(shop)
    assert listings_upload(channel=channel, variant_ids=[product.variants.get().pk]).failed == []
    Channel.objects.filter(pk=channel.pk).update(currency="USD")
    channel.refresh_from_db()
    shop.log.clear()
    # when: a new product is uploaded, the listed one changes, and a sync is asked for
    other = VariantFactory(sku="LIN-BLU", retail_price=D("99000"))
    report = listings_upload(channel=channel, variant_ids=[other.pk])
    Variant.objects.filter(sku="LIN-WHT").update(retail_price=D("130000"))
    with django_capture_on_commit_callbacks(execute=True):
        product_saved(product=product, changed=["name", "variants"], created_variant_ids=[])
    # then: refused, each with the reason, and not one call wrote anything
    assert "sells in USD, the POS prices in IDR" in report.failed[0]
    push = CatalogPush.objects.get()
    assert "omni does not convert currencies" in push.error
    assert not push.retryable
    assert shop.log.writes == []
    with pytest.raises(PriceProblem):
        price_sync_request(channel=channel, reason="manual")


# --- price syncs over the Shopee emulator ----------------------------------------------------


def scanned(channel: Channel) -> None:
    scan = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    assert scan.status == Scan.Status.SUCCEEDED, scan.error


def pos_for(shop, retail: dict[str, str]) -> None:
    for sku, price in retail.items():
        VariantFactory(sku=sku, retail_price=D(price))


@pytest.mark.django_db
def test_a_rule_change_pushes_every_listed_variant_within_the_per_call_limit(
    shop, django_capture_on_commit_callbacks
):
    # given: a 64-variant item (more than Shopee's 50 per price call) and three simple items
    grid = shop.put_item(grid_item("Grid Tee", 8, 8, sku="GT", price="1"))
    simple = [shop.put_item(shop_item(f"Cap {n}", f"CAP-{n}", price="1")) for n in range(3)]
    skus = [f"GT-C{c:02d}-S{s:02d}" for c in range(8) for s in range(8)] + [
        f"CAP-{n}" for n in range(3)
    ]
    pos_for(shop, {sku: str(100_000 + 1000 * n) for n, sku in enumerate(skus)})
    channel = channel_on(shop)
    scanned(channel)
    shop.log.clear()
    # when: the rule changes (the save path calls this), twice: one sync
    Channel.objects.filter(pk=channel.pk).update(
        price_markup_percent=D("10"),
        price_round_step=D("1000"),
        price_ending=D("900"),
        price_round_mode="down",
    )
    channel.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        first = price_rules_changed(channel=channel, requested_by="ana")
        again = price_rules_changed(channel=channel, requested_by="ana")
    # then
    assert first.pk == again.pk
    sync = PriceSync.objects.get()
    assert (sync.status, sync.considered, sync.pushed, sync.failed) == ("succeeded", 67, 67, 0)
    expected = {sku: channel_price(channel, D(100_000 + 1000 * n)) for n, sku in enumerate(skus)}
    held = shop.listing_prices()
    listings = Listing.objects.filter(channel=channel).select_related("variant")
    assert {lst.variant.sku: held[(lst.item_id, lst.variant_ref)] for lst in listings} == expected
    assert {lst.variant.sku: lst.price for lst in listings} == expected
    assert expected["GT-C00-S00"] == D("109900")  # 110,000 down to an ending in 900
    # the 64 variants in two calls (50 + 14), one call per simple item
    assert shop.update_calls("price") == 2 + 3
    assert sync.calls >= 5
    assert grid
    assert len(simple) == 3


@pytest.fixture
def caps(db, shop):
    """25 simple items on the shop and in the POS (one listing, one price call each)."""
    for n in range(25):
        shop.put_item(shop_item(f"Cap {n}", f"CAP-{n:02d}", price="1"))
        VariantFactory(sku=f"CAP-{n:02d}", retail_price=D(10_000 + n))
    return shop


class WorkerKilled(BaseException):
    """What a worker's death looks like from inside: nothing after it runs."""


@pytest.mark.django_db
def test_a_sync_whose_worker_died_is_resumed_and_nothing_is_sent_twice(
    caps, monkeypatch, django_capture_on_commit_callbacks
):
    # given: a sync that dies after its first chunk of ten
    monkeypatch.setattr(pricing, "CHUNK", 10)
    channel = channel_on(caps, price_markup_amount=D("5000"))
    scanned(channel)
    sync = price_sync_request(channel=channel, reason="manual", enqueue=False)

    def die(_sync):
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        price_sync_run(sync_id=sync.pk, on_chunk=die)
    sync.refresh_from_db()
    assert (sync.status, sync.considered, sync.pushed) == ("running", 10, 10)
    assert caps.update_calls("price") == 10
    # when: the recurring check runs before and after the sync has gone quiet
    with django_capture_on_commit_callbacks(execute=True):
        assert price_syncs_due().resumed == []  # still within its time: left alone
        later = timezone.now() + pricing.RUNNING_STALE + timedelta(seconds=1)
        assert price_syncs_due(now=later).resumed == [sync.pk]
    # then: resumed to the end; the ten already sent were not sent again
    sync.refresh_from_db()
    assert sync.status == "succeeded", sync.message
    assert sync.message.startswith("Resumed after its worker stopped.")
    assert (sync.considered, sync.pushed) == (25, 15)
    assert caps.update_calls("price") == 25
    assert set(caps.listing_prices().values()) == {D(15_000 + n) for n in range(25)}


@pytest.mark.django_db
def test_a_lost_task_is_queued_again_and_one_sync_runs_at_a_time(
    caps, django_capture_on_commit_callbacks
):
    channel = channel_on(caps)
    scanned(channel)
    first = price_sync_request(channel=channel, reason="manual", enqueue=False)
    PriceSync.objects.filter(pk=first.pk).update(status="running", progress_at=timezone.now())
    second = price_sync_request(channel=channel, reason="manual", enqueue=False)
    # a running sync holds the channel: the second waits, queued, and sends nothing
    assert price_sync_run(sync_id=second.pk).status == "queued"
    assert caps.update_calls("price") == 0
    # the first's worker died; the queued one will send every price anew, so it is ended
    with django_capture_on_commit_callbacks(execute=True):
        later = timezone.now() + pricing.QUEUED_STALE + timedelta(minutes=1)
        PriceSync.objects.filter(pk=second.pk).update(created_at=later - pricing.QUEUED_STALE * 2)
        price_syncs_due(now=later)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "failed"
    assert f"price sync #{second.pk} sends the prices anew" in first.message
    assert second.status == "succeeded"
    assert caps.update_calls("price") == 25


@pytest.mark.django_db
def test_a_refused_price_is_counted_with_the_marketplaces_words_and_retried_later(
    caps, django_capture_on_commit_callbacks
):
    channel = channel_on(caps)
    scanned(channel)
    promoted = Listing.objects.get(channel=channel, sku="CAP-03")
    caps.set_in_promotion(int(promoted.item_id))
    with django_capture_on_commit_callbacks(execute=True):
        sync = price_sync_request(channel=channel, reason="manual")
    sync.refresh_from_db()
    assert (sync.status, sync.pushed, sync.failed) == ("failed", 24, 1)
    assert sync.failure_sample[0]["sku"] == "CAP-03"
    assert "promotion" in sync.failure_sample[0]["error"]
    assert "24 price(s) sent, 1 refused" in sync.message
    # a refusal that will not pass by itself is not retried on a schedule
    later = timezone.now() + pricing.RETRY_AFTER + timedelta(minutes=1)
    assert price_syncs_due(now=later).retried == []


@pytest.mark.django_db
def test_an_override_change_sends_only_the_listings_whose_price_changed(
    caps, django_capture_on_commit_callbacks
):
    channel = channel_on(caps)
    scanned(channel)
    with django_capture_on_commit_callbacks(execute=True):
        price_sync_request(channel=channel, reason="manual")
    before = caps.update_calls("price")
    with django_capture_on_commit_callbacks(execute=True):
        price_override_set(channel=channel, sku="cap-07", price="77000")
        price_override_set(channel=channel, sku="CAP-07", price="77000.00")  # the same: no-op
    assert caps.update_calls("price") == before + 1
    assert PriceSync.objects.count() == 2
    held = caps.listing_prices()
    listing = Listing.objects.get(channel=channel, sku="CAP-07")
    assert held[(listing.item_id, listing.variant_ref)] == D("77000")


# --- the CSV import -------------------------------------------------------------------------


@pytest.fixture
def three(db, outlet):
    for sku in ("TEE-S", "TEE-M", "TEE-L"):
        VariantFactory(sku=sku, retail_price=D("100000"))
    return Channel.objects.create(kind="shopee", name="Shopee", order_outlet=outlet)


def test_a_bad_line_refuses_the_file_with_each_problem_by_line(three):
    text = "sku,price\nTEE-S,129900\nNOPE-1,10\nTEE-M,12,50\nTEE-L,-1\n tee-s ,5.555\nTEE-M,\n"
    result = price_overrides_import(channel=three, stream=io.StringIO(text))
    errors = dict(result.errors)
    assert not result.written
    assert not PriceOverride.objects.exists()
    assert not PriceSync.objects.exists()
    assert "no variant has the SKU 'NOPE-1'" in errors[3]
    assert "has a value in a column that has no name" in errors[4]
    assert "price must not be negative (-1)" in errors[5]
    assert "price has more than 2 decimals (5.555)" in errors[6]
    assert "the SKU 'tee-s' is also on line 2" in errors[6]
    assert "the SKU 'TEE-S' is also on line 6" in errors[2]
    assert "price is required" in errors[7]


def test_the_good_rows_go_when_asked_and_twice_is_once(three, django_capture_on_commit_callbacks):
    text = "sku;price\nTEE-S;129900\nTEE-M;99000.5\nNOPE;1\n"
    with django_capture_on_commit_callbacks(execute=False) as queued:
        result = price_overrides_import(channel=three, stream=io.StringIO(text), partial=True)
    assert (result.created, result.updated, len(result.errors), result.written) == (2, 0, 1, True)
    assert dict(PriceOverride.objects.values_list("variant__sku", "price")) == {
        "TEE-S": D("129900"),
        "TEE-M": D("99000.50"),
    }
    assert len(queued) == 1  # one sync for the file
    again = price_overrides_import(channel=three, stream=io.StringIO(text), partial=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert PriceSync.objects.count() == 1


def test_ten_thousand_overrides_are_one_sync_in_few_queries(three, django_assert_max_num_queries):
    product = Product.objects.create(name="Bulk")
    Variant.objects.bulk_create(
        Variant(product=product, sku=f"B-{n:05d}", retail_price=D("1000")) for n in range(10_000)
    )
    text = "sku,price\n" + "".join(f"B-{n:05d},{2000 + n}\n" for n in range(10_000))
    # a bounded number of statements: SQLite's limit on a statement's parameters cuts the
    # inserts into batches of a few hundred rows, PostgreSQL takes WRITE_CHUNK rows at a time
    with django_assert_max_num_queries(20 if connection.vendor == "postgresql" else 80):
        result = price_overrides_import(channel=three, stream=io.StringIO(text))
    assert result.created == 10_000
    assert PriceOverride.objects.filter(channel=three).count() == 10_000
    assert PriceSync.objects.filter(channel=three).count() == 1


# --- the API --------------------------------------------------------------------------------


class Api:
    def __init__(self) -> None:
        self.client = Client()
        self.headers = {
            "Authorization": f"Bearer {token_create(name='ERP', scopes='read,write')[1]}"
        }

    def call(self, method: str, path: str, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        return self.client.generic(
            method, path, data, content_type="application/json", headers=self.headers
        )


def test_the_api_sets_lists_explains_and_removes_overrides(
    three, django_capture_on_commit_callbacks
):
    api = Api()
    base = f"/api/channels/{three.pk}"
    Channel.objects.filter(pk=three.pk).update(price_markup_percent=D("10"))
    # PUT twice: one override, one sync queued
    with django_capture_on_commit_callbacks(execute=False):
        put = api.call("PUT", f"{base}/price-overrides/tee-s", {"price": "125000"})
        api.call("PUT", f"{base}/price-overrides/TEE-S", {"price": 125000})
    assert put.status_code == 200, put.content
    assert put.json() | {"product": ""} == {
        "sku": "TEE-S",
        "variant_id": Variant.objects.get(sku="TEE-S").pk,
        "product": "",
        "pos_price": "100000.00",
        "rule_price": "110000.00",
        "price": "125000.00",
    }
    assert PriceOverride.objects.count() == 1
    assert PriceSync.objects.count() == 1
    listed = api.call("GET", f"{base}/price-overrides?limit=10").json()
    assert (listed["count"], listed["items"][0]["sku"]) == (1, "TEE-S")
    explained = api.call("GET", f"{base}/prices?sku=TEE-S").json()
    assert explained["price"] == "125000.00"
    assert explained["override"] == "125000.00"
    assert [s["label"] for s in explained["steps"]] == ["POS retail price", "markup +10%"]
    plain = api.call("GET", f"{base}/prices?sku=TEE-M").json()
    assert (plain["price"], plain["override"]) == ("110000.00", None)
    # errors: a bad price, an unknown SKU, an unknown channel
    bad = api.call("PUT", f"{base}/price-overrides/TEE-S", {"price": "-1"})
    assert bad.status_code == 422
    assert api.call("PUT", f"{base}/price-overrides/NOPE", {"price": "1"}).status_code == 404
    assert api.call("GET", f"{base}/prices?sku=NOPE").status_code == 404
    assert api.call("GET", "/api/channels/999999/price-overrides").status_code == 404
    # DELETE twice: both 204, the override gone
    assert api.call("DELETE", f"{base}/price-overrides/TEE-S").status_code == 204
    assert api.call("DELETE", f"{base}/price-overrides/TEE-S").status_code == 204
    assert not PriceOverride.objects.exists()


def test_the_api_imports_csv_and_queues_a_sync(three, django_capture_on_commit_callbacks):
    api = Api()
    base = f"/api/channels/{three.pk}"
    refused = api.call(
        "POST", f"{base}/price-overrides/import", {"csv": "sku,price\nTEE-S,1\nNOPE,2\n"}
    )
    assert refused.status_code == 200
    assert refused.json()["written"] is False
    assert refused.json()["errors"] == [{"line": 3, "problem": "no variant has the SKU 'NOPE'"}]
    assert not PriceOverride.objects.exists()
    unreadable = api.call("POST", f"{base}/price-overrides/import", {"csv": "name\nx\n"})
    assert unreadable.status_code == 422
    assert "unknown column" in unreadable.json()["detail"][0]["msg"]
    with django_capture_on_commit_callbacks(execute=False):
        done = api.call(
            "POST",
            f"{base}/price-overrides/import",
            {"csv": "sku,price\nTEE-S,1\nNOPE,2\n", "partial": True},
        ).json()
    assert (done["created"], done["written"]) == (1, True)
    assert done["price_sync_id"] == PriceSync.objects.get().pk
    # a sync asked for by hand is the one already queued; then it can be read
    queued = api.call("POST", f"{base}/price-syncs")
    assert queued.status_code == 202
    assert queued.json()["id"] == done["price_sync_id"]
    assert queued.json()["reason"] == "manual"  # widened to every listing
    got = api.call("GET", f"/api/price-syncs/{done['price_sync_id']}").json()
    assert (got["status"], got["listed"]) == ("queued", 0)
    assert len(api.call("GET", f"{base}/price-syncs").json()) == 1
    # a channel in another currency: 409 with the reason
    Channel.objects.filter(pk=three.pk).update(currency="USD")
    conflict = api.call("POST", f"{base}/price-syncs")
    assert conflict.status_code == 409
    assert "omni does not convert currencies" in conflict.json()["detail"]


# --- the admin ------------------------------------------------------------------------------


def test_the_override_pages_render_and_saving_queues_a_push(
    three, admin_client, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    for sku in ("TEE-S", "TEE-M"):
        price_override_set(channel=three, sku=sku, price="90000")
    url = reverse("admin:channels_priceoverride_changelist")
    with django_assert_max_num_queries(12):
        page = admin_client.get(url, {"q": "tee-"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Import price overrides" in html
    assert "100000.00" in html
    assert "90000.00" in html
    assert admin_client.get(reverse("admin:channels_priceoverride_add")).status_code == 200
    # saving through the admin queues one sync of the channel
    PriceSync.objects.all().delete()
    override = PriceOverride.objects.get(variant__sku="TEE-S")
    with django_capture_on_commit_callbacks(execute=False):
        saved = admin_client.post(
            reverse("admin:channels_priceoverride_change", args=[override.pk]), {"price": "95000"}
        )
    assert saved.status_code == 302
    override.refresh_from_db()
    assert override.price == D("95000")
    assert PriceSync.objects.filter(channel=three, status="queued").count() == 1


def test_the_import_page_shows_bad_lines_and_writes_nothing(three, admin_client):
    url = reverse("admin:channels_priceoverride_import")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"example": 1})["Content-Type"].startswith("text/csv")
    upload = io.BytesIO(b"sku,price\nTEE-S,129900\nNOPE,1\n")
    upload.name = "prices.csv"
    page = admin_client.post(url, {"channel": three.pk, "file": upload})
    html = page.content.decode()
    assert "Nothing was written: fix the bad rows" in html
    assert "no variant has the SKU" in html
    assert not PriceOverride.objects.exists()


def test_push_prices_now_queues_a_sync_and_its_page_draws_the_progress(
    caps, admin_client, django_capture_on_commit_callbacks
):
    channel = channel_on(caps)
    scanned(channel)
    url = reverse("admin:channels_pricesync_push", args=[channel.pk])
    assert admin_client.get(url).status_code == 405  # a GET (a prefetch) pushes nothing
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url)
    sync = PriceSync.objects.get()
    assert response.url == reverse("admin:channels_pricesync_change", args=[sync.pk])
    assert sync.status == "succeeded"
    page = admin_client.get(response.url).content.decode()
    assert "Pushed" in page
    assert "25 listings" in page
    listing = admin_client.get(reverse("admin:channels_pricesync_changelist")).content.decode()
    assert "Pushed by hand" in listing
    bar = admin_client.get(reverse("admin:channels_pricesync_progress", args=[sync.pk]))
    assert "omni-progress" in bar.content.decode()
    # a queued one is drawn waiting, with the channel's listings as its length
    queued = price_sync_request(channel=channel, reason="manual", enqueue=False)
    waiting = admin_client.get(reverse("admin:channels_pricesync_progress", args=[queued.pk]))
    assert "Queued" in waiting.content.decode()


# --- the commands ---------------------------------------------------------------------------


def test_the_commands_import_and_push(caps, tmp_path):
    channel = channel_on(caps)
    scanned(channel)
    path = tmp_path / "prices.csv"
    path.write_text("sku,price\nCAP-01,31000\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import_price_overrides", "--channel", channel.pk, str(path), stdout=out)
    assert "1 created" in out.getvalue()
    assert "price sync" in out.getvalue()
    PriceSync.objects.all().delete()
    out = io.StringIO()
    call_command("push_prices", "--channel", channel.pk, "--now", stdout=out)
    assert "succeeded" in out.getvalue()
    held = sorted(caps.listing_prices().values())
    assert D("31000") in held
    with pytest.raises(CommandError, match="No channel has the id"):
        call_command("push_prices", "--channel", 999_999)


@pytest.mark.parametrize("command", ["import_price_overrides", "push_prices"])
def test_command_help_renders(command):
    with pytest.raises(SystemExit):
        call_command(command, "--help")
