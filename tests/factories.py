"""Small factories for the catalog (and, later, channels)."""

from decimal import Decimal

import factory

from catalog.models import Brand, Category, Outlet, Product, Variant


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Brand {n}")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("name",)

    name = "T-Shirts"  # a marketplace category too, so uploads find it


class OutletFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Outlet
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"outlet-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Cotton Tee {n}")
    brand = factory.SubFactory(BrandFactory)
    category = factory.SubFactory(CategoryFactory)
    supplier = "PT Sumber Kain"
    supplier_price = Decimal("20.00")
    weight_kg = Decimal("0.250")


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    retail_price = Decimal("49.90")
    options = factory.LazyFunction(lambda: {"Color": "Black", "Size": "M"})


# What the channel admin form posts for the stock, SKU and price rules left at their defaults.
CHANNEL_FORM_RULES = {
    "stock_share_percent": 100,
    "stock_maximum": "",
    "stock_cutoff": "",
    "priority_threshold": "",
    "sku_strip_prefixes": "",
    "sku_strip_suffixes": "",
    "currency": "IDR",
    "price_markup_percent": "0",
    "price_markup_amount": "0",
    "price_round_step": "",
    "price_round_mode": "nearest",
    "price_ending": "0",
}
