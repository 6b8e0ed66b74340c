"""The catalog's API: outlets, products with variants, variant lookup by SKU, bundles'
components, stock changes.

Interfaces only: each endpoint parses its input, calls one catalog service or selector, and
renders. Domain errors are mapped to HTTP codes once, in omni/api.py.
"""

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.pagination import paginate

from catalog.bundles import bundle_set_components_by_sku
from catalog.filters import OutletFilter, ProductFilter, VariantFilter
from catalog.models import BundleComponent, Outlet, Product, Stock, Variant
from catalog.schemas import (
    BulkRowOut,
    ComponentOut,
    ComponentsIn,
    ComponentsOut,
    OutletAvailableOut,
    OutletFilterIn,
    OutletIn,
    OutletOut,
    ProductFilterIn,
    ProductIn,
    ProductOut,
    ProductPatch,
    StockAdjustIn,
    StockBulkIn,
    StockBulkOut,
    StockOut,
    VariantFilterIn,
    VariantRowOut,
)
from catalog.selectors import available_stock_by_outlet
from catalog.services import (
    BulkStockRow,
    product_create,
    product_delete,
    product_update,
    stock_bulk_set,
    stock_change_by_sku,
)
from omni.api_base import Id, Page, actor_of, filtered, responses
from omni.idempotency import HEADER, MAX_KEY_LENGTH, idempotent

router = Router(tags=["catalog"])

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Makes a retried `delta` apply once: a new unique value (e.g. a UUID) per "
    "adjustment, kept 24 hours.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": r"^[\x20-\x7e]+$",
    },
}


# --- outlets ---------------------------------------------------------------------------------


@router.get("/outlets", response=responses({200: list[OutletOut]}), summary="List outlets")
@paginate(Page)
def outlet_list(request: HttpRequest, filters: Query[OutletFilterIn]) -> QuerySet[Outlet]:
    return filtered(OutletFilter, filters, Outlet.objects.order_by("code"))


@router.post("/outlets", response=responses({201: OutletOut}, 409), summary="Create an outlet")
def outlet_create(request: HttpRequest, payload: OutletIn) -> Status:
    """Refused with 422 when the code is taken: creating the same outlet twice makes one."""
    outlet = Outlet(code=payload.code, name=payload.name, kind=payload.kind)
    outlet.full_clean()
    outlet.save()
    return Status(201, outlet)


@router.get(
    "/outlets/{outlet_id}", response=responses({200: OutletOut}, 404), summary="Get an outlet"
)
def outlet_get(request: HttpRequest, outlet_id: Id) -> Outlet:
    return get_object_or_404(Outlet, pk=outlet_id)


# --- products --------------------------------------------------------------------------------


def _variants() -> QuerySet[Variant]:
    """Variants with everything VariantOut shows but their product: whether each is a bundle
    (in the same query) and their stock rows (one more)."""
    stocks = Stock.objects.select_related("outlet").order_by("outlet__code")
    is_bundle = Exists(BundleComponent.objects.filter(bundle=OuterRef("pk")))
    return Variant.objects.annotate(is_bundle=is_bundle).prefetch_related(
        Prefetch("stocks", stocks)
    )


def _products() -> QuerySet[Product]:
    """Products with everything ProductOut shows. Cost: four queries for any page size."""
    return Product.objects.select_related("brand", "category").prefetch_related(
        "images", Prefetch("variants", _variants())
    )


@router.get("/products", response=responses({200: list[ProductOut]}), summary="List products")
@paginate(Page)
def product_list(request: HttpRequest, filters: Query[ProductFilterIn]) -> QuerySet[Product]:
    return filtered(ProductFilter, filters, _products().order_by("pk"))


@router.post("/products", response=responses({201: ProductOut}, 409), summary="Create a product")
def product_create_api(request: HttpRequest, payload: ProductIn) -> Status:
    """A product with its variants (at least one). SKUs must be unique once trimmed and
    ignoring letter case, in the payload and in the catalog: posting the same product twice
    is refused the second time (422 on the SKU)."""
    data = payload.model_dump(exclude_none=True)  # on create, null means "not given"
    variants = data.pop("variants")
    images = data.pop("images", ())
    product = product_create(fields=data, variants=variants, images=images)
    return Status(201, _products().get(pk=product.pk))


@router.get(
    "/products/{product_id}", response=responses({200: ProductOut}, 404), summary="Get a product"
)
def product_get(request: HttpRequest, product_id: Id) -> Product:
    return get_object_or_404(_products(), pk=product_id)


@router.patch(
    "/products/{product_id}",
    response=responses({200: ProductOut}, 404, 409),
    summary="Change a product",
)
def product_patch(request: HttpRequest, product_id: Id, payload: ProductPatch) -> Product:
    """Only the fields sent change. Synced fields, variants added and activation reach every
    channel listing the product (BRIEF §3); POS-only fields never do."""
    product = get_object_or_404(Product.objects.select_related("brand", "category"), pk=product_id)
    fields = payload.model_dump(exclude_unset=True, exclude={"variants", "images"})
    variants = [v.model_dump(exclude_unset=True) for v in payload.variants or []]
    images = None
    if "images" in payload.model_fields_set:
        images = payload.images or []  # null clears the list, like []
    product_update(product=product, fields=fields, variants=variants, images=images)
    return _products().get(pk=product.pk)


