"""TikTok Shop, and Tokopedia through it, behind omni's Adapter protocol.

TikTok's shape, in short: a product has 1 to 100 SKUs; several SKUs are told apart by sales
attributes (at most 3 names, e.g. Color and Size). omni's listing is the product itself when it
has a single SKU (variant_id "") and each SKU otherwise (variant_id = the SKU id). Stock and
prices are written one product per call and address SKUs by id, so the SKU id of a single-SKU
listing is looked up (one Get Product) unless this adapter has just read it.

Tokopedia: a Tokopedia shop bound to TikTok Shop ("TikTok Shop by Tokopedia") is served by the
same Partner API. Its products say where they are listed in `integrated_platform_statuses`
(`{"platform": "TOKOPEDIA", "status": ...}`) and its orders where they were placed in
`commerce_platform` (its values: `orders.py`). `TokopediaAdapter` keeps the products listed on
Tokopedia and the orders whose `commerce_platform` is `"TOKOPEDIA"`; `TikTokShopAdapter` keeps
every product of the shop (all are on TikTok Shop) and every order that is not Tokopedia's.
"""

import html
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from catalog.models import sku_key
from channels.adapters import kit
from channels.adapters.base import (
    AdapterError,
    CredentialsError,
    Limits,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    RemoteOrder,
    UploadProduct,
    UploadVariant,
    WebhookEvent,
    WebhookRejected,
    signature_matches,
)
from channels.adapters.convert import (
    decimal_text,
    header,
    to_decimal,
    utc_from_seconds,
    watermark_second,
)
from channels.adapters.http import download_image
from channels.adapters.paging import PageTally, reported_total
from channels.adapters.readahead import ReadAhead
from channels.adapters.tiktok.client import (
    ORDER_NOT_SELLERS,
    SERVICE,
    TikTokClient,
    webhook_signature,
)
from channels.adapters.tiktok.credentials import TikTokCredentials
from channels.adapters.tiktok.orders import (
    ORDER_ID,
    STATUS_TABLE,
    TIKTOK_SHOP,
    TOKOPEDIA,
    order_from_payload,
    webhook_event,
)
from channels.adapters.uploads import (
    category_id,
    check_distinct_options,
    check_option_names,
    option_names,
    option_value,
    require_variants,
    require_weight,
)

# Search returns at most 10,000 products per query; larger sets are split by time window.
SEARCH_CAP = 10_000
MAX_IMAGES = 9
MAX_SALES_ATTRIBUTES = 3
MAX_TITLE = 255
MAX_SELLER_SKU = 50
MAX_QUANTITY = 99_999  # Update Inventory takes 0 <= quantity < 99,999
PRODUCT_MISSING = 12052032  # "The product does not exist" in activate/deactivate/delete errors
# The currency of a shop's prices, by region (TikTok's Create Product documentation).
REGION_CURRENCY = {
    "US": "USD",
    "GB": "GBP",
    "ID": "IDR",
    "TH": "THB",
    "MY": "MYR",
    "PH": "PHP",
    "VN": "VND",
    "SG": "SGD",
}
# What identifier type a barcode of this many digits is, for `identifier_code`.
BARCODE_TYPES = {8: "EAN", 12: "UPC", 13: "EAN", 14: "GTIN"}
DAY = 86_400

Payload = dict[str, Any]


