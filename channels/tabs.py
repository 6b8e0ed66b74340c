"""The six product tabs (BRIEF §2), declared once. Everything that shows a tab reads it here.

- the admin: the tab bar, and each tab's changelist (its proxy model, columns, order, actions);
- the API: GET /api/channels/{id}/listings?tab=<slug> (the slugs, each tab's page order and
  the fields its rows fill); Channel Statistic has its own endpoint, GET .../statistic;
- `bench scan`, which times each tab's admin page.

A tab's slug is its only spelling. The admin's URLs stay the ones Django derives from the
proxy models (/admin/channels/soldinchannel/): reach them through `changelist_url_name`.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

import django_filters
from django.db import models
from django.db.models import QuerySet

from channels import selectors
from channels.filters import ListingTabFilter, VariantTabFilter
from channels.models import (
    Channel,
    ChannelStatistic,
    InPos,
    MultipleListedSku,
    NotInChannel,
    NotInPos,
    SoldInChannel,
)
from omni.api_base import count_of


class Rows(StrEnum):
    """What one row of a tab is."""

    LISTINGS = "listings"  # a listing of the channel
    VARIANTS = "variants"  # a POS variant
    CHANNELS = "channels"  # a channel with its counts: one row per channel, side by side


class TabQueryset(Protocol):
    """The tab's rows for `channel`; `base` lets an admin proxy's queryset be narrowed."""

    def __call__(self, channel: Channel, base: QuerySet | None = None) -> QuerySet: ...


# The fields an API row of each kind fills; the rest of the row schema (TabRowOut) is null.
LISTING_FIELDS = (
    "sku",
    "title",
    "listing_id",
    "item_id",
    "variant_ref",
    "status",
    "price",
    "quantity",
    "variant_id",
    "product_id",
)
VARIANT_FIELDS = ("sku", "title", "price", "variant_id", "product_id")


@dataclass(frozen=True, slots=True)
class Tab:
    """One product tab. `ordering`, `columns` and `actions` shape its admin changelist;
    `api_ordering` and `api_fields` its rows in the API (both empty: the API does not list it).
    """

    slug: str  # its one spelling: the API's `tab` value, the benchmark's label
    title: str  # the tab bar's label
    proxy: type[models.Model]  # the model of its admin changelist
    rows: Rows
    queryset: TabQueryset  # a channels.selectors function
    ordering: tuple[str, ...]  # the admin's default order, served by an index; (): the model's
    columns: tuple[str, ...]  # the admin's columns: fields, or display methods of its admin
    actions: tuple[str, ...] = ()  # the admin's actions on chosen rows: methods of its admin
    api_ordering: tuple[str, ...] = ()  # a stable order, for paging by offset
    api_fields: tuple[str, ...] = ()  # what each of its API rows fills

    @property
    def changelist_url_name(self) -> str:
        """For `reverse()`: the admin changelist of this tab (the proxy model's)."""
        opts = self.proxy._meta
        return f"admin:{opts.app_label}_{opts.model_name}_changelist"

    def counted(self, channel: Channel) -> QuerySet:
        """The rows the tab bar counts: the statistic's rows are the channels, counted without
        the numbers each carries (which would join every listing only to count channels)."""
        return Channel.objects.all() if self.rows is Rows.CHANNELS else self.queryset(channel)

    @property
    def filterset(self) -> type[django_filters.FilterSet]:
        """What narrows the API's rows by `sku` and `q`."""
        return ListingTabFilter if self.rows is Rows.LISTINGS else VariantTabFilter


LISTING_COLUMNS = ("title", "sku_cell", "external_ref", "price", "quantity", "status_badge", "pos")
VARIANT_COLUMNS = (
    "sku_link",
    "product_name",
    "options_label",
    "retail_price",
    "is_active",
    "listed",
)
TITLE_ORDER = ("title", "id")  # served by the (channel, title, id) index
SKU_ORDER = ("sku_key",)  # served by the normalised-SKU index
DUPLICATES_ORDER = ("sku_key", "item_id", "variant_ref")  # grouped by SKU

SOLD_IN_CHANNEL = Tab(
    slug="sold_in_channel",
    title="Sold in Channel",
    proxy=SoldInChannel,
    rows=Rows.LISTINGS,
    queryset=selectors.sold_in_channel,
    ordering=TITLE_ORDER,
    columns=LISTING_COLUMNS,
    api_ordering=("pk",),
    api_fields=LISTING_FIELDS,
)
NOT_IN_POS = Tab(
    slug="not_in_pos",
    title="Not in POS",
    proxy=NotInPos,
    rows=Rows.LISTINGS,
    queryset=selectors.not_in_pos,
    ordering=TITLE_ORDER,
    columns=LISTING_COLUMNS,
    actions=("download_to_pos",),
    api_ordering=("pk",),
    api_fields=LISTING_FIELDS,
)
NOT_IN_CHANNEL = Tab(
    slug="not_in_channel",
    title="Not in Channel",
    proxy=NotInChannel,
    rows=Rows.VARIANTS,
    queryset=selectors.not_in_channel,
    ordering=SKU_ORDER,
    columns=VARIANT_COLUMNS,
    actions=("upload",),
    api_ordering=("pk",),
    api_fields=VARIANT_FIELDS,
)
IN_POS = Tab(
    slug="in_pos",
    title="In POS",
    proxy=InPos,
    rows=Rows.VARIANTS,
    queryset=selectors.in_pos,
    ordering=SKU_ORDER,
    columns=VARIANT_COLUMNS,
    actions=("upload",),
    api_ordering=("pk",),
    api_fields=(*VARIANT_FIELDS, "listed"),  # where the variant is listed on this channel
)
MULTIPLE_LISTED_SKU = Tab(
    slug="multiple_listed_sku",
    title="Multiple Listed SKU",
    proxy=MultipleListedSku,
    rows=Rows.LISTINGS,
    queryset=selectors.multiple_listed_sku,
    ordering=DUPLICATES_ORDER,
    columns=("sku_cell", "title", "external_ref", "status_badge", "found_at", "pos"),
    api_ordering=(*DUPLICATES_ORDER, "pk"),
    api_fields=LISTING_FIELDS,
)
CHANNEL_STATISTIC = Tab(
    slug="channel_statistic",
    title="Channel Statistic",
    proxy=ChannelStatistic,
    rows=Rows.CHANNELS,
    queryset=selectors.channels_with_tab_counts,
    ordering=(),  # by name, as channels are
    columns=(
        "channel_link",
        "live_product",
        "sold_in_channel",
        "not_in_pos",
        "chart",
        "last_scan",
        "scan_buttons",
    ),
)

# The tab bar's order: the seed's product menu.
TABS = (SOLD_IN_CHANNEL, NOT_IN_POS, NOT_IN_CHANNEL, IN_POS, MULTIPLE_LISTED_SKU, CHANNEL_STATISTIC)
BY_SLUG = {tab.slug: tab for tab in TABS}
API_TABS = tuple(tab.slug for tab in TABS if tab.api_fields)


def tab_counts(channel: Channel) -> dict[str, int]:
    """Each tab's row count for `channel`, as the tab bar shows it. Exact up to 1,000 rows;
    a larger count is kept for 30 seconds (omni.api_base.count_of), so a tab bar over 100,000
    listings costs a few bounded queries per page view, not six full counts."""
    return {
        tab.slug: count_of(tab.counted(channel), key=f"tab-count:{tab.slug}:{channel.pk}")
        for tab in TABS
    }


# The API's `tab` parameter: one of API_TABS (a Literal of a tuple is a Literal of its items).
ApiTab = Literal[API_TABS]  # type: ignore[valid-type]
