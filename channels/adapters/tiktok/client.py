"""A thin HTTP client of the TikTok Shop Partner API (202309+): one method per endpoint.

Signing (shared/reference/marketplace-apis.md §2.1), HMAC-SHA256 keyed with the app secret,
lowercase hex, sent as the `sign` query parameter:
  1. every query parameter except `sign` and `access_token`, keys sorted, as `key + value`
     (values as sent, after URL-decoding);
  2. the request path (no host) in front;
  3. the exact body bytes appended, unless the body is multipart/form-data;
  4. the whole wrapped as `app_secret + string + app_secret`;
  5. HMAC-SHA256 of that with the app secret as key.
Every call carries `app_key` and `timestamp` (Unix seconds) in the query, shop-scoped calls add
`shop_cipher` (some endpoints refuse it: Get Authorized Shops, image upload), and the access
token travels in the `x-tts-access-token` header, never signed.

The signature is computed by a `requests` auth hook (`RequestSigner`) on the request as
prepared for the wire, so the bytes signed are the bytes sent: JSON is serialized once, by
`requests`, and the query is read back from the encoded URL.

Errors: TikTok answers `{"code", "message", "request_id", "data"}`, `code` 0 on success, and the
HTTP status says little, so we branch on `code`. Throttling is HTTP 429 and/or code 36009002;
HTTP 503 is a server error, not throttling. Failures become `AdapterError`, or
`CredentialsError` when the keys, the tokens or the shop cipher are at fault, with a message a
staff member can act on.

Tokens live on a separate host (`https://auth.tiktok-shops.com`, unsigned GET calls with the
secret in the query). When a shop call says the access token expired, the client refreshes once
(`GET /api/v2/token/refresh`), hands the new pair to `on_credentials_changed` so it is persisted
(the refresh token is replaced too), and repeats the call.
"""

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.auth import AuthBase

from channels.adapters.base import AdapterError, CredentialsError
from channels.adapters.http import OutgoingRequest, RetryAdvice, default_classifier
from channels.adapters.kit import Client, reply_json
from channels.adapters.tiktok.credentials import TikTokCredentials

SERVICE = "TikTok Shop"

PRODUCTION_API_HOST = "open-api.tiktokglobalshop.com"
PRODUCTION_AUTH_BASE_URL = "https://auth.tiktok-shops.com"

AUTHORIZED_SHOPS = "/authorization/202309/shops"
SEARCH_PRODUCTS = "/product/202502/products/search"
PRODUCTS = "/product/202309/products"
PRODUCT = "/product/202309/products/{product_id}"
PARTIAL_EDIT = "/product/202309/products/{product_id}/partial_edit"
UPDATE_INVENTORY = "/product/202309/products/{product_id}/inventory/update"
UPDATE_PRICES = "/product/202309/products/{product_id}/prices/update"
ACTIVATE = "/product/202309/products/activate"
DEACTIVATE = "/product/202309/products/deactivate"
CATEGORIES = "/product/202309/categories"
BRANDS = "/product/202309/brands"
UPLOAD_IMAGE = "/product/202309/images/upload"
WAREHOUSES = "/logistics/202309/warehouses"
SEARCH_ORDERS = "/order/202309/orders/search"
ORDERS = "/order/202309/orders"
REFRESH_TOKEN = "/api/v2/token/refresh"

# Versioned API paths (`/{module}/{yyyymm}/...`) are signed; token endpoints and anything else
# the same session fetches (product images on a CDN) are not.
SIGNED_PATH = re.compile(r"^/[a-z_]+/\d{6}/")
UNSIGNED_PARAMS = frozenset({"sign", "access_token"})
TOKEN_HEADER = "x-tts-access-token"

THROTTLED = 36009002
# "Internal error, try again" and "request timeout" codes from TikTok's common and per-endpoint
# error tables: TikTok did not do it, asking again later may work.
TRANSIENT = frozenset({36009003, 36009007, 10006402, 10002014, 10002015, 12001000, 33001002})
INVALID_SIGN = 106001
TOKEN_INVALID = 105001
TOKEN_EXPIRED = 105002
MISSING_SCOPE = 105005
IP_NOT_ALLOWED = 36009033
MISSING_SHOP_CIPHER = 106013
OVERLOADED = 36009004  # TikTok's catch-all for bad app key, signature, timestamp, token header...
ORDER_NOT_SELLERS = (
    21008111  # Get Order Detail: "The order/package does not belong to the current seller"
)

Payload = dict[str, Any]


