"""Seeded, believable shop catalogues for every marketplace emulator.

`generate_shop(items, seed, pos_skus)` returns marketplace-neutral items; each emulator turns
them into its own records (Shopee items and models, Lazada products and SKUs, ...). The same seed
always gives the same shop, apart from update times, which count back from `now`.

What a generated shop contains, in proportions set by `ShopMix`:
- items with variants (one or two option names such as Color and Size, 1–6 variants) and items
  without (a single variant with no options);
- blank SKUs, SKUs the POS does not know, and duplicate SKUs (two listings sharing one);
- given `pos_skus`, most listings carry a POS SKU, some differing only in letter case or in
  surrounding spaces, as sellers type them;
- some items unlisted (inactive);
- update times spread over the past `history_days`, all at least an hour old, so a change made
  now is clearly newer than anything generated.

Fast enough for benchmarks: about two seconds per 100,000 listings.
"""

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

HOUR = 3600
DAY = 86400


@dataclass(slots=True)
class ShopVariant:
    """One sellable unit: an item's only variant, or one of its option combinations."""

    sku: str
    price: Decimal
    quantity: int
    options: dict[str, str] = field(default_factory=dict)  # {} for an item without variants


@dataclass(slots=True)
class ShopItem:
    """A marketplace item with its variants (exactly one, with no options, when it has none)."""

    name: str
    department: str  # top-level category, e.g. "Clothing"
    category: str  # leaf category, e.g. "T-Shirts"
    brand: str
    description: str
    weight_kg: Decimal
    status: str  # "live" | "inactive"
    created_at: int  # Unix seconds
    updated_at: int  # Unix seconds
    variants: list[ShopVariant]
    option_names: tuple[str, ...] = ()  # () for an item without variants
    item_sku: str = ""  # the parent SKU some sellers give an item with variants

    @property
    def has_variants(self) -> bool:
        return bool(self.option_names)


@dataclass(frozen=True, slots=True)
class ShopMix:
    """Proportions of a generated shop. Shares are fractions of items or listings, 0–1."""

    variant_share: float = 0.3  # items with variants
    max_variants: int = 6  # variants of one item, at most
    blank_sku_share: float = 0.03  # listings with no SKU
    unknown_sku_share: float = 0.08  # listings whose SKU the POS does not know (with pos_skus)
    duplicate_sku_share: float = 0.02  # listings reusing another listing's SKU
    sku_noise_share: float = 0.1  # POS SKUs typed in another case or with spaces around
    inactive_share: float = 0.05  # unlisted items
    history_days: int = 90  # update times spread over this many past days


@dataclass(frozen=True, slots=True)
class _Leaf:
    department: str
    name: str
    code: str  # SKU prefix
    nouns: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]  # option name -> values, 1 or 2 of them
    price_range: tuple[int, int]  # whole currency units
    weight_range: tuple[int, int]  # grams


COLORS = ("Black", "White", "Navy", "Red", "Olive", "Beige", "Grey", "Pink", "Blue", "Mustard")
SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = ("38", "39", "40", "41", "42", "43", "44")

