"""The catalog in the back office: products with their variants, stock per outlet, the ledger."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Sum
from django.urls import path
from django.utils.html import format_html, format_html_join

from catalog.admin_views import catalog_import_view, stock_import_view
from catalog.exceptions import StockError
from catalog.models import (
    Brand,
    Category,
    Outlet,
    Product,
    ProductImage,
    Stock,
    StockMovement,
    Variant,
    sku_key,
)
from catalog.services import StockChange as Change
from catalog.services import product_delete, product_saved, stock_apply, variant_sku_check
from omni.actors import Actor
from omni.admin_tools import CappedCountPaginator, ReadOnlyAdminMixin


class OutletStockFilter(admin.SimpleListFilter):
    """Products (or variants) that have stock on hand at the chosen outlet."""

    title = "in stock at outlet"
    parameter_name = "outlet"
    stock_path = "variant"

    def lookups(self, request, model_admin):
        return [(str(o.pk), o.name) for o in Outlet.objects.filter(is_active=True)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        in_stock = Stock.objects.filter(
            **{self.stock_path: OuterRef("pk")}, outlet_id=self.value(), on_hand__gt=0
        )
        return queryset.filter(Exists(in_stock))


class ProductOutletStockFilter(OutletStockFilter):
    stock_path = "variant__product"


class VariantInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: dict[str, str] = {}
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            sku = form.cleaned_data.get("sku", "")
            key = sku_key(sku)
            if key in seen:
                raise ValidationError(
                    f"SKUs {seen[key]!r} and {sku!r} are the same once trimmed and ignoring case; "
                    "each variant needs its own SKU."
                )
            seen[key] = sku


class VariantInlineForm(forms.ModelForm):
    class Meta:
        model = Variant
        fields = ["sku", "upc", "options", "retail_price", "is_active", "position"]

    def clean_sku(self) -> str:
        sku = (self.cleaned_data.get("sku") or "").strip()
        variant_sku_check(sku=sku, exclude_pk=self.instance.pk)
        return sku


class VariantInline(admin.TabularInline):
    model = Variant
    form = VariantInlineForm
    formset = VariantInlineFormSet
    extra = 0
    min_num = 1
    show_change_link = True


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ["url", "position"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "brand",
        "category",
        "variant_count",
        "on_hand_total",
        "is_active",
        "updated_at",
    ]
    list_filter = ["is_active", "brand", "category", ProductOutletStockFilter]
    list_select_related = ["brand", "category"]
    search_fields = ["name", "handle", "=variants__sku", "=variants__upc"]
    search_help_text = "Name, handle, or an exact SKU or UPC."
    autocomplete_fields = ["brand", "category"]
    readonly_fields = ["stock_by_outlet", "created_at", "updated_at"]
    inlines = [VariantInline, ProductImageInline]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["name", "handle", "description", "brand", "category", "is_active"]}),
        ("Shipping", {"fields": [("weight_kg", "length_cm", "width_cm", "height_cm")]}),
        (
            "POS only (never sent to channels)",
            {
                "fields": [
                    ("supplier", "supplier_code", "supplier_price"),
                    ("reorder_point", "reorder_quantity"),
                    ("tax_rate", "tags"),
                ]
            },
        ),
        ("Stock", {"fields": ["stock_by_outlet"]}),
        ("History", {"fields": [("created_at", "updated_at")], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_variants=Count("variants", distinct=True))
            .annotate(n_on_hand=Sum("variants__stocks__on_hand"))
        )

    @admin.display(description="Variants", ordering="n_variants")
    def variant_count(self, obj: Product) -> int:
        return obj.n_variants

    @admin.display(description="On hand", ordering="n_on_hand")
    def on_hand_total(self, obj: Product) -> int:
        return obj.n_on_hand or 0

    @admin.display(description="Stock per outlet")
    def stock_by_outlet(self, obj: Product) -> str:
        if obj.pk is None:
            return "Saved products show their stock here."
        outlets = list(Outlet.objects.all())
        stocks = {
            (s.variant_id, s.outlet_id): s for s in Stock.objects.filter(variant__product=obj)
        }
        header = format_html_join("", "<th>{}</th>", ((o.code,) for o in outlets))
        rows = format_html_join(
            "",
            "<tr><td>{}</td>{}</tr>",
            ((v.sku, _stock_cells(outlets, stocks, v.pk)) for v in obj.variants.all()),
        )
        return format_html(
            '<table class="omni-stock"><thead><tr><th>SKU</th>{}</tr></thead>'
            '<tbody>{}</tbody></table><p class="help">on hand / reserved</p>',
            header,
            rows,
        )

    def save_related(self, request, form, formsets, change) -> None:
        created_before = set(form.instance.variants.values_list("pk", flat=True))
        super().save_related(request, form, formsets, change)
        changed = list(form.changed_data)
        if any(fs.has_changed() for fs in formsets):
            changed.append("variants")
        created = set(form.instance.variants.values_list("pk", flat=True)) - created_before
        product_saved(
            product=form.instance,
            changed=changed,
            created_variant_ids=sorted(created) if change else (),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        # Before the defaults, whose <path:object_id>/ route would catch "import/".
        return [path("import/", view, name="catalog_product_import"), *super().get_urls()]

    def import_view(self, request):
        return catalog_import_view(request, self)

    def delete_model(self, request, obj: Product) -> None:
        product_delete(product=obj)

    def delete_queryset(self, request, queryset) -> None:
        for product in queryset:
            product_delete(product=product)


def _stock_cells(outlets, stocks, variant_id: int) -> str:
    def cell(outlet):
        stock = stocks.get((variant_id, outlet.pk))
        return (stock.on_hand, stock.reserved) if stock else (0, 0)

    return format_html_join("", "<td>{} / {}</td>", (cell(o) for o in outlets))


class StockInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Stock is read-only here: it changes only through adjustments, which write the ledger."""

    model = Stock
    extra = 0
    can_delete = False
    fields = ["outlet", "on_hand", "reserved", "available", "updated_at"]
    readonly_fields = fields
    denied_permissions = frozenset({"add"})

    @admin.display(description="Available")
    def available(self, obj: Stock) -> int:
        return obj.available


