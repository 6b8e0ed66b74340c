"""Reads shared by the admin tabs, the API and the services: the six product tabs (BRIEF §2)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from catalog.models import Variant
from channels.models import Channel, Listing

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


def in_pos() -> QuerySet[Variant]:
    """Every POS variant; the admin and API show where each is listed."""
    return Variant.objects.all()


@dataclass(frozen=True, slots=True)
class ChannelStatistic:
    channel_id: int
    live_product: int
    sold_in_channel: int
    not_in_pos: int
    last_scan_at: datetime | None


def channel_statistic(channel: Channel) -> ChannelStatistic:
    """The Channel Statistic tab's numbers, in one aggregate query."""
    counts = Listing.objects.filter(channel=channel).aggregate(
        live=Count("pk", filter=Q(status=Status.LIVE)),
        sold=Count("pk", filter=Q(variant__isnull=False) & ~Q(status=Status.REMOVED)),
        unmapped=Count("pk", filter=Q(variant__isnull=True) & ~Q(status=Status.REMOVED)),
    )
    return ChannelStatistic(
        channel_id=channel.pk,
        live_product=counts["live"],
        sold_in_channel=counts["sold"],
        not_in_pos=counts["unmapped"],
        last_scan_at=channel.last_scan_at,
    )
