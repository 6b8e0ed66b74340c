"""A local Shopify GraphQL Admin API (version 2026-04) for tests, the demo and benchmarks.

It speaks the subset omni uses, with Shopify's rules (shared/reference/marketplace-apis.md §4):

- `POST /admin/api/2026-04/graphql.json` with `X-Shopify-Access-Token`; a wrong or expired token
  gets HTTP 401 `{"errors": "[API] Invalid API key or access token ..."}`. Other versions 404.
- A small GraphQL executor, not a full one (`channels.emulators.shopify_graphql`): operations
  are parsed (fields, aliases, arguments, variables, inline fragments, directives; no named
  fragments), variables must be declared, required ones present, and the reply holds exactly
  the fields asked for: a field the emulator does not model is an error, as an unknown field
  is on Shopify. Input objects are checked field by field against the 2026-04 input types omni
  uses.
- Query cost as Shopify calculates it (`shopify_graphql.query_cost`): scalars and enums 0,
  objects 1, connections 2 + first × the node's cost, `nodes(ids:)` one node per id,
  mutations 10; a query over 1,000 points is refused (MAX_COST_EXCEEDED). A leaky bucket
  (`bucket_size` points, `restore_rate` per second) is charged the requested cost up front and
  refunded down to the actual cost; a call it cannot pay for gets
  `errors[{extensions:{code:"THROTTLED"}}]` with HTTP 200 and nothing happens. Every reply
  carries `extensions.cost`.
- `productsCount(query:, limit:)` counts what the same search matches (10,000 at most unless
  `limit` is null; AT_LEAST when capped).
- Cursor pagination (`first` ≤ 250, `after`), id order; search strings for `products` and
  `orders` (`updated_at:>='…'`, `<`, `AND`; `name:'#1001'` joined by `OR`). Unsupported search
  syntax is an error here (Shopify would ignore it with a warning), so mistakes surface.
- Mutations: productSet (create), productUpdate, productVariantsBulkCreate,
  productVariantsBulkUpdate (partial with `allowPartialUpdates`), productDelete,
  inventorySetQuantities (`changeFromQuantity` on every row, `@idempotent(key:)` required; all
  rows or none; a key seen before returns the first reply and changes nothing). Business
  refusals come back as `userErrors {field message code}`.
- Bulk operations: `bulkOperationRunQuery(query:, groupObjects:)` (checked as Shopify checks
  a bulk query: one top-level connection, at most five, two deep; products and their variants
  here; `userErrors` when refused, or when `bulk_limit` bulk queries already run: five from
  API 2026-01, OPERATION_IN_PROGRESS when the limit is one), `bulkOperationCancel`, and
  `node(id:)`, `bulkOperation(id:)`, `currentBulkOperation` to poll one. An operation is
  CREATED for `bulk_start` seconds, then RUNNING while its objects are processed at
  `bulk_rate` a second (a background thread reads the shop a chunk of products at a time, so
  it may change meanwhile), then COMPLETED with `objectCount`, `rootObjectCount`, `fileSize`
  (UnsignedInt64, as strings) and a signed `url` to its JSONL file, served under
  `/bulk-results/` (no access token; a wrong signature 403, a link older than a week 400 and
  the operation EXPIRED). Every product on a line, its variants on lines of their own with
  `__parentId`: right after it when grouped, after its chunk of products otherwise.
  `set_bulk_fault` makes the next operation fail (INTERNAL_SERVER_ERROR or TIMEOUT, with
  `partialDataUrl`), be canceled or expire, or serve its file cut short. The mutation costs
  10 points like any other; polls cost what their query costs.
- Expiring offline tokens: `POST /admin/oauth/access_token` trades a refresh token (single use)
  for a new pair; `invalid_client` / `invalid_grant` as OAuth says.
- Throttled calls drawn by the framework's `throttle_rate` come back as THROTTLED in an HTTP 200
  body (whose cost figures ask the client to wait `retry_after` seconds) or as HTTP 429 with
  `Retry-After`, as `throttle_style` says. `throttle_status=429` sends that THROTTLED body with
  HTTP 429 instead, still without `Retry-After`, as some report Shopify does (§4.6).

Stock lives at one location (`location_gid`); a stock change does not move a product's
`updatedAt` here (Shopify does not document whether it does). Orders are kept in memory and
driven by `create_order` / `move_order`; `signed_webhook` makes the delivery Shopify would send.
"""

import base64
import bisect
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs

from channels.emulators.base import (
    Emulator,
    ExpiringTokens,
    Faults,
    HangUp,
    IdSequence,
    Listing,
    Reply,
    Request,
    Route,
    ThrottleStyle,
    TokenKind,
    TokenStore,
)
from channels.emulators.order_stock import OrderStock
from channels.emulators.shop import ShopItem, ShopMix, generate_shop
from channels.emulators.shopify_graphql import (
    MAX_QUERY_COST,
    BulkConnection,
    CostBucket,
    GraphQLError,
    Operation,
    bulk_plan,
    check_variables,
    parse,
    query_cost,
    select,
)

logger = logging.getLogger(__name__)

API_VERSION = "2026-04"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"  # other versions 404
ANY_GRAPHQL_PATH = re.compile(r"/admin/api/[^/]+/graphql\.json")  # what faults see: any version
VERSION_HEADER = (("X-Shopify-API-Version", API_VERSION),)
TOKEN_PATH = "/admin/oauth/access_token"
MAX_PAGE = 250
COUNT_LIMIT = 10_000  # what a count field counts up to unless `limit` says otherwise
MAX_INPUT = 250  # input arrays, e.g. inventorySetQuantities quantities
MAX_OPTIONS = 3
MAX_VARIANTS = 2048
MAX_QUANTITY = 1_000_000_000
ACCESS_TOKEN_TTL = 3600  # expiring offline tokens last an hour
REFRESH_TOKEN_TTL = 90 * 86400
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
SCOPES = "read_products,write_products,read_inventory,write_inventory,read_orders,read_locations"
DEFAULT_OPTION = ("Title", "Default Title")
INVENTORY_REASONS = frozenset(
    {"correction", "cycle_count_available", "received", "restock", "damaged", "other"}
)
PRODUCT_STATUSES = frozenset({"ACTIVE", "DRAFT", "ARCHIVED", "UNLISTED"})

FIRST_PRODUCT_ID = 8_000_000_000_001
FIRST_VARIANT_ID = 44_000_000_000_001
FIRST_INVENTORY_ITEM_ID = 46_000_000_000_001
FIRST_ORDER_ID = 5_600_000_000_001
FIRST_LINE_ID = 13_000_000_000_001
FIRST_ORDER_NUMBER = 1001
FIRST_BULK_ID = 3_100_000_000_001
LOCATION_ID = 76_543_210_001

# Bulk operations (API 2026-01 on: five bulk queries of one app may run at once per shop).
BULK_QUERY_LIMIT = 5
BULK_RESULTS_PATH = "/bulk-results/"
BULK_RESULT_TTL = 7 * 86400  # result URLs expire a week after the operation completes
BULK_CHUNK = 100  # products an operation reads at a time, under the lock
BULK_KEEP = 20  # operations (and result files) remembered; older ones are forgotten
BULK_RUNNING = frozenset({"CREATED", "RUNNING"})
# What the next bulk operation does wrong (`set_bulk_fault`): fail (INTERNAL_SERVER_ERROR) or
# time out (TIMEOUT) half way, be canceled, expire, or serve its file cut at half its bytes
# ("truncate", mid-line) or at the last whole line before that ("cut_lines").
BulkFault = Literal["fail", "timeout", "cancel", "expire", "truncate", "cut_lines"]
BULK_FAULTS = frozenset({"fail", "timeout", "cancel", "expire", "truncate", "cut_lines"})

# omni's order states as Shopify statuses: (financial, fulfillment, cancelled, closed).
STATE_STATUSES: dict[str, tuple[str, str, bool, bool]] = {
    "unpaid": ("PENDING", "UNFULFILLED", False, False),
    "paid": ("PAID", "UNFULFILLED", False, False),
    "shipped": ("PAID", "FULFILLED", False, False),
    "delivered": ("PAID", "FULFILLED", False, True),
    "cancelled": ("REFUNDED", "UNFULFILLED", True, True),
    "returned": ("REFUNDED", "FULFILLED", False, True),
}

# Fields of the 2026-04 input objects omni sends (others exist on Shopify; unknown ones are
# refused there too, which is the check that matters).
INPUT_TYPES: dict[str, frozenset[str]] = {
    "ProductSetInput": frozenset(
        {
            "title",
            "descriptionHtml",
            "vendor",
            "productType",
            "status",
            "handle",
            "tags",
            "productOptions",
            "variants",
            "files",
        }
    ),
    "OptionSetInput": frozenset({"name", "position", "values"}),
    "OptionValueSetInput": frozenset({"name"}),
    "ProductVariantSetInput": frozenset(
        {
            "optionValues",
            "sku",
            "price",
            "compareAtPrice",
            "barcode",
            "inventoryItem",
            "inventoryQuantities",
            "inventoryPolicy",
            "taxable",
            "position",
        }
    ),
    "VariantOptionValueInput": frozenset({"optionName", "name"}),
    "InventoryItemInput": frozenset({"sku", "tracked", "measurement", "cost", "requiresShipping"}),
    "InventoryItemMeasurementInput": frozenset({"weight"}),
    "WeightInput": frozenset({"value", "unit"}),
    "ProductSetInventoryInput": frozenset({"locationId", "name", "quantity"}),
    "FileSetInput": frozenset({"originalSource", "contentType", "alt"}),
    "ProductUpdateInput": frozenset(
        {"id", "title", "descriptionHtml", "vendor", "productType", "status", "handle", "tags"}
    ),
    "ProductVariantsBulkInput": frozenset(
        {
            "id",
            "price",
            "compareAtPrice",
            "barcode",
            "inventoryItem",
            "inventoryQuantities",
            "inventoryPolicy",
            "optionValues",
            "taxable",
        }
    ),
    "InventoryLevelInput": frozenset({"availableQuantity", "locationId"}),
    "InventorySetQuantitiesInput": frozenset(
        {"name", "reason", "referenceDocumentUri", "quantities"}
    ),
    "InventoryQuantityInput": frozenset(
        {"inventoryItemId", "locationId", "quantity", "changeFromQuantity"}
    ),
    "ProductDeleteInput": frozenset({"id"}),
}
WEIGHT_UNITS = {
    "KILOGRAMS": Decimal("1"),
    "GRAMS": Decimal("0.001"),
    "POUNDS": Decimal("0.45359237"),
}


