"""The channels' API: connecting and configuring channels, their statistic and product tabs,
scans, and the sales-channel manual inventory sync.

Interfaces only: parse, call the channels services and selectors, render. Credentials are
accepted (validated by the kind's schema) and never rendered.
"""

import json
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from catalog.models import Outlet
from channels import selectors, tabs
from channels.filters import ChannelFilter
from channels.listings import ActionReport, listings_download_to_pos, listings_upload
from channels.models import Channel, InventorySync, Scan
from channels.scans import scan_confirm_removal, scan_request
from channels.schemas import (
    ActionOut,
    ChannelFilterIn,
    ChannelIn,
    ChannelOut,
    ChannelPatch,
    ChannelWriteOut,
    DownloadIn,
    InventorySyncOut,
    InventorySyncQueuedOut,
    ScanIn,
    ScanOut,
    StatisticOut,
    TabFilterIn,
    TabRowOut,
    UploadIn,
)
from channels.services import channel_save
from omni.api_base import Id, Page, PageIn, actor_of, filtered, responses

router = Router(tags=["channels"])


def _channels() -> QuerySet[Channel]:
    """Channels with what ChannelOut shows. Cost: two queries for any number of channels."""
    return Channel.objects.select_related("order_outlet").prefetch_related(
        Prefetch("outlets", Outlet.objects.only("pk", "code"))
    )


def _channel(channel_id: int) -> Channel:
    return get_object_or_404(Channel, pk=channel_id)


@router.get("/channels", response=responses({200: list[ChannelOut]}), summary="List channels")
@paginate(Page)
def channel_list(request: HttpRequest, filters: Query[ChannelFilterIn]) -> QuerySet[Channel]:
    return filtered(ChannelFilter, filters, _channels().order_by("pk"))


@router.post(
    "/channels", response=responses({201: ChannelWriteOut}, 404, 409), summary="Connect a channel"
)
def channel_create(request: HttpRequest, payload: ChannelIn) -> Status:
    """Credentials are checked against the kind's schema (422 naming the field, never its
    value) and stored; the answer says only `credentials_set: true`. Names are unique, so
    posting the same channel twice connects it once."""
    data = payload.model_dump()
    channel = Channel(kind=payload.kind)
    warning = channel_save(channel=channel, data=data)
    return Status(201, _written(channel, warning))


@router.get(
    "/channels/{channel_id}", response=responses({200: ChannelOut}, 404), summary="Get a channel"
)
def channel_get(request: HttpRequest, channel_id: Id) -> Channel:
    return get_object_or_404(_channels(), pk=channel_id)


@router.patch(
    "/channels/{channel_id}",
    response=responses({200: ChannelWriteOut}, 404, 409),
    summary="Change a channel",
)
def channel_patch(request: HttpRequest, channel_id: Id, payload: ChannelPatch) -> Any:
    """Only the fields sent change; `credentials` replaces the stored set whole. Choosing
    `duplicate_sku_policy: update_all` also sets `inventory_sync_mode: fulfillment` and the
    answer carries the oversell warning."""
    channel = _channel(channel_id)
    warning = channel_save(
        channel=channel,
        data=payload.model_dump(exclude_unset=True),
        requested_by=actor_of(request).label,
    )
    return _written(channel, warning)


def _written(channel: Channel, warning: str) -> Any:
    fresh = _channels().get(pk=channel.pk)
    fresh.warning = warning
    return fresh


@router.get(
    "/channels/{channel_id}/statistic",
    response=responses({200: StatisticOut}, 404),
    summary="Channel Statistic",
)
def channel_statistic(request: HttpRequest, channel_id: Id) -> Any:
    """Live Product, Sold in Channel, Product not in POS and the last scan time."""
    return selectors.channel_statistic(_channel(channel_id))


# --- the product tabs ------------------------------------------------------------------------


class TabPageOut(Schema):
    items: list[TabRowOut]
    count: int


# Every row has every field of TabRowOut: those its tab does not fill are null.
ROW_KEYS = dict.fromkeys(TabRowOut.model_fields)


@router.get(
    "/channels/{channel_id}/listings",
    response=responses({200: TabPageOut}, 404),
    summary="The rows of one product tab",
)
def channel_listings(
    request: HttpRequest,
    channel_id: Id,
    filters: Query[TabFilterIn],
    page: Query[PageIn],
) -> HttpResponse:
    """Rows of `tab`, with the ids needed to act on each (listing id, item_id, variant_ref,
    variant id, product id), filtered by `sku` (normalised; as the POS has it or as the channel
    shows it, see channels.filters.TabFilter) and `q` (title or product name).
    Listing tabs are ordered by listing id (Multiple Listed SKU: grouped by SKU), POS tabs by
    variant id.

    `count` is exact up to 1,000 rows; above that it may lag changes by up to 30 seconds
    (counting 100,000 listings on every page would cost more than the page itself).
    Cost: the page query (two, ids then rows, for deep offsets), a bounded count; `in_pos` adds
    one query for where the page's variants are listed, `sku` two (the channel, its alias).
    """
    tab = tabs.BY_SLUG[filters.tab]
    # The selectors need only its id (existence is checked there); a SKU, its SKU rules.
    channel = _channel(channel_id) if filters.sku else Channel(pk=channel_id)
    rows = filtered(tab.filterset, filters, tab.queryset(channel), channel=channel)
    try:
        found = selectors.tab_page(
            tab=tab,
            channel=channel,
            rows=rows,
            offset=page.offset,
            limit=page.limit,
            count_key=f"listings:{channel_id}:{filters.tab}:{filters.sku}:{filters.q}",
        )
    except Channel.DoesNotExist as exc:
        raise Http404(str(exc)) from None
    # The rows are plain values already in TabRowOut's shape: validating fifty of them again
    # through the schema would cost more than the queries (the tests check them against it).
    items = [{**ROW_KEYS, **row} for row in found.rows]
    body = json.dumps({"items": items, "count": found.count}, cls=DjangoJSONEncoder)
    return HttpResponse(body, content_type="application/json; charset=utf-8")


