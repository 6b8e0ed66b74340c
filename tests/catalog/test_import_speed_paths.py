"""The imports' bulk paths give the same result whatever shape the data takes.

Values shared by every row travel once instead of as an array (omni.bulk.insert_rows and
update_rows); whole-number and text keys travel as one document (omni.bulk.matching_chunks);
option checks take a shortcut when every option is named. These files are the ones where a
shortcut could go wrong: one value on every row, keys with characters that need escaping,
options half named.
"""

import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from catalog.imports import RowError, catalog_csv_import, stock_csv_import
from catalog.models import Product, ProductImage, Stock, StockMovement, Variant
from catalog.services import StockChange, stock_apply, stock_import_levels
from catalog.signals import product_changed
from omni import bulk
from omni.actors import Actor
from tests.catalog.conftest import catalog_csv
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db
ACTOR = Actor(label="test")


def import_catalog(text: str, **kwargs):
    return catalog_csv_import(stream=io.StringIO(text, newline=""), **kwargs)


def import_stock(text: str, outlet_code: str, **kwargs):
    return stock_csv_import(
        stream=io.StringIO(text, newline=""),
        outlet_code=outlet_code,
        reference="count.csv",
        actor=ACTOR,
        **kwargs,
    )


# --- stock: one value on every row -------------------------------------------------------------


def test_a_count_file_with_one_quantity_everywhere_sets_each_row_and_writes_its_ledger_row():
    # given: five variants, none stocked at the outlet yet
    outlet = OutletFactory(code="shop")
    variants = VariantFactory.create_batch(5)
    text = "sku,quantity\n" + "".join(f"{v.sku},7\n" for v in variants)
    # when: every row has the same quantity, outlet and nothing reserved
    result = import_stock(text, "shop")
    # then
    assert (result.created, result.updated, result.unchanged) == (5, 0, 0)
    stocks = Stock.objects.filter(outlet=outlet).order_by("variant_id")
    assert [(s.variant_id, s.on_hand, s.reserved) for s in stocks] == [
        (v.pk, 7, 0) for v in variants
    ]
    ledger = StockMovement.objects.filter(outlet=outlet).order_by("variant_id")
    assert [(m.stock_id, m.on_hand_delta, m.on_hand_after, m.reserved_after) for m in ledger] == [
        (s.pk, 7, 7, 0) for s in stocks
    ]


def test_recounting_rows_that_hold_different_reservations_keeps_each_reservation():
    # given: three stocked rows, two of them with a reservation
    outlet = OutletFactory(code="shop")
    variants = VariantFactory.create_batch(3)
    stock_import_levels(levels=[(v.pk, outlet.pk, 10) for v in variants])
    stock_apply(
        changes=[
            StockChange(variants[1].pk, outlet.pk, reserved_delta=2),
            StockChange(variants[2].pk, outlet.pk, reserved_delta=5),
        ],
        trigger=StockMovement.Trigger.ORDER_ALLOCATION,
    )
    # when: the same count for all of them
    result = import_stock("sku,quantity\n" + "".join(f"{v.sku},6\n" for v in variants), "shop")
    # then: on hand moves, each reservation stays, one ledger row each with its own delta
    assert (result.created, result.updated) == (0, 3)
    stocks = Stock.objects.filter(outlet=outlet).order_by("variant_id")
    assert [(s.on_hand, s.reserved) for s in stocks] == [(6, 0), (6, 2), (6, 5)]
    recount = StockMovement.objects.filter(outlet=outlet, reference="count.csv").order_by(
        "variant_id"
    )
    assert [(m.on_hand_delta, m.on_hand_after, m.reserved_after) for m in recount] == [
        (-4, 6, 0),
        (-4, 6, 2),
        (-4, 6, 5),
    ]
    # and importing the same file again changes nothing and writes no ledger row
    again = import_stock("sku,quantity\n" + "".join(f"{v.sku},6\n" for v in variants), "shop")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert StockMovement.objects.filter(outlet=outlet).count() == 3 + 2 + 3


def test_a_dry_run_counts_against_the_current_levels():
    # given: two of three variants stocked
    outlet = OutletFactory(code="shop")
    first, second, third = VariantFactory.create_batch(3)
    stock_import_levels(levels=[(first.pk, outlet.pk, 4), (second.pk, outlet.pk, 9)])
    text = f"sku,quantity\n{first.sku},4\n{second.sku},3\n{third.sku},1\n"
    # when
    result = import_stock(text, "shop", dry_run=True)
    # then: one unchanged, one updated, one created; nothing written
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert not result.written
    assert Stock.objects.get(variant=second, outlet=outlet).on_hand == 9
    assert not Stock.objects.filter(variant=third).exists()


def test_whole_number_arrays_refuse_what_is_not_a_whole_number_and_keep_one_element():
    assert bulk.int_array((5,)) == "{5}"
    assert bulk.int_array([True, 2]) == "{1,2}"
    assert bulk.int_array(n for n in (3, -1)) == "{3,-1}"
    with pytest.raises(ValueError, match="invalid literal"):
        bulk.int_array([1, "2)"])


# --- catalog: keys that need escaping ----------------------------------------------------------

# Only ASCII letters change case: SQLite's lower() knows no others.
TRICKY_SKUS = ('QUOTE"1', "BACK\\SLASH", "COMMA,{BRACE}", "MIX-ü-é", "TAB\tINSIDE")


def tricky_catalog(price: str) -> str:
    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    rows = [
        f"tricky,Tricky Tee,{cell(sku)},{price},Size,S{n},,,,,,,"
        for n, sku in enumerate(TRICKY_SKUS)
    ]
    return catalog_csv(*rows)


