"""Stock rules in the back office: products' and variants' own rules per channel (on their
own list, on the product and variant pages), their CSV import, and the per-SKU preview of what
every channel is sent and which rule decided it."""

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from catalog.admin import ProductAdmin, VariantAdmin
from catalog.admin_views import CatalogImportForm, csv_example, import_outcome
from catalog.imports.reading import ImportFileError, ImportResult, text_stream
from catalog.models import Variant, sku_key
from channels.models import Channel, StockRule
from channels.stock import allocation_preview
from channels.stock_rules import COLUMNS, stock_rule_delete, stock_rules_import, stock_rules_touched

EXAMPLE = "sku,handle,share_percent,maximum,cutoff,buffer\nTEE-RED-M,,50,10,,\n,summer-tee,,,3,1\n"


def _show(value) -> str:
    return "—" if value is None else str(value)


@admin.register(StockRule)
class StockRuleAdmin(admin.ModelAdmin):
    list_display = ["channel", "target", "share", "maximum_shown", "cutoff_shown", "buffer_shown"]
    list_filter = ["channel"]
    list_select_related = ["channel", "product", "variant__product"]
    search_fields = ["variant__sku_key", "product__name", "product__handle"]
    autocomplete_fields = ["product", "variant"]
    fields = ["channel", "product", "variant", "share_percent", "maximum", "cutoff", "buffer"]
    list_per_page = 50
    change_list_template = "admin/channels/stockrule/change_list.html"

    @admin.display(description="For", ordering="variant__sku_key")
    def target(self, obj: StockRule) -> str:
        if obj.variant_id:
            url = (
                reverse("admin:channels_stockrule_preview")
                + "?"
                + urlencode({"sku": obj.variant.sku})
            )
            return format_html(
                '{} <span class="quiet">({})</span> · <a href="{}">preview</a>',
                obj.variant.sku,
                obj.variant.product.name,
                url,
            )
        return format_html("product {}", obj.product.name)

    @admin.display(description="Share (%)", ordering="share_percent")
    def share(self, obj: StockRule) -> str:
        return _show(obj.share_percent)

    @admin.display(description="List at most", ordering="maximum")
    def maximum_shown(self, obj: StockRule) -> str:
        return _show(obj.maximum)

    @admin.display(description="Cut-off", ordering="cutoff")
    def cutoff_shown(self, obj: StockRule) -> str:
        return _show(obj.cutoff)

    @admin.display(description="Buffer", ordering="buffer")
    def buffer_shown(self, obj: StockRule) -> str:
        return _show(obj.buffer)

    def save_model(self, request, obj: StockRule, form, change) -> None:
        before = StockRule.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        stock_rules_touched(channel_id=obj.channel_id, rules=[r for r in (before, obj) if r])

    def delete_model(self, request, obj: StockRule) -> None:
        stock_rule_delete(rule=obj)

    def delete_queryset(self, request, queryset) -> None:
        for rule in queryset:
            stock_rule_delete(rule=rule)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("preview/", view(self.preview_view), name="channels_stockrule_preview"),
            path("import/", view(self.import_view), name="channels_stockrule_import"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """For a SKU: every channel's available stock, the rules applied in order, the
        quantity sent and the rule that decided it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        sku = request.GET.get("sku", "").strip()
        variant = None
        if sku:
            variant = Variant.objects.select_related("product").filter(sku_key=sku_key(sku)).first()
            if variant is None:
                messages.error(request, f"No variant has the SKU “{sku}”.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"What each channel is sent of {variant.sku}" if variant else "Stock preview",
            "sku": sku,
            "variant": variant,
            "lines": allocation_preview(variant) if variant else [],
            # a bundle's stock is what its components make: the page names them
            "components": (
                list(variant.components.select_related("component").order_by("pk"))
                if variant
                else []
            ),
        }
        return TemplateResponse(request, "admin/channels/stockrule/preview.html", context)

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.GET.get("example"):
            return csv_example(EXAMPLE, "stock-rules.csv")
        form = StockRuleImportForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = stock_rules_import(
                    channel=form.cleaned_data["channel"],
                    stream=text_stream(io.BytesIO(form.cleaned_data["file"].read())),
                    partial=form.cleaned_data["partial"],
                    dry_run=form.cleaned_data["dry_run"],
                )
            except ImportFileError as exc:
                form.add_error("file", str(exc))
                result = None
            else:
                if result.dry_run:
                    messages.info(request, "The file was only checked: nothing was written.")
                elif result.written:
                    messages.success(
                        request,
                        f"{result.created} rule(s) created, {result.updated} updated, "
                        f"{result.unchanged} unchanged; the channel's quantities follow.",
                    )
                else:
                    messages.error(request, "Nothing was written: fix the bad rows below.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import stock rules",
            "form": form,
            "columns": COLUMNS,
            "app_label": self.model._meta.app_label,
            **(_outcome(result, form.cleaned_data) if result is not None else {}),
        }
        return TemplateResponse(request, "admin/channels/rules_import.html", context)


def _outcome(result: ImportResult, data: dict) -> dict:
    """What the import page shows of an import, as the other imports' pages show theirs."""
    channel = data["channel"]
    return {
        **import_outcome(result, partial=data["partial"], columns=COLUMNS),
        "imported_to": channel if result.written else None,
        "rules_url": reverse("admin:channels_stockrule_changelist")
        + f"?channel__id__exact={channel.pk}",
    }


class StockRuleImportForm(CatalogImportForm):
    channel = forms.ModelChoiceField(
        Channel.objects.all(), help_text="The channel whose rules the file sets."
    )
    field_order = ["channel", "file", "partial", "dry_run"]


class _RuleInline(admin.TabularInline):
    model = StockRule
    extra = 0

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # A channel is picked here, not added or changed.
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "channel" and field is not None:
            widget = field.widget
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
            widget.can_view_related = False
        return field

    fields = ["channel", "share_percent", "maximum", "cutoff", "buffer"]
    verbose_name = "stock rule on a channel"
    verbose_name_plural = (
        "Stock rules on channels (blank fields follow the channel's rule; list at most 0 keeps "
        "it off a channel)"
    )


class ProductStockRuleInline(_RuleInline):
    fk_name = "product"


class VariantStockRuleInline(_RuleInline):
    fk_name = "variant"
    verbose_name_plural = (
        "Stock rules on channels (blank fields follow the product's rule, then the channel's; "
        "list at most 0 keeps it off a channel)"
    )


def _touch_inline_rules(admin_class) -> None:
    """Queue the push of what the page's rule inline changed, once the page is saved."""
    original = admin_class.save_formset

    def save_formset(self, request, form, formset, change):
        if formset.model is not StockRule:
            return original(self, request, form, formset, change)
        for gone in formset.deleted_forms:
            if gone.instance.pk:
                stock_rules_touched(channel_id=gone.instance.channel_id, rules=[gone.instance])
        result = original(self, request, form, formset, change)
        for rule in formset.new_objects + [obj for obj, _ in formset.changed_objects]:
            stock_rules_touched(channel_id=rule.channel_id, rules=[rule])
        return result

    admin_class.save_formset = save_formset


@admin.display(description="On the channels")
def channel_quantities_link(variant: Variant) -> str:
    if not variant.pk:
        return "—"
    url = reverse("admin:channels_stockrule_preview") + "?" + urlencode({"sku": variant.sku})
    return format_html('<a href="{}">What each channel is sent, and which rule decided it</a>', url)


# The catalog's pages know nothing of channels (catalog ← channels): the rules join them here.
ProductAdmin.inlines = [*ProductAdmin.inlines, ProductStockRuleInline]
VariantAdmin.inlines = [*VariantAdmin.inlines, VariantStockRuleInline]
VariantAdmin.readonly_fields = [*VariantAdmin.readonly_fields, channel_quantities_link]
_touch_inline_rules(ProductAdmin)
_touch_inline_rules(VariantAdmin)
