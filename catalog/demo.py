"""A believable demo catalog: a few hundred products with variants, stock in three outlets."""

import random
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils.text import slugify

from catalog.models import Brand, Category, Outlet, Product, ProductImage, Variant
from catalog.services import Actor, stock_import_levels

OUTLETS = [
    ("jkt-central", "Jakarta Central Store", Outlet.Kind.STORE),
    ("bdg-dago", "Bandung Dago Store", Outlet.Kind.STORE),
    ("wh-cikarang", "Cikarang Warehouse", Outlet.Kind.WAREHOUSE),
]

BRANDS = [
    "Kaya Living",
    "Nusantara Wear",
    "Urban Batik",
    "Lumo",
    "Rimba Outdoor",
    "Dapur Ibu",
    "Voltra",
]

# category → (product nouns, option axes, price range)
RANGE = {
    "Apparel": (
        [
            "Cotton Tee",
            "Linen Shirt",
            "Batik Shirt",
            "Chino Pants",
            "Hoodie",
            "Polo Shirt",
            "Denim Jacket",
            "Jogger Pants",
            "Oversized Tee",
            "Kebaya Blouse",
        ],
        {"Color": ["Black", "White", "Navy", "Olive", "Maroon"], "Size": ["S", "M", "L", "XL"]},
        (89_000, 459_000),
    ),
    "Footwear": (
        ["Canvas Sneakers", "Leather Loafers", "Slip-on Sandals", "Running Shoes", "Trail Boots"],
        {"Color": ["Black", "White", "Tan"], "Size": ["39", "40", "41", "42", "43"]},
        (149_000, 899_000),
    ),
    "Home & Kitchen": (
        [
            "Bamboo Cup",
            "Ceramic Mug",
            "Teak Cutting Board",
            "Rattan Basket",
            "Glass Jar Set",
            "Enamel Pot",
            "Linen Napkins",
            "Stoneware Bowl",
        ],
        {"Color": ["Natural", "Green", "Terracotta"]},
        (35_000, 325_000),
    ),
    "Bags": (
        ["Canvas Tote", "Leather Backpack", "Sling Bag", "Weekender Duffel", "Laptop Sleeve"],
        {"Color": ["Black", "Natural", "Brown"]},
        (99_000, 749_000),
    ),
    "Electronics": (
        [
            "Wireless Earbuds",
            "Power Bank 10000mAh",
            "USB-C Charger 30W",
            "Bluetooth Speaker",
            "Smart LED Bulb",
        ],
        {},
        (79_000, 999_000),
    ),
}
ADJECTIVES = ["Classic", "Everyday", "Premium", "Essential", "Heritage", "Studio", "Travel", "Eco"]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    products: int
    variants: int
    outlets: int


def demo_catalog_load(*, products: int = 300, seed: int = 7) -> DemoSummary:
    """Create the demo catalog if the catalog is empty; a no-op otherwise (safe to re-run)."""
    if Product.objects.exists():
        return DemoSummary(Product.objects.count(), Variant.objects.count(), Outlet.objects.count())
    rng = random.Random(seed)
    with transaction.atomic():
        outlets = [
            Outlet.objects.get_or_create(code=c, defaults={"name": n, "kind": k})[0]
            for c, n, k in OUTLETS
        ]
        brands = [Brand.objects.get_or_create(name=b)[0] for b in BRANDS]
        categories = {c: Category.objects.get_or_create(name=c, parent=None)[0] for c in RANGE}
        variants = _create_products(rng, products, brands, categories)
        levels = [(v.pk, o.pk, _demo_quantity(rng, o)) for v in variants for o in outlets]
        stock_import_levels(levels=levels, reference="demo catalog", actor=Actor(label="demo"))
    return DemoSummary(products, len(variants), len(outlets))


def _create_products(rng, count, brands, categories) -> list[Variant]:
    product_rows: list[Product] = []
    plans: list[tuple[str, dict[str, list[str]], tuple[int, int]]] = []
    for index in range(count):
        category = rng.choice(list(RANGE))
        nouns, axes, prices = RANGE[category]
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
        brand = rng.choice(brands)
        product_rows.append(
            Product(
                handle=f"{slugify(name)}-{index + 1}",
                name=f"{brand.name} {name}",
                description=f"{name} by {brand.name}. Carefully made, easy to care for.",
                brand=brand,
                category=categories[category],
                weight_kg=Decimal(rng.randint(80, 2500)) / 1000,
                supplier=f"{brand.name} Supply",
                supplier_code=f"SUP-{index + 1:04d}",
                tax_rate=Decimal("11.00"),
            )
        )
        plans.append((category, axes, prices))
    Product.objects.bulk_create(product_rows)
    variants: list[Variant] = []
    images: list[ProductImage] = []
    for product, (_category, axes, (low, high)) in zip(product_rows, plans, strict=True):
        price = Decimal(rng.randrange(low, high, 1000))
        code = "".join(w[0] for w in product.name.split()[:4]).upper()
        for position, options in enumerate(_option_combinations(rng, axes)):
            suffix = "-".join(slugify(v).upper()[:3] for v in options.values())
            variants.append(
                Variant(
                    product=product,
                    sku=f"{code}{product.pk}" + (f"-{suffix}" if suffix else ""),
                    upc=f"899{rng.randrange(10**9, 10**10)}",
                    options=options,
                    retail_price=price,
                    position=position,
                )
            )
        images.append(
            ProductImage(product=product, url=f"https://img.example.com/p/{product.handle}.jpg")
        )
    Variant.objects.bulk_create(variants)
    ProductImage.objects.bulk_create(images)
    return variants


def _option_combinations(rng, axes: dict[str, list[str]]) -> list[dict[str, str]]:
    if not axes:
        return [{}]
    combos: list[dict[str, str]] = [{}]
    for axis, values in axes.items():
        chosen = rng.sample(values, k=rng.randint(1, min(3, len(values))))
        combos = [{**c, axis: v} for c in combos for v in chosen]
    return combos


def _demo_quantity(rng, outlet: Outlet) -> int:
    if rng.random() < 0.08:
        return 0
    return rng.randint(20, 200) if outlet.kind == Outlet.Kind.WAREHOUSE else rng.randint(0, 25)
