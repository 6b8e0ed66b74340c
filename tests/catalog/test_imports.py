import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.exceptions import UnknownOutlet
from catalog.imports import (
    ImportFileError,
    RowError,
    catalog_csv_import,
    stock_csv_import,
    text_stream,
)
from catalog.imports import reading as imports
from catalog.models import Brand, Category, Product, ProductImage, Stock, StockMovement, Variant
from catalog.signals import product_changed
from omni.actors import Actor
from tests.catalog.conftest import catalog_csv, tee_rows
from tests.factories import BrandFactory, OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db
Trigger = StockMovement.Trigger
ACTOR = Actor(label="test")


@pytest.fixture
def captured_product_changes():
    sent: list[dict] = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    product_changed.connect(receiver, dispatch_uid="test-imports")
    yield sent
    product_changed.disconnect(dispatch_uid="test-imports")


def import_catalog(text: str, **kwargs):
    return catalog_csv_import(stream=io.StringIO(text, newline=""), **kwargs)


def import_stock(text: str, outlet_code: str | None = None, **kwargs):
    return stock_csv_import(
        stream=io.StringIO(text, newline=""),
        outlet_code=outlet_code,
        reference="levels.csv",
        actor=ACTOR,
        **kwargs,
    )


# --- catalog ---------------------------------------------------------------------------------


def test_a_new_product_with_its_variants_brand_category_and_images_is_created():
    # when
    result = import_catalog(catalog_csv(*tee_rows()))
    # then
    assert (result.rows, result.created, result.updated, result.errors) == (2, 2, 0, [])
    assert result.written
    product = Product.objects.get(handle="linen-tee")
    assert product.name == "Linen Tee"
    assert product.brand.name == "Kestrel"
    assert product.category.name == "Tops"
    assert product.category.parent.name == "Apparel"
    assert product.weight_kg == Decimal("0.250")
    assert [i.url for i in product.images.all()] == ["https://img.example.com/tee-1.jpg"]
    variants = list(product.variants.order_by("position"))
    assert [v.sku for v in variants] == ["TEE-S", "TEE-M"]
    assert variants[0].options == {"Size": "S", "Color": "Sand"}
    assert variants[0].sku_key == "tee-s"
    assert result.other["products created"] == 1
    assert result.other["brands created"] == 1
    assert result.other["categories created"] == 2


def test_one_bad_row_is_reported_with_its_line_and_nothing_is_written():
    # given: line 3 has a price that is not a number
    rows = tee_rows()
    rows.append("other-tee,Other Tee,OT-1,abc,Size,S,Color,Red,,,,,")
    # when
    result = import_catalog(catalog_csv(*rows))
    # then
    assert result.errors == [
        RowError(4, "retail_price must be a number like 12.50, not 'abc'"),
    ]
    assert not result.written
    assert not Product.objects.exists()
    assert not Brand.objects.exists()


def test_partial_mode_writes_the_good_rows_and_reports_the_bad_ones():
    rows = [*tee_rows(), "other-tee,Other Tee,OT-1,-5,Size,S,Color,Red,,,,,"]
    # when
    result = import_catalog(catalog_csv(*rows), partial=True)
    # then
    assert result.written
    assert result.created == 2
    assert result.errors == [RowError(4, "retail_price must not be negative (-5)")]
    assert set(Variant.objects.values_list("sku", flat=True)) == {"TEE-S", "TEE-M"}
    assert not Product.objects.filter(handle="other-tee").exists()


def test_reimporting_the_same_file_changes_nothing(captured_product_changes):
    # given
    text = catalog_csv(*tee_rows())
    import_catalog(text)
    stamps = list(Variant.objects.values_list("pk", "updated_at"))
    # when
    result = import_catalog(text)
    # then
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert result.other["products updated"] == 0
    assert list(Variant.objects.values_list("pk", "updated_at")) == stamps
    assert ProductImage.objects.count() == 1
    assert captured_product_changes == []


