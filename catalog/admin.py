"""The catalog in the back office: products with their variants, stock per outlet, the ledger."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import smart_split, unescape_string_literal

from catalog.admin_views import (
    bundle_import_view,
    catalog_import_view,
    import_run_progress_view,
    import_run_view,
    run_progress,
    run_url,
    stock_import_view,
)
from catalog.bundles import (
    BundleError,
    bundle_ids_among,
    bundle_set_components,
    components_in_use,
    in_use_message,
    leaf_components,
)
from catalog.exceptions import StockError
from catalog.forms import (
    BundleComponentForm,
    BundleComponentFormSet,
    VariantForm,
    VariantInlineForm,
    VariantInlineFormSet,
)
from catalog.imports import import_runs_abandon_stale
from catalog.models import (
    Brand,
    BundleComponent,
    Category,
    ImportRun,
    Outlet,
    Product,
    ProductImage,
    Stock,
    StockMovement,
    Variant,
)
from catalog.selectors import available_stock_by_outlet
from catalog.services import StockChange as Change
from catalog.services import (
    bundle_stock_problem,
    product_delete,
    product_saved,
    stock_apply,
    variant_delete,
    variants_delete,
)
from omni.actors import Actor
from omni.admin_tools import (
    CappedCountPaginator,
    DateRangeFilter,
    ReadOnlyAdminMixin,
    progress_bar,
    state_badge,
    with_note,
)

# A changelist cell kept on one line (SKUs break at their hyphens otherwise).
NOWRAP = '<span style="white-space:nowrap">{}</span>'


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


# --- search ----------------------------------------------------------------------------------
# The changelists match each word of a search against any part of a SKU, UPC, product name
# (and handle, and ledger reference), ignoring case: `icontains`, which trigram indexes serve on
# PostgreSQL (migration 0004). Each admin builds its condition from ids looked up in the table
# that holds the text, rather than through a join: an OR of substring matches across joined
# tables makes PostgreSQL read every row of the listed table, while an OR of a column's trigram
# index and a list of ids are index scans it can combine. It also lists each product once when
# several of its variants match, without a DISTINCT over every column.

# Ids passed to a query as a list; past this, as a subquery (slower: PostgreSQL then checks it
# against each row it reads).
SEARCH_IDS_CAP = 1000


def _search_words(search_term: str) -> list[str]:
    """The words of a search, split as the admin splits them: quotes keep words together."""
    words = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            words.append(bit)
    return words


def _search(queryset, search_term: str, condition) -> tuple:
    """`queryset` narrowed to the rows meeting `condition(word)` for every word."""
    for word in _search_words(search_term):
        queryset = queryset.filter(condition(word))
    return queryset, False


def _ids(values: QuerySet) -> list[int] | QuerySet:
    """A one-column queryset's values as a list, or itself when there are too many."""
    values = values.order_by()
    found = list(values[: SEARCH_IDS_CAP + 1])
    return values if len(found) > SEARCH_IDS_CAP else found


def _variant_matches(word: str) -> Q:
    """Variants whose SKU, UPC or product name holds `word`."""
    named = _ids(Product.objects.filter(name__icontains=word).values_list("pk", flat=True))
    return Q(sku_key__icontains=word) | Q(upc__icontains=word) | Q(product_id__in=named)


def _variant_ids(word: str) -> list[int] | QuerySet:
    return _ids(Variant.objects.filter(_variant_matches(word)).values_list("pk", flat=True))


def _product_matches(word: str) -> Q:
    """Products whose name or handle, or one of whose variants' SKU or UPC, holds `word`."""
    by_variant = Variant.objects.filter(Q(sku_key__icontains=word) | Q(upc__icontains=word))
    ids = _ids(by_variant.values_list("product_id", flat=True).distinct())
    return Q(name__icontains=word) | Q(handle__icontains=word) | Q(pk__in=ids)


