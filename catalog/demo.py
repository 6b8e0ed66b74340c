"""A believable demo catalog: a few hundred products with variants, stock in three outlets.

An Indonesian shop: outlets in Jakarta, Bandung and Cikarang, prices in rupiah."""

import random
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils.text import slugify

from catalog.bundles import bundle_set_components
from catalog.models import Brand, Category, Outlet, Product, ProductImage, Variant
from catalog.services import stock_import_levels
from omni.actors import Actor

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

# category → (product nouns, option axes, price range). The category names are the
# marketplaces' own leaf categories, so demo products upload to every channel as they are.
RANGE = {
    "T-Shirts": (
        ["Cotton Tee", "Oversized Tee", "Pocket Tee", "Graphic Tee", "Batik Print Tee"],
        {"Color": ["Black", "White", "Navy", "Olive", "Maroon"], "Size": ["S", "M", "L", "XL"]},
        (89_000, 259_000),
    ),
    "Hoodies": (
        ["Zip Hoodie", "Fleece Hoodie", "Cropped Hoodie"],
        {"Color": ["Black", "Grey", "Navy"], "Size": ["S", "M", "L", "XL"]},
        (199_000, 459_000),
    ),
    "Sneakers": (
        ["Canvas Sneakers", "Running Shoes", "Slip-on Sneakers"],
        {"Color": ["Black", "White", "Tan"], "Size": ["39", "40", "41", "42", "43"]},
        (249_000, 899_000),
    ),
    "Mugs": (
        ["Ceramic Mug", "Enamel Mug", "Bamboo Cup", "Travel Mug"],
        {"Color": ["Natural", "Green", "Terracotta"]},
        (35_000, 149_000),
    ),
    "Storage Boxes": (
        ["Rattan Basket", "Stackable Box", "Teak Storage Box"],
        {"Size": ["Small", "Medium", "Large"]},
        (59_000, 325_000),
    ),
    "Earbuds": (["Wireless Earbuds", "Sport Earbuds"], {}, (149_000, 999_000)),
    "Power Banks": (["Power Bank 10000mAh", "Power Bank 20000mAh"], {}, (129_000, 459_000)),
    "Water Bottles": (
        ["Insulated Bottle", "Glass Bottle"],
        {"Color": ["Black", "Sage", "Sand"]},
        (79_000, 249_000),
    ),
}
ADJECTIVES = ["Classic", "Everyday", "Premium", "Essential", "Heritage", "Studio", "Travel", "Eco"]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    products: int
    variants: int
    outlets: int


# Served by the demo's own web server, so marketplaces (emulated) can download it on upload.
DEMO_IMAGE = "http://127.0.0.1:8000/static/omni/demo-product.png"


def demo_catalog_load(
    *, products: int = 300, seed: int = 7, image_url: str = DEMO_IMAGE
) -> DemoSummary:
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
        variants = _create_products(rng, products, brands, categories, image_url)
        levels = [(v.pk, o.pk, _demo_quantity(rng, o)) for v in variants for o in outlets]
        stock_import_levels(levels=levels, reference="demo catalog", actor=Actor(label="demo"))
        kits = _create_bundles(rng, variants)
    return DemoSummary(products + 1, len(variants) + len(kits), len(outlets))


def _create_bundles(rng, variants: list[Variant]) -> list[Variant]:
    """A “Gift set” product whose three variants are bundles of two or three catalog
    variants: they hold no stock, and sell what their components make."""
    product = Product.objects.create(name="Gift set", handle="gift-set", description="A bundle.")
    kits = []
    for n in range(3):
        kit = Variant.objects.create(
            product=product,
            sku=f"GIFT-{n + 1}",
            retail_price=Decimal(199_000 + 100_000 * n),
            options={"Set": f"No. {n + 1}"},
            position=n,
        )
        parts = rng.sample(variants, 2 + n % 2)
        bundle_set_components(
            bundle=kit, components=[(part, 1 + i % 2) for i, part in enumerate(parts)]
        )
        kits.append(kit)
    return kits


def _create_products(rng, count, brands, categories, image_url: str) -> list[Variant]:
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
                length_cm=Decimal(rng.randint(10, 40)),
                width_cm=Decimal(rng.randint(5, 30)),
                height_cm=Decimal(rng.randint(2, 20)),
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
        price = _shop_price(rng, low, high)
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
        images.append(ProductImage(product=product, url=image_url))
    Variant.objects.bulk_create(variants)
    ProductImage.objects.bulk_create(images)
    return variants


def _shop_price(rng, low: int, high: int) -> Decimal:
    """A rupiah price as Indonesian shops set them: 145,000, 149,000 or 149,900."""
    base = rng.randrange(low // 5000 + 1, high // 5000 + 1) * 5000
    return Decimal(base - rng.choice((0, 1000, 100)))


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