def test_duplicate_skus_differing_in_case_and_spaces_are_refused_on_both_lines():
    rows = [
        "tee,Tee,ABC-1,10,,,,,,,,,",
        "tee,Tee, abc-1 ,10,,,,,,,,,",
    ]
    # when
    result = import_catalog(catalog_csv(*rows))
    # then
    assert [e.line for e in result.errors] == [2, 3]
    assert "is also on line 3" in result.errors[0].reason
    assert "ignoring letter case and surrounding spaces" in result.errors[0].reason
    assert not Variant.objects.exists()


def test_an_existing_sku_updates_its_variant_and_announces_the_change(captured_product_changes):
    # given
    product = ProductFactory(handle="linen-tee", name="Linen Tee")
    variant = VariantFactory(product=product, sku="TEE-S", retail_price=Decimal("10.00"))
    header = "handle,name,sku,retail_price"
    # when: the SKU is written in another case and the price changes; a variant is added
    result = import_catalog(
        catalog_csv(
            "linen-tee,Linen Tee,tee-s,12.50", "linen-tee,Linen Tee,TEE-M,12.50", header=header
        )
    )
    # then
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    variant.refresh_from_db()
    assert variant.retail_price == Decimal("12.50")
    assert variant.sku == "tee-s"
    assert Variant.objects.filter(product=product).count() == 2
    new_variant = Variant.objects.get(sku="TEE-M")
    assert captured_product_changes == [
        {
            "signal": product_changed,
            "product_id": product.pk,
            "changed": ["variants"],
            "created_variant_ids": [new_variant.pk],
        }
    ]


def test_new_products_are_not_announced(captured_product_changes):
    import_catalog(catalog_csv(*tee_rows()))
    assert captured_product_changes == []


def test_a_sku_of_another_product_is_refused():
    # given
    VariantFactory(sku="TEE-S", product=ProductFactory(handle="old-tee", name="Old Tee"))
    # when
    result = import_catalog(catalog_csv(*tee_rows()))
    # then
    assert result.errors[0].line == 2
    assert "already belongs to the product “Old Tee” (handle 'old-tee')" in result.errors[0].reason
    # the other row of the same product is fine on its own and is held back only by default
    assert len(result.errors) == 1
    assert not Product.objects.filter(handle="linen-tee").exists()


def test_conflicting_product_columns_refuse_the_whole_product():
    rows = [
        "tee,Tee,T-1,10,,,,,Kestrel,,,,",
        "tee,Tee,T-2,10,,,,,Osprey,,,,",
        "cap,Cap,C-1,5,,,,,,,,,",
    ]
    # when
    result = import_catalog(catalog_csv(*rows), partial=True)
    # then
    assert result.errors == [
        RowError(2, "not imported: line 3 of the same product (handle 'tee') has an error"),
        RowError(
            3,
            "brand is 'Osprey' here but 'Kestrel' on line 2; rows with the same handle "
            "describe one product",
        ),
    ]
    assert list(Product.objects.values_list("handle", flat=True)) == ["cap"]


def test_a_blank_product_cell_takes_the_value_of_the_other_rows():
    rows = ["tee,Tee,T-1,10,,,,,Kestrel,,no,,", "tee,Tee,T-2,10,,,,,,,,,"]
    result = import_catalog(catalog_csv(*rows))
    assert result.errors == []
    product = Product.objects.get(handle="tee")
    assert product.brand.name == "Kestrel"
    assert product.is_active is False


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("tee,Tee,T-1,10,,,,,,,maybe,,", "active must be yes or no"),
        ("tee,Tee,T-1,10,,,,,,,,,ftp://x/y.jpg", "is not a web address"),
        ("tee,Tee,T-1,10.999,,,,,,,,,", "retail_price has more than 2 decimals"),
        ('tee,Tee,T-1,"10,50",,,,,,,,,', "use a dot for decimals"),
        ("tee,Tee,T-1,10,,,,,,,,-1,", "weight_kg must not be negative"),
        ("my tee,Tee,T-1,10,,,,,,,,,", "handle may only contain letters"),
        (",Tee,T-1,10,,,,,,,,,", "handle is required"),
        ("tee,,T-1,10,,,,,,,,,", "name is required"),
        ("tee,Tee,,10,,,,,,,,,", "sku is required"),
        ("tee,Tee,T-1,10,,Red,,,,,,,", "option1_value 'Red' has no option1_name"),
        ("tee,Tee,T-1,10,Size,,,,,,,,", "option1_value is blank"),
        ("tee,Tee,T-1,10,,,,,,,,,,surplus", "no name in the header row"),
    ],
)
def test_bad_cells_are_refused_with_a_reason(row, reason):
    result = import_catalog(catalog_csv(row))
    assert len(result.errors) == 1
    assert result.errors[0].line == 2
    assert reason in result.errors[0].reason


