"""django-filter FilterSets behind the channels' API lists and product tabs."""

import django_filters
from django.db.models import QuerySet

from catalog.models import sku_key
from channels.models import Channel


class ChannelFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Channel.Kind.choices)
    is_active = django_filters.BooleanFilter()
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Channel
        fields = ["kind", "is_active"]


class ListingTabFilter(django_filters.FilterSet):
    """Sold in Channel, Not in POS, Multiple Listed SKU: rows are listings."""

    sku = django_filters.CharFilter(method="filter_sku")
    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains")

    def filter_sku(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # Uses the (channel, sku_key) index.
        return queryset.filter(sku_key=sku_key(value))


class VariantTabFilter(django_filters.FilterSet):
    """Not in Channel, In POS: rows are POS variants."""

    sku = django_filters.CharFilter(method="filter_sku")
    q = django_filters.CharFilter(field_name="product__name", lookup_expr="icontains")

    def filter_sku(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(sku_key=sku_key(value))
