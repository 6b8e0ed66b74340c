"""The order pipeline's API: Manual Download Order, the sync logs and their report, and the
marketplace webhooks.

Webhooks are the one write without a token: the marketplace signs each push, and the channel's
adapter checks that signature against the exact URL it was delivered to.
"""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router
from ninja.pagination import paginate

from channels.models import Channel
from omni.api_base import CountedPage, ErrorOut, Id, ValidationErrorOut, actor_of, responses
from synclogs import selectors
from synclogs.models import SyncLog
from synclogs.schemas import (
    DownloadOrdersIn,
    DownloadOrdersOut,
    ReportIn,
    ReportOut,
    SyncLogDetailOut,
    SyncLogFilterIn,
    SyncLogOut,
)
from synclogs.services import orders_download_by_number
from synclogs.webhooks import webhook_receive

router = Router(tags=["orders"])
_PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}


@router.post(
    "/channels/{channel_id}/orders/download",
    response=responses({200: DownloadOrdersOut}, 404, 409, 502),
    summary="Manual Download Order",
)
def orders_download(request: HttpRequest, channel_id: Id, payload: DownloadOrdersIn) -> Any:
    """Download the named orders from the marketplace now and run each through the order
    pipeline; answers the sync log rows written (a step already done is logged 409 and writes
    nothing twice) and the numbers the marketplace does not know.

    404 naming the numbers when the marketplace knows none of them (or refuses them); 422
    naming those that cannot be the marketplace's order numbers at all (characters its numbers
    never contain), before the marketplace is asked; 502 only when the marketplace cannot be
    asked or answers nonsense. Nothing is written in any of these cases."""
    channel = get_object_or_404(Channel, pk=channel_id)
    result = orders_download_by_number(
        channel=channel, order_numbers=payload.numbers, actor=actor_of(request).label
    )
    if not result.found:
        raise Http404(f"{channel.name} has no order numbered {', '.join(result.not_found[:20])}.")
    return {"logs": result.logs, "not_found": result.not_found}


@router.get("/sync-logs", response=responses({200: list[SyncLogOut]}), summary="Sync logs")
@paginate(CountedPage)
def sync_log_list(request: HttpRequest, filters: Query[SyncLogFilterIn]) -> Any:
    """Newest first. `action` is the tab (Create Order, Convert Order To Invoice, …), `status`
    the badge (200, 409, 400, 404). The log only grows: `count` is exact up to 1,000 rows and
    above that may lag by up to 30 seconds."""
    return selectors.sync_logs(
        action=filters.action,
        status=filters.status,
        channel_id=filters.channel,
        order_number=filters.order_number,
        since=filters.since,
        until=filters.until,
    )


@router.get(
    "/sync-logs/report",
    response=responses({200: ReportOut}),
    summary="Sync report of the last days",
)
def sync_log_report(request: HttpRequest, params: Query[ReportIn]) -> dict[str, Any]:
    """Per channel and step over the last `days` days (today included): transactions,
    successful, conflict, wrong status and missing, with a count per day. Each counts orders
    (an order retried three times is one transaction), not log rows. The rows behind a number:
    GET /api/sync-logs?channel=…&action=…&status=…&since=…&until=…"""
    rows = selectors.sync_report(days=params.days)
    since, until = selectors.report_range(days=params.days)
    return {"since": since, "until": until, "rows": rows}


@router.get(
    "/sync-logs/{log_id}",
    response=responses({200: SyncLogDetailOut}, 404),
    summary="One sync log row, with what it was based on",
)
def sync_log_get(request: HttpRequest, log_id: Id) -> SyncLog:
    return get_object_or_404(SyncLog.objects.select_related("channel"), pk=log_id)


@router.post(
    "/webhooks/{channel_id}",
    auth=None,
    response={
        200: None,
        400: None,
        401: None,
        404: ErrorOut,
        413: ErrorOut,
        422: ValidationErrorOut,
        503: None,
    },
    summary="Marketplace push (no token: signed by the marketplace)",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {}}}},
        # Refusals carry a plain-text reason, as marketplaces log it; success has no body.
        "responses": {status: {"content": _PLAIN_TEXT} for status in (400, 401, 503)},
    },
)
def webhook(request: HttpRequest, channel_id: Id) -> HttpResponse:
    """Give the marketplace this URL for the channel. A correctly signed push is kept once per
    delivery and answered 200 with an empty body (what Shopee expects); its order is then
    downloaded in the background. A missing or wrong signature is 401 and a malformed body
    400, with a plain-text reason; nothing is kept for either."""
    channel = get_object_or_404(Channel, pk=channel_id)
    receipt = webhook_receive(
        channel=channel,
        url=request.build_absolute_uri(),
        headers=request.headers,
        body=request.body,
    )
    response = HttpResponse(receipt.body, status=receipt.status)
    if receipt.body:
        response["Content-Type"] = receipt.content_type
    return response