def test_two_variants_with_the_same_options_are_refused():
    rows = ["tee,Tee,T-1,10,Size,M,,,,,,,", "tee,Tee,T-2,10,Size,m,,,,,,,"]
    result = import_catalog(catalog_csv(*rows))
    assert result.errors == [
        RowError(3, "same options as line 2; each variant of a product needs its own option values")
    ]


def test_existing_brand_and_category_are_reused_ignoring_case():
    brand = BrandFactory(name="Kestrel")
    apparel = Category.objects.create(name="Apparel")
    tops = Category.objects.create(name="Tops", parent=apparel)
    rows = ["tee,Tee,T-1,10,,,,,KESTREL,apparel > TOPS,,,", "cap,Cap,C-1,5,,,,,,tops,,,"]
    # when
    result = import_catalog(catalog_csv(*rows))
    # then
    assert result.errors == []
    assert result.other["brands created"] == 0
    assert result.other["categories created"] == 0
    assert Product.objects.get(handle="tee").brand == brand
    assert Product.objects.get(handle="cap").category == tops


def test_a_category_name_used_twice_must_be_written_as_a_path():
    for parent in ("Men", "Women"):
        Category.objects.create(name="Shirts", parent=Category.objects.create(name=parent))
    result = import_catalog(catalog_csv("tee,Tee,T-1,10,,,,,,Shirts,,,"))
    assert "matches 2 categories; write its full path" in result.errors[0].reason


def test_a_blank_cell_clears_the_field_and_a_missing_column_leaves_it():
    # given
    import_catalog(catalog_csv(*tee_rows()))
    # when: weight_kg and image_urls are blank; brand is not in the file at all
    header = "handle,name,sku,retail_price,weight_kg,image_urls"
    import_catalog(
        catalog_csv(
            "linen-tee,Linen Tee,TEE-S,49.90,,", "linen-tee,Linen Tee,TEE-M,49.90,,", header=header
        )
    )
    # then
    product = Product.objects.get(handle="linen-tee")
    assert product.weight_kg is None
    assert not product.images.exists()
    assert product.brand.name == "Kestrel"
    assert product.variants.get(sku="TEE-S").options == {"Size": "S", "Color": "Sand"}


def test_dry_run_counts_but_writes_nothing():
    result = import_catalog(catalog_csv(*tee_rows()), dry_run=True)
    assert (result.created, result.written, result.dry_run) == (2, False, True)
    assert not Product.objects.exists()


def test_bom_windows_line_endings_blank_lines_and_semicolons_are_read():
    text = "\ufeffhandle;name;sku;retail_price\r\n\r\ntee;Tee;T-1;10\r\n\r\ntee;Tee;T-2;x\r\n"
    result = import_catalog(text)
    assert result.rows == 2
    assert result.errors == [RowError(5, "retail_price must be a number like 12.50, not 'x'")]


def test_header_names_are_read_loosely():
    result = import_catalog("Handle,Name,SKU,Retail Price\ntee,Tee,T-1,10\n")
    assert result.created == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("\n\n", "The file is empty"),
        ("handle,name,sku,retail_price,colour\n", "unknown column(s): 'colour'"),
        ("tee,Tee,T-1,10\n", "The first line should name the columns"),
        ("handle,name,sku\n", "The file has no retail_price column"),
        ("handle,name,sku,sku,retail_price\n", "more than once: sku"),
        ("handle,name\0,sku,retail_price\n", "not CSV text"),
        ('handle,name,sku,retail_price\nx,"unclosed,T-1,1\n', "cannot be read as CSV"),
    ],
)
def test_a_file_that_is_not_a_catalog_csv_is_refused_as_a_whole(text, message):
    with pytest.raises(ImportFileError) as excinfo:
        import_catalog(text)
    assert message in str(excinfo.value)


