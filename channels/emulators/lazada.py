"""A local Lazada Open Platform for tests, the demo and benchmarks.

It speaks the subset omni uses, with Lazada's rules (shared/reference/marketplace-apis.md §3):
`app_key`, `timestamp` (milliseconds, or ISO 8601; within 7200 s of now), `sign_method`, `sign`
checked on every call (UPPERCASE hex HMAC-SHA256 of the API path and the sorted parameters,
query and form body alike) and `access_token` on seller calls; errors as
`{"code", "type", "message", "request_id", "detail"}` with `code` "0" on success, always with
HTTP 200; `IncompleteSignature`, `IllegalAccessToken`, `IllegalRefreshToken`; offset pagination
(`/products/get` limit ≤ 50 and offset ≤ 10,000, `/orders/get` limit ≤ 100 and offset ≤ 5,000);
at most 50 SKUs per `/product/price_quantity/update` (4171 beyond) with per-SKU failures in
`detail[]` under code 501; an edit of an item while another is applied refused with 4147
(`_begin_edit`); order statuses per order item, one item per unit. Structured inputs
(`payload`, `apiRequestBody`) are read as XML or JSON. The API answers at the root and under
`/rest`, as on `https://api.lazada.sg/rest`; `/auth/token/refresh` is served here too.

Throttled calls (the framework's `throttle_rate`) get one of Lazada's throttling codes (901,
4154, ApiCallLimit) in an HTTP 200 body, as Lazada sends them.
"""

import hashlib
import hmac
import json
import random
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from channels.adapters.base import OrderState
from channels.emulators.base import (
    Emulator,
    ExpiringTokens,
    Faults,
    IdSequence,
    Listing,
    Refusal,
    Reply,
    Request,
    Route,
    ShopCache,
    TokenKind,
    TokenStore,
    signed_json_push,
)
from channels.emulators.order_stock import OrderStock, floored
from channels.emulators.shop import LEAVES, ShopItem, ShopMix, category_ids, generate_shop

TIMESTAMP_TOLERANCE = 7200  # seconds either way of now
ACCESS_TOKEN_TTL = 7 * 86400
REFRESH_TOKEN_TTL = 30 * 86400
MAX_PRODUCTS_LIMIT = 50
MAX_PRODUCTS_OFFSET = 10_000
MAX_ORDERS_LIMIT = 100
MAX_ORDERS_OFFSET = 5_000
MAX_SKUS_PER_WRITE = 50
MAX_ORDER_IDS = 50
MAX_VARIATIONS = 2
MAX_VARIATION_NAME = 15
MAX_OPTIONS = 50
MAX_OPTION_LENGTH = 20
IMAGE_HOST = "https://sg-live-01.slatic.net/p/"
FIRST_ITEM_ID = 3_100_000_001
FIRST_SKU_ID = 17_000_000_001
FIRST_ORDER_ID = 820_000_000_001
FIRST_ORDER_ITEM_ID = 820_000_500_001
PRODUCT_FILTERS = frozenset(
    {"all", "live", "inactive", "deleted", "image-missing", "pending", "rejected", "sold-out"}
)
ORDER_STATUSES = frozenset(
    {
        "unpaid", "pending", "packed", "repacked", "canceled", "ready_to_ship", "delivered",
        "returned", "shipped", "failed", "topack", "toship", "shipping", "lost", "lost_by_3pl",
        "damaged_by_3pl", "failed_delivery", "shipped_back", "shipped_back_success",
        "shipped_back_failed", "package_scrapped",
    }
)  # fmt: skip
# The item status that stands for each of omni's order states.
STATE_STATUS: dict[OrderState, str] = {
    OrderState.UNPAID: "unpaid",
    OrderState.PAID: "pending",
    OrderState.SHIPPED: "shipped",
    OrderState.DELIVERED: "delivered",
    OrderState.CANCELLED: "canceled",
    OrderState.RETURNED: "returned",
}
THROTTLE_CODES = (
    ("901", "E901: The request is too frequent, or the requested functionality is disabled."),
    ("4154", "SYS_REQUEST_TOO_FAST"),
    ("ApiCallLimit", "The request has exceeded the API call limit."),
)
SELLER_ID = 100_123_456

Params = dict[str, Any]


class LazadaFault(Refusal):
    """A Lazada error answer: `code`, `message`, error `type` and per-SKU `detail`. Lazada
    answers errors with HTTP 200, like successes."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        type: str = "ISV",
        detail: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, status=200)
        self.code = code
        self.type = type
        self.detail = detail or []


def _missing(name: str) -> LazadaFault:
    return LazadaFault(
        "MissingParameter",
        f"The input parameter “{name}” that is mandatory for processing this request is not "
        "supplied",
    )


def _bad_signature() -> LazadaFault:
    return LazadaFault(
        "IncompleteSignature", "The request signature does not conform to lazop standards"
    )


def _bad_format(detail: str) -> LazadaFault:
    return LazadaFault("5", f"E005: Invalid Request Format ({detail})")


def _required(field_name: str) -> LazadaFault:
    return LazadaFault("4108", f"CHK_BASIC_REQUIRED: {field_name} is required")


@dataclass(slots=True)
class Sku:
    sku_id: int
    seller_sku: str
    sale_prop: dict[str, str]
    price: Decimal
    quantity: int
    package: dict[str, str]
    status: str = "active"  # active | inactive | deleted
    special_price: Decimal = Decimal("0")
    reserved: int = 0  # held by open orders: quantity cannot go below it


@dataclass(slots=True)
class Product:
    item_id: int
    name: str
    description: str
    brand: str
    category_id: int
    images: list[str]
    created_ms: int
    updated_ms: int
    variations: list[tuple[str, list[str]]]  # option name -> values
    skus: dict[int, Sku]
    status: str = "Active"  # Active | InActive | Deleted
    campaign_lock: bool = False  # during a campaign, quantities may go up but not down

    def live_skus(self) -> list[Sku]:
        return [sku for sku in self.skus.values() if sku.status != "deleted"]


@dataclass(slots=True)
class OrderItem:
    order_item_id: int
    item_id: int
    sku_id: int
    seller_sku: str
    name: str
    variation: str
    status: str
    item_price: Decimal
    paid_price: Decimal
    updated_ms: int
    reason: str = ""
    cancel_initiator: str = ""
    tracking_code: str = ""
    shipment_provider: str = ""


@dataclass(slots=True)
class Order:
    order_id: int
    created_ms: int
    updated_ms: int
    items: list[OrderItem]
    payment_method: str = "COD"
    voucher: Decimal = Decimal("0")
    shipping_fee: Decimal = Decimal("0")


@dataclass(slots=True)
class LazadaState:
    """Everything one emulated seller holds. Guarded by the emulator's lock."""

    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    order_stock: OrderStock = field(default_factory=OrderStock)  # units order items hold
    version: int = 0  # bumped on every product change; keys the product-list cache


# Category tree built from the generator's catalogue: departments, then leaves.
DEPARTMENTS, LEAF_IDS = category_ids(10_001, 10_002_001)


