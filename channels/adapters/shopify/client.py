"""A thin HTTP client of Shopify's GraphQL Admin API: one method per operation, JSON in and out.

Calls (shared/reference/marketplace-apis.md §4): `POST {shop}/admin/api/{API_VERSION}/graphql.json`
with `{"query", "variables"}` and the header `X-Shopify-Access-Token`. There is no request
signature: HTTPS and the token are the whole authentication. Webhooks, in the other direction,
are signed: `X-Shopify-Hmac-SHA256` = base64 HMAC-SHA256(app client secret, raw body)
(`webhook_hmac`).

Errors come in three layers, each mapped to an AdapterError a staff member can act on:
- HTTP: 401 for a wrong or expired token, 402/423 for a frozen or locked shop, 404 for a wrong
  shop address, 429 and 5xx when Shopify is busy;
- top-level GraphQL `errors[]` with HTTP 200: `extensions.code` THROTTLED (retried, and with
  HTTP 429 too), ACCESS_DENIED (a missing access scope), MAX_COST_EXCEEDED, ...;
- `userErrors[]` inside a mutation's payload: business refusals, returned as they are for the
  adapter to attach to the listings they name.

Throttling: every reply carries `extensions.cost` (requested and actual query cost, and the
leaky bucket's `currentlyAvailable` and `restoreRate`). A THROTTLED reply is retried after
`(requested - currentlyAvailable) / restoreRate` seconds (or its Retry-After, if longer), through
HttpCaller's `classify` hook, and pauses the adapter's other calls as long through its gate.
To be refused less often, the client also paces itself: before an operation it waits until the
bucket, as the last reply described it, has refilled enough for that operation's last
requested cost.

Bulk operations (full reads of large shops): `bulk_run_query` starts one, `bulk_operation`
polls it by id, `bulk_cancel` gives it up, and `bulk_result` streams its JSONL file from the
signed URL it completed with, through a session of its own: that URL is on Shopify's file
storage, so the access token never goes with it, and the URL is never logged.

Tokens: with an expiring offline token (one hour) the channel also stores the refresh token and
the app's client id. On HTTP 401 the client trades the refresh token once at
`POST {shop}/admin/oauth/access_token` (JSON `client_id`, `client_secret`,
`grant_type=refresh_token`, `refresh_token`, as Shopify's own app libraries send it), hands the
whole new credentials to `on_credentials_changed` (the refresh token rotates) and repeats the call.
"""

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from channels.adapters.base import AdapterError, CallStats, CredentialsError
from channels.adapters.http import (
    HttpCaller,
    OutgoingRequest,
    RetryAdvice,
    build_session,
    default_classifier,
    parse_retry_after,
)
from channels.adapters.kit import Client
from channels.adapters.paging import IncompleteRead
from channels.adapters.shopify.credentials import ShopifyCredentials

SERVICE = "Shopify"
# Pinned: 2026-04 is the version whose inventory rules this client follows (`changeFromQuantity`
# on every quantity, `@idempotent` on inventory mutations). Move it forward deliberately.
API_VERSION = "2026-04"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
TOKEN_PATH = "/admin/oauth/access_token"
TOKEN_HEADER = "X-Shopify-Access-Token"

Payload = dict[str, Any]

# -- operations (each stays under Shopify's 1,000-point single-query limit; costs noted) --------

PRODUCT_FIELDS = "id title status updatedAt hasOnlyDefaultVariant"
VARIANT_FIELDS = "id sku title price inventoryQuantity"
PAGE_INFO = "pageInfo { hasNextPage endCursor }"

CHECK = """
query CheckCredentials($locationId: ID!) {
  shop { name myshopifyDomain }
  location(id: $locationId) { id name isActive }
}
"""

# 2 + first × (1 + 2 + variantsFirst) + 1: 923 points for 40 products of 20 variants. The
# uncapped count of the same search (`limit: null`, API 2025-07 on) is what the pager checks
# its read against.
PRODUCTS = f"""
query Products($first: Int!, $after: String, $query: String, $variantsFirst: Int!) {{
  products(first: $first, after: $after, query: $query) {{
    nodes {{
      {PRODUCT_FIELDS}
      variants(first: $variantsFirst) {{ nodes {{ {VARIANT_FIELDS} }} {PAGE_INFO} }}
    }}
    {PAGE_INFO}
  }}
  productsCount(query: $query, limit: null) {{ count precision }}
}}
"""

