"""A local WooCommerce store (REST API v3) for tests, the demo and benchmarks.

It speaks the subset omni uses, with WooCommerce's rules (shared/reference/marketplace-apis.md §5):
- routes under `/wp-json/wc/v3/`; anything else is WordPress's 404 `rest_no_route`;
- OAuth 1.0a one-legged authentication in the query string, checked as `WC_REST_Authentication`
  checks it (the emulator runs on plain HTTP, where WooCommerce ignores Basic credentials):
  missing parameters, unknown consumer key, wrong signature, a timestamp more than 15 minutes
  off and a nonce used before are all HTTP 401 `woocommerce_rest_authentication_error`; a call
  with no credentials at all is refused by the route's permission check (401
  `woocommerce_rest_cannot_view`, `..._cannot_edit`, ...); a read-only key cannot write;
- errors as `{"code", "message", "data": {"status"}}`, HTTP status = `data.status`;
- products simple and variable, variations under `/products/{id}/variations`, page-number
  pagination (`per_page` ≤ 100, `X-WP-Total`, `X-WP-TotalPages`, `Link`), `modified_after` /
  `modified_before` (strict, in site time unless `dates_are_gmt=true`), `status=any` (all but the
  trash) or one status, prices as strings (a JSON number is `rest_invalid_param`), unique SKUs
  (`product_invalid_sku`);
- batch endpoints with at most 100 items per request (413
  `woocommerce_rest_request_entity_too_large`) and per-item errors inside a 200 answer;
- categories (names answered HTML-escaped, `term_exists` with the existing id), the weight and
  dimension unit settings, orders with every core status (plus "shipped", as plugins add it),
  and order webhooks signed as WooCommerce signs them.

The site clock runs `utc_offset_hours` ahead of UTC, so a client that reads local times instead
of the `*_gmt` ones goes wrong here as it would on a real store. Throttled calls get the HTTP 429
page a host puts in front of WordPress; server errors are WordPress's "critical error" JSON
(HTTP 500) or a host's HTTP 503 page. Orders move stock as WooCommerce core does
(`REDUCES_STOCK`, `RESTORES_STOCK`).
"""

import base64
import hashlib
import hmac
import html
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from math import ceil
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from channels.adapters.base import OrderState
from channels.emulators.base import (
    Emulator,
    Faults,
    IdSequence,
    Listing,
    Refusal,
    Reply,
    Request,
    Route,
    ShopCache,
)
from channels.emulators.order_stock import OrderStock
from channels.emulators.shop import LEAVES, ShopItem, ShopMix, generate_shop

API = "/wp-json/wc/v3"
TIMESTAMP_WINDOW = 15 * 60  # seconds either way, as WC_REST_Authentication allows
BATCH_LIMIT = 100
MAX_PER_PAGE = 100
FIRST_POST_ID = 801  # products and variations share WordPress's post ids
FIRST_ORDER_ID = 1201
FIRST_TERM_ID = 15
FIRST_IMAGE_ID = 5001
PRODUCT_STATUSES = frozenset({"draft", "pending", "private", "publish", "future"})
ORDER_STATUSES = frozenset(
    {
        "pending",
        "processing",
        "on-hold",
        "completed",
        "cancelled",
        "refunded",
        "failed",
        "checkout-draft",
        "shipped",  # not core: registered by a shipment-tracking plugin on this store
    }
)
# The status an emulated order takes for each omni state (the helpers' `state` arguments).
STATE_STATUS: dict[OrderState, str] = {
    OrderState.UNPAID: "pending",
    OrderState.PAID: "processing",
    OrderState.SHIPPED: "shipped",
    OrderState.DELIVERED: "completed",
    OrderState.CANCELLED: "cancelled",
    OrderState.RETURNED: "refunded",
}
PAID_STATUSES = frozenset({"processing", "shipped", "completed", "refunded"})
# Where WooCommerce moves stock (wc-stock-functions.php): it reduces stock when payment completes
# or an order goes to processing, on-hold or completed, and restores what it reduced when the
# order goes to cancelled, pending or failed (failed since woocommerce#66256). The plugin's
# "shipped" and "refunded" stand for orders paid before, so an order created in them has
# reduced stock; neither restores it (a refund restocks only when staff tick "Restock").
REDUCES_STOCK = frozenset({"processing", "on-hold", "completed", "shipped", "refunded"})
RESTORES_STOCK = frozenset({"cancelled", "pending", "failed"})
DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)
USER_AGENT = "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"

Params = dict[str, str]


class WooFault(Refusal):
    """A WordPress error answer: `code`, `message`, HTTP `status` and extra `data` fields."""

    def __init__(self, code: str, message: str, status: int = 400, **data: Any) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.data = data

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"status": self.status, **self.data},
        }


def _invalid_param(name: str, reason: str) -> WooFault:
    return WooFault(
        "rest_invalid_param", f"Invalid parameter(s): {name}", 400, params={name: reason}
    )


def _invalid_id(kind: str = "product", status: int = 400) -> WooFault:
    return WooFault(f"woocommerce_rest_{kind}_invalid_id", "Invalid ID.", status)


def _no_route() -> WooFault:
    return WooFault("rest_no_route", "No route was found matching the URL and request method.", 404)


@dataclass(slots=True)
class Variation:
    id: int
    parent_id: int
    sku: str
    regular_price: Decimal | None
    stock_quantity: int | None
    attributes: list[dict[str, str]]  # [{"name", "option"}]
    date_created: int
    date_modified: int
    manage_stock: bool = True
    status: str = "publish"  # "private" when disabled
    global_unique_id: str = ""
    sale_price: Decimal | None = None


@dataclass(slots=True)
class Product:
    id: int
    name: str
    type: str  # "simple" | "variable"
    status: str
    description: str
    sku: str
    regular_price: Decimal | None
    stock_quantity: int | None
    weight: str
    category_ids: list[int]
    date_created: int
    date_modified: int
    manage_stock: bool = True
    attributes: list[dict[str, Any]] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    variation_ids: list[int] = field(default_factory=list)
    dimensions: dict[str, str] = field(
        default_factory=lambda: {"length": "", "width": "", "height": ""}
    )
    global_unique_id: str = ""
    sale_price: Decimal | None = None


@dataclass(slots=True)
class Order:
    id: int
    status: str
    currency: str
    date_created: int
    date_modified: int
    line_items: list[dict[str, Any]]
    shipping_total: Decimal
    date_paid: int | None = None
    date_completed: int | None = None
    payment_method: str = "bacs"
    payment_method_title: str = "Direct bank transfer"
    billing: dict[str, str] = field(default_factory=dict)
    number: str = ""

    @property
    def total(self) -> Decimal:
        lines = sum((Decimal(line["total"]) for line in self.line_items), Decimal(0))
        return lines + self.shipping_total


@dataclass(slots=True)
class WooState:
    """Everything one emulated store holds. Guarded by the emulator's lock."""

    products: dict[int, Product] = field(default_factory=dict)
    variations: dict[int, Variation] = field(default_factory=dict)
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    images: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    order_stock: OrderStock = field(default_factory=OrderStock)  # units orders reduced
    version: int = 0  # bumped on every product change; keys the list cache


