"""Admin pages to upload a catalog CSV or a stock CSV. Thin: parse the form, call the import
service, render its result. Wired into ProductAdmin and StockAdmin through get_urls."""

import re
from typing import Any, NamedTuple

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from catalog.exceptions import CatalogError
from catalog.imports import (
    CATALOG_COLUMNS,
    STOCK_COLUMNS,
    Column,
    ImportFileError,
    ImportResult,
    RowError,
    catalog_csv_import,
    stock_csv_import,
    text_stream,
)
from catalog.models import Outlet
from omni.actors import Actor

TEMPLATE = "admin/catalog/import_form.html"
# Bad rows shown on the page; the rest are counted. A file with more needs fixing at the source.
SHOWN_ERRORS = 500

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
        return _example(CATALOG_EXAMPLE, "catalog-example.csv")
    form = CatalogImportForm(request.POST or None, request.FILES or None)
    result, bad_rows = None, []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        result, bad_rows = _run(
            form,
            lambda stream: catalog_csv_import(
                stream=stream, partial=data["partial"], dry_run=data["dry_run"]
            ),
        )
    return _render(request, model_admin, form, result, bad_rows, "Import products", CATALOG_COLUMNS)


def stock_import_view(request: HttpRequest, model_admin: "admin.ModelAdmin[Any]") -> HttpResponse:
    """Upload a stock CSV: set on-hand counts, one ledger row per changed count (trigger
    import, the file name as reference, the user as actor)."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    if request.GET.get("example"):
        return _example(STOCK_EXAMPLE, "stock-example.csv")
    form = StockImportForm(request.POST or None, request.FILES or None)
    result, bad_rows = None, []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        result, bad_rows = _run(
            form,
            lambda stream: stock_csv_import(
                stream=stream,
                outlet_code=data["outlet"].code if data["outlet"] else None,
                reference=data["file"].name,
                actor=Actor.of_user(request.user),
                partial=data["partial"],
                dry_run=data["dry_run"],
            ),
        )
    return _render(
        request, model_admin, form, result, bad_rows, "Import stock levels", STOCK_COLUMNS
    )


def _run(form: forms.Form, run: Any) -> tuple[ImportResult | None, list[RowError]]:
    """The import's result and its bad rows; or no result, with the file-level refusal shown
    on the file field, and the bad rows it lists when the file could be checked row by row."""
    try:
        result: ImportResult = run(text_stream(form.cleaned_data["file"].file))
    except CatalogError as exc:
        form.add_error("file", str(exc))
        return None, exc.errors if isinstance(exc, ImportFileError) else []
    return result, result.errors


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


def _example(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _render(
    request: HttpRequest,
    model_admin: "admin.ModelAdmin[Any]",
    form: forms.Form,
    result: ImportResult | None,
    bad_rows: list[RowError],
    title: str,
    columns: tuple[Column, ...],
) -> HttpResponse:
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": title,
        "form": form,
        "result": result,
        "errors_shown": bad_lines(bad_rows[:SHOWN_ERRORS], columns),
        "errors_hidden": max(0, len(bad_rows) - SHOWN_ERRORS),
        "columns": columns,
    }
    return TemplateResponse(request, TEMPLATE, context)
