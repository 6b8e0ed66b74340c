"""Imports uploaded in the admin run on a worker: the upload page queues a run and shows its
page, whose bar follows the import and then shows its outcome (catalog.imports.runs).

The test settings run django-q2 tasks inline, so once the upload's transaction commits (the
on-commit callbacks, run here by django_capture_on_commit_callbacks) the import has run and the
page it redirects to shows how it ended.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from catalog.imports import import_run_execute, import_run_request
from catalog.imports import runs as import_runs
from catalog.models import ImportRun, Product, Stock, StockMovement, Variant
from tests.catalog.conftest import catalog_csv, tee_rows
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db
Status = ImportRun.Status
CATALOG_PAGE = "admin:catalog_product_import"
STOCK_PAGE = "admin:catalog_stock_import"


def upload(text: str, name: str = "catalog.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8-sig"), content_type="text/csv")


@pytest.fixture
def post_upload(admin_client, django_capture_on_commit_callbacks):
    """POST an upload, let the transaction's callbacks run (the import, inline), and return
    the upload's answer and the page it redirects to."""

    def post(page: str, data: dict):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse(page), data)
        if response.status_code != 302:
            return response, None
        return response, admin_client.get(response["Location"])

    return post


def running_run(**fields) -> ImportRun:
    now = timezone.now()
    values = {
        "kind": ImportRun.Kind.CATALOG,
        "file_name": "big.csv",
        "text": "handle,name,sku,retail_price\n",
        "status": Status.RUNNING,
        "started_at": now - timedelta(seconds=8),
        "stage": ImportRun.Stage.CHECKING,
        "stage_started_at": now - timedelta(seconds=5),
        "progress_at": now,
        "rows_done": 2500,
        "rows_total": 10000,
        **fields,
    }
    return ImportRun.objects.create(**values)


# --- the upload queues a run; its page shows the outcome --------------------------------------


def test_an_upload_redirects_to_its_run_which_shows_the_counts(post_upload, admin_user):
    # when
    response, page = post_upload(CATALOG_PAGE, {"file": upload(catalog_csv(*tee_rows()))})
    # then
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("admin:catalog_product_import_run", args=[run.pk])
    assert (run.status, run.rows_total, run.summary["created"]) == (Status.SUCCEEDED, 2, 2)
    assert run.requested_by == admin_user
    assert run.text == ""  # the file is not kept once imported
    assert Variant.objects.count() == 2
    body = page.content.decode()
    assert 'data-state="succeeded"' in body
    assert "2 rows imported" in body
    assert "<h2>Imported</h2>" in body
    assert '<tr><th scope="row">Created</th><td>2</td></tr>' in body
    assert "data-poll" not in body  # a finished run's bar does not refresh itself


def test_a_bad_row_fails_the_run_with_its_errors_table_and_nothing_is_written(post_upload):
    text = catalog_csv(*tee_rows(), "cap,Cap,C-1,-1,,,,,,,,,")
    # when
    _response, page = post_upload(CATALOG_PAGE, {"file": upload(text)})
    # then
    run = ImportRun.objects.get()
    assert (run.status, run.errors_total, run.errors) == (
        Status.FAILED,
        1,
        [[4, "retail_price must not be negative (-1)"]],
    )
    body = page.content.decode()
    assert 'data-state="failed"' in body
    assert "Refused: bad rows" in body
    assert "1 bad row: nothing was written." in body
    assert "Nothing was written: fix the bad rows, or tick “import the good rows”" in body
    assert '<td rowspan="1" class="import-line">4</td>' in body
    assert "<td><code>retail_price</code></td><td>must not be negative (-1)</td>" in body
    assert not Product.objects.exists()


def test_import_the_good_rows_writes_them_and_shows_the_bad_ones_in_orange(post_upload):
    text = catalog_csv(*tee_rows(), "cap,Cap,C-1,-1,,,,,,,,,")
    # when
    _response, page = post_upload(CATALOG_PAGE, {"file": upload(text), "partial": "on"})
    # then
    run = ImportRun.objects.get()
    assert (run.status, run.summary["created"], run.errors_total) == (Status.SUCCEEDED, 2, 1)
    body = page.content.decode()
    assert 'data-state="partial"' in body  # neither a success nor a failure: orange
    assert "2 rows imported" in body
    assert "1 bad row left out." in body
    assert "The good rows were written; the bad rows were not" in body
    assert "<td><code>retail_price</code></td><td>must not be negative (-1)</td>" in body
    assert set(Variant.objects.values_list("sku", flat=True)) == {"TEE-S", "TEE-M"}


def test_only_checking_counts_and_writes_nothing(post_upload):
    _response, page = post_upload(
        CATALOG_PAGE, {"file": upload(catalog_csv(*tee_rows())), "dry_run": "on"}
    )
    body = page.content.decode()
    assert ImportRun.objects.get().status == Status.SUCCEEDED
    assert "2 rows checked" in body
    assert "Checked only: nothing was written" in body
    assert not Product.objects.exists()