# 253 points: the variants of one product past its first page.
PRODUCT_VARIANTS = f"""
query ProductVariants($id: ID!, $after: String) {{
  product(id: $id) {{
    {PRODUCT_FIELDS}
    variants(first: 250, after: $after) {{ nodes {{ {VARIANT_FIELDS} }} {PAGE_INFO} }}
  }}
}}
"""

# 5 points per id: a variant's inventory item and product, or a product's only variant.
LOOKUP = """
query Lookup($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename
    ... on ProductVariant { id inventoryItem { id } product { id } }
    ... on Product {
      id hasOnlyDefaultVariant variants(first: 1) { nodes { id inventoryItem { id } } }
    }
  }
}
"""

PRODUCT_SET = f"""
mutation ProductSet($input: ProductSetInput!) {{
  productSet(input: $input, synchronous: true) {{
    product {{
      {PRODUCT_FIELDS}
      variants(first: 250) {{ nodes {{ {VARIANT_FIELDS} }} {PAGE_INFO} }}
    }}
    userErrors {{ field message code }}
  }}
}}
"""

PRODUCT_UPDATE = f"""
mutation ProductUpdate($product: ProductUpdateInput!) {{
  productUpdate(product: $product) {{
    product {{
      {PRODUCT_FIELDS}
      variants(first: 250) {{ nodes {{ id sku }} {PAGE_INFO} }}
    }}
    userErrors {{ field message }}
  }}
}}
"""

VARIANTS_BULK_UPDATE = """
mutation VariantsBulkUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants, allowPartialUpdates: true) {
    productVariants { id price }
    userErrors { field message code }
  }
}
"""

VARIANTS_BULK_CREATE = f"""
mutation VariantsBulkCreate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {{
  productVariantsBulkCreate(productId: $productId, variants: $variants) {{
    product {{ {PRODUCT_FIELDS} }}
    productVariants {{ {VARIANT_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""

PRODUCT_DELETE = """
mutation ProductDelete($input: ProductDeleteInput!) {
  productDelete(input: $input) { deletedProductId userErrors { field message } }
}
"""

# From 2026-04 inventory mutations need an idempotency key: a retried call with the same key is
# applied once, so a reply lost on the way back cannot set a quantity twice.
INVENTORY_SET = """
mutation InventorySet($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { field message code }
  }
}
"""

LINE_FIELDS = (
    "id sku name quantity variant { id } product { id hasOnlyDefaultVariant } "
    "discountedUnitPriceAfterAllDiscountsSet { shopMoney { amount } }"
)
ORDER_FIELDS = f"""
id name createdAt updatedAt cancelledAt cancelReason closed
displayFinancialStatus displayFulfillmentStatus paymentGatewayNames
totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
fulfillments(first: 1) {{ trackingInfo(first: 1) {{ company number }} }}
lineItems(first: $linesFirst) {{ nodes {{ {LINE_FIELDS} }} {PAGE_INFO} }}
"""

# 2 + first × (7 + 5 × linesFirst): 857 points for 15 orders of 10 lines.
ORDERS = f"""
query Orders($first: Int!, $after: String, $query: String, $linesFirst: Int!) {{
  orders(first: $first, after: $after, query: $query) {{
    nodes {{ {ORDER_FIELDS} }}
    {PAGE_INFO}
  }}
}}
"""

# 503 points: the lines of one order past its first page.
ORDER_LINES = f"""
query OrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: 100, after: $after) {{ nodes {{ {LINE_FIELDS} }} {PAGE_INFO} }}
  }}
}}
"""

# -- bulk operations (a full read of the catalog; see adapter.iter_listing_pages) ----------------

# What the paginated PRODUCTS query reads, for every product and variant, plus each product's
# variant count: without grouping, a product's variant lines may come anywhere after it, and
# the count says when all of them have. Bulk queries are not costed; the connections take no
# `first`.
BULK_PRODUCTS = f"""
{{
  products {{
    edges {{
      node {{
        {PRODUCT_FIELDS} variantsCount {{ count }}
        variants {{ edges {{ node {{ {VARIANT_FIELDS} }} }} }}
      }}
    }}
  }}
}}
"""

# groupObjects: false (the default from API 2026-01, said outright): grouping children under
# their parent slows the operation down and makes timeouts likelier; the reader does not need it.
BULK_RUN = """
mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_FIELDS = "id status errorCode objectCount rootObjectCount fileSize url"