class VariantForm(VariantInlineForm):
    class Meta(VariantInlineForm.Meta):
        fields = ["product", *VariantInlineForm.Meta.fields]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    form = VariantForm
    list_display = ["sku", "product", "options_label", "upc", "retail_price", "is_active"]
    list_filter = ["is_active", "product__brand", "product__category", OutletStockFilter]
    list_select_related = ["product"]
    search_fields = ["=sku_key", "=upc", "product__name"]
    search_help_text = "Exact SKU (any case) or UPC, or product name."
    raw_id_fields = ["product"]
    readonly_fields = ["sku_key"]
    inlines = [StockInline]
    list_per_page = 100

    def get_search_results(self, request, queryset, search_term):
        # SKUs are compared normalised, so " ABC-1 " finds "abc-1".
        return super().get_search_results(request, queryset, search_term.strip())

    @admin.display(description="Options")
    def options_label(self, obj: Variant) -> str:
        return obj.option_label

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        product_saved(
            product=obj.product,
            changed=["variants"],
            created_variant_ids=[] if change else [obj.pk],
        )


class StockAdjustForm(forms.ModelForm):
    """Adjust one stock row through the stock service, so the ledger records it."""

    change_by = forms.IntegerField(
        required=False, help_text="Add (positive) or remove (negative) units."
    )
    count_as = forms.IntegerField(
        required=False, min_value=0, help_text="Or: set on hand to this counted quantity."
    )
    reason = forms.ChoiceField(
        choices=[
            (StockMovement.Trigger.MANUAL, "Manual adjustment"),
            (StockMovement.Trigger.RECEIPT, "Receive receipt"),
        ]
    )
    note = forms.CharField(required=False, max_length=120, help_text="Kept as the reference.")

    class Meta:
        model = Stock
        fields: list[str] = []

    def clean(self):
        data = super().clean()
        if (data.get("change_by") is None) == (data.get("count_as") is None):
            raise ValidationError("Fill in either “change by” or “count as”, not both.")
        return data


@admin.register(Stock)
class StockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    form = StockAdjustForm
    list_display = ["variant", "product_name", "outlet", "on_hand", "reserved", "available_qty"]
    list_filter = ["outlet"]
    list_select_related = ["variant__product", "outlet"]
    search_fields = ["=variant__sku_key", "=variant__upc", "variant__product__name"]
    readonly_fields = ["variant", "outlet", "on_hand", "reserved", "updated_at"]
    fields = ["variant", "outlet", "on_hand", "reserved", "change_by", "count_as", "reason", "note"]
    list_per_page = 100
    # Stock rows are changed (through adjustments, which write the ledger), never added here.
    denied_permissions = frozenset({"add", "delete"})

    def get_queryset(self, request):
        return super().get_queryset(request).with_available()

    @admin.display(description="Product", ordering="variant__product__name")
    def product_name(self, obj: Stock) -> str:
        return obj.variant.product.name

    @admin.display(description="Available", ordering="available_qty")
    def available_qty(self, obj: Stock) -> int:
        return obj.available_qty

    def save_model(self, request, obj: Stock, form, change) -> None:
        data = form.cleaned_data
        change_spec = (
            Change(obj.variant_id, obj.outlet_id, set_on_hand=data["count_as"])
            if data.get("count_as") is not None
            else Change(obj.variant_id, obj.outlet_id, on_hand_delta=data["change_by"])
        )
        try:
            stock_apply(
                changes=[change_spec],
                trigger=data["reason"],
                reference=data.get("note", ""),
                actor=Actor.of_user(request.user),
            )
        except StockError as exc:
            self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)

    def save_related(self, request, form, formsets, change) -> None:
        """Nothing related to save: the adjustment went through the stock service."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="catalog_stock_import"), *super().get_urls()]

    def import_view(self, request):
        return stock_import_view(request, self)


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger: append-only, so read-only, and paginated without a full count."""

    list_display = [
        "created_at",
        "trigger",
        "variant",
        "outlet",
        "on_hand_delta",
        "reserved_delta",
        "on_hand_after",
        "reserved_after",
        "reference",
        "actor",
    ]
    list_filter = ["trigger", "created_at", "outlet"]
    list_select_related = ["variant", "outlet"]
    search_fields = ["=variant__sku_key", "reference"]
    search_help_text = "Exact SKU (any case) or reference."
    date_hierarchy = "created_at"
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100


@admin.register(Outlet)
class OutletAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "product_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_products=Count("products"))

    @admin.display(description="Products", ordering="n_products")
    def product_count(self, obj: Brand) -> int:
        return obj.n_products


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "parent"]
    list_select_related = ["parent"]
    search_fields = ["name"]
