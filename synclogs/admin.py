"""The Sync Logs menu: a tab per step plus All, the Order Log, the 7-day report with Manual
Download Order, and read-only pages for the POS documents the pipeline wrote.

Log changelists stay fast on millions of rows: no full COUNT(*) (`show_full_result_count`
off, a capped paginator), the channel joined in the same query, and every filter backed by an
index named in SyncLog.Meta (the order number search by a trigram index, migration 0004).
"""

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from channels.models import Channel
from omni.admin_tools import (
    BADGE_STYLE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    CappedCountPaginator,
    DateRangeFilter,
    ReadOnlyAdminMixin,
    clipped,
    state_badge,
)
from synclogs import selectors, services
from synclogs.exceptions import OrderSyncError
from synclogs.models import (
    ACTION_MODELS,
    AddPaymentLog,
    ConvertOrderToInvoiceLog,
    CreateInvoiceLog,
    CreateOrderLog,
    CreateOutboundLogisticLog,
    SalesOrder,
    SalesOrderLine,
    SyncLog,
    VoidInvoiceLog,
    WebhookEvent,
)

# Badge colours of the seed's Sync Logs: 200 green, 409 blue-grey, 400 orange, 404 red.
BADGE_COLOURS = {200: GREEN, 409: "#546e7a", 400: ORANGE, 404: RED}
# Query-string keys of the changelist filters, used by the report's links and the tab bar.
CHANNEL_PARAM = "channel__id__exact"
STATUS_PARAM = "status__exact"
FROM_PARAM = "created_at__from"  # DateRangeFilter: first day, included
TO_PARAM = "created_at__to"  # DateRangeFilter: last day, included
ATTENTION_PARAM = "attention"
ORDERS_PARAM = "orders"
UP_TO_PARAM = "upto"  # the report's bound: rows with id ≤ this
KEPT_PARAMS = (
    CHANNEL_PARAM,
    STATUS_PARAM,
    FROM_PARAM,
    TO_PARAM,
    ATTENTION_PARAM,
    UP_TO_PARAM,
    ORDERS_PARAM,
)
# A badge on two lines, so the status column stays narrow.
TWO_LINE_BADGE_STYLE = BADGE_STYLE + ";text-align:center"


def badge(status: int, attention: str = "") -> str:
    """The status as a coloured pill; a done step that needs attention is orange, says so,
    and gives the reason in its tooltip."""
    label = SyncLog.Status(status).label if status in SyncLog.Status.values else str(status)
    if attention:
        return format_html(
            '<span style="{}" title="{}">{} ·<br>needs attention</span>',
            TWO_LINE_BADGE_STYLE.format(ORANGE),
            attention,
            label,
        )
    return state_badge(label, BADGE_COLOURS.get(status, GREY))


def short_time(moment: datetime) -> str:
    """ "7 Dec 14:05" in the site's time zone (the year too when it is not this year),
    with the full date and time in the tooltip."""
    local = timezone.localtime(moment)
    year = "" if local.year == timezone.localdate().year else f" {local.year}"
    return format_html(
        '<span title="{}">{} {}{} {}</span>',
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.day,
        local.strftime("%b"),
        year,
        local.strftime("%H:%M"),
    )


def changelist_url(action: str | None, **params: Any) -> str:
    """The tab of `action` (All when None), filtered by `params` (None values left out)."""
    name = ACTION_MODELS[action]._meta.model_name if action else "synclog"
    query = urlencode({k: v for k, v in params.items() if v is not None})
    url = reverse(f"admin:synclogs_{name}_changelist")
    return f"{url}?{query}" if query else url


def order_log_url(channel_id: int, order_number: str) -> str:
    return reverse("admin:synclogs_order_log", args=[channel_id, order_number])


def pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=False)
    return format_html('<pre class="omni-json">{}</pre>', text)


class ManualDownloadForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.filter(is_active=True))
    order_numbers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "241201ABCD1234, 241201EFGH5678"}),
        help_text="One or more order numbers, separated by commas, spaces or new lines.",
    )


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Done steps that left something to fix (SyncLog.attention), from a partial index."""

    title = "needs attention"
    parameter_name = ATTENTION_PARAM

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Needs attention"), ("no", "Nothing to look at")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        match self.value():
            case "yes":
                return queryset.exclude(attention="")
            case "no":
                return queryset.filter(attention="")
        return queryset


class ReportBoundFilter(admin.SimpleListFilter):
    """The rows a report snapshot counted (id ≤ its newest row then), so that its links
    open exactly what its numbers count however much was logged since. Shown only when
    a report link set it."""

    title = "report figures"
    parameter_name = UP_TO_PARAM

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, "Rows the report counted")] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"{value!r} is not a row number")
        return queryset.filter(pk__lte=int(value))


class EachOrderOnceFilter(admin.SimpleListFilter):
    """One row per order (its latest) among the rows the other filters keep: what the
    report's order counts open. Put it last in `list_filter`, after the filters it narrows."""

    title = "orders"
    parameter_name = ORDERS_PARAM

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("each", "Each order once (its latest row)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "each":
            return queryset
        # A row is its order's latest when no later row of that order passes the same
        # filters: checked row by row through `synclogs_log_order`, so a page of 50 stops
        # early instead of grouping every row of the range first.
        later = queryset.order_by().filter(
            channel_id=OuterRef("channel_id"),
            order_number=OuterRef("order_number"),
            id__gt=OuterRef("id"),
        )
        return queryset.filter(~Exists(later))


class SyncLogAdminBase(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A read-only tab of the Sync Logs (rows are deleted only by prune_synclogs)."""

    change_list_template = "admin/synclogs/synclog/change_list.html"
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice, over millions of rows
    list_per_page = 50
    list_select_related = ["channel"]
    list_display = ["when", "status_badge", "order_link", "short_message"]
    list_display_links = ["when"]
    list_filter = [
        "status",
        NeedsAttentionFilter,
        "channel",
        ("created_at", DateRangeFilter),
        ReportBoundFilter,
        EachOrderOnceFilter,  # last: one row per order among what the others keep
    ]
    # icontains: any part of the number (PostgreSQL: the trigram index of migration 0004).
    search_fields = ["order_number"]
    search_help_text = "Order number, or any part of it: its first or last characters will do."
    date_hierarchy = None
    ordering = ["-created_at", "-id"]
    actions = ["download_orders"]
    fields = [
        "created_at",
        "status_badge",
        "attention",
        "action",
        "channel",
        "order_link",
        "origin",
        "by",
        "message",
        "documents_links",
        "request_pretty",
        "response_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="When", ordering="created_at")
    def when(self, obj: SyncLog) -> str:
        return short_time(obj.created_at)

    @admin.display(description="By")
    def by(self, obj: SyncLog) -> str:
        """Who ran the step, in words: a staff member, or the trigger that ran it."""
        actor = obj.actor
        if actor.startswith("user:"):
            return f"{actor.removeprefix('user:')} (staff)"
        if actor in SyncLog.Origin.values:
            return str(SyncLog.Origin(actor).label)
        return actor or "—"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: SyncLog) -> str:
        return badge(obj.status, obj.attention)

    @admin.display(description="Order number", ordering="order_number")
    def order_link(self, obj: SyncLog) -> str:
        """The order number, linking to its whole log, over its channel's name (one column
        for both keeps the changelist beside its filters at 1440 px)."""
        return format_html(
            '<a href="{}" title="This order\'s whole log">{}</a><br>'
            '<span class="omni-muted">{}</span>',
            order_log_url(obj.channel_id, obj.order_number),
            obj.order_number,
            obj.channel.name,
        )

    @admin.display(description="Message")
    def short_message(self, obj: SyncLog) -> str:
        """The message, clipped; for a row that needs attention, what needs it instead (the
        row's own page has the whole message)."""
        if obj.attention:
            return format_html(
                '<span class="omni-attention-reason">{}</span>', clipped(obj.attention, 100)
            )
        return clipped(obj.message, 80)

    @admin.display(description="Documents")
    def documents_links(self, obj: SyncLog) -> str:
        order_id = obj.documents.get("sales_order")
        if not order_id:
            return "none"
        url = reverse("admin:synclogs_salesorder_change", args=[order_id])
        kinds = ", ".join(k.replace("_", " ") for k in obj.documents if k != "sales_order")
        return format_html(
            '<a href="{}">sales order #{}</a>{}', url, order_id, f" with {kinds}" if kinds else ""
        )

    @admin.display(description="Request (what the step was based on)")
    def request_pretty(self, obj: SyncLog) -> str:
        return pretty_json(obj.request)

    @admin.display(description="Response (what the step did)")
    def response_pretty(self, obj: SyncLog) -> str:
        return pretty_json(obj.response)

    @admin.action(description="Download these orders again (Manual Download Order)")
    def download_orders(self, request: HttpRequest, queryset: Any) -> None:
        wanted: dict[int, set[str]] = {}
        for channel_id, number in queryset.values_list("channel_id", "order_number")[:1000]:
            wanted.setdefault(channel_id, set()).add(number)
        for channel in Channel.objects.filter(pk__in=wanted):
            _download(self, request, channel, sorted(wanted[channel.pk]))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {
            "tabs": self._tabs(request),
            "tab_title": "All" if self.model is SyncLog else self.model._meta.verbose_name_plural,
        }
        return super().changelist_view(request, extra_context={**context, **(extra_context or {})})

    def _tabs(self, request: HttpRequest) -> list[dict[str, Any]]:
        # Switching tabs keeps the channel, status, attention and date filters and the search.
        kept = {key: request.GET[key] for key in (*KEPT_PARAMS, "q") if key in request.GET}
        here = self.model._meta.model_name
        tabs = [
            {
                "label": model._meta.verbose_name_plural,
                "url": changelist_url(action, **kept),
                "active": model._meta.model_name == here,
            }
            for action, model in ACTION_MODELS.items()
        ]
        tabs.append(
            {"label": "All", "url": changelist_url(None, **kept), "active": here == "synclog"}
        )
        return tabs


@admin.register(SyncLog)
class SyncLogAdmin(SyncLogAdminBase):
    """All steps, with the Order Log and the report as extra pages."""

    list_display = ["when", "status_badge", "action", "order_link", "short_message"]
    list_filter = [
        "status",
        NeedsAttentionFilter,
        "action",
        "channel",
        ("created_at", DateRangeFilter),
        ReportBoundFilter,
        EachOrderOnceFilter,  # last: one row per order among what the others keep
    ]

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("report/", view(self.report_view), name="synclogs_report"),
            path(
                "order/<int:channel_id>/<str:order_number>/",
                view(self.order_log_view),
                name="synclogs_order_log",
            ),
            *super().get_urls(),
        ]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """The last 7 days per channel and step; Manual Download Order; missing downloads."""
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ManualDownloadForm(request.POST or None)
        if request.method == "POST":
            return self._report_post(request, form)
        report = services.report_snapshot(days=7, refresh="refresh" in request.GET)
        context = {
            **self.admin_site.each_context(request),
            "title": "Sync Logs · last 7 days",
            "opts": self.model._meta,
            "channels": [
                {
                    "total": _report_cells(channel.total, report.up_to_id),
                    "steps": [_report_cells(row, report.up_to_id) for row in channel.steps],
                }
                for channel in report.channels
            ],
            "since": report.since,
            "until": report.until,
            "computed_at": report.computed_at,
            "recounting": report.recounting,
            "form": form,
            "tabs": [{**tab, "active": False} for tab in self._tabs(request)],
        }
        return TemplateResponse(request, "admin/synclogs/report.html", context)

    def _report_post(self, request: HttpRequest, form: ManualDownloadForm) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        missing_channel = request.POST.get("download_missing")
        if missing_channel:
            channel = get_object_or_404(Channel, pk=missing_channel)
            try:
                done = services.orders_download_missing(channel=channel, actor=_actor(request))
            except OrderSyncError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                _report_download(self, request, channel, done)
            return HttpResponseRedirect(reverse("admin:synclogs_report"))
        if form.is_valid():
            channel = form.cleaned_data["channel"]
            numbers = form.cleaned_data["order_numbers"]
            _download(self, request, channel, numbers)
        else:
            self.message_user(request, "Choose a channel and give order numbers.", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:synclogs_report"))

    def order_log_view(self, request: HttpRequest, channel_id: int, order_number: str) -> Any:
        """The Order Log: every row of one order, oldest first, with its POS documents."""
        channel = get_object_or_404(Channel, pk=channel_id)
        rows = list(selectors.order_log(channel_id=channel.pk, order_number=order_number)[:500])
        order = (
            SalesOrder.objects.filter(channel=channel, order_number=order_number)
            .select_related("outlet", "invoice", "outbound_logistic", "payment")
            .first()
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Order Log · {order_number} ({channel.name})",
            "opts": self.model._meta,
            "channel": channel,
            "order_number": order_number,
            "order": order,
            "documents": _documents_of(order),
            "rows": [
                {
                    "log": row,
                    "badge": badge(row.status, row.attention),
                    "url": reverse("admin:synclogs_synclog_change", args=[row.pk]),
                }
                for row in rows
            ],
            "download_form": ManualDownloadForm(
                initial={"channel": channel.pk, "order_numbers": order_number}
            ),
            "report_url": reverse("admin:synclogs_report"),
        }
        return TemplateResponse(request, "admin/synclogs/order_log.html", context)


@admin.register(CreateOrderLog)
class CreateOrderLogAdmin(SyncLogAdminBase):
    pass


@admin.register(ConvertOrderToInvoiceLog)
class ConvertOrderToInvoiceLogAdmin(SyncLogAdminBase):
    pass


@admin.register(CreateInvoiceLog)
class CreateInvoiceLogAdmin(SyncLogAdminBase):
    pass


@admin.register(CreateOutboundLogisticLog)
class CreateOutboundLogisticLogAdmin(SyncLogAdminBase):
    pass


@admin.register(AddPaymentLog)
class AddPaymentLogAdmin(SyncLogAdminBase):
    pass


@admin.register(VoidInvoiceLog)
class VoidInvoiceLogAdmin(SyncLogAdminBase):
    pass


# --- the documents -----------------------------------------------------------------------------


class SalesOrderLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SalesOrderLine
    fields = [
        "line_id",
        "sku",
        "variant",
        "title",
        "quantity",
        "unit_price",
        "reserved",
        "deducted",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    denied_permissions = frozenset({"add"})

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("variant")


@admin.register(SalesOrder)
class SalesOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["order_number", "channel", "status", "remote_status", "total", "ordered_at"]
    list_filter = ["status", "state", "channel", ("ordered_at", DateRangeFilter)]
    list_select_related = ["channel"]
    # icontains on both (PostgreSQL: the trigram indexes of migration 0004).
    search_fields = ["order_number", "remote_id"]
    search_help_text = "Order number or marketplace order id, or any part of either."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice, over every order
    paginator = CappedCountPaginator
    inlines = [SalesOrderLineInline]
    fields = [
        "channel",
        "order_number",
        "log_link",
        "status",
        "remote_status",
        "state",
        "outlet",
        "currency",
        "total",
        "ordered_at",
        "remote_updated_at",
        "unmapped_lines",
        "documents_summary",
        "voided_at",
        "void_reason",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            .select_related("channel", "outlet", "invoice", "outbound_logistic", "payment")
        )

    @admin.display(description="Order Log")
    def log_link(self, obj: SalesOrder) -> str:
        return format_html(
            '<a href="{}">every sync log row</a>', order_log_url(obj.channel_id, obj.order_number)
        )

    @admin.display(description="Documents")
    def documents_summary(self, obj: SalesOrder) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in _documents_of(obj)))


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "received_at",
        "channel",
        "topic",
        "order_number",
        "state",
        "short_error",
        "processed_at",
    ]
    list_filter = ["topic", "held", "channel"]
    list_select_related = ["channel"]
    search_fields = ["=order_number", "=delivery_id"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = [
        "channel",
        "delivery_id",
        "topic",
        "order_number",
        "received_at",
        "held",
        "processed_at",
        "error",
        "payload_pretty",
    ]

    @admin.display(description="State")
    def state(self, obj: WebhookEvent) -> str:
        if obj.held:
            return state_badge("Held: channel paused", ORANGE)
        if obj.error:
            return state_badge("Failed" if obj.processed_at else "Retrying", RED)
        return state_badge("Processed", GREEN) if obj.processed_at else state_badge("Queued", GREY)

    @admin.display(description="Error")
    def short_error(self, obj: WebhookEvent) -> str:
        return clipped(obj.error, 120)

    exclude = ["payload"]
    denied_permissions = frozenset({"add", "change"})

    @admin.display(description="Payload")
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.payload)


