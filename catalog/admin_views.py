"""Admin pages to upload a catalog CSV or a stock CSV, and to follow the import. Thin: the
upload page checks what can be told at once and queues an ImportRun (catalog.imports.runs); the
run's page shows its progress bar, refreshing itself, and then its outcome. Wired into
ProductAdmin, StockAdmin and ImportRunAdmin through get_urls.

A bundles CSV (a few rows per bundle) is imported in the upload request itself, and its
outcome shown on the upload page (VariantAdmin)."""

import io
import re
from dataclasses import replace
from typing import Any, NamedTuple

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from catalog.exceptions import CatalogError
from catalog.imports import (
    CATALOG_COLUMNS,
    ERRORS_KEPT,
    STOCK_COLUMNS,
    Column,
    ImportFileError,
    ImportResult,
    RowError,
    import_file_check,
    import_run_request,
    import_runs_abandon_stale,
    upload_text,
)
from catalog.imports.bundles import BUNDLE_COLUMNS, bundles_csv_import
from catalog.imports.runs import refused
from catalog.models import ImportRun, Outlet
from omni.admin_tools import Progress, progress_bar

TEMPLATE = "admin/catalog/import_form.html"
RUN_TEMPLATE = "admin/catalog/import_run.html"
# Bad rows shown on a run's page (all a run keeps); the rest are counted. A file with more
# needs fixing at the source.
SHOWN_ERRORS = ERRORS_KEPT
# Runs listed under the upload form.
RECENT_RUNS = 5

Kind, Status, Stage = ImportRun.Kind, ImportRun.Status, ImportRun.Stage

# Who may follow a run: whoever may upload its kind of file (as the upload pages check it:
# ProductAdmin's add and change, StockAdmin's change), or may view imports.
IMPORT_PERMISSIONS = {
    Kind.CATALOG: ("catalog.add_product", "catalog.change_product"),
    Kind.STOCK: ("catalog.change_stock",),
}
VIEW_RUNS_PERMISSION = "catalog.view_importrun"


CATALOG_EXAMPLE = (
    "handle,name,sku,upc,retail_price,option1_name,option1_value,option2_name,option2_value,"
    "brand,category,weight_kg,active,image_urls,supplier,supplier_price,tags\r\n"
    "linen-tee,Linen Tee,TEE-SAND-S,8991234500011,49.90,Color,Sand,Size,S,Kestrel,"
    "Apparel > Tops,0.25,yes,https://images.example.com/linen-tee.jpg,PT Sumber Kain,20.00,"
    '"summer,linen"\r\n'
    "linen-tee,Linen Tee,TEE-SAND-M,8991234500028,49.90,Color,Sand,Size,M,Kestrel,"
    "Apparel > Tops,0.25,yes,https://images.example.com/linen-tee.jpg,PT Sumber Kain,20.00,"
    '"summer,linen"\r\n'
    "canvas-tote,Canvas Tote,TOTE-NAT,,19.00,,,,,Kestrel,Accessories > Bags,0.30,yes,,,,\r\n"
)
STOCK_EXAMPLE = "sku,quantity\r\nTEE-SAND-S,12\r\nTEE-SAND-M,8\r\nTOTE-NAT,0\r\n"
BUNDLE_EXAMPLE = (
    "bundle_sku,component_sku,quantity\r\n"
    "TEE-DUO-M,TEE-SAND-M,2\r\n"
    "BEACH-KIT,TEE-SAND-M,1\r\n"
    "BEACH-KIT,TOTE-NAT,1\r\n"
)
BUNDLE_TEMPLATE = "admin/catalog/bundle_import.html"

# The imports join a row's problems with "; ". Each starts with the column it is about, or with
# one of these (the column they name, "" for the row as a whole); a "; " before anything else
# is inside one problem ("…not '1,5'; use a dot for decimals").
PROBLEM_STARTS = {
    "the SKU ": "sku",
    "no variant has the SKU ": "sku",
    "no outlet has the code ": "outlet",
    "same options as line ": "",
    "two options of this product ": "",
    "not imported: ": "",
    "has a value in a column ": "",
    "a quote opens ": "",
    "cannot be read as CSV": "",
    "not checked, nor any line ": "",
}


class CatalogImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="UTF-8 CSV (Excel: “CSV UTF-8”), comma or semicolon separated."
    )
    partial = forms.BooleanField(
        required=False,
        label="Import the good rows even if some rows are bad",
        label_suffix="",
        help_text="Otherwise one bad row stops the whole file and nothing is written.",
    )
    dry_run = forms.BooleanField(
        required=False,
        label="Only check the file",
        label_suffix="",
        help_text="Nothing is written.",
    )


class StockImportForm(CatalogImportForm):
    outlet = forms.ModelChoiceField(
        queryset=Outlet.objects.filter(is_active=True),
        required=False,
        empty_label="— from the file's outlet column —",
        help_text="The counts are set for this outlet; leave empty when the file names an "
        "outlet code on each row.",
    )
    field_order = ["file", "outlet", "partial", "dry_run"]


def catalog_import_view(request: HttpRequest, model_admin: "admin.ModelAdmin[Any]") -> HttpResponse:
    """Upload a catalog CSV: create and update products and variants (catalog.imports)."""
    if not (model_admin.has_add_permission(request) and model_admin.has_change_permission(request)):
        raise PermissionDenied
    if request.GET.get("example"):
        return csv_example(CATALOG_EXAMPLE, "catalog-example.csv")
    form = CatalogImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        run = _queue(request, form, Kind.CATALOG)
        if run is not None:
            return HttpResponseRedirect(run_url(run))
    return _render(request, model_admin, form, Kind.CATALOG)


def stock_import_view(request: HttpRequest, model_admin: "admin.ModelAdmin[Any]") -> HttpResponse:
    """Upload a stock CSV: set on-hand counts, one ledger row per changed count (trigger
    import, the file name as reference, the user as actor)."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    if request.GET.get("example"):
        return csv_example(STOCK_EXAMPLE, "stock-example.csv")
    form = StockImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        run = _queue(request, form, Kind.STOCK)
        if run is not None:
            return HttpResponseRedirect(run_url(run))
    return _render(request, model_admin, form, Kind.STOCK)


def _queue(request: HttpRequest, form: forms.Form, kind: str) -> ImportRun | None:
    """The queued run of the uploaded file; or None, with what can be told at once (not
    UTF-8, not CSV, a header the import refuses) shown on the file field."""
    data = form.cleaned_data
    outlet = data.get("outlet")
    try:
        text = upload_text(data["file"])
        import_file_check(kind=kind, text=text, outlet=outlet)
    except CatalogError as exc:
        form.add_error("file", str(exc))
        return None
    return import_run_request(
        kind=kind,
        file_name=data["file"].name,
        text=text,
        partial=data["partial"],
        dry_run=data["dry_run"],
        outlet=outlet,
        requested_by=request.user,
    )


# --- a run -----------------------------------------------------------------------------------

TITLES = {Kind.CATALOG: "Import products", Kind.STOCK: "Import stock levels"}
COLUMNS = {Kind.CATALOG: CATALOG_COLUMNS, Kind.STOCK: STOCK_COLUMNS}
PAGES = {Kind.CATALOG: "catalog_product_import", Kind.STOCK: "catalog_stock_import"}
STEPS = [Stage.READING, Stage.CHECKING, Stage.WRITING]
STAGE_UNITS = {
    Stage.READING: "rows read",
    Stage.CHECKING: "rows checked",
    Stage.WRITING: "rows written",
}


def run_url(run: ImportRun) -> str:
    """The run's page, under the upload page of its kind."""
    return reverse(f"admin:{PAGES[run.kind]}_run", args=[run.pk])


def may_see_run(request: HttpRequest, kind: str) -> bool:
    user = request.user
    return user.has_perms(IMPORT_PERMISSIONS[kind]) or user.has_perm(VIEW_RUNS_PERMISSION)


def run_progress(run: ImportRun) -> Progress:
    """The run as a progress bar: its stage and rows while it runs (the estimate is the
    stage's, from its pace so far), then its outcome, orange when bad rows were left out."""
    poll_url = reverse("admin:catalog_importrun_progress", args=[run.pk])
    if run.status == Status.QUEUED:
        return Progress("queued", "Queued", poll_url=poll_url)
    if run.status == Status.RUNNING:
        stage = Stage(run.stage or Stage.READING)
        steps = 2 if run.dry_run else 3
        return Progress(
            "running",
            f"{stage.label} ({STEPS.index(stage) + 1}/{steps})",
            done=run.rows_done,
            total=run.rows_total if stage != Stage.READING else None,
            unit=STAGE_UNITS[stage],
            started_at=run.stage_started_at or run.started_at,
            poll_url=poll_url,
        )
    return _outcome_progress(run)


