"""CSV files of bundles (bundle_sku,component_sku,quantity) through the import, the admin's upload
page and `manage.py import_bundles`; and a bundle's SKU in a stock file."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.bundles import bundle_set_components
from catalog.imports import stock_csv_import
from catalog.imports.bundles import bundles_csv_import
from catalog.models import BundleComponent, Stock, Variant
from catalog.services import StockChange, stock_apply
from omni.actors import Actor
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db

HEADER = "bundle_sku,component_sku,quantity"


def csv(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join([HEADER, *rows]) + "\n", newline="")


def components(sku: str) -> list[tuple[str, int]]:
    return sorted(
        BundleComponent.objects.filter(bundle__sku=sku).values_list("component__sku", "quantity")
    )


@pytest.fixture
def catalog():
    """Plain variants TEE, MUG, CAP and TOTE; bundles to be: TEE-DUO, GIFT (no stock)."""
    return {
        sku: VariantFactory(sku=sku) for sku in ("TEE", "MUG", "CAP", "TOTE", "TEE-DUO", "GIFT")
    }


def test_the_rows_of_a_bundle_replace_its_components(catalog):
    bundle_set_components(
        bundle=catalog["GIFT"], components=[(catalog["CAP"], 1), (catalog["MUG"], 1)]
    )

    result = bundles_csv_import(
        stream=csv("TEE-DUO,TEE,2", "gift, mug ,2", "GIFT,TEE-DUO,1", "tee-duo,MUG,1")
    )

    assert result.errors == []
    assert result.written
    assert components("TEE-DUO") == [("MUG", 1), ("TEE", 2)]
    assert components("GIFT") == [("MUG", 2), ("TEE-DUO", 1)]  # CAP gone, MUG now 2
    assert (result.created, result.updated, result.unchanged) == (3, 1, 0)
    assert result.other == {"bundles changed": 2, "components removed": 1}

    again = bundles_csv_import(
        stream=csv("TEE-DUO,TEE,2", "gift, mug ,2", "GIFT,TEE-DUO,1", "tee-duo,MUG,1")
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert again.other["bundles changed"] == 0


def test_each_bad_row_is_reported_by_line_and_nothing_is_written(catalog):
    result = bundles_csv_import(
        stream=csv(
            "TEE-DUO,TEE,2",  # 2: fine
            "TEE-DUO,NOPE,1",  # 3: unknown component
            "KIT-X,TEE,1",  # 4: unknown bundle
            "GIFT,MUG,0",  # 5: not positive
            "GIFT,CAP,1.5",  # 6: not whole
            "GIFT,TOTE,",  # 7: missing
            "CAP,TOTE,1",  # 8: fine alone
            "CAP,TOTE,2",  # 9: the same component twice
        )
    )

    assert not result.written
    assert dict(result.errors) == {
        2: "not imported: the bundle 'TEE-DUO' has a bad row (line 3), and a bundle's rows "
        "replace its components together",
        3: "component_sku 'NOPE' matches no variant (SKUs are compared trimmed and ignoring "
        "letter case)",
        4: "bundle_sku 'KIT-X' matches no variant (SKUs are compared trimmed and ignoring "
        "letter case)",
        5: "quantity must be a whole number from 1 to 100,000, not 0 (a bundle takes at least "
        "one of each of its components)",
        6: "quantity must be a whole number, not '1.5'",
        7: "quantity is required",
        8: "component_sku 'TOTE' is also given for this bundle on line 9: give it once, with "
        "the total quantity",
        9: "component_sku 'TOTE' is also given for this bundle on line 8: give it once, with "
        "the total quantity",
    }
    assert not BundleComponent.objects.exists()


def test_partial_writes_the_good_bundles_only(catalog):
    result = bundles_csv_import(
        stream=csv("TEE-DUO,TEE,2", "GIFT,MUG,1", "GIFT,NOPE,1"), partial=True
    )

    assert result.written
    assert [line for line, _ in result.errors] == [3, 4]
    assert components("TEE-DUO") == [("TEE", 2)]
    assert components("GIFT") == []  # refused whole: a bundle short of a component is wrong


def test_cycles_and_bundles_holding_stock_are_refused_per_line(catalog):
    outlet = OutletFactory(code="jkt")
    stock_apply(
        changes=[StockChange(catalog["TOTE"].pk, outlet.pk, set_on_hand=3)], trigger="import"
    )
    bundle_set_components(bundle=catalog["GIFT"], components=[(catalog["TEE-DUO"], 1)])

    result = bundles_csv_import(
        stream=csv(
            "TEE-DUO,TEE,2",
            "TEE-DUO,GIFT,1",  # GIFT holds TEE-DUO: a cycle
            "TOTE,CAP,1",  # TOTE holds stock
            "CAP,CAP,1",  # itself
            "MUG,TEE,1",  # fine
        ),
        partial=True,
    )

    errors = dict(result.errors)
    assert errors[3] == (
        "TEE-DUO cannot contain GIFT: TEE-DUO would contain itself (TEE-DUO → GIFT → TEE-DUO). "
        "A bundle cannot contain itself, nor a bundle that contains it."
    )
    assert errors[2].startswith("not imported: the bundle 'TEE-DUO' has a bad row (line 3)")
    assert errors[4].startswith("TOTE holds stock (on hand 3, reserved 0 at jkt)")
    assert errors[5] == "CAP cannot contain itself."
    assert 6 not in errors
    assert components("MUG") == [("TEE", 1)]
    assert components("TEE-DUO") == components("TOTE") == components("CAP") == []


def test_two_bundles_of_one_file_containing_each_other_are_both_refused(catalog):
    result = bundles_csv_import(stream=csv("TEE-DUO,GIFT,1", "GIFT,TEE-DUO,1"), partial=True)
    assert [line for line, _ in result.errors] == [2, 3]
    assert "TEE-DUO → GIFT → TEE-DUO" in result.errors[0].reason
    assert not BundleComponent.objects.exists()


def test_a_dry_run_counts_and_writes_nothing(catalog):
    result = bundles_csv_import(stream=csv("TEE-DUO,TEE,2", "TEE-DUO,MUG,1"), dry_run=True)
    assert (result.created, result.written) == (2, False)
    assert not BundleComponent.objects.exists()


def test_the_import_costs_the_same_queries_for_many_bundles(catalog, django_assert_max_num_queries):
    parts = Variant.objects.bulk_create(
        Variant(product=catalog["TEE"].product, sku=f"KIT-{n:03d}", retail_price=1)
        for n in range(300)
    )
    rows = [f"{kit.sku},TEE,2" for kit in parts] + [f"{kit.sku},MUG,1" for kit in parts]
    with django_assert_max_num_queries(20):
        result = bundles_csv_import(stream=csv(*rows))
    assert result.written
    assert BundleComponent.objects.count() == 600


# --- a bundle in a stock file -------------------------------------------------------------------


def test_a_stock_file_refuses_a_bundles_row_and_says_why(catalog):
    outlet = OutletFactory(code="jkt")
    bundle_set_components(bundle=catalog["TEE-DUO"], components=[(catalog["TEE"], 2)])
    text = "sku,quantity\nTEE,5\ntee-duo,4\n"

    result = stock_csv_import(
        stream=io.StringIO(text, newline=""),
        outlet_code="jkt",
        reference="count.csv",
        actor=Actor(label="test"),
        partial=True,
    )

    assert result.errors == [
        (
            3,
            "the SKU 'tee-duo' is a bundle: its stock is its components' (import the "
            "components' counts instead)",
        )
    ]
    assert Stock.objects.get(variant=catalog["TEE"], outlet=outlet).on_hand == 5
    assert not Stock.objects.filter(variant=catalog["TEE-DUO"]).exists()


# --- the admin and the command ----------------------------------------------------------------


def test_the_admin_upload_imports_and_shows_bad_rows_by_line(admin_client, catalog):
    url = reverse("admin:catalog_variant_bundle_import")
    assert (
        "Import bundles"
        in admin_client.get(reverse("admin:catalog_variant_changelist")).content.decode()
    )
    example = admin_client.get(url, {"example": 1})
    assert example.content.decode().startswith(HEADER)

    upload = SimpleUploadedFile("bundles.csv", f"{HEADER}\nTEE-DUO,TEE,2\nGIFT,NOPE,1\n".encode())
    response = admin_client.post(url, {"file": upload, "partial": "on"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "The good rows were written; the bad rows were not" in page
    assert "<code>component_sku</code>" in page
    assert "&#x27;NOPE&#x27; matches no variant" in page
    assert components("TEE-DUO") == [("TEE", 2)]


def test_the_admin_upload_refuses_a_file_that_is_not_this_csv(admin_client, catalog):
    url = reverse("admin:catalog_variant_bundle_import")
    upload = SimpleUploadedFile("stock.csv", b"sku,quantity\nTEE,1\n")
    page = admin_client.post(url, {"file": upload}).content.decode()
    assert "unknown column(s): &#x27;sku&#x27;" in page
    assert not BundleComponent.objects.exists()


def test_the_command_imports_and_fails_on_bad_rows(catalog, tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text(f"{HEADER}\nTEE-DUO,TEE,2\n", encoding="utf-8")
    call_command("import_bundles", str(good), "--no-progress")
    assert components("TEE-DUO") == [("TEE", 2)]
    assert "1 created" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\nGIFT,TEE,2\nGIFT,TEE-DUO,x\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing was written: 2 bad row"):
        call_command("import_bundles", str(bad), "--no-progress")
    assert "line 3: quantity must be a whole number, not 'x'" in capsys.readouterr().out
    assert components("GIFT") == []