LEAVES: tuple[_Leaf, ...] = (
    _Leaf(
        "Clothing",
        "T-Shirts",
        "TEE",
        ("Cotton Tee", "Graphic Tee", "V-Neck Tee", "Pocket Tee", "Oversized Tee"),
        (("Color", COLORS), ("Size", SIZES)),
        (8, 35),
        (150, 300),
    ),
    _Leaf(
        "Clothing",
        "Hoodies",
        "HOOD",
        ("Pullover Hoodie", "Zip Hoodie", "Fleece Hoodie"),
        (("Color", COLORS), ("Size", SIZES)),
        (25, 70),
        (400, 800),
    ),
    _Leaf(
        "Clothing",
        "Jeans",
        "JEAN",
        ("Slim Jeans", "Straight Jeans", "Mom Jeans", "Cargo Jeans"),
        (
            ("Color", ("Indigo", "Black", "Light Wash", "Grey")),
            ("Size", ("28", "30", "32", "34", "36")),
        ),
        (20, 80),
        (500, 900),
    ),
    _Leaf(
        "Clothing",
        "Dresses",
        "DRS",
        ("Wrap Dress", "Midi Dress", "Shirt Dress", "Slip Dress"),
        (("Color", COLORS), ("Size", SIZES[:5])),
        (18, 90),
        (200, 500),
    ),
    _Leaf(
        "Shoes",
        "Sneakers",
        "SNK",
        ("Canvas Sneakers", "Running Shoes", "Court Sneakers"),
        (("Color", ("White", "Black", "Grey", "Navy")), ("Size", SHOE_SIZES)),
        (30, 120),
        (600, 1100),
    ),
    _Leaf(
        "Household",
        "Mugs",
        "MUG",
        ("Ceramic Mug", "Travel Mug", "Enamel Mug", "Glass Mug"),
        (("Color", COLORS),),
        (4, 18),
        (250, 450),
    ),
    _Leaf(
        "Household",
        "Towels",
        "TWL",
        ("Bath Towel", "Hand Towel", "Beach Towel"),
        (("Color", COLORS), ("Size", ("Small", "Medium", "Large"))),
        (6, 30),
        (200, 700),
    ),
    _Leaf(
        "Household",
        "Storage Boxes",
        "BOX",
        ("Storage Box", "Drawer Organizer", "Laundry Basket"),
        (("Size", ("10L", "20L", "35L", "50L")),),
        (5, 25),
        (300, 1500),
    ),
    _Leaf(
        "Household",
        "Bedsheets",
        "BED",
        ("Fitted Sheet", "Duvet Cover", "Pillowcase Set"),
        (("Size", ("Single", "Double", "Queen", "King")),),
        (12, 60),
        (400, 1200),
    ),
    _Leaf(
        "Electronics",
        "Cables",
        "CBL",
        ("USB-C Cable", "Lightning Cable", "HDMI Cable", "Braided USB-C Cable"),
        (("Length", ("0.5m", "1m", "2m", "3m")),),
        (3, 20),
        (40, 150),
    ),
    _Leaf(
        "Electronics",
        "Earbuds",
        "EAR",
        ("Wireless Earbuds", "Sport Earbuds", "ANC Earbuds"),
        (("Color", ("Black", "White", "Blue")),),
        (15, 120),
        (60, 150),
    ),
    _Leaf(
        "Electronics",
        "Power Banks",
        "PWB",
        ("Slim Power Bank", "Fast-Charge Power Bank"),
        (("Capacity", ("5000mAh", "10000mAh", "20000mAh")),),
        (12, 50),
        (150, 450),
    ),
    _Leaf(
        "Electronics",
        "Phone Cases",
        "CASE",
        ("Clear Case", "Silicone Case", "Wallet Case"),
        (("Model", ("iPhone 14", "iPhone 15", "Galaxy S23", "Galaxy S24", "Pixel 8")),),
        (4, 25),
        (30, 90),
    ),
    _Leaf(
        "Beauty",
        "Lip Tint",
        "LIP",
        ("Velvet Lip Tint", "Water Lip Tint", "Glossy Lip Tint"),
        (("Shade", ("01 Coral", "02 Rose", "03 Berry", "04 Nude", "05 Brick")),),
        (5, 20),
        (20, 50),
    ),
    _Leaf(
        "Beauty",
        "Sunscreen",
        "SUN",
        ("Daily Sunscreen SPF50", "Tinted Sunscreen", "Sunscreen Stick"),
        (("Size", ("30ml", "50ml", "100ml")),),
        (8, 30),
        (40, 150),
    ),
    _Leaf(
        "Sports",
        "Yoga Mats",
        "YOGA",
        ("Yoga Mat", "Travel Yoga Mat", "Cork Yoga Mat"),
        (("Color", COLORS),),
        (15, 60),
        (900, 2500),
    ),
    _Leaf(
        "Sports",
        "Water Bottles",
        "BTL",
        ("Insulated Bottle", "Sports Bottle", "Glass Bottle"),
        (("Color", COLORS), ("Size", ("500ml", "750ml", "1L"))),
        (8, 35),
        (200, 450),
    ),
    _Leaf(
        "Sports",
        "Socks",
        "SOCK",
        ("Running Socks", "Ankle Socks", "Crew Socks 3-Pack"),
        (("Color", ("Black", "White", "Grey")), ("Size", ("S", "M", "L"))),
        (4, 15),
        (50, 120),
    ),
)

BRANDS = (
    "Northwind",
    "Kinfolk",
    "Urbanist",
    "Basics Co",
    "Tropica",
    "Halcyon",
    "Marlow",
    "Oakridge",
    "Luma",
    "Everyday",
)
ADJECTIVES = (
    "Classic",
    "Essential",
    "Premium",
    "Everyday",
    "Relaxed",
    "Eco",
    "Signature",
    "Pro",
    "Lite",
    "Heritage",
)
SELLING_POINTS = (
    "Made to last.",
    "Easy care.",
    "Best seller.",
    "Ships in 24 hours.",
    "New season.",
    "Limited stock.",
)


def category_ids(first_department: int, first_leaf: int) -> tuple[dict[str, int], dict[str, int]]:
    """A marketplace's category tree over the generator's catalogue: `{department: id}`
    numbered from `first_department` and `{leaf name: id}` from `first_leaf`, in catalogue
    order."""
    departments = dict.fromkeys(leaf.department for leaf in LEAVES)
    return (
        {name: first_department + n for n, name in enumerate(departments)},
        {leaf.name: first_leaf + n for n, leaf in enumerate(LEAVES)},
    )


def generate_shop(
    items: int,
    seed: int,
    pos_skus: Sequence[str] = (),
    *,
    mix: ShopMix | None = None,
    now: float | None = None,
) -> list[ShopItem]:
    """`items` items for a shop, the same for the same seed (update times count back from `now`).

    With `pos_skus`, listings take POS SKUs in a shuffled order, each at most once (apart from
    the deliberate duplicates); once they run out, the rest get SKUs the POS does not know.
    """
    return _ShopBuilder(
        seed, pos_skus, mix or ShopMix(), time.time() if now is None else now
    ).build(items)


