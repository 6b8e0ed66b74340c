"""Channels in the back office: channel settings, scans, and the six product tabs."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from channels import tabs
from channels.adapters.base import AdapterError
from channels.admin_panels import (
    Outbox,
    age,
    expected_listings,
    expected_listings_of_channel,
    latest_scans,
    scan_panel,
    scan_progress,
    sync_outbox_annotations,
    sync_progress,
)
from channels.credentials_store import CredentialsUnreadable, credentials_of
from channels.exceptions import ChannelError, InvalidCredentials
from channels.inventory import inventory_sync_run
from channels.listings import (
    ActionReport,
    listing_link,
    listings_download_to_pos,
    listings_upload,
    listings_with_channels,
)
from channels.marketplaces import BY_KIND
from channels.models import (
    CatalogPush,
    Channel,
    InventorySync,
    Listing,
    PendingPush,
    Scan,
    SyncTrigger,
)
from channels.rules import channel_settings_changed
from channels.scans import RemovalNotHeld, scan_confirm_removal, scan_request
from channels.services import (
    adapter_for,
    channel_apply_duplicate_policy,
    channel_replace_credentials,
    credentials_validate,
)
from channels.sku_rules import channel_sku_search
from channels.tabs import Tab
from omni.admin_tools import (
    GREEN,
    GREY,
    ORANGE,
    RED,
    DateRangeFilter,
    KnownCountPaginator,
    ReadOnlyAdminMixin,
    clipped,
    progress_bar,
    state_badge,
    with_note,
)

# --- channel settings ------------------------------------------------------------------------


class ChannelForm(forms.ModelForm):
    """Credentials are write-only: the field is always shown empty, and blank keeps them."""

    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text='JSON, e.g. {"partner_id": 1, "partner_key": "…", "shop_id": 2, '
        '"access_token": "…"}. Never shown again; leave blank to keep the stored ones.',
    )

    class Meta:
        model = Channel
        fields = [
            "kind",
            "name",
            "api_base_url",
            "max_concurrent_calls",
            "max_calls_per_second",
            "is_active",
            "inventory_sync_mode",
            "fulfillment_sync_minutes",
            "duplicate_sku_policy",
            "order_outlet",
            "outlets",
            "buffer",
        ]
        widgets = {"outlets": forms.CheckboxSelectMultiple}

    def clean(self):
        data = super().clean()
        raw = data.get("new_credentials", "").strip()
        if not raw:
            if self.instance.pk is None:
                self.add_error("new_credentials", "A new channel needs its credentials.")
            return data
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.add_error("new_credentials", f"Not valid JSON (line {exc.lineno}): {exc.msg}.")
            return data
        if not isinstance(parsed, dict):
            self.add_error("new_credentials", "Credentials must be a JSON object.")
            return data
        try:
            data["validated_credentials"] = credentials_validate(
                kind=data.get("kind") or self.instance.kind, credentials=parsed
            )
        except InvalidCredentials as exc:
            self.add_error("new_credentials", str(exc))
        return data


class ChannelAttentionFilter(admin.SimpleListFilter):
    """The channels staff must do something about: connect again, or look at the last error."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("connect", "Connect again"), ("error", "Shows an error")]

    def queryset(self, request, queryset):
        match self.value():
            case "connect":
                return queryset.exclude(authorization_notice="")
            case "error":
                return queryset.exclude(last_error="")
        return queryset


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    change_form_template = "admin/channels/channel/change_form.html"
    list_display = [
        "name",
        "kind",
        "state",
        "last_scan",
        "sync_mode",
        "outlet",
        "buffer",
    ]
    list_filter = [ChannelAttentionFilter, "kind", "is_active", "inventory_sync_mode"]
    list_select_related = ["order_outlet"]
    search_fields = ["name"]
    actions = ["sync_inventory_now"]
    readonly_fields = [
        "credentials_status",
        "authorization",
        "last_scan_at",
        "last_error",
        "held_removal",
        "last_inventory_sync_at",
    ]
    fieldsets = [
        (None, {"fields": ["kind", "name", "is_active"]}),
        (
            "Connection",
            {
                "fields": [
                    "api_base_url",
                    "credentials_status",
                    "authorization",
                    "new_credentials",
                    "max_concurrent_calls",
                    "max_calls_per_second",
                ]
            },
        ),
        (
            "Inventory",
            {
                "fields": [
                    "inventory_sync_mode",
                    "fulfillment_sync_minutes",
                    "duplicate_sku_policy",
                    "order_outlet",
                    "outlets",
                    "last_inventory_sync_at",
                ],
                "description": "Choosing “update every listing that shares a SKU” may oversell "
                "and switches the mode to “Synchronize with fulfillment channel”.",
            },
        ),
        (
            "Stock rules",
            {
                "fields": [
                    "stock_share_percent",
                    "stock_maximum",
                    "stock_cutoff",
                    "buffer",
                    "is_priority",
                    "priority_threshold",
                ],
                "description": "What the channel is sent of each SKU's available stock over its "
                "outlets, applied in this order: the share, the maximum, the cut-off, the "
                "buffer; never below zero. A product or a variant may have its own rule.",
            },
        ),
        ("SKU mapping", {"fields": ["sku_strip_prefixes", "sku_strip_suffixes"]}),
        (
            "Prices",
            {
                "fields": [
                    "currency",
                    "price_markup_percent",
                    "price_markup_amount",
                    "price_round_step",
                    "price_round_mode",
                    "price_ending",
                ],
                "description": "The price sent is the POS retail price, marked up and rounded; "
                "a variant may have its own price on the channel.",
            },
        ),
        ("Scans", {"fields": ["last_scan_at", "last_error", "held_removal"]}),
    ]

    @admin.display(description="State", ordering="is_active")
    def state(self, obj: Channel) -> str:
        badge = state_badge("Active", GREEN) if obj.is_active else state_badge("Paused", GREY)
        if obj.authorization_notice:
            reconnect = state_badge("Connect again", ORANGE)
            badge = format_html("{} {} {}", badge, reconnect, clipped(obj.authorization_notice, 90))
        if obj.last_error:
            return format_html("{} {}", badge, clipped(obj.last_error, 90))
        return badge

    @admin.display(description="Authorization")
    def authorization(self, obj: Channel) -> str:
        """The marketplace's last word on the seller's authorization, and when it came."""
        if not obj.authorization_notice:
            return "no notice from the marketplace"
        when = timezone.localtime(obj.authorization_notice_at).strftime("%Y-%m-%d %H:%M")
        return format_html(
            "{} {} (pushed {}; cleared when changed credentials are entered)",
            state_badge("Connect again", ORANGE),
            obj.authorization_notice,
            when,
        )

    @admin.display(description="Last scan", ordering="last_scan_at")
    def last_scan(self, obj: Channel) -> str:
        return age(obj.last_scan_at)

    @admin.display(description="Inventory sync", ordering="inventory_sync_mode")
    def sync_mode(self, obj: Channel) -> str:
        return obj.get_inventory_sync_mode_display()

    @admin.display(description="Order outlet", ordering="order_outlet__code")
    def outlet(self, obj: Channel) -> str:
        """The outlet's code, its name in the tooltip: the full "name (code)" widened the list
        past the screen."""
        outlet = obj.order_outlet
        return format_html('<span title="{}">{}</span>', outlet.name, outlet.code)

    # -- the channel's own buttons (its page, the tabs, Channel Statistic) --------------------

    def get_urls(self):
        def view(method):
            return self.admin_site.admin_view(require_POST(method))

        return [
            path(
                "<int:channel_id>/scan/<str:kind>/",
                self.admin_site.admin_view(self.scan_view),
                name="channels_channel_scan",
            ),
            path(
                "<int:channel_id>/sync-inventory/",
                view(self.sync_inventory_view),
                name="channels_channel_sync_inventory",
            ),
            path(
                "<int:channel_id>/test-connection/",
                view(self.test_connection_view),
                name="channels_channel_test_connection",
            ),
            *super().get_urls(),
        ]

    def _back(self, request, channel: Channel) -> HttpResponseRedirect:
        """Back where the button was pressed (a tab, Channel Statistic), else the channel."""
        back = request.POST.get("next") or request.GET.get("next")
        if not back or not url_has_allowed_host_and_scheme(back, {request.get_host()}):
            back = reverse("admin:channels_channel_change", args=[channel.pk])
        return HttpResponseRedirect(back)

    def scan_view(self, request, channel_id: int, kind: str):
        """POST queues the scan; GET asks to confirm (so a crawler or a prefetch starts none)."""
        channel = get_object_or_404(Channel, pk=channel_id)
        if kind not in Scan.Kind.values:
            raise Http404("No such kind of scan")
        if request.method == "POST":
            _queue_scan(self, request, channel, kind)
            return self._back(request, channel)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{Scan.Kind(kind).label} of {channel}",
            "channel": channel,
            "kind_label": Scan.Kind(kind).label,
            "back": reverse("admin:channels_channel_change", args=[channel.pk]),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/channels/scan_confirm.html", context)

    def sync_inventory_view(self, request, channel_id: int):
        channel = get_object_or_404(Channel, pk=channel_id)
        if not self.has_change_permission(request, channel):
            raise Http404("No such channel")
        self._sync_now(request, channel)
        return self._back(request, channel)

    def test_connection_view(self, request, channel_id: int):
        """One cheap signed call to the marketplace; its answer, or its refusal, as a message."""
        channel = get_object_or_404(Channel, pk=channel_id)
        try:
            adapter = adapter_for(channel)
            adapter.check_credentials()
        except (AdapterError, ChannelError, CredentialsUnreadable) as exc:
            self.message_user(request, f"{channel}: the connection failed — {exc}", messages.ERROR)
        else:
            millis = round(adapter.stats.seconds * 1000)
            self.message_user(
                request,
                f"{channel}: connected. {channel.get_kind_display()} accepted the signed call "
                f"({adapter.stats.calls} call, {millis} ms).",
                messages.SUCCESS,
            )
        return self._back(request, channel)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        channel = channel_named(object_id)
        if channel is not None:
            extra_context = {
                "panel": scan_panel(channel),
                "tab_links": [
                    (tab.title, reverse(tab.changelist_url_name) + f"?channel={channel.pk}")
                    for tab in tabs.TABS
                ],
                "rule_links": rule_links(channel),
                "webhook_url": request.build_absolute_uri(f"/api/webhooks/{channel.pk}"),
                "webhook_scheme": BY_KIND[channel.kind].webhook_scheme,
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Removal awaiting confirmation")
    def held_removal(self, obj: Channel) -> str:
        held = obj.scans.filter(status=Scan.Status.TO_CONFIRM).first() if obj.pk else None
        if held is None:
            return "none"
        return format_html("{} {}", held.note, confirm_removal_button(held))

    @admin.display(description="Stored credentials")
    def credentials_status(self, obj: Channel) -> str:
        try:
            stored = credentials_of(obj)
        except CredentialsUnreadable as exc:
            return str(exc)
        if not stored:
            return "none"
        return f"set ({len(stored)} fields, encrypted, hidden)"

    def changelist_view(self, request, extra_context=None):
        """Warn about each listed channel whose credentials no configured key decrypts."""
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        for channel in changelist.result_list if changelist else []:
            try:
                credentials_of(channel)
            except CredentialsUnreadable as exc:
                self.message_user(request, str(exc), messages.ERROR)
        return response

    def save_model(self, request, obj: Channel, form, change) -> None:
        if "validated_credentials" in form.cleaned_data:
            validated = form.cleaned_data["validated_credentials"]
            channel_replace_credentials(channel=obj, credentials=validated)
        warning = channel_apply_duplicate_policy(channel=obj)
        super().save_model(request, obj, form, change)
        if warning and "duplicate_sku_policy" in form.changed_data:
            self.message_user(request, warning, messages.WARNING)
        if change:
            channel_settings_changed(
                channel=obj,
                changed=form.changed_data,
                was_priority=bool(form.initial.get("is_priority")),
                requested_by=request.user.get_username(),
            )

    @admin.action(description="Sync inventory now (sales channel manual sync)")
    def sync_inventory_now(self, request, queryset):
        for channel in queryset:
            self._sync_now(request, channel)

    def _sync_now(self, request, channel: Channel) -> None:
        record = inventory_sync_run(
            channel=channel,
            trigger=SyncTrigger.SALES_CHANNEL_MANUAL,
            requested_by=request.user.get_username(),
        )
        level = messages.WARNING if record.drift or record.skipped_duplicates else messages.INFO
        url = (
            reverse("admin:channels_inventorysync_changelist") + f"?channel__id__exact={channel.pk}"
        )
        self.message_user(
            request,
            format_html('{}: {} <a href="{}">Follow the pushes</a>.', channel, record.message, url),
            level,
        )


SCAN_COLOURS = {
    Scan.Status.QUEUED: GREY,
    Scan.Status.RUNNING: GREY,
    Scan.Status.SUCCEEDED: GREEN,
    Scan.Status.TO_CONFIRM: ORANGE,
    Scan.Status.FAILED: RED,
}

# Confirming a held removal marks listings removed: it takes the right to change listings.
CONFIRM_REMOVAL_PERMISSION = "channels.change_listing"


def confirm_removal_button(scan: Scan) -> str:
    """The "Confirm removal of N listings" button of a scan holding a removal, else ""."""
    if scan.status != Scan.Status.TO_CONFIRM:
        return ""
    return format_html(
        '<a class="button" style="white-space:nowrap" href="{}">Confirm removal of {} listings</a>',
        reverse("admin:channels_scan_confirm_removal", args=[scan.pk]),
        scan.removal_held,
    )


@admin.register(Scan)
class ScanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "channel", "progress", "held_removal", "found", "started"]
    list_filter = ["status", "kind", "channel", ("created_at", DateRangeFilter)]
    list_select_related = ["channel"]
    show_full_result_count = False
    actions = ["confirm_removal"]
    denied_permissions = frozenset({"add", "change"})

    def has_confirm_removal_permission(self, request) -> bool:
        return request.user.has_perm(CONFIRM_REMOVAL_PERMISSION)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(expected=expected_listings_of_channel())

    @admin.display(description="Progress / outcome", ordering="status")
    def progress(self, obj: Scan) -> str:
        return progress_bar(scan_progress(obj, obj.expected))

    @admin.display(description="Listings", ordering="seen")
    def found(self, obj: Scan) -> str:
        """What the scan found, in two short lines rather than seven columns of counts."""
        counts = (
            [("seen", obj.seen), ("new", obj.new), ("changed", obj.changed)],
            [
                ("matched", obj.matched),
                ("not in POS", obj.not_in_pos),
                ("duplicates", obj.duplicates),
                ("removed", obj.removed),
            ],
        )
        lines = [
            format_html_join(" · ", "{} {}", ((n, label) for label, n in line)) for line in counts
        ]
        return with_note(*lines)

    @admin.display(description="Held removal")
    def held_removal(self, obj: Scan) -> str:
        return confirm_removal_button(obj) or (str(obj.removal_held) if obj.removal_held else "")

    @admin.display(description="Started", ordering="created_at")
    def started(self, obj: Scan) -> str:
        return age(obj.started_at or obj.created_at)

    def get_urls(self):
        view = self.admin_site.admin_view(self.confirm_removal_view)
        progress = self.admin_site.admin_view(self.progress_view)
        return [
            path("<int:scan_id>/confirm-removal/", view, name="channels_scan_confirm_removal"),
            path("<int:scan_id>/progress/", progress, name="channels_scan_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request, scan_id: int) -> HttpResponse:
        """The scan's progress bar alone, as the page's progress.js asks for it."""
        if not self.has_view_permission(request):
            raise Http404("No such scan")
        scan = get_object_or_404(Scan, pk=scan_id)
        expected = expected_listings([scan.channel_id]).get(scan.channel_id)
        return HttpResponse(progress_bar(scan_progress(scan, expected)))

    def confirm_removal_view(self, request, scan_id: int):
        """GET shows what the scan holds and asks to confirm; POST marks the listings removed."""
        scan = get_object_or_404(Scan.objects.select_related("channel"), pk=scan_id)
        back = reverse("admin:channels_scan_changelist") + f"?channel__id__exact={scan.channel_id}"
        if not self.has_confirm_removal_permission(request):
            self.message_user(request, "You may not mark listings removed.", messages.ERROR)
            return HttpResponseRedirect(back)
        if request.method == "POST":
            self._confirm(request, scan)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": (
                f"Confirm removal of {scan.removal_held} listings"
                if scan.status == Scan.Status.TO_CONFIRM
                else f"Scan #{scan.pk}: no removal to confirm"
            ),
            "scan": scan,
            "back": back,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/channels/removal_confirm.html", context)

    @admin.action(
        description="Confirm the held removal of listings", permissions=["confirm_removal"]
    )
    def confirm_removal(self, request, queryset):
        for scan in queryset.select_related("channel"):
            self._confirm(request, scan)

    def _confirm(self, request, scan: Scan) -> None:
        try:
            done = scan_confirm_removal(scan_id=scan.pk, confirmed_by=request.user.get_username())
        except RemovalNotHeld as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        self.message_user(
            request, f"{done.removed} listings of {scan.channel} marked removed (scan #{scan.pk})."
        )


class PushStateFilter(admin.SimpleListFilter):
    title = "inventory push"
    parameter_name = "push"

    def lookups(self, request, model_admin):
        return [
            ("error", "Last push failed"),
            ("pending", "Push pending"),
            ("never", "Never pushed"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "error":
                return queryset.exclude(push_error="")
            case "pending":
                return queryset.filter(pending_push__isnull=False)
            case "never":
                return queryset.filter(pushed_at__isnull=True)
        return queryset


class ListingForm(forms.ModelForm):
    class Meta:
        model = Listing
        fields = ["variant"]


LISTING_COLOURS = {
    Listing.Status.LIVE: GREEN,
    Listing.Status.INACTIVE: GREY,
    Listing.Status.REMOVED: RED,
}


# Columns of the listing list and the listing tabs (assigned as methods of both).


@admin.display(description="SKU", ordering="sku_key")
def sku_cell(model_admin, listing: Listing) -> str:
    return listing.sku or format_html('<span class="omni-muted">{}</span>', "(blank)")


@admin.display(description="Status", ordering="status")
def status_badge(model_admin, listing: Listing) -> str:
    return state_badge(listing.get_status_display(), LISTING_COLOURS[listing.status])


@admin.display(description="External ref", ordering="item_id")
def external_ref_cell(model_admin, listing: Listing) -> str:
    """A listing's item id and variant ref with a line break allowed between them: two 19-digit
    ids (TikTok Shop, Tokopedia) on one line would push the table past the screen."""
    if not listing.variant_ref:
        return listing.item_id
    return format_html("{}/<wbr>{}", listing.item_id, listing.variant_ref)


LISTING_SEARCH_HELP = (
    "Part of the title or the SKU (any case, as the channel shows it or as it is matched), or the "
    "start of the item id."
)


def _listing_search(search, request, queryset, search_term, channels):
    """Listings whose title, mapped SKU key or item id match (`search`, the admin's own), and
    those whose key matches what the term maps to under their channel's SKU rules, so that
    the SKU as the channel shows it (a prefix the rules take off, an aliased SKU) finds its
    listing too. The key is stored trimmed and lower-cased: the term is trimmed the same way."""
    term = search_term.strip()
    results, may_have_duplicates = search(request, queryset, term)
    mapped = channel_sku_search(term, channels) if term else None
    if mapped is not None:
        results = results | queryset.filter(mapped)
    return results, may_have_duplicates


@admin.register(Listing)
class ListingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every listing; its page links it to a POS variant by hand."""

    form = ListingForm
    list_display = [
        "title_and_channel",
        "sku_cell",
        "external_ref",
        "status_badge",
        "variant",
        "quantity",
        "last_push",
    ]
    list_filter = ["channel", "status", "is_manual_link", PushStateFilter]
    list_select_related = ["channel", "variant"]
    sku_cell, external_ref, status_badge = sku_cell, external_ref_cell, status_badge
    search_fields = ["title", "sku_key", "^item_id"]
    search_help_text = LISTING_SEARCH_HELP
    autocomplete_fields = ["variant"]
    readonly_fields = [
        "channel",
        "item_id",
        "variant_ref",
        "sku",
        "title",
        "price",
        "quantity",
        "status",
        "channel_updated_at",
        "last_seen_at",
        "is_manual_link",
        "pushed_quantity",
        "pushed_at",
        "push_error",
    ]
    denied_permissions = frozenset({"add"})  # scans add listings; staff link them by hand
    change_form_template = "admin/channels/listing/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Remembers the page staff came from (a tab), to go back there once saved."""
        back = (
            request.POST.get("next")
            or request.GET.get("next")
            or request.META.get("HTTP_REFERER", "")
        )
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
            back = ""
        return super().change_view(
            request, object_id, form_url, {"next": back, **(extra_context or {})}
        )

    def get_search_results(self, request, queryset, search_term):
        channels = Channel.objects.only("sku_strip_prefixes", "sku_strip_suffixes")
        return _listing_search(super().get_search_results, request, queryset, search_term, channels)

    @admin.display(description="Listing", ordering="title")
    def title_and_channel(self, obj: Listing) -> str:
        """The title, with the channel under it: one column fewer, so the list fits the screen."""
        return with_note(obj.title, obj.channel.name)

    @admin.display(description="Last push", ordering="pushed_at")
    def last_push(self, obj: Listing) -> str:
        """What omni last sent the channel for this listing, and when; a failure says why in
        its tooltip (the whole message is on the listing's page)."""
        if obj.push_error:
            return format_html(
                '<span title="{}">{}</span>', obj.push_error, state_badge("Failed", RED)
            )
        if obj.pushed_at is None:
            return format_html('<span class="omni-muted">{}</span>', "never")
        return format_html(
            '{} <span class="omni-muted">{}</span>', obj.pushed_quantity, age(obj.pushed_at)
        )

    def response_change(self, request, obj):
        back = request.POST.get("next", "")
        safe = back and url_has_allowed_host_and_scheme(back, {request.get_host()})
        if safe and "_continue" not in request.POST:
            return HttpResponseRedirect(back)
        return super().response_change(request, obj)

    def save_model(self, request, obj: Listing, form, change) -> None:
        listing_link(listing=obj, variant=form.cleaned_data["variant"])
        what = f"linked to {obj.variant.sku}" if obj.variant else "unlinked"
        self.message_user(request, f"“{obj.title}” {what}; scans will keep this link.")


@admin.register(PendingPush)
class PendingPushAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The inventory outbox: what is waiting to be pushed, and what failed."""

    list_display = [
        "listing",
        "channel",
        "state",
        "short_error",
        "reason",
        "requested_at",
        "next_attempt_at",
    ]
    list_filter = ["failed", "channel", "reason"]
    list_select_related = ["listing", "channel"]
    search_fields = ["listing__sku_key", "listing__title"]
    show_full_result_count = False
    denied_permissions = frozenset({"add", "change"})

    @admin.display(description="State", ordering="failed")
    def state(self, obj: PendingPush) -> str:
        if obj.failed:
            return state_badge("Failed: retried hourly", RED)
        if obj.attempts:
            return state_badge(f"Retrying ({obj.attempts} tried)", ORANGE)
        return state_badge("Queued", GREY)

    @admin.display(description="Last error")
    def short_error(self, obj: PendingPush) -> str:
        return clipped(obj.last_error, 120)


@admin.register(CatalogPush)
class CatalogPushAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "channel", "action", "product_id", "item_id", "error"]
    list_filter = ["channel", "action", ("error", admin.EmptyFieldListFilter)]
    list_select_related = ["channel"]
    search_fields = ["=item_id", "=product_id"]
    show_full_result_count = False
    denied_permissions = frozenset({"add", "change"})


@admin.register(InventorySync)
class InventorySyncAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "channel", "trigger", "progress", "findings"]
    list_filter = ["channel", "trigger", ("created_at", DateRangeFilter)]
    list_select_related = ["channel"]
    readonly_fields = [
        "channel",
        "trigger",
        "requested_by",
        "created_at",
        "finished_at",
        "considered",
        "drift",
        "drift_sample",
        "queued",
        "skipped_duplicates",
        "skipped_sample",
        "message",
    ]
    denied_permissions = frozenset({"add", "change"})

    @admin.display(description="Found")
    def findings(self, obj: InventorySync) -> str:
        if obj.finished_at and not obj.considered:
            return clipped(obj.message, 90)  # nothing sent, and why
        text = f"{obj.drift} of {obj.considered} differed from the POS"
        if obj.skipped_duplicates:
            text += f"; {obj.skipped_duplicates} skipped (shared SKU)"
        return format_html('<span title="{}">{}</span>', obj.message, text)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**sync_outbox_annotations())

    @admin.display(description="Pushes")
    def progress(self, obj: InventorySync) -> str:
        outbox = Outbox(obj.outbox_waiting, obj.outbox_failed) if obj.is_latest else None
        return progress_bar(sync_progress(obj, outbox))

    def get_urls(self):
        view = self.admin_site.admin_view(self.progress_view)
        return [
            path("<int:sync_id>/progress/", view, name="channels_inventorysync_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request, sync_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404("No such sync")
        queryset = InventorySync.objects.annotate(**sync_outbox_annotations())
        return HttpResponse(self.progress(get_object_or_404(queryset, pk=sync_id)))


# --- the six tabs ----------------------------------------------------------------------------


class ChannelTabFilter(admin.SimpleListFilter):
    """The channel a tab shows, from `?channel=`. The tab bar's picker chooses it, so the
    filter sidebar does not repeat it (no output); the admin's tab (channels.tabs) says what it
    shows for that channel. Channel Statistic, with no channel chosen, shows every channel."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return []  # the tab bar's picker lists the channels

    def has_output(self) -> bool:
        return False

    def queryset(self, request, queryset):
        return queryset  # applied by TabAdmin.get_queryset


def tab_rows(tab: Tab, channel: Channel | None, base):
    """`tab`'s rows for `channel`: none without one, but on Channel Statistic, every channel."""
    if tab.rows is tabs.Rows.CHANNELS:
        rows = tab.queryset(channel, base)
        return rows if channel is None else rows.filter(pk=channel.pk)
    if channel is None:
        return base.none()
    return tab.queryset(channel, base)


def filter_roots(model_admin) -> set[str]:
    """The query-string keys a changelist's filters read, by their first part ("status" for
    "status__exact"): what another tab may pass on to it without Django refusing the query."""
    roots = {"q"}
    for entry in model_admin.list_filter:
        if isinstance(entry, str):
            roots.add(entry.split("__")[0])
        elif isinstance(entry, tuple):
            roots.add(entry[0].split("__")[0])
        else:
            roots.add(entry.parameter_name)
    return roots


def kept_query(request, channel: Channel, target) -> str:
    """The query string of another tab for `channel`, keeping the search and the filters the
    target tab also has (a filter it lacks would be an error there)."""
    roots = filter_roots(target)
    query = request.GET.copy()
    for key in list(query):
        if key.split("__")[0] not in roots:
            del query[key]
    query["channel"] = str(channel.pk)
    return query.urlencode()


def channel_named(value: str | None) -> Channel | None:
    """The channel a query string names by id; None when it names none: missing, not a number
    (`?channel=abc`) or no longer there."""
    if not value or not value.isdigit():
        return None
    return Channel.objects.filter(pk=int(value)).first()


# A tab page's query-string keys that change neither which rows it shows nor how many: the
# channel (the tab bar counts its rows), the order and the page.
ROWS_UNCHANGED_BY = frozenset({"channel", "o", "p"})


def register_tab(tab: Tab):
    """Register the decorated TabAdmin for `tab`'s proxy model, with its columns, default order
    and actions as channels.tabs declares them."""

    def register(admin_class: type["TabAdmin"]) -> type["TabAdmin"]:
        missing = [name for name in tab.actions if not callable(getattr(admin_class, name, None))]
        if missing:
            raise ImproperlyConfigured(f"{admin_class.__name__} lacks the actions {missing}")
        admin_class.tab = tab
        admin_class.list_display = list(tab.columns)
        admin_class.ordering = list(tab.ordering) or None
        admin_class.actions = list(tab.actions)
        admin.site.register(tab.proxy, admin_class)
        return admin_class

    return register


class TabAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A product tab: a real changelist for one channel, with the tab bar above it.

    A tab is a view, so nothing is added, changed or deleted here; its actions go through
    services. Its rows, columns, order and actions come from its `tab` (see register_tab).
    """

    change_list_template = "admin/channels/tab_change_list.html"
    tab: Tab
    list_per_page = 50
    list_display_links = None
    # The unfiltered total would be a second count over every row of the table, per page view.
    show_full_result_count = False

    def get_list_filter(self, request):
        return [ChannelTabFilter, *self.list_filter]

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """Unsearched and unfiltered, the rows are those the tab bar counted for this page
        (tab_context): the changelist shows that count rather than counting them again."""
        counts = getattr(request, "tab_counts", None)
        if counts is None or not set(request.GET) <= ROWS_UNCHANGED_BY:
            return super().get_paginator(
                request, queryset, per_page, orphans, allow_empty_first_page
            )
        return KnownCountPaginator(
            queryset, per_page, orphans, allow_empty_first_page, count=counts[self.tab.slug]
        )

    def get_queryset(self, request):
        # The channel filter has no output (the picker shows it), and Django applies only the
        # filters it shows: apply it here, once, with the tab's rows.
        return tab_rows(
            self.tab, channel_named(request.GET.get("channel")), super().get_queryset(request)
        )

    def changelist_view(self, request, extra_context=None):
        channel = channel_named(request.GET.get("channel"))
        if channel is None:
            first = Channel.objects.order_by("name").first()
            if first is None:
                self.message_user(request, "Connect a channel first.", messages.WARNING)
                return HttpResponseRedirect(reverse("admin:channels_channel_add"))
            query = request.GET.copy()
            query["channel"] = str(first.pk)
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        return super().changelist_view(
            request, extra_context={**self.tab_context(request, channel), **(extra_context or {})}
        )

    def tab_context(self, request, channel: Channel) -> dict:
        """The tab bar (each tab with its count, keeping the search and the filters it also
        has), the channel picker (keeping everything but the page), and the scan strip."""
        counts = request.tab_counts = tabs.tab_counts(channel)
        return {
            "tabs": [
                {
                    "label": tab.title,
                    "count": counts[tab.slug],
                    "url": reverse(tab.changelist_url_name)
                    + "?"
                    + kept_query(request, channel, self.admin_site._registry[tab.proxy]),
                    "active": tab is self.tab,
                }
                for tab in tabs.TABS
            ],
            "tab_channel": channel,
            "tab_channels": Channel.objects.order_by("name"),
            "picker_keep": [
                (key, value)
                for key, values in request.GET.lists()
                if key not in ("channel", "p", "e")
                for value in values
            ],
            "panel": scan_panel(channel) if self.tab.rows is not tabs.Rows.CHANNELS else None,
        }

    def _channel(self, request) -> Channel:
        channel = channel_named(request.GET.get("channel"))
        if channel is None:
            raise Http404("No such channel")
        return channel

    def _report(self, request, report: ActionReport, verb: str) -> None:
        if report.done:
            self.message_user(request, f"{verb} {len(report.done)}: " + "; ".join(report.done[:10]))
        for line in report.skipped[:20]:
            self.message_user(request, f"Skipped — {line}", messages.WARNING)
        for line in report.failed[:20]:
            self.message_user(request, f"Failed — {line}", messages.ERROR)


class ListingTabAdmin(TabAdmin):
    list_select_related = ["variant__product"]
    # Substring matches (any case), served on PostgreSQL by trigram indexes (omni.search).
    search_fields = ["title", "sku_key", "^item_id"]
    search_help_text = LISTING_SEARCH_HELP
    sku_cell, external_ref, status_badge = sku_cell, external_ref_cell, status_badge
    list_filter = ["status"]

    def get_search_results(self, request, queryset, search_term):
        return _listing_search(
            super().get_search_results, request, queryset, search_term, [self._channel(request)]
        )

    @admin.display(description="POS variant")
    def pos(self, obj: Listing):
        link = reverse("admin:channels_listing_change", args=[obj.pk])
        if obj.variant is None:
            return format_html('<a href="{}">link by hand…</a>', link)
        return format_html(
            '{} <span class="omni-muted">{}</span> · <a href="{}">change</a>',
            obj.variant.sku,
            obj.variant.product.name,
            link,
        )


@register_tab(tabs.SOLD_IN_CHANNEL)
class SoldInChannelAdmin(ListingTabAdmin):
    pass


class BlankSkuFilter(admin.SimpleListFilter):
    """Not in POS: the listings with no SKU on the channel, which nothing can match until the
    seller gives them one (or staff link them by hand)."""

    title = "SKU"
    parameter_name = "sku"

    def lookups(self, request, model_admin):
        return [("blank", "Blank"), ("filled", "Filled in")]

    def queryset(self, request, queryset):
        if self.value() == "blank":
            return queryset.filter(sku_key="")
        if self.value() == "filled":
            return queryset.exclude(sku_key="")
        return queryset


@register_tab(tabs.NOT_IN_POS)
class NotInPosAdmin(ListingTabAdmin):
    list_filter = [BlankSkuFilter]

    @admin.action(description="Download to POS")
    def download_to_pos(self, request, queryset):
        try:
            report = listings_download_to_pos(
                channel=self._channel(request), listing_ids=queryset.values_list("pk", flat=True)
            )
        except ChannelError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self._report(request, report, "Created in the POS")


@register_tab(tabs.MULTIPLE_LISTED_SKU)
class MultipleListedSkuAdmin(ListingTabAdmin):
    list_select_related = ["variant__product", "channel"]

    @admin.display(description="Found at")
    def found_at(self, obj: Listing) -> str:
        kind = "model" if obj.variant_ref else "item"
        return f"{obj.channel.name}: {kind} {obj.external_ref}"


class VariantTabAdmin(TabAdmin):
    list_select_related = ["product"]
    # Substring matches (any case), served on PostgreSQL by trigram indexes (omni.search).
    search_fields = ["sku_key", "^upc", "product__name"]
    search_help_text = "Part of the SKU or the product name (any case), or the start of the UPC."

    list_filter = ["is_active", "product__brand", "product__category"]

    def get_search_results(self, request, queryset, search_term):
        # sku_key is stored trimmed and lower-cased: search it the same way
        return super().get_search_results(request, queryset, search_term.strip())

    @admin.display(description="SKU", ordering="sku_key")
    def sku_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:catalog_variant_change", args=[obj.pk]), obj.sku
        )

    @admin.display(description="Product", ordering="product__name")
    def product_name(self, obj) -> str:
        return obj.product.name

    @admin.display(description="Options")
    def options_label(self, obj) -> str:
        return obj.option_label

    @admin.display(description="Listed on")
    def listed(self, obj):
        listings = getattr(obj, "present_listings", None)
        if not listings:
            return format_html('<span class="omni-muted">{}</span>', "nowhere")
        return format_html_join(
            ", ", "{} ({})", ((lst.channel.name, lst.external_ref) for lst in listings)
        )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(listings_with_channels())

    @admin.action(description="Upload to this channel")
    def upload(self, request, queryset):
        if queryset.count() > 200:
            self.message_user(request, "Upload at most 200 variants at a time.", messages.ERROR)
            return
        report = listings_upload(
            channel=self._channel(request), variant_ids=queryset.values_list("pk", flat=True)
        )
        self._report(request, report, "Uploaded")


@register_tab(tabs.NOT_IN_CHANNEL)
class NotInChannelAdmin(VariantTabAdmin):
    pass


@register_tab(tabs.IN_POS)
class InPosAdmin(VariantTabAdmin):
    pass


def _queue_scan(model_admin, request, channel: Channel, kind: str) -> None:
    try:
        scan = scan_request(channel=channel, kind=kind, requested_by=request.user.get_username())
    except ChannelError as exc:
        model_admin.message_user(request, str(exc), messages.WARNING)
        return
    url = reverse("admin:channels_scan_changelist") + f"?channel__id__exact={channel.pk}"
    model_admin.message_user(
        request,
        format_html(
            '{} of {} queued (scan #{}). <a href="{}">Follow its progress</a>.',
            scan.get_kind_display(),
            channel,
            scan.pk,
            url,
        ),
    )


@register_tab(tabs.CHANNEL_STATISTIC)
class ChannelStatisticAdmin(TabAdmin):
    """Every channel's numbers side by side, or the one the picker chooses."""

    def get_list_filter(self, request):
        return [ChannelTabFilter]

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """The rows are the channels the picker chose (one, or every one), counted as channels:
        counting the rows with their numbers would join every listing."""
        channel = channel_named(request.GET.get("channel"))
        channels = Channel.objects.filter(pk=channel.pk) if channel else Channel.objects.all()
        return KnownCountPaginator(
            queryset, per_page, orphans, allow_empty_first_page, count=channels.count()
        )

    def changelist_view(self, request, extra_context=None):
        if "channel" in request.GET and channel_named(request.GET["channel"]) is None:
            query = request.GET.copy()
            del query["channel"]
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}".rstrip("?"))
        if "channel" in request.GET:
            return super().changelist_view(request, extra_context)
        first = Channel.objects.order_by("name").first()
        if first is None:
            return super().changelist_view(request, extra_context)  # asks to connect one
        # No channel chosen: every channel; the tab bar leads to the first one's tabs.
        context = {**self.tab_context(request, first), "all_channels": True}
        return admin.ModelAdmin.changelist_view(self, request, {**context, **(extra_context or {})})

    @admin.display(description="Channel", ordering="name")
    def channel_link(self, obj: Channel) -> str:
        link = reverse("admin:channels_channel_change", args=[obj.pk])
        return with_note(format_html('<a href="{}">{}</a>', link, obj.name), obj.get_kind_display())

    # The counts are annotated by the tab's queryset (selectors.channels_with_tab_counts).
    @admin.display(description="Live Product", ordering="live_product")
    def live_product(self, obj) -> int:
        return obj.live_product

    @admin.display(description="Sold in Channel", ordering="sold_in_channel")
    def sold_in_channel(self, obj) -> str:
        url = reverse(tabs.SOLD_IN_CHANNEL.changelist_url_name) + f"?channel={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.sold_in_channel)

    @admin.display(description="Product not in POS", ordering="not_in_pos")
    def not_in_pos(self, obj) -> str:
        url = reverse(tabs.NOT_IN_POS.changelist_url_name) + f"?channel={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.not_in_pos)

    @admin.display(description="Matched")
    def chart(self, obj) -> str:
        """A bar: the present listings, the part matched to the POS green, the rest orange."""
        present = obj.sold_in_channel + obj.not_in_pos
        if not present:
            return format_html('<span class="omni-muted">{}</span>', "no listings")
        share = round(100 * obj.sold_in_channel / present)
        return format_html(
            '<div class="omni-chart" title="{} of {} listings matched to the POS; {} not in POS">'
            '<span style="width:{}%"></span></div><span class="omni-muted">{}% matched</span>',
            obj.sold_in_channel,
            present,
            obj.not_in_pos,
            share,
            share,
        )

    @admin.display(description="Last scan", ordering="last_scan_at")
    def last_scan(self, obj: Channel) -> str:
        latest = latest_scans([obj.pk]).get(obj.pk)
        if latest is None:
            return format_html('<span class="omni-muted">{}</span>', "never scanned")
        expected = expected_listings([obj.pk]).get(obj.pk) if latest.status == "running" else None
        return format_html(
            '<span class="omni-muted">{}</span>{}',
            age(obj.last_scan_at),
            progress_bar(scan_progress(latest, expected)),
        )

    @admin.display(description="Scan")
    def scan_buttons(self, obj) -> str:
        # Buttons of the changelist's own form (which carries the CSRF token), posting
        # elsewhere: a form cannot sit inside another.
        back = reverse(self.tab.changelist_url_name)
        return format_html(
            '<span class="omni-buttons">'
            '<button type="submit" class="button" formaction="{}" name="next" value="{}">'
            "Scan</button>"
            '<button type="submit" class="button" formaction="{}" name="next" value="{}">'
            "Scan Updated Products</button></span>",
            reverse("admin:channels_channel_scan", args=[obj.pk, Scan.Kind.FULL]),
            back,
            reverse("admin:channels_channel_scan", args=[obj.pk, Scan.Kind.UPDATED]),
            back,
        )


def rule_links(channel: Channel) -> list[tuple[str, str]]:
    """The channel's own rules beside its settings: products' and variants' stock rules, SKU
    aliases and price overrides (each list filtered to the channel, with its count), and the
    per-SKU preview. Three counts."""
    filtered = f"?channel__id__exact={channel.pk}"
    counted = [
        ("product or variant stock rule", "s", channel.stock_rules, "channels_stockrule"),
        ("SKU alias", "es", channel.sku_aliases, "channels_skualias"),
        ("price override", "s", channel.price_overrides, "channels_priceoverride"),
    ]
    links = []
    for label, plural, manager, name in counted:
        count = manager.count()
        text = f"{count:,} {label}{'' if count == 1 else plural}"
        links.append((text, reverse(f"admin:{name}_changelist") + filtered))
    return [
        *links,
        ("what each channel is sent of a SKU", reverse("admin:channels_stockrule_preview")),
    ]


# The rules' screens, in their own modules: registered when the admin loads this one.
from channels import admin_pricing, admin_sku, admin_stock_rules  # noqa: E402, F401
