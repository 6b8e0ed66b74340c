"""Price rules in the back office: overrides per variant (with their CSV import), and price
syncs with their progress. The rule itself is edited on the channel's page (its Prices
fieldset); saving it queues a price sync (channels.pricing.price_rules_changed).

URLs: `admin:channels_priceoverride_import` (the import page), `admin:channels_pricesync_push`
(a POST with the channel's id queues a sync of its prices and redirects to it: the channel
page's "Push prices now"), `admin:channels_pricesync_progress` (a sync's bar, for progress.js).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from catalog.admin_views import (
    SHOWN_ERRORS,
    CatalogImportForm,
    bad_lines,
    csv_example,
    import_outcome,
)
from catalog.imports.reading import ImportFileError, text_stream
from channels.models import Channel, Listing, PriceOverride, PriceSync
from channels.pricing import (
    MANUAL,
    OVERRIDE_COLUMNS,
    PriceProblem,
    channel_price,
    price_override_set,
    price_overrides_import,
    price_overrides_remove,
    price_problem,
    price_sync_request,
    reason_label,
)
from omni.admin_tools import (
    DateRangeFilter,
    Progress,
    ReadOnlyAdminMixin,
    progress_bar,
)

IMPORT_TEMPLATE = "admin/channels/priceoverride/import.html"
OVERRIDE_EXAMPLE = "sku,price\r\nTEE-SAND-S,129900\r\nTEE-SAND-M,134900\r\nTOTE-NAT,59000.50\r\n"

# --- overrides ---------------------------------------------------------------------------------


class PriceOverrideForm(forms.ModelForm):
    class Meta:
        model = PriceOverride
        fields = ["channel", "variant", "price"]
        help_texts = {
            "price": "The variant's price on this channel, in the channel's currency: sent in "
            "place of the price its rule makes."
        }


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    form = PriceOverrideForm
    change_list_template = "admin/channels/priceoverride/change_list.html"
    list_display = ["channel", "sku", "product", "pos_price", "rule_price", "override"]
    list_filter = ["channel"]
    list_select_related = ["channel", "variant__product"]
    search_fields = ["variant__sku_key"]
    search_help_text = "Part of the SKU (any case)."
    autocomplete_fields = ["variant"]
    ordering = ["channel__name", "variant__sku_key"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # An override is the price of one variant on one channel: to move it, remove it and
        # add another.
        return ["channel", "variant"] if obj is not None else []

    def get_search_results(self, request, queryset, search_term):
        # sku_key is stored trimmed and lower-cased: search it the same way
        return super().get_search_results(request, queryset, search_term.strip().lower())

    @admin.display(description="SKU", ordering="variant__sku_key")
    def sku(self, obj: PriceOverride) -> str:
        # on one line: a SKU broken at its hyphens reads as two
        return format_html('<span style="white-space:nowrap">{}</span>', obj.variant.sku)

    @admin.display(description="Product", ordering="variant__product__name")
    def product(self, obj: PriceOverride) -> str:
        return obj.variant.product.name

    @admin.display(description="POS price", ordering="variant__retail_price")
    def pos_price(self, obj: PriceOverride):
        return obj.variant.retail_price

    @admin.display(description="Price by the channel's rule")
    def rule_price(self, obj: PriceOverride):
        if price_problem(obj.channel) is not None:
            return format_html(
                '<span class="omni-muted" title="{}">none: sells in {}</span>',
                str(price_problem(obj.channel)),
                obj.channel.currency,
            )
        return channel_price(obj.channel, obj.variant.retail_price)

    @admin.display(description="Override", ordering="price")
    def override(self, obj: PriceOverride):
        return obj.price

    def save_model(self, request, obj: PriceOverride, form, change) -> None:
        price_override_set(channel=obj.channel, sku=obj.variant.sku, price=obj.price)
        obj.pk = PriceOverride.objects.get(channel=obj.channel, variant=obj.variant).pk

    def delete_model(self, request, obj: PriceOverride) -> None:
        price_overrides_remove(override_ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        price_overrides_remove(override_ids=list(queryset.values_list("pk", flat=True)))

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        # Before the defaults, whose <path:object_id>/ route would catch "import/".
        return [path("import/", view, name="channels_priceoverride_import"), *super().get_urls()]

    def import_view(self, request):
        """Upload a CSV of sku,price for a chosen channel; the outcome on the same page."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        if request.GET.get("example"):
            return csv_example(OVERRIDE_EXAMPLE, "price-overrides.csv")
        form = OverrideImportForm(request.POST or None, request.FILES or None)
        outcome = {}
        if request.method == "POST" and form.is_valid():
            outcome = _import(form)
        return TemplateResponse(
            request, IMPORT_TEMPLATE, _import_context(self, request, form, outcome)
        )


class OverrideImportForm(CatalogImportForm):
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.order_by("name"),
        help_text="The overrides are set on this channel, in its currency.",
    )
    field_order = ["channel", "file", "partial", "dry_run"]


def _import(form: OverrideImportForm) -> dict:
    """Run the import; what the page shows of it (the file's refusal goes on the file field)."""
    data = form.cleaned_data
    channel = data["channel"]
    try:
        result = price_overrides_import(
            channel=channel,
            stream=text_stream(data["file"]),
            partial=data["partial"],
            dry_run=data["dry_run"],
        )
    except ImportFileError as exc:
        form.add_error("file", str(exc))
        return {"errors_shown": bad_lines(exc.errors[:SHOWN_ERRORS], OVERRIDE_COLUMNS)}
    return {
        **import_outcome(result, partial=data["partial"], columns=OVERRIDE_COLUMNS),
        "channel": channel,
        "problem": str(price_problem(channel) or ""),
        "syncs_url": reverse("admin:channels_pricesync_changelist")
        + f"?channel__id__exact={channel.pk}",
        "changed": result.written and bool(result.created or result.updated),
    }