# 1 point: one operation by id (with up to five bulk queries running at once from API 2026-01,
# currentBulkOperation may be another one's).
BULK_POLL = f"""
query BulkPoll($id: ID!) {{
  node(id: $id) {{ ... on BulkOperation {{ {BULK_FIELDS} }} }}
}}
"""

BULK_CANCEL = """
mutation BulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}
"""

BULK_CHUNK_BYTES = 1 << 16  # bytes read from the result file at a time

_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
MAX_PACING_WAIT = 30.0  # seconds; a longer wait means the figures are wrong, not the bucket
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class BulkDownload:
    """A bulk result being downloaded: `chunks()` yields its bytes as they arrive (once) and
    closes the connection at the end. Time spent waiting for them is added to `stats`; a
    connection that breaks off mid-file is an IncompleteRead, since what was not received
    cannot be told from what does not exist."""

    def __init__(self, response: requests.Response, stats: CallStats) -> None:
        self._response = response
        self._stats = stats
        self.received = 0  # bytes

    def chunks(self) -> Iterator[bytes]:
        pieces = self._response.iter_content(BULK_CHUNK_BYTES)
        try:
            while True:
                started = time.monotonic()
                try:
                    chunk = next(pieces)
                except StopIteration:
                    return
                finally:
                    self._stats.seconds += time.monotonic() - started
                self.received += len(chunk)
                yield chunk
        except requests.RequestException as exc:
            raise IncompleteRead(
                f"{SERVICE}'s bulk result broke off after {self.received:,} bytes "
                f"({type(exc).__name__})"
            ) from None
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()