# -- the shop --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Variant:
    variant_id: int
    inventory_item_id: int
    options: dict[str, str]  # option name -> value, in the product's option order
    sku: str
    price: Decimal
    quantity: int  # "available" at the emulator's location
    barcode: str = ""
    weight_kg: Decimal | None = None
    stocked: bool = True  # stocked at the location; inventorySetQuantities refuses it if not
    created_at: int = 0

    @property
    def title(self) -> str:
        return " / ".join(self.options.values())


@dataclass(slots=True)
class Product:
    product_id: int
    title: str
    description_html: str
    vendor: str
    product_type: str
    status: str  # ACTIVE | DRAFT | ARCHIVED | UNLISTED
    created_at: int
    updated_at: int
    options: list[tuple[str, list[str]]]  # (name, values in order)
    variants: dict[int, Variant] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)

    @property
    def only_default(self) -> bool:
        return [name for name, _ in self.options] == [DEFAULT_OPTION[0]] and len(self.variants) == 1


@dataclass(slots=True)
class OrderLine:
    line_id: int
    product_id: int
    variant_id: int
    sku: str
    title: str
    variant_title: str
    quantity: int
    unit_price: Decimal


@dataclass(slots=True)
class Order:
    order_id: int
    number: int
    created_at: int
    updated_at: int
    financial: str
    fulfillment: str
    lines: list[OrderLine]
    currency: str
    cancelled_at: int | None = None
    cancel_reason: str | None = None
    closed_at: int | None = None
    tracking_number: str = ""

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))


@dataclass(slots=True)
class BulkRun:
    """One bulk query operation. A background thread writes its JSONL lines, a chunk of
    products at a time; pollers see them processed at the emulator's `bulk_rate` objects per
    second after `bulk_start` seconds, so a large shop takes proportionally long. `status` is
    set once the operation ends; until then it is worked out when asked."""

    number: int
    query: str
    created_at: int  # emulator clock
    started: float  # time.monotonic()
    grouped: bool  # children written right after their parent (groupObjects)
    fault: str | None
    token: str  # the signature of the result file's URL
    lines: list[bytes] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)  # root lines among lines[: n + 1]
    built: bool = False
    broken: bool = False  # the builder failed: the operation fails as Shopify's would
    canceled: bool = False
    status: str = ""  # COMPLETED, FAILED, CANCELED, EXPIRED once ended
    error_code: str | None = None
    shown: int = 0  # objects processed when it ended
    completed_at: int | None = None
    body: bytes | None = None  # the result file, once asked for

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.number}"

    def root_count(self, objects: int) -> int:
        return self.roots[objects - 1] if objects > 0 else 0