# --- helpers -----------------------------------------------------------------------------------


def _actor(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    return f"user:{user.get_username()}" if user is not None and user.is_authenticated else ""


def _download(
    model_admin: admin.ModelAdmin, request: HttpRequest, channel: Channel, numbers: Any
) -> None:
    try:
        done = services.orders_download_by_number(
            channel=channel, order_numbers=numbers, actor=_actor(request)
        )
    except OrderSyncError as exc:
        model_admin.message_user(request, f"{channel.name}: {exc}", messages.ERROR)
        return
    _report_download(model_admin, request, channel, done)


def _report_download(
    model_admin: admin.ModelAdmin, request: HttpRequest, channel: Channel, done: Any
) -> None:
    if done.logs:
        counts: dict[int, int] = {}
        for row in done.logs:
            counts[row.status] = counts.get(row.status, 0) + 1
        orders = sorted({row.order_number for row in done.logs})
        links = format_html_join(
            ", ", '<a href="{}">{}</a>', ((order_log_url(channel.pk, n), n) for n in orders[:20])
        )
        summary = ", ".join(f"{n} × {code}" for code, n in sorted(counts.items()))
        model_admin.message_user(
            request,
            format_html(
                "{}: downloaded {} order(s) ({}): {}", channel.name, len(orders), summary, links
            ),
        )
    if done.not_found:
        model_admin.message_user(
            request,
            f"{channel.name} does not know these order numbers: {', '.join(done.not_found[:20])}",
            messages.WARNING,
        )
    if not done.logs and not done.not_found:
        model_admin.message_user(request, f"{channel.name}: no missing order to download.")


def _report_cells(row: selectors.ReportRow, up_to_id: int) -> dict[str, Any]:
    """A report row with, for every number, the link to exactly what it counts: the orders
    (one row each) behind the order counts, the rows behind the attention count."""
    # The report's range is whole days, the date range filter's unit: [since, until).
    last_day = (timezone.localtime(row.until) - timedelta(days=1)).date()
    base = {
        CHANNEL_PARAM: row.channel_id,
        FROM_PARAM: timezone.localtime(row.since).date().isoformat(),
        TO_PARAM: last_day.isoformat(),
        UP_TO_PARAM: up_to_id,
    }
    orders = {**base, ORDERS_PARAM: "each"}
    peak = max((n for _, n in row.days), default=0) or 1
    return {
        "row": row,
        "cells": [
            (value, changelist_url(row.action, **orders, **({STATUS_PARAM: code} if code else {})))
            for value, code in (
                (row.transactions, None),
                (row.successful, 200),
                (row.conflict, 409),
                (row.wrong_status, 400),
                (row.missing, 404),
            )
        ],
        "attention": (
            row.attention,
            changelist_url(row.action, **base, **{ATTENTION_PARAM: "yes"}),
        ),
        "bars": [
            {
                "day": day,
                "count": n,
                "height": max(2, round(40 * n / peak)) if n else 0,
                "url": changelist_url(
                    row.action,
                    **{**orders, FROM_PARAM: day.isoformat(), TO_PARAM: day.isoformat()},
                ),
            }
            for day, n in row.days
        ],
    }


def _documents_of(order: SalesOrder | None) -> list[str]:
    """One plain line per POS document of the order (for the Order Log and the order page).
    The order must come with its one-to-one documents selected (no query here)."""
    if order is None:
        return []
    found = [f"Sales order #{order.pk}: {order.get_status_display()}, total {order.total}"]
    invoice = _related(order, "invoice")
    if invoice is not None:
        voided = f", voided ({invoice.void_reason})" if invoice.voided_at else ""
        found.append(f"Invoice {invoice.number}: {invoice.total}{voided}")
    shipment = _related(order, "outbound_logistic")
    if shipment is not None:
        found.append(f"Outbound logistic: {shipment.courier or '—'} {shipment.tracking_number}")
    payment = _related(order, "payment")
    if payment is not None:
        found.append(f"Payment: {payment.amount} ({payment.method or '—'})")
    return found


def _related(order: SalesOrder, name: str) -> Any:
    try:
        return getattr(order, name)
    except ObjectDoesNotExist:  # a reverse one-to-one with no row
        return None
