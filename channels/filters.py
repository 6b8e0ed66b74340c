"""django-filter FilterSets behind the channels' API lists and product tabs."""

from typing import Any

import django_filters
from django.db.models import QuerySet

from catalog.models import sku_key
from channels.models import Channel
from channels.sku_rules import SkuMapper


class ChannelFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Channel.Kind.choices)
    is_active = django_filters.BooleanFilter()
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Channel
        fields = ["kind", "is_active"]


class TabFilter(django_filters.FilterSet):
    """A product tab's rows of `channel`, narrowed by `sku`: the SKU as the POS has it, or as
    the channel shows it (the POS SKU the channel's rules match it to: an alias, a prefix or
    suffix taken off), trimmed and ignoring letter case. Uses the sku_key indexes."""

    sku = django_filters.CharFilter(method="filter_sku")

    def __init__(self, *args: Any, channel: Channel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel

    def filter_sku(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Cost: one query, for the channel's alias of `value`."""
        rules = SkuMapper.for_channel(self.channel, skus=[value])
        return queryset.filter(sku_key__in={sku_key(value), rules.key(value)})


class ListingTabFilter(TabFilter):
    """Sold in Channel, Not in POS, Multiple Listed SKU: rows are listings."""

    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains")


class VariantTabFilter(TabFilter):
    """Not in Channel, In POS: rows are POS variants."""

    q = django_filters.CharFilter(field_name="product__name", lookup_expr="icontains")
