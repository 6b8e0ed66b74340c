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

Bare `pos_skus` put POS SKUs on generated listings whatever their titles and prices: enough for
benchmarks and tests that only count matches. Given `pos_variants` instead (`PosVariant`: SKU,
product name, option values, retail price), the shop lists the POS products as a seller does:
each POS product is one item with its variants, under the product's name (now and then with a
marketplace tag such as "[Ready Stock]"), with the POS option values and the POS price, up to
`MAX_MARKUP` above it and rounded as shops round; the shop's own products (SKUs the POS does not
know), blank SKUs, typing noise and re-listed items (duplicate SKUs) come on top, priced on the
POS's scale.

Fast enough for benchmarks: about two seconds per 100,000 listings.
"""

import random
import time
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

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
class PosVariant:
    """A POS variant as a shop lists it: its SKU, its product's name, its option values
    (name → value, {} for a product without variants) and its retail price, in the shop's
    currency. Variants with the same `product` key (when blank, the same `title`) are one POS
    product, listed as one item; `category` (a leaf name such as "T-Shirts") and `brand` are
    used when given."""

    sku: str
    title: str
    options: Mapping[str, str]
    price: Decimal
    product: str = ""
    category: str = ""
    brand: str = ""

    @property
    def product_key(self) -> str:
        return self.product or self.title


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

# How sellers dress a product's name on a marketplace, now and then.
TITLE_TAGS = (
    "[Ready Stock] {}",
    "READY {}",
    "{} Original",
    "[COD] {}",
    "{} - Terlaris",
)
# The tag of an item listed a second time (a duplicate listing of the same SKUs).
RELIST_TAGS = ("[Flash Sale] {}", "[Promo] {}", "[New Stock] {}")
# The most a shop marks a POS price up on a marketplace: 10 %.
MAX_MARKUP = Decimal("0.10")
# From this price on, prices are whole currency units (rupiah): rounded to 100, often x900.
WHOLE_UNIT_PRICE = Decimal(10_000)


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
    pos_variants: Sequence[PosVariant] = (),
    mix: ShopMix | None = None,
    now: float | None = None,
) -> list[ShopItem]:
    """`items` items for a shop, the same for the same seed (update times count back from `now`).

    With `pos_skus`, listings take POS SKUs in a shuffled order, each at most once (apart from
    the deliberate duplicates); once they run out, the rest get SKUs the POS does not know.

    With `pos_variants` (not with `pos_skus` too), the shop lists POS products in a shuffled
    order, each as one item carrying the product's name, option values and price (see the
    module's docstring); its own products, re-listings and blank SKUs come in `mix`'s shares,
    each at least once in a shop of three items or more. Once the POS products run out, the
    rest are the shop's own.
    """
    if pos_skus and pos_variants:
        raise ValueError("give pos_skus or pos_variants, not both")
    mix, at = mix or ShopMix(), time.time() if now is None else now
    if pos_variants:
        return _PosShopBuilder(seed, pos_variants, mix, at).build(items)
    return _ShopBuilder(seed, pos_skus, mix, at).build(items)


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


class _PosShopBuilder(_ShopBuilder):
    """A shop listing POS products as a seller does (see the module's docstring). Reuses the
    bare builder's option combinations, own SKUs and SKU typing noise."""

    def __init__(
        self, seed: int, pos_variants: Sequence[PosVariant], mix: ShopMix, now: float
    ) -> None:
        super().__init__(seed, (), mix, now)
        self.products = _pos_products(pos_variants)
        self.rng.shuffle(self.products)
        self.pos_keys = {v.sku.strip().lower() for product in self.products for v in product}
        self.prices: dict[str, list[Decimal]] = {}  # leaf name -> its POS products' prices
        for product in self.products:
            if product[0].price > 0:
                self.prices.setdefault(_leaf_of(product[0]).name, []).append(product[0].price)
        self.all_prices = [price for prices in self.prices.values() for price in prices]
        # The shop's own products are of the kinds it sells from the POS.
        self.own_leaves = [leaf for leaf in LEAVES if leaf.name in self.prices] or list(LEAVES)
        self.listed: list[tuple[str, _Leaf] | None] = []  # per item: name and leaf, or None

    def build(self, count: int) -> list[ShopItem]:
        shop: list[ShopItem] = []
        for kind in self.plan(count):
            if kind == "relist" and self.relistable(shop):
                shop.append(self.relisting(shop))
            elif kind == "pos" and self.next_pos < len(self.products):
                shop.append(self.pos_item(self.products[self.next_pos]))
                self.next_pos += 1
            else:
                shop.append(self.own_item())
        if count >= 3 and self.mix.blank_sku_share > 0:
            self.ensure_blank(shop)
        return shop

    def plan(self, count: int) -> list[str]:
        """What each item is: a POS product, one of the shop's own, or a re-listing. Shares
        are rounded, at least one of each in a shop of three items or more."""
        own = _share_count(self.mix.unknown_sku_share, count)
        relist = _share_count(self.mix.duplicate_sku_share, count)
        kinds = (["own"] * own + ["relist"] * relist)[:count]
        kinds += ["pos"] * (count - len(kinds))
        self.rng.shuffle(kinds)
        if kinds and kinds[0] == "relist":  # a re-listing needs an item listed before it
            first = next((n for n, kind in enumerate(kinds) if kind != "relist"), 0)
            kinds[0], kinds[first] = kinds[first], "relist"
        return kinds

    def pos_item(self, product: list[PosVariant]) -> ShopItem:
        """One POS product as one item: its name (maybe tagged), options and marked-up price."""
        rng, first = self.rng, product[0]
        listed = product
        if len(product) > 2 and rng.random() < 0.15:  # a variant the seller has not listed
            skipped = rng.randrange(len(product))
            listed = product[:skipped] + product[skipped + 1 :]
        names = tuple(dict.fromkeys(name for v in listed for name in v.options))
        markup, ends_in_900 = self.markup()
        variants = [
            ShopVariant(
                sku=self.pos_sku(v.sku),
                price=_marked_up(v.price, markup, ends_in_900),
                quantity=self.quantity(),
                options={name: str(v.options.get(name, "-")) for name in names},
            )
            for v in listed
        ]
        if not names and len(variants) > 1:  # variants told apart by nothing but their SKUs
            names = ("Variant",)
            for n, variant in enumerate(variants, start=1):
                variant.options = {"Variant": str(n)}
        name = rng.choice(TITLE_TAGS).format(first.title) if rng.random() < 0.3 else first.title
        description = f"{first.title}. {rng.choice(SELLING_POINTS)}"
        leaf = _leaf_of(first)
        return self.shop_item(leaf, name, first.brand, description, variants, names, first.title)

    def own_item(self) -> ShopItem:
        """A product the POS does not have: the shop's own SKUs (or none), POS-scale prices."""
        rng = self.rng
        leaf = rng.choice(self.own_leaves)
        brand, noun = rng.choice(BRANDS), rng.choice(leaf.nouns)
        name = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
        price = self.own_price(leaf)
        with_variants = rng.random() < self.mix.variant_share
        option_names, combos = self.combos(leaf) if with_variants else ((), [{}])
        variants = [
            ShopVariant(
                sku="" if rng.random() < self.mix.blank_sku_share else self.own_sku(leaf, options),
                price=price,
                quantity=self.quantity(),
                options=options,
            )
            for options in combos
        ]
        description = f"{noun}, {leaf.name.lower()} by {brand}. {rng.choice(SELLING_POINTS)}"
        return self.shop_item(leaf, name, brand, description, variants, option_names, name)

    def relistable(self, shop: list[ShopItem]) -> list[int]:
        return [
            n
            for n, item in enumerate(shop)
            if self.listed[n] is not None and any(v.sku for v in item.variants)
        ]

    def relisting(self, shop: list[ShopItem]) -> ShopItem:
        """An item listed a second time, with one or two of its SKUs: duplicate SKUs."""
        rng = self.rng
        source = rng.choice(self.relistable(shop))
        title, leaf = self.listed[source] or ("", LEAVES[0])
        carried = [v for v in shop[source].variants if v.sku]
        chosen = rng.sample(carried, k=min(len(carried), rng.randint(1, 2)))
        variants = [ShopVariant(v.sku, v.price, self.quantity(), dict(v.options)) for v in chosen]
        name = rng.choice(RELIST_TAGS).format(title)
        original = shop[source]
        return self.shop_item(
            leaf, name, original.brand, original.description, variants, original.option_names
        )

    def shop_item(
        self,
        leaf: _Leaf,
        name: str,
        brand: str,
        description: str,
        variants: list[ShopVariant],
        option_names: tuple[str, ...],
        title: str | None = None,
    ) -> ShopItem:
        """The item, noted for re-listing under `title` (its name without a tag; None for a
        re-listing, which is not listed again)."""
        rng = self.rng
        self.listed.append(None if title is None else (title, leaf))
        updated_at = self.latest - int(rng.random() * self.span)
        return ShopItem(
            name=name,
            department=leaf.department,
            category=leaf.name,
            brand=brand,
            description=description,
            weight_kg=Decimal(rng.randint(*leaf.weight_range)).scaleb(-3),
            status="inactive" if rng.random() < self.mix.inactive_share else "live",
            created_at=updated_at - rng.randint(0, 30 * DAY),
            updated_at=updated_at,
            variants=variants,
            option_names=option_names,
        )

    def markup(self) -> tuple[Decimal, bool]:
        """Half the sellers list at the POS price; the others add 2–8 %, often to a price
        ending in 900."""
        rng = self.rng
        if rng.random() < 0.5:
            return Decimal(0), False
        return Decimal(rng.randint(2, 8)).scaleb(-2), rng.random() < 0.6

    def own_price(self, leaf: _Leaf) -> Decimal:
        """About what the POS charges for its products of the kind, rounded as shops round."""
        rng = self.rng
        prices = self.prices.get(leaf.name) or self.all_prices
        if not prices:
            return Decimal(rng.randint(*leaf.price_range) * 100 + 90).scaleb(-2)
        raw = rng.choice(prices) * Decimal(rng.randint(80, 125)).scaleb(-2)
        return _shop_price(raw, ends_in_900=rng.random() < 0.6)

    def pos_sku(self, sku: str) -> str:
        if self.rng.random() < self.mix.blank_sku_share:
            return ""
        return self.noisy(sku.strip())

    def quantity(self) -> int:
        return 0 if self.rng.random() < 0.1 else self.rng.randint(1, 200)

    def ensure_blank(self, shop: list[ShopItem]) -> None:
        """Blank one SKU no other listing shares when chance left the shop without any."""
        variants = [v for item in shop for v in item.variants]
        if any(not v.sku for v in variants):
            return
        keys = Counter(v.sku.strip().lower() for v in variants)
        single = [v for v in variants if keys[v.sku.strip().lower()] == 1]
        if single:
            self.rng.choice(single).sku = ""


LEAF_BY_NAME = {leaf.name.lower(): leaf for leaf in LEAVES}


def _pos_products(pos_variants: Sequence[PosVariant]) -> list[list[PosVariant]]:
    """The POS variants grouped by product, in the order given; blank and repeated SKUs
    (letter case and spaces aside) left out."""
    products: dict[str, list[PosVariant]] = {}
    seen: set[str] = set()
    for variant in pos_variants:
        key = variant.sku.strip().lower()
        if key and key not in seen:
            seen.add(key)
            products.setdefault(variant.product_key, []).append(variant)
    return list(products.values())


def _leaf_of(pos: PosVariant) -> _Leaf:
    """The generator's leaf category for a POS product: by category name, else by a product
    noun in its name, else one picked by its key."""
    leaf = LEAF_BY_NAME.get(pos.category.strip().lower())
    if leaf is not None:
        return leaf
    title = pos.title.lower()
    for leaf in LEAVES:
        if any(noun.lower() in title for noun in leaf.nouns):
            return leaf
    return LEAVES[zlib.crc32(pos.product_key.encode()) % len(LEAVES)]


def _share_count(share: float, count: int) -> int:
    return 0 if share <= 0 or count < 3 else max(1, round(share * count))


def _shop_price(raw: Decimal, *, ends_in_900: bool) -> Decimal:
    """`raw` as a shop prices: whole amounts (rupiah) rounded up to 100, or down to one ending
    in 900; small amounts rounded up to 0.10, or down to one ending in .90."""
    whole = raw >= WHOLE_UNIT_PRICE
    step = Decimal(100) if whole else Decimal("0.10")
    if ends_in_900:
        unit = Decimal(1000) if whole else Decimal(1)
        return (raw // unit) * unit + step * 9
    return (raw / step).to_integral_value(rounding=ROUND_CEILING) * step


def _marked_up(price: Decimal, markup: Decimal, ends_in_900: bool) -> Decimal:
    """`price` plus `markup`, rounded as shops round; never below `price` nor more than
    MAX_MARKUP above it (the POS price itself when no rounding fits)."""
    if not markup or price <= 0:
        return price
    raw, ceiling = price * (1 + markup), price * (1 + MAX_MARKUP)
    for candidate in (
        _shop_price(raw, ends_in_900=ends_in_900),
        _shop_price(raw, ends_in_900=False),
    ):
        if price <= candidate <= ceiling:
            return candidate
    return price