def sign_base_string(
    *, path: str, params: Mapping[str, str], body: bytes = b"", multipart: bool = False
) -> bytes:
    """Steps 1–3: `path + key1value1key2value2... (+ body)`, as bytes."""
    pairs = sorted((key, value) for key, value in params.items() if key not in UNSIGNED_PARAMS)
    base = (path + "".join(f"{key}{value}" for key, value in pairs)).encode()
    return base if multipart else base + body


def tiktok_sign(
    *,
    app_secret: str,
    path: str,
    params: Mapping[str, str],
    body: bytes = b"",
    multipart: bool = False,
) -> str:
    """The `sign` query parameter (steps 4–5: wrap in the secret, HMAC-SHA256, lowercase hex)."""
    key = app_secret.encode()
    base = sign_base_string(path=path, params=params, body=body, multipart=multipart)
    return hmac.new(key, key + base + key, hashlib.sha256).hexdigest()


def webhook_signature(*, app_key: str, app_secret: str, body: bytes) -> str:
    """The `Authorization` header of a push: HMAC-SHA256(app_secret, app_key + raw body), hex.
    A different scheme from request signing: no wrapping, no path, no parameters."""
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


def auth_base_url_for(api_base_url: str) -> str:
    """Where the token endpoints live for an API base URL.

    TikTok serves tokens on its own host; anything else (the emulator, a proxy in front of
    TikTok) is expected to serve `/api/v2/token/...` on the API base URL itself.
    """
    if urlsplit(api_base_url).hostname == PRODUCTION_API_HOST:
        return PRODUCTION_AUTH_BASE_URL
    return api_base_url.rstrip("/")


def classify_reply(response: requests.Response) -> RetryAdvice | None:
    """HTTP 429/5xx as usual, plus TikTok's throttling and internal errors inside a 200 body."""
    advice = default_classifier(response)
    if advice is not None or response.status_code != 200:
        return advice
    code = _error_code(response)
    if code == THROTTLED:
        return RetryAdvice(f"code {code}", unprocessed=True, throttled=True)
    if code in TRANSIENT:
        return RetryAdvice(f"code {code}")
    return None


def _error_code(response: requests.Response) -> int:
    # Successful replies say `"code":0`; only parse again when a non-zero code is possible.
    content = response.content
    if b'"code":0,' in content[:64] or b'"code"' not in content:
        return 0
    try:
        payload = response.json()
    except ValueError:
        return 0
    return _int_code(payload.get("code")) if isinstance(payload, dict) else 0


class RequestSigner(AuthBase):
    """Signs API calls as they are about to leave, and adds the access token header.

    Only requests to the API origin with a versioned path are touched, so the same session can
    download product images from elsewhere without sending them the token.
    """

    def __init__(self, *, api_base_url: str, credentials: Callable[[], TikTokCredentials]) -> None:
        parts = urlsplit(api_base_url)
        self._origin = (parts.scheme, parts.netloc)
        self._prefix = parts.path.rstrip("/")
        self._credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        path = parts.path
        if (parts.scheme, parts.netloc) != self._origin or not path.startswith(self._prefix):
            return request
        path = path[len(self._prefix) :]
        if not SIGNED_PATH.match(path):
            return request
        creds = self._credentials()
        body = request.body or b""
        content_type = request.headers.get("Content-Type", "")
        sign = tiktok_sign(
            app_secret=creds.app_secret.get_secret_value(),
            path=path,
            params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            body=body.encode() if isinstance(body, str) else body,
            multipart=content_type.lower().startswith("multipart/form-data"),
        )
        if parts.query and not parts.fragment:
            # The URL is prepared already and the signature is hex: appending it gives what
            # preparing the URL again with {"sign": sign} gives, without parsing and quoting
            # it anew (about a tenth of the adapter's CPU in a scan: a signed call per product).
            request.url = f"{request.url}&sign={sign}"
        else:
            request.prepare_url(request.url, {"sign": sign})
        request.headers[TOKEN_HEADER] = creds.access_token.get_secret_value()
        return request