class _UserErrors(Exception):
    """A mutation refused as a whole, reported as its `userErrors`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "refused")
        self.errors = errors


class ShopifyEmulator(ExpiringTokens, Emulator):
    """One Shopify shop on 127.0.0.1.

    `items`, `seed`, `pos_skus` and `mix` generate the catalog (see `generate_shop`); the tokens
    and the app's client keys derive from `seed`. `credentials` is what an adapter needs.
    `bucket_size` and `restore_rate` are the leaky bucket's points and points per second.
    """

    name = "shopify"
    # A wrong access token and a wrong client secret (so a refresh cannot rescue it).
    secret_fields = ("access_token", "client_secret")
    routes = (
        Route("POST", TOKEN_PATH, "_token_endpoint", auth="client"),
        # The handler takes the lock itself: parsing and costing a query need no shop state.
        Route("POST", GRAPHQL_PATH, "_graphql_endpoint", auth="access_token", locked=False),
        # Bulk results live in Shopify's file storage: a signed URL, no access token.
        Route(
            "GET", BULK_RESULTS_PATH + "{name}", "_bulk_result_file", auth="signed", locked=False
        ),
    )

    def __init__(
        self,
        *,
        items: int = 0,
        seed: int = 1,
        pos_skus: Sequence[str] = (),
        mix: ShopMix | None = None,
        shop: str = "omni-emulated",
        currency: str = "USD",
        bucket_size: float = 2000.0,
        restore_rate: float = 1000.0,
        throttle_style: ThrottleStyle = "mixed",
        throttle_status: int = 200,
        bulk_rate: float = 2000.0,
        bulk_start: float = 0.5,
        bulk_limit: int = BULK_QUERY_LIMIT,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, faults=faults, clock=clock)
        self.shop = shop
        self.currency = currency
        self.throttle_style = throttle_style
        self.throttle_status = throttle_status  # of an injected THROTTLED body: 200 or 429
        # Bulk queries: objects processed per second, seconds before one starts running, and
        # how many of them may run at once.
        self.bulk_rate = bulk_rate
        self.bulk_start = bulk_start
        self.bulk_limit = bulk_limit
        self.bulk_runs: dict[int, BulkRun] = {}
        self.bulk_downloads: list[dict[str, str]] = []  # headers of each result file download
        self._bulk_files: dict[str, tuple[BulkRun, bool]] = {}  # token -> (run, partial data)
        self._bulk_ids = IdSequence(FIRST_BULK_ID)
        self._bulk_fault: str | None = None
        self.bucket = CostBucket(bucket_size, restore_rate)
        self.location_gid = f"gid://shopify/Location/{LOCATION_ID}"
        self.products: dict[int, Product] = {}
        self.orders: dict[int, Order] = {}
        self.order_stock = OrderStock()  # units orders hold, under the lock
        self.throttled = 0  # calls refused by the leaky bucket (not by injected faults)
        self._calls: Counter[str] = Counter()  # mutations that changed something, by name
        self._inventory: dict[int, tuple[int, int]] = {}  # inventory item -> (product, variant)
        self._variant_owner: dict[int, int] = {}  # variant -> product
        self._idempotent: dict[str, dict[str, Any]] = {}  # key -> first payload
        self._product_ids = IdSequence(FIRST_PRODUCT_ID)
        self._variant_ids = IdSequence(FIRST_VARIANT_ID)
        self._inventory_item_ids = IdSequence(FIRST_INVENTORY_ITEM_ID)
        self._order_ids = IdSequence(FIRST_ORDER_ID)
        self._line_ids = IdSequence(FIRST_LINE_ID)
        self._order_numbers = IdSequence(FIRST_ORDER_NUMBER)
        self._secrets = random.Random(f"shopify-secrets-{seed}")
        self.client_id = self._secrets.randbytes(16).hex()
        self.client_secret = "shpss_" + self._secrets.randbytes(16).hex()
        # Expiring offline tokens: a refresh leaves the old access token valid until it expires;
        # refresh tokens are single use but never expire here (REFRESH_TOKEN_TTL is only told).
        self.tokens = TokenStore(self._new_token, access_ttl=ACCESS_TOKEN_TTL)
        for shop_item in generate_shop(items, seed, pos_skus, mix=mix, now=clock()):
            self.put_item(shop_item)

    # -- the helpers every emulator offers (docs/adapters.md) ------------------------------

    @property
    def credentials(self) -> dict[str, Any]:
        """The current access and refresh tokens, the location and the app's client keys."""
        tokens = self.tokens.current
        return {
            "access_token": tokens.access,
            "location_id": self.location_gid,
            "client_secret": self.client_secret,
            "client_id": self.client_id,
            "refresh_token": tokens.refresh,
        }

    def put_item(self, shop_item: ShopItem) -> str:
        """Add a generated (or hand-made) item as a product; its id."""
        with self.lock:
            names = shop_item.option_names if shop_item.has_variants else (DEFAULT_OPTION[0],)
            product = Product(
                product_id=self._product_ids.next(),
                title=shop_item.name,
                description_html=f"<p>{escape(shop_item.description)}</p>",
                vendor=shop_item.brand,
                product_type=shop_item.category,
                status="ACTIVE" if shop_item.status == "live" else "DRAFT",
                created_at=shop_item.created_at,
                updated_at=shop_item.updated_at,
                options=[(name, []) for name in names],
            )
            for shop_variant in shop_item.variants:
                options = (
                    {name: shop_variant.options[name] for name in names}
                    if shop_item.has_variants
                    else {DEFAULT_OPTION[0]: DEFAULT_OPTION[1]}
                )
                self._add_variant(
                    product,
                    options=options,
                    sku=shop_variant.sku,
                    price=shop_variant.price,
                    quantity=shop_variant.quantity,
                    weight_kg=shop_item.weight_kg,
                )
            self.products[product.product_id] = product
            return str(product.product_id)

    def touch_item(self, item_id: str, *, name: str) -> None:
        """Rename a product as the merchant would; its updatedAt moves."""
        with self.lock:
            product = self.products[int(item_id)]
            product.title = name
            self._touch(product)

    def remove_item(self, item_id: str) -> None:
        """Delete a product as the merchant would (Shopify deletes outright)."""
        with self.lock:
            self._delete(self.products[int(item_id)])

    def iter_listings(self) -> Iterator[Listing]:
        """Every variant of every product (Shopify deletes outright), variant "" for a product
        with only its default variant: "available" at the location, and price."""
        for product in self.products.values():
            for variant in product.variants.values():
                ref = "" if product.only_default else str(variant.variant_id)
                yield Listing(str(product.product_id), ref, variant.quantity, variant.price)

    def update_calls(self, what: str) -> int:
        """Successful stock (inventorySetQuantities) or price (productVariantsBulkUpdate) calls."""
        mutation = {"stock": "inventorySetQuantities", "price": "productVariantsBulkUpdate"}
        with self.lock:
            return self._calls[mutation[what]]

    def create_order(
        self,
        lines: Sequence[tuple[str, str, int]],
        *,
        state: str = "unpaid",
        at: float | None = None,
    ) -> str:
        """A customer's order of `[(item_id, variant_id, qty)]` (variant "" for a product without
        options) in the statuses standing for omni's `state`; `at` (Unix seconds) backdates it.
        Its name, e.g. "#1001".

        As on Shopify, placing the order takes its units off the variant's "available"
        quantity at the location at once; an order beyond stock (a variant that continues
        selling when out of stock) takes it below zero, as Shopify records it. Cancelling puts
        the units back, once, as the admin's "Restock items" (on by default) does; an order
        created cancelled leaves stock as it was. A return restocks nothing: on Shopify that is
        a separate choice when the return is received.
        """
        if not lines:
            raise ValueError("an order needs at least one line")
        statuses = _state_statuses(state)
        now = int(self.now() if at is None else at)
        with self.lock:
            order = Order(
                order_id=self._order_ids.next(),
                number=self._order_numbers.next(),
                created_at=now,
                updated_at=now,
                financial="PENDING",
                fulfillment="UNFULFILLED",
                lines=[self._order_line(*line) for line in lines],
                currency=self.currency,
            )
            self.orders[order.order_id] = order
            self.order_stock.take(
                order.order_id,
                [(self._order_variant(line), line.quantity) for line in order.lines],
                self._adjust_available,
            )
            self._set_order_statuses(order, statuses, now)
            order.updated_at = now
            return order.name

    def move_order(self, order_number: str, state: str, *, at: float | None = None) -> None:
        """Move an order to the statuses standing for `state`; its updatedAt moves forward.
        Cancelling restocks the order's units, once."""
        statuses = _state_statuses(state)
        with self.lock:
            order = self._order_named(order_number)
            now = int(self.now() if at is None else at)
            self._set_order_statuses(order, statuses, now)
            order.updated_at = max(now, order.updated_at + 1)

    def signed_webhook(self, order_number: str, url: str) -> tuple[dict[str, str], bytes]:
        """An `orders/updated` (or `orders/cancelled`) delivery of the order as it stands, with
        its REST-shaped JSON body and headers, signed as Shopify signs webhooks: base64
        HMAC-SHA256 of the raw body with the app's client secret (`url` is not signed). Each
        call is a new delivery with its own `X-Shopify-Webhook-Id`."""
        with self.lock:
            order = self._order_named(order_number)
            body = json.dumps(self._webhook_payload(order), separators=(",", ":")).encode()
            topic = "orders/cancelled" if order.cancelled_at else "orders/updated"
            secret = self.client_secret
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-SHA256": base64.b64encode(digest).decode(),
            "X-Shopify-Shop-Domain": f"{self.shop}.myshopify.com",
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": _iso(int(self.now())),
        }
        return headers, body

    # -- more test helpers ---------------------------------------------------------------------

    def spend(self, points: float) -> None:
        """Another caller of the same app and shop spends `points` of the shared bucket."""
        with self.lock:
            self.bucket.spend(points)

    def set_bulk_fault(self, kind: BulkFault | None) -> None:
        """Make the next bulk query operation misbehave (see `BulkFault`); None clears it."""
        if kind is not None and kind not in BULK_FAULTS:
            raise ValueError(f"unknown bulk fault {kind!r}: {', '.join(sorted(BULK_FAULTS))}")
        with self.lock:
            self._bulk_fault = kind

    def bulk_statuses(self) -> list[str]:
        """The status of every bulk operation started, oldest first."""
        with self.lock:
            return [self._bulk_state(run) for run in self.bulk_runs.values()]

    @property
    def bucket_size(self) -> float:
        """The leaky bucket's points (`self.bucket` holds its state)."""
        return self.bucket.size

    @property
    def restore_rate(self) -> float:
        """Points the bucket gets back per second."""
        return self.bucket.restore_rate

    def set_quantity(self, item_id: str, variant_id: str, quantity: int) -> None:
        """Change a listing's stock as the merchant would in the Shopify admin."""
        with self.lock:
            self._listing_variant(item_id, variant_id).quantity = quantity

    def unstock(self, item_id: str, variant_id: str = "") -> None:
        """Take a listing's inventory item off the location: setting its quantity is refused."""
        with self.lock:
            self._listing_variant(item_id, variant_id).stocked = False

    def item(self, item_id: str) -> dict[str, Any]:
        """A product as a plain dict, for assertions."""
        with self.lock:
            product = self.products[int(item_id)]
            return {
                "title": product.title,
                "status": product.status,
                "vendor": product.vendor,
                "productType": product.product_type,
                "descriptionHtml": product.description_html,
                "images": list(product.images),
                "options": [(name, list(values)) for name, values in product.options],
                "updated_at": product.updated_at,
                "variants": [
                    {
                        "id": str(v.variant_id),
                        "sku": v.sku,
                        "price": v.price,
                        "quantity": v.quantity,
                        "barcode": v.barcode,
                        "weight_kg": v.weight_kg,
                        "options": dict(v.options),
                    }
                    for v in product.variants.values()
                ],
            }

    def item_ids(self) -> list[str]:
        with self.lock:
            return [str(product_id) for product_id in self.products]

    def order_status(self, order_number: str) -> tuple[str, str, bool, bool]:
        """(financial, fulfillment, cancelled, closed) of an order."""
        with self.lock:
            order = self._order_named(order_number)
            return (
                order.financial,
                order.fulfillment,
                order.cancelled_at is not None,
                order.closed_at is not None,
            )

    # -- HTTP ------------------------------------------------------------------------------

    def authenticate(self, request: Request, route: Route) -> Reply | None:
        """The GraphQL endpoint wants a valid `X-Shopify-Access-Token` (HTTP 401 if not); the
        token endpoint checks the app's client keys itself."""
        if route.auth == "access_token" and not self.tokens.valid(
            request.headers.get("x-shopify-access-token", "")
        ):
            return Reply.json({"errors": INVALID_TOKEN}, status=401)
        return None

    def wrap(self, payload: Any, route: Route) -> Reply:
        """A GraphQL reply (data or errors, with `extensions.cost`): HTTP 200, as Shopify
        answers even refused queries, with the API version it was served by."""
        return Reply.json(payload, headers=VERSION_HEADER)

    def not_found(self, request: Request) -> Reply:
        return Reply.json({"errors": "Not Found"}, status=404)

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        return Reply.json({"errors": "Method Not Allowed"}, status=405)

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        graphql = ANY_GRAPHQL_PATH.fullmatch(request.path) is not None
        if not (graphql and self.throttled_in_body(self.throttle_style)):
            return Reply.json(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                    "resume uninterrupted service."
                },
                status=429,
                headers=(("Retry-After", f"{retry_after:g}"),),
            )
        # Cost figures that make the documented wait come out at `retry_after` seconds.
        available = 0
        requested = max(1, round(retry_after * self.restore_rate))
        body = _errors(
            [GraphQLError("Throttled", code="THROTTLED")],
            cost=self.bucket.extension(requested, None, available=available),
        )
        return Reply.json(body, status=self.throttle_status, headers=VERSION_HEADER)

    def _graphql_endpoint(self, request: Request) -> Reply | dict[str, Any]:
        """POST /admin/api/2026-04/graphql.json: `{"query", "variables"}` in, a GraphQL reply
        out (see `_graphql`)."""
        try:
            body = request.json()
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("query"), str)
            or not isinstance(body.get("variables") or {}, dict)
        ):
            return Reply.json(
                {"errors": {"query": "Required parameter missing or invalid"}}, status=400
            )
        return self._graphql(body["query"], body.get("variables") or {})

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Parse, cost, charge and run one operation. Parsing and costing happen outside the
        lock; the bucket and the shop are touched under it."""
        try:
            operation = parse(query)
            check_variables(operation, variables)
            requested = query_cost(operation, variables)
        except GraphQLError as error:
            return _errors([error])
        if requested > MAX_QUERY_COST:
            error = GraphQLError(
                f"Query cost is {requested}, which exceeds the single query max cost limit "
                f"({MAX_QUERY_COST}).",
                code="MAX_COST_EXCEEDED",
            )
            return _errors([error], cost=self.bucket.extension(requested, None))
        with self.lock:
            if not self.bucket.charge(requested):
                self.throttled += 1
                error = GraphQLError("Throttled", code="THROTTLED")
                return _errors([error], cost=self.bucket.extension(requested, None))
            try:
                data = select(self._root(operation), operation.selection, variables)
            except GraphQLError as error:
                self.bucket.refund(requested - 1)
                return _errors([error], cost=self.bucket.extension(requested, 1))
            except HangUp:  # a call never answered is not charged
                self.bucket.refund(requested)
                raise
            actual = query_cost(operation, variables, data)
            self.bucket.refund(requested - actual)
            cost = self.bucket.extension(requested, actual)
        return {"data": data, "extensions": {"cost": cost}}

    # -- tokens ----------------------------------------------------------------------------

    def _token_endpoint(self, request: Request) -> Reply:
        """POST /admin/oauth/access_token: the app's client keys and a refresh token (single
        use) for a new token pair; `invalid_client` / `invalid_grant` as OAuth says."""
        params = _form_or_json(request)
        if params.get("client_id") != self.client_id or not hmac.compare_digest(
            str(params.get("client_secret") or ""), self.client_secret
        ):
            return Reply.json(
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed due to unknown "
                    "client, no client authentication included, or unsupported method.",
                },
                status=401,
            )
        if params.get("grant_type") != "refresh_token":
            return Reply.json({"error": "unsupported_grant_type"}, status=400)
        tokens = self.tokens.refresh(str(params.get("refresh_token") or ""))
        if tokens is None:
            return Reply.json(
                {
                    "error": "invalid_grant",
                    "error_description": "The provided refresh token is invalid, expired or "
                    "revoked.",
                },
                status=400,
            )
        return Reply.json(
            {
                "access_token": tokens.access,
                "expires_in": ACCESS_TOKEN_TTL,
                "refresh_token": tokens.refresh,
                "refresh_token_expires_in": REFRESH_TOKEN_TTL,
                "scope": SCOPES,
            }
        )

    def _new_token(self, kind: TokenKind) -> str:
        prefix = "shpat_" if kind == "access" else "shprt_"
        return prefix + self._secrets.randbytes(16).hex()

    # -- execution -------------------------------------------------------------------------

    def _root(self, operation: Operation) -> dict[str, Any]:
        if operation.kind == "mutation":
            return {
                "__typename": "Mutation",
                "productSet": self._product_set,
                "productUpdate": self._product_update,
                "productVariantsBulkCreate": self._variants_bulk_create,
                "productVariantsBulkUpdate": self._variants_bulk_update,
                "productDelete": self._product_delete,
                "inventorySetQuantities": self._inventory_set_quantities,
                "bulkOperationRunQuery": self._bulk_run_query,
                "bulkOperationCancel": self._bulk_cancel,
            }
        return {
            "__typename": "QueryRoot",
            "shop": lambda args, _: self._shop_node(),
            "location": lambda args, _: (
                self._location_node() if args.get("id") in (None, self.location_gid) else None
            ),
            "products": lambda args, _: self._products_connection(args),
            "productsCount": lambda args, _: self._products_count(args),
            "product": lambda args, _: self._node_of(args.get("id"), "Product"),
            "nodes": lambda args, _: self._nodes(args.get("ids")),
            "node": lambda args, _: self._node_of(args.get("id"), None),
            "bulkOperation": lambda args, _: self._node_of(args.get("id"), "BulkOperation"),
            "currentBulkOperation": lambda args, _: self._current_bulk(args.get("type")),
            "orders": lambda args, _: self._orders_connection(args),
            "order": lambda args, _: self._node_of(args.get("id"), "Order"),
        }

    # -- query resolvers -------------------------------------------------------------------

    def _shop_node(self) -> dict[str, Any]:
        return {
            "__typename": "Shop",
            "name": f"Emulated {self.shop}",
            "myshopifyDomain": f"{self.shop}.myshopify.com",
            "currencyCode": self.currency,
        }

    def _location_node(self) -> dict[str, Any]:
        return {
            "__typename": "Location",
            "id": self.location_gid,
            "name": "Main warehouse",
            "isActive": True,
        }

    def _products_count(self, args: dict[str, Any]) -> dict[str, Any]:
        """How many products the search matches, up to `limit` (10,000 unless given; null for
        no limit), AT_LEAST when the limit was reached."""
        limit = args.get("limit", COUNT_LIMIT)
        matches = _search(args.get("query"), {"updated_at", "created_at", "status"})
        count = sum(1 for p in self.products.values() if matches(_product_facts(p)))
        capped = limit is not None and count >= limit
        return {
            "__typename": "Count",
            "count": min(count, limit) if capped else count,
            "precision": "AT_LEAST" if capped else "EXACT",
        }

    def _products_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        matches = _search(args.get("query"), {"updated_at", "created_at", "status"})
        products = [p for p in self.products.values() if matches(_product_facts(p))]
        return _connection(
            products,
            args,
            lambda p: p.product_id,
            self._product_node,
            "Product",
            shown=self.listing_page,
        )

    def _orders_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        matches = _search(args.get("query"), {"updated_at", "created_at", "name"})
        orders = [o for o in self.orders.values() if matches(_order_facts(o))]
        return _connection(
            orders, args, lambda o: o.order_id, self._order_node, "Order", shown=self.order_page
        )

    def _nodes(self, ids: Any) -> list[dict[str, Any] | None]:
        if not isinstance(ids, list):
            raise GraphQLError(
                "Argument 'ids' on Field 'nodes' is required", code="missingRequiredArguments"
            )
        if len(ids) > MAX_PAGE:
            raise GraphQLError(
                f"The input array size of {len(ids)} is greater than the maximum allowed of "
                f"{MAX_PAGE}.",
                code="MAX_INPUT_SIZE_EXCEEDED",
            )
        return [self._node_of(gid, None) for gid in ids]

    def _node_of(self, gid: Any, expected: str | None) -> dict[str, Any] | None:
        kind, number = _parse_gid(gid)
        if not kind or (expected is not None and kind != expected):
            raise GraphQLError(f"Invalid global id '{gid}'", code="argumentLiteralsIncompatible")
        if kind == "Product" and number in self.products:
            return self._product_node(self.products[number])
        if kind == "ProductVariant":
            found = self._variant_by_id(number)
            return self._variant_node(*found) if found else None
        if kind == "Order" and number in self.orders:
            return self._order_node(self.orders[number])
        if kind == "Location" and gid == self.location_gid:
            return self._location_node()
        if kind == "BulkOperation" and number in self.bulk_runs:
            return self._bulk_node(self.bulk_runs[number])
        return None

    def _product_node(self, product: Product) -> dict[str, Any]:
        return {
            "__typename": "Product",
            "id": f"gid://shopify/Product/{product.product_id}",
            "legacyResourceId": str(product.product_id),
            "title": product.title,
            "descriptionHtml": product.description_html,
            "vendor": product.vendor,
            "productType": product.product_type,
            "status": product.status,
            "createdAt": _iso(product.created_at),
            "updatedAt": _iso(product.updated_at),
            "hasOnlyDefaultVariant": product.only_default,
            "variantsCount": {
                "__typename": "Count",
                "count": len(product.variants),
                "precision": "EXACT",
            },
            "totalInventory": sum(v.quantity for v in product.variants.values()),
            "options": [
                {"__typename": "ProductOption", "name": name, "position": n, "values": list(values)}
                for n, (name, values) in enumerate(product.options, start=1)
            ],
            "variants": lambda args, _: _connection(
                list(product.variants.values()),
                args,
                lambda v: v.variant_id,
                lambda v: self._variant_node(product, v),
                "ProductVariant",
            ),
        }

    def _variant_node(self, product: Product, variant: Variant) -> dict[str, Any]:
        weight = None
        if variant.weight_kg is not None:
            weight = {
                "__typename": "Weight",
                "value": float(variant.weight_kg),
                "unit": "KILOGRAMS",
            }
        return {
            "__typename": "ProductVariant",
            "id": f"gid://shopify/ProductVariant/{variant.variant_id}",
            "legacyResourceId": str(variant.variant_id),
            "title": variant.title,
            "sku": variant.sku,
            "price": _money_text(variant.price),
            "compareAtPrice": None,
            "barcode": variant.barcode or None,
            "inventoryQuantity": variant.quantity,
            "selectedOptions": [
                {"__typename": "SelectedOption", "name": name, "value": value}
                for name, value in variant.options.items()
            ],
            "inventoryItem": {
                "__typename": "InventoryItem",
                "id": f"gid://shopify/InventoryItem/{variant.inventory_item_id}",
                "sku": variant.sku,
                "tracked": True,
                "measurement": {"__typename": "InventoryItemMeasurement", "weight": weight},
            },
            "product": lambda args, _: self._product_node(product),
        }

    def _order_node(self, order: Order) -> dict[str, Any]:
        shipped = order.fulfillment in ("FULFILLED", "PARTIALLY_FULFILLED")
        fulfillments = []
        if shipped:
            tracking = {
                "__typename": "FulfillmentTrackingInfo",
                "company": "DHL Express",
                "number": order.tracking_number,
                "url": f"https://www.dhl.com/track?id={order.tracking_number}",
            }
            fulfillments.append(
                {
                    "__typename": "Fulfillment",
                    "id": f"gid://shopify/Fulfillment/{order.order_id}",
                    "status": "SUCCESS",
                    "trackingInfo": lambda args, _: [tracking][: _limit(args)],
                }
            )
        return {
            "__typename": "Order",
            "id": f"gid://shopify/Order/{order.order_id}",
            "legacyResourceId": str(order.order_id),
            "name": order.name,
            "createdAt": _iso(order.created_at),
            "updatedAt": _iso(order.updated_at),
            "processedAt": _iso(order.created_at),
            "cancelledAt": _iso(order.cancelled_at) if order.cancelled_at else None,
            "cancelReason": order.cancel_reason,
            "closed": order.closed_at is not None,
            "closedAt": _iso(order.closed_at) if order.closed_at else None,
            "displayFinancialStatus": order.financial,
            "displayFulfillmentStatus": order.fulfillment,
            "currencyCode": order.currency,
            "paymentGatewayNames": ["shopify_payments"],
            "totalPriceSet": self._money_bag(order.total, order.currency),
            "fulfillments": lambda args, _: fulfillments[: _limit(args)],
            "lineItems": lambda args, _: _connection(
                order.lines,
                args,
                lambda line: line.line_id,
                lambda line: self._line_node(line, order.currency),
                "LineItem",
            ),
        }

    def _line_node(self, line: OrderLine, currency: str) -> dict[str, Any]:
        product = self.products.get(line.product_id)
        variant = product.variants.get(line.variant_id) if product else None
        name = f"{line.title} - {line.variant_title}" if line.variant_title else line.title
        return {
            "__typename": "LineItem",
            "id": f"gid://shopify/LineItem/{line.line_id}",
            "sku": line.sku or None,
            "name": name,
            "title": line.title,
            "variantTitle": line.variant_title or None,
            "quantity": line.quantity,
            "product": (lambda args, _: self._product_node(product)) if product else None,
            "variant": (
                (lambda args, _: self._variant_node(product, variant))
                if product and variant
                else None
            ),
            "originalUnitPriceSet": self._money_bag(line.unit_price, currency),
            "discountedUnitPriceAfterAllDiscountsSet": self._money_bag(line.unit_price, currency),
        }

    @staticmethod
    def _money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
        money = {"__typename": "MoneyV2", "amount": _money_text(amount), "currencyCode": currency}
        return {"__typename": "MoneyBag", "shopMoney": money, "presentmentMoney": dict(money)}

    # -- mutations -------------------------------------------------------------------------

    def _product_set(self, args: dict[str, Any], directives: dict[str, Any]) -> dict[str, Any]:
        product_input = _input(args.get("input"), "ProductSetInput", "input")
        if args.get("identifier") is not None or product_input.get("id"):
            raise GraphQLError(
                "This emulator's productSet only creates products", code="BAD_REQUEST"
            )
        try:
            product = self._product_from_set_input(product_input)
        except _UserErrors as refusal:
            return {
                "__typename": "ProductSetPayload",
                "product": None,
                "userErrors": refusal.errors,
            }
        self.products[product.product_id] = product
        self._calls["productSet"] += 1
        return {
            "__typename": "ProductSetPayload",
            "product": self._product_node(product),
            "productSetOperation": None,
            "userErrors": [],
        }

    def _product_update(self, args: dict[str, Any], directives: dict[str, Any]) -> dict[str, Any]:
        fields = _input(args.get("product"), "ProductUpdateInput", "product")
        payload: dict[str, Any] = {"__typename": "ProductUpdatePayload", "product": None}
        product = self._product_by_gid(fields.get("id"))
        if product is None:
            payload["userErrors"] = [_user_error(["id"], "Product does not exist")]
            return payload
        errors = []
        if "title" in fields and not str(fields["title"] or "").strip():
            errors.append(_user_error(["title"], "Title can't be blank"))
        if "status" in fields and fields["status"] not in PRODUCT_STATUSES:
            errors.append(_user_error(["status"], f"Status {fields['status']} is not valid"))
        if errors:
            payload["userErrors"] = errors
            return payload
        for name, attribute in (
            ("title", "title"),
            ("descriptionHtml", "description_html"),
            ("vendor", "vendor"),
            ("productType", "product_type"),
            ("status", "status"),
        ):
            if name in fields:
                setattr(product, attribute, str(fields[name] or ""))
        self._touch(product)
        self._calls["productUpdate"] += 1
        return {**payload, "product": self._product_node(product), "userErrors": []}

    def _variants_bulk_update(
        self, args: dict[str, Any], directives: dict[str, Any]
    ) -> dict[str, Any]:
        rows, payload, product = self._bulk_variants(args, "ProductVariantsBulkUpdatePayload")
        if product is None:
            return payload
        planned, errors = [], []
        for n, row in enumerate(rows):
            _, number = _parse_gid(row.get("id"))
            variant = product.variants.get(number) if number is not None else None
            if variant is None:
                errors.append(
                    _user_error(
                        ["variants", str(n), "id"],
                        "Product variant does not exist",
                        "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    )
                )
                continue
            try:
                planned.append((variant, _variant_changes(row, ["variants", str(n)])))
            except _UserErrors as refusal:
                errors.extend(refusal.errors)
        if errors and not args.get("allowPartialUpdates"):
            planned = []
        for variant, changes in planned:
            for attribute, value in changes.items():
                setattr(variant, attribute, value)
        if planned:
            self._touch(product)
            self._calls["productVariantsBulkUpdate"] += 1
        return {
            **payload,
            "product": self._product_node(product),
            "productVariants": [self._variant_node(product, v) for v, _ in planned],
            "userErrors": errors,
        }

    def _variants_bulk_create(
        self, args: dict[str, Any], directives: dict[str, Any]
    ) -> dict[str, Any]:
        rows, payload, product = self._bulk_variants(args, "ProductVariantsBulkCreatePayload")
        if product is None:
            return payload
        try:
            planned = self._plan_new_variants(product, rows)
        except _UserErrors as refusal:
            payload["userErrors"] = refusal.errors
            return payload
        created = []
        for options, changes, quantity in planned:
            variant = self._add_variant(
                product, options=options, sku="", price=Decimal("0"), quantity=quantity
            )
            for attribute, value in changes.items():
                setattr(variant, attribute, value)
            created.append(variant)
        self._touch(product)
        self._calls["productVariantsBulkCreate"] += 1
        return {
            **payload,
            "product": self._product_node(product),
            "productVariants": [self._variant_node(product, v) for v in created],
            "userErrors": [],
        }

    def _product_delete(self, args: dict[str, Any], directives: dict[str, Any]) -> dict[str, Any]:
        fields = _input(args.get("input"), "ProductDeleteInput", "input")
        product = self._product_by_gid(fields.get("id"))
        if product is None:
            return {
                "__typename": "ProductDeletePayload",
                "deletedProductId": None,
                "userErrors": [_user_error(["id"], "Product does not exist")],
            }
        self._delete(product)
        self._calls["productDelete"] += 1
        return {
            "__typename": "ProductDeletePayload",
            "deletedProductId": f"gid://shopify/Product/{product.product_id}",
            "userErrors": [],
        }

    def _inventory_set_quantities(
        self, args: dict[str, Any], directives: dict[str, Any]
    ) -> dict[str, Any]:
        key = (directives.get("idempotent") or {}).get("key")
        if not key:
            raise GraphQLError(
                "The @idempotent directive is required for this mutation but was not provided.",
                code="BAD_REQUEST",
            )
        fields = _input(args.get("input"), "InventorySetQuantitiesInput", "input")
        rows = _input_list(fields.get("quantities"), "InventoryQuantityInput", "input.quantities")
        for row in rows:
            if "changeFromQuantity" not in row:
                raise GraphQLError(
                    "InventoryQuantityInput must include the following argument: "
                    "changeFromQuantity",
                    code="INVALID_FIELD_ARGUMENTS",
                )
        if str(key) in self._idempotent:  # a retry of a change already made: its first reply
            return self._idempotent[str(key)]
        errors, planned = self._plan_quantities(fields, rows)
        if errors:
            return {
                "__typename": "InventorySetQuantitiesPayload",
                "inventoryAdjustmentGroup": None,
                "userErrors": errors,
            }
        changes = []
        for variant, quantity in planned:
            changes.append(
                {
                    "__typename": "InventoryChange",
                    "name": fields["name"],
                    "delta": quantity - variant.quantity,
                    "quantityAfterChange": quantity,
                }
            )
            variant.quantity = quantity
        self._calls["inventorySetQuantities"] += 1
        payload = {
            "__typename": "InventorySetQuantitiesPayload",
            "inventoryAdjustmentGroup": {
                "__typename": "InventoryAdjustmentGroup",
                "createdAt": _iso(int(self.now())),
                "reason": fields["reason"],
                "referenceDocumentUri": fields.get("referenceDocumentUri"),
                "changes": changes,
            },
            "userErrors": [],
        }
        self._idempotent[str(key)] = payload
        return payload

    # -- bulk operations -------------------------------------------------------------------

    def _bulk_run_query(self, args: dict[str, Any], directives: dict[str, Any]) -> dict[str, Any]:
        """bulkOperationRunQuery(query:, groupObjects:): checked as Shopify checks it (one
        top-level connection, at most five, two deep; products and their variants here), then
        run in the background. `userErrors` when it is refused or too many already run."""
        payload: dict[str, Any] = {"__typename": "BulkOperationRunQueryPayload"}
        try:
            plan = bulk_plan(parse(str(args.get("query") or "")))
            search = self._bulk_search(plan)
        except GraphQLError as error:
            return {
                **payload,
                "bulkOperation": None,
                "userErrors": [_bulk_user_error(f"Invalid bulk query: {error.message}", "INVALID")],
            }
        running = [run for run in self.bulk_runs.values() if self._bulk_state(run) in BULK_RUNNING]
        if len(running) >= self.bulk_limit:
            message = (
                f"A bulk query operation for this app and shop is already in progress: "
                f"{running[-1].gid}."
                if self.bulk_limit == 1
                else f"Bulk operations limit reached ({self.bulk_limit} running). Please try "
                "again later."
            )
            code = "OPERATION_IN_PROGRESS" if self.bulk_limit == 1 else "LIMIT_REACHED"
            return {
                **payload,
                "bulkOperation": None,
                "userErrors": [_bulk_user_error(message, code)],
            }
        run = BulkRun(
            number=self._bulk_ids.next(),
            query=str(args["query"]),
            created_at=int(self.now()),
            started=time.monotonic(),
            grouped=bool(args.get("groupObjects", False)),
            fault=self._bulk_fault,
            token=secrets.token_hex(16),
        )
        self._bulk_fault = None
        self._bulk_forget_old()
        self.bulk_runs[run.number] = run
        self._bulk_files[f"{run.number}.jsonl"] = (run, False)
        threading.Thread(
            target=self._bulk_build, args=(run, plan, search), name="shopify-bulk", daemon=True
        ).start()
        self._calls["bulkOperationRunQuery"] += 1
        return {**payload, "bulkOperation": self._bulk_node(run), "userErrors": []}

    def _bulk_cancel(self, args: dict[str, Any], directives: dict[str, Any]) -> dict[str, Any]:
        """bulkOperationCancel(id:): a running operation stops; an ended one cannot."""
        _, number = _parse_gid(args.get("id"))
        run = self.bulk_runs.get(number or -1)
        payload: dict[str, Any] = {"__typename": "BulkOperationCancelPayload"}
        if run is None:
            error = _bulk_user_error("Bulk operation does not exist", "INVALID", field=["id"])
            return {**payload, "bulkOperation": None, "userErrors": [error]}
        if self._bulk_state(run) not in BULK_RUNNING:
            error = _bulk_user_error(
                f"A bulk operation cannot be canceled when it is {run.status.lower()}",
                "INVALID",
                field=["id"],
            )
            return {**payload, "bulkOperation": self._bulk_node(run), "userErrors": [error]}
        run.canceled = True
        return {**payload, "bulkOperation": self._bulk_node(run), "userErrors": []}

    def _bulk_forget_old(self) -> None:
        """Keep the last BULK_KEEP operations and their files: a demo shop scanned for weeks
        must not hold every result it ever wrote (Shopify keeps them a week)."""
        for number in sorted(self.bulk_runs)[:-BULK_KEEP]:
            run = self.bulk_runs.pop(number)
            self._bulk_files.pop(f"{number}.jsonl", None)
            self._bulk_files.pop(f"{number}-partial.jsonl", None)
            run.canceled = run.canceled or self._bulk_state(run) in BULK_RUNNING

    def _current_bulk(self, kind: Any) -> dict[str, Any] | None:
        """currentBulkOperation(type:): the app's most recent bulk query (no bulk mutations
        here)."""
        if (kind or "QUERY") != "QUERY" or not self.bulk_runs:
            return None
        return self._bulk_node(self.bulk_runs[max(self.bulk_runs)])

    @staticmethod
    def _bulk_search(plan: BulkConnection) -> Callable[[Mapping[str, Any]], bool]:
        """The products a bulk query reads; GraphQLError for connections not emulated."""
        if plan.field.name != "products":
            raise GraphQLError("This emulator runs bulk queries over products only.")
        if any(inner.field.name != "variants" for inner in plan.nested):
            raise GraphQLError("This emulator nests only variants in a products bulk query.")
        return _search(plan.field.args.get("query"), {"updated_at", "created_at", "status"})

    def _bulk_build(
        self, run: BulkRun, plan: BulkConnection, matches: Callable[[Mapping[str, Any]], bool]
    ) -> None:
        """The background half of an operation: its JSONL lines, BULK_CHUNK products at a
        time, each chunk read under the lock (so the shop may change between chunks, as it
        may while Shopify runs a long operation)."""
        try:
            with self.lock:
                ids = sorted(
                    p.product_id for p in self.products.values() if matches(_product_facts(p))
                )
            for start in range(0, len(ids), BULK_CHUNK):
                with self.lock:
                    if run.canceled:
                        return
                    self._bulk_chunk(run, plan, ids[start : start + BULK_CHUNK])
            with self.lock:
                run.built = True
        except Exception:
            logger.exception("the emulated bulk operation %s failed", run.gid)
            with self.lock:
                run.broken = True

    def _bulk_chunk(self, run: BulkRun, plan: BulkConnection, ids: Sequence[int]) -> None:
        """Write the lines of some products (those deleted meanwhile are gone): each product,
        then its variants with `__parentId`; grouped, the variants right after their product,
        otherwise after every product of the chunk."""
        parents: list[bytes] = []
        children: list[bytes] = []
        for product_id in ids:
            product = self.products.get(product_id)
            if product is None:
                continue
            node = self._product_node(product)
            parent = _jsonl(select(node, plan.fields, {}))
            mine = [
                _jsonl(
                    {
                        **select(self._variant_node(product, v), inner.fields, {}),
                        "__parentId": node["id"],
                    }
                )
                for inner in plan.nested
                for v in product.variants.values()
            ]
            if run.grouped:
                self._bulk_append(run, [parent], root=True)
                self._bulk_append(run, mine, root=False)
            else:
                parents.append(parent)
                children.extend(mine)
        self._bulk_append(run, parents, root=True)
        self._bulk_append(run, children, root=False)

    @staticmethod
    def _bulk_append(run: BulkRun, lines: list[bytes], *, root: bool) -> None:
        roots = run.roots[-1] if run.roots else 0
        for line in lines:
            roots += root
            run.lines.append(line)
            run.roots.append(roots)

    def _bulk_state(self, run: BulkRun) -> str:
        """Where an operation stands now: CREATED for `bulk_start` seconds, RUNNING while its
        objects are processed at `bulk_rate` a second, then how it ended (its fault decides);
        a completed one EXPIRES a week later. Called under the lock."""
        completed_at = run.completed_at
        if (
            run.status == "COMPLETED"
            and completed_at
            and self.now() >= completed_at + BULK_RESULT_TTL
        ):
            run.status = "EXPIRED"
        if run.status:
            return run.status
        shown = self._bulk_shown(run)
        if run.canceled:
            return self._bulk_end(run, "CANCELED", shown)
        if run.broken:
            return self._bulk_end(run, "FAILED", shown // 2, "INTERNAL_SERVER_ERROR")
        if shown < 0:
            return "CREATED"
        if not run.built or shown < len(run.lines):
            return "RUNNING"
        ending = {
            "fail": ("FAILED", shown // 2, "INTERNAL_SERVER_ERROR"),
            "timeout": ("FAILED", shown // 2, "TIMEOUT"),
            "cancel": ("CANCELED", shown // 2, None),
            "expire": ("EXPIRED", shown, None),
        }
        return self._bulk_end(run, *ending.get(run.fault or "", ("COMPLETED", shown, None)))

    def _bulk_shown(self, run: BulkRun) -> int:
        """Objects processed so far at `bulk_rate`; -1 while the operation has not started."""
        elapsed = time.monotonic() - run.started - self.bulk_start
        if elapsed < 0:
            return -1
        return min(len(run.lines), int(elapsed * self.bulk_rate))

    def _bulk_end(self, run: BulkRun, status: str, shown: int, code: str | None = None) -> str:
        run.status, run.shown, run.error_code = status, max(shown, 0), code
        run.completed_at = int(self.now())
        if status == "FAILED" and run.shown:
            self._bulk_files[f"{run.number}-partial.jsonl"] = (run, True)
        return status

    def _bulk_node(self, run: BulkRun) -> dict[str, Any]:
        """The BulkOperation as polled. Counts are UnsignedInt64, which Shopify sends as
        strings; `url` is set once COMPLETED (null when nothing matched), `partialDataUrl` for
        a FAILED one that had read something."""
        status = self._bulk_state(run)
        objects = run.shown if run.status else max(self._bulk_shown(run), 0)
        url = partial = size = None
        if status == "COMPLETED" and run.lines:
            url = self._bulk_url(run, f"{run.number}.jsonl")
            size = str(len(self._bulk_body(run)))
        if status == "FAILED" and run.shown:
            partial = self._bulk_url(run, f"{run.number}-partial.jsonl")
        return {
            "__typename": "BulkOperation",
            "id": run.gid,
            "type": "QUERY",
            "status": status,
            "errorCode": run.error_code,
            "createdAt": _iso(run.created_at),
            "completedAt": _iso(run.completed_at)
            if status == "COMPLETED" and run.completed_at
            else None,
            "objectCount": str(objects),
            "rootObjectCount": str(run.root_count(objects)),
            "fileSize": size,
            "url": url,
            "partialDataUrl": partial,
            "query": run.query,
        }

    def _bulk_url(self, run: BulkRun, name: str) -> str:
        """A signed link to a result file, as Shopify hands out links to its file storage."""
        query = f"X-Goog-Expires={BULK_RESULT_TTL}&X-Goog-Signature={run.token}"
        return f"{self.base_url}{BULK_RESULTS_PATH}{name}?{query}"

    @staticmethod
    def _bulk_body(run: BulkRun) -> bytes:
        """The result file: every line, each ended by a newline."""
        if run.body is None:
            run.body = b"".join(line + b"\n" for line in run.lines)
        return run.body

    def _bulk_result_file(self, request: Request, name: str) -> Reply:
        """GET /bulk-results/<id>.jsonl?…&X-Goog-Signature=…: a completed operation's JSONL
        (cut as its fault says), or the partial data of a failed one; Google Cloud Storage's
        refusals otherwise (an unknown file, a wrong signature, an expired link)."""
        with self.lock:
            self.bulk_downloads.append(dict(request.headers))
            found = self._bulk_files.get(name)
            if found is None:
                return _storage_error("NoSuchKey", "The specified key does not exist.", 404)
            run, partial = found
            signature = request.param("X-Goog-Signature") or ""
            if not hmac.compare_digest(signature.encode(), run.token.encode()):
                return _storage_error(
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided.",
                    403,
                )
            status = self._bulk_state(run)
            if partial and status == "FAILED":
                body = b"".join(line + b"\n" for line in run.lines[: run.shown])
            elif not partial and status == "COMPLETED":
                body = self._bulk_body(run)
            else:
                return _storage_error("ExpiredToken", "Invalid argument: the URL has expired.", 400)
        if run.fault == "truncate":
            body = body[: len(body) // 2]
        elif run.fault == "cut_lines":
            body = body[: body.rfind(b"\n", 0, len(body) // 2) + 1]
        return Reply(200, body, (("Content-Type", "application/jsonl"),))

    # -- mutation helpers -----------------------------------------------------------------

    def _bulk_variants(
        self, args: dict[str, Any], type_name: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any], Product | None]:
        """A productVariantsBulk* mutation's rows, its payload so far and its product; with
        no such product (None), the payload refusing the call."""
        rows = _input_list(args.get("variants"), "ProductVariantsBulkInput", "variants")
        payload: dict[str, Any] = {
            "__typename": type_name,
            "product": None,
            "productVariants": None,
        }
        product = self._product_by_gid(args.get("productId"))
        if product is None:
            payload["userErrors"] = [
                _user_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
            ]
        return rows, payload, product

    def _product_from_set_input(self, fields: dict[str, Any]) -> Product:
        """A new product from a productSet input, or _UserErrors with every userError found."""
        errors: list[dict[str, Any]] = []
        title = str(fields.get("title") or "").strip()
        if not title:
            errors.append(_user_error(["input", "title"], "Title can't be blank", "BLANK"))
        status = fields.get("status", "ACTIVE")
        if status not in PRODUCT_STATUSES:
            errors.append(_user_error(["input", "status"], "Status is not valid", "INVALID"))
        options = self._set_options(
            _input_list(fields.get("productOptions"), "OptionSetInput", "input.productOptions"),
            errors,
        )
        rows = _input_list(fields.get("variants"), "ProductVariantSetInput", "input.variants")
        if not rows or len(rows) > MAX_VARIANTS:
            errors.append(
                _user_error(
                    ["input", "variants"],
                    f"A product needs 1 to {MAX_VARIANTS} variants",
                    "VARIANTS_OVER_LIMIT" if rows else "INVALID_VARIANT",
                )
            )
        images = []
        for n, file in enumerate(_input_list(fields.get("files"), "FileSetInput", "input.files")):
            source = str(file.get("originalSource") or "")
            if not source.startswith(("https://", "http://")):
                errors.append(
                    _user_error(["input", "files", str(n)], "Image URL is invalid", "INVALID")
                )
            images.append(source)
        now = int(self.now())
        product = Product(
            product_id=0,
            title=title,
            description_html=str(fields.get("descriptionHtml") or ""),
            vendor=str(fields.get("vendor") or ""),
            product_type=str(fields.get("productType") or ""),
            status=str(status),
            created_at=now,
            updated_at=now,
            options=[(name, []) for name in options],
            images=images,
        )
        planned = []
        seen: set[tuple[str, ...]] = set()
        for n, row in enumerate(rows):
            path = ["input", "variants", str(n)]
            try:
                chosen = _chosen_options(
                    row.get("optionValues"), options, path, "VariantOptionValueInput"
                )
                changes = _variant_changes(
                    {
                        **row,
                        "inventoryItem": {
                            **(row.get("inventoryItem") or {}),
                            "sku": row.get("sku", ""),
                        },
                    },
                    path,
                    item_type="InventoryItemInput",
                )
                quantity = self._initial_quantity(
                    row.get("inventoryQuantities"), path, "ProductSetInventoryInput"
                )
            except _UserErrors as refusal:
                errors.extend(refusal.errors)
                continue
            combo = tuple(chosen.values())
            if combo in seen:
                errors.append(
                    _user_error(
                        path,
                        f"The variant '{' / '.join(combo)}' already exists.",
                        "INVALID_VARIANT",
                    )
                )
            seen.add(combo)
            planned.append((chosen, changes, quantity))
        if errors:
            raise _UserErrors(errors)
        product.product_id = self._product_ids.next()
        for chosen, changes, quantity in planned:
            variant = self._add_variant(
                product, options=chosen, sku="", price=Decimal("0"), quantity=quantity
            )
            for attribute, value in changes.items():
                setattr(variant, attribute, value)
        for name, values in product.options:  # keep the option value order the caller gave
            declared = options[name]
            values.sort(key=lambda v: declared.index(v) if v in declared else len(declared))
        return product

    @staticmethod
    def _set_options(
        rows: list[dict[str, Any]], errors: list[dict[str, Any]]
    ) -> dict[str, list[str]]:
        if not rows or len(rows) > MAX_OPTIONS:
            errors.append(
                _user_error(
                    ["input", "productOptions"],
                    f"A product needs 1 to {MAX_OPTIONS} options",
                    "OPTIONS_OVER_LIMIT" if rows else "PRODUCT_OPTIONS_INPUT_MISSING",
                )
            )
        options: dict[str, list[str]] = {}
        for n, row in enumerate(rows):
            name = str(row.get("name") or "").strip()
            values = [
                str(v.get("name") or "").strip()
                for v in _input_list(
                    row.get("values"), "OptionValueSetInput", "input.productOptions.values"
                )
            ]
            if not name or name in options or not values or not all(values):
                errors.append(
                    _user_error(
                        ["input", "productOptions", str(n)],
                        "Each option needs a distinct name and at least one value",
                        "INVALID_PRODUCT_OPTIONS",
                    )
                )
                continue
            options[name] = values
        return options

    def _initial_quantity(self, rows: Any, path: list[str], type_name: str) -> int:
        """The stock a new variant starts with at the location: the last of its
        `inventoryQuantities` rows, 0 without any. productSet sends ProductSetInventoryInput
        (a quantity `name` and `quantity`), productVariantsBulkCreate InventoryLevelInput
        (`availableQuantity`)."""
        named = type_name == "ProductSetInventoryInput"
        quantity = 0
        for m, row in enumerate(_input_list(rows, type_name, "inventoryQuantities")):
            here = [*path, "inventoryQuantities", str(m)]
            if row.get("locationId") != self.location_gid:
                raise _UserErrors(
                    [_user_error(here, "The location does not exist", "INVALID_LOCATION")]
                )
            if named and row.get("name") not in ("available", "on_hand"):
                raise _UserErrors(
                    [_user_error(here, "The quantity name is not valid", "INVALID_NAME")]
                )
            value = row.get("quantity" if named else "availableQuantity")
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= MAX_QUANTITY:
                raise _UserErrors(
                    [_user_error(here, "The quantity is not valid", "INVALID_QUANTITY")]
                )
            quantity = value
        return quantity

    def _plan_new_variants(
        self, product: Product, rows: list[dict[str, Any]]
    ) -> list[tuple[dict[str, str], dict[str, Any], int]]:
        errors: list[dict[str, Any]] = []
        names = dict(product.options)
        existing = {tuple(v.options.values()) for v in product.variants.values()}
        planned = []
        for n, row in enumerate(rows):
            path = ["variants", str(n)]
            try:
                chosen = _chosen_options(
                    row.get("optionValues"), names, path, "VariantOptionValueInput", new_values=True
                )
                changes = _variant_changes(row, path)
                quantity = self._initial_quantity(
                    row.get("inventoryQuantities"), path, "InventoryLevelInput"
                )
            except _UserErrors as refusal:
                errors.extend(refusal.errors)
                continue
            combo = tuple(chosen.values())
            if combo in existing:
                errors.append(
                    _user_error(
                        path,
                        f"The variant '{' / '.join(combo)}' already exists.",
                        "VARIANT_ALREADY_EXISTS",
                    )
                )
            existing.add(combo)
            planned.append((chosen, changes, quantity))
        if len(product.variants) + len(planned) > MAX_VARIANTS:
            errors.append(_user_error(["variants"], "Too many variants", "TOO_MANY_VARIANTS"))
        if errors:
            raise _UserErrors(errors)
        return planned

    def _plan_quantities(
        self, fields: dict[str, Any], rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[Variant, int]]]:
        errors: list[dict[str, Any]] = []
        if fields.get("name") not in ("available", "on_hand"):
            errors.append(
                _user_error(["input", "name"], "The quantity name is not valid", "INVALID_NAME")
            )
        if fields.get("reason") not in INVENTORY_REASONS:
            errors.append(
                _user_error(["input", "reason"], "The reason is not valid", "INVALID_REASON")
            )
        if not rows:
            errors.append(
                _user_error(["input", "quantities"], "Quantities can't be blank", "INVALID")
            )
        if len(rows) > MAX_INPUT:
            raise GraphQLError(
                f"The input array size of {len(rows)} is greater than the maximum allowed of "
                f"{MAX_INPUT}.",
                code="MAX_INPUT_SIZE_EXCEEDED",
            )
        planned = []
        for n, row in enumerate(rows):
            path = ["input", "quantities", str(n)]
            _, item_number = _parse_gid(row.get("inventoryItemId"))
            owner = self._inventory.get(item_number or -1)
            found = self._variant_by_id(owner[1]) if owner else None
            variant = found[1] if found else None
            quantity, change_from = row.get("quantity"), row.get("changeFromQuantity")
            if variant is None:
                errors.append(
                    _user_error(
                        [*path, "inventoryItemId"],
                        "The specified inventory item could not be found.",
                        "INVALID_INVENTORY_ITEM",
                    )
                )
            elif row.get("locationId") != self.location_gid:
                errors.append(
                    _user_error(
                        [*path, "locationId"],
                        "The specified location could not be found.",
                        "INVALID_LOCATION",
                    )
                )
            elif not variant.stocked:
                errors.append(
                    _user_error(
                        [*path, "locationId"],
                        "The inventory item is not stocked at the location.",
                        "ITEM_NOT_STOCKED_AT_LOCATION",
                    )
                )
            elif isinstance(quantity, bool) or not isinstance(quantity, int):
                raise GraphQLError(
                    "Variable $input of type InventorySetQuantitiesInput! was provided invalid "
                    f"value for quantities.{n}.quantity (Could not coerce value to Int)",
                    code="INVALID_VARIABLE",
                )
            elif abs(quantity) >= MAX_QUANTITY:
                errors.append(
                    _user_error(
                        [*path, "quantity"],
                        "The quantity is too high.",
                        "INVALID_QUANTITY_TOO_HIGH",
                    )
                )
            elif change_from is not None and change_from != variant.quantity:
                errors.append(
                    _user_error(
                        [*path, "changeFromQuantity"],
                        "The specified compare quantity does not match the current quantity.",
                        "CHANGE_FROM_QUANTITY_STALE",
                    )
                )
            else:
                planned.append((variant, quantity))
        return errors, planned

    # -- state -----------------------------------------------------------------------------

    def _add_variant(
        self,
        product: Product,
        *,
        options: dict[str, str],
        sku: str,
        price: Decimal,
        quantity: int,
        weight_kg: Decimal | None = None,
    ) -> Variant:
        for name, value in options.items():
            values = dict(product.options)[name]
            if value not in values:
                values.append(value)
        variant = Variant(
            variant_id=self._variant_ids.next(),
            inventory_item_id=self._inventory_item_ids.next(),
            options=dict(options),
            sku=sku,
            price=price,
            quantity=quantity,
            weight_kg=weight_kg,
            created_at=int(self.now()),
        )
        product.variants[variant.variant_id] = variant
        self._inventory[variant.inventory_item_id] = (product.product_id, variant.variant_id)
        self._variant_owner[variant.variant_id] = product.product_id
        return variant

    def _delete(self, product: Product) -> None:
        for variant in product.variants.values():
            self._inventory.pop(variant.inventory_item_id, None)
            self._variant_owner.pop(variant.variant_id, None)
        del self.products[product.product_id]

    def _touch(self, product: Product) -> None:
        product.updated_at = self.time_after(product.updated_at)

    def _product_by_gid(self, gid: Any) -> Product | None:
        kind, number = _parse_gid(gid)
        return self.products.get(number) if kind == "Product" and number is not None else None

    def _variant_by_id(self, variant_id: int | None) -> tuple[Product, Variant] | None:
        product = self.products.get(self._variant_owner.get(variant_id or -1, -1))
        if product is None or variant_id not in product.variants:
            return None
        return product, product.variants[variant_id]

    def _listing_variant(self, item_id: str, variant_id: str) -> Variant:
        product = self.products[int(item_id)]
        if variant_id:
            return product.variants[int(variant_id)]
        if not product.only_default:
            raise KeyError(f"product {item_id} has variants: name one")
        return next(iter(product.variants.values()))

    def _order_line(self, item_id: str, variant_id: str, quantity: int) -> OrderLine:
        if quantity <= 0:
            raise ValueError("an order line needs a positive quantity")
        product = self.products[int(item_id)]
        variant = self._listing_variant(item_id, variant_id)
        return OrderLine(
            line_id=self._line_ids.next(),
            product_id=product.product_id,
            variant_id=variant.variant_id,
            sku=variant.sku,
            title=product.title,
            variant_title="" if product.only_default else variant.title,
            quantity=quantity,
            unit_price=variant.price,
        )

    def _order_variant(self, line: OrderLine) -> Variant:
        return self.products[line.product_id].variants[line.variant_id]

    @staticmethod
    def _adjust_available(variant: Variant, delta: int) -> int:
        """Move a variant's available quantity by `delta` (it may go below zero); the change."""
        variant.quantity += delta
        return delta

    def _order_named(self, order_number: str) -> Order:
        wanted = order_number.strip().lstrip("#")
        for order in self.orders.values():
            if str(order.number) == wanted:
                return order
        raise KeyError(f"no order {order_number}")

    def _set_order_statuses(
        self, order: Order, statuses: tuple[str, str, bool, bool], now: int
    ) -> None:
        financial, fulfillment, cancelled, closed = statuses
        order.financial, order.fulfillment = financial, fulfillment
        order.cancelled_at = (order.cancelled_at or now) if cancelled else None
        order.cancel_reason = "CUSTOMER" if cancelled else None
        order.closed_at = (order.closed_at or now) if closed else None
        if cancelled:
            self.order_stock.give_back(order.order_id, self._adjust_available)
        if fulfillment in ("FULFILLED", "PARTIALLY_FULFILLED") and not order.tracking_number:
            order.tracking_number = f"JD{order.order_id % 10**10:010d}"

    def _webhook_payload(self, order: Order) -> dict[str, Any]:
        """The order as an `orders/*` webhook carries it: the REST representation."""
        fulfillment = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}
        return {
            "id": order.order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order.order_id}",
            "name": order.name,
            "order_number": order.number,
            "created_at": _iso(order.created_at),
            "updated_at": _iso(order.updated_at),
            "cancelled_at": _iso(order.cancelled_at) if order.cancelled_at else None,
            "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
            "closed_at": _iso(order.closed_at) if order.closed_at else None,
            "financial_status": order.financial.lower(),
            "fulfillment_status": fulfillment.get(order.fulfillment),
            "currency": order.currency,
            "total_price": _money_text(order.total),
            "line_items": [
                {
                    "id": line.line_id,
                    "product_id": line.product_id,
                    "variant_id": line.variant_id,
                    "sku": line.sku,
                    "name": line.title,
                    "quantity": line.quantity,
                    "price": _money_text(line.unit_price),
                }
                for line in order.lines
            ],
        }


