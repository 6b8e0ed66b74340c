"""Reads shared by the admin tabs, the API and the services: the six product tabs (BRIEF §2),
declared in channels.tabs, and the pages of rows the API serves from them."""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from catalog.models import Variant
from channels.models import Channel, Listing
from omni.api_base import count_of

if TYPE_CHECKING:
    from channels.tabs import Tab

Status = Listing.Status


def _listings(channel: Channel, base: QuerySet | None) -> QuerySet:
    """`base` lets an admin proxy's queryset be narrowed without mixing models."""
    return (Listing.objects.all() if base is None else base).filter(channel=channel)


def sold_in_channel(channel: Channel, base: QuerySet | None = None) -> QuerySet[Listing]:
    """Listings mapped to a POS variant: the synced products."""
    return _listings(channel, base).present().mapped()


def not_in_pos(channel: Channel, base: QuerySet | None = None) -> QuerySet[Listing]:
    """Listings with no POS match: a blank SKU or a SKU the POS does not know."""
    return _listings(channel, base).present().unmapped()


def duplicated_sku_keys(channel: Channel) -> QuerySet:
    """Normalised SKUs carried by more than one present listing of the channel."""
    return (
        Listing.objects.filter(channel=channel)
        .present()
        .exclude(sku_key="")
        .values("sku_key")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values("sku_key")
    )


def multiple_listed_sku(channel: Channel, base: QuerySet | None = None) -> QuerySet[Listing]:
    """Listings of this channel sharing one SKU with another of its listings, grouped by SKU.

    Reads the `duplicate_sku` flag that scans, uploads and catalog deletes keep
    (channels.listing_store.listings_mark_duplicates), through its partial index: no grouping
    of the whole channel per page view.
    """
    return (
        _listings(channel, base)
        .filter(duplicate_sku=True)
        .order_by("sku_key", "item_id", "variant_ref")
    )


def listed_on(channel: Channel) -> Exists:
    return Exists(Listing.objects.filter(channel=channel, variant=OuterRef("pk")).present())


def not_in_channel(channel: Channel, base: QuerySet | None = None) -> QuerySet[Variant]:
    """Active POS variants with no listing on this channel."""
    variants = Variant.objects.all() if base is None else base
    return variants.filter(is_active=True, product__is_active=True).exclude(listed_on(channel))


def in_pos(channel: Channel | None = None, base: QuerySet | None = None) -> QuerySet[Variant]:
    """Every POS variant, whatever the channel; the admin and API show where each is listed."""
    return Variant.objects.all() if base is None else base


@dataclass(frozen=True, slots=True)
class ChannelStatistic:
    channel_id: int
    live_product: int
    sold_in_channel: int
    not_in_pos: int
    last_scan_at: datetime | None


TAB_COUNTS = ("live_product", "sold_in_channel", "not_in_pos")


def channels_with_tab_counts(
    channel: Channel | None = None, base: QuerySet | None = None
) -> QuerySet[Channel]:
    """Every channel, each annotated with the Channel Statistic counts (TAB_COUNTS): its live
    listings, and its present listings mapped to a POS variant and not.

    The one place these numbers are computed (the statistic tab and the API read them).
    `channel` is not used: the tab shows every channel side by side. Cost: one query, channels
    joined to their listings and grouped by channel.
    """
    present = ~Q(listings__status=Status.REMOVED)
    return (Channel.objects.all() if base is None else base).annotate(
        live_product=Count("listings", filter=Q(listings__status=Status.LIVE)),
        sold_in_channel=Count("listings", filter=present & Q(listings__variant__isnull=False)),
        not_in_pos=Count("listings", filter=present & Q(listings__variant__isnull=True)),
    )


def channel_statistic(channel: Channel) -> ChannelStatistic:
    """The Channel Statistic tab's numbers for one channel, in one query."""
    counts = (
        channels_with_tab_counts(base=Channel.objects.filter(pk=channel.pk))
        .values(*TAB_COUNTS)
        .get()
    )
    return ChannelStatistic(channel_id=channel.pk, **counts, last_scan_at=channel.last_scan_at)


