"""A local TikTok Shop Partner API (202309+) for tests, the demo and benchmarks, and the same
server as a shop bound to Tokopedia.

It speaks the subset omni uses, with TikTok's rules (shared/reference/marketplace-apis.md §2):
`app_key`, `timestamp` (up to 5 minutes behind and 30 seconds ahead of the server clock) and
`sign` on every call, the access token in the `x-tts-access-token` header, `shop_cipher` required
on shop calls and refused on the others (Get Authorized Shops, image upload); the signature is
recomputed over the path, the sorted query and the raw body (multipart bodies excluded).
Replies are `{"code", "message", "request_id", "data"}` with TikTok's codes and messages
(36009004 in its many meanings, 106001 bad sign, 105002 expired token, 106013 missing shop
cipher, 12xxxxxx business errors). Products are searched with opaque page tokens (standard
base64, so `+` and `/` occur), `page_size` ≤ 100 and at most 10,000 results per search; orders
likewise; order details take at most 50 ids. Stock and price are written one product per call;
per-SKU stock failures come back in `data.errors[]` with code 0, as TikTok documents.

Throttled calls (the framework's `throttle_rate`) get code 36009002, with HTTP 429 and a
`Retry-After` header or inside an HTTP 200 body, as `throttle_style` says; server errors
(`error_rate`) are HTTP 503 or 500 with code 36009003. Token refresh is served on this same base
URL (`GET /api/v2/token/refresh`), whereas TikTok serves it on its own auth host.

Choices where TikTok's documentation is silent (the adapter relies on none of them beyond what
the reference states):
- HTTP status of error replies: 401 for credential errors, 400 for malformed calls, 404/405 for
  unknown paths and methods, 200 for business errors. Clients must decide on `code`.
- A product search without `status` (or with `ALL`) returns every product but deleted ones;
  `status: DELETED` returns only those. Results come in product id order.
- Order details refuse the whole call (21008111, "The order/package does not belong to the
  current seller", as TikTok answers it) when one id is not this shop's, and refuse ids that
  are not all digits as an invalid parameter (98001004).
- Line items are one per unit, as in TikTok's samples (there is no quantity field).
- The Tokopedia status of a product mirrors its TikTok status; Tokopedia orders carry
  `commerce_platform: "TOKOPEDIA"` (the platform name TikTok uses in
  `integrated_platform_statuses`), TikTok Shop orders `"TIKTOK_SHOP"` (seen in TikTok's samples).
"""

import base64
import bisect
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

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
    ThrottleStyle,
    TokenKind,
    TokenStore,
    signed_json_push,
)
from channels.emulators.order_stock import OrderStock, floored
from channels.emulators.shop import BRANDS, LEAVES, ShopItem, ShopMix, category_ids, generate_shop

TIMESTAMP_PAST = 300  # seconds a timestamp may lag behind the server clock
TIMESTAMP_FUTURE = 30  # seconds it may run ahead
ACCESS_TOKEN_TTL = 7 * 86400
REFRESH_TOKEN_TTL = 365 * 86400
MAX_PAGE_SIZE = 100
MAX_SEARCH_RESULTS = 10_000
MAX_ORDER_IDS = 50
MAX_PRODUCT_IDS = 20
MAX_SKUS = 100
MAX_IMAGES = 9
MAX_QUANTITY = 99_999  # Update Inventory: 0 <= quantity < 99,999
MAX_CREATE_QUANTITY = 999_999  # Create/Edit Product: at most 999,999 per warehouse
PRODUCT_STATUSES = (
    "DRAFT",
    "PENDING",
    "FAILED",
    "ACTIVATE",
    "SELLER_DEACTIVATED",
    "PLATFORM_DEACTIVATED",
    "FREEZE",
    "DELETED",
)
ORDER_STATUSES = (
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
)
# The status an order is put in to stand for each of omni's states. TikTok has no status for a
# returned order: a parcel the carrier had and brought back ends CANCELLED after collection.
STATE_STATUS: dict[OrderState, str] = {
    OrderState.UNPAID: "UNPAID",
    OrderState.PAID: "AWAITING_SHIPMENT",
    OrderState.SHIPPED: "IN_TRANSIT",
    OrderState.DELIVERED: "DELIVERED",
    OrderState.CANCELLED: "CANCELLED",
    OrderState.RETURNED: "CANCELLED",
}
PACKAGE_STATUS = {
    "UNPAID": "",
    "ON_HOLD": "",
    "AWAITING_SHIPMENT": "TO_FULFILL",
    "PARTIALLY_SHIPPING": "PROCESSING",
    "AWAITING_COLLECTION": "PROCESSING",
    "IN_TRANSIT": "FULFILLING",
    "DELIVERED": "COMPLETED",
    "COMPLETED": "COMPLETED",
    "CANCELLED": "CANCELLED",
}
TIKTOK_SHOP = "TIKTOK_SHOP"
TOKOPEDIA = "TOKOPEDIA"
FIRST_PRODUCT_ID = 1_729_500_000_000_000_001
FIRST_SKU_ID = 1_729_600_000_000_000_001
FIRST_ORDER_ID = 576_461_413_038_000_001
FIRST_LINE_ID = 577_086_512_123_000_001
FIRST_NOTIFICATION = 7_327_112_393_057_000_001
WEBHOOK_ORDER_STATUS = 1
ORDER_NOT_SELLERS = 21008111  # Get Order Detail for an id that is not the shop's
PRICE_ERRORS = {12052012: "Incorrect price format", 12052073: "The product price is invalid"}
PRODUCT_MISSING = {
    12019150: "The product ID does not exist.",
    12052032: "The product does not exist",
}

PRODUCT = "/product/202309/products/{product_id:int}"

Params = dict[str, str]
Body = dict[str, Any]


class TikTokFault(Refusal):
    """A TikTok error answer: `code`, `message`, and the HTTP status it comes with."""

    def __init__(self, code: int, message: str, *, status: int = 200) -> None:
        super().__init__(message, status=status)
        self.code = code


def _invalid(name: str, reason: str, expected: str) -> TikTokFault:
    return TikTokFault(
        98001004, f"Parameter {name} is invalid. Reason: {reason}. Expected: {expected}"
    )


def _credentials_fault(message: str) -> TikTokFault:
    return TikTokFault(36009004, message, status=401)


@dataclass(slots=True)
class Sku:
    id: str
    seller_sku: str
    price: Decimal
    inventory: dict[str, int]  # warehouse id -> quantity
    attributes: list[tuple[str, str]] = field(default_factory=list)  # (name, value_name)
    identifier_code: dict[str, str] | None = None


@dataclass(slots=True)
class Product:
    id: str
    title: str
    description: str
    category_id: str
    brand_id: str
    status: str
    create_time: int
    update_time: int
    images: list[str]  # image uris
    weight: Decimal  # kg
    skus: dict[str, Sku]  # insertion order is TikTok's order
    dimensions: dict[str, str] | None = None  # length/width/height in cm, as strings
    tokopedia: str | None = None  # the product's status on Tokopedia; None: not listed there
    price_locked: bool = False  # Update Price fails, as during some promotions


@dataclass(slots=True)
class TikTokState:
    """Everything one emulated shop holds. Guarded by the emulator's lock."""

    products: dict[str, Product] = field(default_factory=dict)  # in id order
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # TikTok's order shape
    order_stock: OrderStock = field(default_factory=OrderStock)  # units orders hold
    images: set[str] = field(default_factory=set)
    product_ids: IdSequence = field(default_factory=lambda: IdSequence(FIRST_PRODUCT_ID))
    sku_ids: IdSequence = field(default_factory=lambda: IdSequence(FIRST_SKU_ID))
    order_ids: IdSequence = field(default_factory=lambda: IdSequence(FIRST_ORDER_ID))
    line_ids: IdSequence = field(default_factory=lambda: IdSequence(FIRST_LINE_ID))
    notifications: IdSequence = field(default_factory=lambda: IdSequence(FIRST_NOTIFICATION))
    version: int = 0  # bumped on every product change; keys the search cache


# Category tree from the generator's catalogue: departments, then leaves; TikTok's ids are text.
DEPARTMENTS, LEAF_IDS = (
    {name: str(number) for name, number in ids.items()} for ids in category_ids(600_001, 853_001)
)
BRAND_IDS = {name: str(7_082_427_311_584_347_905 + n) for n, name in enumerate(BRANDS)}