# -- pure helpers ----------------------------------------------------------------------------------


def _errors(errors: list[GraphQLError], *, cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """A GraphQL reply refusing the operation, with its cost figures when it was costed."""
    body: dict[str, Any] = {"errors": [error.as_json() for error in errors]}
    if cost is not None:
        body["extensions"] = {"cost": cost}
    return body


def _bulk_user_error(message: str, code: str, *, field: list[str] | None = None) -> dict[str, Any]:
    return {
        "__typename": "BulkOperationUserError",
        "field": field,
        "message": message,
        "code": code,
    }


def _jsonl(value: Mapping[str, Any]) -> bytes:
    """One line of a bulk result: compact JSON, no newline."""
    return json.dumps(value, separators=(",", ":")).encode()


def _storage_error(code: str, message: str, status: int) -> Reply:
    """Google Cloud Storage's XML error, as a bulk result URL answers it when refused."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Reply(status, body.encode(), (("Content-Type", "application/xml; charset=UTF-8"),))


def _connection(
    items: Sequence[Any],
    args: Mapping[str, Any],
    key: Callable[[Any], int],
    node: Callable[[Any], dict[str, Any]],
    type_name: str,
    *,
    shown: Callable[[int, list[Any]], list[Any]] | None = None,
) -> dict[str, Any]:
    """A page of `items` (in id order) as a Relay connection: `first` (≤ 250) after the
    `after` cursor. Cursors are base64 JSON `{"last_id": …}`, as Shopify's look.

    `shown(page_number, page)` picks the items answered (the emulator's page fault); the
    page info stays that of the whole page."""
    first = args.get("first")
    if args.get("last") is not None or args.get("before") is not None:
        raise GraphQLError("This emulator pages forwards only (first/after)", code="BAD_REQUEST")
    if first is None:
        raise GraphQLError("you must provide one of first or last", code="BAD_REQUEST")
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise GraphQLError("first must be a whole number", code="INVALID_VARIABLE")
    if first > MAX_PAGE:
        raise GraphQLError(
            f"The first argument on {type_name}Connection may not exceed {MAX_PAGE}",
            code="BAD_REQUEST",
        )
    ordered = sorted(items, key=key)
    keys = [key(item) for item in ordered]
    start = 0
    if args.get("after"):
        start = bisect.bisect_right(keys, _cursor_id(str(args["after"])))
    page = ordered[start : start + first]
    cursors = [_cursor(key(item)) for item in page]
    answered = page if shown is None else shown(start // max(first, 1) + 1, page)
    return {
        "__typename": f"{type_name}Connection",
        "nodes": [node(item) for item in answered],
        "edges": lambda edge_args, _: [
            {"__typename": f"{type_name}Edge", "cursor": _cursor(key(item)), "node": node(item)}
            for item in answered
        ],
        "pageInfo": {
            "__typename": "PageInfo",
            "hasNextPage": start + first < len(ordered),
            "hasPreviousPage": start > 0,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _cursor(last_id: int) -> str:
    return base64.b64encode(json.dumps({"last_id": last_id}).encode()).decode()


def _cursor_id(cursor: str) -> int:
    try:
        value = json.loads(base64.b64decode(cursor, validate=True))["last_id"]
        return int(value)
    except (ValueError, KeyError, TypeError):
        raise GraphQLError(
            "Invalid cursor for current pagination sort.", code="BAD_REQUEST"
        ) from None


_TERM = re.compile(r"""^(?P<field>\w+):(?P<op>>=|<=|>|<|)(?P<value>'[^']*'|"[^"]*"|\S+)$""")


def _search(query: Any, fields: set[str]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for Shopify's search syntax, in the subset omni sends: `field:value` terms
    (`>=`, `<=`, `>`, `<` for times) joined all by AND or all by OR."""
    text = str(query or "").strip()
    if not text:
        return lambda facts: True
    if " AND " in text and " OR " in text:
        raise GraphQLError("This emulator's search takes AND or OR, not both", code="BAD_REQUEST")
    joiner = " OR " if " OR " in text else " AND "
    terms = []
    for part in text.split(joiner):
        match = _TERM.match(part.strip())
        if match is None or match.group("field") not in fields:
            raise GraphQLError(
                f"This emulator's search does not support {part.strip()!r}", code="BAD_REQUEST"
            )
        value = match.group("value").strip("'\"")
        terms.append((match.group("field"), match.group("op"), value))

    def test(facts: Mapping[str, Any], field_name: str, op: str, value: str) -> bool:
        actual = facts[field_name]
        if field_name.endswith("_at"):
            wanted = _parse_search_time(value)
            return {
                ">=": actual >= wanted,
                "<=": actual <= wanted,
                ">": actual > wanted,
                "<": actual < wanted,
                "": actual == wanted,
            }[op]
        if op:
            raise GraphQLError(f"{field_name} takes no comparison", code="BAD_REQUEST")
        return str(actual).lower().lstrip("#") == value.lower().lstrip("#")

    combine = any if joiner == " OR " else all
    return lambda facts: combine(test(facts, *term) for term in terms)


def _parse_search_time(value: str) -> int:
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise GraphQLError(f"Invalid date in search: {value!r}", code="BAD_REQUEST") from None


def _product_facts(product: Product) -> dict[str, Any]:
    return {
        "updated_at": product.updated_at,
        "created_at": product.created_at,
        "status": product.status,
    }


def _order_facts(order: Order) -> dict[str, Any]:
    return {"updated_at": order.updated_at, "created_at": order.created_at, "name": order.name}


def _input(value: Any, type_name: str, where: str) -> dict[str, Any]:
    """An input object, checked against the fields its type has; GraphQLError if it is not."""
    if not isinstance(value, dict):
        raise GraphQLError(
            f"Variable ${where.split('.')[0]} of type {type_name}! was provided invalid value "
            f"for {where} (Expected value to be an object)",
            code="INVALID_VARIABLE",
        )
    unknown = sorted(set(value) - INPUT_TYPES[type_name])
    if unknown:
        raise GraphQLError(
            f"Variable ${where.split('.')[0]} of type {type_name}! was provided invalid value for "
            f"{where}.{unknown[0]} (Field is not defined on {type_name})",
            code="INVALID_VARIABLE",
        )
    return value


def _input_list(value: Any, type_name: str, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GraphQLError(
            f"Variable was provided invalid value for {where} (Expected a list of {type_name})",
            code="INVALID_VARIABLE",
        )
    return [_input(item, type_name, f"{where}.{n}") for n, item in enumerate(value)]


def _chosen_options(
    raw: Any,
    options: Mapping[str, list[str]],
    path: list[str],
    type_name: str,
    *,
    new_values: bool = False,
) -> dict[str, str]:
    """{option name: value} of a variant input, in the product's option order. New values are
    allowed for productVariantsBulkCreate (Shopify adds them), not for productSet."""
    given = {
        str(row.get("optionName") or ""): str(row.get("name") or "").strip()
        for row in _input_list(raw, type_name, "optionValues")
    }
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise _UserErrors(
            [
                _user_error(
                    [*path, "optionValues"],
                    f"Option does not exist: {unknown[0]}",
                    "OPTION_DOES_NOT_EXIST",
                )
            ]
        )
    chosen = {}
    for name, values in options.items():
        value = given.get(name, "")
        if not value:
            raise _UserErrors(
                [
                    _user_error(
                        [*path, "optionValues"],
                        f"Option value for {name} is missing",
                        "MUST_SPECIFY_ALL_OPTION_VALUES",
                    )
                ]
            )
        if value not in values and not new_values:
            raise _UserErrors(
                [
                    _user_error(
                        [*path, "optionValues"],
                        f"Option value {value} is not in {name}",
                        "OPTION_VALUE_DOES_NOT_EXIST",
                    )
                ]
            )
        chosen[name] = value
    return chosen


def _variant_changes(
    row: Mapping[str, Any], path: list[str], *, item_type: str = "InventoryItemInput"
) -> dict[str, Any]:
    """Variant attributes set by a ProductVariantsBulkInput / ProductVariantSetInput row."""
    changes: dict[str, Any] = {}
    if "price" in row:
        changes["price"] = _price(row["price"], [*path, "price"])
    if "barcode" in row:
        changes["barcode"] = str(row["barcode"] or "")
    item = _input(row.get("inventoryItem") or {}, item_type, "inventoryItem")
    if "sku" in item:
        changes["sku"] = str(item["sku"] or "")
    measurement = _input(
        item.get("measurement") or {}, "InventoryItemMeasurementInput", "measurement"
    )
    if measurement.get("weight") is not None:
        weight = _input(measurement["weight"], "WeightInput", "weight")
        unit = WEIGHT_UNITS.get(str(weight.get("unit")))
        try:
            value = Decimal(str(weight.get("value")))
        except InvalidOperation:
            value = Decimal("-1")
        if unit is None or not value.is_finite() or value < 0:
            raise _UserErrors(
                [
                    _user_error(
                        [*path, "inventoryItem", "measurement"],
                        "Weight is not valid",
                        "INVALID_INPUT",
                    )
                ]
            )
        changes["weight_kg"] = (value * unit).normalize()
    return changes


def _price(raw: Any, path: list[str]) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise GraphQLError(f"Could not coerce value {raw!r} to Money", code="INVALID_VARIABLE")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise GraphQLError(
            f"Could not coerce value {raw!r} to Money", code="INVALID_VARIABLE"
        ) from None
    if not value.is_finite() or value < 0:
        raise _UserErrors(
            [
                _user_error(
                    path, "Price must be greater than or equal to 0", "GREATER_THAN_OR_EQUAL_TO"
                )
            ]
        )
    return value


def _user_error(field_path: list[str], message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"__typename": "UserError", "field": field_path, "message": message}
    if code is not None:
        error["code"] = code
    return error


def _parse_gid(gid: Any) -> tuple[str, int | None]:
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", str(gid or ""))
    if match is None:
        return "", None
    return match.group(1), int(match.group(2))


def _limit(args: Mapping[str, Any]) -> int | None:
    first = args.get("first")
    return first if isinstance(first, int) and not isinstance(first, bool) else None


def _state_statuses(state: str) -> tuple[str, str, bool, bool]:
    try:
        return STATE_STATUSES[str(state)]
    except KeyError:
        raise ValueError(
            f"unknown order state {state!r} (known: {', '.join(STATE_STATUSES)})"
        ) from None


def _iso(timestamp: int | float) -> str:
    return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money_text(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _form_or_json(request: Request) -> dict[str, Any]:
    if request.content_type == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