# A stray quote on line 3; line 2 and line 5 are bad for other reasons; line 4 is good.
BROKEN_CATALOG = catalog_csv(
    "cap,Cap,C-1,abc,,,,,,,,,",
    'mug,"Mug 5,M-1,10,,,,,,,,,',
    "tote,Tote,T-1,10,,,,,,,,,",
    "bag,Bag,B-1,-2,,,,,,,,,",
)


def test_an_unclosed_quote_refuses_the_file_and_still_lists_every_other_bad_row():
    # when: even with partial, since the lines after a broken quote may belong to it
    with pytest.raises(ImportFileError) as excinfo:
        import_catalog(BROKEN_CATALOG, partial=True)
    # then
    error = excinfo.value
    assert str(error).startswith("Line 3 cannot be read as CSV (is a closing quote missing?)")
    assert "2 bad row(s)" in str(error)
    assert [line for line, _reason in error.errors] == [2, 3, 5]
    reasons = dict(error.errors)
    assert reasons[2] == "retail_price must be a number like 12.50, not 'abc'"
    assert reasons[3].startswith("a quote opens in this row and is never closed")
    assert reasons[5] == "retail_price must not be negative (-2)"
    assert not Product.objects.exists()


def test_text_after_a_closing_quote_is_reported_on_its_line_and_reading_goes_on():
    text = catalog_csv(
        'cap,"Cap" blue,C-1,10,,,,,,,,,',
        "tote,Tote,T-1,10,,,,,,,,,",
        "",
        'bag,"Bag,B-1,-2,,,,,,,,,',
        "box,Box,X-1,,,,,,,,,,",
    )
    # when
    with pytest.raises(ImportFileError, match="^Lines 2, 5 cannot be read as CSV") as excinfo:
        import_catalog(text)
    # then: line 4 is blank; line 5's quote is never closed; line 6 lacks its price
    reasons = dict(excinfo.value.errors)
    assert sorted(reasons) == [2, 5, 6]
    assert 'a quote inside a quoted cell must be doubled ("")' in reasons[2]
    assert reasons[5].startswith("a quote opens in this row and is never closed")
    assert reasons[6] == "retail_price is required"


def test_a_quote_closing_on_a_later_line_names_both_lines():
    text = catalog_csv('cap,"Cap,C-1,10,,,,,,,,,', 'tote,Tote,T-1,"10"x,,,,,,,,,')
    with pytest.raises(ImportFileError) as excinfo:
        import_catalog(text)
    reasons = dict(excinfo.value.errors)
    assert "a quote opens in this row and closes only on line 3" in reasons[2]
    assert 'a quote inside a quoted cell must be doubled ("")' in reasons[3]


def test_lines_are_counted_right_across_reading_chunks_and_quoted_line_breaks(monkeypatch):
    # given: rows are read in chunks of 2 lines, and line 3's cell holds a line break
    monkeypatch.setattr(imports, "CHUNK", 2)
    rows = [f"p{i},P,S-{i},10,,,,,,,,," for i in range(6)]
    rows[1] = 'p1,"P\nsecond line",S-1,10,,,,,,,,,'
    rows += ['q,"Q,Q-1,10,,,,,,,,,', "r,R,R-1,x,,,,,,,,,"]
    # when
    with pytest.raises(ImportFileError) as excinfo:
        import_catalog(catalog_csv(*rows))
    # then: the quoted line break makes row 7 start on line 9
    assert [line for line, _reason in excinfo.value.errors] == [9, 10]
    assert excinfo.value.errors[1].reason == "retail_price must be a number like 12.50, not 'x'"


def test_rows_past_too_many_unreadable_ones_are_not_checked():
    rows = ['a,"b,c,1,,,,,,,,,' for _ in range(imports.MAX_UNREADABLE + 5)]
    with pytest.raises(ImportFileError) as excinfo:
        import_catalog(catalog_csv(*rows))
    errors = excinfo.value.errors
    assert len(errors) == imports.MAX_UNREADABLE + 1
    assert errors[-1].reason.startswith("not checked, nor any line after it")