class TikTokShopEmulator(ExpiringTokens, Emulator):
    """One TikTok Shop on 127.0.0.1.

    `items`, `seed`, `pos_skus` and `mix` generate the shop (see `generate_shop`); the app keys,
    the shop cipher and the tokens derive from `seed` too. `credentials` is what an adapter
    needs to connect. `min_title_length` is the shortest product name accepted: TikTok asks 25
    characters outside the US and UK; 1 by default so uploads of short POS names work here.
    """

    name = "tiktok_shop"
    secret_fields = ("app_secret",)
    platform = TIKTOK_SHOP  # the commerce_platform of the orders this shop receives
    bound_to_tokopedia = False  # whether new products are listed on Tokopedia too
    # `auth` is the call's scope: "shop" calls need `shop_cipher`, "global" ones refuse it,
    # and the token refresh ("token", on TikTok's auth host) is not signed at all.
    routes = (
        Route("GET", "/authorization/202309/shops", "_shops", auth="global"),
        Route("GET", "/logistics/202309/warehouses", "_warehouses", auth="shop"),
        Route("GET", "/product/202309/categories", "_categories", auth="shop"),
        Route("GET", "/product/202309/brands", "_brands", auth="shop"),
        Route("POST", "/product/202309/images/upload", "_upload_image", auth="global"),
        *(
            Route("POST", f"/product/{version}/products/search", "_search_products", auth="shop")
            for version in ("202309", "202312", "202502")
        ),
        Route("POST", "/product/202309/products", "_create_product", auth="shop"),
        Route("DELETE", "/product/202309/products", "_delete_products", auth="shop"),
        Route("POST", "/product/202309/products/activate", "_activate_products", auth="shop"),
        Route("POST", "/product/202309/products/deactivate", "_deactivate_products", auth="shop"),
        Route("GET", PRODUCT, "_get_product", auth="shop"),
        Route("PUT", PRODUCT, "_edit_product", auth="shop"),
        Route("POST", f"{PRODUCT}/partial_edit", "_partial_edit", auth="shop"),
        Route("POST", f"{PRODUCT}/inventory/update", "_update_inventory", auth="shop"),
        Route("POST", f"{PRODUCT}/prices/update", "_update_prices", auth="shop"),
        Route("POST", "/order/202309/orders/search", "_search_orders", auth="shop"),
        Route("GET", "/order/202309/orders", "_get_orders", auth="shop"),
        Route("GET", "/api/v2/token/refresh", "_refresh", auth="token"),
    )

    def __init__(
        self,
        *,
        items: int = 0,
        seed: int = 1,
        pos_skus: Sequence[str] = (),
        mix: ShopMix | None = None,
        region: str = "SG",
        currency: str = "SGD",
        shop_id: str = "7494049642642441621",
        min_title_length: int = 1,
        throttle_style: ThrottleStyle = "mixed",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, faults=faults, clock=clock)
        self.region = region
        self.currency = currency
        self.shop_id = shop_id
        self.min_title_length = min_title_length
        self.throttle_style = throttle_style
        self.state = TikTokState()
        self._secrets = random.Random(f"tiktok-secrets-{self.name}-{seed}")
        self.app_key = "6" + self._secrets.randbytes(6).hex()
        self.app_secret = self._secrets.randbytes(20).hex()
        self.shop_cipher = "ROW_" + base64.b64encode(self._secrets.randbytes(18)).decode()
        self.warehouse_id = "7068517275539719942"
        self.other_warehouse_id = "7068517275539719943"
        # A refresh replaces the refresh token and leaves the old access token valid until it
        # expires.
        self.tokens = TokenStore(
            self._new_token, access_ttl=ACCESS_TOKEN_TTL, refresh_ttl=REFRESH_TOKEN_TTL
        )
        # A split scan asks for a few dozen windows.
        self._search_cache: ShopCache[tuple[Any, ...], list[str]] = ShopCache(256)
        for item in generate_shop(items, seed, pos_skus, mix=mix, now=clock()):
            self.put_item(item)

    # -- test helpers ----------------------------------------------------------------------

    @property
    def credentials(self) -> dict[str, Any]:
        """app_key, app_secret, the current access and refresh tokens and the shop cipher."""
        tokens = self.tokens.current
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
            "shop_cipher": self.shop_cipher,
        }

    def put_item(
        self, shop_item: ShopItem, *, status: str | None = None, tokopedia: bool | None = None
    ) -> str:
        """Add a generated (or hand-made) item: one SKU without sales attributes, or one SKU
        per variant with its options as sales attributes. `tokopedia` lists it on Tokopedia
        too (default: whether the shop is bound to Tokopedia). Its product id."""
        if status is not None and status not in PRODUCT_STATUSES:
            raise ValueError(f"unknown TikTok product status {status!r}")
        with self.lock:
            product = Product(
                id=str(self.state.product_ids.next()),
                title=shop_item.name,
                description=shop_item.description,
                category_id=LEAF_IDS.get(shop_item.category, next(iter(LEAF_IDS.values()))),
                brand_id=BRAND_IDS.get(shop_item.brand, ""),
                status=status
                or ("ACTIVATE" if shop_item.status == "live" else "SELLER_DEACTIVATED"),
                create_time=shop_item.created_at,
                update_time=shop_item.updated_at,
                images=[_image_uri(shop_item.name.encode())],
                weight=shop_item.weight_kg,
                skus={},
            )
            for variant in shop_item.variants:
                sku = Sku(
                    id=str(self.state.sku_ids.next()),
                    seller_sku=variant.sku,
                    price=variant.price,
                    inventory={self.warehouse_id: variant.quantity},
                    attributes=[(name, variant.options[name]) for name in shop_item.option_names],
                )
                product.skus[sku.id] = sku
            self.state.images.update(product.images)  # as if uploaded: edits may send them back
            on_tokopedia = self.bound_to_tokopedia if tokopedia is None else tokopedia
            product.tokopedia = product.status if on_tokopedia else None
            self._save(product, touch=False)
            return product.id

    def touch_item(self, item_id: str, *, name: str) -> None:
        """Rename a product as the seller would; its update time moves."""
        with self.lock:
            product = self.state.products[item_id]
            product.title = name
            self._save(product)

    def remove_item(self, item_id: str) -> None:
        """Delete a product as the seller would (status DELETED); its update time moves."""
        self.set_product_status(item_id, "DELETED")

    def set_product_status(self, item_id: str, status: str) -> None:
        """Set any product status (ACTIVATE, SELLER_DEACTIVATED, FREEZE, ...)."""
        if status not in PRODUCT_STATUSES:
            raise ValueError(f"unknown TikTok product status {status!r}")
        with self.lock:
            product = self.state.products[item_id]
            self._set_status(product, status)
            self._save(product)

    def set_stock(self, item_id: str, sku_id: str, inventory: dict[str, int]) -> None:
        """Replace a SKU's stock per warehouse, e.g. to stock it in two warehouses."""
        with self.lock:
            self.state.products[item_id].skus[sku_id].inventory = dict(inventory)

    def set_price_locked(self, item_id: str, locked: bool = True) -> None:
        """While locked (as in some promotions), Update Price fails for the product."""
        with self.lock:
            self.state.products[item_id].price_locked = locked

    def product_ids(self, *statuses: str) -> list[str]:
        """Product ids in order, optionally only those with one of `statuses`."""
        with self.lock:
            return [
                p.id for p in self.state.products.values() if not statuses or p.status in statuses
            ]

    def product(self, item_id: str) -> dict[str, Any]:
        """The product as Get Product describes it."""
        with self.lock:
            return self._product_detail(self.state.products[item_id])

    def iter_listings(self) -> Iterator[Listing]:
        """Every SKU of every product not deleted that this shop lists (`_listed_products`),
        the SKU id "" for a product with a single SKU: its stock in all warehouses and its
        pre-tax price."""
        for product in self._listed_products():
            single = len(product.skus) == 1
            for sku in product.skus.values():
                stock = sum(sku.inventory.values())
                yield Listing(product.id, "" if single else sku.id, stock, sku.price)

    def update_calls(self, what: str) -> int:
        """How many Update Inventory (`"stock"`) or Update Price (`"price"`) calls succeeded."""
        suffix = {"stock": "/inventory/update", "price": "/prices/update"}[what]
        return sum(
            1
            for call in list(self.log.writes)
            if call.path.endswith(suffix)
            and isinstance(call.reply, dict)
            and call.reply.get("code") == 0
        )

    def create_order(
        self,
        lines: Sequence[tuple[str, str, int]],
        *,
        state: OrderState | str = OrderState.UNPAID,
        platform: str | None = None,
        at: float | None = None,
    ) -> str:
        """A buyer's order of `[(item_id, variant_id, quantity)]` (variant "" for a single-SKU
        product), in the TikTok status standing for omni's `state` ("unpaid", "paid", ...) or in
        a TikTok status given as is ("ON_HOLD", "COMPLETED", ...), placed on `platform`
        (default: this shop's own). `at` (Unix seconds) backdates it. Its order id, which is
        also the number staff search by.

        As on TikTok, placing the order takes its units off the SKU's stock in the order's
        warehouse at once (never below zero: TikTok sells no more than it shows, so an order
        beyond stock takes what is left), and cancelling it puts back what was taken, once; an
        order created cancelled leaves stock as it was. A returned order (a parcel brought back
        after collection) restocks nothing: the seller decides what goes back on sale.
        """
        status, returned = _status_for(state)
        with self.lock:
            skus = [
                (self._order_sku(item_id, variant_id), qty) for item_id, variant_id, qty in lines
            ]
            if not any(qty > 0 for _, qty in skus):
                raise ValueError("an order needs at least one unit")
            now = int(self.now() if at is None else at)
            order_id = str(self.state.order_ids.next())
            line_items = [
                item for (product, sku), qty in skus for item in self._units(product, sku, qty)
            ]
            subtotal = sum((Decimal(item["sale_price"]) for item in line_items), Decimal("0"))
            order: dict[str, Any] = {
                "id": order_id,
                "status": "UNPAID",
                "create_time": now,
                "update_time": now,
                "commerce_platform": platform or self.platform,
                "user_id": "7021436810468230477",
                "buyer_email": "v2b2V5@chat.seller.tiktok.test",
                "payment_method_name": "Bank transfer",
                "is_cod": False,
                "fulfillment_type": "FULFILLMENT_BY_SELLER",
                "delivery_type": "HOME_DELIVERY",
                "shipping_type": "TIKTOK",
                "warehouse_id": self.warehouse_id,
                "payment": {
                    "currency": self.currency,
                    "sub_total": _money(subtotal),
                    "shipping_fee": "0",
                    "seller_discount": "0",
                    "platform_discount": "0",
                    "total_amount": _money(subtotal),
                    "original_total_product_price": _money(subtotal),
                },
                "line_items": line_items,
                "packages": [],
                "is_buyer_request_cancel": False,
            }
            self.state.orders[order_id] = order
            self.state.order_stock.take(
                order_id,
                [(self._stock_target(sku), qty) for (_, sku), qty in skus if qty > 0],
                self._adjust,
            )
            self._move(order, status, returned=returned, now=now)
            return order_id

    def move_order(
        self, order_number: str, state: OrderState | str, *, at: float | None = None
    ) -> None:
        """Move an order to the status standing for `state` (or a TikTok status given as is);
        its update time moves forward, and pay, collection and delivery times, courier and
        tracking number appear as TikTok fills them in. Cancelling gives the order's units
        back, once (a return does not). KeyError for an unknown order."""
        status, returned = _status_for(state)
        with self.lock:
            order = self.state.orders[order_number]
            now = int(self.now() if at is None else at)
            self._move(
                order, status, returned=returned, now=max(now, int(order["update_time"]) + 1)
            )

    def order(self, order_number: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.state.orders[order_number]))

    def signed_webhook(self, order_number: str, url: str) -> tuple[dict[str, str], bytes]:
        """An ORDER_STATUS_CHANGE push (type 1) for the order, signed as TikTok signs pushes:
        `Authorization` = HMAC-SHA256(app_secret, app_key + raw body), lowercase hex. TikTok
        does not sign the callback URL, so `url` only says where it would be delivered."""
        with self.lock:
            order = self.state.orders[order_number]
            notification = str(self.state.notifications.next())
            envelope = {
                "type": WEBHOOK_ORDER_STATUS,
                "tts_notification_id": notification,
                "shop_id": self.shop_id,
                "timestamp": int(self.now()),
                "data": {
                    "order_id": order["id"],
                    "order_status": order["status"],
                    "is_on_hold_order": order["status"] == "ON_HOLD",
                    "update_time": order["update_time"],
                },
            }
        return signed_json_push(
            envelope, secret=self.app_secret, signed_prefix=self.app_key.encode()
        )

    # -- HTTP ------------------------------------------------------------------------------

    def authenticate(self, request: Request, route: Route) -> Reply | None:
        """TikTok's gateway checks, in order: app key, timestamp, signature, token, shop (its
        presence as the route's scope asks, then its value). The token refresh checks its own
        query."""
        if route.auth == "token":
            return None
        if request.param("app_key") != self.app_key:
            raise _credentials_fault("Invalid credentials. Invalid `app_key` query parameter.")
        self._check_timestamp(request.param("timestamp"))
        sign = request.param("sign")
        if not sign:
            raise _credentials_fault(
                "Missing credentials. The request does not include a required signature in "
                "the query."
            )
        if not hmac.compare_digest(sign, self._expected_sign(request)):
            raise TikTokFault(
                106001, "Invalid credentials. The `sign` query parameter is invalid.", status=401
            )
        self._check_token(request.headers.get("x-tts-access-token", ""))
        cipher = request.param("shop_cipher")
        if route.auth == "global" and cipher is not None:
            raise TikTokFault(
                36009004,
                "Unexpected identifier. The `shop_cipher` query parameter is not required for "
                "this request.",
                status=400,
            )
        if route.auth == "shop" and not cipher:
            raise TikTokFault(
                106013,
                "Missing identifier. The `shop_cipher` query parameter is required to identify "
                "the target shop.",
                status=400,
            )
        if route.auth == "shop" and cipher != self.shop_cipher:
            raise _credentials_fault(
                "Invalid identifier. The `shop_cipher` query parameter is invalid."
            )
        return None

    def invoke(self, route: Route, request: Request, params: dict[str, str]) -> Any:
        """`handler(query, body, request, **path ids)` under the lock: the query with the
        first value of each parameter, the JSON body ({} for none or a multipart one)."""
        query = {name: values[0] for name, values in request.query.items()}
        body = self._body(request)
        with self.lock:
            return getattr(self, route.handler)(query, body, request, **params)

    def wrap(self, payload: Any, route: Route) -> Reply:
        # The auth host says "success" in lower case, the API "Success".
        message = "success" if route.auth == "token" else "Success"
        return Reply.json({"code": 0, "message": message, "request_id": _rid(), "data": payload})

    def wrap_error(self, refusal: Refusal) -> Reply:
        if isinstance(refusal, TikTokFault):
            return self._error(refusal)
        return super().wrap_error(refusal)

    def not_found(self, request: Request) -> Reply:
        raise TikTokFault(
            36009009,
            "Invalid path. The specified path does not match any available endpoint.",
            status=404,
        )

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        raise TikTokFault(
            36009010,
            "Invalid method. The HTTP method used is not supported by this endpoint.",
            status=405,
        )

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        fault = TikTokFault(
            36009002,
            "Too many requests. You've made too many requests in a short period of time.",
            status=429,
        )
        if self.throttled_in_body(self.throttle_style):
            fault.status = 200
            return self._error(fault)
        return self._error(fault, headers=(("Retry-After", f"{retry_after:g}"),))

    def error_reply(self, request: Request) -> Reply:
        fault = TikTokFault(
            36009003,
            "Internal error. Please try again. If the issue persists after multiple attempts, "
            "please contact platform support.",
            status=503 if self.random_fault() < 0.5 else 500,
        )
        return self._error(fault)

    def _error(self, fault: TikTokFault, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        body = {"code": fault.code, "message": fault.message, "request_id": _rid(), "data": {}}
        return Reply.json(body, status=fault.status, headers=headers)

    @staticmethod
    def _body(request: Request) -> Body:
        if not request.body or request.content_type == "multipart/form-data":
            return {}
        if request.content_type != "application/json":
            raise TikTokFault(
                36009022,
                "Invalid request format. The request body format must be `application/json` "
                "for structured data or `multipart/form-data` for binary files.",
                status=400,
            )
        return request.json_object(
            _invalid("body", "it is not valid JSON", "a JSON object"),
            _invalid("body", "it is not a JSON object", "a JSON object"),
        )

    # -- authentication --------------------------------------------------------------------

    def _check_timestamp(self, raw: str | None) -> None:
        if not raw or not raw.lstrip("-").isdigit():
            raise _credentials_fault(
                "Invalid timestamp. The value of the `timestamp` query parameter must not be "
                "lesser than 0."
            )
        skew = int(raw) - time.time()
        if skew < -TIMESTAMP_PAST:
            raise _credentials_fault(
                "Invalid timestamp. The value of the `timestamp` query parameter must not be "
                "earlier than 5 minutes before the current time."
            )
        if skew > TIMESTAMP_FUTURE:
            raise _credentials_fault(
                "Invalid timestamp. The value of the `timestamp` query parameter must not exceed "
                "the current time by more than 30 seconds."
            )

    def _expected_sign(self, request: Request) -> str:
        """TikTok's 5 steps, computed independently of the client's code."""
        params = sorted(
            (name, values[0])
            for name, values in request.query.items()
            if name not in ("sign", "access_token")
        )
        base = (request.path + "".join(f"{name}{value}" for name, value in params)).encode()
        if request.content_type != "multipart/form-data":
            base += request.body
        key = self.app_secret.encode()
        return hmac.new(key, key + base + key, hashlib.sha256).hexdigest()

    def _check_token(self, token: str) -> None:
        state = self.tokens.access_state(token)
        if state == "unknown":
            raise _credentials_fault(
                "Invalid credentials. The `x-tts-access-token` header is invalid."
            )
        if state == "expired":
            raise TikTokFault(
                105002,
                "Expired credentials. The `access_token` or `x-tts-access-token` header has "
                "expired.",
                status=401,
            )

    def _new_token(self, kind: TokenKind) -> str:
        return "TTP_" + base64.urlsafe_b64encode(self._secrets.randbytes(30)).decode()

    def _refresh(self, params: Params, body: Body, request: Request) -> Body:
        """Unsigned token refresh: the app secret and the refresh token ride in the query."""
        if params.get("app_key") != self.app_key:
            raise _credentials_fault("Invalid credentials. Invalid `app_key` query parameter.")
        if not hmac.compare_digest(params.get("app_secret", ""), self.app_secret):
            raise _credentials_fault("Invalid credentials. The `app_secret` is invalid.")
        if params.get("grant_type") != "refresh_token":
            raise _invalid("grant_type", "unsupported grant type", "refresh_token")
        refresh_token = params.get("refresh_token", "")
        tokens = self.tokens.refresh(refresh_token)  # replaced: the old one is refused
        if tokens is None:
            if self.tokens.refresh_state(refresh_token) == "expired":
                raise TikTokFault(36004001, "rt has expired")
            raise TikTokFault(36004005, "can not find related auth record")
        return {
            "access_token": tokens.access,
            "access_token_expire_in": int(self.tokens.expires_at(tokens.access) or 0),
            "refresh_token": tokens.refresh,
            "refresh_token_expire_in": int(self.tokens.expires_at(tokens.refresh) or 0),
            "open_id": "7010736057180325637",
            "seller_name": f"Emulated Shop {self.shop_id}",
            "seller_base_region": self.region,
            "user_type": 0,
            "granted_scopes": ["seller.product.basic", "seller.order.info"],
        }

    # -- shop, logistics, categories, brands, images ----------------------------------------

    def _shops(self, params: Params, body: Body, request: Request) -> Body:
        return {
            "shops": [
                {
                    "id": self.shop_id,
                    "name": f"Emulated Shop {self.shop_id}",
                    "region": self.region,
                    "seller_type": "LOCAL",
                    "cipher": self.shop_cipher,
                    "code": f"{self.region}LCEMU{self.shop_id[-4:]}",
                }
            ]
        }

    def _warehouses(self, params: Params, body: Body, request: Request) -> Body:
        def warehouse(warehouse_id: str, name: str, *, default: bool) -> dict[str, Any]:
            return {
                "id": warehouse_id,
                "name": name,
                "effect_status": "ENABLED",
                "type": "SALES_WAREHOUSE",
                "sub_type": "DOMESTIC_WAREHOUSE",
                "is_default": default,
                "address": {"region": self.region, "city": "Emulated City"},
            }

        return {
            "warehouses": [
                warehouse(self.warehouse_id, "Main warehouse", default=True),
                warehouse(self.other_warehouse_id, "Overflow warehouse", default=False),
            ]
        }

    def _categories(self, params: Params, body: Body, request: Request) -> Body:
        departments = [
            {"id": category_id, "parent_id": "0", "local_name": name, "is_leaf": False}
            for name, category_id in DEPARTMENTS.items()
        ]
        leaves = [
            {
                "id": LEAF_IDS[leaf.name],
                "parent_id": DEPARTMENTS[leaf.department],
                "local_name": leaf.name,
                "is_leaf": True,
                "permission_statuses": ["AVAILABLE"],
            }
            for leaf in LEAVES
        ]
        return {"categories": departments + leaves}

    def _brands(self, params: Params, body: Body, request: Request) -> Body:
        page_size = _int(params, "page_size", required=True)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise TikTokFault(12019109, "page size is invalid")
        wanted = params.get("brand_name", "").strip().lower()
        brands = [
            {
                "id": brand_id,
                "name": name,
                "authorized_status": "UNAUTHORIZED",
                "brand_status": "AVAILABLE",
                "is_t1_brand": False,
            }
            for name, brand_id in BRAND_IDS.items()
            if wanted in name.lower()
        ]
        return {"brands": brands[:page_size], "total_count": len(brands), "next_page_token": ""}

    def _upload_image(self, params: Params, body: Body, request: Request) -> Body:
        try:
            form = request.form()
        except (ValueError, KeyError):
            raise TikTokFault(
                36009023,
                "Invalid request format. The value of the `content-type` header must be "
                "`multipart/form-data`.",
                status=400,
            ) from None
        image = form.get("data")
        if image is None or not image.filename or not image.value:
            raise TikTokFault(
                12038002,
                "Invalid upload file. Please ensure you are passing the correct file data.",
            )
        if not image.content_type.startswith("image/"):
            raise TikTokFault(
                12038004, "Failed to process the image. The format or content is not supported."
            )
        uri = _image_uri(image.value)
        self.state.images.add(uri)
        use_case = form["use_case"].value.decode() if "use_case" in form else "MAIN_IMAGE"
        return {
            "uri": uri,
            "url": _image_url(uri),
            "width": 600,
            "height": 600,
            "use_case": use_case,
        }

    # -- reading products ------------------------------------------------------------------

    def _search_products(self, params: Params, body: Body, request: Request) -> Body:
        page_size = _page_size(params)
        filters = _product_filters(body)
        ids = self._searched_ids(filters)
        start, returned = _page_start(params.get("page_token", ""), ids, filters)
        if returned >= MAX_SEARCH_RESULTS:
            raise TikTokFault(12052180, "The total number of search results can not exceed 10000.")
        page_size = min(page_size, MAX_SEARCH_RESULTS - returned)
        page = ids[start : start + page_size]
        more = start + len(page) < len(ids) and returned + len(page) < MAX_SEARCH_RESULTS
        token = _page_token(page[-1], returned + len(page), filters) if more and page else ""
        products = self.state.products
        shown = self.listing_page(returned // max(page_size, 1) + 1, page)
        return {
            "products": [self._product_summary(products[i]) for i in shown],
            "total_count": len(ids),
            "next_page_token": token,
        }

    def _searched_ids(self, filters: tuple[Any, ...]) -> list[str]:
        """Matching product ids in id order, cached until the shop changes (`ShopCache`)."""

        def matching() -> list[str]:
            status, skus, created, updated = filters
            return [
                product.id
                for product in self.state.products.values()
                if _status_matches(product.status, status)
                and created[0] <= product.create_time <= created[1]
                and updated[0] <= product.update_time <= updated[1]
                and (not skus or any(sku.seller_sku in skus for sku in product.skus.values()))
            ]

        return self._search_cache.get(filters, self.state.version, matching)

    def _get_product(self, params: Params, body: Body, request: Request, product_id: str) -> Body:
        product = self.state.products.get(product_id)
        if product is None:
            raise TikTokFault(12019150, "The product ID does not exist.")
        return self._product_detail(product)

    def _product_summary(self, product: Product) -> dict[str, Any]:
        """A product as Search Products lists it: no descriptions, no sales attributes."""
        summary: dict[str, Any] = {
            "id": product.id,
            "title": product.title,
            "status": product.status,
            "create_time": product.create_time,
            "update_time": product.update_time,
            "sales_regions": [self.region],
            "is_not_for_sale": False,
            "skus": [
                {
                    "id": sku.id,
                    "seller_sku": sku.seller_sku,
                    "price": self._price(sku.price),
                    "inventory": _inventory(sku),
                    "status_info": {"status": "NORMAL"},
                }
                for sku in product.skus.values()
            ],
        }
        summary.update(_platform_statuses(product))
        return summary

    def _product_detail(self, product: Product) -> dict[str, Any]:
        category = next(
            (leaf for leaf in LEAVES if LEAF_IDS[leaf.name] == product.category_id), None
        )
        brand = next((name for name, bid in BRAND_IDS.items() if bid == product.brand_id), "")
        detail: dict[str, Any] = {
            "id": product.id,
            "title": product.title,
            "description": product.description,
            "product_status": product.status,
            "create_time": product.create_time,
            "update_time": product.update_time,
            "category_chains": [
                {
                    "id": product.category_id,
                    "parent_id": DEPARTMENTS[category.department] if category else "0",
                    "local_name": category.name if category else "",
                    "is_leaf": True,
                }
            ],
            "brand": {"id": product.brand_id, "name": brand} if product.brand_id else {},
            "main_images": [
                {"uri": uri, "urls": [_image_url(uri)], "width": 600, "height": 600}
                for uri in product.images
            ],
            "package_weight": {"value": _money(product.weight), "unit": "KILOGRAM"},
            "skus": [
                {
                    "id": sku.id,
                    "seller_sku": sku.seller_sku,
                    "price": self._price(sku.price),
                    "inventory": _inventory(sku),
                    "sales_attributes": [
                        {
                            "id": _attribute_id(name),
                            "name": name,
                            "value_id": _attribute_id(f"{name}={value}"),
                            "value_name": value,
                        }
                        for name, value in sku.attributes
                    ],
                    **({"identifier_code": sku.identifier_code} if sku.identifier_code else {}),
                }
                for sku in product.skus.values()
            ],
        }
        if product.dimensions:
            detail["package_dimensions"] = {**product.dimensions, "unit": "CENTIMETER"}
        detail.update(_platform_statuses(product))
        return detail

    def _price(self, price: Decimal) -> dict[str, str]:
        return {
            "currency": self.currency,
            "tax_exclusive_price": _money(price),
            "sale_price": _money(price),
        }

    # -- writing products ------------------------------------------------------------------

    def _create_product(self, params: Params, body: Body, request: Request) -> Body:
        fields = self._product_fields(body, partial=False)  # everything checked first
        rows = self._sku_rows(body.get("skus"), existing={})
        save_mode = body.get("save_mode", "LISTING")
        if save_mode not in ("LISTING", "AS_DRAFT"):
            raise _invalid("save_mode", f"unknown value {save_mode!r}", "LISTING or AS_DRAFT")
        now = int(self.now())
        status = "ACTIVATE" if save_mode == "LISTING" else "DRAFT"
        product = Product(
            id=str(self.state.product_ids.next()),
            status=status,
            create_time=now,
            update_time=now,
            skus={},
            tokopedia=status if self.bound_to_tokopedia else None,
            **fields,
        )
        self._apply_sku_rows(product, rows)
        self._save(product)
        return {"product_id": product.id, "skus": self._sku_refs(product), "warnings": []}

    def _edit_product(self, params: Params, body: Body, request: Request, product_id: str) -> Body:
        """Replace the product: every field, and every SKU (existing ones by id, new ones
        without). An SKU left out is refused, as TikTok refuses deleting SKUs here."""
        product = self._editable(product_id)
        fields = self._product_fields(body, partial=False)
        rows = self._sku_rows(body.get("skus"), existing=product.skus)
        listed = {row["id"] for row in rows if row["id"]}
        if listed != set(product.skus):
            raise TikTokFault(12019057, "sku not allow delete")
        for name, value in fields.items():
            setattr(product, name, value)
        self._apply_sku_rows(product, rows)
        self._save(product)
        return {"product_id": product.id, "skus": self._sku_refs(product), "warnings": []}

    def _partial_edit(self, params: Params, body: Body, request: Request, product_id: str) -> Body:
        """Overwrite the fields sent; fields left out keep their value. SKUs sent must exist."""
        product = self._editable(product_id)
        fields = self._product_fields(body, partial=True)
        rows = None
        if "skus" in body:
            rows = self._sku_rows(body.get("skus"), existing=product.skus)
            if any(not row["id"] for row in rows):
                raise TikTokFault(12019056, "sku not allow add")
        for name, value in fields.items():
            setattr(product, name, value)
        if rows:
            self._apply_sku_rows(product, rows)
        self._save(product)
        return {"product_id": product.id, "skus": self._sku_refs(product), "warnings": []}

    def _update_inventory(
        self, params: Params, body: Body, request: Request, product_id: str
    ) -> Body:
        product = self._editable(product_id, missing=12052032)
        rows = body.get("skus")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise TikTokFault(12052036, "The SKU ID is necessary")
        errors = []
        changed = False
        for row in rows:
            problem = self._stock_problem(product, row)
            if problem is not None:
                errors.append(problem)
                continue
            sku = product.skus[str(row["id"])]
            for entry in row["inventory"]:
                warehouse = str(entry.get("warehouse_id") or next(iter(sku.inventory)))
                sku.inventory[warehouse] = int(entry["quantity"])
            changed = True
        if changed:
            self._save(product)
        return {"errors": errors} if errors else {}

    def _stock_problem(self, product: Product, row: dict[str, Any]) -> dict[str, Any] | None:
        """The `errors[]` entry TikTok would give one SKU of an Update Inventory call, or None."""
        sku_id = str(row.get("id") or "")
        sku = product.skus.get(sku_id)
        if sku is None:
            return _sku_error(
                sku_id, 12052990, "The check failed.", "The SKU does not belong to this product."
            )
        entries = row.get("inventory")
        if not isinstance(entries, list) or not entries:
            return _sku_error(sku_id, 12019024, "stock count is invalid")
        for entry in entries:
            quantity = entry.get("quantity") if isinstance(entry, dict) else None
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                return _sku_error(sku_id, 12019024, "stock count is invalid")
            if not 0 <= quantity < MAX_QUANTITY:
                return _sku_error(sku_id, 12019024, "stock count is invalid")
            warehouse = str(entry.get("warehouse_id") or "")
            if warehouse and warehouse not in (self.warehouse_id, self.other_warehouse_id):
                return {
                    "code": 12052990,
                    "message": "The check failed.",
                    "detail": {
                        "sku_id": sku_id,
                        "extra_errors": [
                            {
                                "warehouse_id": warehouse,
                                "code": 12052097,
                                "message": "The warehouse does not exist",
                            }
                        ],
                    },
                }
            if not warehouse and len(sku.inventory) > 1:
                return _sku_error(
                    sku_id,
                    12019028,
                    "Multiple warehouses detected. Include all warehouse IDs and the "
                    "corresponding details and try again.",
                )
        return None

    def _update_prices(self, params: Params, body: Body, request: Request, product_id: str) -> Body:
        """All SKUs or none: Update Price has no per-SKU error list."""
        product = self._editable(product_id, missing=12052032)
        if product.status == "DELETED":
            raise TikTokFault(12019113, "product status is invalid")
        if product.price_locked:
            raise TikTokFault(12019045, "price is locked")
        rows = body.get("skus")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise TikTokFault(12052036, "The SKU ID is necessary")
        planned = []
        for row in rows:
            sku_id = str(row.get("id") or "")
            if sku_id not in product.skus:
                raise _invalid(
                    "skus.id",
                    f"SKU {sku_id or '(none)'} does not belong to product {product.id}",
                    "the id of a SKU of this product",
                )
            planned.append((product.skus[sku_id], self._amount(row.get("price"), 12052012)))
        for sku, price in planned:
            sku.price = price
        self._save(product)
        return {}

    def _activate_products(self, params: Params, body: Body, request: Request) -> Body:
        return self._bulk_status(body, "ACTIVATE", {"ACTIVATE", "SELLER_DEACTIVATED", "DRAFT"})

    def _deactivate_products(self, params: Params, body: Body, request: Request) -> Body:
        return self._bulk_status(body, "SELLER_DEACTIVATED", {"ACTIVATE", "SELLER_DEACTIVATED"})

    def _delete_products(self, params: Params, body: Body, request: Request) -> Body:
        allowed = set(PRODUCT_STATUSES) - {"DELETED"}
        return self._bulk_status(body, "DELETED", allowed)

    def _bulk_status(self, body: Body, target: str, allowed: set[str]) -> Body:
        ids = body.get("product_ids")
        if not isinstance(ids, list) or not ids:
            raise TikTokFault(
                12052910, "Invalid input parameters. Refer to the API documentation for details."
            )
        if len(ids) > MAX_PRODUCT_IDS:
            raise TikTokFault(12019120, "The number of provided product IDs exceeds the limit.")
        errors = []
        for raw in ids:
            product = self.state.products.get(str(raw))
            if product is None or product.status == "DELETED":
                errors.append(_product_error(str(raw), 12052032, "The product does not exist"))
            elif product.status not in allowed:
                errors.append(
                    _product_error(
                        product.id,
                        12052901,
                        "The product in its current status is not available for this "
                        "operation. Change the product status and try again.",
                    )
                )
            elif product.status != target:
                self._set_status(product, target)
                self._save(product)
        return {"errors": errors} if errors else {}

    def _product_fields(self, body: Body, *, partial: bool) -> dict[str, Any]:
        """Product-level fields of a create/edit body, checked in full before anything changes."""
        fields: dict[str, Any] = {}
        if not partial or "title" in body:
            title = body.get("title")
            if not isinstance(title, str) or not title.strip():
                raise TikTokFault(12052261, "product name is empty")
            if len(title) > 255 or len(title.strip()) < self.min_title_length:
                raise TikTokFault(12052051, "The product name exceed max limit characters")
            fields["title"] = title
        if not partial or "description" in body:
            description = body.get("description")
            if not isinstance(description, str) or not description.strip():
                raise TikTokFault(12052015, "The product description is required")
            if len(description) > 10_000:
                raise TikTokFault(
                    12052013, "The product description cannot exceed maximum characters"
                )
            fields["description"] = description
        if not partial or "category_id" in body:
            category_id = str(body.get("category_id") or "")
            if category_id in DEPARTMENTS.values():
                raise TikTokFault(12052024, "Category is not final category")
            if category_id not in LEAF_IDS.values():
                raise TikTokFault(12052023, "Category does not exist")
            fields["category_id"] = category_id
        if "brand_id" in body:
            brand_id = str(body.get("brand_id") or "")
            if brand_id and brand_id not in BRAND_IDS.values():
                raise TikTokFault(12052026, "Brand does not exist")
            fields["brand_id"] = brand_id
        elif not partial:
            fields["brand_id"] = ""
        if not partial or "main_images" in body:
            fields["images"] = self._image_uris(body.get("main_images"))
        if not partial or "package_weight" in body:
            fields["weight"] = _weight(body.get("package_weight"))
        if "package_dimensions" in body:
            fields["dimensions"] = _dimensions(body.get("package_dimensions"))
        elif not partial:
            fields["dimensions"] = None
        return fields

    def _image_uris(self, raw: Any) -> list[str]:
        if not isinstance(raw, list) or not raw:
            raise TikTokFault(12052028, "Main product image is required")
        uris = [row.get("uri") for row in raw if isinstance(row, dict)]
        if (
            len(uris) != len(raw)
            or len(uris) > MAX_IMAGES
            or not all(uri in self.state.images for uri in uris)
        ):
            raise TikTokFault(12019009, "product image list is invalid")
        return [str(uri) for uri in uris]

    def _sku_rows(self, raw: Any, *, existing: dict[str, Sku]) -> list[dict[str, Any]]:
        """SKU rows of a create/edit body, normalised and checked: `{id, seller_sku, price,
        inventory, attributes, identifier_code}` with None for what the row leaves out."""
        if not isinstance(raw, list) or not raw:
            raise TikTokFault(
                12052902,
                "The SKU list is empty. Either omit the list entirely, or provide all required "
                "details.",
            )
        if len(raw) > MAX_SKUS:
            raise TikTokFault(12052050, "A single product cannot have more than 100 different SKUs")
        rows = []
        for row in raw:
            if not isinstance(row, dict):
                raise _invalid("skus", "an entry is not an object", "SKU objects")
            sku_id = str(row.get("id") or "")
            if sku_id and sku_id not in existing:
                raise _invalid("skus.id", f"SKU {sku_id} does not exist", "an existing SKU id")
            new = not sku_id
            seller_sku = row.get("seller_sku")
            if seller_sku is not None and (not isinstance(seller_sku, str) or len(seller_sku) > 50):
                raise TikTokFault(
                    12052054, "The seller SKU text length cannot exceed max limit characters"
                )
            rows.append(
                {
                    "id": sku_id,
                    "seller_sku": seller_sku,
                    "price": self._amount(row.get("price"), 12052073)
                    if "price" in row or new
                    else None,
                    "inventory": self._create_inventory(row.get("inventory"))
                    if "inventory" in row or new
                    else None,
                    "attributes": _sales_attributes(row.get("sales_attributes"))
                    if "sales_attributes" in row or new
                    else None,
                    "identifier_code": row.get("identifier_code")
                    if isinstance(row.get("identifier_code"), dict)
                    else None,
                }
            )
        self._check_attribute_grid(rows, existing)
        return rows

    def _check_attribute_grid(self, rows: list[dict[str, Any]], existing: dict[str, Sku]) -> None:
        """Several SKUs need sales attributes with the same names and distinct values."""
        grids = [
            row["attributes"] if row["attributes"] is not None else existing[row["id"]].attributes
            for row in rows
        ]
        if len(grids) == 1:
            return
        names = [tuple(name for name, _ in grid) for grid in grids]
        if not names[0] or len(set(names)) != 1:
            raise TikTokFault(12019019, "sale property is invalid")
        if len({tuple(grid) for grid in grids}) != len(grids):
            raise TikTokFault(
                12052251,
                "Duplicated attribute values found for an attribute. Remove or modify the "
                "duplicated value.",
            )

    def _create_inventory(self, raw: Any) -> dict[str, int]:
        if not isinstance(raw, list) or not raw:
            raise TikTokFault(12019022, "SKU must contain a valid warehouse.")
        inventory = {}
        for entry in raw:
            warehouse = str(entry.get("warehouse_id") or "") if isinstance(entry, dict) else ""
            if warehouse not in (self.warehouse_id, self.other_warehouse_id):
                raise TikTokFault(12052097, "The warehouse does not exist")
            quantity = entry.get("quantity", 0)
            if (
                isinstance(quantity, bool)
                or not isinstance(quantity, int)
                or not 0 <= quantity <= MAX_CREATE_QUANTITY
            ):
                raise TikTokFault(
                    12052055,
                    "The SKU inventory quantity for the warehouse must be within allowed limits.",
                )
            inventory[warehouse] = quantity
        return inventory

    def _amount(self, raw: Any, code: int) -> Decimal:
        """A `{amount, currency}` price: a positive decimal string in the shop's currency."""
        message = PRICE_ERRORS[code]
        if not isinstance(raw, dict):
            raise TikTokFault(code, message)
        if raw.get("currency") != self.currency:
            raise TikTokFault(
                12052084, "The provided currency is not available for this shop/region."
            )
        try:
            amount = Decimal(str(raw.get("amount")))
        except InvalidOperation:
            amount = Decimal("NaN")
        if not isinstance(raw.get("amount"), str) or not amount.is_finite() or amount <= 0:
            raise TikTokFault(code, message)
        return amount

    def _apply_sku_rows(self, product: Product, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            sku = product.skus.get(row["id"]) if row["id"] else None
            if sku is None:
                sku = Sku(
                    id=str(self.state.sku_ids.next()),
                    seller_sku="",
                    price=Decimal("0"),
                    inventory={},
                )
                product.skus[sku.id] = sku
            if row["seller_sku"] is not None:
                sku.seller_sku = row["seller_sku"]
            if row["price"] is not None:
                sku.price = row["price"]
            if row["inventory"] is not None:
                sku.inventory = row["inventory"]
            if row["attributes"] is not None:
                sku.attributes = row["attributes"]
            if row["identifier_code"] is not None:
                sku.identifier_code = row["identifier_code"]

    @staticmethod
    def _sku_refs(product: Product) -> list[dict[str, Any]]:
        return [
            {
                "id": sku.id,
                "seller_sku": sku.seller_sku,
                "sales_attributes": [
                    {"id": _attribute_id(name), "value_id": _attribute_id(f"{name}={value}")}
                    for name, value in sku.attributes
                ],
            }
            for sku in product.skus.values()
        ]

    def _editable(self, product_id: str, *, missing: int = 12019150) -> Product:
        product = self.state.products.get(product_id)
        if product is None:
            raise TikTokFault(missing, PRODUCT_MISSING[missing])
        if product.status == "DELETED":
            raise TikTokFault(
                12052901,
                "The product in its current status is not available for this operation. Change "
                "the product status and try again.",
            )
        return product

    # -- orders ----------------------------------------------------------------------------

    def _search_orders(self, params: Params, body: Body, request: Request) -> Body:
        page_size = _page_size(params)
        sort_field = params.get("sort_field", "create_time")
        if sort_field not in ("create_time", "update_time"):
            raise _invalid(
                "sort_field", f"unknown field {sort_field!r}", "create_time or update_time"
            )
        sort_order = params.get("sort_order", "DESC")
        if sort_order not in ("ASC", "DESC"):
            raise _invalid("sort_order", f"unknown order {sort_order!r}", "ASC or DESC")
        status = body.get("order_status")
        if status is not None and status not in ORDER_STATUSES:
            raise _invalid("order_status", f"unknown status {status!r}", "an order status")
        windows = {
            name: (_body_int(body, f"{name}_ge", 0), _body_int(body, f"{name}_lt", 2**62))
            for name in ("create_time", "update_time")
        }
        matching = [
            order
            for order in self.state.orders.values()
            if (status is None or order["status"] == status)
            and all(low <= order[name] < high for name, (low, high) in windows.items())
        ]
        matching.sort(key=lambda o: (o[sort_field], o["id"]), reverse=sort_order == "DESC")
        filters = (status, tuple(windows.items()), sort_field, sort_order)
        start = _offset(params.get("page_token", ""), filters)
        page = matching[start : start + page_size]
        more = start + len(page) < len(matching)
        token = _offset_token(start + len(page), filters) if more else ""
        page = self.order_page(start // page_size + 1, page)
        return {
            "orders": json.loads(json.dumps(page)),
            "total_count": len(matching),
            "next_page_token": token,
        }

    def _get_orders(self, params: Params, body: Body, request: Request) -> Body:
        raw = params.get("ids", "").strip()
        if raw.startswith("["):  # some clients send a JSON array string
            try:
                ids = [str(i) for i in json.loads(raw)]
            except ValueError:
                raise _invalid("ids", "not a list of order ids", "comma-separated ids") from None
        else:
            ids = [part.strip() for part in raw.split(",") if part.strip()]
        if not ids or len(ids) > MAX_ORDER_IDS:
            raise _invalid("ids", f"{len(ids)} ids given", f"1 to {MAX_ORDER_IDS} order ids")
        malformed = [i for i in ids if not (i.isascii() and i.isdigit())]
        if malformed:
            raise _invalid("ids", f"{malformed[0]!r} is not an order id", "order ids (digits)")
        if any(i not in self.state.orders for i in ids):
            message = "The order/package does not belong to the current seller"
            raise TikTokFault(ORDER_NOT_SELLERS, f"{message}; detail:{message}")
        orders = [self.state.orders[i] for i in ids]
        return {"orders": json.loads(json.dumps(orders))}

    def _order_sku(self, item_id: str, variant_id: str) -> tuple[Product, Sku]:
        product = self.state.products.get(item_id)
        if product is None:
            raise KeyError(f"no product {item_id}")
        if not variant_id:
            if len(product.skus) != 1:
                raise ValueError(f"product {item_id} has several SKUs: name one")
            return product, next(iter(product.skus.values()))
        if variant_id not in product.skus:
            raise KeyError(f"no SKU {variant_id} in product {item_id}")
        return product, product.skus[variant_id]

    def _units(self, product: Product, sku: Sku, quantity: int) -> list[dict[str, Any]]:
        """One line item per unit, as TikTok lists them (there is no quantity field)."""
        items = []
        for _ in range(quantity):
            line_id = str(self.state.line_ids.next())
            items.append(
                {
                    "id": line_id,
                    "product_id": product.id,
                    "product_name": product.title,
                    "sku_id": sku.id,
                    "sku_name": ", ".join(value for _, value in sku.attributes),
                    "seller_sku": sku.seller_sku,
                    "sku_image": _image_url(product.images[0]) if product.images else "",
                    "original_price": _money(sku.price),
                    "sale_price": _money(sku.price),
                    "platform_discount": "0",
                    "seller_discount": "0",
                    "currency": self.currency,
                    "display_status": "UNPAID",
                    "package_status": "",
                    "sku_type": "NORMAL",
                    "is_gift": False,
                }
            )
        return items

    def _move(self, order: dict[str, Any], status: str, *, returned: bool, now: int) -> None:
        """Put an order in `status`, with the times and fields TikTok sets on the way."""
        order["status"] = status
        order["update_time"] = now
        reached = ORDER_STATUSES.index(status) if status != "CANCELLED" else -1
        if status != "UNPAID" and not (status == "CANCELLED" and not returned):
            order.setdefault("paid_time", now)
        if reached >= ORDER_STATUSES.index("IN_TRANSIT") or returned:
            order.setdefault("collection_time", now)
            order.setdefault("shipping_provider", "J&T Express")
            order.setdefault("tracking_number", f"JX{order['id'][-8:]}")
            order["packages"] = order["packages"] or [{"id": f"115{order['id'][3:]}"}]
        if reached >= ORDER_STATUSES.index("DELIVERED"):
            order.setdefault("delivery_time", now)
        if status == "CANCELLED":
            order["cancel_time"] = now
            order["cancellation_initiator"] = "SYSTEM" if returned else "BUYER"
            order["cancel_reason"] = (
                "Package returned to seller" if returned else "No longer needed"
            )
        for item in order["line_items"]:
            item["display_status"] = status
            item["package_status"] = PACKAGE_STATUS[status]
            if status == "CANCELLED":
                item["cancel_user"] = order["cancellation_initiator"]
                item["cancel_reason"] = order["cancel_reason"]
        if status == "CANCELLED" and not returned:
            self.state.order_stock.give_back(order["id"], self._adjust)

    def _stock_target(self, sku: Sku) -> tuple[Sku, str]:
        """The SKU and the warehouse an order's units come from: the order's (the shop's
        default) warehouse, or the SKU's first one when it is not stocked there."""
        if self.warehouse_id in sku.inventory or not sku.inventory:
            return sku, self.warehouse_id
        return sku, next(iter(sku.inventory))

    def _adjust(self, target: tuple[Sku, str], delta: int) -> int:
        """Move a SKU's stock in one warehouse by `delta`, never below zero; the change made."""
        sku, warehouse = target
        current = sku.inventory.get(warehouse, 0)
        applied = floored(current, delta)
        if applied:
            sku.inventory[warehouse] = current + applied
            self.state.version += 1
        return applied

    # -- state -----------------------------------------------------------------------------

    def _set_status(self, product: Product, status: str) -> None:
        product.status = status
        if product.tokopedia is not None:
            product.tokopedia = status

    def _save(self, product: Product, *, touch: bool = True) -> None:
        if touch:
            product.update_time = self.time_after(product.update_time)
        self.state.products[product.id] = product
        self.state.version += 1

    def _listed_products(self) -> Iterable[Product]:
        """Products not deleted that this shop's channel lists."""
        return (p for p in self.state.products.values() if p.status != "DELETED")


class TokopediaEmulator(TikTokShopEmulator):
    """A TikTok Shop bound to Tokopedia ("TikTok Shop by Tokopedia"), on the same API.

    Products are listed on Tokopedia too (`integrated_platform_statuses`), orders placed with
    `create_order` come from Tokopedia (`commerce_platform: "TOKOPEDIA"`), and the listing
    helpers count only what is on Tokopedia. `put_item(..., tokopedia=False)` and
    `create_order(..., platform="TIKTOK_SHOP")` add what belongs to TikTok Shop alone.
    """

    name = "tokopedia"
    platform = TOKOPEDIA
    bound_to_tokopedia = True

    def __init__(self, **options: Any) -> None:
        options.setdefault("region", "ID")
        options.setdefault("currency", "IDR")
        options.setdefault("shop_id", "7494049642642441622")
        super().__init__(**options)

    def _listed_products(self) -> Iterable[Product]:
        return (
            p
            for p in self.state.products.values()
            if p.status != "DELETED" and p.tokopedia is not None
        )


# -- request parsing (raise TikTokFault on bad input) --------------------------------------------


def _status_for(state: OrderState | str) -> tuple[str, bool]:
    """The TikTok status standing for an omni state (or a TikTok status given as is), and
    whether it stands for a returned order."""
    if state in ORDER_STATUSES:
        return str(state), False
    try:
        omni = OrderState(state)
    except ValueError:
        raise ValueError(
            f"{state!r} is neither one of omni's order states nor a TikTok order status"
        ) from None
    return STATE_STATUS[omni], omni is OrderState.RETURNED


def _int(params: Params, name: str, *, required: bool = False, default: int = 0) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _invalid(name, "it is missing", "an integer")
        return default
    if not raw.lstrip("-").isdigit():
        raise _invalid(name, f"{raw!r} is not an integer", "an integer")
    return int(raw)


def _body_int(body: Body, name: str, default: int) -> int:
    raw = body.get(name)
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise _invalid(name, f"{raw!r} is not a Unix timestamp", "seconds since 1970")
    return raw


def _page_size(params: Params) -> int:
    page_size = _int(params, "page_size", required=True)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise _invalid("page_size", f"{page_size} is out of range", f"1 to {MAX_PAGE_SIZE}")
    return page_size


def _product_filters(body: Body) -> tuple[Any, ...]:
    status = body.get("status")
    if status is not None and status != "ALL" and status not in PRODUCT_STATUSES:
        raise _invalid("status", f"unknown status {status!r}", "a product status or ALL")
    skus = body.get("seller_skus") or []
    if not isinstance(skus, list) or len(skus) > 10:
        raise TikTokFault(
            12019027, "The maximum count of “seller_skus” in the search filter is 10."
        )
    windows = []
    for name, code in (("create_time", 12019118), ("update_time", 12019119)):
        low, high = body.get(f"{name}_ge"), body.get(f"{name}_le")
        for value in (low, high):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise TikTokFault(code, f"search {name.replace('_', ' ')} invalid")
        low = 0 if low is None else low
        high = 2**62 if high is None else high
        if low > high:
            raise TikTokFault(code, f"search {name.replace('_', ' ')} invalid")
        windows.append((low, high))
    return (status or "ALL", tuple(sorted(str(s) for s in skus)), windows[0], windows[1])


def _status_matches(status: str, wanted: str) -> bool:
    if wanted == "ALL":
        return status != "DELETED"
    return status == wanted


def _digest(filters: tuple[Any, ...]) -> bytes:
    return hashlib.sha256(repr(filters).encode()).digest()[:6]


def _page_token(last_id: str, returned: int, filters: tuple[Any, ...]) -> str:
    """Opaque, like TikTok's: the last id seen, how many were returned, which search it was."""
    raw = int(last_id).to_bytes(8, "big") + returned.to_bytes(4, "big") + _digest(filters)
    return base64.b64encode(raw).decode()


def _page_start(token: str, ids: list[str], filters: tuple[Any, ...]) -> tuple[int, int]:
    """(index of the first id of this page, results returned before it)."""
    if not token:
        return 0, 0
    raw = _decoded_token(token)
    if len(raw) != 18 or raw[12:] != _digest(filters):
        raise _invalid("page_token", "it does not belong to this search", "a next_page_token")
    last_id = int.from_bytes(raw[:8], "big")
    return bisect.bisect_right(ids, last_id, key=int), int.from_bytes(raw[8:12], "big")


def _offset_token(offset: int, filters: tuple[Any, ...]) -> str:
    return base64.b64encode(offset.to_bytes(4, "big") + _digest(filters)).decode()


def _offset(token: str, filters: tuple[Any, ...]) -> int:
    if not token:
        return 0
    raw = _decoded_token(token)
    if len(raw) != 10 or raw[4:] != _digest(filters):
        raise _invalid("page_token", "it does not belong to this search", "a next_page_token")
    return int.from_bytes(raw[:4], "big")


def _decoded_token(token: str) -> bytes:
    try:
        return base64.b64decode(token, validate=True)
    except ValueError:
        raise _invalid("page_token", "it is not a token we issued", "a next_page_token") from None


def _sales_attributes(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 3:
        raise TikTokFault(12019019, "sale property is invalid")
    attributes = []
    for entry in raw:
        name = entry.get("name") if isinstance(entry, dict) else None
        value = entry.get("value_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise TikTokFault(12052241, "attribute name or attribute id is empty.")
        if not isinstance(value, str) or not value.strip():
            raise TikTokFault(
                12052248, "The sales attribute value name or attribute value id is empty."
            )
        if len(name) > 20:
            raise TikTokFault(12052242, "The attribute name characters cannot exceed max_limit")
        if len(value) > 50:
            raise TikTokFault(
                12052249,
                f"The sales attribute value name characters cannot exceed 50, attribute value "
                f"name is :{value}.",
            )
        attributes.append((name, value))
    if len({name for name, _ in attributes}) != len(attributes):
        raise TikTokFault(12052244, "The attribute name duplicate.")
    return attributes


def _weight(raw: Any) -> Decimal:
    if not isinstance(raw, dict) or raw.get("unit") != "KILOGRAM":
        raise TikTokFault(12052006, "Incorrect parcel weight format")
    try:
        value = Decimal(str(raw.get("value")))
    except InvalidOperation:
        raise TikTokFault(12052006, "Incorrect parcel weight format") from None
    if not value.is_finite() or value < 0:
        raise TikTokFault(12052006, "Incorrect parcel weight format")
    if value == 0:
        raise TikTokFault(12052181, "The package weight of the product can not be zero.")
    return value


def _dimensions(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    names = ("length", "width", "height")
    if (
        not isinstance(raw, dict)
        or raw.get("unit") != "CENTIMETER"
        or not all(
            isinstance(raw.get(n), str) and raw[n].isdigit() and int(raw[n]) > 0 for n in names
        )
    ):
        raise TikTokFault(12052116, "product package size is invalid")
    return {n: raw[n] for n in names}


def _sku_error(sku_id: str, code: int, message: str, detail: str = "") -> dict[str, Any]:
    extra = [{"code": code, "message": detail}] if detail else []
    return {"code": code, "message": message, "detail": {"sku_id": sku_id, "extra_errors": extra}}


def _product_error(product_id: str, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "detail": {"product_id": product_id}}


def _platform_statuses(product: Product) -> dict[str, Any]:
    """`integrated_platform_statuses` of a product listed on Tokopedia too; {} otherwise."""
    if product.tokopedia is None:
        return {}
    return {"integrated_platform_statuses": [{"platform": TOKOPEDIA, "status": product.tokopedia}]}


def _inventory(sku: Sku) -> list[dict[str, Any]]:
    return [{"warehouse_id": w, "quantity": q} for w, q in sku.inventory.items()]


def _money(value: Decimal) -> str:
    return format(value, "f")


def _attribute_id(text: str) -> str:
    # Stable ids for custom sales attributes and values, as TikTok assigns them.
    return str(7_000_000_000_000_000_000 + int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


def _image_uri(content: bytes) -> str:
    return f"tos-maliva-i-emulator/{hashlib.md5(content).hexdigest()}"  # an id, not security


def _image_url(uri: str) -> str:
    return f"https://p16-oec-va.ibyteimg.test/{uri}~tplv-o3syd03w52-origin-jpeg.jpeg"


def _rid() -> str:
    return uuid.uuid4().hex.upper()
