"""The doors to the imports: the two management commands, the admin pages, the benchmark."""

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from catalog.admin_views import BadLine, Problem
from catalog.models import Outlet, Product, Stock, StockMovement, Variant
from omni.benchmarks.import_bench import (
    FLOOR_PREFIX,
    HANDLE_PREFIX,
    SCHEMA_PREFIX,
    _floor_tables_create,
)
from tests.catalog.conftest import catalog_csv, tee_rows
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["import_catalog", "import_stock", "bench"])
def test_command_help_works(command, capsys):
    with pytest.raises(SystemExit) as excinfo:
        call_command(command, "--help")
    assert excinfo.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_import_catalog_refuses_a_file_with_a_bad_row_and_lists_it(write_csv):
    # given
    path = write_csv("catalog.csv", [catalog_csv(*tee_rows()).strip(), "cap,Cap,C-1,x,,,,,,,,,"])
    out = io.StringIO()
    # when / then
    with pytest.raises(CommandError, match="Nothing was written: 1 bad row"):
        call_command("import_catalog", str(path), stdout=out, stderr=io.StringIO())
    assert "line 4: retail_price must be a number like 12.50, not 'x'" in out.getvalue()
    assert not Product.objects.exists()


def test_import_catalog_partial_writes_the_good_rows(write_csv):
    path = write_csv("catalog.csv", [catalog_csv(*tee_rows()).strip(), "cap,Cap,C-1,x,,,,,,,,,"])
    # when
    output = run("import_catalog", str(path), "--partial", "--no-progress")
    # then
    assert "Read 3 row(s): 2 created, 0 updated, 0 unchanged, 1 bad." in output
    assert "line 4: retail_price" in output
    assert Variant.objects.count() == 2


def test_import_catalog_dry_run_writes_nothing(write_csv):
    path = write_csv("catalog.csv", [catalog_csv(*tee_rows()).strip()])
    output = run("import_catalog", str(path), "--dry-run")
    assert "2 created" in output
    assert "Dry run: nothing was written." in output
    assert not Product.objects.exists()


def test_import_catalog_reports_a_file_it_cannot_read(tmp_path, write_csv):
    with pytest.raises(CommandError, match="Cannot open"):
        run("import_catalog", str(tmp_path / "missing.csv"))
    path = write_csv("catalog.csv", ["sku,colour", "T-1,red"])
    with pytest.raises(CommandError, match="unknown column"):
        run("import_catalog", str(path))


def test_import_stock_sets_levels_with_the_file_name_as_reference(write_csv):
    # given
    outlet = OutletFactory(code="main")
    variant = VariantFactory(sku="T-1")
    path = write_csv("count-june.csv", ["sku,on_hand", "t-1,7"])
    # when
    output = run("import_stock", str(path), "--outlet", "main")
    # then
    assert "1 created" in output
    movement = StockMovement.objects.get()
    assert (movement.variant_id, movement.outlet_id, movement.on_hand_after) == (
        variant.pk,
        outlet.pk,
        7,
    )
    assert (movement.trigger, movement.reference, movement.actor) == (
        StockMovement.Trigger.IMPORT,
        "count-june.csv",
        "command:import_stock",
    )


def test_import_stock_fails_on_bad_rows_and_unknown_outlets(write_csv):
    OutletFactory(code="main")
    path = write_csv("levels.csv", ["sku,quantity", "NOPE,1"])
    out = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was written"):
        call_command("import_stock", str(path), "--outlet", "main", stdout=out)
    assert "line 2: no variant has the SKU 'NOPE'" in out.getvalue()
    with pytest.raises(CommandError, match="No outlet has the code 'elsewhere'"):
        run("import_stock", str(path), "--outlet", "elsewhere")
    assert not Stock.objects.exists()


# --- admin pages -----------------------------------------------------------------------------


def upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8-sig"), content_type="text/csv")


@pytest.fixture
def post_upload(admin_client, django_capture_on_commit_callbacks):
    """POST an upload; once it commits, the import runs (inline in the tests) and the upload's
    answer leads to the run's page. Returns the page, or the upload's answer if it has none."""

    def post(page: str, data: dict):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse(page), data)
        return admin_client.get(response["Location"]) if response.status_code == 302 else response

    return post


