"""A thin HTTP client of the WooCommerce REST API v3: one method per endpoint, JSON in and out.

Every store is its own host: `{site}/wp-json/wc/v3/{resource}` (pretty permalinks on).

Authentication (shared/reference/marketplace-apis.md §5.1, as WooCommerce's
`WC_REST_Authentication` checks it):
- over HTTPS, HTTP Basic with the consumer key as user name and the consumer secret as password;
- over plain HTTP, OAuth 1.0a "one-legged", the parameters in the query string:
  1. params = the query parameters + `oauth_consumer_key`, `oauth_timestamp` (Unix seconds),
     `oauth_nonce`, `oauth_signature_method=HMAC-SHA256`;
  2. sorted by key (byte order), key and value each percent-encoded (RFC 3986), every pair
     `key=value` percent-encoded again (so `=` becomes `%3D` and `%` becomes `%25`), the pairs
     joined with `%26`;
  3. base string = `METHOD&` + percent-encoded URL without its query + `&` + the joined pairs;
  4. key = consumer secret + `&`; HMAC-SHA256, base64, sent as `oauth_signature`.
  WooCommerce refuses a timestamp more than 15 minutes off and a nonce used before, so every
  attempt (retries included) is signed afresh with a new nonce.

Errors are WordPress's `{"code", "message", "data": {"status"}}` with the HTTP status mirroring
`data.status`. They become `AdapterError`, or `CredentialsError` when the keys are at fault, with
a message staff can act on. WooCommerce core has no rate limit, but hosts and firewalls answer
429 or 503: both are retried with back-off (`classify_reply`).

Nothing here puts a URL in a message: over HTTP the query carries the signature.
"""

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import ceil
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase

from channels.adapters import kit
from channels.adapters.base import AdapterError, CredentialsError
from channels.adapters.http import OutgoingRequest, RetryAdvice, default_classifier
from channels.adapters.paging import PageTally
from channels.adapters.woocommerce.credentials import WooCommerceCredentials

SERVICE = "WooCommerce"
API_PREFIX = "/wp-json/wc/v3"

PRODUCTS = "/products"
PRODUCTS_BATCH = "/products/batch"
CATEGORIES = "/products/categories"
ORDERS = "/orders"

SIGNATURE_METHOD = "HMAC-SHA256"
MAX_PER_PAGE = 100  # WordPress refuses per_page above 100 (rest_invalid_param)
MAX_BATCH_ITEMS = (
    100  # create + update + delete of one batch call (woocommerce_rest_batch_items_limit)
)

Payload = dict[str, Any]


# -- signing (pure functions) -------------------------------------------------------------------


def rfc3986(value: str) -> str:
    """Percent-encode everything but A-Z a-z 0-9 - . _ ~, as PHP's rawurlencode does.

    `/` is encoded too: WooCommerce's server encodes it, so a value holding one must be
    signed that way (wc-api-python's `quote` keeps `/` and would be refused for such a value).
    """
    return quote(value, safe="~")


def oauth_base_string(method: str, url: str, params: Mapping[str, str]) -> str:
    """The OAuth 1.0a string to sign: steps 2 and 3 of the module docstring.

    `url` is scheme, host, port and path, no query; `params` are the decoded query parameters
    that will be sent, `oauth_signature` excepted.
    """
    pairs = sorted(params.items(), key=lambda pair: pair[0].encode())
    joined = "%26".join(
        rfc3986(rfc3986(key)) + "%3D" + rfc3986(rfc3986(value)) for key, value in pairs
    )
    return f"{method.upper()}&{rfc3986(url)}&{joined}"