class TikTokClient(Client[TikTokCredentials]):
    """Calls the Partner API for one shop. Thread-safe: a token refresh happens once for all
    threads. `auth_base_url` is where tokens are refreshed (by default TikTok's auth host for
    TikTok's API host, else `base_url` itself). A shop bound to Tokopedia is served the same
    way; its adapter names the client "Tokopedia" in messages (`service`)."""

    classify_reply = staticmethod(classify_reply)

    def __init__(self, *, auth_base_url: str | None = None, **settings: Any) -> None:
        super().__init__(**settings)
        self._auth_base_url = (auth_base_url or auth_base_url_for(self._base_url)).rstrip("/")
        self._caller.session.auth = RequestSigner(
            api_base_url=self._base_url, credentials=lambda: self.credentials
        )

    # -- shops -----------------------------------------------------------------------------

    def get_authorized_shops(self) -> Payload:
        """`shops[] {id, name, region, seller_type, cipher, code}` the token may act on.
        Not shop-scoped: sending `shop_cipher` here is refused."""
        return self._call("GET", AUTHORIZED_SHOPS, shop=False)

    def get_warehouses(self) -> Payload:
        """`warehouses[] {id, name, effect_status, type, is_default, ...}` of the shop."""
        return self._call("GET", WAREHOUSES)

    # -- catalogue setup -------------------------------------------------------------------

    def get_categories(self) -> Payload:
        """`categories[] {id, parent_id, local_name, is_leaf}`: the shop's whole tree."""
        return self._call("GET", CATEGORIES)

    def get_brands(
        self, *, brand_name: str, category_id: str = "", page_size: int = 100
    ) -> Payload:
        """`brands[] {id, name, ...}` whose name matches `brand_name` (one page)."""
        params: dict[str, Any] = {"page_size": page_size, "brand_name": brand_name}
        if category_id:
            params["category_id"] = category_id
        return self._call("GET", BRANDS, params=params)

    def upload_image(self, *, filename: str, content: bytes, content_type: str) -> Payload:
        """Upload one product image (multipart field `data`); `{uri, url, width, height}`.
        Not shop-scoped, and a multipart body is not part of the signature."""
        files = {"data": (filename, content, content_type)}
        return self._call(
            "POST", UPLOAD_IMAGE, files=files, data={"use_case": "MAIN_IMAGE"}, shop=False
        )

    # -- products --------------------------------------------------------------------------

    def search_products(
        self, *, page_size: int, page_token: str = "", filters: Mapping[str, Any] | None = None
    ) -> Payload:
        """One page of `products[]` (with their SKUs, prices and stock), `total_count` and
        `next_page_token` ("" at the end). Filters (`status`, `update_time_ge`, ...) go in the
        body, paging in the query."""
        params: dict[str, Any] = {"page_size": page_size}
        if page_token:
            params["page_token"] = page_token
        return self._call("POST", SEARCH_PRODUCTS, params=params, body=dict(filters or {}))

    def get_product(self, product_id: str) -> Payload:
        """One product in full: SKUs with `sales_attributes`, images, package, status."""
        return self._call("GET", PRODUCT.format(product_id=product_id))

    def create_product(self, body: Mapping[str, Any]) -> Payload:
        """Create (and list) a product; `{product_id, skus[] {id, seller_sku, ...}}`.
        Not idempotent: only throttled replies are retried."""
        return self._call("POST", PRODUCTS, body=body, idempotent=False)

    def partial_edit_product(self, product_id: str, body: Mapping[str, Any]) -> Payload:
        """Overwrite only the product fields present in `body` (absolute values: safe to retry)."""
        return self._call("POST", PARTIAL_EDIT.format(product_id=product_id), body=body)

    def edit_product(self, product_id: str, body: Mapping[str, Any]) -> Payload:
        """Replace the product as a whole (every SKU listed; new ones without an id). Not
        idempotent: a new SKU sent twice could be added twice."""
        path = PRODUCT.format(product_id=product_id)
        return self._call("PUT", path, body=body, idempotent=False)

    def update_inventory(self, product_id: str, skus: Sequence[Mapping[str, Any]]) -> Payload:
        """Absolute quantities for SKUs of one product; per-SKU failures in `errors[]`."""
        path = UPDATE_INVENTORY.format(product_id=product_id)
        return self._call("POST", path, body={"skus": list(skus)})

    def update_prices(self, product_id: str, skus: Sequence[Mapping[str, Any]]) -> Payload:
        """Pre-tax prices for SKUs of one product."""
        path = UPDATE_PRICES.format(product_id=product_id)
        return self._call("POST", path, body={"skus": list(skus)})

    def activate_products(self, product_ids: Sequence[str]) -> Payload:
        """List products again (at most 20); per-product failures in `errors[]`."""
        return self._call("POST", ACTIVATE, body={"product_ids": list(product_ids)})

    def deactivate_products(self, product_ids: Sequence[str]) -> Payload:
        """Unlist products (at most 20); per-product failures in `errors[]`."""
        return self._call("POST", DEACTIVATE, body={"product_ids": list(product_ids)})

    def delete_products(self, product_ids: Sequence[str]) -> Payload:
        """Delete products (at most 20); per-product failures in `errors[]`."""
        return self._call("DELETE", PRODUCTS, body={"product_ids": list(product_ids)})

    # -- orders ----------------------------------------------------------------------------

    def search_orders(
        self, *, page_size: int, page_token: str = "", filters: Mapping[str, Any] | None = None
    ) -> Payload:
        """One page of full `orders[]` (line items included), oldest update first;
        `next_page_token` is "" at the end."""
        params: dict[str, Any] = {
            "page_size": page_size,
            "sort_field": "update_time",
            "sort_order": "ASC",
        }
        if page_token:
            params["page_token"] = page_token
        return self._call("POST", SEARCH_ORDERS, params=params, body=dict(filters or {}))

    def get_orders(self, order_ids: Sequence[str]) -> Payload:
        """`orders[]` for at most 50 ids (TikTok's limit), comma-joined in `ids`."""
        return self._call("GET", ORDERS, params={"ids": ",".join(order_ids)})

    # -- tokens ----------------------------------------------------------------------------

    def exchange_refresh_token(self, current: TikTokCredentials) -> TikTokCredentials:
        """Trade the refresh token for a new pair (TikTok replaces the refresh token too).

        Unsigned call on the auth host, secret in the query as TikTok requires: the URL is
        never logged or put in a message.
        """
        query = {
            "app_key": current.app_key,
            "app_secret": current.app_secret.get_secret_value(),
            "refresh_token": current.refresh_token.get_secret_value(),
            "grant_type": "refresh_token",
        }
        url = self._auth_base_url + REFRESH_TOKEN
        # Not idempotent: a lost reply may have used the refresh token up already.
        response = self._caller.send(
            lambda: OutgoingRequest("GET", url, params=query), idempotent=False
        )
        payload = _decoded(response, REFRESH_TOKEN, self.service)
        code = _int_code(payload.get("code"))
        if code:
            raise self._refresh_refused(code, str(payload.get("message") or ""))
        data = payload.get("data") or {}
        if not data.get("access_token") or not data.get("refresh_token"):
            raise AdapterError(
                f"{self.service} answered the token refresh without new tokens",
                retryable=False,
                code="token_refresh",
            )
        return current.with_tokens(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            access_token_expires_at=max(0, _int_code(data.get("access_token_expire_in"))),
        )

    def no_refresh_token(self) -> CredentialsError:
        return CredentialsError(
            f"{self.service} says the access token has expired and the channel has no "
            "refresh token: reconnect the shop to issue new tokens",
            code=str(TOKEN_EXPIRED),
        )

    def _refresh_refused(self, code: int, message: str) -> AdapterError:
        error = tiktok_error(code, message, endpoint="token refresh", service=self.service)
        if error.retryable or "app_key" in message or "app_secret" in message:
            return error
        return CredentialsError(
            f"{self.service} refused the refresh token ({code}): it was used already or has "
            f"expired; reconnect the shop to issue new tokens. {self.service} said: {message}",
            code=str(code),
        )

    # -- plumbing --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, Any] | None = None,
        shop: bool = True,
        idempotent: bool = True,
    ) -> Payload:
        """The `data` object of a successful call; AdapterError/CredentialsError otherwise.
        An expired access token is refreshed once, then the call is made again."""

        def send(used: dict[str, str]) -> Payload:
            def build() -> OutgoingRequest:
                creds = self._credentials  # read per attempt: a refresh may have replaced it
                used["access_token"] = creds.access_token.get_secret_value()
                query: dict[str, Any] = {"app_key": creds.app_key, "timestamp": int(self._clock())}
                if shop:
                    query["shop_cipher"] = creds.shop_cipher
                query.update(params or {})
                url = self._base_url + path
                return OutgoingRequest(method, url, params=query, json=body, files=files, data=data)

            return _decoded(self._caller.send(build, idempotent=idempotent), path, self.service)

        return _checked(self.with_refresh(send, _token_refused), path, self.service)