class LazadaEmulator(ExpiringTokens, Emulator):
    """One Lazada seller (Singapore) on 127.0.0.1.

    `items`, `seed`, `pos_skus` and `mix` generate the shop (see `generate_shop`); the app
    secret and tokens derive from `seed` too. `credentials` is what an adapter needs.
    """

    name = "lazada"
    secret_fields = ("app_secret",)
    # auth "seller": signed and with the seller's access token; "app": signed only.
    # envelope "flat": the answer's fields at the top level instead of under "data".
    routes = (
        Route("GET", "/seller/get", "_get_seller", auth="seller"),
        Route("GET", "/category/tree/get", "_get_category_tree", auth="seller"),
        Route("POST", "/image/migrate", "_migrate_image", auth="seller"),
        Route("GET", "/products/get", "_get_products", auth="seller"),
        Route("GET", "/product/item/get", "_get_product_item", auth="seller"),
        Route("POST", "/product/create", "_create_product", auth="seller"),
        Route("POST", "/product/update", "_update_product", auth="seller"),
        Route("POST", "/product/deactivate", "_deactivate_product", auth="seller"),
        Route("POST", "/product/remove", "_remove_product", auth="seller"),
        Route("POST", "/product/price_quantity/update", "_update_price_quantity", auth="seller"),
        Route("GET", "/orders/get", "_get_orders", auth="seller"),
        Route("GET", "/order/get", "_get_order", auth="seller"),
        Route("GET", "/orders/items/get", "_get_orders_items", auth="seller"),
        Route("POST", "/auth/token/refresh", "_refresh", auth="app", envelope="flat"),
    )

    def __init__(
        self,
        *,
        items: int = 0,
        seed: int = 1,
        pos_skus: Sequence[str] = (),
        mix: ShopMix | None = None,
        app_key: str = "123456",
        utc_offset_hours: int = 8,
        seller_id: int = SELLER_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, faults=faults, clock=clock)
        self.app_key = app_key
        self.seller_id = seller_id
        self.zone = timezone(timedelta(hours=utc_offset_hours))
        self.state = LazadaState()
        self._secrets = random.Random(f"lazada-secrets-{seed}")
        self.app_secret = self._secrets.randbytes(16).hex()
        # A refresh revokes the access token it replaces at once; refresh tokens are single
        # use and do not expire here (REFRESH_TOKEN_TTL is only told).
        self.tokens = TokenStore(self._new_token, access_ttl=ACCESS_TOKEN_TTL, old_access_grace=0)
        self._item_ids = IdSequence(FIRST_ITEM_ID)
        self._sku_ids = IdSequence(FIRST_SKU_ID)
        self._order_ids = IdSequence(FIRST_ORDER_ID)
        self._order_item_ids = IdSequence(FIRST_ORDER_ITEM_ID)
        self._list_cache: ShopCache[tuple[Any, ...], list[int]] = ShopCache(64)
        self._editing: dict[int, float] = {}  # item id -> until when an edit of it is applied
        for item in generate_shop(items, seed, pos_skus, mix=mix, now=clock()):
            self.put_item(item)

    # -- the helpers every emulator offers (docs/adapters.md) ----------------------------------

    @property
    def credentials(self) -> dict[str, Any]:
        """app_key, app_secret, the current access and refresh tokens, and the seller they
        are for (as the token answer names it)."""
        tokens = self.tokens.current
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
            "seller_id": str(self.seller_id),
        }

    def put_item(self, shop_item: ShopItem, *, status: str | None = None) -> str:
        """Add a generated (or hand-made) item, its variants as SKUs; its item_id."""
        with self.lock:
            product = self._product_from(shop_item, status=status)
            self._save(product, touch=False)
            return str(product.item_id)

    def touch_item(self, item_id: str | int, *, name: str) -> None:
        """Rename a product as the seller would in Seller Center; its update time moves."""
        with self.lock:
            product = self._product_or_fail(int(item_id))
            product.name = name
            self._save(product)

    def remove_item(self, item_id: str | int) -> None:
        """Delete a product as the seller would: every SKU deleted; its update time moves."""
        with self.lock:
            product = self._product_or_fail(int(item_id))
            for sku in product.skus.values():
                sku.status = "deleted"
            product.status = "Deleted"
            self._save(product)

    def iter_listings(self) -> Iterator[Listing]:
        """Every SKU not deleted of every product not deleted, by its SKU id (a product
        without variations too): its quantity and price."""
        for product in self.state.products.values():
            if product.status != "Deleted":
                for sku in product.live_skus():
                    yield Listing(str(product.item_id), str(sku.sku_id), sku.quantity, sku.price)

    def update_calls(self, what: str) -> int:
        """Successful /product/price_quantity/update calls that set quantities ("stock") or
        prices ("price"); a call with per-SKU failures (501) counts, its other SKUs changed."""
        tag = {"stock": "Quantity", "price": "Price"}[what]
        count = 0
        for path in ("/product/price_quantity/update", "/rest/product/price_quantity/update"):
            for call in self.log.writes_to(path):
                reply = call.reply if isinstance(call.reply, dict) else {}
                if str(reply.get("code")) in ("0", "501") and tag in _payload_text(call.body):
                    count += 1
        return count

    def create_order(
        self, lines: Sequence[tuple[str, str, int]], *, state: OrderState = OrderState.PAID
    ) -> str:
        """An order of `[(item_id, variant_id, qty)]` (one order item per unit) in the status
        standing for `state`; its order number. Variant id "" names a single-SKU product.

        As on Lazada, placing the order takes each item's unit off its SKU's quantity at once
        (never below zero: Lazada sells no more than it shows, so an order beyond stock takes
        what is left), and cancelling an item puts back what it took, once; an order created
        cancelled leaves stock as it was. A return (returned, shipped back, ...) restocks
        nothing: the seller decides what goes back on sale.
        """
        with self.lock:
            now = self._now_ms()
            order = Order(order_id=self._order_ids.next(), created_ms=now, updated_ms=now, items=[])
            for item_id, variant_id, quantity in lines:
                product = self._product_or_fail(int(item_id))
                sku = self._sku_of(product, variant_id)
                for _ in range(quantity):
                    order.items.append(self._order_item(product, sku, STATE_STATUS[state], now))
            if not order.items:
                raise ValueError("an order needs at least one unit")
            self.state.orders[order.order_id] = order
            for item in order.items:
                self.state.order_stock.take(item.order_item_id, [(item, 1)], self._adjust_stock)
                if item.status == "canceled":
                    self.state.order_stock.give_back(item.order_item_id, self._adjust_stock)
            return str(order.order_id)

    def move_order(self, order_number: str, state: OrderState) -> None:
        """Move every item of the order to the status standing for `state`."""
        self.set_order_statuses(order_number, [STATE_STATUS[state]])

    def set_order_statuses(self, order_number: str, statuses: Sequence[str]) -> None:
        """Give the order's items these Lazada statuses, in item order (the last one repeats);
        update times move. Statuses per item are how Lazada reports mixed orders. An item
        cancelled gives its unit back, once."""
        unknown = set(statuses) - ORDER_STATUSES
        if unknown or not statuses:
            raise ValueError(f"unknown Lazada order item statuses {sorted(unknown)}")
        with self.lock:
            order = self.state.orders[int(order_number)]
            now = max(self._now_ms(), order.updated_ms + 1000)
            for index, item in enumerate(order.items):
                status = statuses[min(index, len(statuses) - 1)]
                item.status = status
                item.updated_ms = now
                if status == "canceled":
                    item.reason = "Change of mind"
                    item.cancel_initiator = "cancellation-customer"
                    self.state.order_stock.give_back(item.order_item_id, self._adjust_stock)
                if status in ("shipped", "delivered") and not item.tracking_code:
                    item.tracking_code = f"LZSG{item.order_item_id}"
                    item.shipment_provider = "LEX SG"
            order.updated_ms = now

    def _adjust_stock(self, item: OrderItem, delta: int) -> int:
        """Move the quantity of an order item's SKU by `delta`, never below zero; the change."""
        sku = self.state.products[item.item_id].skus[item.sku_id]
        applied = floored(sku.quantity, delta)
        sku.quantity += applied
        self.state.version += 1
        return applied

    def signed_webhook(self, order_number: str, url: str) -> tuple[dict[str, str], bytes]:
        """A trade order push (message_type 0) for the order's current status, signed as
        Lazada signs: Authorization = hex HMAC-SHA256(app secret, app key + body). Lazada does
        not sign the URL, so `url` only says where it would be delivered."""
        with self.lock:
            order = self.state.orders[int(order_number)]
            item = order.items[0]
            push = {
                "seller_id": str(self.seller_id),
                "message_type": 0,
                "data": {
                    "buyer_id": 1_234_567,
                    "extra_params": {},
                    "order_status": item.status,
                    "status_update_time": order.updated_ms // 1000,
                    "trade_order_id": str(order.order_id),
                    "trade_order_line_id": str(item.order_item_id),
                },
                "timestamp": int(self.now()),
                "site": "lazada_sg",
            }
        return signed_json_push(push, secret=self.app_secret, signed_prefix=self.app_key.encode())

    # -- more test helpers ---------------------------------------------------------------------

    def product(self, item_id: str | int) -> dict[str, Any]:
        """The product as /product/item/get describes it (deleted ones too)."""
        with self.lock:
            return self._product_json(self.state.products[int(item_id)])

    def item_ids(self, *statuses: str) -> list[str]:
        """Item ids in order, optionally only those whose status is one of `statuses`."""
        with self.lock:
            return [
                str(p.item_id)
                for p in self.state.products.values()
                if not statuses or p.status in statuses
            ]

    def change_sku(
        self,
        item_id: str | int,
        sku_id: str | int,
        *,
        price: Decimal | None = None,
        quantity: int | None = None,
        status: str | None = None,
    ) -> None:
        """Change one SKU as the seller would; the product's update time moves."""
        with self.lock:
            product = self._product_or_fail(int(item_id))
            sku = product.skus[int(sku_id)]
            if price is not None:
                sku.price = Decimal(price)
            if quantity is not None:
                sku.quantity = quantity
            if status is not None:
                sku.status = status
                _recompute_status(product)
            self._save(product)

    def set_reserved(self, item_id: str | int, sku_id: str | int, reserved: int) -> None:
        """Stock held by open orders: a quantity update below it fails for that SKU."""
        with self.lock:
            self.state.products[int(item_id)].skus[int(sku_id)].reserved = reserved

    def set_campaign_lock(self, item_id: str | int, locked: bool = True) -> None:
        """During a campaign Lazada lets quantities go up, never down (error 4170)."""
        with self.lock:
            self.state.products[int(item_id)].campaign_lock = locked

    # -- HTTP ------------------------------------------------------------------------------------

    def route_path(self, request: Request) -> str:
        """The API answers at the root and under `/rest`, as on `https://api.lazada.sg/rest`."""
        return request.path.removeprefix("/rest")

    def invoke(self, route: Route, request: Request, params: dict[str, str]) -> Any:
        """The handler, given the query and body parameters once they pass Lazada's checks
        (the signature covers them, so they are checked here rather than in `authenticate`)."""
        checked = self._checked_params(request, route)
        with self.lock:
            return getattr(self, route.handler)(checked)

    def wrap(self, payload: Any, route: Route) -> Reply:
        if route.envelope == "flat":
            return Reply.json({"code": "0", **payload, "request_id": _request_id()})
        return Reply.json({"code": "0", "data": payload, "request_id": _request_id()})

    def wrap_error(self, refusal: Refusal) -> Reply:
        if isinstance(refusal, LazadaFault):
            return _error(refusal)
        return super().wrap_error(refusal)

    def not_found(self, request: Request) -> Reply:
        raise LazadaFault("InvalidApiPath", "The specified API path is invalid")

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        """Lazada checks the parameters and signature before the method."""
        path = self.route_path(request)
        self._checked_params(request, next(r for r in self.routes if r.path == path))
        raise LazadaFault("InvalidMethod", f"{path} must be called with {allowed[0]}")

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        code, message = THROTTLE_CODES[int(self.random_fault() * len(THROTTLE_CODES))]
        return _error(LazadaFault(code, message, type="ISP"))

    # -- authentication --------------------------------------------------------------------------

    def _checked_params(self, request: Request, route: Route) -> Params:
        params = _params(request)
        self._authenticate(route.path, params, seller=route.auth == "seller")
        return params

    def _authenticate(self, path: str, params: Params, *, seller: bool) -> None:
        """Lazada's checks, in order: app key, timestamp, signature, then the access token."""
        for name in ("app_key", "timestamp", "sign_method", "sign"):
            if not params.get(name):
                raise _missing(name)
        if params["app_key"] != self.app_key:
            # No secret is known for an unknown app, so its signature cannot be right either.
            raise _bad_signature()
        if abs(_timestamp_seconds(params["timestamp"]) - time.time()) > TIMESTAMP_TOLERANCE:
            raise LazadaFault("InvalidTimestamp", "Timestamp is invalid or expired")
        expected = _sign(self.app_secret, path, params)
        if params["sign_method"] != "sha256" or not hmac.compare_digest(
            str(params["sign"]).upper(), expected
        ):
            raise _bad_signature()
        if seller:
            token = params.get("access_token")
            if not token:
                raise _missing("access_token")
            if not self.tokens.valid(str(token)):
                raise LazadaFault(
                    "IllegalAccessToken", "The specified access token is invalid or expired"
                )

    def _new_token(self, kind: TokenKind) -> str:
        return "50000" + self._secrets.randbytes(20).hex()

    def _refresh(self, params: Params) -> dict[str, Any]:
        token = params.get("refresh_token")
        if not token:
            raise _missing("refresh_token")
        tokens = self.tokens.refresh(str(token))  # the old refresh token is refused from now on
        if tokens is None:
            raise LazadaFault(
                "IllegalRefreshToken", "The specified refresh token is invalid or expired"
            )
        return {
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
            "expires_in": ACCESS_TOKEN_TTL,
            "refresh_expires_in": REFRESH_TOKEN_TTL,
            "country": "sg",
            "account_platform": "seller_center",
            "account": "seller@shop.test",
            "country_user_info": [
                {
                    "country": "sg",
                    "user_id": "100100",
                    "seller_id": str(self.seller_id),
                    "short_code": "SG1ABCDE",
                }
            ],
        }

    # -- seller, categories, images ----------------------------------------------------------------

    def _get_seller(self, params: Params) -> dict[str, Any]:
        return {
            "name": "Emulated Lazada Shop",
            "name_company": "Emulated Pte Ltd",
            "seller_id": self.seller_id,
            "short_code": "SG1ABCDE",
            "email": "seller@shop.test",
            "location": "Singapore",
            "verified": True,
            "status": "ACTIVE",
        }

    def _get_category_tree(self, params: Params) -> list[dict[str, Any]]:
        return [
            {
                "category_id": department_id,
                "name": department,
                "leaf": False,
                "var": False,
                "children": [
                    _leaf_node(leaf.name) for leaf in LEAVES if leaf.department == department
                ],
            }
            for department, department_id in DEPARTMENTS.items()
        ]

    def _migrate_image(self, params: Params) -> dict[str, Any]:
        request = _structured(params, "payload")
        url = _text_of((request.get("Image") or {}) if isinstance(request, dict) else {}, "Url")
        if not url.startswith(("http://", "https://")):
            raise LazadaFault("302", "Not supported URL")
        digest = hashlib.md5(url.encode()).hexdigest()  # an id, not security
        return {"image": {"hash_code": digest, "url": f"{IMAGE_HOST}{digest}.jpg"}}

    # -- reading products --------------------------------------------------------------------------

    def _get_products(self, params: Params) -> dict[str, Any]:
        product_filter = str(params.get("filter") or "all")
        if product_filter not in PRODUCT_FILTERS:
            raise LazadaFault("36", "E036: Invalid status filter")
        limit = _int_param(params, "limit", default=20, low=1, high=MAX_PRODUCTS_LIMIT, code="19")
        offset = _int_param(params, "offset", default=0, low=0, high=MAX_PRODUCTS_OFFSET, code="14")
        bounds = tuple(
            _time_param(params, name)
            for name in ("update_after", "update_before", "create_after", "create_before")
        )
        ids = self._listed_ids(product_filter, bounds)
        page = self.listing_page(offset // limit + 1, ids[offset : offset + limit])
        return {
            "total_products": len(ids),
            "products": [self._product_json(self.state.products[i]) for i in page],
        }

    def _listed_ids(self, product_filter: str, bounds: tuple[int | None, ...]) -> list[int]:
        """Matching item ids in id order, cached until the shop changes (`ShopCache`)."""

        def matching() -> list[int]:
            update_after, update_before, create_after, create_before = bounds
            return [
                product.item_id
                for product in self.state.products.values()
                if _in_filter(product, product_filter)
                and _within(product.updated_ms, update_after, update_before)
                and _within(product.created_ms, create_after, create_before)
            ]

        return self._list_cache.get((product_filter, bounds), self.state.version, matching)

    def _get_product_item(self, params: Params) -> dict[str, Any]:
        item_id = params.get("item_id")
        seller_sku = params.get("seller_sku")
        product = None
        if item_id:
            product = self.state.products.get(_int_value(item_id, "item_id"))
        elif seller_sku:
            product = next(
                (
                    p
                    for p in self.state.products.values()
                    if any(s.seller_sku == seller_sku for s in p.live_skus())
                ),
                None,
            )
        else:
            raise _missing("item_id")
        if product is None or product.status == "Deleted":
            raise LazadaFault("208", "E208: Item not exist")
        return self._product_json(product)

    def _product_json(self, product: Product) -> dict[str, Any]:
        variation = {
            f"Variation{position}": {
                "name": name,
                "label": name,
                "hasImage": False,
                "customize": True,
                "options": list(values),
            }
            for position, (name, values) in enumerate(product.variations, start=1)
        }
        return {
            "item_id": product.item_id,
            "primary_category": product.category_id,
            "created_time": str(product.created_ms),
            "updated_time": str(product.updated_ms),
            "status": product.status,
            "images": list(product.images),
            "attributes": {
                "name": product.name,
                "description": product.description,
                "brand": product.brand,
            },
            "variation": variation,
            "skus": [self._sku_json(product, sku) for sku in product.skus.values()],
        }

    def _sku_json(self, product: Product, sku: Sku) -> dict[str, Any]:
        shop_sku = f"{product.item_id}_SGAMZ-{sku.sku_id}"
        return {
            "SkuId": sku.sku_id,
            "SellerSku": sku.seller_sku,
            "ShopSku": shop_sku,
            "Url": f"https://www.lazada.sg/-i{product.item_id}-s{sku.sku_id}.html",
            "Status": sku.status,
            "quantity": sku.quantity,
            "Available": max(sku.quantity - sku.reserved, 0),
            "price": sku.price,
            "special_price": sku.special_price,
            "saleProp": dict(sku.sale_prop),
            **sku.package,
        }

    # -- writing products --------------------------------------------------------------------------

    def _create_product(self, params: Params) -> dict[str, Any]:
        node = _product_node(_structured(params, "payload"))
        associated = _text_of(node, "AssociatedSku")
        target = self._owner_of(associated) if associated else None
        if associated and target is None:
            raise LazadaFault("4136", f"SELLER_SKU_NOT_FOUND: AssociatedSku {associated}")
        category_id = self._category(node, required=target is None)
        attributes = node.get("Attributes") if isinstance(node.get("Attributes"), dict) else {}
        name = _text_of(attributes, "name")
        if target is None and not name:
            raise _required("Attributes.name")
        if len(name) > 255:
            raise LazadaFault("4120", "CHK_CATPROP_CPV_MAX_LEGNTH: name is longer than 255")
        images = _images(node, required=target is None)
        variations = _variations(node.get("variation"))
        if target is not None:
            variations = _merged(target.variations, variations)
        skus_node = node.get("Skus") if isinstance(node.get("Skus"), dict) else {}
        rows = _as_list(skus_node.get("Sku"))
        if not rows:
            raise _required("Skus.Sku")
        taken = {sku.seller_sku for sku in target.live_skus()} if target else set()
        combos = (
            {tuple(sorted(s.sale_prop.items())) for s in target.live_skus()} if target else set()
        )
        if not variations and len(rows) + len(taken) > 1:
            raise LazadaFault("4133", "Invalid variation: several SKUs need variations")
        skus = [_new_sku(row, variations, taken, combos) for row in rows]
        # Everything is valid: only now does the shop change.
        if target is None:
            now = self._now_ms()
            target = Product(
                item_id=self._item_ids.next(),
                name=name,
                description=_text_of(attributes, "description"),
                brand=_text_of(attributes, "brand") or "No Brand",
                category_id=category_id or 0,
                images=images,
                created_ms=now,
                updated_ms=now,
                variations=variations,
                skus={},
            )
        else:
            target.variations = variations
        for sku in skus:
            sku.sku_id = self._sku_ids.next()
            target.skus[sku.sku_id] = sku
        _recompute_status(target)
        self._save(target)
        return {
            "item_id": target.item_id,
            "sku_list": [
                {
                    "shop_sku": f"{target.item_id}_SGAMZ-{sku.sku_id}",
                    "seller_sku": sku.seller_sku,
                    "sku_id": sku.sku_id,
                }
                for sku in skus
            ],
        }

    def _update_product(self, params: Params) -> dict[str, Any]:
        node = _product_node(_structured(params, "payload"))
        item_id = _text_of(node, "ItemId")
        if not item_id:
            raise LazadaFault("1", "E001: Parameter ItemId is mandatory")
        product = self.state.products.get(_int_value(item_id, "ItemId"))
        if product is None or product.status == "Deleted":
            raise LazadaFault(
                "4137",
                "The item id entered in the request does not exist on the current country and "
                "store, please call the GetProducts/GetProductItem API to query for the correct "
                "item id.",
            )
        if "Attributes" not in node:
            # The update guide: "Attributes must be preserved but can be left out of any field".
            raise _required("Attributes")
        category_id = self._category(node, required=False)
        images = _images(node, required=False)
        attributes = node.get("Attributes") if isinstance(node.get("Attributes"), dict) else {}
        if "name" in attributes and not _text_of(attributes, "name"):
            raise _required("Attributes.name")
        skus_node = node.get("Skus") if isinstance(node.get("Skus"), dict) else {}
        changes = [self._sku_change(product, row) for row in _as_list(skus_node.get("Sku"))]
        self._begin_edit([product.item_id])
        # Everything is valid: only now does the shop change.
        if category_id:
            product.category_id = category_id
        if images:
            product.images = images
        for name in ("name", "description", "brand"):
            if name in attributes:
                setattr(product, name, _text_of(attributes, name))
        for sku, change in changes:
            for attribute, value in change.items():
                if attribute == "package":
                    sku.package.update(value)
                else:
                    setattr(sku, attribute, value)
        _recompute_status(product)
        self._save(product)
        return {}

    def _sku_change(self, product: Product, row: Any) -> tuple[Sku, dict[str, Any]]:
        if not isinstance(row, dict):
            raise _bad_format("Sku entries must be objects")
        sku_id = _text_of(row, "SkuId")
        if not sku_id:
            raise LazadaFault("4216", "skuId is a mandatory field and must be filled in.")
        sku = product.skus.get(_int_value(sku_id, "SkuId"))
        if sku is None or sku.status == "deleted":
            raise LazadaFault("4136", f"SELLER_SKU_NOT_FOUND: SkuId {sku_id}")
        change: dict[str, Any] = {}
        if "price" in row:
            change["price"] = _positive_price(row["price"])
        if "quantity" in row:
            change["quantity"] = _quantity(row["quantity"])
        if "Status" in row:
            status = _text_of(row, "Status").lower()
            if status not in ("active", "inactive", "deleted"):
                raise _bad_format("Status must be active, inactive or deleted")
            change["status"] = status
        package = {name: _package_value(row[name], name) for name in _PACKAGE if name in row}
        if package:
            change["package"] = package
        return sku, change

    def _deactivate_product(self, params: Params) -> dict[str, Any]:
        node = _product_node(_structured(params, "apiRequestBody"))
        item_id = _text_of(node, "ItemId")
        if not item_id:
            raise LazadaFault("E0001", "Parameter ItemId is mandatory")
        product = self.state.products.get(_int_value(item_id, "ItemId"))
        if product is None or product.status == "Deleted":
            raise LazadaFault("E0002", "Product not exists")
        skus_node = node.get("Skus") if isinstance(node.get("Skus"), dict) else {}
        if skus_node.get("SellerSku"):
            raise LazadaFault(
                "4193",
                "The SellerSku parameter is no longer supported. Please update your parameter "
                "to use SkuId and try again",
            )
        wanted = [_int_value(s, "SkuId") for s in _as_list(skus_node.get("SkuId"))]
        targets = [product.skus[i] for i in wanted if i in product.skus] if wanted else None
        if wanted and len(targets or []) != len(wanted):
            raise LazadaFault("E0003", "Seller Sku not exists")
        chosen = targets if targets is not None else product.live_skus()
        online = [sku for sku in chosen if sku.status == "active"]
        if not online or product.status != "Active":
            raise LazadaFault("E0004", "Product Status not online")
        for sku in online:
            sku.status = "inactive"
        _recompute_status(product)
        self._save(product)
        return {}

    def _remove_product(self, params: Params) -> dict[str, Any]:
        refs = _json_list(params, "sku_id_list")
        seller_skus = _json_list(params, "seller_sku_list")
        if not refs and not seller_skus:
            raise _missing("seller_sku_list")
        if len(refs) + len(seller_skus) > MAX_SKUS_PER_WRITE:
            raise LazadaFault("204", "E204: Too many SKU in one request")
        targets: list[tuple[Product, Sku]] = []
        for ref in refs:
            parts = str(ref).split("_")
            if len(parts) != 3 or parts[0] != "SkuId" or not all(p.isdigit() for p in parts[1:]):
                raise _bad_format(f"{ref!r} is not SkuId_<item id>_<sku id>")
            product = self.state.products.get(int(parts[1]))
            sku = product.skus.get(int(parts[2])) if product else None
            if product is None or sku is None or sku.status == "deleted":
                raise LazadaFault("207", f"E207: SKU not exist: {ref}")
            targets.append((product, sku))
        for seller_sku in seller_skus:
            found = [
                (p, s)
                for p in self.state.products.values()
                for s in p.live_skus()
                if s.seller_sku == seller_sku
            ]
            if not found:
                raise LazadaFault("207", f"E207: SKU not exist: {seller_sku}")
            targets.extend(found)
        for _, sku in targets:
            sku.status = "deleted"
        for product in {id(p): p for p, _ in targets}.values():
            _recompute_status(product)
            self._save(product)
        return {}

    def _update_price_quantity(self, params: Params) -> dict[str, Any]:
        node = _product_node(_structured(params, "payload"))
        skus_node = node.get("Skus") if isinstance(node.get("Skus"), dict) else {}
        rows = _as_list(skus_node.get("Sku"))
        if not rows:
            raise LazadaFault("30", "E030: Empty Request")
        if len(rows) > MAX_SKUS_PER_WRITE:
            raise LazadaFault(
                "4171",
                "The updated SKU quantity exceeds the maximum number 50, please do not update "
                "more than 50 SKUs at once",
            )
        failures: list[dict[str, Any]] = []
        planned = []
        for row in rows:
            try:
                planned.append(self._price_quantity_change(row))
            except LazadaFault as fault:
                failures.append(_detail_row(row, fault))
        self._begin_edit([product.item_id for product, _, _ in planned])
        # Valid rows are applied even when others fail, and the failures are reported.
        touched: dict[int, Product] = {}
        for product, sku, change in planned:
            for attribute, value in change.items():
                setattr(sku, attribute, value)
            touched[product.item_id] = product
        for product in touched.values():
            self._save(product)
        if failures:
            raise LazadaFault("501", "E501: Update product failed", type="ISP", detail=failures)
        return {}

    def _begin_edit(self, item_ids: Sequence[int]) -> None:
        """Refuse the whole call with 4147 while an earlier edit of one of its items is still
        being applied, else hold its items for as long as a round trip takes.

        Lazada applies an item's edit for a while after accepting it, and "concurrent edits of
        one item fail with 4147" (marketplace-apis.md §3.3). Here an edit takes the latency
        (`Faults.latency`; none without one): calls that overlap collide, calls sent one after
        another's answer do not.
        """
        now = time.monotonic()
        busy = sorted({item for item in item_ids if self._editing.get(item, 0.0) > now})
        if busy:
            self.log._faulted("4147")
            raise LazadaFault(
                "4147",
                f"Item {busy[0]} is being edited by another request, please try again later",
            )
        latency = self.faults.latency
        if latency:
            if len(self._editing) > 10_000:
                self._editing = {k: v for k, v in self._editing.items() if v > now}
            self._editing.update(dict.fromkeys(item_ids, now + latency))

    def _price_quantity_change(self, row: Any) -> tuple[Product, Sku, dict[str, Any]]:
        if not isinstance(row, dict):
            raise _bad_format("Sku entries must be objects")
        product, sku = self._locate(row)
        change: dict[str, Any] = {}
        if "Quantity" in row:
            quantity = _quantity(row["Quantity"])
            if quantity < sku.reserved:
                raise LazadaFault(
                    "4152",
                    f"Quantity {quantity} is less than the {sku.reserved} units held by orders",
                )
            if product.campaign_lock and quantity < sku.quantity:
                raise LazadaFault(
                    "4170",
                    "During the campaign there are restrictions for stock adjustments in "
                    "effect. Sellers can increase stocks, but may not decrease stocks.",
                )
            change["quantity"] = quantity
        if "Price" in row:
            change["price"] = _positive_price(row["Price"])
        if "SalePrice" in row:
            change["special_price"] = _positive_price(row["SalePrice"])
        if not change:
            raise _bad_format("a Sku needs Quantity, Price or SalePrice")
        return product, sku, change

    def _locate(self, row: Mapping[str, Any]) -> tuple[Product, Sku]:
        item_id, sku_id = _text_of(row, "ItemId"), _text_of(row, "SkuId")
        seller_sku = _text_of(row, "SellerSku")
        if item_id and sku_id:
            product = self.state.products.get(_int_value(item_id, "ItemId"))
            sku = product.skus.get(_int_value(sku_id, "SkuId")) if product else None
            if product is not None and sku is not None and sku.status != "deleted":
                return product, sku
        elif seller_sku:
            for product in self.state.products.values():
                for sku in product.live_skus():
                    if sku.seller_sku == seller_sku:
                        return product, sku
        else:
            raise _bad_format("a Sku needs ItemId and SkuId, or SellerSku")
        raise LazadaFault("207", "E207: SKU not exist")

    # -- orders ------------------------------------------------------------------------------------

    def _get_orders(self, params: Params) -> dict[str, Any]:
        update_after = _time_param(params, "update_after")
        created_after = _time_param(params, "created_after")
        if update_after is None and created_after is None:
            raise _missing("update_after")
        update_before = _time_param(params, "update_before")
        created_before = _time_param(params, "created_before")
        status = str(params.get("status") or "all")
        if status != "all" and status not in ORDER_STATUSES:
            raise LazadaFault("36", "E036: Invalid status filter")
        sort_by = str(params.get("sort_by") or "created_at")
        if sort_by not in ("created_at", "updated_at"):
            raise LazadaFault("75", "E075: Invalid sort filter.")
        direction = str(params.get("sort_direction") or "DESC").upper()
        if direction not in ("ASC", "DESC"):
            raise LazadaFault("74", "E074: Invalid sort direction.")
        limit = _int_param(params, "limit", default=100, low=1, high=MAX_ORDERS_LIMIT, code="19")
        offset = _int_param(params, "offset", default=0, low=0, high=MAX_ORDERS_OFFSET, code="14")
        matching = [
            order
            for order in self.state.orders.values()
            if _within(order.updated_ms, update_after, update_before)
            and _within(order.created_ms, created_after, created_before)
            and (status == "all" or any(item.status == status for item in order.items))
        ]
        key = "updated_ms" if sort_by == "updated_at" else "created_ms"
        matching.sort(key=lambda o: (getattr(o, key), o.order_id), reverse=direction == "DESC")
        page = matching[offset : offset + limit]
        count = len(page)
        page = self.order_page(offset // limit + 1, page)
        return {
            "count": count,
            "countTotal": len(matching),
            "orders": [self._order_json(order) for order in page],
        }

    def _get_order(self, params: Params) -> dict[str, Any]:
        order_id = str(params.get("order_id") or "")
        if not order_id:
            raise _missing("order_id")
        order = self.state.orders.get(int(order_id)) if order_id.isdigit() else None
        if order is None:
            raise LazadaFault("16", f'E016: "{order_id}" Invalid Order ID')
        return self._order_json(order)

    def _get_orders_items(self, params: Params) -> list[dict[str, Any]]:
        ids = _json_list(params, "order_ids")
        if not ids:
            raise _missing("order_ids")
        if len(ids) > MAX_ORDER_IDS:
            raise LazadaFault("19", f"E019: at most {MAX_ORDER_IDS} order ids")
        if not all(str(i).isdigit() for i in ids):
            raise _bad_format("order_ids must be numbers")
        found = [self.state.orders[int(i)] for i in ids if int(i) in self.state.orders]
        return [
            {
                "order_id": order.order_id,
                "order_number": order.order_id,
                "order_items": [self._order_item_json(order, item) for item in order.items],
            }
            for order in found
        ]

    def _order_json(self, order: Order) -> dict[str, Any]:
        price = sum((item.item_price for item in order.items), Decimal("0"))
        return {
            "order_id": order.order_id,
            "order_number": order.order_id,
            "created_at": self._iso(order.created_ms),
            "updated_at": self._iso(order.updated_ms),
            "price": f"{price:.2f}",
            "voucher": f"{order.voucher:.2f}",
            "shipping_fee": f"{order.shipping_fee:.2f}",
            "items_count": len(order.items),
            "payment_method": order.payment_method,
            "statuses": list(dict.fromkeys(item.status for item in order.items)),
            "customer_first_name": "Emulated",
            "customer_last_name": "Buyer",
            "remarks": "",
            "address_shipping": {
                "country": "Singapore",
                "city": "Singapore",
                "post_code": "018956",
            },
        }

    def _order_item_json(self, order: Order, item: OrderItem) -> dict[str, Any]:
        return {
            "order_item_id": item.order_item_id,
            "order_id": order.order_id,
            "product_id": item.item_id,
            "sku_id": str(item.sku_id),
            "sku": item.seller_sku,
            "shop_sku": f"{item.item_id}_SGAMZ-{item.sku_id}",
            "name": item.name,
            "variation": item.variation,
            "status": item.status,
            "item_price": f"{item.item_price:.2f}",
            "paid_price": f"{item.paid_price:.2f}",
            "currency": "SGD",
            "tracking_code": item.tracking_code,
            "shipment_provider": item.shipment_provider,
            "reason": item.reason,
            "cancel_return_initiator": item.cancel_initiator,
            "payment_time": str(order.created_ms) if item.status != "unpaid" else "",
            "created_at": self._local(order.created_ms),
            "updated_at": self._local(item.updated_ms),
        }

    def _order_item(self, product: Product, sku: Sku, status: str, now: int) -> OrderItem:
        values = [sku.sale_prop[name] for name, _ in product.variations if name in sku.sale_prop]
        return OrderItem(
            order_item_id=self._order_item_ids.next(),
            item_id=product.item_id,
            sku_id=sku.sku_id,
            seller_sku=sku.seller_sku,
            name=product.name,
            variation=",".join(values),
            status=status,
            item_price=sku.price,
            paid_price=sku.special_price or sku.price,
            updated_ms=now,
        )

    # -- state ---------------------------------------------------------------------------------

    def _product_from(self, shop_item: ShopItem, *, status: str | None) -> Product:
        live = shop_item.status == "live"
        package = {
            "package_weight": f"{shop_item.weight_kg:.2f}",
            "package_length": "20.00",
            "package_width": "15.00",
            "package_height": "5.00",
        }
        variations: list[tuple[str, list[str]]] = [(name, []) for name in shop_item.option_names]
        product = Product(
            item_id=self._item_ids.next(),
            name=shop_item.name,
            description=shop_item.description,
            brand=shop_item.brand,
            category_id=LEAF_IDS.get(shop_item.category, next(iter(LEAF_IDS.values()))),
            images=[f"{IMAGE_HOST}{hashlib.md5(shop_item.name.encode()).hexdigest()}.jpg"],
            created_ms=shop_item.created_at * 1000,
            updated_ms=shop_item.updated_at * 1000,
            variations=variations,
            skus={},
            status=status or ("Active" if live else "InActive"),
        )
        for variant in shop_item.variants:
            for name, values in variations:
                value = variant.options.get(name, "")
                if value and value not in values:
                    values.append(value)
            sku = Sku(
                sku_id=self._sku_ids.next(),
                seller_sku=variant.sku,
                sale_prop={name: variant.options[name] for name in shop_item.option_names},
                price=variant.price,
                quantity=variant.quantity,
                package=dict(package),
                status="active" if live else "inactive",
            )
            product.skus[sku.sku_id] = sku
        return product

    def _category(self, node: Mapping[str, Any], *, required: bool) -> int | None:
        raw = _text_of(node, "PrimaryCategory")
        if not raw:
            if required:
                raise _required("PrimaryCategory")
            return None
        if not raw.isdigit():
            raise LazadaFault("201", f"E201: {raw} Invalid CategoryId")
        category_id = int(raw)
        if category_id in DEPARTMENTS.values():
            raise LazadaFault("4134", "Please select the last level category.")
        if category_id not in LEAF_IDS.values():
            raise LazadaFault("201", f"E201: {raw} Invalid CategoryId")
        return category_id

    def _owner_of(self, sku_id: str) -> Product | None:
        if not sku_id.isdigit():
            return None
        wanted = int(sku_id)
        for product in self.state.products.values():
            sku = product.skus.get(wanted)
            if sku is not None and sku.status != "deleted" and product.status != "Deleted":
                return product
        return None

    def _product_or_fail(self, item_id: int) -> Product:
        product = self.state.products.get(item_id)
        if product is None:
            raise KeyError(f"no Lazada product {item_id}")
        return product

    def _sku_of(self, product: Product, variant_id: str) -> Sku:
        if variant_id:
            return product.skus[int(variant_id)]
        live = product.live_skus()
        if len(live) != 1:
            raise ValueError(f"product {product.item_id} has {len(live)} SKUs: name one")
        return live[0]

    def _save(self, product: Product, *, touch: bool = True) -> None:
        if touch:
            # Strictly later than before, even when the clock has not moved a whole second.
            product.updated_ms = max(self._now_ms(), product.updated_ms + 1000)
        self.state.products[product.item_id] = product
        self.state.version += 1

    def _now_ms(self) -> int:
        return int(self.now()) * 1000

    def _local(self, millis: int) -> str:
        """Order item times, as Lazada writes them: "2024-12-01 10:00:00 +0800"."""
        return datetime.fromtimestamp(millis / 1000, tz=self.zone).strftime("%Y-%m-%d %H:%M:%S %z")

    def _iso(self, millis: int) -> str:
        """Order header times, as Lazada writes them: "2024-12-01T10:00:00+08:00"."""
        return datetime.fromtimestamp(millis / 1000, tz=self.zone).isoformat(timespec="seconds")


# -- request parsing (raise LazadaFault on bad input) -------------------------------------------

_PACKAGE = ("package_weight", "package_length", "package_width", "package_height")


def _params(request: Request) -> Params:
    """Query and body parameters together: POST bodies are form-encoded (the official SDKs),
    multipart, or a JSON object (some third-party clients)."""
    params: Params = {name: values[0] for name, values in request.query.items() if values}
    if request.method != "POST" or not request.body:
        return params
    if request.content_type == "multipart/form-data":
        try:
            form = request.form()
        except ValueError as exc:
            raise _bad_format(f"unreadable form body: {exc}") from None
        params.update({name: part.value.decode(errors="replace") for name, part in form.items()})
    elif request.content_type == "application/json":
        body = request.json_object(
            _bad_format("the body is not valid JSON"), _bad_format("the body must be a JSON object")
        )
        params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    else:
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            raise _bad_format("the body is not UTF-8") from None
        form = parse_qs(text, keep_blank_values=True)
        params.update({name: values[0] for name, values in form.items() if values})
    return params


def _sign(secret: str, path: str, params: Mapping[str, Any]) -> str:
    pairs = "".join(
        f"{name}{value}"
        for name, value in sorted(params.items())
        if name != "sign" and str(value) != ""
    )
    return hmac.new(secret.encode(), (path + pairs).encode(), hashlib.sha256).hexdigest().upper()


def _timestamp_seconds(raw: str) -> float:
    if raw.isdigit():
        return int(raw) / 1000
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise LazadaFault("InvalidTimestamp", "Timestamp is invalid or expired") from None
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).timestamp()


def _structured(params: Params, name: str) -> Any:
    """The `Request` content of an XML or JSON parameter."""
    raw = params.get(name)
    if not raw or not str(raw).strip():
        raise LazadaFault("30", "E030: Empty Request")
    text = str(raw).strip()
    if text.startswith("<"):
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            raise _bad_format(f"{name} is not well-formed XML: {exc}") from None
        if root.tag != "Request":
            raise _bad_format(f"{name} must have a <Request> root")
        return _xml_data(root)
    try:
        data = json.loads(text)
    except ValueError:
        raise LazadaFault("1001", "The parameters are not in JSON format") from None
    if not isinstance(data, dict) or not isinstance(data.get("Request"), dict):
        raise _bad_format(f"{name} must hold a Request object")
    return data["Request"]


def _xml_data(element: ElementTree.Element) -> Any:
    """An element as data: text for a leaf, a dict of children otherwise (repeated tags as
    lists)."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    data: dict[str, Any] = {}
    for child in children:
        value = _xml_data(child)
        if child.tag in data:
            existing = data[child.tag]
            data[child.tag] = (
                [*existing, value] if isinstance(existing, list) else [existing, value]
            )
        else:
            data[child.tag] = value
    return data


def _product_node(request: Any) -> dict[str, Any]:
    product = request.get("Product") if isinstance(request, dict) else None
    if not isinstance(product, dict):
        raise _bad_format("Request.Product is required")
    return product


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _text_of(node: Mapping[str, Any], name: str) -> str:
    value = node.get(name)
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def _int_value(raw: Any, name: str) -> int:
    text = str(raw).strip()
    if not text.isdigit():
        raise _bad_format(f"{name} must be a number")
    return int(text)


def _int_param(params: Params, name: str, *, default: int, low: int, high: int, code: str) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = str(raw)
    if not text.isdigit() or not low <= int(text) <= high:
        label = {"19": "Limit", "14": "Offset"}.get(code, name)
        raise LazadaFault(code, f'E0{code}: "{raw}" Invalid {label}')
    return int(text)


def _time_param(params: Params, name: str) -> int | None:
    """An ISO 8601 time filter in whole seconds; E017 if it cannot be read."""
    raw = params.get(name)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise LazadaFault("17", f'E017: "{raw}" Invalid Date Format') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _within(millis: int, after: int | None, before: int | None) -> bool:
    """Inclusive both ways, to the second, as Lazada's *_after / *_before filters are."""
    second = millis // 1000
    return (after is None or second >= after) and (before is None or second <= before)


def _in_filter(product: Product, product_filter: str) -> bool:
    if product_filter == "deleted":
        return product.status == "Deleted"
    if product.status == "Deleted":
        return False
    if product_filter == "all":
        return True
    if product_filter == "live":
        return product.status == "Active"
    if product_filter == "inactive":
        return product.status == "InActive"
    if product_filter == "sold-out":
        return all(sku.quantity == 0 for sku in product.live_skus())
    return False  # image-missing, pending, rejected: an emulated shop has none


def _json_list(params: Params, name: str) -> list[Any]:
    raw = params.get(name)
    if not raw:
        return []
    try:
        value = json.loads(str(raw))
    except ValueError:
        raise _bad_format(f"{name} must be a JSON array") from None
    if not isinstance(value, list):
        raise _bad_format(f"{name} must be a JSON array")
    return value


def _images(node: Mapping[str, Any], *, required: bool) -> list[str]:
    images_node = node.get("Images") if isinstance(node.get("Images"), dict) else {}
    images = [str(url).strip() for url in _as_list(images_node.get("Image")) if str(url).strip()]
    if not images and required:
        raise LazadaFault("4139", "BIZ_CHECK_MAIN_IMAGE_REQUIRE:Main image is require")
    if len(images) > 8:
        raise LazadaFault("4169", "CHK_IMAGE_MAX_ITEMS: at most 8 images")
    outer = [url for url in images if not url.startswith(IMAGE_HOST)]
    if outer:
        raise LazadaFault(
            "4138", f"BIZ_CHECK_EXIST_OUTER_IMAGE: migrate {outer[0]} to Lazada first"
        )
    return images


def _variations(raw: Any) -> list[tuple[str, list[str]]]:
    """The `variation` block (variation1, variation2, ...) as [(name, options)]."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, dict):
        raise LazadaFault("VARIATION_EMPTY", "The Variation is Empty")
    if len(raw) > MAX_VARIATIONS:
        raise LazadaFault(
            "VARIATION_SIZE_LIMIT",
            f"The Variations Size Exceeds Maximum Size Limit, The Size Limit is: {MAX_VARIATIONS}.",
        )
    variations = []
    for key in sorted(raw, key=str.lower):
        node = raw[key]
        name = _text_of(node, "name") if isinstance(node, dict) else ""
        if not name:
            raise LazadaFault("VARIATION_NAME_EMPTY", f"The Variation Name is Empty ({key})")
        if len(name) > MAX_VARIATION_NAME:
            raise LazadaFault(
                "VARIATION_NAME_LENGTH_LIMIT",
                f"The Variation Name's Content Exceeds Maximum Length Limit, The Length Limit "
                f"is: {MAX_VARIATION_NAME}, The Name is: {name}",
            )
        options_node = node.get("options")
        if isinstance(options_node, dict):
            options_node = options_node.get("option")
        options = [str(o).strip() for o in _as_list(options_node)]
        if not options or not all(options):
            raise LazadaFault("VARIATION_OPTIONS_EMPTY", f"The Variation Options Is Empty ({key})")
        if len(options) > MAX_OPTIONS:
            raise LazadaFault(
                "OPTIONS_SIZE_LIMIT",
                f"The Variation Options Exceeds Maximum Size Limit, The Size Limit is: "
                f"{MAX_OPTIONS}, The Name is: {name}",
            )
        long_ones = [o for o in options if len(o) > MAX_OPTION_LENGTH]
        if long_ones:
            raise LazadaFault(
                "VARIATION_OPTION_LENGTH_LIMIT",
                f"The Variation Option Exceeds Maximum Length Limit, The Length Limit is: "
                f"{MAX_OPTION_LENGTH}, The Option is: {long_ones[0]}",
            )
        if len(set(options)) != len(options):
            raise LazadaFault(
                "VARIATION_OPTION_DUPLICATE", f"The Variation Option Is Duplicate ({name})"
            )
        variations.append((name, options))
    if len({name for name, _ in variations}) != len(variations):
        raise LazadaFault("VARIATION_NAME_DUPLICATE", "The Variation Name Is Duplicate")
    return variations


def _merged(
    existing: list[tuple[str, list[str]]], given: list[tuple[str, list[str]]]
) -> list[tuple[str, list[str]]]:
    """An item's variations extended by those of a request adding SKUs to it."""
    if not given:
        return [(name, list(values)) for name, values in existing]
    if [name for name, _ in given] != [name for name, _ in existing]:
        raise LazadaFault("4133", "Invalid variation: the names differ from the product's")
    return [
        (name, list(dict.fromkeys([*old, *new])))
        for (name, old), (_, new) in zip(existing, given, strict=True)
    ]


def _new_sku(
    row: Any,
    variations: list[tuple[str, list[str]]],
    taken: set[str],
    combos: set[tuple[tuple[str, str], ...]],
) -> Sku:
    if not isinstance(row, dict):
        raise _bad_format("Sku entries must be objects")
    seller_sku = _text_of(row, "SellerSku")
    if not seller_sku:
        raise _required("SellerSku")
    if len(seller_sku) > 200:
        raise LazadaFault("4150", "SELLER_SKU_INVALID: at most 200 characters")
    if seller_sku in taken:
        raise LazadaFault("4105", f"BIZ_CHECK_SELLER_SKU_DUPLICATE: {seller_sku}")
    taken.add(seller_sku)
    sale_prop_node = row.get("saleProp") if isinstance(row.get("saleProp"), dict) else {}
    sale_prop = {}
    for name, options in variations:
        value = _text_of(sale_prop_node, name)
        if not value:
            raise LazadaFault(
                "SKU_VARIATION_NAME_MISSING",
                f"The SKU Variation Name is Missing, The SellerSKU is: {seller_sku}, The Missing "
                f"SKU Variation Name is: {name}",
            )
        if value not in options:
            raise LazadaFault(
                "SKU_VARIATION_OPTION_NOT_EXIST",
                f"The SKU Variation Option is Not Exist, The SellerSKU is: {seller_sku}, The SKU "
                f"Variation Name is: {name}, The SKU Variation Option is: {value}",
            )
        sale_prop[name] = value
    combo = tuple(sorted(sale_prop.items()))
    if variations and combo in combos:
        raise LazadaFault("4112", f"CHK_SKU_PROPS_DUPLICATE: {seller_sku}")
    combos.add(combo)
    missing = [name for name in _PACKAGE if not _text_of(row, name)]
    if missing:
        raise _required(missing[0])
    status = (_text_of(row, "Status") or "active").lower()
    if status not in ("active", "inactive"):
        raise _bad_format("Status must be active or inactive")
    return Sku(
        sku_id=0,  # given once the whole request is valid
        seller_sku=seller_sku,
        sale_prop=sale_prop,
        price=_positive_price(row.get("price")),
        quantity=_quantity(row.get("quantity", "0")),
        package={name: _package_value(row[name], name) for name in _PACKAGE},
        status=status,
    )


def _positive_price(raw: Any) -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise LazadaFault("4104", "BIZ_CHECK_PRICE_PRECISION_INVALID") from None
    if not value.is_finite() or value <= 0:
        raise LazadaFault("4118", "BIZ_CHECK_PRICE_IS_ZERO")
    if value != value.quantize(Decimal("0.01")):
        raise LazadaFault("4104", "BIZ_CHECK_PRICE_PRECISION_INVALID")
    return value


def _quantity(raw: Any) -> int:
    text = str(raw).strip()
    if not text.isdigit():
        raise LazadaFault("4152", "THD_INVENTORY_ERR_INV_PARAM_ILLEGAL:illegal parameter:quantity")
    return int(text)


def _package_value(raw: Any, name: str) -> str:
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise LazadaFault("4149", f"BIZ_CHECK_PACKAGE_DECIMAL_INVALID: {name}") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise LazadaFault("4149", f"BIZ_CHECK_PACKAGE_DECIMAL_INVALID: {name}")
    return f"{value:.2f}"


def _detail_row(row: Any, fault: LazadaFault) -> dict[str, Any]:
    """One entry of `detail[]`: which SKU failed and why."""
    node = row if isinstance(row, dict) else {}
    return {
        "field": "SkuId",
        "code": fault.code,
        "message": fault.message,
        "item_id": _text_of(node, "ItemId"),
        "sku_id": _text_of(node, "SkuId"),
        "seller_sku": _text_of(node, "SellerSku"),
    }


def _recompute_status(product: Product) -> None:
    """A product is Active while one SKU is, Deleted once every SKU is, else InActive."""
    statuses = {sku.status for sku in product.skus.values()}
    if statuses and statuses <= {"deleted"}:
        product.status = "Deleted"
    elif "active" in statuses:
        product.status = "Active"
    else:
        product.status = "InActive"


def _payload_text(body: Any) -> str:
    """The `payload` of a logged form body, to tell stock calls from price calls."""
    raw = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    values = parse_qs(raw).get("payload")
    return values[0] if values else raw


def _leaf_node(name: str) -> dict[str, Any]:
    return {"category_id": LEAF_IDS[name], "name": name, "leaf": True, "var": True, "children": []}


def _error(fault: LazadaFault) -> Reply:
    body: dict[str, Any] = {
        "code": fault.code,
        "type": fault.type,
        "message": fault.message,
        "request_id": _request_id(),
    }
    if fault.detail:
        body["detail"] = fault.detail
    return Reply.json(body)


def _request_id() -> str:
    return uuid.uuid4().hex[:25]