def oauth_signature(
    *, consumer_secret: str, method: str, url: str, params: Mapping[str, str]
) -> str:
    """Base64 HMAC-SHA256 of the base string, keyed with `consumer_secret + "&"` (REST v3)."""
    base = oauth_base_string(method, url, params)
    digest = hmac.new(f"{consumer_secret}&".encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def oauth_query(
    *,
    method: str,
    url: str,
    query: Sequence[tuple[str, str]],
    consumer_key: str,
    consumer_secret: str,
    timestamp: int,
    nonce: str,
) -> list[tuple[str, str]]:
    """`query` plus the five oauth_* parameters, the signature last."""
    signed = [
        *query,
        ("oauth_consumer_key", consumer_key),
        ("oauth_timestamp", str(timestamp)),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", SIGNATURE_METHOD),
    ]
    if len({key for key, _ in signed}) != len(signed):
        # PHP keeps only the last of repeated keys, so a repeated key could never verify.
        raise ValueError("a WooCommerce query cannot repeat a parameter")
    signature = oauth_signature(
        consumer_secret=consumer_secret, method=method, url=url, params=dict(signed)
    )
    return [*signed, ("oauth_signature", signature)]


def basic_auth_header(consumer_key: str, consumer_secret: str) -> str:
    """`Authorization` value for HTTPS: `Basic base64(consumer_key:consumer_secret)`."""
    token = base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
    return f"Basic {token}"


class WooBasicAuth(AuthBase):
    """Adds the Basic header to requests for the store's own host only (never to other hosts)."""

    def __init__(self, host: str, credentials: WooCommerceCredentials) -> None:
        self._host = host
        self._credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if urlsplit(str(request.url)).netloc == self._host:
            creds = self._credentials
            request.headers["Authorization"] = basic_auth_header(
                creds.consumer_key.get_secret_value(), creds.consumer_secret.get_secret_value()
            )
        return request

    def __repr__(self) -> str:
        return f"WooBasicAuth(host={self._host!r})"


# -- pages ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list endpoint, with WordPress's `X-WP-Total` / `X-WP-TotalPages`."""

    rows: list[Payload]
    total: int | None
    total_pages: int | None


def walk_pages(
    fetch: Callable[[int], Page],
    *,
    per_page: int,
    key: Callable[[Payload], Any] | None = None,
    tally: PageTally | None = None,
) -> Iterator[list[Payload]]:
    """Every row of a page-numbered listing once, a page (the new rows of it) at a time.

    WooCommerce pages are slices of a live query. When rows leave the result set during the
    walk (a product trashed, an order modified past the window's end) the rows behind them move
    up and would fall between two pages. `X-WP-Total` shows it: when it shrinks by d, the walk
    steps back ceil(d / per_page) pages and drops rows already seen, so nothing is skipped and
    nothing comes twice. Extra cost: those re-read pages, only when the set shrank.

    With a `tally`, the walk goes on while `X-WP-TotalPages` says more pages follow, and a page
    that comes back empty or short before then, or a walk ending short of `X-WP-Total`, raises
    IncompleteRead (channels.adapters.paging). Without one, an empty page ends the walk too.
    """
    row_key = key or (lambda row: row.get("id"))
    seen: set[Any] = set()
    page, last_total = 1, None
    while True:
        current = fetch(page)
        fresh = [row for row in current.rows if row_key(row) not in seen]
        seen.update(row_key(row) for row in fresh)
        more = _more(current, page, per_page)
        if tally is not None:
            tally.page(
                len(current.rows), more=more, total=current.total, new=len(fresh), number=page
            )
        if fresh:
            yield fresh
        if current.total is not None:
            shrunk_by = 0 if last_total is None else last_total - current.total
            last_total = current.total
            if shrunk_by > 0 and page > 1:
                page = max(1, page - ceil(shrunk_by / per_page))
                continue
        if not more if tally is not None else _last_page(current, page, per_page):
            return
        page += 1


def _more(current: Page, page: int, per_page: int) -> bool:
    """Whether the store says pages follow this one."""
    if current.total_pages is not None:
        return page < current.total_pages
    return len(current.rows) >= per_page


def _last_page(current: Page, page: int, per_page: int) -> bool:
    if not current.rows:
        return True
    if current.total_pages is not None:
        return page >= current.total_pages
    return len(current.rows) < per_page


# -- the client ----------------------------------------------------------------------------------


class WooCommerceClient(kit.Client[WooCommerceCredentials]):
    """Calls one store's REST API. Thread-safe: it keeps no state between calls.

    Over HTTPS the caller's session gets Basic credentials for the store's host (a session
    passed in is changed for good); over HTTP every request is OAuth-signed in its query.
    WooCommerce keys never expire: there is no token to refresh.
    """

    def __init__(
        self,
        *,
        base_url: str,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
        **settings: Any,
    ) -> None:
        site = base_url.strip().rstrip("/")
        parts = urlsplit(site)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise AdapterError(
                "The WooCommerce site URL must look like https://shop.example.com (no query)",
                retryable=False,
                code="site_url",
            )
        super().__init__(base_url=site, **settings)
        self._api = self._base_url + API_PREFIX
        self._https = parts.scheme == "https"
        self._nonce = nonce
        if self._https:
            self._caller.session.auth = WooBasicAuth(parts.netloc, self._credentials)

    @staticmethod
    def classify_reply(response: requests.Response) -> RetryAdvice | None:
        """HTTP 429 and 5xx are retried. A 503 comes from the host or from WordPress's
        maintenance mode before WooCommerce runs, so even a create may be sent again after
        one."""
        advice = default_classifier(response)
        if advice is not None and response.status_code == 503:
            return RetryAdvice(advice.reason, retry_after=advice.retry_after, unprocessed=True)
        return advice

    # -- products --------------------------------------------------------------------------

    def list_products(
        self,
        *,
        page: int,
        per_page: int = MAX_PER_PAGE,
        status: str = "any",
        modified_after: str | None = None,
        orderby: str = "id",
        order: str = "asc",
    ) -> Page:
        """One page of products (`status=any` is everything but the trash).

        `modified_after` is an ISO time in UTC (`dates_are_gmt=true`), compared strictly.
        """
        params = {"page": page, "per_page": per_page, "status": status}
        params.update(orderby=orderby, order=order)
        if modified_after is not None:
            params.update(modified_after=modified_after, dates_are_gmt="true")
        return self._page("GET", PRODUCTS, params)

    def list_variations(self, product_id: int, *, page: int, per_page: int = MAX_PER_PAGE) -> Page:
        """One page of a variable product's variations, in id order."""
        params = {"page": page, "per_page": per_page, "orderby": "id", "order": "asc"}
        return self._page("GET", f"{PRODUCTS}/{product_id}/variations", params)

    def get_product(self, product_id: int) -> Payload:
        return self._object("GET", f"{PRODUCTS}/{product_id}")

    def create_product(self, body: Mapping[str, Any]) -> Payload:
        """Create a product. Not idempotent: only replies the store did not act on are retried."""
        return self._object("POST", PRODUCTS, body=body, idempotent=False)

    def update_product(self, product_id: int, body: Mapping[str, Any]) -> Payload:
        """Overwrite the given fields (PUT: the same body twice has one effect)."""
        return self._object("PUT", f"{PRODUCTS}/{product_id}", body=body)

    def delete_product(self, product_id: int, *, force: bool) -> Payload:
        """Delete for good (`force`) or move to the trash; variations go with their product."""
        params = {"force": "true" if force else "false"}
        return self._object("DELETE", f"{PRODUCTS}/{product_id}", params=params)

    def batch_products(self, body: Mapping[str, Any], *, idempotent: bool = True) -> Payload:
        """`{"create", "update", "delete"}` of products, at most 100 items in all; per-item
        failures come back inside the answer as `{"id", "error": {code, message, data}}`."""
        return self._object("POST", PRODUCTS_BATCH, body=body, idempotent=idempotent)

    def batch_variations(
        self, product_id: int, body: Mapping[str, Any], *, idempotent: bool = True
    ) -> Payload:
        """The same as `batch_products` for the variations of one product."""
        path = f"{PRODUCTS}/{product_id}/variations/batch"
        return self._object("POST", path, body=body, idempotent=idempotent)

    # -- categories and settings -------------------------------------------------------------

    def list_categories(self, *, page: int, search: str = "") -> Page:
        params: dict[str, Any] = {"page": page, "per_page": MAX_PER_PAGE}
        if search:
            params["search"] = search
        return self._page("GET", CATEGORIES, params)

    def create_category(self, name: str, *, parent: int = 0) -> Payload:
        """Create a product category; WordPress answers `term_exists` (with the existing
        term's id in `data.resource_id`) when one of that name exists under that parent."""
        body = {"name": name, "parent": parent}
        return self._object("POST", CATEGORIES, body=body, idempotent=False)

    def get_setting(self, group: str, setting_id: str) -> Payload:
        """One store setting, e.g. ("products", "woocommerce_weight_unit") -> {"value": "kg"}."""
        return self._object("GET", f"/settings/{group}/{setting_id}")

    # -- orders ----------------------------------------------------------------------------

    def list_orders(
        self,
        *,
        page: int,
        per_page: int = MAX_PER_PAGE,
        status: str = "any",
        modified_after: str | None = None,
        modified_before: str | None = None,
        search: str = "",
        orderby: str = "modified",
        order: str = "asc",
    ) -> Page:
        """One page of orders; `modified_after`/`modified_before` are UTC, both strict."""
        params: dict[str, Any] = {"page": page, "per_page": per_page, "status": status}
        params.update(orderby=orderby, order=order)
        if modified_after is not None or modified_before is not None:
            params["dates_are_gmt"] = "true"
        if modified_after is not None:
            params["modified_after"] = modified_after
        if modified_before is not None:
            params["modified_before"] = modified_before
        if search:
            params["search"] = search
        return self._page("GET", ORDERS, params)

    def get_order(self, order_id: int) -> Payload:
        return self._object("GET", f"{ORDERS}/{order_id}")

    # -- plumbing --------------------------------------------------------------------------

    def _page(self, method: str, path: str, params: Mapping[str, Any]) -> Page:
        data, response = self._call(method, path, params=params)
        if not isinstance(data, list):
            raise AdapterError(
                f"WooCommerce answered {method} {path} with something that is not a list",
                retryable=False,
                code="bad_reply",
            )
        rows = [row for row in data if isinstance(row, dict)]
        return Page(
            rows=rows,
            total=_int_header(response, "X-WP-Total"),
            total_pages=_int_header(response, "X-WP-TotalPages"),
        )

    def _object(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Payload:
        data, _ = self._call(method, path, params=params, body=body, idempotent=idempotent)
        if not isinstance(data, dict):
            raise AdapterError(
                f"WooCommerce answered {method} {path} with something that is not an object",
                retryable=False,
                code="bad_reply",
            )
        return data

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> tuple[Any, requests.Response]:
        def build() -> OutgoingRequest:
            return self.outgoing(method, path, params=params, body=body)

        response = self._caller.send(build, idempotent=idempotent)
        return _decoded(response, f"{method} {path}"), response

    def outgoing(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> OutgoingRequest:
        """The request for one attempt: over HTTP signed now (fresh timestamp and nonce),
        over HTTPS as it is (the session adds the Basic header)."""
        url = self._api + path
        query = [(key, _text(value)) for key, value in (params or {}).items() if value is not None]
        if not self._https:
            query = self._signed(method, url, query)
        return OutgoingRequest(method, url, params=query, json=body)

    def _signed(
        self, method: str, url: str, query: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        # Read per attempt: a fresh timestamp and nonce for every retry.
        creds = self._credentials
        return oauth_query(
            method=method,
            url=url,
            query=query,
            consumer_key=creds.consumer_key.get_secret_value(),
            consumer_secret=creds.consumer_secret.get_secret_value(),
            timestamp=int(self._clock()),
            nonce=self._nonce(),
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int_header(response: requests.Response, name: str) -> int | None:
    raw = response.headers.get(name, "").strip()
    return int(raw) if raw.isdigit() else None


# -- errors --------------------------------------------------------------------------------------


class WooCommerceError(AdapterError):
    """A WordPress error answer other than refused keys, with its HTTP status and `data`
    (e.g. `resource_id` of the term that already exists)."""

    def __init__(
        self, message: str, *, retryable: bool, code: str, status: int, data: Any = None
    ) -> None:
        super().__init__(message, retryable=retryable, code=code)
        self.status = status
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}


# Codes meaning "these keys may not do this": wrong keys, revoked keys, or a read-only key.
REFUSED_KEYS = frozenset(
    {
        "woocommerce_rest_authentication_error",
        "woocommerce_rest_cannot_view",
        "woocommerce_rest_cannot_create",
        "woocommerce_rest_cannot_edit",
        "woocommerce_rest_cannot_delete",
        "woocommerce_rest_cannot_batch",
        "rest_forbidden",
    }
)
_TAGS = re.compile(r"<[^>]+>")


def _decoded(response: requests.Response, label: str) -> Any:
    """The JSON the store answered (numbers with decimals as Decimal); AdapterError if the
    answer is an error or is not JSON at all (a login page, a firewall's challenge page)."""
    status = response.status_code
    try:
        data = response.json(parse_float=Decimal)
    except ValueError:
        raise _not_json(status, label) from None
    if status < 400:
        return data
    if isinstance(data, dict) and data.get("code"):
        raise woo_error(
            str(data["code"]),
            str(data.get("message") or ""),
            status=status,
            endpoint=label,
            data=data.get("data"),
        )
    raise _http_error(status, label)


def _not_json(status: int, label: str) -> AdapterError:
    if status < 400:
        return AdapterError(
            f"The WooCommerce site answered {label} with a page that is not JSON: check the "
            "channel's site URL and that WordPress pretty permalinks are on",
            retryable=False,
            code=f"http_{status}",
        )
    return _http_error(status, label)


def _http_error(status: int, label: str) -> AdapterError:
    if status == 429 or status >= 500:
        return AdapterError(
            f"The WooCommerce site answered {label} with HTTP {status} (busy or failing): try "
            "again later",
            retryable=True,
            code=f"http_{status}",
        )
    if status in (401, 403):
        return CredentialsError(
            f"The WooCommerce site refused {label} (HTTP {status}): check the consumer key and "
            "secret, and any firewall in front of the site",
            code=f"http_{status}",
        )
    if status == 404:
        return AdapterError(
            f"The WooCommerce site has nothing at {label} (HTTP 404): check the channel's site "
            "URL, that WooCommerce is active and that pretty permalinks are on",
            retryable=False,
            code="http_404",
        )
    return AdapterError(
        f"The WooCommerce site refused {label} (HTTP {status})",
        retryable=False,
        code=f"http_{status}",
    )


def woo_error(
    code: str, message: str, *, status: int, endpoint: str, data: Any = None
) -> AdapterError:
    """Turn a WordPress error into an exception that tells staff what to do."""
    plain = _TAGS.sub("", message).strip()
    said = f" WooCommerce said: {plain}" if plain else ""
    lowered = plain.lower()
    if code == "woocommerce_rest_authentication_error" and "timestamp" in lowered:
        return WooCommerceError(
            f"WooCommerce refused the request time: check this server's clock.{said}",
            retryable=False,
            code=code,
            status=status,
        )
    if code == "woocommerce_rest_authentication_error" and "nonce" in lowered:
        return WooCommerceError(
            f"WooCommerce saw this request twice.{said}", retryable=True, code=code, status=status
        )
    if code in REFUSED_KEYS or status == 401:
        return CredentialsError(_refused_keys(code, lowered, endpoint) + said, code=code)
    if code == "rest_no_route":
        return WooCommerceError(
            f"The site has no WooCommerce REST API for {endpoint}: check the channel's site URL, "
            f"that WooCommerce is active and that pretty permalinks are on.{said}",
            retryable=False,
            code=code,
            status=status,
        )
    said += error_detail(code, data)
    retryable = status == 429 or status >= 500
    verb = "failed on" if retryable else "refused"
    return WooCommerceError(
        f"WooCommerce {verb} {endpoint} ({code}).{said}",
        retryable=retryable,
        code=code,
        status=status,
        data=data,
    )


def error_detail(code: str, data: Any) -> str:
    """What WooCommerce's `data` adds to its message: which parameters are wrong, or which
    product already holds a SKU or a GTIN."""
    if not isinstance(data, dict):
        return ""
    details = data.get("params")
    if code == "rest_invalid_param" and isinstance(details, dict) and details:
        return " (" + "; ".join(str(detail) for detail in details.values()) + ")"
    if code in ("product_invalid_sku", "product_invalid_global_unique_id"):
        holder = data.get("resource_id")
        if holder:
            return f" Product {holder} on WooCommerce has it already."
    return ""


def _refused_keys(code: str, lowered: str, endpoint: str) -> str:
    if "consumer key is invalid" in lowered:
        return (
            "WooCommerce does not know this consumer key: check it, and that the key was not "
            "revoked (WooCommerce > Settings > Advanced > REST API)."
        )
    if "signature" in lowered or "consumer secret" in lowered:
        return "WooCommerce refused the signature: check the consumer secret."
    if "permissions" in lowered:
        return (
            f"The WooCommerce API key may not do {endpoint}: give the key Read/Write "
            "permissions (WooCommerce > Settings > Advanced > REST API)."
        )
    return (
        f"WooCommerce refused the API keys for {endpoint} ({code}): check the consumer key and "
        "secret and that the key has Read/Write permissions; over HTTPS, also check that the web "
        "server passes the Authorization header on to WordPress."
    )
