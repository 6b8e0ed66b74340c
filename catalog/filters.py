"""django-filter FilterSets behind the catalog's API lists."""

import django_filters
from django.db.models import Q, QuerySet

from catalog.models import Outlet, Product, Variant, sku_key


class OutletFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Outlet.Kind.choices)
    is_active = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="filter_q")

    class Meta:
        model = Outlet
        fields = ["kind", "is_active"]

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value))


class ProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    sku = django_filters.CharFilter(method="filter_sku")
    brand = django_filters.CharFilter(field_name="brand__name", lookup_expr="iexact")
    category = django_filters.CharFilter(field_name="category__name", lookup_expr="iexact")
    is_active = django_filters.BooleanFilter()
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Product
        fields = ["is_active"]

    def filter_sku(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # SKUs are unique once normalised, so this join matches each product at most once.
        return queryset.filter(variants__sku_key=sku_key(value))


class VariantFilter(django_filters.FilterSet):
    sku = django_filters.CharFilter(method="filter_sku")
    upc = django_filters.CharFilter()
    product = django_filters.NumberFilter(field_name="product_id")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Variant
        fields = ["upc", "is_active"]

    def filter_sku(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(sku_key=sku_key(value))