def _outcome_progress(run: ImportRun) -> Progress:
    summary, bad = run.summary, run.errors_total
    rows_bad = f"{bad:,} bad row{'' if bad == 1 else 's'}"
    if run.dry_run and summary:
        done, unit = summary["rows"], "rows checked"
    elif run.status == Status.SUCCEEDED:
        done, unit = summary["rows"] - bad, "rows imported"
    else:
        done, unit = 0, "rows imported"
    if run.status == Status.FAILED:
        if run.error or not summary:
            return Progress("failed", "Failed", done=done, unit=unit, error=run.error)
        label = "Check found bad rows" if run.dry_run else "Refused: bad rows"
        return Progress(
            "failed", label, done=done, unit=unit, error=f"{rows_bad}: nothing was written."
        )
    label = "Checked" if run.dry_run else "Imported"
    if bad:
        left_out = "would be left out" if run.dry_run else "left out"
        return Progress("partial", label, done=done, unit=unit, error=f"{rows_bad} {left_out}.")
    return Progress("succeeded", label, done=done, unit=unit)


def _outcome_heading(run: ImportRun) -> str:
    summary = run.summary
    if not summary:
        return ""
    return import_heading(
        dry_run=summary["dry_run"],
        refused=run.status == Status.FAILED,
        bad_rows=run.errors_total,
        partial=run.partial,
    )


def import_heading(*, dry_run: bool, refused: bool, bad_rows: int, partial: bool) -> str:
    """What an import's outcome is headed with, on every import page."""
    if dry_run:
        return "Checked only: nothing was written"
    if refused:
        if partial:
            return "Nothing was written: every row is bad"
        return "Nothing was written: fix the bad rows, or tick “import the good rows”"
    if bad_rows:
        return "The good rows were written; the bad rows were not"
    return "Imported"


def import_outcome(
    result: ImportResult, *, partial: bool, columns: tuple[Column, ...]
) -> dict[str, Any]:
    """What an import page shows of an import done in the request
    (admin/catalog/_import_outcome.html): its heading, its counts, its bad rows by line and
    column (the first SHOWN_ERRORS of them)."""
    return {
        "heading": import_heading(
            dry_run=result.dry_run,
            refused=refused(result, partial=partial),
            bad_rows=len(result.errors),
            partial=partial,
        ),
        "summary": {
            "rows": result.rows,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "other": result.other,
        },
        "bad_count": len(result.errors),
        "errors_shown": bad_lines(result.errors[:SHOWN_ERRORS], columns),
        "errors_hidden": max(0, len(result.errors) - SHOWN_ERRORS),
    }


def _took(run: ImportRun) -> str:
    if not (run.started_at and run.finished_at):
        return ""
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def _page_progress(run: ImportRun) -> Progress:
    """The bar of a run's page, which shows the file-level error in full above it."""
    progress = run_progress(run)
    return replace(progress, error="") if run.error and not run.live else progress


def import_run_view(
    request: HttpRequest, model_admin: "admin.ModelAdmin[Any]", run_id: int, kind: str
) -> HttpResponse:
    """A run's page: its bar while it runs (refreshing itself), then its outcome: the
    counts, the bad rows by line, column and problem, or why the file was refused."""
    if not may_see_run(request, kind):
        raise PermissionDenied
    import_runs_abandon_stale(pks=[run_id])
    run = get_object_or_404(
        ImportRun.objects.defer("text").select_related("requested_by", "outlet"),
        pk=run_id,
        kind=kind,
    )
    errors = [RowError(line, reason) for line, reason in run.errors[:SHOWN_ERRORS]]
    context = {
        **_page_context(request, model_admin, f"{TITLES[kind]}: {run.file_name}"),
        "run": run,
        "progress": progress_bar(_page_progress(run)),
        "import_title": TITLES[kind],
        "import_url": reverse(f"admin:{PAGES[kind]}"),
        "runs_url": reverse("admin:catalog_importrun_changelist") + f"?kind__exact={kind}",
        "heading": _outcome_heading(run),
        "took": _took(run),
        "errors_shown": bad_lines(errors, COLUMNS[kind]),
        "errors_hidden": max(0, run.errors_total - len(errors)),
    }
    return TemplateResponse(request, RUN_TEMPLATE, context)


