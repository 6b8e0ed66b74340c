"""The catalog's screens in Chromium at 1440 px (conftest.Staff checks each page's width)."""

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from catalog.imports import import_run_execute, import_run_request
from catalog.models import ImportRun, Product
from tests.catalog.conftest import catalog_csv
from tests.catalog.test_import_runs import running_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_catalog_pages_fit_the_screen(staff):
    # given: the demo catalog (products of up to nine variants, three outlets, a ledger), one
    # variant with a long option
    from catalog.demo import demo_catalog_load

    demo_catalog_load(products=12)
    product = max(Product.objects.all(), key=lambda p: p.variants.count())
    variant = product.variants.first()
    variant.options = {**variant.options, "Material": "Organic cotton, heavyweight jersey"}
    variant.save()
    # when / then: each page opens with nothing wider than the screen
    for path in [
        reverse("admin:catalog_product_change", args=[product.pk]),
        reverse("admin:catalog_product_add"),
        reverse("admin:catalog_variant_change", args=[variant.pk]),
        reverse("admin:catalog_product_changelist"),
        reverse("admin:catalog_variant_changelist"),
        reverse("admin:catalog_stock_changelist"),
        reverse("admin:catalog_stockmovement_changelist"),
        reverse("admin:catalog_product_import"),
        reverse("admin:catalog_stock_import"),
    ]:
        staff.open(path)


def test_an_import_page_follows_its_run_into_its_outcome(staff):
    # given: a run with long bad rows, one running, and long file names
    rows = [f"p{i},Product {i},SKU-{i},{'1,5' if i % 2 else '-2'},,,,,,,,," for i in range(40)]
    failed = import_run_request(
        kind="catalog",
        file_name="a-very-long-export-file-name-from-the-pos-" + "x" * 80 + ".csv",
        text=catalog_csv(*rows),
        partial=False,
        dry_run=False,
    )
    import_run_execute(run_id=failed.pk)
    running = running_run(file_name="catalog-" + "y" * 120 + ".csv")
    for path in [
        reverse("admin:catalog_product_import_run", args=[failed.pk]),
        reverse("admin:catalog_importrun_changelist"),
        reverse("admin:catalog_product_import"),
        reverse("admin:catalog_product_import_run", args=[running.pk]),
    ]:
        staff.open(path)
    # a running bar hides the link to the outcome; once the run ends, the bar refreshes itself
    # and the page reloads into its outcome
    assert not staff.page.locator(".import-run-done").is_visible()
    ImportRun.objects.filter(pk=running.pk).update(
        status=ImportRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        summary={"rows": 9, "dry_run": False},
    )
    connection.close()  # playwright's loop got a connection of its own: leave none open
    staff.page.wait_for_selector("#import-result", timeout=10_000)
    assert "9 rows imported" in staff.page.locator(".omni-progress").inner_text()
    staff.check_layout()
