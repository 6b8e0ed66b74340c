"""The catalog's API shapes: what integrations send and receive for outlets, products, stock."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from catalog.bundles import MAX_QUANTITY as MAX_COMPONENT_QUANTITY
from catalog.models import Outlet, Product, Variant
from omni.api_base import (
    MAX_QUANTITY,
    Amount,
    BoundedDict,
    Choice,
    Id,
    InSchema,
    Text,
    Url,
    exactly_one_of,
)

OutletKind = Choice(Outlet.Kind)
Money = Amount(12, 2)
Weight = Amount(8, 3)
Dimension = Amount(8, 2)
TaxRate = Amount(5, 2)
Count = Annotated[int, Field(ge=0, le=2_147_483_647)]
Slug = Annotated[str, Field(pattern=r"^[-a-zA-Z0-9_]+$", min_length=1, max_length=40)]
Handle = Annotated[str, Field(pattern=r"^[-a-zA-Z0-9_]+$", min_length=1, max_length=120)]
Sku = Text(64, min_length=1)
Options = Annotated[
    BoundedDict(Text(60, min_length=1), Text(120), max_items=10),
    Field(description='Option values, e.g. {"Color": "Red", "Size": "M"}.'),
]


# --- outlets ---------------------------------------------------------------------------------


class OutletIn(InSchema):
    code: Slug = Field(description="Short code used in imports and the API, e.g. `jkt-01`.")
    name: Text(120, min_length=1)
    kind: OutletKind = Outlet.Kind.STORE


class OutletOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    is_active: bool


class OutletFilterIn(Schema):
    kind: OutletKind | None = None
    is_active: bool | None = None
    q: Text(120) | None = Field(None, description="Part of the code or name.")


# --- products and variants -------------------------------------------------------------------


class StockLevelOut(Schema):
    outlet: str = Field(description="The outlet's code.")
    on_hand: int
    reserved: int
    available: int

    @staticmethod
    def resolve_outlet(obj: Any) -> str:
        return obj.outlet.code


class VariantOut(Schema):
    id: int
    sku: str
    upc: str
    options: dict[str, Any]
    retail_price: Decimal
    is_active: bool
    position: int
    is_bundle: bool = Field(
        description="Made of other variants (see /variants/{variant_id}/components): it holds "
        "no stock of its own; its available stock is what its components make."
    )
    stock: list[StockLevelOut] = Field(description="Per outlet that has a stock row.")

    @staticmethod
    def resolve_stock(obj: Variant) -> list[Any]:
        return list(obj.stocks.all())

    @staticmethod
    def resolve_is_bundle(obj: Variant) -> bool:
        # Annotated by the queries that read variants (catalog.api._variants); asked of the
        # database only for a variant read some other way.
        annotated = getattr(obj, "is_bundle", None)
        return obj.components.exists() if annotated is None else bool(annotated)


class VariantRowOut(VariantOut):
    product_id: int
    product_name: str

    @staticmethod
    def resolve_product_name(obj: Variant) -> str:
        return obj.product.name


class ProductOut(Schema):
    id: int
    # synced to every channel where the product is listed
    name: str
    description: str
    brand: str | None
    category: str | None
    weight_kg: Decimal | None
    length_cm: Decimal | None
    width_cm: Decimal | None
    height_cm: Decimal | None
    is_active: bool
    images: list[str]
    variants: list[VariantOut]
    # POS-only: never sent to channels
    handle: str | None
    supplier: str
    supplier_code: str
    supplier_price: Decimal | None
    reorder_point: int | None
    reorder_quantity: int | None
    tax_rate: Decimal | None
    tags: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_brand(obj: Product) -> str | None:
        return obj.brand.name if obj.brand_id else None

    @staticmethod
    def resolve_category(obj: Product) -> str | None:
        return obj.category.name if obj.category_id else None

    @staticmethod
    def resolve_images(obj: Product) -> list[str]:
        return [image.url for image in obj.images.all()]

    @staticmethod
    def resolve_variants(obj: Product) -> list[Any]:
        return list(obj.variants.all())


class VariantIn(InSchema):
    sku: Sku = Field(description="Unique once trimmed and ignoring letter case.")
    upc: Text(32) = ""
    options: Options = Field(default_factory=dict)
    retail_price: Money
    is_active: bool = True


class VariantPatch(InSchema):
    """With `id`: that variant's fields to change. Without: a new variant (sku and
    retail_price required)."""

    id: Id | None = None
    sku: Sku | None = None
    upc: Text(32) | None = None
    options: Options | None = None
    retail_price: Money | None = None
    is_active: bool | None = None


class _ProductFields(InSchema):
    description: Text(20_000, strip=False) | None = None
    brand: Text(120) | None = Field(None, description="Brand name; created if new.")
    category: Text(120) | None = Field(None, description="Category name; created if new.")
    weight_kg: Weight | None = None
    length_cm: Dimension | None = None
    width_cm: Dimension | None = None
    height_cm: Dimension | None = None
    is_active: bool | None = None
    handle: Handle | None = None
    supplier: Text(120) | None = None
    supplier_code: Text(80) | None = None
    supplier_price: Money | None = None
    reorder_point: Count | None = None
    reorder_quantity: Count | None = None
    tax_rate: TaxRate | None = None
    tags: Text(255) | None = None
    images: Annotated[list[Url(500)], Field(max_length=20)] | None = Field(
        None, description="Image URLs, in order; replaces the list."
    )


class ProductIn(_ProductFields):
    name: Text(255, min_length=1)
    variants: Annotated[list[VariantIn], Field(min_length=1, max_length=100)]


class ProductPatch(_ProductFields):
    """Only the fields sent are changed. Synced fields reach every channel listing the
    product; POS-only fields never leave the POS."""

    name: Text(255, min_length=1) | None = None
    variants: Annotated[list[VariantPatch], Field(max_length=100)] | None = None


class ProductFilterIn(Schema):
    q: Text(120) | None = Field(None, description="Part of the name.")
    sku: Text(64) | None = Field(None, description="Products with a variant of this SKU.")
    brand: Text(120) | None = None
    category: Text(120) | None = None
    is_active: bool | None = None
    updated_since: datetime | None = None


class VariantFilterIn(Schema):
    sku: Text(64) | None = Field(
        None, description="Matched trimmed and ignoring letter case, like channel listings."
    )
    upc: Text(32) | None = None
    product: Id | None = Field(None, description="A product id.")
    is_active: bool | None = None


# --- stock -----------------------------------------------------------------------------------


class StockAdjustIn(InSchema):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("delta", "quantity"))

    sku: Sku
    outlet: Text(40, min_length=1) = Field(description="The outlet's code.")
    delta: Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)] | None = Field(
        None, description="Units to add (positive) or remove (negative)."
    )
    quantity: Annotated[int, Field(ge=0, le=MAX_QUANTITY)] | None = Field(
        None, description="The counted on-hand quantity to set."
    )
    reference: Text(120) = Field("", description="Kept in the stock ledger, e.g. a doc number.")

    @model_validator(mode="after")
    def _one_of(self) -> "StockAdjustIn":
        if (self.delta is None) == (self.quantity is None):
            raise ValueError("give exactly one of delta and quantity")
        return self


class StockOut(Schema):
    sku: str
    outlet: str
    on_hand: int
    reserved: int
    available: int


class BulkRowIn(InSchema):
    # Loosely typed on purpose: a bad row is reported in the answer, not refused with the body.
    sku: Annotated[str, Field(max_length=1000)]
    outlet: Annotated[str, Field(max_length=1000)]
    quantity: int


class StockBulkIn(InSchema):
    rows: Annotated[list[BulkRowIn], Field(min_length=1, max_length=10_000)]
    reference: Text(120) = ""


class BulkRowOut(Schema):
    row: int = Field(description="Position in the request, from 0.")
    sku: str
    outlet: str
    ok: bool
    error: str = Field(description="Why the row was refused; empty when it was applied.")
    on_hand: int | None
    available: int | None


class StockBulkOut(Schema):
    applied: int
    refused: int
    rows: list[BulkRowOut]


# --- bundles ---------------------------------------------------------------------------------


class ComponentIn(InSchema):
    sku: Sku = Field(description="The component's SKU: a variant, or another bundle.")
    quantity: Annotated[int, Field(ge=1, le=MAX_COMPONENT_QUANTITY)] = Field(
        description="Units of the component in one bundle."
    )


class ComponentsIn(InSchema):
    components: Annotated[list[ComponentIn], Field(max_length=100)] = Field(
        description="The bundle's whole list of components, each SKU once; it replaces the "
        "list it had. An empty list makes the variant a plain variant again."
    )


class ComponentOut(Schema):
    variant_id: int
    sku: str
    product_name: str
    quantity: int = Field(description="Units of the component in one bundle.")


class OutletAvailableOut(Schema):
    outlet: str = Field(description="The outlet's code.")
    available: int = Field(
        description="A bundle: the fewest whole bundles its components make there. Any other "
        "variant: on hand − reserved."
    )


class ComponentsOut(Schema):
    variant_id: int
    sku: str
    is_bundle: bool = Field(description="Whether it has components.")
    components: list[ComponentOut]
    available: list[OutletAvailableOut] = Field(description="Per outlet, by code.")
