"""SKU aliases in the back office: the changelist, the alias form, and the "Import aliases" page.

A channel's prefixes and suffixes to strip are on the channel's own page (its "SKU mapping"
fieldset). Saving or deleting an alias re-matches the channel's listings that carry its channel
SKU (channels.sku_rules), in the background once the change commits.
"""

import io
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from catalog.admin_views import CatalogImportForm, bad_lines, csv_example, import_outcome
from catalog.imports import ImportFileError, RowError, upload_text
from catalog.models import sku_key
from channels.models import Channel, SkuAlias
from channels.sku_rules import (
    ALIAS_COLUMNS,
    ALIAS_EXAMPLE,
    sku_aliases_import,
    sku_rules_rematch_request,
)

IMPORT_TEMPLATE = "admin/channels/skualias/import.html"


class SkuAliasForm(forms.ModelForm):
    class Meta:
        model = SkuAlias
        fields = ["channel", "channel_sku", "variant"]
        help_texts = {
            "channel_sku": "As the channel has it; letter case and surrounding spaces are "
            "ignored. For a SKU the channel's prefixes and suffixes cannot turn into the POS SKU.",
            "variant": "The POS variant this channel SKU stands for: search by SKU or name.",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        channel, channel_sku = data.get("channel"), (data.get("channel_sku") or "").strip()
        if channel_sku:
            data["channel_sku"] = self.instance.channel_sku = channel_sku
            self.instance.channel_sku_key = key = sku_key(channel_sku)
            taken = (
                SkuAlias.objects.filter(channel=channel, channel_sku_key=key)
                .exclude(pk=self.instance.pk)
                .select_related("variant")
                .first()
                if channel is not None
                else None
            )
            if taken is not None:
                self.add_error(
                    "channel_sku",
                    f"“{taken.channel_sku}” already has an alias on {channel}, to the POS SKU "
                    f"“{taken.variant.sku}”: change that one instead (channel SKUs are compared "
                    "ignoring letter case and surrounding spaces).",
                )
        return data


@admin.register(SkuAlias)
class SkuAliasAdmin(admin.ModelAdmin):
    """A channel's SKUs that map to a POS variant by name, not by its prefix and suffix rules."""

    form = SkuAliasForm
    list_display = ["channel_sku", "channel", "pos_sku", "product"]
    list_filter = ["channel"]
    list_select_related = ["channel", "variant__product"]
    search_fields = ["channel_sku_key", "variant__sku_key"]
    search_help_text = "Part of the channel SKU or of the POS SKU (any case)."
    autocomplete_fields = ["variant"]
    change_list_template = "admin/channels/skualias/change_list.html"

    @admin.display(description="POS SKU", ordering="variant__sku_key")
    def pos_sku(self, obj: SkuAlias) -> str:
        return obj.variant.sku

    @admin.display(description="Product", ordering="variant__product__name")
    def product(self, obj: SkuAlias) -> str:
        return obj.variant.product.name

    def get_search_results(self, request, queryset, search_term):
        # the keys are stored trimmed and lower-cased: search them the same way
        return super().get_search_results(request, queryset, search_term.strip())

    def save_model(self, request, obj: SkuAlias, form, change) -> None:
        before = (
            SkuAlias.objects.filter(pk=obj.pk).values_list("channel_id", "channel_sku_key").first()
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        _rematch([(obj.channel_id, obj.channel_sku_key), *([before] if before else [])])

    def delete_model(self, request, obj: SkuAlias) -> None:
        _rematch([(obj.channel_id, obj.channel_sku_key)])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        _rematch(queryset.values_list("channel_id", "channel_sku_key"))
        super().delete_queryset(request, queryset)

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="channels_skualias_import"), *super().get_urls()]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        return alias_import_view(request, self)


def _rematch(changed: Iterable[tuple[int, str]]) -> None:
    """Re-match, once the change commits, each channel's listings of the channel SKUs whose
    alias changed (an alias moved to another channel or SKU: the old ones too)."""
    by_channel: dict[int, set[str]] = defaultdict(set)
    for channel_id, key in changed:
        by_channel[channel_id].add(key)
    for channel_id, keys in by_channel.items():
        sku_rules_rematch_request(channel_id=channel_id, channel_skus=keys)


# --- the import page -----------------------------------------------------------------------------


class AliasImportForm(CatalogImportForm):
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.all(), help_text="The channel whose SKUs the file maps."
    )
    field_order = ["channel", "file", "partial", "dry_run"]


def alias_import_view(request: HttpRequest, model_admin: SkuAliasAdmin) -> HttpResponse:
    """Upload a CSV of channel_sku,pos_sku for a channel: the aliases are created or changed at
    once, and the page shows what was done and every bad row by line, column and problem."""
    if not (model_admin.has_add_permission(request) and model_admin.has_change_permission(request)):
        raise PermissionDenied
    if request.GET.get("example"):
        return csv_example(ALIAS_EXAMPLE, "sku-aliases-example.csv")
    initial = {"channel": request.GET.get("channel__id__exact")}
    form = AliasImportForm(request.POST or None, request.FILES or None, initial=initial)
    outcome: dict[str, Any] = {}
    if request.method == "POST" and form.is_valid():
        outcome = _import(form)
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": "Import SKU aliases",
        "form": form,
        "columns": ALIAS_COLUMNS,
        **outcome,
    }
    return TemplateResponse(request, IMPORT_TEMPLATE, context)


def _import(form: AliasImportForm) -> dict[str, Any]:
    """The import's outcome as the page shows it; a file that cannot be read is shown on the
    file field, with its unreadable rows (and the other bad rows) by line."""
    data = form.cleaned_data
    try:
        text = upload_text(data["file"])
        result = sku_aliases_import(
            channel=data["channel"],
            stream=io.StringIO(text, newline=""),
            partial=data["partial"],
            dry_run=data["dry_run"],
        )
    except ImportFileError as exc:
        form.add_error("file", str(exc))
        errors = [RowError(line, reason) for line, reason in exc.errors]
        return {"errors_shown": bad_lines(errors, ALIAS_COLUMNS)} if errors else {}
    return {
        **import_outcome(result, partial=data["partial"], columns=ALIAS_COLUMNS),
        "imported_to": data["channel"] if result.written else None,
        "aliases_url": reverse("admin:channels_skualias_changelist")
        + f"?channel__id__exact={data['channel'].pk}",
    }
