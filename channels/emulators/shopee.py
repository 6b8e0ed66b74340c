"""A local Shopee Open Platform v2 for tests, the demo and benchmarks.

It speaks the subset omni uses, with Shopee's rules (shared/reference/marketplace-apis.md §1):
`partner_id`, `timestamp` (5 minutes either way of wall-clock time), `sign` checked on every
call, and `access_token` + `shop_id` on shop calls; errors as
`{"request_id", "error", "message", "warning"}` with `error_param`, `error_sign`, `error_auth`;
offset pagination (page_size ≤ 100), ≤ 50 ids per base-info call, ≤ 50 models per stock or
price call, one item per write; partial failures in `failure_list`; single-use refresh tokens.

Throttled calls (the framework's `throttle_rate`) get `error_rate_limit`, with HTTP 429 and a
`Retry-After` header or inside an HTTP 200 body, as `throttle_style` says.

Endpoints are a route table (`ShopeeEmulator.routes`): each route says whether it is a shop
or a public call (`auth`) and whether Shopee answers it at the top level or under `response`
(`envelope`); the framework finds the route and runs the hooks below.
"""

import hashlib
import hmac
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

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
from channels.emulators.shop import LEAVES, ShopItem, ShopMix, category_ids, generate_shop

TIMESTAMP_TOLERANCE = 300  # seconds: Shopee accepts a timestamp for 5 minutes
ACCESS_TOKEN_TTL = 4 * 3600
OLD_TOKEN_GRACE = 300  # an access token stays valid 5 minutes after a refresh
MAX_PAGE_SIZE = 100
MAX_IDS = 50
MAX_MODELS_PER_WRITE = 50
MAX_OPTIONS_PER_TIER = 50
ITEM_STATUSES = frozenset(
    {"NORMAL", "BANNED", "UNLIST", "REVIEWING", "SELLER_DELETE", "SHOPEE_DELETE"}
)
DELETED = frozenset({"SELLER_DELETE", "SHOPEE_DELETE"})
FIRST_ITEM_ID = 800_001_000
FIRST_MODEL_ID = 5_000_000_000
_CURRENCIES = {"SG": "SGD", "MY": "MYR", "ID": "IDR", "TH": "THB", "PH": "PHP", "VN": "VND"}

Params = dict[str, Any]


class ShopeeFault(Refusal):
    """A Shopee error answer: `error` code, `message`, and the HTTP status it comes with."""

    def __init__(self, error: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, status=status)
        self.error = error


def _param_error(detail: str) -> ShopeeFault:
    return ShopeeFault("error_param", f"Wrong parameters, detail: {detail}")


@dataclass(slots=True)
class Model:
    model_id: int
    tier_index: list[int]
    sku: str
    price: Decimal
    stock: int
    reserved: int = 0
    status: str = "MODEL_NORMAL"


@dataclass(slots=True)
class Item:
    item_id: int
    name: str
    description: str
    sku: str
    category_id: int
    brand: str
    weight: Decimal
    status: str  # Shopee's item_status
    create_time: int
    update_time: int
    price: Decimal  # items without models
    stock: int  # items without models
    image_ids: list[str]
    logistic_ids: list[int]
    reserved: int = 0
    dimension: dict[str, int] | None = None
    tier_variation: list[dict[str, Any]] = field(default_factory=list)
    models: dict[int, Model] = field(default_factory=dict)  # insertion order is Shopee's order
    in_promotion: bool = False  # update_price fails while an item is in a promotion

    @property
    def has_model(self) -> bool:
        return bool(self.models)


@dataclass(slots=True)
class ShopeeState:
    """Everything one emulated shop holds. Guarded by the emulator's lock."""

    items: dict[int, Item] = field(default_factory=dict)
    # Orders by order_sn, for get_order_list / get_order_detail when they are emulated.
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_stock: OrderStock = field(default_factory=OrderStock)  # units orders hold
    images: dict[str, bytes] = field(default_factory=dict)
    item_ids: IdSequence = field(default_factory=lambda: IdSequence(FIRST_ITEM_ID))
    model_ids: IdSequence = field(default_factory=lambda: IdSequence(FIRST_MODEL_ID))
    version: int = 0  # bumped on every item change; keys the item-list cache


# Category tree built from the generator's catalogue: departments, then leaves.
DEPARTMENTS, LEAF_IDS = category_ids(100_001, 100_101)
LOGISTICS = (
    {"logistics_channel_id": 7032, "logistics_channel_name": "Standard Delivery", "enabled": True},
    {"logistics_channel_id": 70066, "logistics_channel_name": "Shopee Express", "enabled": True},
    {"logistics_channel_id": 70021, "logistics_channel_name": "Kerry", "enabled": False},
)