def test_a_quoted_cell_with_line_breaks_and_doubled_quotes_still_imports():
    text = catalog_csv('mug,"Mug ""XL""\nceramic",M-1,10,,,,,,,,,')
    result = import_catalog(text)
    assert (result.created, result.errors) == (1, [])
    assert Product.objects.get().name == 'Mug "XL"\nceramic'


def test_a_file_that_is_not_utf8_is_refused():
    data = "handle,name,sku,retail_price\ntee,Caf\u00e9,T-1,10\n".encode("cp1252")
    with pytest.raises(ImportFileError) as excinfo:
        catalog_csv_import(stream=text_stream(io.BytesIO(data)))
    assert "not UTF-8" in str(excinfo.value)


def test_progress_is_reported_per_stage():
    calls = []
    import_catalog(catalog_csv(*tee_rows()), on_progress=lambda *args: calls.append(args))
    assert ("checking", 2, 2) in calls
    assert calls[-1][0] == "writing"
    assert calls[-1][1] == calls[-1][2] > 0


# --- stock -----------------------------------------------------------------------------------


@pytest.fixture
def outlet():
    return OutletFactory(code="main")


def test_stock_import_writes_one_ledger_row_per_changed_row(outlet):
    # given: T-1 already has 4 on hand; T-2 has no stock row yet; T-3 already has 7
    v1, v2, v3 = (VariantFactory(sku=sku) for sku in ("T-1", "T-2", "T-3"))
    Stock.objects.create(variant=v1, outlet=outlet, on_hand=4)
    Stock.objects.create(variant=v3, outlet=outlet, on_hand=7)
    # when
    result = import_stock("sku,quantity\nT-1,5\n t-2 ,3\nT-3,7\n", "main")
    # then
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    movements = StockMovement.objects.order_by("variant_id")
    assert [(m.variant_id, m.on_hand_delta, m.on_hand_after) for m in movements] == [
        (v1.pk, 1, 5),
        (v2.pk, 3, 3),
    ]
    assert {(m.trigger, m.reference, m.actor) for m in movements} == {
        (Trigger.IMPORT, "levels.csv", "test")
    }


def test_reimporting_the_same_levels_writes_no_ledger_rows(outlet):
    VariantFactory(sku="T-1")
    import_stock("sku,on_hand\nT-1,5\n", "main")
    # when
    result = import_stock("sku,on_hand\nT-1,5\n", "main")
    # then
    assert (result.unchanged, result.written) == (1, True)
    assert StockMovement.objects.count() == 1


def test_bad_stock_rows_are_reported_and_nothing_is_written(outlet):
    VariantFactory(sku="T-1")
    VariantFactory(sku="T-2")
    text = "sku,quantity\nT-1,5\nNOPE,1\nT-2,2.5\nt-1 ,6\nT-2,-1\n"
    # when
    result = import_stock(text, "main")
    # then
    assert [line for line, _reason in result.errors] == [2, 3, 4, 5, 6]
    reasons = dict(result.errors)
    assert reasons[3] == "no variant has the SKU 'NOPE'"
    assert reasons[4].startswith("quantity must be a whole number, not '2.5'")
    assert "is also on line 5" in reasons[2]
    assert "quantity must not be negative (-1)" in reasons[6]
    assert not Stock.objects.exists()


def test_partial_stock_import_writes_the_good_rows(outlet):
    VariantFactory(sku="T-1")
    result = import_stock("sku,quantity\nT-1,5\nNOPE,1\n", "main", partial=True)
    assert (result.created, result.written) == (1, True)
    assert result.errors == [RowError(3, "no variant has the SKU 'NOPE'")]
    assert Stock.objects.get().on_hand == 5


def test_stock_by_outlet_column(outlet):
    other = OutletFactory(code="warehouse")
    variant = VariantFactory(sku="T-1")
    # when
    result = import_stock(
        "sku,quantity,outlet\nT-1,5,main\nT-1,2,warehouse\nT-1,1,nowhere\n", partial=True
    )
    # then
    assert result.created == 2
    assert (
        "no outlet has the code 'nowhere' (known codes: main, warehouse)" in result.errors[0].reason
    )
    assert dict(Stock.objects.filter(variant=variant).values_list("outlet_id", "on_hand")) == {
        outlet.pk: 5,
        other.pk: 2,
    }