def test_a_stock_upload_sets_the_levels_as_the_user_who_uploaded(post_upload, admin_user):
    outlet = OutletFactory(code="main")
    VariantFactory(sku="T-1")
    # when
    _response, page = post_upload(
        STOCK_PAGE, {"file": upload("sku,quantity\nT-1,3\n", "levels.csv"), "outlet": outlet.pk}
    )
    # then
    run = ImportRun.objects.get()
    assert (run.kind, run.outlet, run.summary["created"]) == ("stock", outlet, 1)
    assert page.request["PATH_INFO"] == reverse("admin:catalog_stock_import_run", args=[run.pk])
    movement = StockMovement.objects.get()
    assert (movement.reference, movement.user_id) == ("levels.csv", admin_user.pk)
    assert Stock.objects.get().on_hand == 3


# --- what can be told at once stays on the form ----------------------------------------------


@pytest.mark.parametrize(
    ("page", "data", "message"),
    [
        (CATALOG_PAGE, b"colour\nred\n", "unknown column(s): &#x27;colour&#x27;"),
        (CATALOG_PAGE, b"handle,name,sku\nt,T,T-1\n", "no retail_price column (required)"),
        (CATALOG_PAGE, b"\n\n", "The file is empty"),
        (CATALOG_PAGE, b"handle,name,sku,retail_price\nt,Caf\xe9,T-1,1\n", "on line 2"),
        (CATALOG_PAGE, b"handle,name\x00", "holds binary data"),
        (STOCK_PAGE, b"sku,quantity\nT-1,1\n", "Choose an outlet, or add an outlet column"),
    ],
)
def test_a_file_the_import_would_refuse_at_once_is_refused_on_the_form(
    post_upload, page, data, message
):
    upload_file = SimpleUploadedFile("f.csv", data, content_type="text/csv")
    # when
    response, _page = post_upload(page, {"file": upload_file})
    # then
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportRun.objects.exists()


def test_the_stock_form_refuses_an_outlet_chosen_beside_an_outlet_column(post_upload):
    outlet = OutletFactory(code="main")
    text = "sku,quantity,outlet\nT-1,1,main\n"
    response, _page = post_upload(STOCK_PAGE, {"file": upload(text), "outlet": outlet.pk})
    assert "The file has an outlet column and an outlet was also chosen" in (
        response.content.decode()
    )
    assert not ImportRun.objects.exists()


def test_the_import_is_queued_only_once_the_upload_commits(
    admin_client, django_capture_on_commit_callbacks
):
    # when: the upload's transaction has not committed yet
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse(CATALOG_PAGE), {"file": upload(catalog_csv(*tee_rows()))}
        )
    # then: a queued run, waiting for a worker; nothing imported
    assert len(callbacks) == 1
    run = ImportRun.objects.get()
    assert run.status == Status.QUEUED
    assert run.text.startswith("handle,name,sku")
    page = admin_client.get(response["Location"]).content.decode()
    assert "waiting for a worker" in page
    poll = reverse("admin:catalog_importrun_progress", args=[run.pk])
    assert f'data-poll="{poll}"' in page
    assert not Variant.objects.exists()


# --- the bar while it runs -------------------------------------------------------------------


def test_the_progress_url_answers_the_live_bar_alone(admin_client):
    run = running_run()
    # when
    response = admin_client.get(reverse("admin:catalog_importrun_progress", args=[run.pk]))
    # then
    body = response.content.decode().strip()
    assert body.startswith('<div class="omni-progress" data-state="running"')
    assert body.endswith("</div>")  # the bar alone, not a page
    assert "<body" not in body
    poll = reverse("admin:catalog_importrun_progress", args=[run.pk])
    assert f'data-poll="{poll}"' in body
    assert "Checking (2/3)" in body
    assert "2,500 of 10,000 rows checked" in body
    # 2,500 rows in 5 s: 7,500 more in about 15 s
    assert re.search(r"about 1[4-6] s left", body)
    assert 'style="width:25%"' in body


def test_a_running_runs_page_shows_the_bar_and_no_outcome_yet(admin_client):
    run = running_run(stage=ImportRun.Stage.WRITING, rows_done=6000)
    page = admin_client.get(reverse("admin:catalog_product_import_run", args=[run.pk]))
    body = page.content.decode()
    assert "Writing (3/3)" in body
    assert "6,000 of 10,000 rows written" in body
    assert "Show the outcome" in body  # shown by the page's CSS once the bar ends
    assert 'id="import-result"' not in body


def test_a_run_that_stopped_answering_is_shown_failed(admin_client):
    run = running_run(progress_at=timezone.now() - timedelta(minutes=10))
    # when
    response = admin_client.get(reverse("admin:catalog_importrun_progress", args=[run.pk]))
    # then
    body = response.content.decode()
    assert 'data-state="failed"' in body
    assert "Abandoned: its worker stopped answering" in body
    run.refresh_from_db()
    assert (run.status, run.text) == (Status.FAILED, "")


def test_a_run_no_worker_started_is_shown_failed(admin_client):
    run = ImportRun.objects.create(kind="catalog", file_name="f.csv", text="x")
    ImportRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    page = admin_client.get(reverse("admin:catalog_product_import_run", args=[run.pk]))
    assert "no worker started it" in page.content.decode()
    assert ImportRun.objects.get().status == Status.FAILED