EDIT = ("POST", "PUT", "PATCH")  # WordPress's EDITABLE methods
VARIATIONS = "/products/{product_id:int}/variations"
PERMISSION_ERRORS = {
    "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "delete": (
        "woocommerce_rest_cannot_delete",
        "Sorry, you are not allowed to delete this resource.",
    ),
    "batch": (
        "woocommerce_rest_cannot_batch",
        "Sorry, you are not allowed to batch manipulate this resource.",
    ),
}
OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)


class WooCommerceEmulator(Emulator):
    """One WooCommerce store on 127.0.0.1.

    `items`, `seed`, `pos_skus` and `mix` generate the store (see `generate_shop`); the API keys
    and webhook secret derive from `seed` too. `credentials` is what an adapter needs.
    `permissions` is the key's access ("read_write", "read" or "write"); `weight_unit` and
    `dimension_unit` the store's units; `batch_limit` WooCommerce's items per batch request.
    """

    name = "woocommerce"
    secret_fields = ("consumer_secret",)
    # Paths under the REST root (`route_path`); `auth` is the permission the route's callback
    # checks (PERMISSION_ERRORS).
    routes = (
        Route("GET", "/products", "_list_products", auth="list"),
        Route("POST", "/products", "_create_product", auth="create"),
        *(Route(method, "/products/batch", "_batch_products", auth="batch") for method in EDIT),
        Route("GET", "/products/categories", "_list_categories", auth="list"),
        Route("POST", "/products/categories", "_create_category", auth="create"),
        Route("GET", "/products/{id:int}", "_get_product", auth="view"),
        Route("DELETE", "/products/{id:int}", "_delete_product", auth="delete"),
        *(Route(method, "/products/{id:int}", "_update_product", auth="edit") for method in EDIT),
        Route("GET", VARIATIONS, "_list_variations", auth="list"),
        Route("POST", VARIATIONS, "_create_variation", auth="create"),
        *(
            Route(method, VARIATIONS + "/batch", "_batch_variations", auth="batch")
            for method in EDIT
        ),
        Route("GET", VARIATIONS + "/{id:int}", "_get_variation", auth="view"),
        Route("DELETE", VARIATIONS + "/{id:int}", "_delete_variation", auth="delete"),
        *(
            Route(method, VARIATIONS + "/{id:int}", "_update_variation", auth="edit")
            for method in EDIT
        ),
        Route("GET", "/settings/{group}/{id}", "_get_setting", auth="view"),
        Route("GET", "/orders", "_list_orders", auth="list"),
        Route("GET", "/orders/{id:int}", "_get_order", auth="view"),
    )

    def __init__(
        self,
        *,
        items: int = 0,
        seed: int = 1,
        pos_skus: Sequence[str] = (),
        mix: ShopMix | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        permissions: str = "read_write",
        utc_offset_hours: int = 7,
        currency: str = "EUR",
        weight_unit: str = "kg",
        dimension_unit: str = "cm",
        batch_limit: int = BATCH_LIMIT,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, faults=faults, clock=clock)
        secrets = random.Random(f"woocommerce-secrets-{seed}")
        self.consumer_key = "ck_" + secrets.randbytes(20).hex()
        self.consumer_secret = "cs_" + secrets.randbytes(20).hex()
        self.webhook_secret = secrets.randbytes(16).hex()
        self.webhook_id = 7
        self._site_salt = secrets.randbytes(16)
        self.permissions = permissions
        self.utc_offset = timedelta(hours=utc_offset_hours)
        self.currency = currency
        self.units = {
            "woocommerce_weight_unit": weight_unit,
            "woocommerce_dimension_unit": dimension_unit,
        }
        self.batch_limit = batch_limit
        self.state = WooState()
        self._post_ids = IdSequence(FIRST_POST_ID)  # products and variations share them
        self._order_ids = IdSequence(FIRST_ORDER_ID)
        self._term_ids = IdSequence(FIRST_TERM_ID)
        self._image_ids = IdSequence(FIRST_IMAGE_ID)
        self._nonces: dict[str, float] = {}  # nonce -> when it was used
        self._list_cache: ShopCache[tuple[Any, ...], list[int]] = ShopCache(32)
        self._add_categories()
        for item in generate_shop(items, seed, pos_skus, mix=mix, now=clock()):
            self.put_item(item)

    # -- the helpers every emulator offers (docs/adapters.md) ------------------------------

    @property
    def credentials(self) -> dict[str, Any]:
        return {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "webhook_secret": self.webhook_secret,
        }

    def put_item(self, shop_item: ShopItem, *, status: str | None = None) -> str:
        """Add a generated (or hand-made) item: a simple product, or a variable product with
        one variation per variant. Its product id."""
        with self.lock:
            product = self._product_from_item(shop_item, status)
            if shop_item.has_variants:
                for variant in shop_item.variants:
                    variation = Variation(
                        id=self._post_ids.next(),
                        parent_id=product.id,
                        sku=variant.sku,
                        regular_price=variant.price,
                        stock_quantity=variant.quantity,
                        attributes=[
                            {"name": name, "option": variant.options[name]}
                            for name in shop_item.option_names
                        ],
                        date_created=shop_item.created_at,
                        date_modified=shop_item.updated_at,
                    )
                    self.state.variations[variation.id] = variation
                    product.variation_ids.append(variation.id)
            self.state.products[product.id] = product
            self.state.version += 1
            return str(product.id)

    def touch_item(self, item_id: str | int, *, name: str) -> None:
        """Rename a product as the seller would in wp-admin; its modified time moves."""
        with self.lock:
            product = self._product(int(item_id))
            product.name = name
            self._touch(product)

    def remove_item(self, item_id: str | int) -> None:
        """Move a product to the trash, as the seller's "Trash" link does."""
        with self.lock:
            product = self._product(int(item_id))
            product.status = "trash"
            self._touch(product)

    def iter_listings(self) -> Iterator[Listing]:
        """Products not in the trash: a simple product is one listing (variation ""), each
        variation of a variable one another."""
        for product in self.state.products.values():
            if product.status == "trash":
                continue
            if product.type == "simple":
                yield _listing(product, "", product)
            for variation_id in product.variation_ids:
                yield _listing(product, str(variation_id), self.state.variations[variation_id])

    def update_calls(self, what: str) -> int:
        """Write calls that set stock (`"stock"`) or regular prices (`"price"`) and succeeded."""
        key = {"stock": "stock_quantity", "price": "regular_price"}[what]
        count = 0
        for call in self.log.writes:
            if call.status >= 300 or not call.path.startswith(API + "/products"):
                continue
            body = call.body if isinstance(call.body, dict) else {}
            rows = body.get("update") if call.path.endswith("/batch") else [body]
            if isinstance(rows, list) and any(isinstance(r, dict) and key in r for r in rows):
                count += 1
        return count

    def create_order(self, lines: Sequence[tuple[str, str, int]], *, state: OrderState) -> str:
        """An order of `[(item_id, variant_id, qty)]` in the status standing for `state`.

        Stock moves as WooCommerce moves it (REDUCES_STOCK, RESTORES_STOCK): an order in a
        paid or on-hold status has taken its units off the stock of the product or variation
        that manages stock (below zero when it sells more than there is, as backorders do),
        a pending or cancelled one has not. Products that do not manage stock are left alone.
        """
        with self.lock:
            now = int(self.now())
            order = Order(
                id=self._order_ids.next(),
                status=STATE_STATUS[state],
                currency=self.currency,
                date_created=now,
                date_modified=now,
                line_items=[self._order_line(n, *line) for n, line in enumerate(lines)],
                shipping_total=Decimal("5.00"),
                billing={
                    "first_name": "Ana",
                    "last_name": "Lopes",
                    "email": "ana@example.com",
                    "phone": "",
                },
            )
            order.number = str(order.id)
            self._stamp(order, order.status)
            self.state.orders[order.id] = order
            self._move_stock(order)
            return order.number

    def move_order(self, order_number: str, state: OrderState) -> None:
        self.set_order_status(order_number, STATE_STATUS[state])

    def set_order_status(self, order_number: str, status: str) -> None:
        """Any WooCommerce status (or "trash"); the order's modified time moves. Stock is
        reduced on the way into processing, on-hold or completed and restored on the way into
        cancelled, pending or failed, each at most once in a row, as WooCommerce does."""
        if status not in ORDER_STATUSES | {"trash"}:
            raise ValueError(f"unknown WooCommerce order status {status!r}")
        with self.lock:
            order = self._order_by_number(order_number)
            order.status = status
            self._stamp(order, status)
            order.date_modified = self.time_after(order.date_modified)
            self._move_stock(order)

    def signed_webhook(self, order_number: str, url: str) -> tuple[dict[str, str], bytes]:
        """An `order.updated` delivery as WooCommerce posts it to `url` (which it does not
        sign). The body is PHP's JSON (slashes escaped), signed over its raw bytes; the
        delivery id is WordPress's hash of the webhook id and the current second."""
        with self.lock:
            payload = self._order_json(self._order_by_number(order_number))
        body = json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()
        signature = base64.b64encode(
            hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).digest()
        ).decode()
        delivery = hmac.new(
            self._site_salt, f"{self.webhook_id}{int(self.now())}".encode(), hashlib.md5
        ).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": f"{self.base_url}/",
            "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": "updated",
            "X-WC-Webhook-Signature": signature,
            "X-WC-Webhook-ID": str(self.webhook_id),
            "X-WC-Webhook-Delivery-ID": delivery,
        }
        return headers, body

    # -- more helpers for tests --------------------------------------------------------------

    def product(self, item_id: str | int) -> dict[str, Any]:
        """The product as `GET /products/{id}` answers it (the trash included)."""
        with self.lock:
            return self._product_json(self._product(int(item_id)))

    def variations(self, item_id: str | int) -> list[dict[str, Any]]:
        with self.lock:
            product = self._product(int(item_id))
            return [self._variation_json(self.state.variations[v]) for v in product.variation_ids]

    def product_ids(self, *, kind: str | None = None, status: str | None = None) -> list[str]:
        with self.lock:
            return [
                str(p.id)
                for p in self.state.products.values()
                if (kind is None or p.type == kind) and (status is None or p.status == status)
            ]

    def order(self, order_number: str) -> dict[str, Any]:
        with self.lock:
            return self._order_json(self._order_by_number(order_number))

    def category_names(self) -> list[str]:
        with self.lock:
            return [str(c["name"]) for c in self.state.categories.values()]

    # -- routing ---------------------------------------------------------------------------

    def route_path(self, request: Request) -> str:
        """The path under the REST root, without the trailing slash WordPress ignores; ""
        (no route) for a path outside the root."""
        if not request.path.startswith(API + "/"):
            return ""
        return request.path[len(API) :].rstrip("/") or "/"

    def not_found(self, request: Request) -> Reply:
        return self.wrap_error(_no_route())

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        # WordPress has no 405: a route without the method is no route at all.
        return self.wrap_error(_no_route())

    def authenticate(self, request: Request, route: Route) -> Reply | None:
        """The OAuth parameters, then the permission the route's callback checks."""
        authenticated = self._check_oauth(request, _query(request))
        self._permit(authenticated, route.auth, request.method)
        return None

    def invoke(self, route: Route, request: Request, params: dict[str, str]) -> Any:
        """`handler(query, body, **path_ids)` under the lock, the body parsed first."""
        body = self._body(request)
        handler: Callable[..., Reply] = getattr(self, route.handler)
        with self.lock:
            return handler(_query(request), body, **params)

    def wrap_error(self, refusal: Refusal) -> Reply:
        if not isinstance(refusal, WooFault):
            return super().wrap_error(refusal)
        return Reply.json(refusal.body(), status=refusal.status)

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        page = "<html><head><title>429 Too Many Requests</title></head><body></body></html>"
        return Reply(
            429,
            page.encode(),
            (("Content-Type", "text/html"), ("Retry-After", f"{retry_after:g}")),
        )

    def error_reply(self, request: Request) -> Reply:
        # WordPress's fatal-error handler for REST calls, or the host's own page when PHP is down.
        if self.random_fault() < 0.5:
            fault = WooFault(
                "internal_server_error",
                "<p>There has been a critical error on this website.</p>",
                500,
            )
            return Reply.json({**fault.body(), "additional_errors": []}, status=500)
        page = "<html><body><h1>503 Service Unavailable</h1></body></html>"
        return Reply(503, page.encode(), (("Content-Type", "text/html"),))

    # -- authentication --------------------------------------------------------------------

    def _check_oauth(self, request: Request, params: Params) -> bool:
        """WC_REST_Authentication::perform_oauth_authentication. False: no credentials sent."""
        present = [name for name in OAUTH_PARAMS if params.get(name)]
        if not present:
            return False
        missing = [name for name in OAUTH_PARAMS if not params.get(name)]
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            raise WooFault(
                "woocommerce_rest_authentication_missing_parameter",
                f"Missing OAuth {noun} {', '.join(missing)}",
                401,
            )
        if not hmac.compare_digest(params["oauth_consumer_key"], self.consumer_key):
            raise self._auth_error("Consumer key is invalid.")
        method = params["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            raise self._auth_error("Invalid signature - signature method is invalid.")
        url = f"http://{request.headers.get('host', self.host)}{request.path}"
        signed = {name: value for name, value in params.items() if name != "oauth_signature"}
        digest = hashlib.sha1 if method == "HMAC-SHA1" else hashlib.sha256
        expected = base64.b64encode(
            hmac.new(
                f"{self.consumer_secret}&".encode(),
                _base_string(request.method, url, signed).encode(),
                digest,
            ).digest()
        ).decode()
        given = params["oauth_signature"].replace(" ", "+")
        if not hmac.compare_digest(given, expected):
            raise self._auth_error("Invalid signature - provided signature does not match.")
        self._check_timestamp_and_nonce(params["oauth_timestamp"], params["oauth_nonce"])
        return True

    def _check_timestamp_and_nonce(self, raw_timestamp: str, nonce: str) -> None:
        now = time.time()  # wall clock, as the store's server checks it
        timestamp = int(raw_timestamp) if raw_timestamp.isdigit() else 0
        if abs(now - timestamp) > TIMESTAMP_WINDOW:
            raise self._auth_error("Invalid timestamp.")
        with self.lock:
            if nonce in self._nonces:
                raise self._auth_error("Invalid nonce - nonce has already been used.")
            self._nonces[nonce] = now
            if len(self._nonces) > 10_000:
                self._nonces = {n: t for n, t in self._nonces.items() if t > now - TIMESTAMP_WINDOW}

    def _permit(self, authenticated: bool, permission: str, method: str) -> None:
        if not authenticated:
            code, message = PERMISSION_ERRORS[permission]
            raise WooFault(code, message, 401)
        if method == "GET" and self.permissions not in ("read", "read_write"):
            raise self._auth_error("The API key provided does not have read permissions.")
        if method != "GET" and self.permissions not in ("write", "read_write"):
            raise self._auth_error("The API key provided does not have write permissions.")

    @staticmethod
    def _auth_error(message: str) -> WooFault:
        return WooFault("woocommerce_rest_authentication_error", message, 401)

    @staticmethod
    def _body(request: Request) -> Any:
        if request.method in ("GET", "DELETE") or not request.body:
            return {}
        try:
            return request.json()
        except ValueError:
            raise WooFault("rest_invalid_json", "Invalid JSON body passed.", 400) from None

    # -- products: reading -----------------------------------------------------------------

    def _list_products(self, params: Params, body: Any) -> Reply:
        status = params.get("status", "any")
        if status not in PRODUCT_STATUSES | {"any", "trash"}:
            raise _invalid_param(
                "status",
                f"status is not one of {', '.join(sorted(PRODUCT_STATUSES))}, any, and trash.",
            )
        after, before = self._modified_bounds(params)
        orderby = _enum(
            params,
            "orderby",
            "date",
            (
                "date",
                "id",
                "modified",
                "title",
                "include",
                "slug",
                "price",
                "popularity",
                "rating",
                "menu_order",
            ),
        )
        order = _enum(params, "order", "desc", ("asc", "desc"))
        skus = {s.strip() for s in params.get("sku", "").split(",") if s.strip()}
        key = (
            status,
            after,
            before,
            orderby,
            order,
            frozenset(skus),
            params.get("type"),
            params.get("search"),
        )
        ids = self._list_cache.get(
            key,
            self.state.version,
            lambda: self._product_ids(status, after, before, orderby, order, skus, params),
        )
        return self._paged(
            ids,
            params,
            lambda i: self._product_json(self.state.products[i]),
            shown=self.listing_page,
        )

    def _product_ids(
        self,
        status: str,
        after: int | None,
        before: int | None,
        orderby: str,
        order: str,
        skus: set[str],
        params: Params,
    ) -> list[int]:
        search = params.get("search", "").lower()
        kind = params.get("type")
        rows = [
            p
            for p in self.state.products.values()
            if (p.status != "trash" if status == "any" else p.status == status)
            and (after is None or p.date_modified > after)
            and (before is None or p.date_modified < before)
            and (not skus or p.sku in skus)
            and (not kind or p.type == kind)
            and (not search or search in p.name.lower())
        ]
        sort_key: Callable[[Product], Any] = {
            "id": lambda p: p.id,
            "modified": lambda p: (p.date_modified, p.id),
            "title": lambda p: (p.name.lower(), p.id),
        }.get(orderby, lambda p: (p.date_created, p.id))
        rows.sort(key=sort_key, reverse=order == "desc")
        return [p.id for p in rows]

    def _get_product(self, params: Params, body: Any, id: str) -> Reply:
        product = self.state.products.get(int(id))
        if product is None:
            raise _invalid_id(status=404)
        return Reply.json(self._product_json(product))

    def _list_variations(self, params: Params, body: Any, product_id: str) -> Reply:
        parent = self.state.products.get(int(product_id))
        ids = list(parent.variation_ids) if parent is not None else []
        after, before = self._modified_bounds(params)
        rows = [
            self.state.variations[i]
            for i in ids
            if (after is None or self.state.variations[i].date_modified > after)
            and (before is None or self.state.variations[i].date_modified < before)
        ]
        orderby = _enum(
            params, "orderby", "date", ("date", "id", "modified", "title", "include", "menu_order")
        )
        order = _enum(params, "order", "desc", ("asc", "desc"))
        if orderby == "id":
            rows.sort(key=lambda v: v.id, reverse=order == "desc")
        elif orderby == "modified":
            rows.sort(key=lambda v: (v.date_modified, v.id), reverse=order == "desc")
        elif orderby == "date":
            rows.sort(key=lambda v: (v.date_created, v.id), reverse=order == "desc")
        return self._paged(
            [v.id for v in rows], params, lambda i: self._variation_json(self.state.variations[i])
        )

    def _get_variation(self, params: Params, body: Any, product_id: str, id: str) -> Reply:
        variation = self._variation_of(int(product_id), int(id), status=404)
        return Reply.json(self._variation_json(variation))

    # -- products: writing -----------------------------------------------------------------

    def _create_product(self, params: Params, body: Any) -> Reply:
        return Reply.json(self._product_json(self._do_create_product(body)), status=201)

    def _update_product(self, params: Params, body: Any, id: str) -> Reply:
        return Reply.json(self._product_json(self._do_update_product(int(id), body)))

    def _delete_product(self, params: Params, body: Any, id: str) -> Reply:
        force = params.get("force", "false").lower() in ("true", "1")
        return Reply.json(self._do_delete_product(int(id), force=force))

    def _batch_products(self, params: Params, body: Any) -> Reply:
        return self._run_batch(
            body,
            create=lambda row: self._product_json(self._do_create_product(row)),
            update=lambda item_id, row: self._product_json(self._do_update_product(item_id, row)),
            delete=lambda item_id: self._do_delete_product(item_id, force=True),
        )

    def _create_variation(self, params: Params, body: Any, product_id: str) -> Reply:
        variation = self._do_create_variation(int(product_id), body)
        return Reply.json(self._variation_json(variation), status=201)

    def _update_variation(self, params: Params, body: Any, product_id: str, id: str) -> Reply:
        variation = self._do_update_variation(int(product_id), int(id), body)
        return Reply.json(self._variation_json(variation))

    def _delete_variation(self, params: Params, body: Any, product_id: str, id: str) -> Reply:
        if params.get("force", "false").lower() not in ("true", "1"):
            raise WooFault(
                "woocommerce_rest_trash_not_supported",
                "The product variation does not support trashing.",
                501,
            )
        return Reply.json(self._do_delete_variation(int(product_id), int(id)))

    def _batch_variations(self, params: Params, body: Any, product_id: str) -> Reply:
        parent_id = int(product_id)
        return self._run_batch(
            body,
            create=lambda row: self._variation_json(self._do_create_variation(parent_id, row)),
            update=lambda item_id, row: self._variation_json(
                self._do_update_variation(parent_id, item_id, row)
            ),
            delete=lambda item_id: self._do_delete_variation(parent_id, item_id),
        )

    def _run_batch(
        self,
        body: Any,
        *,
        create: Callable[[Any], dict[str, Any]],
        update: Callable[[int, Any], dict[str, Any]],
        delete: Callable[[int], dict[str, Any]],
    ) -> Reply:
        """WC_REST_Controller::batch_items: creates, then updates, then deletes (for good);
        each item answered by itself, a refused one as `{"id", "error"}`."""
        actions = self._batch_actions(body)
        answer: dict[str, list[dict[str, Any]]] = {}
        if "create" in actions:
            answer["create"] = [
                self._batch_item(0, partial(create, row)) for row in actions["create"]
            ]
        if "update" in actions:
            answer["update"] = [
                self._batch_item(_row_id(row), partial(update, _row_id(row), row))
                for row in actions["update"]
            ]
        if "delete" in actions:
            answer["delete"] = [
                self._batch_item(_row_id(row), partial(delete, _row_id(row)))
                for row in actions["delete"]
            ]
        return Reply.json(answer)

    def _batch_actions(self, body: Any) -> dict[str, list[Any]]:
        if not isinstance(body, dict):
            raise _invalid_param("create", "create is not of type array.")
        actions: dict[str, list[Any]] = {}
        for action in ("create", "update", "delete"):
            rows = body.get(action)
            if rows is None:
                continue
            if not isinstance(rows, list):
                raise _invalid_param(action, f"{action} is not of type array.")
            if rows:
                actions[action] = rows
        total = sum(len(rows) for rows in actions.values())
        if total > self.batch_limit:
            raise WooFault(
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {self.batch_limit} items for this request.",
                413,
            )
        return actions

    @staticmethod
    def _batch_item(item_id: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """One batch item: its result, or `{"id", "error"}` as WC_REST_Controller reports it."""
        try:
            return run()
        except WooFault as fault:
            return {"id": item_id, "error": fault.body()}

    def _do_create_product(self, body: Any) -> Product:
        if not isinstance(body, dict):
            raise _invalid_param("body", "Each item must be an object.")
        now = int(self.now())
        kind = body.get("type", "simple")
        if kind not in ("simple", "variable"):
            raise _invalid_param(
                "type", "type is not one of simple, variable."
            )  # grouped/external not emulated
        product = Product(
            id=0,
            name="",
            type=kind,
            status="publish",
            description="",
            sku="",
            regular_price=None,
            stock_quantity=None,
            weight="",
            category_ids=[],
            date_created=now,
            date_modified=now,
            manage_stock=False,
        )
        changes = self._product_changes(body, product)  # every check passes before any change
        product.id = self._post_ids.next()
        self._apply(product, changes)
        self.state.products[product.id] = product
        self.state.version += 1
        return product

    def _do_update_product(self, product_id: int, body: Any) -> Product:
        product = self.state.products.get(product_id)
        if product is None:
            raise _invalid_id()
        if not isinstance(body, dict):
            raise _invalid_param("body", "Each item must be an object.")
        changes = self._product_changes(body, product)
        self._apply(product, changes)
        self._touch(product)
        return product

    def _do_delete_product(self, product_id: int, *, force: bool) -> dict[str, Any]:
        product = self.state.products.get(product_id)
        if product is None:
            raise _invalid_id(status=404)
        answer = self._product_json(product)
        if force:
            for variation_id in product.variation_ids:
                self.state.variations.pop(variation_id, None)
            del self.state.products[product_id]
            self.state.version += 1
            return answer
        if product.status == "trash":
            raise WooFault(
                "woocommerce_rest_already_trashed", "The product has already been deleted.", 410
            )
        product.status = "trash"
        self._touch(product)
        return self._product_json(product)

    def _product_changes(self, body: dict[str, Any], product: Product) -> dict[str, Any]:
        """The fields a create/update body sets, checked like WordPress checks its schema."""
        changes: dict[str, Any] = {}
        for name in ("name", "description", "short_description", "weight"):
            if name in body:
                changes[name] = _string(body, name)
        if "type" in body:
            if body["type"] not in ("simple", "variable"):
                raise _invalid_param("type", "type is not one of simple, variable.")
            changes["type"] = body["type"]
        if "status" in body:
            if body["status"] not in PRODUCT_STATUSES:
                raise _invalid_param(
                    "status", "status is not one of draft, pending, private, publish, and future."
                )
            changes["status"] = body["status"]
        changes.update(self._stock_and_price(body))
        if "sku" in body:
            changes["sku"] = self._unique_sku(_string(body, "sku").strip(), product.id)
        if "global_unique_id" in body:
            changes["global_unique_id"] = self._unique_gtin(
                _string(body, "global_unique_id"), product.id
            )
        if "categories" in body:
            changes["category_ids"] = self._category_ids(body["categories"])
        if "images" in body:
            changes["image_ids"] = self._image_changes(body["images"])
        if "attributes" in body:
            changes["attributes"] = _attributes(body["attributes"])
        if "dimensions" in body:
            changes["dimensions"] = _dimensions(body["dimensions"], product.dimensions)
        return changes

    def _apply(self, product: Product | Variation, changes: dict[str, Any]) -> None:
        images = changes.pop("image_ids", None)
        if images is not None and isinstance(product, Product):
            product.image_ids = [
                self._new_image(row) if isinstance(row, dict) else row for row in images
            ]
        changes.pop("short_description", None)
        for name, value in changes.items():
            setattr(product, name, value)

    def _stock_and_price(self, body: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for name in ("regular_price", "sale_price"):
            if name in body:
                changes[name] = _price(body, name)
        if "manage_stock" in body:
            if not isinstance(body["manage_stock"], bool):
                raise _invalid_param("manage_stock", "manage_stock is not of type boolean.")
            changes["manage_stock"] = body["manage_stock"]
        if "stock_quantity" in body:
            quantity = body["stock_quantity"]
            if quantity is not None and (
                isinstance(quantity, bool) or not isinstance(quantity, int)
            ):
                raise _invalid_param("stock_quantity", "stock_quantity is not of type integer.")
            changes["stock_quantity"] = quantity
        return changes

    def _do_create_variation(self, parent_id: int, body: Any) -> Variation:
        parent = self.state.products.get(parent_id)
        if parent is None or parent.type != "variable":
            raise WooFault(
                "woocommerce_rest_product_variation_invalid_parent", "Invalid parent ID.", 400
            )
        if not isinstance(body, dict):
            raise _invalid_param("body", "Each item must be an object.")
        now = int(self.now())
        variation = Variation(
            id=0,
            parent_id=parent_id,
            sku="",
            regular_price=None,
            stock_quantity=None,
            attributes=[],
            date_created=now,
            date_modified=now,
            manage_stock=False,
        )
        changes = self._variation_changes(body, variation)
        variation.id = self._post_ids.next()
        self._apply(variation, changes)
        self.state.variations[variation.id] = variation
        parent.variation_ids.append(variation.id)
        self._touch(parent)  # WooCommerce syncs the parent (prices, stock status) and saves it
        return variation

    def _do_update_variation(self, parent_id: int, variation_id: int, body: Any) -> Variation:
        variation = self._variation_of(parent_id, variation_id, status=400)
        if not isinstance(body, dict):
            raise _invalid_param("body", "Each item must be an object.")
        changes = self._variation_changes(body, variation)
        self._apply(variation, changes)
        variation.date_modified = self.time_after(variation.date_modified)
        self._touch(self.state.products[parent_id])
        return variation

    def _do_delete_variation(self, parent_id: int, variation_id: int) -> dict[str, Any]:
        variation = self._variation_of(parent_id, variation_id, status=404)
        answer = self._variation_json(variation)
        parent = self.state.products[parent_id]
        parent.variation_ids.remove(variation_id)
        del self.state.variations[variation_id]
        self._touch(parent)
        return answer

    def _variation_changes(self, body: dict[str, Any], variation: Variation) -> dict[str, Any]:
        changes = self._stock_and_price(body)
        if "sku" in body:
            changes["sku"] = self._unique_sku(_string(body, "sku").strip(), variation.id)
        if "global_unique_id" in body:
            changes["global_unique_id"] = self._unique_gtin(
                _string(body, "global_unique_id"), variation.id
            )
        if "status" in body:
            if body["status"] not in ("publish", "private", "draft", "pending"):
                raise _invalid_param(
                    "status", "status is not one of draft, pending, private, and publish."
                )
            changes["status"] = body["status"]
        if "attributes" in body:
            rows = body["attributes"]
            if not isinstance(rows, list) or not all(
                isinstance(r, dict)
                and isinstance(r.get("name"), str)
                and isinstance(r.get("option"), str)
                for r in rows
            ):
                raise _invalid_param("attributes", "attributes items need a name and an option.")
            changes["attributes"] = [{"name": r["name"], "option": r["option"]} for r in rows]
        return changes

    def _variation_of(self, parent_id: int, variation_id: int, *, status: int) -> Variation:
        variation = self.state.variations.get(variation_id)
        if variation is None or variation.parent_id != parent_id:
            raise _invalid_id("product_variation", status)
        return variation

    def _unique_sku(self, sku: str, own_id: int) -> str:
        if not sku:
            return sku
        for row in self._all_rows():
            if row.sku == sku and row.id != own_id:
                raise WooFault(
                    "product_invalid_sku",
                    "Invalid or duplicated SKU.",
                    400,
                    resource_id=row.id,
                    unique_sku=f"{sku}-1",
                )
        return sku

    def _unique_gtin(self, value: str, own_id: int) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[0-9-]+", value):
            raise WooFault(
                "product_invalid_global_unique_id", "Invalid GTIN, UPC, EAN or ISBN.", 400
            )
        if value:
            for row in self._all_rows():
                if row.global_unique_id == value and row.id != own_id:
                    raise WooFault(
                        "product_invalid_global_unique_id",
                        "Invalid or duplicated GTIN, UPC, EAN or ISBN.",
                        400,
                        resource_id=row.id,
                    )
        return value

    def _all_rows(self) -> list[Product | Variation]:
        return [*self.state.products.values(), *self.state.variations.values()]

    def _category_ids(self, rows: Any) -> list[int]:
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise _invalid_param("categories", "categories is not of type array.")
        # WordPress ignores ids that are not categories rather than refusing the product.
        return [
            int(r["id"])
            for r in rows
            if str(r.get("id", "")).isdigit() and int(r["id"]) in self.state.categories
        ]

    def _image_changes(self, rows: Any) -> list[Any]:
        """Existing image ids, or `{"src", "name"}` rows to download once every check passed."""
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise _invalid_param("images", "images is not of type array.")
        result: list[Any] = []
        for row in rows:
            image_id = row.get("id")
            if image_id:
                if image_id not in self.state.images:
                    raise WooFault(
                        "woocommerce_product_invalid_image_id",
                        f"#{image_id} is an invalid image ID.",
                        400,
                    )
                result.append(int(image_id))
                continue
            src = row.get("src")
            if not isinstance(src, str) or urlsplit(src).scheme not in ("http", "https"):
                raise WooFault(
                    "woocommerce_product_image_upload_error",
                    f"Error getting remote image {src}.",
                    400,
                )
            result.append(
                {"src": src, "name": str(row.get("name") or ""), "alt": str(row.get("alt") or "")}
            )
        return result

    def _new_image(self, row: dict[str, str]) -> int:
        """Download (here: record) an image into the media library; a new id every time."""
        image_id = self._image_ids.next()
        filename = urlsplit(row["src"]).path.rsplit("/", 1)[-1] or "image.png"
        self.state.images[image_id] = {
            "id": image_id,
            "src": f"{self.base_url}/wp-content/uploads/2025/01/{filename}",
            "name": row["name"] or filename.rsplit(".", 1)[0],
            "alt": row["alt"],
        }
        return image_id

    # -- categories and settings -------------------------------------------------------------

    def _add_categories(self) -> None:
        departments: dict[str, int] = {}
        for leaf in LEAVES:
            if leaf.department not in departments:
                departments[leaf.department] = self._new_category(leaf.department, 0)
            self._new_category(leaf.name, departments[leaf.department])

    def _new_category(self, name: str, parent: int) -> int:
        term_id = self._term_ids.next()
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.state.categories[term_id] = {
            "id": term_id,
            "name": name,
            "slug": slug,
            "parent": parent,
        }
        return term_id

    def _list_categories(self, params: Params, body: Any) -> Reply:
        search = params.get("search", "").lower()
        ids = [c["id"] for c in self.state.categories.values() if search in str(c["name"]).lower()]
        return self._paged(ids, params, lambda i: _category_json(self.state.categories[i]))

    def _create_category(self, params: Params, body: Any) -> Reply:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise WooFault(
                "rest_missing_callback_param", "Missing parameter(s): name", 400, params=["name"]
            )
        parent = int(body.get("parent") or 0)
        for category in self.state.categories.values():
            if category["name"].lower() == name.strip().lower() and category["parent"] == parent:
                raise WooFault(
                    "term_exists",
                    "A term with the name provided already exists with this parent.",
                    400,
                    resource_id=category["id"],
                )
        term_id = self._new_category(name.strip(), parent)
        return Reply.json(_category_json(self.state.categories[term_id]), status=201)

    def _get_setting(self, params: Params, body: Any, group: str, id: str) -> Reply:
        value = self.units.get(id) if group == "products" else None
        if value is None:
            raise WooFault("rest_setting_setting_invalid", "Invalid setting.", 404)
        return Reply.json(
            {
                "id": id,
                "label": "Weight unit" if "weight" in id else "Dimensions unit",
                "type": "select",
                "default": "kg" if "weight" in id else "cm",
                "value": value,
                "group_id": "products",
            }
        )

    # -- orders ----------------------------------------------------------------------------

    def _list_orders(self, params: Params, body: Any) -> Reply:
        status = params.get("status", "any")
        if status not in ORDER_STATUSES | {"any", "trash"}:
            raise _invalid_param(
                "status", "status is not one of the order statuses, any, and trash."
            )
        after, before = self._modified_bounds(params)
        orderby = _enum(
            params, "orderby", "date", ("date", "id", "modified", "include", "title", "slug")
        )
        order = _enum(params, "order", "desc", ("asc", "desc"))
        search = params.get("search", "").strip().lower()
        rows = [
            o
            for o in self.state.orders.values()
            if (o.status != "trash" if status == "any" else o.status == status)
            and (after is None or o.date_modified > after)
            and (before is None or o.date_modified < before)
            and (
                not search
                or search in (o.number.lower(), str(o.id), o.billing.get("email", "").lower())
            )
        ]
        sort_key: Callable[[Order], Any] = {
            "id": lambda o: o.id,
            "modified": lambda o: (o.date_modified, o.id),
        }.get(orderby, lambda o: (o.date_created, o.id))
        rows.sort(key=sort_key, reverse=order == "desc")
        return self._paged(
            [o.id for o in rows],
            params,
            lambda i: self._order_json(self.state.orders[i]),
            shown=self.order_page,
        )

    def _get_order(self, params: Params, body: Any, id: str) -> Reply:
        order = self.state.orders.get(int(id))
        if order is None:
            raise _invalid_id("shop_order", 404)
        return Reply.json(self._order_json(order))

    def _order_line(self, n: int, item_id: str, variant_id: str, quantity: int) -> dict[str, Any]:
        product = self._product(int(item_id))
        variation = self.state.variations[int(variant_id)] if variant_id else None
        row: Product | Variation = variation or product
        price = row.regular_price or Decimal(0)
        total = (price * quantity).quantize(Decimal("0.01"))
        name = product.name
        if variation is not None:
            name += " - " + ", ".join(a["option"] for a in variation.attributes)
        return {
            "id": 100 + n,
            "name": name,
            "product_id": product.id,
            "variation_id": variation.id if variation else 0,
            "quantity": quantity,
            "tax_class": "",
            "subtotal": f"{total:.2f}",
            "subtotal_tax": "0.00",
            "total": f"{total:.2f}",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
            "sku": row.sku,
            "price": float(price),
        }

    def _move_stock(self, order: Order) -> None:
        """Reduce or restore the order's stock as its status asks (once each way)."""
        held = self.state.order_stock
        if order.status in RESTORES_STOCK:
            held.give_back(order.id, self._adjust_stock)
        elif order.status in REDUCES_STOCK:
            rows = [(self._stock_row(line), int(line["quantity"])) for line in order.line_items]
            held.take(
                order.id, [(row, qty) for row, qty in rows if row is not None], self._adjust_stock
            )

    def _stock_row(self, line: dict[str, Any]) -> Product | Variation | None:
        """The product or variation whose stock a line moves: the variation when it manages
        its stock, else its product when that does (WooCommerce's "managed by parent")."""
        product = self.state.products.get(line["product_id"])
        variation = self.state.variations.get(line["variation_id"])
        if variation is not None and variation.manage_stock:
            return variation
        return product if product is not None and product.manage_stock else None

    def _adjust_stock(self, row: Product | Variation, delta: int) -> int:
        """Move a stock quantity by `delta` (backorders may take it below zero), saving the
        product as `wc_update_product_stock` does: its modified time moves."""
        row.stock_quantity = (row.stock_quantity or 0) + delta
        if isinstance(row, Variation):
            row.date_modified = self.time_after(row.date_modified)
            row = self.state.products[row.parent_id]
        self._touch(row)
        return delta

    def _stamp(self, order: Order, status: str) -> None:
        now = int(self.now())
        if status in PAID_STATUSES and order.date_paid is None:
            order.date_paid = now
        if status == "completed" and order.date_completed is None:
            order.date_completed = now

    def _order_by_number(self, order_number: str) -> Order:
        for order in self.state.orders.values():
            if order.number == str(order_number):
                return order
        raise KeyError(f"no order {order_number}")

    # -- representations -------------------------------------------------------------------

    def _product_json(self, p: Product) -> dict[str, Any]:
        prices = [
            price
            for v in p.variation_ids
            if (price := self.state.variations[v].regular_price) is not None
        ]
        variable = p.type == "variable"
        price = min(prices) if variable and prices else p.regular_price
        return {
            "id": p.id,
            "name": p.name,
            "slug": re.sub(r"[^a-z0-9]+", "-", p.name.lower()).strip("-"),
            "permalink": f"{self.base_url}/product/{p.id}/",
            **self._dates("date_created", p.date_created),
            **self._dates("date_modified", p.date_modified),
            "type": p.type,
            "status": p.status,
            "featured": False,
            "catalog_visibility": "visible",
            "description": p.description,
            "short_description": "",
            "sku": p.sku,
            "global_unique_id": p.global_unique_id,
            "price": _money(price),
            "regular_price": "" if variable else _money(p.regular_price),
            "sale_price": "" if variable else _money(p.sale_price),
            "on_sale": False,
            "purchasable": price is not None,
            "manage_stock": False if variable else p.manage_stock,
            "stock_quantity": None if variable or not p.manage_stock else p.stock_quantity,
            "stock_status": "instock",
            "backorders": "no",
            "weight": p.weight,
            "dimensions": dict(p.dimensions),
            "categories": [_category_ref(self.state.categories[c]) for c in p.category_ids],
            "tags": [],
            "images": [dict(self.state.images[i]) for i in p.image_ids if i in self.state.images],
            "attributes": [
                {
                    "id": 0,
                    "name": a["name"],
                    "position": n,
                    "visible": a["visible"],
                    "variation": a["variation"],
                    "options": list(a["options"]),
                }
                for n, a in enumerate(p.attributes)
            ],
            "default_attributes": [],
            "variations": list(p.variation_ids) if variable else [],
            "meta_data": [],
        }

    def _variation_json(self, v: Variation) -> dict[str, Any]:
        return {
            "id": v.id,
            **self._dates("date_created", v.date_created),
            **self._dates("date_modified", v.date_modified),
            "description": "",
            "permalink": f"{self.base_url}/product/{v.parent_id}/?variation_id={v.id}",
            "sku": v.sku,
            "global_unique_id": v.global_unique_id,
            "price": _money(v.regular_price),
            "regular_price": _money(v.regular_price),
            "sale_price": _money(v.sale_price),
            "on_sale": False,
            "status": v.status,
            "purchasable": v.regular_price is not None,
            "manage_stock": v.manage_stock,
            "stock_quantity": v.stock_quantity if v.manage_stock else None,
            "stock_status": "instock",
            "backorders": "no",
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "image": None,
            "attributes": [
                {"id": 0, "name": a["name"], "option": a["option"]} for a in v.attributes
            ],
            "menu_order": 0,
            "meta_data": [],
        }

    def _order_json(self, o: Order) -> dict[str, Any]:
        paid = (
            self._dates("date_paid", o.date_paid)
            if o.date_paid
            else {"date_paid": None, "date_paid_gmt": None}
        )
        completed = (
            self._dates("date_completed", o.date_completed)
            if o.date_completed
            else {"date_completed": None, "date_completed_gmt": None}
        )
        return {
            "id": o.id,
            "parent_id": 0,
            "number": o.number,
            # An order key, not security.
            "order_key": f"wc_order_{hashlib.sha1(str(o.id).encode()).hexdigest()[:13]}",
            "created_via": "checkout",
            "version": "9.4.2",
            "status": o.status,
            "currency": o.currency,
            **self._dates("date_created", o.date_created),
            **self._dates("date_modified", o.date_modified),
            "discount_total": "0.00",
            "shipping_total": f"{o.shipping_total:.2f}",
            "total": f"{o.total:.2f}",
            "total_tax": "0.00",
            "prices_include_tax": False,
            "customer_id": 0,
            "customer_note": "",
            "billing": dict(o.billing),
            "shipping": {},
            "payment_method": o.payment_method,
            "payment_method_title": o.payment_method_title,
            "transaction_id": "",
            "payment_url": f"{self.base_url}/checkout/order-pay/{o.id}/?pay_for_order=true",
            **paid,
            **completed,
            "line_items": [dict(line) for line in o.line_items],
            "shipping_lines": [
                {
                    "id": 900 + o.id,
                    "method_title": "Flat rate",
                    "method_id": "flat_rate",
                    "total": f"{o.shipping_total:.2f}",
                }
            ],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "currency_symbol": "€" if o.currency == "EUR" else o.currency,
        }

    def _dates(self, name: str, timestamp: int) -> dict[str, str]:
        utc = datetime.fromtimestamp(timestamp, tz=UTC)
        return {
            name: (utc + self.utc_offset).strftime("%Y-%m-%dT%H:%M:%S"),
            f"{name}_gmt": utc.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    # -- plumbing --------------------------------------------------------------------------

    def _paged(
        self,
        ids: Sequence[int],
        params: Params,
        render: Callable[[int], dict[str, Any]],
        *,
        shown: Callable[[int, list[int]], list[int]] | None = None,
    ) -> Reply:
        """One page of `ids`, rendered, with WordPress's paging headers. `shown(page, ids)`
        picks the ids answered (the product or order list's page fault); the headers stay
        those of the whole page."""
        per_page = _int(params, "per_page", 10, 1, MAX_PER_PAGE)
        page = _int(params, "page", 1, 1, None)
        total = len(ids)
        pages = ceil(total / per_page)
        page_ids = list(ids[(page - 1) * per_page : page * per_page])
        if shown is not None:
            page_ids = shown(page, page_ids)
        rows = [render(i) for i in page_ids]
        headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(pages))]
        links = []
        base = {k: v for k, v in params.items() if not k.startswith("oauth_") and k != "page"}
        if page > 1:
            links.append(f'<{self._link(base, page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{self._link(base, page + 1)}>; rel="next"')
        if links:
            headers.append(("Link", ", ".join(links)))
        return Reply.json(rows, headers=tuple(headers))

    def _link(self, params: Params, page: int) -> str:
        return f"{self.base_url}{API}/?{urlencode({**params, 'page': page})}"

    def _modified_bounds(self, params: Params) -> tuple[int | None, int | None]:
        gmt = params.get("dates_are_gmt", "false").lower() in ("true", "1")
        return (
            self._date_param(params, "modified_after", gmt),
            self._date_param(params, "modified_before", gmt),
        )

    def _date_param(self, params: Params, name: str, gmt: bool) -> int | None:
        raw = params.get(name)
        if raw is None:
            return None
        found = DATE.match(raw.strip())
        if found is None:
            raise _invalid_param(name, "Invalid date.")
        year, month, day, hour, minute, second = (int(found.group(n)) for n in range(1, 7))
        naive = datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - zone below
        zone = found.group(8)
        if zone:
            offset = timedelta(0) if zone in ("Z", "z") else _offset(zone)
            moment = naive - offset
        else:
            moment = naive if gmt else naive - self.utc_offset
        return int(moment.replace(tzinfo=UTC).timestamp())

    def _product(self, product_id: int) -> Product:
        product = self.state.products.get(product_id)
        if product is None:
            raise KeyError(f"no product {product_id}")
        return product

    def _product_from_item(self, shop_item: ShopItem, status: str | None) -> Product:
        first = shop_item.variants[0]
        variable = shop_item.has_variants
        leaf_id = next(
            (c["id"] for c in self.state.categories.values() if c["name"] == shop_item.category),
            FIRST_TERM_ID,
        )
        attributes = [
            {
                "name": name,
                "options": list(dict.fromkeys(v.options[name] for v in shop_item.variants)),
                "visible": True,
                "variation": True,
            }
            for name in shop_item.option_names
        ]
        attributes.append(
            {"name": "Brand", "options": [shop_item.brand], "visible": True, "variation": False}
        )
        return Product(
            id=self._post_ids.next(),
            name=shop_item.name,
            type="variable" if variable else "simple",
            status=status or ("publish" if shop_item.status == "live" else "draft"),
            description=shop_item.description,
            sku=shop_item.item_sku if variable else first.sku,
            regular_price=None if variable else first.price,
            stock_quantity=None if variable else first.quantity,
            weight=format(shop_item.weight_kg, "f"),
            category_ids=[leaf_id],
            date_created=shop_item.created_at,
            date_modified=shop_item.updated_at,
            manage_stock=not variable,
            attributes=attributes,
        )

    def _touch(self, product: Product) -> None:
        product.date_modified = self.time_after(product.date_modified)
        self.state.version += 1


# -- signing (the server's side, as WC_REST_Authentication computes it) ---------------------------


def _rawurlencode(value: str) -> str:
    return quote(value, safe="~")


def _base_string(method: str, url: str, params: Params) -> str:
    pairs = sorted(params.items(), key=lambda pair: pair[0].encode())  # uksort(..., 'strcmp')
    normalized = [(_rawurlencode(k), _rawurlencode(v)) for k, v in pairs]
    joined = "%26".join(_rawurlencode(f"{k}={v}") for k, v in normalized)
    return f"{method.upper()}&{_rawurlencode(url)}&{joined}"


# -- request parsing (raise WooFault on what WordPress would refuse) -----------------------------


def _query(request: Request) -> Params:
    """The query parameters, one value each: PHP keeps the last of a repeated one."""
    return {name: values[-1] for name, values in request.query.items()}


def _enum(params: Params, name: str, default: str, allowed: Sequence[str]) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise _invalid_param(name, f"{name} is not one of {', '.join(allowed)}.")
    return value


def _int(params: Params, name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise _invalid_param(name, f"{name} is not of type integer.")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = (
            f"between {low} (inclusive) and {high} (inclusive)"
            if high
            else f"greater than or equal to {low}"
        )
        raise _invalid_param(name, f"{name} must be {bound}")
    return value


def _string(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise _invalid_param(name, f"{name} is not of type string.")
    return value


def _price(body: dict[str, Any], name: str) -> Decimal | None:
    raw = _string(body, name).strip()  # a JSON number is refused: prices are strings
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _invalid_param(name, f"{name} is not a valid price.") from None
    if not value.is_finite() or value < 0:
        raise _invalid_param(name, f"{name} is not a valid price.")
    return value


def _attributes(rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise _invalid_param("attributes", "attributes is not of type array.")
    result = []
    for row in rows:
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("name"), str)
            or not row["name"].strip()
        ):
            raise _invalid_param("attributes", "attributes items need a name.")
        options = row.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise _invalid_param(
                "attributes", "attributes options are not of type array of strings."
            )
        result.append(
            {
                "name": row["name"].strip(),
                "options": options,
                "visible": bool(row.get("visible", False)),
                "variation": bool(row.get("variation", False)),
            }
        )
    return result


def _dimensions(raw: Any, current: dict[str, str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _invalid_param("dimensions", "dimensions is not of type object.")
    result = dict(current)
    for name in ("length", "width", "height"):
        if name in raw:
            if not isinstance(raw[name], str):
                raise _invalid_param("dimensions", f"dimensions[{name}] is not of type string.")
            result[name] = raw[name]
    return result


def _row_id(row: Any) -> int:
    raw = row.get("id") if isinstance(row, dict) else row
    text = "" if raw is None else str(raw)
    return int(text) if text.isdigit() else 0


def _offset(zone: str) -> timedelta:
    sign = -1 if zone.startswith("-") else 1
    digits = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))


def _listing(product: Product, variation_ref: str, row: Product | Variation) -> Listing:
    """A listing's stock quantity and regular price, 0 for either when it is not set."""
    return Listing(
        str(product.id), variation_ref, row.stock_quantity or 0, row.regular_price or Decimal(0)
    )


def _money(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _category_json(category: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": category["id"],
        "name": html.escape(category["name"], quote=False),  # WordPress keeps term names escaped
        "slug": category["slug"],
        "parent": category["parent"],
        "description": "",
        "display": "default",
        "image": None,
        "menu_order": 0,
        "count": 0,
    }


def _category_ref(category: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": category["id"],
        "name": html.escape(category["name"], quote=False),
        "slug": category["slug"],
    }