class TikTokShopAdapter(kit.BaseAdapter[TikTokCredentials, TikTokClient]):
    """omni's Adapter for one TikTok Shop (construction, credentials, the calls in flight and
    the worker pool: `kit.BaseAdapter`).
    `auth_base_url`, passed on to the client, is where tokens are refreshed (by default
    TikTok's auth host for TikTok's API host, else `base_url` itself).
    """

    kind = "tiktok_shop"
    service = SERVICE
    limits = Limits(
        page_size=100,
        detail_ids_per_call=1,  # Get Product takes one id
        # The SKUs per stock/price call are not documented; a product has at most 100 SKUs
        # where omni sells (300 in some markets), so 100 per call, split beyond that.
        stock_updates_per_call=100,
        price_updates_per_call=100,
        one_item_per_update=True,
        order_ids_per_call=50,
        order_window_days=None,  # Search Orders documents no widest window
        # Unpublished (marketplace-apis.md §2.6: the rate-limits page is not retrievable):
        # a conservative default; a channel sets its own, and 429s narrow the window anyway.
        max_in_flight=8,
    )
    STATUS_TABLE = STATUS_TABLE
    credentials_model = TikTokCredentials
    client_class = TikTokClient
    order_number_pattern = ORDER_ID
    order_number_form = "digits: the order id"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._single_sku: dict[str, str] = {}  # product id -> its only SKU id, as last read
        self._shop: Payload | None = None
        self._brands: dict[str, str] = {}
        self._warehouse: str | None = None

    # -- Adapter protocol ------------------------------------------------------------------

    def check_credentials(self) -> None:
        """One call (Get Authorized Shops): the keys and token must be accepted, and the
        channel's shop cipher must be one of the shops the token may act on."""
        self._shop = None
        self._authorized_shop()

    def iter_listing_pages(
        self, *, updated_since: datetime | None = None
    ) -> Iterator[list[RemoteListing]]:
        """One list of listings per Search Products page (up to 100 products).

        Costs per page: one search call and one Get Product per product with several SKUs
        (for the SKUs' option names). Search pages follow a cursor, so they are read one after
        another, but ahead of the pages' Get Product calls, which run up to `max_in_flight` at
        once while the next pages are searched (`kit.read_ahead`). A full scan lists every
        product but deleted ones. With `updated_since`, products changed from that second on
        come back, then those deleted since, as "removed" (a second search, status DELETED).
        Over 10,000 matching products, searches are split by time window (TikTok's cap), at
        the cost of one extra search per split. Take the next watermark before calling.
        A search read incompletely raises IncompleteRead (see `_pages`).
        """
        if updated_since is None:
            searches: list[tuple[Payload, str]] = [({}, "create_time")]
        else:
            window = {"update_time_ge": watermark_second(updated_since)}
            searches = [(window, "update_time"), ({**window, "status": "DELETED"}, "update_time")]

        def walk(ahead: ReadAhead[Any]) -> Iterator[tuple[list[Payload], int]]:
            for filters, time_field in searches:
                yield from self._search(ahead, filters, time_field)

        with self.pool() as pool_map:

            def read(page: tuple[list[Payload], int]) -> list[RemoteListing]:
                products, depth = page
                return self._page_listings(products, pool_map, depth=depth)

            for listings in self.read_ahead(walk, read):
                if listings:
                    yield listings

    def create_product(self, product: UploadProduct) -> list[RemoteListing]:
        """Create and list the product with its SKUs; the listings TikTok now holds.

        Calls: Get Authorized Shops, Get Categories, Get Brands and Get Warehouses (once per
        adapter each), one image download and upload per image (the first 9), Create Product,
        Deactivate Products when the product is inactive in the POS, and Get Product.
        Everything that can be checked here is checked before TikTok is asked to change.
        """
        names = _option_names(product, self.service)
        body = self._product_body(product, names)
        created = self._client.create_product(body)
        product_id = str(created.get("product_id") or "")
        if not product_id:
            raise AdapterError(
                f"{self.service} accepted {product.name!r} but returned no product id: check "
                "Seller Center before uploading again",
                retryable=False,
                code="create_product",
            )
        if not product.is_active:
            try:
                self.set_active(product_id, False)
            except AdapterError as exc:
                raise AdapterError(
                    f"{self.service} created product {product_id} but did not unlist it: {exc} "
                    "Unlist it in Seller Center.",
                    retryable=False,
                    code=exc.code,
                ) from exc
        with self.read_back(f"product {product_id}"):
            return self._listings_of(product_id)

    def update_quantities(self, updates: Sequence[QuantityUpdate]) -> list[PushResult]:
        """Absolute quantities; one Update Inventory call per product and 100 SKUs, in order.

        The quantity goes to the channel's warehouse (`warehouse_id`), or to the SKU's only
        warehouse when none is set. A refused call fails only its own listings (credential
        errors stop everything); a SKU in TikTok's `errors[]` fails with TikTok's reason.
        Extra cost: one Get Product per single-SKU product this adapter has not read yet.
        """
        warehouse = self.credentials.warehouse_id

        def row(sku_id: str, update: QuantityUpdate) -> Payload:
            entry: Payload = {"quantity": update.quantity}
            if warehouse:
                entry["warehouse_id"] = warehouse
            return {"id": sku_id, "inventory": [entry]}

        def local_problem(update: QuantityUpdate) -> str:
            if update.quantity >= MAX_QUANTITY:
                return f"{self.service} takes quantities below {MAX_QUANTITY:,}"
            return ""

        return self._push(
            updates,
            self.limits.stock_updates_per_call,
            lambda product_id, rows: self._client.update_inventory(product_id, rows),
            row,
            local_problem,
        )

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Pre-tax prices in the shop's currency; one Update Price call per product and 100
        SKUs. TikTok applies a call in full or refuses it whole (a price lock during a
        promotion, a SKU that is gone), so a refusal fails every listing of that call."""

        def row(sku_id: str, update: PriceUpdate) -> Payload:
            amount = {
                "amount": decimal_text(update.price, trimmed=True),
                "currency": self._currency(),
            }
            return {"id": sku_id, "price": amount}

        def local_problem(update: PriceUpdate) -> str:
            if not update.price.is_finite() or update.price <= 0:
                return f"{self.service} needs a price above 0"
            return ""

        return self._push(
            updates,
            self.limits.price_updates_per_call,
            lambda product_id, rows: self._client.update_prices(product_id, rows),
            row,
            local_problem,
        )

    # -- catalog pushes --------------------------------------------------------------------

    def update_product(self, item_id: str, product: UploadProduct) -> None:
        """Overwrite the product's synced fields (Partial Edit: only the fields sent change),
        then its SKUs' prices, matched by SKU.

        Calls: image downloads and uploads, Partial Edit Product, Get Product, and one
        Update Price per 100 SKUs. POS-only fields are not in UploadProduct, so they cannot go.
        """
        body = self._edit_fields(product)
        self._client.partial_edit_product(item_id, body)
        detail = self._client.get_product(item_id)
        skus = detail.get("skus") or []
        self._remember(item_id, skus)
        updates = _price_updates(item_id, product, skus)
        failed = [r for r in self.update_prices(updates) if not r.ok]
        if failed:
            raise AdapterError(
                f"{self.service} updated product {item_id} but refused {len(failed)} price(s): "
                f"{failed[0].error}",
                retryable=any(r.retryable for r in failed),
                code="update_price",
            )

    def add_variants(
        self, item_id: str, product: UploadProduct, new: Sequence[UploadVariant]
    ) -> list[RemoteListing]:
        """Add POS variants as new SKUs (Edit Product with every SKU, the new ones without
        ids); the new listings. Variants whose SKU the product already has are not added
        again, so a repeated push has one effect. Calls: Get Product, Edit Product, Get
        Product, and Get Warehouses once per adapter."""
        detail = self._client.get_product(item_id)
        skus = detail.get("skus") or []
        names = [str(a["name"]) for a in (skus[0].get("sales_attributes") or [])] if skus else []
        if not names:
            raise AdapterError(
                f"{self.service} product {item_id} has no variants to add to: upload the "
                "product again as a product with options",
                retryable=False,
                code="param",
            )
        have = {sku_key(sku.get("seller_sku", "")) for sku in skus}
        wanted = {sku_key(v.sku) for v in new}
        missing = [v for v in new if sku_key(v.sku) not in have]
        if missing:
            rows = [self._existing_sku_row(sku) for sku in skus]
            rows += [self._sku_row(product, v, names) for v in missing]
            self._client.edit_product(item_id, {**_kept_fields(detail), "skus": rows})
        return [lst for lst in self._listings_of(item_id) if sku_key(lst.sku) in wanted]

    def set_active(self, item_id: str, active: bool) -> None:
        """List (Activate Products) or unlist (Deactivate Products) the product."""
        if active:
            answer = self._client.activate_products([item_id])
        else:
            answer = self._client.deactivate_products([item_id])
        errors = answer.get("errors") or []
        if errors:
            raise AdapterError(
                f"{self.service} could not {'list' if active else 'unlist'} product {item_id}: "
                f"{_reason(errors[0])}",
                retryable=False,
                code=str(errors[0].get("code") or "status"),
            )

    def delete_product(self, item_id: str) -> None:
        """Delete the product. One already deleted (or unknown) is left as it is: the goal,
        no such product on the channel, holds."""
        errors = self._client.delete_products([item_id]).get("errors") or []
        refused = [e for e in errors if e.get("code") != PRODUCT_MISSING]
        if refused:
            raise AdapterError(
                f"{self.service} could not delete product {item_id}: {_reason(refused[0])}",
                retryable=False,
                code=str(refused[0].get("code") or "delete"),
            )

    # -- orders ----------------------------------------------------------------------------

    def order_pages(self, start: int, end: int) -> Iterator[list[RemoteOrder]]:
        """Orders updated in the window (`kit.BaseAdapter.iter_orders`: the whole range, in
        whole seconds), a page (up to 100) at a time, oldest update first, line items included:
        one Search Orders call per page, no detail calls. Orders of the other platform of the
        shop are left out of the pages.

        IncompleteRead (retryable: the download keeps its watermark) for a page empty or
        short while a `next_page_token` says more follow, and for a search ending short of its
        `total_count` (channels.adapters.paging).
        """
        filters = {"update_time_ge": start, "update_time_lt": end}
        tally = PageTally(self.service, "orders", self.limits.page_size)
        token = ""
        while True:
            page = self._client.search_orders(
                page_size=self.limits.page_size, page_token=token, filters=filters
            )
            orders = page.get("orders") or []
            token = str(page.get("next_page_token") or "")
            tally.page(len(orders), more=bool(token), total=reported_total(page.get("total_count")))
            kept = self._remote_orders(orders)
            if kept:
                yield kept
            if not token:
                return

    def orders_by_number(self, numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders of one Get Order Detail call (up to 50 ids; TikTok's order number
        is its order id, all digits: `order_number_pattern`).

        Orders of the shop's other platform are left out, and so are ids that are not this
        seller's: TikTok refuses the whole call for one of those (21008111, "does not belong to
        the current seller"), so such a call is asked again in halves until each unknown id
        stands alone. Cost: one call per 50 ids, plus about 2·log2(50) calls per unknown id.
        """
        return self._remote_orders(self._order_details(numbers))

    def _order_details(self, ids: Sequence[str]) -> list[Payload]:
        """Get Order Detail's `orders` for `ids`, leaving out the ids TikTok says are not
        this seller's."""
        try:
            answer = self._client.get_orders(ids)
        except AdapterError as exc:
            if exc.code != str(ORDER_NOT_SELLERS):
                raise
            if len(ids) == 1:
                return []
            middle = len(ids) // 2
            return self._order_details(ids[:middle]) + self._order_details(ids[middle:])
        return list(answer.get("orders") or [])

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check a push as TikTok signs it: `Authorization` = lowercase hex
        HMAC-SHA256(app_secret, app_key + raw body). TikTok does not sign the callback URL, so
        `url` plays no part. Dedupe key: `tts_notification_id`."""
        given = header(headers, "authorization")
        if not given.strip():
            raise WebhookRejected(
                f"{self.service} push without an Authorization header", status=401
            )
        creds = self.credentials
        expected = webhook_signature(
            app_key=creds.app_key, app_secret=creds.app_secret.get_secret_value(), body=body
        )
        if not signature_matches(given.strip().lower(), expected):
            raise WebhookRejected(f"{self.service} push with a wrong signature", status=401)
        return webhook_event(body, service=self.service)

    # -- platform (overridden for Tokopedia) -----------------------------------------------

    def _status_if_listed(self, product: Mapping[str, Any]) -> str | None:
        """`_listing_status` of a product this channel lists; None for one it does not (every
        product of a TikTok Shop is listed)."""
        return self._listing_status(product)

    def _listing_status(self, product: Mapping[str, Any]) -> str:
        return _status(str(product.get("status") or product.get("product_status") or ""))

    def _keeps_order(self, order: Mapping[str, Any]) -> bool:
        return str(order.get("commerce_platform") or TIKTOK_SHOP) != TOKOPEDIA

    # -- reading listings ------------------------------------------------------------------

    def _search(
        self, ahead: ReadAhead[Any], filters: Payload, time_field: str
    ) -> Iterator[tuple[list[Payload], int]]:
        """Pages of products matching `filters`, split into time windows of at most 10,000
        products when there are more (`time_field`: create_time or update_time), each with
        how many calls deep it is (every page needed the one before; a window's first, the
        search it was split from)."""
        first = self._search_page(ahead, filters)
        # A search reporting exactly the cap may have stopped counting there: split it too.
        if int(first.get("total_count") or 0) < SEARCH_CAP:
            yield from self._pages(ahead, filters, first, 1)
            return
        low = int(filters.get(f"{time_field}_ge", 0))
        # Tomorrow as the upper bound: a few seconds of clock skew cannot hide new products.
        yield from self._split(ahead, filters, time_field, low, int(self._clock()) + DAY, 2)

    def _split(
        self,
        ahead: ReadAhead[Any],
        filters: Payload,
        time_field: str,
        low: int,
        high: int,
        depth: int,
    ) -> Iterator[tuple[list[Payload], int]]:
        windowed = {**filters, f"{time_field}_ge": low, f"{time_field}_le": high}
        first = self._search_page(ahead, windowed)
        total = int(first.get("total_count") or 0)
        if total >= SEARCH_CAP and low < high:
            middle = (low + high) // 2
            yield from self._split(ahead, filters, time_field, low, middle, depth + 1)
            yield from self._split(ahead, filters, time_field, middle + 1, high, depth + 1)
            return
        if total > SEARCH_CAP:
            raise AdapterError(
                f"{self.service} has {total} products with the same {time_field.replace('_', ' ')}"
                f" ({low}), more than the {SEARCH_CAP} one search can return",
                retryable=False,
                code="search_cap",
            )
        yield from self._pages(ahead, windowed, first, depth)

    def _pages(
        self, ahead: ReadAhead[Any], filters: Payload, first: Payload, depth: int
    ) -> Iterator[tuple[list[Payload], int]]:
        """Every page of one search, from its first (`depth` calls deep); IncompleteRead when
        a page is empty or short while a `next_page_token` says more follow, or the search
        ends short of its `total_count` (channels.adapters.paging)."""
        tally = PageTally(self.service, "products", self.limits.page_size)
        page = first
        while True:
            products = page.get("products") or []
            token = str(page.get("next_page_token") or "")
            tally.page(
                len(products), more=bool(token), total=reported_total(page.get("total_count"))
            )
            if products:
                yield products, depth
            if not token:
                return
            page = self._search_page(ahead, filters, token)
            depth += 1

    def _search_page(self, ahead: ReadAhead[Any], filters: Payload, token: str = "") -> Payload:
        """One Search Products call, when the read-ahead has room for another page."""
        size = self.limits.page_size
        if not token:
            return ahead.call(lambda: self._client.search_products(page_size=size, filters=filters))
        return ahead.call(
            lambda: self._client.search_products(page_size=size, page_token=token, filters=filters)
        )

    def _page_listings(
        self, products: Sequence[Payload], pool_map: kit.PoolMap, *, depth: int = 0
    ) -> list[RemoteListing]:
        # Each product's status, read once (None: not listed on this channel).
        statuses = [(p, self._status_if_listed(p)) for p in products]
        kept = [(p, status) for p, status in statuses if status is not None]
        # Search leaves out the SKUs' option names; a product with several SKUs needs them
        # for its listings' titles. A removed product is listed without.
        named = [
            str(p["id"])
            for p, status in kept
            if len(p.get("skus") or []) > 1 and status != "removed"
        ]
        details = dict(zip(named, pool_map(self._client.get_product, named), strict=True))
        self.chained(depth + (1 if named else 0))
        warehouse_id = self.credentials.warehouse_id
        listings: list[RemoteListing] = []
        for product, status in kept:
            product_id = str(product["id"])
            self._remember(product_id, product.get("skus") or [])
            listings.extend(
                listings_from_product(
                    product, details.get(product_id), status=status, warehouse_id=warehouse_id
                )
            )
        return listings

    def _listings_of(self, product_id: str) -> list[RemoteListing]:
        """The listings of one product, from Get Product (one call)."""
        detail = self._client.get_product(product_id)
        self._remember(product_id, detail.get("skus") or [])
        return listings_from_product(
            detail,
            detail,
            status=self._listing_status(detail),
            warehouse_id=self.credentials.warehouse_id,
        )

    def _remember(self, product_id: str, skus: Sequence[Mapping[str, Any]]) -> None:
        if len(skus) == 1:
            self._single_sku[product_id] = str(skus[0]["id"])
        else:
            self._single_sku.pop(product_id, None)

    # -- writing stock and prices ----------------------------------------------------------

    def _push(
        self,
        updates: Sequence[QuantityUpdate] | Sequence[PriceUpdate],
        per_call: int,
        call: Callable[[str, list[Payload]], Payload],
        row: Callable[[str, Any], Payload],
        local_problem: Callable[[Any], str],
    ) -> list[PushResult]:
        """`kit.BaseAdapter.push` one product per call: an update TikTok would refuse
        (`local_problem`, ids that are not TikTok's) fails unsent; a single-SKU listing's SKU id
        is looked up; `row(sku_id, update)` is one SKU of the call's body."""

        def resolve(update: QuantityUpdate | PriceUpdate) -> tuple[str, str, Any]:
            problem = local_problem(update) or _id_problem(update, self.service)
            if problem:
                raise kit.Unpushable(problem)
            return update.item_id, update.variant_id or self._only_sku(update.item_id), None

        def send(batch: kit.PushBatch) -> Mapping[str, str]:
            return _refused(call(batch.group, [row(r.key, r.update) for r in batch.rows]))

        return self.push(updates, per_call=per_call, resolve=resolve, send=send)

    def _only_sku(self, product_id: str) -> str:
        """The SKU id of a single-SKU listing: remembered from a read, else Get Product."""
        known = self._single_sku.get(product_id)
        if known:
            return known
        skus = self._client.get_product(product_id).get("skus") or []
        self._remember(product_id, skus)
        if len(skus) != 1:
            raise AdapterError(
                f"{self.service} product {product_id} now has {len(skus)} SKUs: scan the "
                "channel again so each variant is its own listing",
                retryable=False,
                code="stale_listing",
            )
        return str(skus[0]["id"])

    # -- building products -----------------------------------------------------------------

    def _product_body(self, product: UploadProduct, names: Sequence[str]) -> Payload:
        """A Create Product body; AdapterError on the first thing TikTok would refuse."""
        require_weight(product, service=self.service)
        _check_title(product, self.service)
        for variant in product.variants:
            _check_variant(product, variant, self.service)
        skus = [self._sku_row(product, variant, names) for variant in product.variants]
        body = {**self._edit_fields(product, images_required=True), "skus": skus}
        body["save_mode"] = "LISTING"
        return body

    def _edit_fields(self, product: UploadProduct, *, images_required: bool = False) -> Payload:
        """The synced product-level fields, as Create/Partial Edit Product take them: name,
        description, category, brand, images, weight and dimensions. Nothing else goes."""
        _check_title(product, self.service)
        category_id = self._category_id(product.category)
        body: Payload = {
            "title": product.name.strip(),
            "description": _html(product.description.strip() or product.name.strip()),
            "category_id": category_id,
        }
        brand_id = self._brand_id(product.brand, category_id)
        if brand_id:
            body["brand_id"] = brand_id
        images = [url for url in product.images if url.strip()][:MAX_IMAGES]
        if images_required and not images:
            raise AdapterError(
                f"{self.service} needs at least one image for {product.name!r}: add one in the POS",
                retryable=False,
                code="image",
            )
        if images:
            body["main_images"] = [{"uri": self._upload_image(url)} for url in images]
        if product.weight_kg is not None and product.weight_kg > 0:
            weight = decimal_text(product.weight_kg, trimmed=True)
            body["package_weight"] = {"value": weight, "unit": "KILOGRAM"}
        if product.dimensions_cm is not None:
            length, width, height = (max(1, math.ceil(side)) for side in product.dimensions_cm)
            body["package_dimensions"] = {
                "length": str(length),
                "width": str(width),
                "height": str(height),
                "unit": "CENTIMETER",
            }
        return body

    def _sku_row(
        self, product: UploadProduct, variant: UploadVariant, names: Sequence[str]
    ) -> Payload:
        row: Payload = {
            "seller_sku": variant.sku.strip(),
            "price": {
                "amount": decimal_text(variant.price, trimmed=True),
                "currency": self._currency(),
            },
            "inventory": [{"warehouse_id": self._warehouse_id(), "quantity": variant.quantity}],
        }
        if names:
            row["sales_attributes"] = [
                {"name": name, "value_name": option_value(product, variant, name)} for name in names
            ]
        code = variant.upc.strip()
        if code.isdigit() and len(code) in BARCODE_TYPES:
            row["identifier_code"] = {"code": code, "type": BARCODE_TYPES[len(code)]}
        return row

    @staticmethod
    def _existing_sku_row(sku: Mapping[str, Any]) -> Payload:
        """A SKU as Get Product describes it, as Edit Product takes it back, unchanged."""
        price = sku.get("price") or {}
        row: Payload = {
            "id": str(sku["id"]),
            "seller_sku": str(sku.get("seller_sku") or ""),
            "price": {
                "amount": str(price.get("tax_exclusive_price") or price.get("sale_price") or "0"),
                "currency": str(price.get("currency") or ""),
            },
            "inventory": [
                {"warehouse_id": str(entry["warehouse_id"]), "quantity": int(entry["quantity"])}
                for entry in sku.get("inventory") or []
            ],
            "sales_attributes": [
                {"name": str(a["name"]), "value_name": str(a["value_name"])}
                for a in sku.get("sales_attributes") or []
            ],
        }
        if isinstance(sku.get("identifier_code"), dict):
            row["identifier_code"] = sku["identifier_code"]
        return row

    def _category_id(self, category: str) -> str:
        """A TikTok category id from the POS category: a number is taken as the id itself, a
        name must equal a TikTok leaf category's name (last part of an "A > B" path)."""
        return category_id(category, lambda: self._leaf_categories, service=self.service)

    @cached_property
    def _leaf_categories(self) -> dict[str, str]:
        """{lower-cased leaf category name: id}: one Get Categories call per adapter."""
        tree = self._client.get_categories().get("categories") or []
        return {
            str(node.get("local_name") or "").strip().lower(): str(node["id"])
            for node in tree
            if node.get("is_leaf")
        }

    def _brand_id(self, brand: str, category_id: str) -> str:
        """The TikTok brand id of a brand name, "" when TikTok has no brand of that exact name
        (the product then goes without a brand, which TikTok allows)."""
        name = brand.strip()
        if not name:
            return ""
        key = name.lower()
        if key not in self._brands:
            found = self._client.get_brands(brand_name=name, category_id=category_id)
            self._brands[key] = next(
                (
                    str(b["id"])
                    for b in found.get("brands") or []
                    if str(b.get("name") or "").strip().lower() == key
                ),
                "",
            )
        return self._brands[key]

    def _warehouse_id(self) -> str:
        """The channel's warehouse, else the shop's default one (Get Warehouses, once)."""
        if self.credentials.warehouse_id:
            return self.credentials.warehouse_id
        if self._warehouse is None:
            warehouses = self._client.get_warehouses().get("warehouses") or []
            sales = [
                w
                for w in warehouses
                if w.get("type", "SALES_WAREHOUSE") == "SALES_WAREHOUSE"
                and w.get("effect_status", "ENABLED") == "ENABLED"
            ]
            chosen = next((w for w in sales if w.get("is_default")), sales[0] if sales else None)
            if chosen is None:
                raise AdapterError(
                    f"The {self.service} shop has no enabled sales warehouse: add one in Seller "
                    "Center",
                    retryable=False,
                    code="warehouse",
                )
            self._warehouse = str(chosen["id"])
        return self._warehouse

    def _authorized_shop(self) -> Payload:
        if self._shop is None:
            shops = self._client.get_authorized_shops().get("shops") or []
            cipher = self.credentials.shop_cipher
            shop = next((s for s in shops if s.get("cipher") == cipher), None)
            if shop is None:
                names = ", ".join(str(s.get("name") or s.get("id")) for s in shops) or "none"
                raise CredentialsError(
                    f"{self.service} accepted the keys and token, but the channel's shop cipher "
                    f"is not one of the shops they may act on (authorized: {names}): copy the "
                    "shop cipher again",
                    code="shop_cipher",
                )
            self._shop = shop
        return self._shop

    def _currency(self) -> str:
        region = str(self._authorized_shop().get("region") or "")
        if region not in REGION_CURRENCY:
            raise AdapterError(
                f"omni does not know the currency of {self.service} shops in region "
                f"{region or '(none)'}",
                retryable=False,
                code="currency",
            )
        return REGION_CURRENCY[region]

    def _upload_image(self, url: str) -> str:
        image = download_image(self._caller, url)
        answer = self._client.upload_image(
            filename=image.filename, content=image.content, content_type=image.content_type
        )
        if not answer.get("uri"):
            raise AdapterError(
                f"{self.service} accepted an image but returned no uri",
                retryable=True,
                code="image",
            )
        return str(answer["uri"])

    # -- orders ----------------------------------------------------------------------------

    def _remote_orders(self, orders: Sequence[Payload]) -> list[RemoteOrder]:
        single = set(self._single_sku)
        return [
            order_from_payload(o, self.service, single_sku=single)
            for o in orders
            if self._keeps_order(o)
        ]


class TokopediaAdapter(TikTokShopAdapter):
    """omni's Adapter for a Tokopedia shop, served by the TikTok Shop Partner API.

    The same calls as `TikTokShopAdapter`; it keeps the products listed on Tokopedia
    (`integrated_platform_statuses`) and the orders placed on Tokopedia (`commerce_platform`).
    A product's listing is live when the product is active and Tokopedia has it active or
    approved; deleted on either side, it is removed; otherwise inactive. A deleted product whose
    Tokopedia entry is gone cannot be told apart from one never on Tokopedia and is left out.
    """

    kind = "tokopedia"
    service = "Tokopedia"

    def _listing_status(self, product: Mapping[str, Any]) -> str:
        return _combined_status(product, _tokopedia_status(product) or "")

    def _status_if_listed(self, product: Mapping[str, Any]) -> str | None:
        # Listed here when the product has a Tokopedia entry; one look through
        # `integrated_platform_statuses` answers that and gives the status.
        tokopedia = _tokopedia_status(product)
        return None if tokopedia is None else _combined_status(product, tokopedia)

    def _keeps_order(self, order: Mapping[str, Any]) -> bool:
        return str(order.get("commerce_platform") or "") == TOKOPEDIA


# -- parsing TikTok payloads (pure functions) ----------------------------------------------------


def listings_from_product(
    product: Mapping[str, Any],
    detail: Mapping[str, Any] | None,
    *,
    status: str,
    warehouse_id: str = "",
) -> list[RemoteListing]:
    """The listings of one product: `product` from Search Products (or Get Product), `detail`
    from Get Product when the SKUs' option names are wanted. `warehouse_id` counts only that
    warehouse's stock (the one omni writes to); "" sums every warehouse."""
    product_id = str(product["id"])
    title = str(product.get("title") or "")
    updated_at = utc_from_seconds(product.get("update_time"))
    skus = product.get("skus") or []
    names = {str(sku["id"]): _sku_name(sku) for sku in (detail or {}).get("skus") or []}
    single = len(skus) == 1
    listings = []
    for sku in skus:
        sku_id = str(sku["id"])
        name = names.get(sku_id, "")
        listings.append(
            RemoteListing(
                item_id=product_id,
                variant_id="" if single else sku_id,
                sku=str(sku.get("seller_sku") or ""),
                title=f"{title} - {name}" if name and not single else title,
                price=_price(sku.get("price")),
                quantity=_quantity(sku.get("inventory"), warehouse_id),
                status=status,
                updated_at=updated_at,
            )
        )
    return listings


def _combined_status(product: Mapping[str, Any], tokopedia: str) -> str:
    """A Tokopedia listing's status from the product's TikTok status and its Tokopedia one."""
    tiktok = str(product.get("status") or product.get("product_status") or "")
    if "DELETED" in (tiktok, tokopedia):
        return "removed"
    if tiktok == "ACTIVATE" and tokopedia in ("ACTIVATE", "APPROVED"):
        return "live"
    return "inactive"


def _tokopedia_status(product: Mapping[str, Any]) -> str | None:
    for entry in product.get("integrated_platform_statuses") or []:
        if isinstance(entry, dict) and str(entry.get("platform") or "").upper() == TOKOPEDIA:
            return str(entry.get("status") or "")
    return None


def _status(product_status: str) -> str:
    if product_status == "ACTIVATE":
        return "live"
    if product_status == "DELETED":
        return "removed"
    return "inactive"  # drafts, audits, seller or platform deactivated, frozen


def _sku_name(sku: Mapping[str, Any]) -> str:
    """Option values joined by ", " as TikTok names a SKU in orders ("Black, M")."""
    values = [str(a.get("value_name") or "") for a in sku.get("sales_attributes") or []]
    return ", ".join(v for v in values if v)


def _price(price: Any) -> Decimal:
    """The pre-tax price omni writes (`tax_exclusive_price`), else the sale price."""
    if not isinstance(price, dict):
        return Decimal("0")
    return to_decimal(price.get("tax_exclusive_price") or price.get("sale_price"), finite=True)


def _quantity(inventory: Any, warehouse_id: str) -> int:
    rows = [row for row in inventory or [] if isinstance(row, dict)]
    if warehouse_id:
        rows = [row for row in rows if str(row.get("warehouse_id")) == warehouse_id]
    return sum(int(row.get("quantity") or 0) for row in rows)


def _html(text: str) -> str:
    """Plain POS text as the HTML TikTok wants: one <p> per paragraph, escaped."""
    paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _reason(error: Mapping[str, Any]) -> str:
    """TikTok's reason for one entry of `errors[]`, with the detail messages it carries."""
    detail = error.get("detail") if isinstance(error.get("detail"), dict) else {}
    extra = [
        str(e.get("message") or "")
        for e in (detail or {}).get("extra_errors") or []
        if isinstance(e, dict) and e.get("message")
    ]
    message = str(error.get("message") or "refused")
    code = error.get("code")
    said = f"{message} ({code})" if code else message
    return f"{said}: {'; '.join(extra)}" if extra else said


def _refused(answer: Mapping[str, Any]) -> dict[str, str]:
    """TikTok's reasons by SKU id, from a write's `errors[]`; an error naming no SKU is under ""
    (it fails the whole call)."""
    refused: dict[str, str] = {}
    for error in answer.get("errors") or []:
        if not isinstance(error, dict):
            continue
        detail = error.get("detail") if isinstance(error.get("detail"), dict) else {}
        refused[str((detail or {}).get("sku_id") or "")] = _reason(error)
    return refused


def _id_problem(update: QuantityUpdate | PriceUpdate, service: str) -> str:
    if not update.item_id.isdigit() or (update.variant_id and not update.variant_id.isdigit()):
        return f"not a {service} product/SKU id"
    return ""


def _option_names(product: UploadProduct, service: str) -> tuple[str, ...]:
    """The sales attribute names of an upload: `option_names`, else the first variant's.
    Several variants need names to tell them apart; at most 3, as TikTok allows."""
    require_variants(product, service=service)
    names = option_names(product)
    check_option_names(product, names, service=service, most=MAX_SALES_ATTRIBUTES)
    # Without names there is a single variant (several were refused above): nothing to compare.
    combos = [tuple(option_value(product, v, n) for n in names) for v in product.variants]
    check_distinct_options(product, combos)
    return names


def _check_title(product: UploadProduct, service: str) -> None:
    if not product.name.strip():
        raise AdapterError(f"{service} needs a product name", retryable=False, code="param")
    if len(product.name.strip()) > MAX_TITLE:
        raise AdapterError(
            f"{service} takes product names of at most {MAX_TITLE} characters; "
            f"{product.name[:40]!r}... has {len(product.name.strip())}",
            retryable=False,
            code="param",
        )


def _check_variant(product: UploadProduct, variant: UploadVariant, service: str) -> None:
    if len(variant.sku.strip()) > MAX_SELLER_SKU:
        raise AdapterError(
            f"{service} takes SKUs of at most {MAX_SELLER_SKU} characters; {variant.sku!r} is "
            "longer",
            retryable=False,
            code="param",
        )
    if not variant.price.is_finite() or variant.price <= 0:
        raise AdapterError(
            f"Variant {variant.sku!r} of {product.name!r} needs a price above 0",
            retryable=False,
            code="param",
        )
    if not 0 <= variant.quantity < MAX_QUANTITY:
        raise AdapterError(
            f"Variant {variant.sku!r} of {product.name!r}: {service} takes quantities from 0 "
            f"to {MAX_QUANTITY - 1:,}",
            retryable=False,
            code="param",
        )


def _kept_fields(detail: Mapping[str, Any]) -> Payload:
    """The product-level fields of Get Product, as Edit Product takes them back unchanged."""
    chain = detail.get("category_chains") or []
    leaf = next((c for c in chain if c.get("is_leaf")), chain[-1] if chain else {})
    body: Payload = {
        "title": detail.get("title"),
        "description": detail.get("description"),
        "category_id": str(leaf.get("id") or ""),
        "main_images": [{"uri": i["uri"]} for i in detail.get("main_images") or [] if i.get("uri")],
    }
    brand = detail.get("brand") or {}
    if brand.get("id"):
        body["brand_id"] = str(brand["id"])
    if detail.get("package_weight"):
        body["package_weight"] = detail["package_weight"]
    if detail.get("package_dimensions"):
        body["package_dimensions"] = detail["package_dimensions"]
    return body


def _price_updates(
    item_id: str, product: UploadProduct, skus: Sequence[Mapping[str, Any]]
) -> list[PriceUpdate]:
    """The POS prices of a product's variants for its TikTok SKUs, matched by SKU. A single-SKU
    product takes the price of the variant with its SKU, else of the first variant."""
    if len(skus) == 1:
        only = sku_key(str(skus[0].get("seller_sku") or ""))
        variant = next((v for v in product.variants if sku_key(v.sku) == only), None)
        variant = variant or (product.variants[0] if product.variants else None)
        return [PriceUpdate(item_id, "", variant.price)] if variant else []
    by_key = {sku_key(str(sku.get("seller_sku") or "")): str(sku["id"]) for sku in skus}
    return [
        PriceUpdate(item_id, by_key[sku_key(v.sku)], v.price)
        for v in product.variants
        if sku_key(v.sku) in by_key
    ]