# --- the API's pages of tab rows ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TabPage:
    rows: list[dict[str, Any]]  # each with the tab's `api_fields`
    count: int


def tab_page(
    *, tab: "Tab", channel: Channel, rows: QuerySet, offset: int, limit: int, count_key: str
) -> TabPage:
    """One page of `rows` (the tab's queryset for `channel`, filtered), in the tab's
    `api_ordering`, each row a dict of the tab's `api_fields`; and how many rows there are.

    `count` is exact up to 1,000 rows; above that it may lag changes by up to 30 seconds
    (omni.api_base.count_of, keyed by `count_key`, which must name the tab and its filters).
    Raises Channel.DoesNotExist for a channel that does not exist (checked only when the page
    is empty). Cost: the page query (two, ids then rows, for listings at deep offsets), a
    bounded count; rows carrying `listed` add one query for where the page's variants are
    listed.
    """
    rows = rows.order_by(*tab.api_ordering)
    if issubclass(rows.model, Listing):
        page = _listing_page(rows, offset, limit, tab.api_fields)
    else:
        page = _variant_rows(channel, rows[offset : offset + limit], tab.api_fields)
    if not page and not Channel.objects.filter(pk=channel.pk).exists():
        raise Channel.DoesNotExist(f"No channel {channel.pk}.")
    return TabPage(rows=page, count=count_of(rows, key=count_key))


# Below this offset, one joined query is cheapest; above it, joining before the OFFSET would
# join every skipped row too, so the page's ids come first from the listing table alone.
DEEP_OFFSET = 1000
# Listing row fields read under another name.
LISTING_EXPRESSIONS = {"listing_id": F("pk"), "product_id": F("variant__product_id")}


def _listing_page(
    rows: QuerySet[Listing], offset: int, limit: int, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    if offset < DEEP_OFFSET:
        return list(_listing_values(rows, fields)[offset : offset + limit])
    ids = list(rows.values_list("pk", flat=True)[offset : offset + limit])
    rows_by_id = _listing_values(Listing.objects.filter(pk__in=ids), fields)
    found = {row["listing_id"]: row for row in rows_by_id}  # every listing tab's rows carry it
    return [found[pk] for pk in ids if pk in found]


def _listing_values(rows: QuerySet[Listing], fields: tuple[str, ...]) -> QuerySet:
    return rows.values(
        *(name for name in fields if name not in LISTING_EXPRESSIONS),
        **{name: LISTING_EXPRESSIONS[name] for name in fields if name in LISTING_EXPRESSIONS},
    )


def _variant_rows(
    channel: Channel, variants: QuerySet[Variant], fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    page = list(
        variants.select_related("product").only(
            "pk", "sku", "options", "retail_price", "product__name"
        )
    )
    listed = _listed(channel, page) if "listed" in fields else {}
    rows = []
    for v in page:
        row = {
            "sku": v.sku,
            "title": f"{v.product.name} ({v.option_label})" if v.options else v.product.name,
            "price": v.retail_price,
            "variant_id": v.pk,
            "product_id": v.product_id,
            "listed": listed.get(v.pk, []),
        }
        rows.append({name: row[name] for name in fields})
    return rows


def _listed(channel: Channel, variants: list[Variant]) -> dict[int, list[dict[str, Any]]]:
    """Where each of `variants` is listed on `channel`. Cost: one query."""
    listed: dict[int, list[dict[str, Any]]] = {}
    for row in (
        Listing.objects.filter(channel=channel, variant_id__in=[v.pk for v in variants])
        .present()
        .order_by("pk")
        .values("variant_id", "item_id", "variant_ref", listing_id=F("pk"))
    ):
        listed.setdefault(row.pop("variant_id"), []).append(row)
    return listed