# --- acting on the tabs ----------------------------------------------------------------------


@router.post(
    "/channels/{channel_id}/upload",
    response=responses({200: ActionOut}, 404, 409),
    summary="Upload POS variants to the channel",
)
def channel_upload(request: HttpRequest, channel_id: Id, payload: UploadIn) -> ActionReport:
    """Creates each chosen variant's product on the channel (with its unlisted active
    variants) and records the listings, so they move to Sold in Channel. Products already
    listed there are skipped with the reason, so uploading twice creates nothing twice.
    Runs while you wait: one marketplace call per product, plus image uploads."""
    return listings_upload(channel=_channel(channel_id), variant_ids=payload.variant_ids)


@router.post(
    "/channels/{channel_id}/download-to-pos",
    response=responses({200: ActionOut}, 404, 409),
    summary="Create POS products from Not in POS listings",
)
def channel_download(request: HttpRequest, channel_id: Id, payload: DownloadIn) -> ActionReport:
    """One POS product per channel item, its listings linked. Listings with a blank SKU are
    skipped with the reason (fill the SKU in on the marketplace and scan first); listings
    already mapped are left alone, so repeating it creates nothing twice."""
    return listings_download_to_pos(channel=_channel(channel_id), listing_ids=payload.listing_ids)


# --- scans -----------------------------------------------------------------------------------

FULL_SCAN = ScanIn()


@router.post(
    "/channels/{channel_id}/scans",
    response=responses({202: ScanOut}, 404, 409),
    summary="Scan a channel",
)
def scan_create(request: HttpRequest, channel_id: Id, payload: ScanIn = FULL_SCAN) -> Status:
    """`full` reads every listing; `updated` only those changed since the last scan. The body
    is optional: none means a full scan. Runs in the background: poll GET /api/scans/{id}.
    409 while another scan of the channel runs."""
    channel = _channel(channel_id)
    scan = scan_request(channel=channel, kind=payload.kind, requested_by=actor_of(request).label)
    return Status(202, scan)


@router.get(
    "/channels/{channel_id}/scans",
    response=responses({200: list[ScanOut]}, 404),
    summary="A channel's scans, newest first",
)
@paginate(Page)
def scan_list(request: HttpRequest, channel_id: Id) -> QuerySet[Scan]:
    return Scan.objects.filter(channel=_channel(channel_id)).order_by("-created_at", "-pk")


@router.get("/scans/{scan_id}", response=responses({200: ScanOut}, 404), summary="Get a scan")
def scan_get(request: HttpRequest, scan_id: Id) -> Scan:
    """Status (queued, running, succeeded, failed, to_confirm), progress and counts."""
    return get_object_or_404(Scan, pk=scan_id)


@router.post(
    "/scans/{scan_id}/confirm-removal",
    response=responses({200: ScanOut}, 404, 409),
    summary="Confirm a scan's held removal",
)
def scan_confirm_removal_api(request: HttpRequest, scan_id: Id) -> Scan:
    """A full scan that would remove more than the safety valve's share of the channel's
    listings ends `to_confirm` with `removal_held` listings: this marks them removed (those no
    scan has seen since). 409 when the scan holds no removal."""
    get_object_or_404(Scan, pk=scan_id)
    return scan_confirm_removal(scan_id=scan_id, confirmed_by=actor_of(request).label)


# --- inventory sync --------------------------------------------------------------------------


@router.post(
    "/channels/{channel_id}/inventory-sync",
    response=responses({202: InventorySyncQueuedOut}, 404),
    summary="Sync this channel's inventory now",
)
def inventory_sync_create(request: HttpRequest, channel_id: Id) -> Status:
    """The sales-channel manual sync: queues the full quantity of every mapped listing,
    whatever the channel's sync mode (BRIEF §4). Runs in the background; its record appears
    in GET /api/channels/{id}/inventory-syncs."""
    from django_q.tasks import async_task

    channel = _channel(channel_id)
    task_name = f"inventory-sync-{channel.pk}-{uuid.uuid4().hex[:12]}"
    requested_by = actor_of(request).label
    transaction.on_commit(
        lambda: async_task(
            "channels.tasks.inventory_sync",
            channel.pk,
            requested_by,
            task_name=task_name,
            group=f"inventory-{channel.pk}",
        )
    )
    return Status(
        202,
        {
            "channel_id": channel.pk,
            "task": task_name,
            "results": f"/api/channels/{channel.pk}/inventory-syncs",
        },
    )


@router.get(
    "/channels/{channel_id}/inventory-syncs",
    response=responses({200: list[InventorySyncOut]}, 404),
    summary="A channel's full inventory syncs, newest first",
)
@paginate(Page)
def inventory_sync_list(request: HttpRequest, channel_id: Id) -> QuerySet[InventorySync]:
    return InventorySync.objects.filter(channel=_channel(channel_id)).order_by("-created_at", "-pk")
