"""Searching the catalog's changelists by part of a SKU, UPC or name, and the ledger's dates."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from catalog.models import Stock, StockMovement
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db
JAKARTA = ZoneInfo("Asia/Jakarta")


def found(admin_client, page: str, **params) -> list:
    response = admin_client.get(reverse(f"admin:catalog_{page}_changelist"), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.fixture
def tees():
    black = VariantFactory(
        sku="TEE-BLA-M", upc="8991234500011", product=ProductFactory(name="Linen Tee")
    )
    VariantFactory(sku="TEE-BLA-L", upc="8991234500028", product=black.product)
    cap = VariantFactory(sku="CAP-NAV", upc="8997000000001", product=ProductFactory(name="Cap"))
    return black, cap


# --- variants and products -------------------------------------------------------------------


@pytest.mark.parametrize("term", ["tee-bla", "TEE-BLA", "BLA-M", "bla-m", " TEE-BLA-M "])
def test_variants_are_found_by_the_start_or_any_part_of_their_sku(admin_client, tees, term):
    black, _cap = tees
    skus = {v.sku for v in found(admin_client, "variant", q=term)}
    assert black.sku in skus
    assert "CAP-NAV" not in skus


def test_variants_are_found_by_part_of_their_upc_or_product_name(admin_client, tees):
    assert [v.sku for v in found(admin_client, "variant", q="4500011")] == ["TEE-BLA-M"]
    assert {v.sku for v in found(admin_client, "variant", q="inen")} == {"TEE-BLA-M", "TEE-BLA-L"}


def test_every_word_of_a_search_must_match(admin_client, tees):
    assert [v.sku for v in found(admin_client, "variant", q="linen bla-m")] == ["TEE-BLA-M"]
    assert found(admin_client, "variant", q="linen nav") == []


@pytest.mark.parametrize("term", ["Line", "inen te", "LINEN", "bla-l", "TEE-B", "4500028"])
def test_products_are_found_by_part_of_their_name_or_of_a_variants_sku_or_upc(
    admin_client, tees, term
):
    black, _cap = tees
    # each product once, though two of its variants match
    assert found(admin_client, "product", q=term) == [black.product]


def test_a_products_counts_are_not_multiplied_by_the_variants_its_search_matched(
    admin_client, tees
):
    black, _cap = tees
    outlets = [OutletFactory(), OutletFactory()]
    for variant, on_hand in zip(black.product.variants.all(), (3, 4), strict=True):
        for outlet in outlets:
            Stock.objects.create(variant=variant, outlet=outlet, on_hand=on_hand)
    # when: both variants match
    [product] = found(admin_client, "product", q="tee-bla")
    # then
    assert (product.n_variants, product.n_on_hand) == (2, 14)


def test_a_search_that_matches_nothing_lists_nothing(admin_client, tees):
    assert found(admin_client, "product", q="TEE-XYZ") == []
    assert found(admin_client, "variant", q="TEE-XYZ") == []


def test_stock_rows_are_found_by_part_of_a_sku(admin_client, tees):
    black, cap = tees
    outlet = OutletFactory()
    Stock.objects.create(variant=black, outlet=outlet, on_hand=3)
    Stock.objects.create(variant=cap, outlet=outlet, on_hand=1)
    assert [s.variant.sku for s in found(admin_client, "stock", q="bla-m")] == ["TEE-BLA-M"]


# --- the ledger ------------------------------------------------------------------------------


def move(variant, outlet, when: datetime, reference: str = "") -> StockMovement:
    stock, _ = Stock.objects.get_or_create(variant=variant, outlet=outlet)
    return StockMovement.objects.create(
        stock=stock,
        variant=variant,
        outlet=outlet,
        trigger=StockMovement.Trigger.MANUAL,
        on_hand_delta=1,
        on_hand_after=1,
        reserved_after=0,
        reference=reference,
        created_at=when,
    )


@pytest.fixture
def ledger(tees):
    black, cap = tees
    outlet = OutletFactory()
    when = datetime(2026, 3, 2, 9, 0, tzinfo=JAKARTA)
    return {
        "black": move(black, outlet, when, reference="levels-march.csv"),
        "black_l": move(black.product.variants.get(sku="TEE-BLA-L"), outlet, when),
        "cap": move(cap, outlet, when, reference="SO-240312-0042"),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("bla-m", {"black"}),  # part of a SKU
        ("TEE-BLA", {"black", "black_l"}),  # its start
        ("linen", {"black", "black_l"}),  # part of the product name
        ("4500028", {"black_l"}),  # part of a UPC
        ("0312-00", {"cap"}),  # part of the reference (an order number)
        ("march", {"black"}),  # part of the reference (a file name)
        ("cap so-2403", {"cap"}),  # a word for the variant and one for the reference
        ("nothing-like-it", set()),
    ],
)
def test_the_ledger_is_found_by_part_of_a_sku_upc_name_or_reference(
    admin_client, ledger, term, expected
):
    names = {movement.pk: name for name, movement in ledger.items()}
    assert {names[m.pk] for m in found(admin_client, "stockmovement", q=term)} == expected


def test_searches_matching_many_rows_find_them_all(admin_client, ledger, monkeypatch):
    # given: more matches than are passed on as a list of ids
    monkeypatch.setattr("catalog.admin.SEARCH_IDS_CAP", 1)
    ProductFactory(name="Linen Shirt")
    # then
    assert len(found(admin_client, "stockmovement", q="tee-bla")) == 2
    assert len(found(admin_client, "variant", q="linen")) == 2
    assert len(found(admin_client, "product", q="linen")) == 2
    assert len(found(admin_client, "product", q="4500")) == 1


def test_a_ledger_search_takes_a_fixed_number_of_queries(
    admin_client, ledger, django_assert_max_num_queries
):
    for i in range(20):
        move(ledger["black"].variant, ledger["black"].outlet, ledger["black"].created_at, f"r{i}")
    with django_assert_max_num_queries(12):
        assert len(found(admin_client, "stockmovement", q="bla-m")) == 21


def test_a_ledger_row_reads_as_the_change_and_the_quantity_it_left(admin_client, ledger):
    movement = ledger["cap"]
    StockMovement.objects.filter(pk=movement.pk).update(
        trigger=StockMovement.Trigger.SHIPMENT_CANCELLATION, on_hand_delta=-2, on_hand_after=5
    )
    response = admin_client.get(reverse("admin:catalog_stockmovement_changelist"), {"q": "cap"})
    page = response.content.decode()
    # the full trigger name in the tooltip, the outlet by its code
    assert 'title="Cancel shipment">Shipment cancelled<' in page
    assert f">{movement.outlet.code}</span>" in page
    assert "-2 → 5" in page
    assert "SO-240312-0042" in page


@override_settings(TIME_ZONE="Asia/Jakarta")
def test_the_ledgers_date_range_includes_both_end_days_in_the_shops_time_zone(admin_client, tees):
    black, _cap = tees
    outlet = OutletFactory()
    times = {
        "day before, last minute": datetime(2026, 3, 1, 23, 59, tzinfo=JAKARTA),
        "first day, midnight": datetime(2026, 3, 2, 0, 0, tzinfo=JAKARTA),
        "last day, last minute": datetime(2026, 3, 4, 23, 59, tzinfo=JAKARTA),
        "day after, midnight": datetime(2026, 3, 5, 0, 0, tzinfo=JAKARTA),
    }
    names = {move(black, outlet, when).pk: name for name, when in times.items()}

    def listed(**dates) -> set[str]:
        return {names[m.pk] for m in found(admin_client, "stockmovement", **dates)}

    # when / then
    assert listed(created_at__from="2026-03-02", created_at__to="2026-03-04") == {
        "first day, midnight",
        "last day, last minute",
    }
    assert listed(created_at__from="2026-03-02", created_at__to="2026-03-02") == {
        "first day, midnight"
    }
    assert listed(created_at__to="2026-03-01") == {"day before, last minute"}
    assert listed(created_at__from="2026-03-05") == {"day after, midnight"}
    assert len(listed()) == 4


def test_the_ledger_shows_the_date_range_filter_keeping_the_search(admin_client, ledger):
    response = admin_client.get(
        reverse("admin:catalog_stockmovement_changelist"),
        {"q": "linen", "created_at__from": "2026-03-02"},
    )
    page = response.content.decode()
    assert 'name="created_at__from" value="2026-03-02"' in page
    assert 'name="created_at__to" value=""' in page
    assert '<input type="hidden" name="q" value="linen">' in page


@pytest.mark.parametrize("bad", ["2026-13-45", "yesterday", "02/03/2026"])
def test_a_date_that_is_not_one_gets_the_admins_usual_answer(admin_client, ledger, bad):
    url = reverse("admin:catalog_stockmovement_changelist")
    response = admin_client.get(url, {"created_at__from": bad})
    # the admin's answer to lookups it cannot use: back to the list, flagged ?e=1
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
    assert admin_client.get(response["Location"]).status_code == 200


# --- on PostgreSQL, indexes serve the substring searches -------------------------------------


@pytest.mark.postgres
def test_the_searched_columns_have_trigram_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'catalog_%%_trgm'"
        )
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {
        "catalog_product_name_trgm",
        "catalog_product_handle_trgm",
        "catalog_variant_sku_key_trgm",
        "catalog_variant_upc_trgm",
        "catalog_stockmovement_reference_trgm",
    }
    assert all("gin_trgm_ops" in definition for definition in indexes.values())