class VariantInline(admin.TabularInline):
    model = Variant
    form = VariantInlineForm
    formset = VariantInlineFormSet
    extra = 0
    min_num = 1
    show_change_link = True
    readonly_fields = ["bundle_of"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class Form(formset.form):
            def hand_clean_DELETE(self):
                """A variant ticked for deletion that a bundle uses: which bundles, in words
                (the admin's own check would list bundle component rows by id)."""
                if self.cleaned_data.get("DELETE") and self.instance.pk:
                    uses = components_in_use([self.instance.pk])
                    if uses:
                        raise ValidationError(in_use_message(uses), code="deleting_protected")
                super().hand_clean_DELETE()

        formset.form = Form
        return formset

    def get_queryset(self, request):
        # each row's components, for the bundle column: two queries for the whole table
        components = BundleComponent.objects.select_related("component").order_by("pk")
        return super().get_queryset(request).prefetch_related(Prefetch("components", components))

    @admin.display(description="Bundle of")
    def bundle_of(self, obj: Variant) -> str:
        """What a bundle is made of ("2 × TEE-M, 1 × MUG"); edited on the variant's page."""
        if obj.pk is None:
            return ""
        return _composition(obj.components.all()) or "—"


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ["url", "position"]
    # An address typed without a scheme is taken as https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


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
    # What the search matches (see get_search_results and "search" above).
    search_fields = ["name", "handle", "variants__sku_key", "variants__upc"]
    search_help_text = "Name, handle, SKU or UPC: the whole or any part of it."
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
        # Subqueries rather than joins: a search or filter joining variants cannot multiply
        # them, and the page's total count needs neither.
        variants = Variant.objects.filter(product=OuterRef("pk")).order_by().values("product")
        stocks = (
            Stock.objects.filter(variant__product=OuterRef("pk"))
            .order_by()
            .values("variant__product")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_variants=Coalesce(Subquery(variants.annotate(n=Count("pk")).values("n")), 0),
                n_on_hand=Coalesce(Subquery(stocks.annotate(n=Sum("on_hand")).values("n")), 0),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        return _search(queryset, search_term, _product_matches)

    @admin.display(description="Variants", ordering="n_variants")
    def variant_count(self, obj: Product) -> int:
        return obj.n_variants

    @admin.display(description="On hand", ordering="n_on_hand")
    def on_hand_total(self, obj: Product) -> int:
        return obj.n_on_hand

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
        run = self.admin_site.admin_view(self.import_run_view)
        # Before the defaults, whose <path:object_id>/ route would catch "import/".
        return [
            path("import/", view, name="catalog_product_import"),
            path("import/<int:run_id>/", run, name="catalog_product_import_run"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        return catalog_import_view(request, self)

    def import_run_view(self, request, run_id: int):
        return import_run_view(request, self, run_id, ImportRun.Kind.CATALOG)

    def get_deleted_objects(self, objs, request):
        """What deleting these products deletes, with their variants that bundles of other
        products use listed as blocking it, naming the bundles."""
        variant_ids = list(
            Variant.objects.filter(product__in=list(objs)).values_list("pk", flat=True)
        )
        return _with_bundle_uses(super().get_deleted_objects(objs, request), variant_ids)

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


def _composition(components) -> str:
    """ "2 × TEE-BLK-M, 1 × MUG-RED" for a bundle's BundleComponent rows (components read)."""
    return ", ".join(f"{c.quantity} × {c.component.sku}" for c in components)


def _with_bundle_uses(deleted_objects: tuple, variant_ids: list[int]) -> tuple:
    """Django's (deleted objects, counts, permissions needed, protected) for a delete page,
    its protected bundle component rows said in words: which bundle uses which component."""
    deleted, counts, perms_needed, protected = deleted_objects
    uses = components_in_use(variant_ids)
    if uses:
        name = BundleComponent._meta.verbose_name.capitalize()
        protected = [p for p in protected if not str(p).startswith(f"{name}:")]
        protected += [in_use_message({sku: bundles}) for sku, bundles in uses.items()]
        # Said first, before any missing permission (the page shows only one reason), since
        # it is the one staff can act on here; the delete stays refused either way.
        perms_needed = set()
    return deleted, counts, perms_needed, protected


# The bundle badge of the variants list.
BUNDLE_COLOUR = "#6a1b9a"


class BundleFilter(admin.SimpleListFilter):
    """Variants that are bundles (have components), or that are not."""

    title = "bundle"
    parameter_name = "bundle"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        has_components = Exists(BundleComponent.objects.filter(bundle=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(has_components)
        if self.value() == "no":
            return queryset.filter(~has_components)
        return queryset


class BundleComponentInline(admin.TabularInline):
    """A bundle's components, replaced as a whole through catalog.bundles (see
    VariantAdmin.save_formset); the rules are checked by BundleComponentFormSet."""

    model = BundleComponent
    fk_name = "bundle"
    form = BundleComponentForm
    formset = BundleComponentFormSet
    autocomplete_fields = ["component"]
    extra = 0
    verbose_name = "component"
    verbose_name_plural = (
        "Bundle components (a variant with components is a bundle: it holds no stock of its "
        "own, its quantity is what its components make, and selling it moves theirs)"
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("component__product")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # A component is picked, not added, changed or deleted from here.
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "component" and field is not None:
            widget = field.widget
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
        return field


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    form = VariantForm
    # A method, not the "product" key, whose cell the admin would keep on one line.
    list_display = [
        "sku_label",
        "product_name",
        "options_label",
        "upc",
        "retail_price",
        "is_active",
        "bundle_badge",
    ]
    list_filter = [
        "is_active",
        BundleFilter,
        "product__brand",
        "product__category",
        OutletStockFilter,
    ]
    list_select_related = ["product"]
    search_fields = ["sku_key", "upc", "product__name"]  # see get_search_results
    search_help_text = "SKU, UPC or product name: the whole or any part of it."
    raw_id_fields = ["product"]
    readonly_fields = ["sku_key", "bundle_available"]
    inlines = [BundleComponentInline, StockInline]

    def get_inlines(self, request, obj):
        """A bundle holds no stock of its own: its page shows what its components make, not
        an empty table of stock rows."""
        inlines = super().get_inlines(request, obj)
        if obj is not None and obj.components.exists():
            return [inline for inline in inlines if inline is not StockInline]
        return inlines

    list_per_page = 100

    def get_queryset(self, request):
        has_components = Exists(BundleComponent.objects.filter(bundle=OuterRef("pk")))
        return super().get_queryset(request).annotate(is_bundle=has_components)

    @admin.display(description="Bundle", ordering="is_bundle")
    def bundle_badge(self, obj: Variant) -> str:
        return state_badge("Bundle", BUNDLE_COLOUR) if obj.is_bundle else ""

    @admin.display(description="Available as a bundle")
    def bundle_available(self, obj: Variant) -> str:
        """Per outlet, the bundles its components make there, and what each component has."""
        leaves = leaf_components([obj.pk]).get(obj.pk) if obj.pk else None
        if not leaves:
            return "Not a bundle: give it components below to make it one."
        outlets = list(Outlet.objects.order_by("code"))
        parts = sorted(leaves)
        skus = dict(Variant.objects.filter(pk__in=parts).values_list("pk", "sku"))
        available = available_stock_by_outlet(
            variant_ids=[obj.pk, *parts], outlet_ids=[o.pk for o in outlets]
        )
        header = format_html_join(
            "",
            '<th>{} <span style="color:var(--body-quiet-color)">× {}</span></th>',
            ((skus.get(p, p), leaves[p]) for p in parts),
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><strong>{}</strong></td>{}</tr>",
            (
                (
                    outlet.code,
                    available[obj.pk][outlet.pk],
                    format_html_join(
                        "", "<td>{}</td>", ((available[p][outlet.pk],) for p in parts)
                    ),
                )
                for outlet in outlets
            ),
        )
        return format_html(
            '<table class="omni-stock"><thead><tr><th>Outlet</th><th>Bundles</th>{}</tr></thead>'
            '<tbody>{}</tbody></table><p class="help">Bundles: the fewest whole bundles its '
            "components make at that outlet (what channels selling from it are sent, before "
            "their own rules). Each component: available (on hand − reserved) × units one "
            "bundle takes.</p>",
            header,
            rows,
        )

    def autocomplete_label(self, variant: Variant) -> str:
        """How a variant reads where it is picked, e.g. linking a listing by hand:
        "TEE-BLK-M · Linen Tee · Black / M"."""
        return " · ".join(filter(None, [variant.sku, variant.product.name, variant.option_label]))

    def get_search_results(self, request, queryset, search_term):
        return _search(queryset, search_term, _variant_matches)

    @admin.display(description="SKU", ordering="sku")
    def sku_label(self, obj: Variant) -> str:
        return format_html(NOWRAP, obj.sku)

    @admin.display(description="Product", ordering="product__name")
    def product_name(self, obj: Variant) -> str:
        return obj.product.name

    @admin.display(description="Options")
    def options_label(self, obj: Variant) -> str:
        # "Maroon / XL" on one line; a long label may wrap rather than widen the table.
        label = obj.option_label
        return format_html(NOWRAP, label) if len(label) <= 24 else label

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        product_saved(
            product=obj.product,
            changed=["variants"],
            created_variant_ids=[] if change else [obj.pk],
        )

    def save_formset(self, request, form, formset, change) -> None:
        """A bundle's components go through catalog.bundles, replaced as a whole."""
        if formset.model is not BundleComponent:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)  # the change message reads what it would save
        if not formset.has_changed():
            return
        try:
            bundle_set_components(bundle=form.instance, components=formset.components())
        except BundleError as exc:  # a concurrent change since the form was checked
            self.message_user(request, f"The components were not changed: {exc}", messages.ERROR)

    def get_deleted_objects(self, objs, request):
        """What deleting these variants deletes, with the bundles that use them as blocking
        it, named."""
        return _with_bundle_uses(super().get_deleted_objects(objs, request), [v.pk for v in objs])

    def delete_model(self, request, obj: Variant) -> None:
        variant_delete(variant=obj)

    def delete_queryset(self, request, queryset) -> None:
        variants_delete(variant_ids=list(queryset.values_list("pk", flat=True)))

    def get_urls(self):
        view = self.admin_site.admin_view(self.bundle_import_view)
        return [
            path("bundles/import/", view, name="catalog_variant_bundle_import"),
            *super().get_urls(),
        ]

    def bundle_import_view(self, request):
        return bundle_import_view(request, self)


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
        variant = self.instance.variant
        if bundle_ids_among([variant.pk]):
            raise ValidationError(
                bundle_stock_problem(variant.sku) + ": adjust the stock of its components."
            )
        return data


@admin.register(Stock)
class StockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    form = StockAdjustForm
    list_display = ["variant", "product_name", "outlet", "on_hand", "reserved", "available_qty"]
    list_filter = ["outlet"]
    list_select_related = ["variant__product", "outlet"]
    search_fields = ["variant__sku_key", "variant__upc", "variant__product__name"]  # see below
    search_help_text = "SKU, UPC or product name: the whole or any part of it."
    readonly_fields = ["variant", "outlet", "on_hand", "reserved", "updated_at"]
    fields = ["variant", "outlet", "on_hand", "reserved", "change_by", "count_as", "reason", "note"]
    list_per_page = 100
    # Stock rows are changed (through adjustments, which write the ledger), never added here.
    denied_permissions = frozenset({"add", "delete"})

    def get_queryset(self, request):
        return super().get_queryset(request).with_available()

    def get_search_results(self, request, queryset, search_term):
        return _search(queryset, search_term, lambda word: Q(variant_id__in=_variant_ids(word)))

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
        run = self.admin_site.admin_view(self.import_run_view)
        return [
            path("import/", view, name="catalog_stock_import"),
            path("import/<int:run_id>/", run, name="catalog_stock_import_run"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        return stock_import_view(request, self)

    def import_run_view(self, request, run_id: int):
        return import_run_view(request, self, run_id, ImportRun.Kind.STOCK)


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """CSV imports uploaded in the admin: each with its bar while it runs, then its outcome.
    A run's own page is under its upload page (admin_views.import_run_view)."""

    list_display = ["file", "progress", "created", "updated", "bad_rows", "requested"]
    list_display_links = None
    list_filter = ["kind", "status", ("created_at", DateRangeFilter)]
    list_select_related = ["requested_by"]
    search_fields = ["file_name"]
    show_full_result_count = False
    # Runs are recorded by the imports; old ones may be deleted.
    denied_permissions = frozenset({"add", "change"})

    def get_queryset(self, request):
        # The file's text and the bad rows can be megabytes a run: never listed.
        return super().get_queryset(request).defer("text", "errors")

    def get_urls(self):
        progress = self.admin_site.admin_view(import_run_progress_view)
        return [
            path("<int:run_id>/progress/", progress, name="catalog_importrun_progress"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        import_runs_abandon_stale()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A run is shown on its own page, under its upload page."""
        run = None
        if str(object_id).isdigit():
            run = ImportRun.objects.filter(pk=object_id).only("kind").first()
        if run is None:
            return super().change_view(request, object_id, form_url, extra_context)
        return HttpResponseRedirect(run_url(run))

    @admin.display(description="File", ordering="file_name")
    def file(self, obj: ImportRun) -> str:
        """The file name (a link to the run's page), what it holds and when it came."""
        moment = timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")
        return format_html(
            '<a href="{}">{}</a><br><span style="color:var(--body-quiet-color);'
            'white-space:nowrap">{} · {}</span>',
            run_url(obj),
            _short(obj.file_name, 40),
            obj.get_kind_display(),
            moment,
        )

    @admin.display(description="Progress / outcome", ordering="status")
    def progress(self, obj: ImportRun) -> str:
        return progress_bar(run_progress(obj))

    @admin.display(description="Created")
    def created(self, obj: ImportRun) -> str:
        return _count(obj.summary.get("created"))

    @admin.display(description="Updated")
    def updated(self, obj: ImportRun) -> str:
        return _count(obj.summary.get("updated"))

    @admin.display(description="Bad rows", ordering="errors_total")
    def bad_rows(self, obj: ImportRun) -> str:
        return _count(obj.errors_total if obj.summary or obj.errors_total else None)

    @admin.display(description="By", ordering="requested_by__username")
    def requested(self, obj: ImportRun) -> str:
        return obj.requested_by.get_username() if obj.requested_by else ""


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger: append-only, so read-only, and paginated without a full count."""

    # Narrow columns, so the whole row fits beside the navigation and the filters (1440 px).
    list_display = [
        "when",
        "trigger_short",
        "variant",
        "outlet_code",
        "on_hand_change",
        "reserved_change",
        "reference_and_actor",
    ]
    # A from/to pair of days rather than the admin's date drill-down, which lists the years,
    # months and days that have movements: a scan of the whole ledger on every page.
    list_filter = ["trigger", ("created_at", DateRangeFilter), "outlet"]
    list_select_related = ["variant", "outlet"]
    search_fields = ["variant__sku_key", "variant__upc", "variant__product__name", "reference"]
    search_help_text = (
        "SKU, UPC or product name, or a reference (order number, file name): the whole or any "
        "part of it."
    )
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def get_search_results(self, request, queryset, search_term):
        """Movements where each word is part of the variant's SKU, UPC or product name, or of
        the movement's reference."""
        return _search(
            queryset,
            search_term,
            lambda word: Q(variant_id__in=_variant_ids(word)) | Q(reference__icontains=word),
        )

    @admin.display(description="When", ordering="created_at")
    def when(self, obj: StockMovement) -> str:
        """The day, and the time under it: the row fits 1440 px with the longest cells."""
        moment = timezone.localtime(obj.created_at)
        return with_note(format_html(NOWRAP, moment.strftime("%Y-%m-%d")), moment.strftime("%H:%M"))

    @admin.display(description="Trigger", ordering="trigger")
    def trigger_short(self, obj: StockMovement) -> str:
        label = obj.get_trigger_display()
        short = SHORT_TRIGGERS.get(obj.trigger, label)
        return format_html('<span title="{}">{}</span>', label, short)

    @admin.display(description="Outlet", ordering="outlet__code")
    def outlet_code(self, obj: StockMovement) -> str:
        return format_html(
            '<span title="{}" style="white-space:nowrap">{}</span>',
            obj.outlet.name,
            obj.outlet.code,
        )

    @admin.display(description="On hand")
    def on_hand_change(self, obj: StockMovement) -> str:
        return _change(obj.on_hand_delta, obj.on_hand_after)

    @admin.display(description="Reserved")
    def reserved_change(self, obj: StockMovement) -> str:
        return _change(obj.reserved_delta, obj.reserved_after)

    @admin.display(description="Reference · by", ordering="reference")
    def reference_and_actor(self, obj: StockMovement) -> str:
        """The reference, and under it who or what moved the stock: one column, not two."""
        if not obj.actor:
            return _short(obj.reference, 28)
        return with_note(_short(obj.reference, 28), _short(obj.actor, 28))


# The ledger's trigger column in a word or two; the full name is in the cell's tooltip and the
# filter.
SHORT_TRIGGERS = {
    StockMovement.Trigger.IMPORT: "Import",
    StockMovement.Trigger.MANUAL: "Manual",
    StockMovement.Trigger.RECEIPT: "Receipt",
    StockMovement.Trigger.ORDER_ALLOCATION: "Order allocated",
    StockMovement.Trigger.ORDER_RELEASE: "Order returned",
    StockMovement.Trigger.ORDER_FULFILMENT: "Order invoiced",
    StockMovement.Trigger.SHIPMENT_CANCELLATION: "Shipment cancelled",
    StockMovement.Trigger.API_SINGLE: "API row",
    StockMovement.Trigger.API_BULK: "API bulk",
}


def _change(delta: int, after: int) -> str:
    """ "+5 → 12": the change and the quantity it left; just the quantity when it did not move."""
    if not delta:
        return format_html('<span style="color:var(--body-quiet-color)">{}</span>', after)
    return format_html(NOWRAP, f"{delta:+d} → {after}")


def _short(text: str, limit: int) -> str:
    """At most `limit` characters, the whole in the tooltip."""
    if len(text) <= limit:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: limit - 1].rstrip())


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