def test_progress_is_written_per_beat_not_per_row(django_assert_num_queries):
    # given: a running run, and the recorder the import reports to
    run = running_run(stage="", rows_done=0, rows_total=None)
    recorder = import_runs._Recorder(run.pk)
    # when: the import checks half its rows, and a beat comes
    recorder("checking", 5000, 10000)
    recorder.beat()
    run.refresh_from_db()
    assert (run.stage, run.rows_done, run.rows_total) == ("checking", 5000, 10000)
    # then: a beat with nothing new writes nothing
    with django_assert_num_queries(0):
        recorder.beat()
    # and the writing stage counts the file's rows, whatever it writes per row
    recorder("writing", 75_000, 150_000)
    recorder.beat()
    run.refresh_from_db()
    assert (run.stage, run.rows_done, run.rows_total) == ("writing", 5000, 10000)


# --- a run ends, whatever happens ------------------------------------------------------------


def test_an_unexpected_error_fails_the_run_with_it(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(import_runs, "catalog_csv_import", broken)
    run = import_run_request(
        kind="catalog", file_name="f.csv", text="handle\n", partial=False, dry_run=False
    )
    # when
    import_run_execute(run_id=run.pk)
    # then
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "RuntimeError: disk full" in run.error
    assert run.text == ""
    assert run.finished_at is not None


def test_a_task_delivered_twice_imports_once(monkeypatch):
    calls = []
    real = import_runs.catalog_csv_import
    monkeypatch.setattr(
        import_runs, "catalog_csv_import", lambda **kw: calls.append(1) or real(**kw)
    )
    run = import_run_request(
        kind="catalog",
        file_name="f.csv",
        text=catalog_csv(*tee_rows()),
        partial=False,
        dry_run=False,
    )
    # when
    import_run_execute(run_id=run.pk)
    import_run_execute(run_id=run.pk)
    # then
    assert len(calls) == 1
    assert ImportRun.objects.get().status == Status.SUCCEEDED


def test_a_file_level_error_found_while_importing_fails_the_run_with_every_bad_row(post_upload):
    text = 'handle,name,sku,retail_price\nt,T,T-1,abc\nu,"U,U-1,1\n'
    # when
    _response, page = post_upload(CATALOG_PAGE, {"file": upload(text)})
    # then
    run = ImportRun.objects.get()
    assert run.status == Status.FAILED
    assert run.error.startswith("Line 3 cannot be read as CSV")
    body = page.content.decode()
    assert '<p class="errornote">Line 3 cannot be read as CSV' in body
    assert '<td rowspan="1" class="import-line">2</td>' in body
    assert "0 rows imported" in body
    assert not Product.objects.exists()


# --- who sees runs, and where ----------------------------------------------------------------


def test_runs_are_shown_only_to_who_may_import_or_view_imports(client, django_user_model):
    run = running_run()
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(user)
    page = reverse("admin:catalog_product_import_run", args=[run.pk])
    progress = reverse("admin:catalog_importrun_progress", args=[run.pk])
    # when / then
    assert client.get(page).status_code == 403
    assert client.get(progress).status_code == 404
    user.user_permissions.add(Permission.objects.get(codename="view_importrun"))
    user = django_user_model.objects.get(pk=user.pk)  # a fresh permission cache
    client.force_login(user)
    assert client.get(page).status_code == 200
    assert client.get(progress).status_code == 200


def test_a_run_is_shown_under_its_own_kind_only(admin_client):
    run = running_run()  # a catalog import
    catalog = admin_client.get(reverse("admin:catalog_product_import_run", args=[run.pk]))
    stock = admin_client.get(reverse("admin:catalog_stock_import_run", args=[run.pk]))
    assert (catalog.status_code, stock.status_code) == (200, 404)


def test_the_imports_list_shows_each_run_with_its_bar(
    admin_client, post_upload, django_assert_max_num_queries
):
    post_upload(CATALOG_PAGE, {"file": upload(catalog_csv(*tee_rows()))})
    running = running_run()
    for _ in range(5):
        running_run(file_name="other.csv")
    # when
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:catalog_importrun_changelist"))
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="omni-progress"') == 7
    assert "2,500 of 10,000 rows checked" in body
    assert "2 rows imported" in body
    assert reverse("admin:catalog_product_import_run", args=[running.pk]) in body
    # a run's admin page is its own page
    change = admin_client.get(reverse("admin:catalog_importrun_change", args=[running.pk]))
    assert change["Location"] == reverse("admin:catalog_product_import_run", args=[running.pk])


def test_the_upload_page_lists_the_recent_runs_of_its_kind(admin_client):
    running_run(file_name="products.csv")
    running_run(kind=ImportRun.Kind.STOCK, file_name="levels.csv")
    body = admin_client.get(reverse(CATALOG_PAGE)).content.decode()
    assert "Recent imports" in body
    assert "products.csv" in body
    assert "levels.csv" not in body