def _decoded(response: requests.Response, path: str, service: str) -> Payload:
    """The JSON object TikTok answered (numbers with decimals as Decimal); AdapterError if none."""
    endpoint = _endpoint(path)
    status = response.status_code
    payload = reply_json(response, service=service, endpoint=endpoint)
    if not isinstance(payload, dict) or "code" not in payload:
        raise AdapterError(
            f"{service} answered {endpoint} with HTTP {status} and no result code",
            retryable=status == 429 or status >= 500,
            code=f"http_{status}",
        )
    if status == 429 and not _int_code(payload.get("code")):
        payload = {**payload, "code": THROTTLED}
    return payload


def _token_refused(payload: Payload) -> bool:
    """Whether a refresh may help: the access token expired (or was replaced by a refresh)."""
    code = _int_code(payload.get("code"))
    if code in (TOKEN_EXPIRED, TOKEN_INVALID):
        return True
    return code == OVERLOADED and _names_the_token(str(payload.get("message") or "").lower())


def _names_the_token(message: str) -> bool:
    """Whether a lowercased 36009004 message is about the access token ("access_token",
    "access token", or its header)."""
    return any(words in message for words in ("access_token", "access token", TOKEN_HEADER))


def _checked(payload: Payload, path: str, service: str) -> Payload:
    """The `data` object when `code` is 0 (TikTok may leave `data` out); else the error."""
    code = _int_code(payload.get("code"))
    if code:
        message = str(payload.get("message") or "")
        raise tiktok_error(code, message, endpoint=_endpoint(path), service=service)
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