def import_run_progress_view(request: HttpRequest, run_id: int) -> HttpResponse:
    """The run's progress bar alone, as the page's progress.js asks for it."""
    run = ImportRun.objects.defer("text", "errors").filter(pk=run_id).first()
    if run is None or not may_see_run(request, run.kind):
        raise Http404("No such import")
    if run.live and import_runs_abandon_stale(pks=[run.pk]):
        run.refresh_from_db(fields=["status", "finished_at", "error", "stage"])
    return HttpResponse(progress_bar(run_progress(run)))


class Problem(NamedTuple):
    column: str  # "" when the problem is the row's as a whole
    text: str


class BadLine(NamedTuple):
    line: int
    problems: list[Problem]


def bad_lines(errors: list[RowError], columns: tuple[Column, ...]) -> list[BadLine]:
    """Each bad row's problems, one by one, with the column each is about, for a table of
    line, column and problem. A problem that starts with its column's name is shown without
    it ("retail_price must not be negative" → retail_price: "must not be negative")."""
    names = sorted((c.name for c in columns), key=len, reverse=True)
    column_start = "|".join(re.escape(f"{name} ") for name in names)
    other_start = "|".join(re.escape(start) for start in PROBLEM_STARTS)
    split = re.compile(f"; (?=(?:{column_start}|{other_start}))")
    by_column = re.compile(f"({'|'.join(map(re.escape, names))}) (.+)", re.DOTALL)
    return [
        BadLine(error.line, [_problem(part, by_column) for part in split.split(error.reason)])
        for error in errors
    ]


def _problem(text: str, by_column: re.Pattern[str]) -> Problem:
    match = by_column.fullmatch(text)
    if match:
        return Problem(match[1], match[2])
    column = next((col for start, col in PROBLEM_STARTS.items() if text.startswith(start)), "")
    return Problem(column, text)


def csv_example(text: str, filename: str) -> HttpResponse:
    """An import page's example file, downloaded as `filename`."""
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _page_context(
    request: HttpRequest, model_admin: "admin.ModelAdmin[Any]", title: str
) -> dict[str, Any]:
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": title,
    }


def _render(
    request: HttpRequest, model_admin: "admin.ModelAdmin[Any]", form: forms.Form, kind: str
) -> HttpResponse:
    """The upload form, with the last runs of this kind of file below it."""
    import_runs_abandon_stale()
    recent = list(
        ImportRun.objects.filter(kind=kind)
        .defer("text", "errors")
        .select_related("requested_by")[:RECENT_RUNS]
    )
    context = {
        **_page_context(request, model_admin, TITLES[kind]),
        "form": form,
        "columns": COLUMNS[kind],
        "recent": [(run, run_url(run), progress_bar(run_progress(run))) for run in recent],
        "runs_url": reverse("admin:catalog_importrun_changelist") + f"?kind__exact={kind}",
    }
    return TemplateResponse(request, TEMPLATE, context)


# --- bundles ---------------------------------------------------------------------------------


def bundle_import_view(request: HttpRequest, model_admin: "admin.ModelAdmin[Any]") -> HttpResponse:
    """Upload a bundles CSV (catalog.imports.bundles), imported at once: the outcome, with
    every bad row by line, is shown above the form."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    if request.GET.get("example"):
        return csv_example(BUNDLE_EXAMPLE, "bundles-example.csv")
    form = CatalogImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {}
    if request.method == "POST" and form.is_valid():
        context = _bundle_import(form)
    title = "Import bundles"
    context = {
        **_page_context(request, model_admin, title),
        **context,
        "form": form,
        "columns": BUNDLE_COLUMNS,
    }
    return TemplateResponse(request, BUNDLE_TEMPLATE, context)


def _bundle_import(form: CatalogImportForm) -> dict[str, Any]:
    """Import the uploaded file; its outcome as the page shows it, or the file's refusal on
    the file field."""
    data = form.cleaned_data
    try:
        text = upload_text(data["file"])
        result = bundles_csv_import(
            stream=io.StringIO(text, newline=""), partial=data["partial"], dry_run=data["dry_run"]
        )
    except ImportFileError as exc:
        form.add_error("file", str(exc))
        errors = exc.errors
        return {"errors_shown": bad_lines(errors[:SHOWN_ERRORS], BUNDLE_COLUMNS)}
    except CatalogError as exc:
        form.add_error("file", str(exc))
        return {}
    return {
        **import_outcome(result, partial=data["partial"], columns=BUNDLE_COLUMNS),
        "file_name": data["file"].name,
    }