class _ShopBuilder:
    """Holds the random state and the SKUs handed out while one shop is generated."""

    def __init__(self, seed: int, pos_skus: Sequence[str], mix: ShopMix, now: float) -> None:
        self.rng = random.Random(seed)
        self.mix = mix
        self.latest = int(now) - HOUR
        self.span = max(mix.history_days * DAY - HOUR, 1)
        self.pos_skus = list(dict.fromkeys(sku.strip() for sku in pos_skus if sku.strip()))
        self.rng.shuffle(self.pos_skus)
        self.pos_keys = {sku.lower() for sku in self.pos_skus}
        self.next_pos = 0
        self.serial = 0
        self.issued: list[str] = []  # non-blank SKUs handed out so far, for duplicates

    def build(self, count: int) -> list[ShopItem]:
        return [self.item() for _ in range(count)]

    def item(self) -> ShopItem:
        rng, leaf = self.rng, self.rng.choice(LEAVES)
        brand, noun = rng.choice(BRANDS), rng.choice(leaf.nouns)
        name = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
        base_price = rng.randint(*leaf.price_range)
        updated_at = self.latest - int(rng.random() * self.span)
        with_variants = rng.random() < self.mix.variant_share
        option_names, combos = self.combos(leaf) if with_variants else ((), [{}])
        variants = [self.variant(leaf, base_price, options) for options in combos]
        return ShopItem(
            name=name,
            department=leaf.department,
            category=leaf.name,
            brand=brand,
            description=f"{noun}, {leaf.name.lower()} by {brand}. {rng.choice(SELLING_POINTS)}",
            weight_kg=Decimal(rng.randint(*leaf.weight_range)).scaleb(-3),
            status="inactive" if rng.random() < self.mix.inactive_share else "live",
            created_at=updated_at - rng.randint(0, 30 * DAY),
            updated_at=updated_at,
            variants=variants,
            option_names=option_names,
        )

    def combos(self, leaf: _Leaf) -> tuple[tuple[str, ...], list[dict[str, str]]]:
        """Option names and 1..max_variants option combinations for one item."""
        rng, most = self.rng, self.mix.max_variants
        names = tuple(name for name, _ in leaf.options)
        if len(leaf.options) == 1:
            values = leaf.options[0][1]
            chosen = rng.sample(values, rng.randint(1, min(most, len(values))))
            return names, [{names[0]: value} for value in chosen]
        first_values, second_values = leaf.options[0][1], leaf.options[1][1]
        firsts = rng.sample(first_values, rng.randint(1, min(3, most, len(first_values))))
        per_first = max(1, most // len(firsts))
        seconds = rng.sample(second_values, rng.randint(1, min(per_first, len(second_values))))
        return names, [{names[0]: a, names[1]: b} for a in firsts for b in seconds]

    def variant(self, leaf: _Leaf, base_price: int, options: dict[str, str]) -> ShopVariant:
        rng = self.rng
        # Prices end in .90 or .00 as shops price them; variants differ a little.
        units = base_price + rng.choice((0, 0, 0, 1, 2, -1 if base_price > 5 else 0))
        price = Decimal(units * 100 + (90 if rng.random() < 0.6 else 0)).scaleb(-2)
        quantity = 0 if rng.random() < 0.1 else rng.randint(1, 200)
        return ShopVariant(
            sku=self.sku(leaf, options), price=price, quantity=quantity, options=options
        )

    def sku(self, leaf: _Leaf, options: dict[str, str]) -> str:
        """Blank, duplicate, unknown to the POS, a POS SKU (maybe mistyped) or the shop's own."""
        draw, mix = self.rng.random(), self.mix
        if draw < mix.blank_sku_share:
            return ""
        draw -= mix.blank_sku_share
        if draw < mix.duplicate_sku_share and self.issued:
            return self.rng.choice(self.issued)
        draw -= mix.duplicate_sku_share
        if self.pos_skus and draw >= mix.unknown_sku_share and self.next_pos < len(self.pos_skus):
            sku = self.noisy(self.pos_skus[self.next_pos])
            self.next_pos += 1
        else:
            sku = self.own_sku(leaf, options)
        self.issued.append(sku)
        return sku

    def own_sku(self, leaf: _Leaf, options: dict[str, str]) -> str:
        """A SKU of the shop's own making, never equal to a POS SKU."""
        while True:
            self.serial += 1
            suffix = "".join(f"-{value.replace(' ', '')[:3].upper()}" for value in options.values())
            sku = f"{leaf.code}-{self.serial:06d}{suffix}"
            if sku.lower() not in self.pos_keys:
                return sku

    def noisy(self, sku: str) -> str:
        """The POS SKU as typed on the marketplace: mostly exact, sometimes off in case or
        in spaces."""
        if self.rng.random() >= self.mix.sku_noise_share:
            return sku
        return self.rng.choice((sku.lower(), sku.upper(), f" {sku}", f"{sku} ", f" {sku.lower()} "))