def webhook_hmac(*, secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-SHA256` value of a webhook: base64 HMAC-SHA256 of the raw body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def throttle_wait(payload: Mapping[str, Any]) -> float | None:
    """Seconds until the bucket holds the points a throttled query asked for:
    `(requestedQueryCost - currentlyAvailable) / restoreRate`; None if the reply has no cost."""
    cost = (payload.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return None
    if rate <= 0:
        return None
    return max(requested - available, 0.0) / rate


def classify_reply(response: requests.Response) -> RetryAdvice | None:
    """HTTP 429/5xx as usual, plus GraphQL's THROTTLED and INTERNAL_SERVER_ERROR in the body.

    THROTTLED comes with HTTP 200, or 429 as some report (reference §4.6); either way it was
    not processed and the wait is `throttle_wait`, or the reply's Retry-After when that is
    longer (sent sooner than either, the call would be refused again). It is a throttle for
    the gate too: the bucket is the app's in the shop, so the adapter's other calls would only
    spend it while it refills.
    """
    status = response.status_code
    payload = _flagged_body(response) if status in (200, 429) else None
    codes = _error_codes(payload)
    if "THROTTLED" in codes:
        waits = (throttle_wait(payload), parse_retry_after(response.headers.get("Retry-After")))
        after = max((wait for wait in waits if wait is not None), default=None)
        return RetryAdvice("THROTTLED", retry_after=after, unprocessed=True, throttled=True)
    if status == 200 and "INTERNAL_SERVER_ERROR" in codes:
        return RetryAdvice("INTERNAL_SERVER_ERROR")
    return default_classifier(response)


def _flagged_body(response: requests.Response) -> Any:
    """The JSON body of a reply naming THROTTLED or INTERNAL_SERVER_ERROR, else None: most
    replies are spared a second JSON parse."""
    content = response.content
    if b"THROTTLED" not in content and b"INTERNAL_SERVER_ERROR" not in content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class CostBudget:
    """The client's view of Shopify's leaky bucket, from the cost figures of the last reply.

    `delay(operation)` is how long to wait before sending `operation` so the bucket holds the
    points it asked for last time; 0 when nothing is known yet. Thread-safe.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requested: dict[str, float] = {}
        self._available: float | None = None
        self._maximum = 0.0
        self._rate = 0.0
        self._at = 0.0

    def delay(self, operation: str) -> float:
        with self._lock:
            need = self._requested.get(operation)
            if need is None or self._available is None or self._rate <= 0:
                return 0.0
            refilled = self._available + (self._clock() - self._at) * self._rate
            projected = min(self._maximum or refilled, refilled)
            return min(max(need - projected, 0.0) / self._rate, MAX_PACING_WAIT)

    def record(self, operation: str, payload: Mapping[str, Any]) -> None:
        cost = (payload.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            requested = float(cost["requestedQueryCost"])
            available = float(status["currentlyAvailable"])
            maximum = float(status["maximumAvailable"])
            rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return
        with self._lock:
            self._requested[operation] = requested
            self._available, self._maximum, self._rate = available, maximum, rate
            self._at = self._clock()


class ShopifyClient(Client[ShopifyCredentials]):
    """Calls one shop's GraphQL Admin API. A token refresh happens once for all threads that
    were refused with the same token."""

    classify_reply = staticmethod(classify_reply)

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **settings: Any) -> None:
        super().__init__(**settings)
        self._sleep = sleep
        self.budget = CostBudget()
        self._downloads: HttpCaller | None = None  # bulk results, built when first needed
        session = self._caller.session
        # The token travels as a session header (requests are built without headers); a
        # redirect must then never be followed, or the token would go to the other host.
        session.headers[TOKEN_HEADER] = self.access_token()
        session.hooks["response"].append(_stop_redirects)

    # -- shop ------------------------------------------------------------------------------

    def check(self, *, location_id: str) -> Payload:
        """`shop {name}` and the location omni stocks (null when the shop has no such one)."""
        return self.execute(CHECK, {"locationId": location_id})

    # -- products --------------------------------------------------------------------------

    def products(
        self, *, first: int, after: str | None, query: str | None, variants_first: int
    ) -> Payload:
        """One page of products (id order), each with its first `variants_first` variants,
        and under `productsCount` the count of every product the search matches."""
        variables = {
            "first": first,
            "after": after,
            "query": query,
            "variantsFirst": variants_first,
        }
        data = self.execute(PRODUCTS, variables)
        return {**_root(data, "products"), "productsCount": data.get("productsCount")}

    def product_variants(self, *, product_id: str, after: str | None) -> Payload | None:
        """The product with its next 250 variants after `after`; None if it is gone."""
        data = self.execute(PRODUCT_VARIANTS, {"id": product_id, "after": after})
        product = data.get("product")
        return product if isinstance(product, dict) else None

    def nodes(self, ids: Sequence[str]) -> list[Payload | None]:
        """Variants and products by gid (at most 250; null for one that does not exist)."""
        return list(self.execute(LOOKUP, {"ids": list(ids)}).get("nodes") or [])

    def product_set(self, product_input: Mapping[str, Any]) -> Payload:
        """Create a product with its options and variants in one call. Not idempotent: only
        throttled replies are retried, so a lost reply never creates it twice."""
        data = self.execute(PRODUCT_SET, {"input": product_input}, idempotent=False)
        return _root(data, "productSet")

    def product_update(self, product: Mapping[str, Any]) -> Payload:
        """Overwrite the given product fields; the product with its variant ids and SKUs."""
        return _root(self.execute(PRODUCT_UPDATE, {"product": product}), "productUpdate")

    def variants_bulk_update(
        self, *, product_id: str, variants: Sequence[Mapping[str, Any]]
    ) -> Payload:
        """Update variants of one product; valid rows apply even when others are refused."""
        variables = {"productId": product_id, "variants": list(variants)}
        return _root(self.execute(VARIANTS_BULK_UPDATE, variables), "productVariantsBulkUpdate")

    def variants_bulk_create(
        self, *, product_id: str, variants: Sequence[Mapping[str, Any]]
    ) -> Payload:
        """Add variants to one product. Not idempotent (see `product_set`)."""
        variables = {"productId": product_id, "variants": list(variants)}
        data = self.execute(VARIANTS_BULK_CREATE, variables, idempotent=False)
        return _root(data, "productVariantsBulkCreate")

    def product_delete(self, *, product_id: str) -> Payload:
        return _root(self.execute(PRODUCT_DELETE, {"input": {"id": product_id}}), "productDelete")

    def inventory_set_quantities(self, input_: Mapping[str, Any], *, key: str) -> Payload:
        """Set quantities (at most 250). `key` is the idempotency key: the same for every
        attempt at one change, new for the next change."""
        variables = {"input": dict(input_), "idempotencyKey": key}
        return _root(self.execute(INVENTORY_SET, variables), "inventorySetQuantities")

    # -- bulk operations -------------------------------------------------------------------

    def bulk_run_query(self, query: str) -> Payload:
        """Start a bulk query; `bulkOperation` (id, status) and `userErrors`. Sent again after
        a lost reply: at worst a second read-only operation starts."""
        return _root(self.execute(BULK_RUN, {"query": query}), "bulkOperationRunQuery")

    def bulk_operation(self, operation_id: str) -> Payload | None:
        """The operation's status, counts and result URL; None if Shopify knows no such one."""
        node = self.execute(BULK_POLL, {"id": operation_id}).get("node")
        return node if isinstance(node, dict) else None

    def bulk_cancel(self, operation_id: str) -> Payload:
        return _root(self.execute(BULK_CANCEL, {"id": operation_id}), "bulkOperationCancel")

    def bulk_result(self, url: str) -> "BulkDownload":
        """Open a completed operation's JSONL result for reading as a stream.

        The URL is a signed link to Shopify's file storage (another host), so it is fetched
        through a session of its own that never carries the access token. Connection failures,
        429 and 5xx are retried as any call; AdapterError when the file cannot be had (an
        expired link answers 4xx). Never logs or reports the URL: its signature is a secret.
        """
        if self._downloads is None:
            session = build_session()
            session.stream = True  # the body is read as it comes, never held whole
            self._downloads = HttpCaller(
                stats=self._caller.stats,
                service=self.service,
                session=session,
                policy=self._caller.policy,
            )
        response = self._downloads.send(lambda: OutgoingRequest("GET", url))
        if response.status_code != 200:
            status = response.status_code
            response.close()
            raise AdapterError(
                f"Shopify's bulk result could not be downloaded (HTTP {status})",
                retryable=status == 429 or status >= 500,
                code=f"http_{status}",
            )
        return BulkDownload(response, self._caller.stats)

    def idle(self, seconds: float) -> None:
        """Wait between polls of a bulk operation; counted as waiting on Shopify."""
        if seconds > 0:
            self._sleep(seconds)
            self._caller.stats.seconds += seconds

    # -- orders ----------------------------------------------------------------------------

    def orders(self, *, first: int, after: str | None, query: str, lines_first: int) -> Payload:
        """One page of orders (id order) matching the search `query`, with their first lines."""
        variables = {"first": first, "after": after, "query": query, "linesFirst": lines_first}
        return _root(self.execute(ORDERS, variables), "orders")

    def order_lines(self, *, order_id: str, after: str | None) -> Payload | None:
        """The next 100 lines of one order; None if the order is not visible."""
        order = self.execute(ORDER_LINES, {"id": order_id, "after": after}).get("order")
        return order if isinstance(order, dict) else None

    # -- transport -------------------------------------------------------------------------

    def execute(
        self, query: str, variables: Mapping[str, Any], *, idempotent: bool = True
    ) -> Payload:
        """The `data` of one GraphQL call; AdapterError for HTTP or top-level GraphQL errors.

        HTTP 401 with a refresh token at hand refreshes the token once and repeats the call.
        """
        operation = _operation(query)
        url = self._graphql_url()
        body = {"query": query, "variables": dict(variables)}

        def build() -> OutgoingRequest:
            return OutgoingRequest("POST", url, json=body)

        self._pace(operation)

        def send(used: dict[str, str]) -> requests.Response:
            used["access_token"] = self.access_token()
            return self._caller.send(build, idempotent=idempotent)

        def expired(response: requests.Response) -> bool:  # asked only when it can refresh
            if response.status_code == 401:
                response.close()
                return True
            return False

        try:
            response = self.with_refresh(send, expired)
        except CredentialsError as exc:  # only the refresh raises it here
            raise CredentialsError(
                f"Shopify refused the access token (HTTP 401), then the token refresh: {exc}",
                code=exc.code,
            ) from None
        payload = _checked(response, operation)
        self.budget.record(operation, payload)
        return dict(payload["data"])

    def _pace(self, operation: str) -> None:
        wait = self.budget.delay(operation)
        if wait > 0:
            self._sleep(wait)
            # Counted as waiting, like HttpCaller's back-off; this adapter calls from one thread.
            self._caller.stats.seconds += wait

    def _graphql_url(self) -> str:
        if "{" in self._base_url or not self._base_url.startswith(("https://", "http://")):
            raise AdapterError(
                "The Shopify channel has no shop address: set its base URL to "
                "https://<shop>.myshopify.com",
                retryable=False,
                code="base_url",
            )
        return self._base_url + GRAPHQL_PATH

    # -- tokens ----------------------------------------------------------------------------

    def exchange_refresh_token(self, current: ShopifyCredentials) -> ShopifyCredentials:
        """POST the refresh token to the shop's token endpoint; the new pair. Not retried after
        a lost reply: the old refresh token may already be spent."""
        body = {
            "client_id": current.client_id,
            "client_secret": current.client_secret.get_secret_value(),
            "grant_type": "refresh_token",
            "refresh_token": current.refresh_token.get_secret_value(),
        }
        url = self._graphql_url().removesuffix(GRAPHQL_PATH) + TOKEN_PATH
        response = self._caller.send(
            lambda: OutgoingRequest("POST", url, json=body), idempotent=False
        )
        payload = _json_object(response)
        if response.status_code != 200:
            raise _refresh_error(response.status_code, payload)
        access_token = str(payload.get("access_token") or "")
        refresh_token = str(payload.get("refresh_token") or "")
        if not access_token or not refresh_token:
            raise AdapterError(
                "Shopify answered the token refresh without a new token pair",
                retryable=False,
                code="refresh",
            )
        return current.with_tokens(access_token=access_token, refresh_token=refresh_token)

    def refresh_access_token(self) -> ShopifyCredentials:
        renewed = super().refresh_access_token()
        self._caller.session.headers[TOKEN_HEADER] = renewed.access_token.get_secret_value()
        return renewed

    def can_refresh(self) -> bool:
        return super().can_refresh() and bool(self._credentials.client_id)


# -- replies -----------------------------------------------------------------------------------


def _checked(response: requests.Response, operation: str) -> Payload:
    """A GraphQL reply whose `data` is an object, or the AdapterError its HTTP status or
    top-level `errors` call for."""
    status = response.status_code
    if status != 200:
        raise _http_error(response, operation)
    payload = _json_object(response)
    errors = payload.get("errors")
    if errors:
        raise graphql_error(errors, operation)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise AdapterError(
            f"Shopify answered {operation} without data: try again later",
            retryable=True,
            code="no_data",
        )
    return payload


def _json_object(response: requests.Response) -> Payload:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        return payload
    if response.status_code == 200:
        raise AdapterError(
            "Shopify answered with a body that is not a JSON object: try again later",
            retryable=True,
            code="http_200",
        )
    return {}


def _http_error(response: requests.Response, operation: str) -> AdapterError:
    status = response.status_code
    said = _said(_json_object(response).get("errors"))
    if status == 401:
        return CredentialsError(
            "Shopify refused the access token (HTTP 401): it is wrong, expired or the app was "
            f"uninstalled; reconnect the shop to issue a new token.{said}",
            code="http_401",
        )
    if status == 403:
        return CredentialsError(
            f"Shopify refused {operation} (HTTP 403): the app lacks a permission; check its "
            f"access scopes in the shop's app settings.{said}",
            code="http_403",
        )
    if status == 402:
        return AdapterError(
            "The Shopify shop is frozen (HTTP 402 Payment Required): the shop owner must settle "
            "the Shopify bill before omni can sync it",
            retryable=False,
            code="http_402",
        )
    if status == 423:
        return AdapterError(
            "The Shopify shop is locked (HTTP 423): contact the shop owner",
            retryable=False,
            code="http_423",
        )
    if status == 404:
        return AdapterError(
            "Shopify has no shop at this address, or no longer serves API version "
            f"{API_VERSION} (HTTP 404): check the channel's base URL "
            "(https://<shop>.myshopify.com)",
            retryable=False,
            code="http_404",
        )
    if status in _REDIRECTS:
        moved = response.headers.get("X-Omni-Redirected-To", "")
        return AdapterError(
            f"Shopify redirected {operation} to {moved or 'another address'}: set the channel's "
            "base URL to the shop's https://<shop>.myshopify.com address",
            retryable=False,
            code=f"http_{status}",
        )
    if status == 429 or status >= 500:
        return AdapterError(
            f"Shopify is busy (HTTP {status} on {operation}): try again in a moment",
            retryable=True,
            code=f"http_{status}",
        )
    return AdapterError(
        f"Shopify refused {operation} (HTTP {status}).{said}",
        retryable=False,
        code=f"http_{status}",
    )


def graphql_error(errors: Any, operation: str) -> AdapterError:
    """The AdapterError for a reply's top-level `errors[]` (its first error decides)."""
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {"message": str(first)}
    code = str((first.get("extensions") or {}).get("code") or "")
    said = f" Shopify said: {str(first.get('message') or '')[:300]}"
    if code == "THROTTLED":
        return AdapterError(
            "Shopify is throttling calls (THROTTLED): the app's query budget is spent for now; "
            "try again in a moment",
            retryable=True,
            code=code,
        )
    if code == "ACCESS_DENIED":
        return CredentialsError(
            f"Shopify denied {operation} (ACCESS_DENIED): the app needs more access scopes "
            f"(products, inventory, orders, locations).{said}",
            code=code,
        )
    if code == "INTERNAL_SERVER_ERROR":
        return AdapterError(
            f"Shopify had an internal error on {operation}: try again later.{said}",
            retryable=True,
            code=code,
        )
    if code == "MAX_COST_EXCEEDED":
        return AdapterError(
            f"Shopify refused {operation} as too expensive (MAX_COST_EXCEEDED).{said}",
            retryable=False,
            code=code,
        )
    return AdapterError(
        f"Shopify refused {operation}{f' ({code})' if code else ''}.{said}",
        retryable=False,
        code=code or "graphql",
    )


def _refresh_error(status: int, payload: Mapping[str, Any]) -> AdapterError:
    error = str(payload.get("error") or "")
    if status == 429 or status >= 500:
        return AdapterError(
            f"Shopify could not refresh the token now (HTTP {status}): try again later",
            retryable=True,
            code=f"http_{status}",
        )
    if error == "invalid_client":
        return CredentialsError(
            "Shopify refused the app's client id or client secret (invalid_client): check them "
            "in the channel's credentials",
            code=error,
        )
    return CredentialsError(
        f"Shopify refused the refresh token ({error or f'HTTP {status}'}): it was used already, "
        "has expired or the app was uninstalled; reconnect the shop to issue new tokens",
        code=error or f"http_{status}",
    )


def _root(data: Payload, field: str) -> Payload:
    value = data.get(field)
    if not isinstance(value, dict):
        raise AdapterError(
            f"Shopify answered without {field}: try again later", retryable=True, code="no_data"
        )
    return value


def _error_codes(payload: Any) -> set[str]:
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return set()
    return {
        str((error.get("extensions") or {}).get("code") or "")
        for error in errors
        if isinstance(error, dict)
    }


def _said(errors: Any) -> str:
    """Shopify's own words from an `errors` value (a string, a list or an object)."""
    if not errors:
        return ""
    text = errors if isinstance(errors, str) else json.dumps(errors)[:300]
    return f" Shopify said: {text}"


def _operation(query: str) -> str:
    match = _OPERATION.search(query)
    return match.group(1) if match else "the query"


def _stop_redirects(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A response hook that keeps requests from following a redirect (which would carry the
    token header along); the caller then reports the new address."""
    location = response.headers.pop("Location", None)
    if location is not None:
        response.headers["X-Omni-Redirected-To"] = urlsplit(location).netloc