def test_catalog_import_page_renders_with_its_columns_and_example(admin_client):
    response = admin_client.get(reverse("admin:catalog_product_import"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Import products" in page
    assert "<code>retail_price</code>" in page
    assert 'href="?example=1"' in page
    example = admin_client.get(reverse("admin:catalog_product_import"), {"example": "1"})
    assert example["Content-Type"].startswith("text/csv")
    assert example.content.decode().startswith("handle,name,sku")


@override_settings(FILE_UPLOAD_MAX_MEMORY_SIZE=10)  # the upload goes to a temporary file
def test_catalog_import_page_imports_a_file(post_upload):
    response = post_upload(
        "admin:catalog_product_import", {"file": upload("catalog.csv", catalog_csv(*tee_rows()))}
    )
    assert response.status_code == 200
    assert response.context["run"].summary["created"] == 2
    assert "<h2>Imported</h2>" in response.content.decode()
    assert Variant.objects.count() == 2


def test_catalog_import_page_lists_bad_rows_and_writes_nothing(post_upload):
    text = catalog_csv(*tee_rows(), "cap,Cap,C-1,-1,,,,,,,,,")
    response = post_upload("admin:catalog_product_import", {"file": upload("catalog.csv", text)})
    page = response.content.decode()
    # the line, the column and the problem, each in its own cell
    assert response.context["errors_shown"] == [
        BadLine(4, [Problem("retail_price", "must not be negative (-1)")])
    ]
    assert '<td rowspan="1" class="import-line">4</td>' in page
    assert "<td><code>retail_price</code></td><td>must not be negative (-1)</td>" in page
    assert "Nothing was written" in page
    assert not Product.objects.exists()


def test_the_import_page_lists_each_problem_of_a_line_with_its_column(post_upload):
    header = "handle,name,sku,retail_price,active,option1_name,option1_value"
    text = catalog_csv(
        'mug,Mug,M-1,"1,5",maybe,Colour,', "mug,Mug,M-2,2,yes,Colour,Red", header=header
    )
    response = post_upload("admin:catalog_product_import", {"file": upload("catalog.csv", text)})
    [bad, other] = response.context["errors_shown"]
    assert bad == BadLine(
        2,
        [
            Problem("active", "must be yes or no (or true/false, 1/0), not 'maybe'"),
            Problem(
                "retail_price",
                "must be a number like 12.50, not '1,5'; use a dot for decimals and no "
                "thousands separator",
            ),
            Problem("option1_value", "is blank, but the product's option1_name is 'Colour'"),
        ],
    )
    assert other == BadLine(
        3, [Problem("", "not imported: line 2 of the same product (handle 'mug') has an error")]
    )
    assert '<td rowspan="3" class="import-line">2</td>' in response.content.decode()
    assert not Product.objects.exists()


def test_catalog_import_page_shows_a_file_level_error_on_the_form(post_upload):
    response = post_upload(
        "admin:catalog_product_import", {"file": upload("catalog.csv", "colour\nred\n")}
    )
    assert "unknown column(s): &#x27;colour&#x27;" in response.content.decode()
    assert "form" in response.context  # the upload form again: nothing was queued


def test_stock_import_page_sets_levels_for_the_chosen_outlet(post_upload, admin_user):
    outlet = OutletFactory(code="main")
    VariantFactory(sku="T-1")
    # when
    response = post_upload(
        "admin:catalog_stock_import",
        {"file": upload("levels.csv", "sku,quantity\nT-1,3\n"), "outlet": outlet.pk},
    )
    # then
    assert response.status_code == 200
    assert response.context["run"].summary["created"] == 1
    movement = StockMovement.objects.get()
    assert (movement.reference, movement.user_id) == ("levels.csv", admin_user.pk)
    assert movement.actor == f"user:{admin_user.get_username()}"


def test_import_pages_need_permissions(client, django_user_model):
    # given: a staff user who may only view products
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(user)
    # when / then
    assert client.get(reverse("admin:catalog_product_import")).status_code == 403
    assert client.get(reverse("admin:catalog_stock_import")).status_code == 403


# --- benchmark -------------------------------------------------------------------------------


def test_bench_import_runs_and_removes_what_it_created():
    output = run("bench", "import", "--variants", "30", "--outlets", "2", "--reimport")
    assert "import catalog" in output
    assert "import stock bench-2" in output
    assert "total" in output
    assert not Product.objects.filter(handle__startswith=HANDLE_PREFIX).exists()
    assert not Outlet.objects.exists()
    assert not StockMovement.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the floors are PostgreSQL's")
def test_bench_import_prints_both_floors_and_drops_their_tables():
    output = run("bench", "import", "--variants", "30", "--outlets", "1")
    assert output.count("its floor: COPY, plain tables") == 2
    assert output.count("its schema floor: full tables") == 2
    assert "import ÷ floors" in output
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE %s", ["bench%"])
        assert cursor.fetchone() == (0,)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the floors are PostgreSQL's")
def test_the_schema_floor_has_the_real_tables_indexes_and_keys():
    def indexes(table: str) -> int:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [table])
        return cursor.fetchone()[0]

    def keys(table: str) -> set[str]:
        cursor.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        return {target for (target,) in cursor.fetchall()}

    _floor_tables_create()
    with connection.cursor() as cursor:
        for table in ("catalog_product", "catalog_variant", "catalog_stock"):
            assert indexes(f"{SCHEMA_PREFIX}{table}") == indexes(table) > 1
            assert indexes(f"{FLOOR_PREFIX}{table}") == 0
        # A key to a table the same import writes points at its copy; any other, at the table.
        assert keys(f"{SCHEMA_PREFIX}catalog_variant") == {f"{SCHEMA_PREFIX}catalog_product"}
        assert keys(f"{SCHEMA_PREFIX}catalog_stock") == {"catalog_variant", "catalog_outlet"}