def tiktok_error(code: int, message: str, *, endpoint: str, service: str = SERVICE) -> AdapterError:
    """Turn TikTok's `code`/`message` pair into an exception that tells staff what to do.

    36009004 stands for a dozen failures, so its message decides (TikTok's own advice).
    """
    said = f" {service} said: {message}" if message else ""
    lowered = message.lower()
    key = str(code)
    if code == OVERLOADED:
        if "app_key" in lowered:
            return CredentialsError(
                f"{service} does not know this app key ({code}): check the app key.{said}",
                code=key,
            )
        if "signature" in lowered or "`sign`" in lowered:
            return CredentialsError(
                f"{service} refused the signature ({code}): check the app secret.{said}",
                code=key,
            )
        if "timestamp" in lowered:
            return AdapterError(
                f"{service} refused the request time ({code}): check this server's clock.{said}",
                retryable=False,
                code=key,
            )
        if _names_the_token(lowered):
            return CredentialsError(
                f"{service} refused the access token ({code}): reconnect the shop to issue new "
                f"tokens.{said}",
                code=key,
            )
        if "unexpected" in lowered:  # a parameter this endpoint does not take: our mistake
            return AdapterError(
                f"{service} refused a parameter of {endpoint} ({code}).{said}",
                retryable=False,
                code=key,
            )
        if "app_secret" in lowered:
            return CredentialsError(
                f"{service} refused the app secret ({code}): check the app secret.{said}",
                code=key,
            )
        if "shop_id" in lowered or "shop_cipher" in lowered:
            return CredentialsError(
                f"{service} refused the shop ({code}): check the shop cipher.{said}", code=key
            )
    if code == INVALID_SIGN:
        return CredentialsError(
            f"{service} refused the signature ({code}): check the app secret.{said}", code=key
        )
    if code in (TOKEN_INVALID, TOKEN_EXPIRED):
        return CredentialsError(
            f"{service} refused the access token ({code}): reconnect the shop to issue new "
            f"tokens.{said}",
            code=key,
        )
    if code == MISSING_SCOPE:
        return CredentialsError(
            f"{service} does not let this app call {endpoint} ({code}): grant the app that "
            f"scope in Partner Center and reconnect the shop.{said}",
            code=key,
        )
    if code == IP_NOT_ALLOWED:
        return CredentialsError(
            f"{service} refused this server's IP address ({code}): add it to the app's IP allow "
            f"list in Partner Center.{said}",
            code=key,
        )
    if code == MISSING_SHOP_CIPHER:
        return CredentialsError(
            f"{service} needs the shop cipher ({code}): fill it in on the channel.{said}", code=key
        )
    if code == THROTTLED:
        return AdapterError(
            f"{service} is throttling calls ({code}): try again in a moment.{said}",
            retryable=True,
            code=key,
        )
    if code in TRANSIENT:
        return AdapterError(
            f"{service} had an internal error on {endpoint} ({code}): try again later.{said}",
            retryable=True,
            code=key,
        )
    return AdapterError(f"{service} refused {endpoint} ({code}).{said}", retryable=False, code=key)


def _int_code(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return -1


def _endpoint(path: str) -> str:
    """`/product/202309/products/123/inventory/update` -> `products/123/inventory/update`."""
    parts = path.strip("/").split("/", 2)
    return parts[2] if len(parts) == 3 and parts[1].isdigit() else path.strip("/")