def _import_context(model_admin, request, form, outcome: dict) -> dict:
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": "Import price overrides",
        "form": form,
        "columns": OVERRIDE_COLUMNS,
        "recent": [],
        **outcome,
    }


# --- price syncs -------------------------------------------------------------------------------

LIVE = [PriceSync.Status.QUEUED, PriceSync.Status.RUNNING]
CHECKED = "listings checked"


def sync_progress(sync: PriceSync, listed: int | None) -> Progress:
    """A price sync as a progress bar: listed variants checked, of the channel's `listed`
    (its length while it runs), then how it ended. The count is of listings checked, not
    sent: a sync of changed overrides sends only the prices that differ (its Pushed column)."""
    poll_url = reverse("admin:channels_pricesync_progress", args=[sync.pk])
    if sync.status == PriceSync.Status.QUEUED:
        return Progress("queued", "Queued", error=sync.message, poll_url=poll_url)
    if sync.status == PriceSync.Status.RUNNING:
        return Progress(
            "running",
            "Pushing prices",
            done=sync.considered,
            total=max(listed or 0, sync.considered) or None,
            unit=CHECKED,
            started_at=sync.started_at,
            poll_url=poll_url,
        )
    if sync.status == PriceSync.Status.SUCCEEDED:
        return Progress("succeeded", "Pushed", done=sync.considered, unit=CHECKED)
    if sync.pushed:
        return Progress(
            "partial", "Some refused", done=sync.considered, unit=CHECKED, error=sync.message
        )
    return Progress("failed", "Failed", done=sync.considered, unit=CHECKED, error=sync.message)


def listed_of_channel() -> Case:
    """For a PriceSync queryset: `listed`, its channel's mapped present listings, for the
    queued and running ones only (a subquery those rows alone pay for)."""
    count = (
        Listing.objects.filter(channel_id=OuterRef("channel_id"), variant__isnull=False)
        .exclude(status=Listing.Status.REMOVED)
        .order_by()
        .values("channel_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Case(
        When(status__in=LIVE, then=Subquery(count)),
        default=Value(None),
        output_field=IntegerField(),
    )


@admin.register(PriceSync)
class PriceSyncAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # The message is in the bar of a sync that did not succeed, and on the sync's page.
    list_display = ["created_at", "channel", "why", "progress", "pushed", "failed", "calls"]
    list_filter = ["channel", "status", ("created_at", DateRangeFilter)]
    list_select_related = ["channel"]
    show_full_result_count = False
    denied_permissions = frozenset({"add", "change", "delete"})
    fields = [
        "channel",
        "why",
        "progress",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "progress_at",
        "considered",
        "pushed",
        "failed",
        "calls",
        "message",
        "failures",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(listed=listed_of_channel())

    @admin.display(description="Reason", ordering="reason")
    def why(self, obj: PriceSync) -> str:
        by = f" ({obj.requested_by})" if obj.requested_by else ""
        return reason_label(obj.reason) + by

    @admin.display(description="Progress / outcome", ordering="status")
    def progress(self, obj: PriceSync) -> str:
        return progress_bar(sync_progress(obj, getattr(obj, "listed", None)))

    @admin.display(description="Refusals (a sample)")
    def failures(self, obj: PriceSync) -> str:
        sample = obj.failure_sample or []
        if not sample:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    entry.get("sku") or "—",
                    "/".join(p for p in (entry.get("item"), entry.get("variant")) if p) or "—",
                    entry.get("error", ""),
                    "later" if entry.get("retryable") else "no",
                )
                for entry in sample
            ),
        )
        return format_html(
            "<table><thead><tr><th>SKU</th><th>Item/variant</th><th>The marketplace said</th>"
            "<th>Retried</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def get_urls(self):
        progress = self.admin_site.admin_view(self.progress_view)
        push = self.admin_site.admin_view(require_POST(self.push_view))
        return [
            path("<int:sync_id>/progress/", progress, name="channels_pricesync_progress"),
            path("push/<int:channel_id>/", push, name="channels_pricesync_push"),
            *super().get_urls(),
        ]

    def progress_view(self, request, sync_id: int) -> HttpResponse:
        """The sync's progress bar alone, as the page's progress.js asks for it."""
        if not self.has_view_permission(request):
            raise Http404("No such price sync")
        sync = get_object_or_404(self.get_queryset(request), pk=sync_id)
        return HttpResponse(self.progress(sync))

    def push_view(self, request, channel_id: int) -> HttpResponseRedirect:
        """Queue a sync of every listed variant's price (asking again while it waits adds
        none), then show it; a channel selling in another currency is refused with why."""
        channel = get_object_or_404(Channel, pk=channel_id)
        if not request.user.has_perm("channels.change_channel"):
            raise PermissionDenied
        try:
            sync = price_sync_request(
                channel=channel, reason=MANUAL, requested_by=request.user.get_username()
            )
        except PriceProblem as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:channels_channel_change", args=[channel.pk]))
        self.message_user(
            request, f"Price sync #{sync.pk} of {channel} queued: every listed variant's price."
        )
        return HttpResponseRedirect(reverse("admin:channels_pricesync_change", args=[sync.pk]))