@router.delete(
    "/products/{product_id}",
    response=responses({204: None}, 404, 409),
    summary="Delete a product",
)
def product_delete_api(request: HttpRequest, product_id: Id) -> Status:
    """Deleted in the POS and, through catalog sync, on every channel listing it. A second
    DELETE answers 404. Refused with 409, naming the bundles, while one of its variants is a
    component of a bundle of another product."""
    product_delete(product=get_object_or_404(Product, pk=product_id))
    return Status(204, None)


# --- variants --------------------------------------------------------------------------------


@router.get("/variants", response=responses({200: list[VariantRowOut]}), summary="Find variants")
@paginate(Page)
def variant_list(request: HttpRequest, filters: Query[VariantFilterIn]) -> QuerySet[Variant]:
    variants = _variants().select_related("product")
    return filtered(VariantFilter, filters, variants.order_by("pk"))


@router.get(
    "/variants/{variant_id}/components",
    response=responses({200: ComponentsOut}, 404),
    summary="Get a bundle's components",
)
def components_get(request: HttpRequest, variant_id: Id) -> ComponentsOut:
    """The variant's components (empty when it is not a bundle) and what it has available at
    each outlet: for a bundle, the fewest whole bundles its components make there."""
    return _components_out(get_object_or_404(Variant, pk=variant_id))


@router.put(
    "/variants/{variant_id}/components",
    response=responses({200: ComponentsOut}, 404, 409),
    summary="Replace a bundle's components",
)
def components_put(request: HttpRequest, variant_id: Id, payload: ComponentsIn) -> ComponentsOut:
    """Make the variant a bundle of these components, replacing the list it had (an empty
    list makes it a plain variant again). A bundle holds no stock of its own: every channel
    is sent what its components make, and selling it reserves and deducts them. Sending the
    same list twice changes nothing.

    422: a SKU no variant has, or a SKU given twice (each named by its place in the list).
    409, nothing written: the variant would contain itself, directly or through another
    bundle; or it holds stock (on hand or reserved) at some outlet, which a bundle would
    ignore: bring it to 0 first.
    """
    variant = get_object_or_404(Variant, pk=variant_id)
    bundle_set_components_by_sku(
        bundle=variant, components=[(c.sku, c.quantity) for c in payload.components]
    )
    return _components_out(variant)


def _components_out(variant: Variant) -> ComponentsOut:
    """Cost: three queries for the components and the outlets, then available_stock_by_outlet's."""
    rows = list(variant.components.select_related("component__product").order_by("pk"))
    outlets = dict(Outlet.objects.order_by("code").values_list("pk", "code"))
    available = available_stock_by_outlet(variant_ids=[variant.pk], outlet_ids=list(outlets))
    return ComponentsOut(
        variant_id=variant.pk,
        sku=variant.sku,
        is_bundle=bool(rows),
        components=[
            ComponentOut(
                variant_id=row.component_id,
                sku=row.component.sku,
                product_name=row.component.product.name,
                quantity=row.quantity,
            )
            for row in rows
        ],
        available=[
            OutletAvailableOut(outlet=code, available=available[variant.pk][pk])
            for pk, code in outlets.items()
        ],
    )


# --- stock -----------------------------------------------------------------------------------


@router.post(
    "/stock/adjust",
    response=responses({200: StockOut}, 404, 409),
    summary="Adjust or set one SKU's stock at one outlet",
    openapi_extra={"parameters": [IDEMPOTENCY_KEY]},
)
@idempotent
def stock_adjust_api(request: HttpRequest, payload: StockAdjustIn) -> StockOut:
    """`delta` adds to on hand; `quantity` sets it (safe to repeat). Recorded in the ledger as
    an API single row update, which real-time channels receive. Unknown SKU or outlet → 404;
    a result below zero, or a bundle's SKU (its stock is its components') → 409, nothing
    written.

    To retry a `delta` safely, send an `Idempotency-Key` header (e.g. a UUID per adjustment):
    a repeat with the same key and body is answered again, with `Idempotent-Replayed: true`,
    without being applied twice; the same key with another body → 422. Keys are kept 24 hours.
    """
    stock = stock_change_by_sku(
        sku=payload.sku,
        outlet_code=payload.outlet,
        delta=payload.delta,
        quantity=payload.quantity,
        reference=payload.reference,
        actor=actor_of(request),
    )
    return StockOut(
        sku=payload.sku,
        outlet=payload.outlet,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        available=stock.available,
    )


@router.post(
    "/stock/bulk",
    response=responses({200: StockBulkOut}, 409),
    summary="Set counted stock for up to 10,000 rows",
)
def stock_bulk_api(request: HttpRequest, payload: StockBulkIn) -> StockBulkOut:
    """Each row sets one SKU's on hand at one outlet. A bad row (unknown SKU or outlet, a
    bundle's SKU, quantity out of range, the same SKU and outlet twice) is reported and the
    others are applied, all in one transaction, as an API bulk update (sent to real-time and
    fulfillment channels). Repeating the same request changes nothing."""
    results = stock_bulk_set(
        rows=[BulkStockRow(r.sku, r.outlet, r.quantity) for r in payload.rows],
        reference=payload.reference,
        actor=actor_of(request),
    )
    rows = [
        BulkRowOut(
            row=r.row,
            sku=r.sku,
            outlet=r.outlet,
            ok=r.ok,
            error=r.error,
            on_hand=r.on_hand,
            available=r.available,
        )
        for r in results
    ]
    applied = sum(r.ok for r in results)
    return StockBulkOut(applied=applied, refused=len(results) - applied, rows=rows)