def test_skus_with_quotes_backslashes_and_accents_are_found_again_on_the_next_import():
    # given
    first = import_catalog(tricky_catalog("10.00"))
    assert (first.created, first.errors) == (len(TRICKY_SKUS), [])
    # when: the same file again, then with a new price, and with the SKUs in other letter case
    same = import_catalog(tricky_catalog("10.00"))
    repriced = import_catalog(tricky_catalog("12.50"))
    recased = import_catalog(tricky_catalog("12.50").replace("MIX-ü-é", "mix-ü-é"))
    # then: every row is matched to its variant; none is created twice
    assert (same.created, same.updated, same.unchanged) == (0, 0, len(TRICKY_SKUS))
    assert (repriced.created, repriced.updated) == (0, len(TRICKY_SKUS))
    assert (recased.created, recased.errors) == (0, [])
    assert sorted(Variant.objects.values_list("sku", flat=True)) == sorted(
        [*TRICKY_SKUS[:3], "mix-ü-é", TRICKY_SKUS[4]]
    )
    assert set(Variant.objects.values_list("retail_price", flat=True)) == {Decimal("12.50")}
    assert Product.objects.get().handle == "tricky"


def test_a_variant_added_to_an_existing_product_is_announced_with_its_key():
    # given: a product with one variant and one image, made by an earlier import
    import_catalog(
        catalog_csv(
            "cap,Cap,CAP-1,15.00,Color,Red,,,,,,,https://img.example.com/cap-1.jpg",
        )
    )
    sent: list[dict] = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    product_changed.connect(receiver, dispatch_uid="test-import-speed-paths")
    try:
        # when: a second colour and a second image
        result = import_catalog(
            catalog_csv(
                "cap,Cap,CAP-1,15.00,Color,Red,,,,,,,"
                "https://img.example.com/cap-1.jpg https://img.example.com/cap-2.jpg",
                "cap,Cap,CAP-2,15.00,Color,Blue,,,,,,,",
            )
        )
    finally:
        product_changed.disconnect(dispatch_uid="test-import-speed-paths")
    # then
    product = Product.objects.get(handle="cap")
    new = product.variants.get(sku="CAP-2")
    assert (result.created, result.updated) == (1, 1)
    assert [s["created_variant_ids"] for s in sent] == [[new.pk]]
    assert sent[0]["product_id"] == product.pk
    assert "images" in sent[0]["changed"]
    assert list(
        ProductImage.objects.filter(product=product)
        .order_by("position")
        .values_list("url", flat=True)
    ) == ["https://img.example.com/cap-1.jpg", "https://img.example.com/cap-2.jpg"]


def test_an_existing_product_is_found_by_its_handle_among_many():
    # given
    ProductFactory.create_batch(3, handle=None)
    ProductFactory(handle="linen_tee-2", name="Old name")
    # when
    result = import_catalog(catalog_csv("linen_tee-2,Linen Tee,LT-1,20.00,,,,,,,,,"))
    # then
    assert result.errors == []
    assert Product.objects.filter(handle="linen_tee-2").get().name == "Linen Tee"
    assert Product.objects.count() == 4


# --- catalog: options, named or not ------------------------------------------------------------


def test_option_checks_report_the_same_rows_whether_or_not_every_option_is_named():
    # given: a product whose options are all named and filled (the quick check), and products
    # where a value lacks its name, a named option lacks its value, and two variants differ only
    # in letter case
    text = catalog_csv(
        "tee,Tee,T-S,10,Size,S,Color,Sand,,,,,",
        "tee,Tee,T-M,10,Size,M,Color,Sand,,,,,",
        "cap,Cap,C-1,10,,Red,,,,,,,",
        "bag,Bag,B-1,10,Size,,Color,Red,,,,,",
        "sock,Sock,S-1,10,Size,M,,,,,,,",
        "sock,Sock,S-2,10,Size,m,,,,,,,",
    )
    # when
    result = import_catalog(text)
    # then
    assert result.errors == [
        RowError(4, "option1_value 'Red' has no option1_name (e.g. Color)"),
        RowError(5, "option1_value is blank, but the product's option1_name is 'Size'"),
        RowError(
            7, "same options as line 6; each variant of a product needs its own option values"
        ),
    ]
    # and with `partial`, the good rows are written with their options
    written = import_catalog(text, partial=True)
    assert written.created == 3
    assert Variant.objects.get(sku="T-M").options == {"Size": "M", "Color": "Sand"}
    assert Variant.objects.get(sku="S-1").options == {"Size": "M"}


# --- the benchmark's floor ---------------------------------------------------------------------


@pytest.mark.postgres
def test_bench_import_prints_each_import_against_its_floor_and_drops_the_floor_tables():
    # when
    out = io.StringIO()
    call_command("bench", "import", "--variants", "12", "--outlets", "1", stdout=out)
    # then: the floor of each phase, the ratios, the load; no floor table is left
    output = out.getvalue()
    assert output.count("its floor: COPY, plain tables") == 2
    assert "load average at start" in output
    assert "load average at end" in output
    ratios = output.split("import ÷ floor", 1)[1]
    for name in ("import catalog", "import stock bench-1", "total (phases with a floor)"):
        assert re.search(rf"{re.escape(name)} +[0-9.]+ s +[0-9.]+ s +[0-9.]+×", ratios), name
    with connection.cursor() as cursor:
        assert not [t for t in connection.introspection.table_names(cursor) if "floor" in t]