def test_stock_needs_exactly_one_way_of_naming_the_outlet(outlet):
    with pytest.raises(ImportFileError, match="Choose an outlet"):
        import_stock("sku,quantity\nT-1,5\n")
    with pytest.raises(ImportFileError, match="keep only one"):
        import_stock("sku,quantity,outlet\nT-1,5,main\n", "main")
    with pytest.raises(UnknownOutlet):
        import_stock("sku,quantity\nT-1,5\n", "nowhere")


def test_stock_import_with_an_unclosed_quote_lists_every_bad_row_and_writes_nothing(outlet):
    VariantFactory(sku="T-1")
    VariantFactory(sku="T-2")
    text = 'sku,quantity\nNOPE,1\n"T-1,5\nT-2,3\nT-2,x\n'
    # when
    with pytest.raises(ImportFileError, match="^Line 3 cannot be read as CSV") as excinfo:
        import_stock(text, "main", partial=True)
    # then
    reasons = dict(excinfo.value.errors)
    assert sorted(reasons) == [2, 3, 4, 5]
    assert reasons[2] == "no variant has the SKU 'NOPE'"
    assert reasons[3].startswith("a quote opens in this row and is never closed")
    assert "is also on line 5" in reasons[4]
    assert not Stock.objects.exists()


def test_stock_dry_run_counts_but_writes_nothing(outlet):
    VariantFactory(sku="T-1")
    result = import_stock("sku,quantity\nT-1,5\n", "main", dry_run=True)
    assert (result.created, result.written) == (1, False)
    assert not Stock.objects.exists()


# --- the doors show the whole report ---------------------------------------------------------


def test_the_import_commands_list_every_bad_row_of_a_file_with_an_unclosed_quote(tmp_path):
    OutletFactory(code="main")
    catalog_file, stock_file = tmp_path / "catalog.csv", tmp_path / "levels.csv"
    catalog_file.write_text(BROKEN_CATALOG, encoding="utf-8")
    stock_file.write_text('sku,quantity\nNOPE,1\n"T-1,5\n', encoding="utf-8")
    out = io.StringIO()
    # when / then
    with pytest.raises(CommandError, match="Line 3 cannot be read as CSV"):
        call_command("import_catalog", str(catalog_file), "--partial", stdout=out)
    printed = out.getvalue()
    assert "line 2: retail_price must be a number like 12.50, not 'abc'" in printed
    assert "line 3: a quote opens in this row and is never closed" in printed
    assert "line 5: retail_price must not be negative (-2)" in printed
    out = io.StringIO()
    with pytest.raises(CommandError, match="Line 3 cannot be read as CSV"):
        call_command("import_stock", str(stock_file), "--outlet", "main", stdout=out)
    assert "line 2: no variant has the SKU 'NOPE'" in out.getvalue()
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("page", "text"),
    [
        ("admin:catalog_product_import", BROKEN_CATALOG),
        ("admin:catalog_stock_import", 'sku,quantity\nNOPE,1\n"T-1,5\n'),
    ],
)
def test_the_import_pages_show_the_file_error_and_every_bad_row(
    admin_client, django_capture_on_commit_callbacks, page, text
):
    outlet = OutletFactory(code="main")
    upload = SimpleUploadedFile("f.csv", text.encode("utf-8"), content_type="text/csv")
    data = {"file": upload, "outlet": outlet.pk}  # the catalog page has no outlet field
    # when: the upload is queued, and run once it commits (inline in the tests)
    with django_capture_on_commit_callbacks(execute=True):
        queued = admin_client.post(reverse(page), data)
    response = admin_client.get(queued["Location"])
    # then: the run's page
    body = response.content.decode()
    assert "Line 3 cannot be read as CSV" in body
    shown = response.context["errors_shown"]
    assert [bad.line for bad in shown][:2] == [2, 3]
    assert shown[1].problems[0].text.startswith("a quote opens in this row and is never closed")
    assert "<td>a quote opens in this row and is never closed" in body
    assert 'id="import-result"' not in body  # no counts: the file as a whole was refused
    assert not Stock.objects.exists()
