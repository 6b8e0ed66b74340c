"""The Sync Logs menu: a tab per step plus All, the Order Log, the 7-day report with Manual
Download Order, and read-only pages for the POS documents the pipeline wrote.

Log changelists stay fast on millions of rows: no full COUNT(*) (`show_full_result_count`
off, a capped paginator), the channel joined in the same query, and every filter backed by an
index named in SyncLog.Meta.
"""

import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import DateFieldListFilter
from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from channels.models import Channel
from omni.admin_tools import (
    GREEN,
    GREY,
    ORANGE,
    RED,
    CappedCountPaginator,
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
SINCE_PARAM = "created_at__gte"
UNTIL_PARAM = "created_at__lt"


def badge(status: int) -> str:
    label = SyncLog.Status(status).label if status in SyncLog.Status.values else str(status)
    return state_badge(label, BADGE_COLOURS.get(status, GREY))


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


class SyncLogAdminBase(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A read-only tab of the Sync Logs (rows are deleted only by prune_synclogs)."""

    change_list_template = "admin/synclogs/synclog/change_list.html"
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice, over millions of rows
    list_per_page = 50
    list_select_related = ["channel"]
    list_display = ["created_at", "status_badge", "channel", "order_link", "short_message"]
    list_display_links = ["created_at"]
    list_filter = [
        "status",
        "channel",
        ("created_at", DateFieldListFilter),
    ]
    search_fields = ["=order_number"]
    search_help_text = "Order number, exactly as on the marketplace."
    date_hierarchy = None
    ordering = ["-created_at", "-id"]
    actions = ["download_orders"]
    fields = [
        "created_at",
        "status_badge",
        "action",
        "channel",
        "order_link",
        "origin",
        "actor",
        "message",
        "documents_links",
        "request_pretty",
        "response_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: SyncLog) -> str:
        return badge(obj.status)

    @admin.display(description="Order number", ordering="order_number")
    def order_link(self, obj: SyncLog) -> str:
        return format_html(
            '<a href="{}" title="This order\'s whole log">{}</a>',
            order_log_url(obj.channel_id, obj.order_number),
            obj.order_number,
        )

    @admin.display(description="Message")
    def short_message(self, obj: SyncLog) -> str:
        text = obj.message
        return text if len(text) <= 160 else text[:159] + "…"

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
        # Switching tabs keeps the channel, status and date filters.
        kept = {
            key: request.GET[key]
            for key in (CHANNEL_PARAM, STATUS_PARAM, SINCE_PARAM, UNTIL_PARAM, "q")
            if key in request.GET
        }
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

    list_display = [
        "created_at",
        "status_badge",
        "action",
        "channel",
        "order_link",
        "short_message",
    ]
    list_filter = ["status", "action", "channel", ("created_at", DateFieldListFilter)]

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
        rows = selectors.sync_report(days=7)
        context = {
            **self.admin_site.each_context(request),
            "title": "Sync Logs · last 7 days",
            "opts": self.model._meta,
            "rows": [_report_cells(row) for row in rows],
            "since": rows[0].since if rows else selectors.report_range()[0],
            "until": rows[0].until if rows else selectors.report_range()[1],
            "form": form,
            "channels": Channel.objects.filter(is_active=True),
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
                    "badge": badge(row.status),
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
    list_filter = ["status", "state", "channel"]
    list_select_related = ["channel"]
    search_fields = ["=order_number"]
    show_full_result_count = False
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
        return format_html_join(format_html("<br>"), "{}", ((line,) for line in _documents_of(obj)))


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


def _report_cells(row: selectors.ReportRow) -> dict[str, Any]:
    """A report row with, for every number, the link to exactly the rows behind it."""
    base = {
        CHANNEL_PARAM: row.channel_id,
        SINCE_PARAM: row.since.isoformat(),
        UNTIL_PARAM: row.until.isoformat(),
    }
    peak = max((n for _, n in row.days), default=0) or 1
    return {
        "row": row,
        "cells": [
            (value, changelist_url(row.action, **base, **({STATUS_PARAM: code} if code else {})))
            for value, code in (
                (row.transactions, None),
                (row.successful, 200),
                (row.conflict, 409),
                (row.wrong_status, 400),
                (row.missing, 404),
            )
        ],
        "bars": [
            {"day": day, "count": n, "height": max(2, round(40 * n / peak)) if n else 0}
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