class ShopeeEmulator(ExpiringTokens, Emulator):
    """One Shopee shop on 127.0.0.1.

    `items`, `seed`, `pos_skus` and `mix` generate the shop (see `generate_shop`); the partner
    key and tokens derive from `seed` too. `credentials` is what an adapter needs to connect.
    """

    name = "shopee"
    secret_fields = ("partner_key",)
    # `auth`: "shop" calls are signed with the access token and shop id, "public" ones are not.
    # `envelope`: "flat" answers at the top level, "" under "response".
    routes = (
        Route("GET", "/api/v2/shop/get_shop_info", "_get_shop_info", auth="shop", envelope="flat"),
        Route("GET", "/api/v2/product/get_category", "_get_category", auth="shop"),
        Route("GET", "/api/v2/logistics/get_channel_list", "_get_channel_list", auth="shop"),
        Route("POST", "/api/v2/media_space/upload_image", "_upload_image", auth="public"),
        Route("GET", "/api/v2/product/get_item_list", "_get_item_list", auth="shop"),
        Route("GET", "/api/v2/product/get_item_base_info", "_get_item_base_info", auth="shop"),
        Route("GET", "/api/v2/product/get_model_list", "_get_model_list", auth="shop"),
        Route("POST", "/api/v2/product/add_item", "_add_item", auth="shop"),
        Route("POST", "/api/v2/product/init_tier_variation", "_init_tier_variation", auth="shop"),
        Route("POST", "/api/v2/product/update_stock", "_update_stock", auth="shop"),
        Route("POST", "/api/v2/product/update_price", "_update_price", auth="shop"),
        Route("POST", "/api/v2/product/update_item", "_update_item", auth="shop"),
        Route(
            "POST", "/api/v2/product/update_tier_variation", "_update_tier_variation", auth="shop"
        ),
        Route("POST", "/api/v2/product/add_model", "_add_model", auth="shop"),
        Route("POST", "/api/v2/product/unlist_item", "_unlist_item", auth="shop"),
        Route("POST", "/api/v2/product/delete_item", "_delete_item", auth="shop"),
        Route("POST", "/api/v2/auth/access_token/get", "_refresh", auth="public", envelope="flat"),
        Route("GET", "/api/v2/order/get_order_list", "_get_order_list", auth="shop"),
        Route("GET", "/api/v2/order/get_order_detail", "_get_order_detail", auth="shop"),
        Route("GET", "/api/v2/logistics/get_tracking_number", "_get_tracking_number", auth="shop"),
    )

    def __init__(
        self,
        *,
        items: int = 0,
        seed: int = 1,
        pos_skus: Sequence[str] = (),
        mix: ShopMix | None = None,
        partner_id: int = 2001887,
        shop_id: int = 1_234_567,
        region: str = "SG",
        throttle_style: ThrottleStyle = "mixed",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, faults=faults, clock=clock)
        self.partner_id = partner_id
        self.shop_id = shop_id
        self.region = region
        self.throttle_style = throttle_style
        self.state = ShopeeState()
        self._secrets = random.Random(f"shopee-secrets-{seed}")
        self.partner_key = "shpk" + self._secrets.randbytes(30).hex()
        # Single-use refresh tokens; the access token a refresh replaces stays valid 5 minutes.
        self.tokens = TokenStore(
            self._new_token, access_ttl=ACCESS_TOKEN_TTL, old_access_grace=OLD_TOKEN_GRACE
        )
        self._item_list_cache: ShopCache[tuple[Any, ...], list[int]] = ShopCache(32)
        for item in generate_shop(items, seed, pos_skus, mix=mix, now=clock()):
            self.put_item(item)

    # -- test helpers ----------------------------------------------------------------------

    @property
    def credentials(self) -> dict[str, Any]:
        """partner_id, partner_key, shop_id and the current access and refresh tokens."""
        tokens = self.tokens.current
        return {
            "partner_id": self.partner_id,
            "partner_key": self.partner_key,
            "shop_id": self.shop_id,
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
        }

    def put_item(self, shop_item: ShopItem, *, status: str | None = None) -> int:
        """Add a generated (or hand-made) item with its variants as models; its item_id."""
        with self.lock:
            item = self._new_item(shop_item, status=status)
            if shop_item.has_variants:
                self._set_tiers(item, shop_item)
            self._save(item, touch=False)
            return item.item_id

    def change_item(
        self,
        item_id: int,
        *,
        model_id: int = 0,
        name: str | None = None,
        price: Decimal | None = None,
        stock: int | None = None,
    ) -> None:
        """Change an item as a seller would in Seller Centre; bumps its update_time."""
        with self.lock:
            item = self.state.items[item_id]
            if name is not None:
                item.name = name
            target: Item | Model = item.models[model_id] if model_id else item
            if price is not None:
                target.price = Decimal(price)
            if stock is not None:
                target.stock = stock
            self._save(item)

    def delete_item(self, item_id: int) -> None:
        """Delete as the seller does (status SELLER_DELETE); bumps its update_time."""
        self.set_item_status(item_id, "SELLER_DELETE")

    def set_item_status(self, item_id: int, status: str) -> None:
        """Set any Shopee item_status (NORMAL, UNLIST, BANNED, ...); bumps its update_time."""
        if status not in ITEM_STATUSES:
            raise ValueError(f"unknown Shopee item status {status!r}")
        with self.lock:
            item = self.state.items[item_id]
            item.status = status
            self._save(item)

    def set_reserved(self, item_id: int, reserved: int, *, model_id: int = 0) -> None:
        """Stock held by open orders: update_stock below it fails for that model."""
        with self.lock:
            item = self.state.items[item_id]
            target: Item | Model = item.models[model_id] if model_id else item
            target.reserved = reserved

    def set_in_promotion(self, item_id: int, in_promotion: bool = True) -> None:
        """While in a promotion, update_price fails for every model of the item."""
        with self.lock:
            self.state.items[item_id].in_promotion = in_promotion

    def quantities(self) -> dict[tuple[int, int], int]:
        """Seller stock per (item_id, model_id) of every item not deleted; model_id 0 for
        items without models."""
        return {_ids(key): value for key, value in self.listing_quantities().items()}

    def prices(self) -> dict[tuple[int, int], Decimal]:
        """Original price per (item_id, model_id), like `quantities`."""
        return {_ids(key): value for key, value in self.listing_prices().items()}

    def item_ids(self, *statuses: str) -> list[int]:
        """Item ids, in order, optionally only those with one of `statuses`."""
        with self.lock:
            return [
                i.item_id for i in self.state.items.values() if not statuses or i.status in statuses
            ]

    # -- the helpers every emulator offers (docs/adapters.md) ------------------------------

    def touch_item(self, item_id: str, *, name: str) -> None:
        self.change_item(int(item_id), name=name)

    def remove_item(self, item_id: str) -> None:
        self.delete_item(int(item_id))

    def iter_listings(self) -> Iterator[Listing]:
        """Items not deleted: an item without models is one listing (model "" in place of
        its model_id 0), each model of one with models another; seller stock and original
        price."""
        for item in self.state.items.values():
            if item.status in DELETED:
                continue
            if not item.has_model:
                yield Listing(str(item.item_id), "", item.stock, item.price)
            for model in item.models.values():
                yield Listing(str(item.item_id), str(model.model_id), model.stock, model.price)

    def update_calls(self, what: str) -> int:
        """Successful update_stock (`"stock"`) or update_price (`"price"`) calls: answered
        without an `error`; a call with some models in its `failure_list` counts."""
        path = {"stock": "/api/v2/product/update_stock", "price": "/api/v2/product/update_price"}
        return sum(
            1
            for call in self.log.writes_to(path[what])
            if isinstance(call.reply, dict) and call.status == 200 and not call.reply.get("error")
        )

    def item(self, item_id: int) -> dict[str, Any]:
        """The item as get_item_base_info describes it, plus its models when it has some."""
        with self.lock:
            item = self.state.items[item_id]
            info = self._base_info(item)
            if item.has_model:
                info["models"] = self._model_list(item)
            return info

    # -- HTTP ------------------------------------------------------------------------------

    def authenticate(self, request: Request, route: Route) -> Reply | None:
        """Shopee's checks (`_authenticate`); ShopeeFault when one fails."""
        self._authenticate(request, route.auth)
        return None

    def invoke(self, route: Route, request: Request, params: dict[str, str]) -> Any:
        """The handler with the call's parameters (query for GET, body for POST), parsed
        outside the lock; handlers run under the lock and raise ShopeeFault."""
        parsed = self._params(request, route.method)
        with self.lock:
            return getattr(self, route.handler)(parsed, request)

    def wrap(self, payload: Any, route: Route) -> Reply:
        body = {"request_id": uuid.uuid4().hex, "error": "", "message": "", "warning": ""}
        if route.envelope == "flat":
            return Reply.json({**body, **payload})
        return Reply.json({**body, "response": payload})

    def wrap_error(self, refusal: Refusal) -> Reply:
        return self._error(refusal)

    def not_found(self, request: Request) -> Reply:
        return self._error(ShopeeFault("error_not_found", "Invalid API path.", status=404))

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        return self._error(_param_error(f"{request.path} expects {allowed[0]}"))

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        fault = ShopeeFault(
            "error_rate_limit", "Too many requests, please try again later.", status=429
        )
        if self.throttled_in_body(self.throttle_style):
            fault.status = 200
            return self._error(fault)
        return self._error(fault, headers=(("Retry-After", f"{retry_after:g}"),))

    def _error(self, fault: Refusal, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        body = {
            "request_id": uuid.uuid4().hex,
            # Every refusal raised here is a ShopeeFault; anything else is the emulator's own.
            "error": fault.error if isinstance(fault, ShopeeFault) else "error_server",
            "message": fault.message,
            "warning": "",
        }
        return Reply.json(body, status=fault.status, headers=headers)

    # -- authentication --------------------------------------------------------------------

    def _authenticate(self, request: Request, scope: str) -> None:
        """Shopee's checks, in order: partner id, timestamp, signature, then shop and token."""
        partner_id = self._required_query(request, "partner_id")
        if partner_id != str(self.partner_id):
            raise _param_error("Invalid partner_id.")
        timestamp = self._required_query(request, "timestamp")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TIMESTAMP_TOLERANCE:
            raise _param_error("Invalid timestamp, it has expired or is malformed.")
        sign = self._required_query(request, "sign")
        base = f"{partner_id}{request.path}{timestamp}"
        if scope == "shop":
            access_token = self._required_query(request, "access_token")
            shop_id = self._required_query(request, "shop_id")
            base += f"{access_token}{shop_id}"
        expected = hmac.new(self.partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sign, expected):
            raise ShopeeFault("error_sign", "Wrong sign.", status=403)
        if scope == "shop":
            self._check_shop(shop_id, access_token)

    def _check_shop(self, shop_id: str, access_token: str) -> None:
        if shop_id != str(self.shop_id):
            raise ShopeeFault(
                "error_auth", "Invalid shop_id or the shop is not authorized.", status=403
            )
        if not self.tokens.valid(access_token):
            raise ShopeeFault("error_auth", "Invalid access_token.", status=403)

    @staticmethod
    def _required_query(request: Request, name: str) -> str:
        value = request.param(name)
        if not value:
            raise _param_error(f"There is no {name} in query.")
        return value

    @staticmethod
    def _params(request: Request, method: str) -> Params:
        if method == "GET":
            return {
                name: values if len(values) > 1 else values[0]
                for name, values in request.query.items()
            }
        if request.content_type == "multipart/form-data":
            try:
                return dict(request.form())
            except ValueError as exc:
                raise _param_error(f"unreadable form body: {exc}") from None
        return request.json_object(
            _param_error("the body is not valid JSON."),
            _param_error("the body must be a JSON object."),
        )

    def _new_token(self, kind: TokenKind) -> str:
        return self._secrets.randbytes(16).hex()  # access and refresh tokens look alike

    # -- shop, category, logistics, media -----------------------------------------------------

    def _get_shop_info(self, params: Params, request: Request) -> dict[str, Any]:
        return {
            "shop_name": f"Emulated Shop {self.shop_id}",
            "region": self.region,
            "status": "NORMAL",
            "is_cb": False,
            "is_cnsc": False,
            "auth_time": int(self.now()) - 86400,
            "expire_time": int(self.now()) + 364 * 86400,
        }

    def _get_category(self, params: Params, request: Request) -> dict[str, Any]:
        departments = [
            _category(category_id, 0, name, has_children=True)
            for name, category_id in DEPARTMENTS.items()
        ]
        leaves = [
            _category(
                LEAF_IDS[leaf.name], DEPARTMENTS[leaf.department], leaf.name, has_children=False
            )
            for leaf in LEAVES
        ]
        return {"category_list": departments + leaves}

    def _get_channel_list(self, params: Params, request: Request) -> dict[str, Any]:
        return {
            "logistics_channel_list": [dict(channel, cod_enabled=False) for channel in LOGISTICS]
        }

    def _upload_image(self, params: Params, request: Request) -> dict[str, Any]:
        image = params.get("image")
        if image is None or not getattr(image, "filename", None) or not image.value:
            raise _param_error("image is required.")
        if not image.content_type.startswith("image/"):
            raise _param_error("image is invalid or not supported.")
        image_id = hashlib.md5(image.value).hexdigest()  # an id, not security
        self.state.images[image_id] = image.value
        return {"image_info": {"image_id": image_id, "image_url_list": [self._image_url(image_id)]}}

    def _image_url(self, image_id: str) -> dict[str, str]:
        return {
            "image_url_region": self.region,
            "image_url": f"https://cf.shopee.test/file/{image_id}",
        }

    # -- reading products ------------------------------------------------------------------

    def _get_item_list(self, params: Params, request: Request) -> dict[str, Any]:
        offset = _int_param(params, "offset", required=True, minimum=0)
        page_size = _int_param(params, "page_size", required=True, minimum=1)
        if page_size > MAX_PAGE_SIZE:
            raise _param_error(f"page_size should be between 1 and {MAX_PAGE_SIZE}.")
        statuses = _list_param(params, "item_status")
        if not statuses:
            raise _param_error("item_status is required.")
        if not set(statuses) <= ITEM_STATUSES:
            raise _param_error(f"item_status should be in {sorted(ITEM_STATUSES)}.")
        since = _int_param(params, "update_time_from", minimum=0)
        until = _int_param(params, "update_time_to", minimum=0)
        if since is not None and until is not None and since > until:
            raise _param_error("update_time_from should be earlier than update_time_to.")
        ids = self._listed_ids(frozenset(statuses), since, until)
        page = ids[offset : offset + page_size]
        items = self.state.items
        return {
            "item": [
                {"item_id": i, "item_status": items[i].status, "update_time": items[i].update_time}
                for i in self.listing_page(offset // page_size + 1, page)
            ],
            "total_count": len(ids),
            "has_next_page": offset + page_size < len(ids),
            "next_offset": offset + len(page),
        }

    def _listed_ids(
        self, statuses: frozenset[str], since: int | None, until: int | None
    ) -> list[int]:
        """Matching item ids in id order, cached until the shop changes (`ShopCache`)."""

        def matching() -> list[int]:
            low, high = since if since is not None else -1, until if until is not None else 2**62
            return [
                item.item_id
                for item in self.state.items.values()
                if item.status in statuses and low <= item.update_time <= high
            ]

        return self._item_list_cache.get((statuses, since, until), self.state.version, matching)

    def _get_item_base_info(self, params: Params, request: Request) -> dict[str, Any]:
        ids = _id_list(params, "item_id_list")
        if not ids or len(ids) > MAX_IDS:
            raise _param_error(f"item_id_list should have 1 to {MAX_IDS} ids.")
        found = [self.state.items[i] for i in ids if i in self.state.items]
        return {"item_list": [self._base_info(item) for item in found]}

    def _get_model_list(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item(params)
        return self._model_list(item)

    def _base_info(self, item: Item) -> dict[str, Any]:
        info: dict[str, Any] = {
            "item_id": item.item_id,
            "category_id": item.category_id,
            "item_name": item.name,
            "description": item.description,
            "item_sku": item.sku,
            "create_time": item.create_time,
            "update_time": item.update_time,
            "image": {
                "image_url_list": [self._image_url(i)["image_url"] for i in item.image_ids],
                "image_id_list": list(item.image_ids),
            },
            "weight": f"{item.weight:.3f}",
            "dimension": item.dimension
            or {"package_length": 0, "package_width": 0, "package_height": 0},
            "logistic_info": [
                {
                    "logistic_id": i,
                    "logistic_name": _logistic_name(i),
                    "enabled": True,
                    "is_free": False,
                }
                for i in item.logistic_ids
            ],
            "pre_order": {"is_pre_order": False, "days_to_ship": 2},
            "condition": "NEW",
            "item_status": item.status,
            "has_model": item.has_model,
            "promotion_id": 1 if item.in_promotion else 0,
            "brand": {"brand_id": 0, "original_brand_name": item.brand},
            "item_dangerous": 0,
        }
        if not item.has_model:
            # Shopee leaves price and stock out of the base info of items with models.
            info["price_info"] = [self._price_info(item.price)]
            info["stock_info_v2"] = _stock_info(item.stock, item.reserved)
        return info

    def _model_list(self, item: Item) -> dict[str, Any]:
        return {
            "tier_variation": item.tier_variation,
            "model": [
                {
                    "model_id": model.model_id,
                    "model_sku": model.sku,
                    "tier_index": list(model.tier_index),
                    "model_status": model.status,
                    "price_info": [self._price_info(model.price)],
                    "stock_info_v2": _stock_info(model.stock, model.reserved),
                }
                for model in item.models.values()
            ],
        }

    def _price_info(self, price: Decimal) -> dict[str, Any]:
        return {
            "currency": _CURRENCIES.get(self.region, "SGD"),
            "original_price": price,
            "current_price": price,
        }

    # -- writing products ------------------------------------------------------------------

    def _add_item(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item_from_body(params)  # validates everything before the shop changes
        self._save(item)
        return {
            "item_id": item.item_id,
            "item_name": item.name,
            "item_sku": item.sku,
            "item_status": item.status,
            "category_id": item.category_id,
            "price_info": [self._price_info(item.price)],
            "seller_stock": [{"stock": item.stock}],
            "weight": float(item.weight),
            "images": {"image_id_list": item.image_ids},
            "logistic_info": [{"logistic_id": i, "enabled": True} for i in item.logistic_ids],
            "description": item.description,
            "condition": "NEW",
        }

    def _item_from_body(self, params: Params) -> Item:
        """A new item from an add_item body; error_param on the first thing Shopee would refuse."""
        category_id = _int_param(params, "category_id", required=True, minimum=1)
        if category_id not in LEAF_IDS.values():
            raise _param_error(f"category_id {category_id} is not a leaf category.")
        status = params.get("item_status", "NORMAL")
        if status not in ("NORMAL", "UNLIST"):
            raise _param_error("item_status should be NORMAL or UNLIST.")
        brand = params.get("brand") or {}
        if not isinstance(brand, dict):
            raise _param_error("brand should be an object.")
        now = int(self.now())
        return Item(
            name=_text(params, "item_name", limit=120),
            description=_text(params, "description", limit=3000),
            sku=str(params.get("item_sku") or "")[:100],
            category_id=category_id,
            brand=str(brand.get("original_brand_name") or "NoBrand"),
            weight=_positive_decimal(params.get("weight"), "weight"),
            status=status,
            create_time=now,
            update_time=now,
            price=_positive_decimal(params.get("original_price"), "original_price"),
            stock=_seller_stock(params.get("seller_stock", [{"stock": 0}])),
            image_ids=self._image_ids(params.get("image")),
            logistic_ids=_logistic_ids(params.get("logistic_info")),
            dimension=_dimension(params.get("dimension")),
            item_id=self.state.item_ids.next(),  # last: arguments are checked left to right first
        )

    def _init_tier_variation(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item(params)
        if item.has_model:
            raise _param_error("this item already has tier variations.")
        tiers = _tier_variation(params.get("tier_variation"))
        rows = params.get("model")
        if not isinstance(rows, list) or not rows:
            raise _param_error("model is required.")
        sizes = [len(tier["option_list"]) for tier in tiers]
        models = [_model_row(row, sizes) for row in rows]
        if len({tuple(tier_index) for tier_index, *_ in models}) != len(models):
            raise _param_error("duplicate tier_index in model.")
        # Validated in full before anything changes: a refused call leaves the item as it was.
        item.tier_variation = tiers
        for tier_index, sku, price, stock in models:
            model_id = self.state.model_ids.next()
            item.models[model_id] = Model(model_id, tier_index, sku, price, stock)
        self._save(item)
        return {
            "item_id": item.item_id,
            "tier_variation": item.tier_variation,
            "model": [
                {
                    "model_id": m.model_id,
                    "tier_index": m.tier_index,
                    "model_sku": m.sku,
                    "original_price": m.price,
                    "seller_stock": [{"stock": m.stock}],
                }
                for m in item.models.values()
            ],
        }

    def _update_stock(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item(params)
        rows = _write_rows(params, "stock_list")
        planned = [(_model_id(row), _seller_stock(row.get("seller_stock"))) for row in rows]
        success, failure = [], []
        for model_id, stock in planned:
            target = _target(item, model_id)
            if target is None:
                failure.append(
                    {"model_id": model_id, "failed_reason": "Model not found in this item."}
                )
            elif stock < target.reserved:
                failure.append(
                    {
                        "model_id": model_id,
                        "failed_reason": (
                            f"Stock {stock} is less than the reserved stock {target.reserved}."
                        ),
                    }
                )
            else:
                target.stock = stock
                success.append({"model_id": model_id, "location_id": "", "stock": stock})
        if success:
            self._save(item)
        return {"failure_list": failure, "success_list": success}

    def _update_price(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item(params)
        rows = _write_rows(params, "price_list")
        planned = [
            (_model_id(row), _positive_decimal(row.get("original_price"), "original_price"))
            for row in rows
        ]
        success, failure = [], []
        for model_id, price in planned:
            target = _target(item, model_id)
            if target is None:
                failure.append(
                    {"model_id": model_id, "failed_reason": "Model not found in this item."}
                )
            elif item.in_promotion:
                failure.append(
                    {
                        "model_id": model_id,
                        "failed_reason": "Item is in a promotion, its price cannot change.",
                    }
                )
            else:
                target.price = price
                success.append({"model_id": model_id, "original_price": price})
        if success:
            self._save(item)
        return {"failure_list": failure, "success_list": success}

    # -- catalog pushes: update, variants, unlist, delete -----------------------------------

    def _update_item(self, params: Params, request: Request) -> dict[str, Any]:
        """Overwrite the fields sent; fields left out keep their value, as Shopee does."""
        item = self._item(params)
        changes: dict[str, Any] = {}
        if "item_name" in params:
            changes["name"] = _text(params, "item_name", limit=120)
        if "description" in params:
            changes["description"] = _text(params, "description", limit=3000)
        if "weight" in params:
            changes["weight"] = _positive_decimal(params.get("weight"), "weight")
        if "category_id" in params:
            category_id = _int_param(params, "category_id", required=True, minimum=1)
            if category_id not in LEAF_IDS.values():
                raise _param_error(f"category_id {category_id} is not a leaf category.")
            changes["category_id"] = category_id
        if "image" in params:
            changes["image_ids"] = self._image_ids(params.get("image"))
        if "dimension" in params:
            changes["dimension"] = _dimension(params.get("dimension"))
        if isinstance(params.get("brand"), dict):
            changes["brand"] = str(params["brand"].get("original_brand_name") or "NoBrand")
        if "item_sku" in params:
            changes["sku"] = str(params.get("item_sku") or "")[:100]
        for name, value in changes.items():  # all checked above before anything changes
            setattr(item, name, value)
        self._save(item)
        return {"item_id": item.item_id, "item_name": item.name}

    def _update_tier_variation(self, params: Params, request: Request) -> dict[str, Any]:
        """Replace the option lists; existing models must keep valid tier indexes."""
        item = self._item(params)
        if not item.has_model:
            raise _param_error("this item has no tier variation; use init_tier_variation.")
        tiers = _tier_variation(params.get("tier_variation"))
        sizes = [len(tier["option_list"]) for tier in tiers]
        for model in item.models.values():
            if len(model.tier_index) != len(sizes) or any(
                i >= size for i, size in zip(model.tier_index, sizes, strict=True)
            ):
                raise _param_error(f"model {model.model_id} would lose its option.")
        item.tier_variation = tiers
        self._save(item)
        return {"item_id": item.item_id, "tier_variation": item.tier_variation}

    def _add_model(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item(params)
        if not item.has_model:
            raise _param_error("this item has no tier variation; use init_tier_variation.")
        rows = params.get("model_list")
        if not isinstance(rows, list) or not 1 <= len(rows) <= 50:
            raise _param_error("model_list should have 1 to 50 models.")
        sizes = [len(tier["option_list"]) for tier in item.tier_variation]
        models = [_model_row(row, sizes) for row in rows]
        taken = {tuple(m.tier_index) for m in item.models.values()}
        for tier_index, *_ in models:
            if tuple(tier_index) in taken:
                raise _param_error(f"a model with tier_index {tier_index} already exists.")
            taken.add(tuple(tier_index))
        added = []
        for tier_index, sku, price, stock in models:
            model_id = self.state.model_ids.next()
            item.models[model_id] = Model(model_id, tier_index, sku, price, stock)
            added.append({"model_id": model_id, "tier_index": tier_index, "model_sku": sku})
        self._save(item)
        return {"model": added}

    def _unlist_item(self, params: Params, request: Request) -> dict[str, Any]:
        rows = params.get("item_list")
        if not isinstance(rows, list) or not 1 <= len(rows) <= 50:
            raise _param_error("item_list should have 1 to 50 items.")
        success, failure = [], []
        for row in rows:
            item = self.state.items.get(int(row.get("item_id") or 0))
            if item is None or item.status in DELETED:
                failure.append({"item_id": row.get("item_id"), "failed_reason": "Item not found."})
                continue
            item.status = "UNLIST" if row.get("unlist") else "NORMAL"
            self._save(item)
            success.append({"item_id": item.item_id, "unlist": bool(row.get("unlist"))})
        return {"success_list": success, "failure_list": failure}

    def _delete_item(self, params: Params, request: Request) -> dict[str, Any]:
        item = self._item(params)
        item.status = "SELLER_DELETE"
        self._save(item)
        return {}

    # -- tokens ----------------------------------------------------------------------------

    def _refresh(self, params: Params, request: Request) -> dict[str, Any]:
        if str(params.get("partner_id")) != str(self.partner_id):
            raise _param_error("Invalid partner_id.")
        if str(params.get("shop_id")) != str(self.shop_id):
            raise ShopeeFault(
                "error_auth", "Invalid shop_id or the shop is not authorized.", status=403
            )
        # Single use: the refresh token is refused from now on.
        tokens = self.tokens.refresh(str(params.get("refresh_token") or ""))
        if tokens is None:
            raise ShopeeFault("error_auth", "Invalid refresh_token.", status=403)
        return {
            "partner_id": self.partner_id,
            "shop_id": self.shop_id,
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
            "expire_in": ACCESS_TOKEN_TTL,
        }

    # -- state -----------------------------------------------------------------------------

    def _item(self, params: Params) -> Item:
        item_id = _int_param(params, "item_id", required=True, minimum=1)
        item = self.state.items.get(item_id)
        if item is None or item.status in DELETED:
            raise ShopeeFault("error_item_not_found", f"Item {item_id} not found.")
        return item

    def _image_ids(self, image: Any) -> list[str]:
        ids = image.get("image_id_list") if isinstance(image, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= 9:
            raise _param_error("image.image_id_list should have 1 to 9 image ids.")
        unknown = [i for i in ids if i not in self.state.images]
        if unknown:
            raise _param_error(f"image ids {unknown} were not uploaded to the media space.")
        return [str(i) for i in ids]

    def _new_item(self, shop_item: ShopItem, *, status: str | None) -> Item:
        first = shop_item.variants[0]
        return Item(
            item_id=self.state.item_ids.next(),
            name=shop_item.name,
            description=shop_item.description,
            sku=shop_item.item_sku if shop_item.has_variants else first.sku,
            category_id=LEAF_IDS.get(shop_item.category, next(iter(LEAF_IDS.values()))),
            brand=shop_item.brand,
            weight=shop_item.weight_kg,
            status=status or ("NORMAL" if shop_item.status == "live" else "UNLIST"),
            create_time=shop_item.created_at,
            update_time=shop_item.updated_at,
            price=first.price,
            stock=0 if shop_item.has_variants else first.quantity,
            image_ids=[hashlib.md5(shop_item.name.encode()).hexdigest()],  # an id, not security
            logistic_ids=[LOGISTICS[0]["logistics_channel_id"]],
        )

    def _set_tiers(self, item: Item, shop_item: ShopItem) -> None:
        options: list[list[str]] = [[] for _ in shop_item.option_names]
        for variant in shop_item.variants:
            tier_index = []
            for tier, name in enumerate(shop_item.option_names):
                value = variant.options[name]
                if value not in options[tier]:
                    options[tier].append(value)
                tier_index.append(options[tier].index(value))
            model_id = self.state.model_ids.next()
            item.models[model_id] = Model(
                model_id, tier_index, variant.sku, variant.price, variant.quantity
            )
        item.tier_variation = [
            {"name": name, "option_list": [{"option": value} for value in values]}
            for name, values in zip(shop_item.option_names, options, strict=True)
        ]

    def _save(self, item: Item, *, touch: bool = True) -> None:
        if touch:
            item.update_time = self.time_after(item.update_time)
        self.state.items[item.item_id] = item
        self.state.version += 1

    # -- orders (get_order_list, get_order_detail, get_tracking_number, pushes) ------------

    def create_order(
        self,
        lines: Sequence[tuple[str, str, int]],
        *,
        state: str = "unpaid",
        at: float | None = None,
    ) -> str:
        """A buyer's order of `[(item_id, variant_id, qty)]` (variant "" for an item without
        models), put in the Shopee status standing for omni's `state` ("unpaid", "paid",
        "shipped", "delivered", "cancelled", "returned") or in a Shopee status given as is.
        `at` (Unix seconds) backdates it. Its order_sn.

        As on Shopee, placing the order takes its units off the seller stock at once (never
        below zero: Shopee sells no more than it shows, so an order beyond stock takes what is
        left), and cancelling it puts back what was taken, once; an order created cancelled
        leaves stock as it was. A return (TO_RETURN) restocks nothing: the seller decides what
        comes back. The item's update_time does not move for either.
        """
        if not lines:
            raise ValueError("an order needs at least one line")
        now = int(self.now() if at is None else at)
        with self.lock:
            item_list = [
                self._order_item(item_id, variant_id, qty) for item_id, variant_id, qty in lines
            ]
            number = self._next_order_sn(now)
            self.state.order_stock.take(
                number,
                [(self._stock_target(row), row["model_quantity_purchased"]) for row in item_list],
                self._adjust_stock,
            )
            total = sum(
                (
                    row["model_discounted_price"] * row["model_quantity_purchased"]
                    for row in item_list
                ),
                Decimal("0"),
            )
            self.state.orders[number] = {
                "order_sn": number,
                "region": self.region,
                "currency": _CURRENCIES.get(self.region, "SGD"),
                "cod": False,
                "order_status": "UNPAID",
                "create_time": now,
                "update_time": now,
                "pay_time": None,
                "payment_method": "ShopeePay",
                "shipping_carrier": "",
                "tracking_number": "",
                "cancel_by": "",
                "cancel_reason": "",
                "buyer_cancel_reason": "",
                "total_amount": total,
                "item_list": item_list,
            }
            if _order_status(state) != "UNPAID":
                self._set_order_status(number, _order_status(state), now, bump=False)
            return number

    def move_order(self, order_number: str, state: str, *, at: float | None = None) -> None:
        """Move an order to the status standing for `state` (or a Shopee status given as is);
        its update_time moves forward, pay time, courier and tracking number appear as Shopee
        fills them in. Cancelling gives its units back to the seller stock, once. KeyError for
        an unknown order."""
        with self.lock:
            if order_number not in self.state.orders:
                raise KeyError(f"no order {order_number}")
            self._set_order_status(
                order_number, _order_status(state), int(self.now() if at is None else at)
            )

    def order_status(self, order_number: str) -> str:
        with self.lock:
            return str(self.state.orders[order_number]["order_status"])

    def order_numbers(self) -> list[str]:
        with self.lock:
            return list(self.state.orders)

    def signed_webhook(self, order_number: str, url: str) -> tuple[dict[str, str], bytes]:
        """An order status push (code 3) for the order's current status, signed as Shopee
        signs pushes to `url` (over the URL, "|" and the body): (headers, raw body)."""
        with self.lock:
            order = self.state.orders[order_number]
            envelope = {
                "shop_id": self.shop_id,
                "code": 3,
                "timestamp": int(self.now()),
                "data": {
                    "ordersn": order_number,
                    "status": order["order_status"],
                    "update_time": order["update_time"],
                },
            }
        return signed_json_push(
            envelope, secret=self.partner_key, signed_prefix=url.encode() + b"|"
        )

    def start_order_stream(self, rate_per_minute: float = 30.0, seed: int = 1) -> None:
        """Buyers at work, for the demo: about `rate_per_minute` events a minute, each either a
        new order of 1–3 live listings or an open order moving on (unpaid → ready to ship →
        shipped → completed, with some cancellations and returns). Seeded, so a run is
        repeatable apart from timing. Runs on a daemon thread until `stop_order_stream()` or
        `stop()`."""
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.stop_order_stream()
        stop = threading.Event()
        rng = random.Random(f"shopee-stream-{seed}")
        thread = threading.Thread(
            target=self._order_stream,
            args=(60.0 / rate_per_minute, rng, stop),
            name="shopee-order-stream",
            daemon=True,
        )
        self._stream = (stop, thread)
        thread.start()

    def stop_order_stream(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is None:
            return
        stop, thread = stream
        stop.set()
        thread.join(timeout=5)
        self._stream = None

    def stop(self) -> None:
        self.stop_order_stream()
        super().stop()

    def order_stream_step(self, rng: random.Random) -> str | None:
        """One stream event; the order_sn it touched, or None when the shop has nothing live."""
        with self.lock:
            open_orders = [
                sn for sn, o in self.state.orders.items() if o["order_status"] in _STREAM_NEXT
            ]
            if open_orders and rng.random() < 0.6:
                number = rng.choice(open_orders)
                current = self.state.orders[number]["order_status"]
                self.move_order(number, _stream_next(current, rng))
                return number
            listings = [(listing.item_id, listing.variant_id) for listing in self.iter_listings()]
        if not listings:
            return None
        picked = rng.sample(listings, k=min(len(listings), rng.randint(1, 3)))
        lines = [(item_id, model_id, rng.randint(1, 2)) for item_id, model_id in picked]
        return self.create_order(lines)

    def _order_stream(self, interval: float, rng: random.Random, stop: threading.Event) -> None:
        while not stop.wait(interval * rng.uniform(0.5, 1.5)):
            try:
                self.order_stream_step(rng)
            except Exception:  # noqa: BLE001 - a demo generator must outlive one bad draw
                logger.exception("shopee order stream: one event failed")

    def _order_item(self, item_id: str, variant_id: str, qty: int) -> dict[str, Any]:
        if qty < 1:
            raise ValueError(f"quantity must be at least 1, got {qty}")
        item = self.state.items.get(int(item_id))
        if item is None or item.status in DELETED:
            raise ValueError(f"no item {item_id}")
        model = item.models.get(int(variant_id)) if variant_id else None
        if variant_id and model is None:
            raise ValueError(f"item {item_id} has no model {variant_id}")
        if model is None and item.has_model:
            raise ValueError(f"item {item_id} has models: name one")
        values = [
            tier["option_list"][index]["option"]
            for tier, index in zip(
                item.tier_variation, model.tier_index if model else [], strict=False
            )
        ]
        price = model.price if model else item.price
        return {
            "item_id": item.item_id,
            "item_name": item.name,
            "item_sku": item.sku,
            "model_id": model.model_id if model else 0,
            "model_name": ",".join(values),
            "model_sku": model.sku if model else "",
            "model_quantity_purchased": qty,
            "model_original_price": price,
            "model_discounted_price": price,
        }

    def _next_order_sn(self, now: int) -> str:
        rng = getattr(self, "_order_rng", None)
        if rng is None:
            rng = self._order_rng = random.Random(f"shopee-orders-{self.partner_key}")
        while True:
            day = time.strftime("%y%m%d", time.gmtime(now))
            number = day + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=8))
            if number not in self.state.orders:
                return number

    def _set_order_status(self, number: str, status: str, now: int, *, bump: bool = True) -> None:
        order = self.state.orders[number]
        order["order_status"] = status
        # Strictly later than before, so an incremental download always sees the change; an
        # order created straight into a status keeps its creation time.
        order["update_time"] = max(now, order["update_time"] + 1) if bump else now
        if status in _PAID_STATUSES and order["pay_time"] is None:
            order["pay_time"] = order["update_time"]
        if status in _SHIPPED_STATUSES and not order["tracking_number"]:
            order["shipping_carrier"] = "Shopee Express"
            order["tracking_number"] = "SPXID" + number[-8:]
        if status == "CANCELLED" and not order["cancel_reason"]:
            order["cancel_by"] = "buyer"
            order["cancel_reason"] = "Change of mind"
            order["buyer_cancel_reason"] = "Change of mind"
        if status == "CANCELLED":
            self.state.order_stock.give_back(number, self._adjust_stock)

    def _stock_target(self, row: dict[str, Any]) -> Item | Model:
        """The item (no models) or model whose seller stock an order line draws on."""
        item = self.state.items[row["item_id"]]
        return item.models[row["model_id"]] if row["model_id"] else item

    def _adjust_stock(self, target: Item | Model, delta: int) -> int:
        """Move seller stock by `delta`, never below zero; the change made."""
        applied = floored(target.stock, delta)
        target.stock += applied
        self.state.version += 1
        return applied

    def _get_order_list(self, params: Params, request: Request) -> dict[str, Any]:
        field_name = params.get("time_range_field")
        if field_name not in ("create_time", "update_time"):
            raise _param_error("time_range_field should be create_time or update_time.")
        time_from = _int_param(params, "time_from", required=True, minimum=0)
        time_to = _int_param(params, "time_to", required=True, minimum=0)
        assert time_from is not None
        assert time_to is not None
        if time_from > time_to or time_to - time_from > ORDER_WINDOW_DAYS * 86400:
            raise ShopeeFault(
                "order.order_list_invalid_time",
                "time_from should be earlier than time_to, and the range at most "
                f"{ORDER_WINDOW_DAYS} days.",
            )
        page_size = _int_param(params, "page_size", required=True, minimum=1)
        assert page_size is not None
        if page_size > MAX_PAGE_SIZE:
            raise _param_error(f"page_size should be between 1 and {MAX_PAGE_SIZE}.")
        cursor = str(params.get("cursor") or "0")
        if not cursor.isdigit():
            raise _param_error("cursor is invalid.")
        wanted_status = params.get("order_status")
        matching = sorted(
            (o[field_name], sn, o["order_status"])
            for sn, o in self.state.orders.items()
            if time_from <= o[field_name] <= time_to
            and (not wanted_status or o["order_status"] == wanted_status)
        )
        offset = int(cursor)
        page = matching[offset : offset + page_size]
        more = offset + page_size < len(matching)
        next_cursor = str(offset + len(page)) if more else ""
        page = self.order_page(offset // page_size + 1, page)
        with_status = "order_status" in _list_param(params, "response_optional_fields")
        return {
            "more": more,
            "next_cursor": next_cursor,
            "order_list": [
                {"order_sn": sn, **({"order_status": status} if with_status else {})}
                for _, sn, status in page
            ],
        }

    def _get_order_detail(self, params: Params, request: Request) -> dict[str, Any]:
        """The orders asked for that the shop has (others are left out); an order_sn that is
        not letters and digits is refused as error_param, as Shopee refuses a malformed one."""
        numbers = _list_param(params, "order_sn_list")
        if not numbers or len(numbers) > MAX_IDS:
            raise _param_error(f"order_sn_list should have 1 to {MAX_IDS} order_sn.")
        malformed = [sn for sn in numbers if not sn.isascii() or not sn.isalnum()]
        if malformed:
            raise _param_error(f"order_sn {malformed[0]} is invalid.")
        optional = set(_list_param(params, "response_optional_fields"))
        found = [self.state.orders[sn] for sn in numbers if sn in self.state.orders]
        return {"order_list": [_order_detail(order, optional) for order in found]}

    def _get_tracking_number(self, params: Params, request: Request) -> dict[str, Any]:
        order = self.state.orders.get(str(params.get("order_sn") or ""))
        if order is None:
            raise _param_error("order_sn is invalid.")
        return {"tracking_number": order["tracking_number"], "hint": ""}


# -- parameter parsing (raise ShopeeFault("error_param") on bad input) -------------------------


def _int_param(
    params: Params, name: str, *, required: bool = False, minimum: int | None = None
) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _param_error(f"{name} is required.")
        return None
    if isinstance(raw, bool) or not str(raw).lstrip("-").isdigit():
        raise _param_error(f"{name} should be an integer.")
    value = int(raw)
    if minimum is not None and value < minimum:
        raise _param_error(f"{name} should be at least {minimum}.")
    return value


def _list_param(params: Params, name: str) -> list[str]:
    raw = params.get(name)
    values = raw if isinstance(raw, list) else [raw] if raw else []
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def _id_list(params: Params, name: str) -> list[int]:
    values = _list_param(params, name)
    if not all(value.isdigit() for value in values):
        raise _param_error(f"{name} should be a list of integers.")
    return [int(value) for value in values]


def _text(params: Params, name: str, *, limit: int) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _param_error(f"{name} is required.")
    if len(value) > limit:
        raise _param_error(f"{name} should be at most {limit} characters.")
    return value


def _positive_decimal(raw: Any, name: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _param_error(f"{name} is required and should be a number.")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise _param_error(f"{name} should be a number.") from None
    if not value.is_finite() or value <= 0:
        raise _param_error(f"{name} should be greater than 0.")
    return value


def _seller_stock(raw: Any) -> int:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise _param_error("seller_stock should hold one {stock} entry.")
    stock = raw[0].get("stock")
    if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
        raise _param_error("seller_stock.stock should be a whole number, 0 or more.")
    return stock


def _logistic_ids(raw: Any) -> list[int]:
    enabled = {c["logistics_channel_id"] for c in LOGISTICS if c["enabled"]}
    if not isinstance(raw, list) or not raw:
        raise _param_error("logistic_info is required.")
    ids = [row.get("logistic_id") for row in raw if isinstance(row, dict) and row.get("enabled")]
    if not ids or not set(ids) <= enabled:
        raise _param_error(
            f"logistic_info should enable some of the shop's channels {sorted(enabled)}."
        )
    return [int(i) for i in ids]


def _tier_variation(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
        raise _param_error("tier_variation should have 1 or 2 tiers.")
    tiers = []
    for tier in raw:
        name = tier.get("name") if isinstance(tier, dict) else None
        options = (
            [o.get("option") for o in tier.get("option_list") or [] if isinstance(o, dict)]
            if name
            else []
        )
        if not name or not options or not all(isinstance(o, str) and o.strip() for o in options):
            raise _param_error("each tier needs a name and a non-empty option_list of options.")
        if len(options) > MAX_OPTIONS_PER_TIER or len(set(options)) != len(options):
            raise _param_error(f"a tier has at most {MAX_OPTIONS_PER_TIER} distinct options.")
        tiers.append({"name": name, "option_list": [{"option": o} for o in options]})
    return tiers


def _model_row(row: Any, sizes: Sequence[int]) -> tuple[list[int], str, Decimal, int]:
    if not isinstance(row, dict):
        raise _param_error("model rows should be objects.")
    tier_index = row.get("tier_index")
    if (
        not isinstance(tier_index, list)
        or len(tier_index) != len(sizes)
        or not all(
            isinstance(i, int) and 0 <= i < size for i, size in zip(tier_index, sizes, strict=False)
        )
    ):
        raise _param_error("tier_index does not match tier_variation.")
    sku = str(row.get("model_sku") or "")
    if len(sku) > 100:
        raise _param_error("model_sku should be at most 100 characters.")
    price = _positive_decimal(row.get("original_price"), "original_price")
    return tier_index, sku, price, _seller_stock(row.get("seller_stock"))


def _dimension(raw: Any) -> dict[str, int] | None:
    if raw is None:
        return None
    names = ("package_length", "package_width", "package_height")
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(n), int) and not isinstance(raw.get(n), bool) and raw[n] > 0
        for n in names
    ):
        raise _param_error("dimension needs whole package_length, package_width, package_height.")
    return {n: raw[n] for n in names}


def _write_rows(params: Params, name: str) -> list[dict[str, Any]]:
    rows = params.get(name)
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_MODELS_PER_WRITE:
        raise _param_error(f"{name} should have 1 to {MAX_MODELS_PER_WRITE} entries.")
    if not all(isinstance(row, dict) for row in rows):
        raise _param_error(f"{name} entries should be objects.")
    return rows


def _model_id(row: dict[str, Any]) -> int:
    model_id = row.get("model_id", 0)
    if isinstance(model_id, bool) or not isinstance(model_id, int) or model_id < 0:
        raise _param_error("model_id should be a whole number.")
    return model_id


def _target(item: Item, model_id: int) -> Item | Model | None:
    if item.has_model:
        return item.models.get(model_id)
    return item if model_id == 0 else None


def _stock_info(stock: int, reserved: int) -> dict[str, Any]:
    return {
        "summary_info": {"total_reserved_stock": reserved, "total_available_stock": stock},
        "seller_stock": [{"location_id": "", "stock": stock, "if_saleable": True}],
    }


def _category(category_id: int, parent_id: int, name: str, *, has_children: bool) -> dict[str, Any]:
    return {
        "category_id": category_id,
        "parent_category_id": parent_id,
        "original_category_name": name,
        "display_category_name": name,
        "has_children": has_children,
    }


def _logistic_name(logistic_id: int) -> str:
    return next(
        (
            c["logistics_channel_name"]
            for c in LOGISTICS
            if c["logistics_channel_id"] == logistic_id
        ),
        "",
    )


def _ids(key: tuple[str, str]) -> tuple[int, int]:
    """A listing's (item_id, model_id) as Shopee numbers them: model 0 for no models."""
    item_id, model_id = key
    return int(item_id), int(model_id or 0)


# -- orders --------------------------------------------------------------------------------------

logger = logging.getLogger(__name__)

ORDER_WINDOW_DAYS = 15  # get_order_list refuses a wider time range
# omni's order states (channels.adapters.base.OrderState values) -> the Shopee status used.
_STATE_STATUS = {
    "unpaid": "UNPAID",
    "paid": "READY_TO_SHIP",
    "shipped": "SHIPPED",
    "delivered": "COMPLETED",
    "cancelled": "CANCELLED",
    "returned": "TO_RETURN",
}
_ORDER_STATUSES = frozenset(
    {
        "UNPAID",
        "PENDING",
        "READY_TO_SHIP",
        "PROCESSED",
        "RETRY_SHIP",
        "INVOICE_PENDING",
        "IN_CANCEL",
        "SHIPPED",
        "TO_CONFIRM_RECEIVE",
        "COMPLETED",
        "CANCELLED",
        "TO_RETURN",
    }
)
_PAID_STATUSES = _ORDER_STATUSES - {"UNPAID", "PENDING", "CANCELLED"}
_SHIPPED_STATUSES = frozenset({"SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED", "TO_RETURN"})
# The demo stream's buyers: status -> [(next status, weight)].
_STREAM_NEXT: dict[str, list[tuple[str, int]]] = {
    "UNPAID": [("READY_TO_SHIP", 85), ("CANCELLED", 15)],
    "READY_TO_SHIP": [("SHIPPED", 92), ("CANCELLED", 8)],
    "SHIPPED": [("COMPLETED", 92), ("TO_RETURN", 8)],
}


def _order_status(state: str) -> str:
    status = _STATE_STATUS.get(str(state), str(state))
    if status not in _ORDER_STATUSES:
        raise ValueError(f"unknown order state or Shopee status {state!r}")
    return status


def _stream_next(status: str, rng: random.Random) -> str:
    choices = _STREAM_NEXT[status]
    return rng.choices([s for s, _ in choices], weights=[w for _, w in choices])[0]


def _order_detail(order: dict[str, Any], optional: set[str]) -> dict[str, Any]:
    """An order as get_order_detail answers: the base fields, plus only the optional ones
    asked for (Shopee leaves the rest out)."""
    detail = {
        key: order[key]
        for key in (
            "order_sn",
            "region",
            "currency",
            "cod",
            "order_status",
            "create_time",
            "update_time",
        )
    }
    detail["days_to_ship"] = 3
    detail["message_to_seller"] = ""
    for key in (
        "total_amount",
        "payment_method",
        "shipping_carrier",
        "cancel_by",
        "cancel_reason",
        "buyer_cancel_reason",
    ):
        if key in optional:
            detail[key] = order[key]
    if "pay_time" in optional and order["pay_time"] is not None:
        detail["pay_time"] = order["pay_time"]
    if "item_list" in optional:
        detail["item_list"] = [dict(row) for row in order["item_list"]]
    if "package_list" in optional:
        detail["package_list"] = [
            {
                "package_number": "OFG" + order["order_sn"],
                "logistics_status": _logistics_status(order["order_status"]),
                "shipping_carrier": order["shipping_carrier"],
                "item_list": [
                    {
                        "item_id": row["item_id"],
                        "model_id": row["model_id"],
                        "model_quantity": row["model_quantity_purchased"],
                    }
                    for row in order["item_list"]
                ],
            }
        ]
    return detail


def _logistics_status(status: str) -> str:
    if status == "CANCELLED":
        return "LOGISTICS_INVALID"
    if status in _SHIPPED_STATUSES:
        return (
            "LOGISTICS_DELIVERY_DONE"
            if status in ("COMPLETED", "TO_CONFIRM_RECEIVE")
            else "LOGISTICS_PICKUP_DONE"
        )
    if status in _PAID_STATUSES:
        return "LOGISTICS_REQUEST_CREATED"
    return "LOGISTICS_NOT_START"
