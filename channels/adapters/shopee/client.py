"""A thin HTTP client of Shopee Open Platform v2: one method per endpoint, JSON in and out.

Signing (shared/reference/marketplace-apis.md §1.1): HMAC-SHA256 keyed with the partner key,
lowercase hex, sent as the `sign` query parameter, over the plain concatenation
`partner_id + api_path + timestamp` for public calls and
`partner_id + api_path + timestamp + access_token + shop_id` for shop calls.
Every call carries `partner_id`, `timestamp` and `sign` in the query; shop calls add
`access_token` and `shop_id`. GET business parameters go in the query, POST ones in a JSON body.

Errors: Shopee answers `{"request_id", "error", "message", "warning"}` and `error` is "" on
success, whatever the HTTP status, so we branch on `error`. Failures become `AdapterError`, or
`CredentialsError` when the keys or tokens are at fault, with a message a staff member can act on.

Tokens: when a shop call answers `error_auth` and a refresh token is known, the client refreshes
once (`POST /api/v2/auth/access_token/get`), hands the new pair to `on_credentials_changed` so it
is persisted (a refresh token is single-use) and repeats the call.
"""

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from channels.adapters import kit
from channels.adapters.base import AdapterError, CredentialsError
from channels.adapters.http import (
    OutgoingRequest,
    RetryAdvice,
    default_classifier,
    parse_retry_after,
)
from channels.adapters.shopee.credentials import ShopeeCredentials

SERVICE = "Shopee"

SHOP_INFO = "/api/v2/shop/get_shop_info"
CATEGORY = "/api/v2/product/get_category"
CHANNEL_LIST = "/api/v2/logistics/get_channel_list"
UPLOAD_IMAGE = "/api/v2/media_space/upload_image"
ITEM_LIST = "/api/v2/product/get_item_list"
ITEM_BASE_INFO = "/api/v2/product/get_item_base_info"
MODEL_LIST = "/api/v2/product/get_model_list"
ADD_ITEM = "/api/v2/product/add_item"
INIT_TIER_VARIATION = "/api/v2/product/init_tier_variation"
UPDATE_STOCK = "/api/v2/product/update_stock"
UPDATE_PRICE = "/api/v2/product/update_price"
REFRESH_TOKEN = "/api/v2/auth/access_token/get"
UPDATE_ITEM = "/api/v2/product/update_item"
UPDATE_TIER_VARIATION = "/api/v2/product/update_tier_variation"
ADD_MODEL = "/api/v2/product/add_model"
UNLIST_ITEM = "/api/v2/product/unlist_item"
DELETE_ITEM = "/api/v2/product/delete_item"
ORDER_LIST = "/api/v2/order/get_order_list"
ORDER_DETAIL = "/api/v2/order/get_order_detail"
TRACKING_NUMBER = "/api/v2/logistics/get_tracking_number"

# Errors meaning "Shopee did not do it, ask again later": retried by HttpCaller, and still
# retryable for the caller if every attempt got them.
THROTTLED = frozenset({"error_rate_limit"})
TRANSIENT = frozenset({"error_server", "error_inner", "error_busy", "error_network"})
REFUSED = frozenset({"error_auth", "error_sign", "error_permission"})  # no retry can help

Payload = dict[str, Any]


def shopee_sign(
    *,
    partner_key: str,
    partner_id: int,
    path: str,
    timestamp: int,
    access_token: str = "",
    shop_id: int | None = None,
) -> str:
    """The `sign` parameter: shop-call base string when `shop_id` is given, else public."""
    base = f"{partner_id}{path}{timestamp}"
    if shop_id is not None:
        base += f"{access_token}{shop_id}"
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def classify_reply(response: requests.Response) -> RetryAdvice | None:
    """Shopee's `error` decides whenever the body names one, whatever the HTTP status (reference
    §1.7: branch on `error`, not HTTP status): throttling is retried and told to the gate, and
    server errors are retried, with HTTP 200, 403 or 429 alike and after the reply's Retry-After
    if it sent one; a refused token, signature or permission is not retried, even with HTTP 5xx
    (`error_auth` goes to the token refresh at once). Any other code is judged by its status, as
    a body naming no error is: 429 and 5xx are retried."""
    error = _error_code(response)
    if not error:
        return default_classifier(response)
    after = parse_retry_after(response.headers.get("Retry-After"))
    if error in THROTTLED:
        return RetryAdvice(error, retry_after=after, unprocessed=True, throttled=True)
    if error in TRANSIENT:
        return RetryAdvice(error, retry_after=after)
    if error in REFUSED:
        return None
    return default_classifier(response)


def _error_code(response: requests.Response) -> str:
    # Below HTTP 400 only THROTTLED and TRANSIENT codes change the advice, and every one starts
    # with "error_": most replies are spared a second JSON parse. A failed status is always
    # read, since any code in its body (`order.order_list_invalid_time` too) overrides it.
    if response.status_code < 400 and b'"error_' not in response.content:
        return ""
    try:
        payload = response.json()
    except ValueError:
        return ""
    return str(payload.get("error") or "") if isinstance(payload, dict) else ""


class ShopeeClient(kit.Client[ShopeeCredentials]):
    """Calls Shopee for one shop. Thread-safe: a token refresh happens once for all threads."""

    classify_reply = staticmethod(classify_reply)

    # -- shop ------------------------------------------------------------------------------

    def get_shop_info(self) -> Payload:
        """The shop's name, region and status. Shopee answers this one at the top level."""
        return self._shop_call("GET", SHOP_INFO)

    # -- catalogue setup -------------------------------------------------------------------

    def get_category(self, *, language: str = "en") -> Payload:
        """`category_list[]` with `category_id`, `parent_category_id`, `has_children` and names."""
        return _response(self._shop_call("GET", CATEGORY, params={"language": language}))

    def get_channel_list(self) -> Payload:
        """`logistics_channel_list[]`: the shop's shipping channels and whether each is enabled."""
        return _response(self._shop_call("GET", CHANNEL_LIST))

    def upload_image(self, *, filename: str, content: bytes, content_type: str) -> Payload:
        """Upload one image to the media space (public signature, multipart field `image`)."""
        files = {"image": (filename, content, content_type)}
        payload = self._public_call("POST", UPLOAD_IMAGE, files=files, data={"scene": "normal"})
        return _response(payload)

    # -- products --------------------------------------------------------------------------

    def get_item_list(
        self,
        *,
        offset: int,
        page_size: int,
        item_status: Sequence[str],
        update_time_from: int | None = None,
        update_time_to: int | None = None,
    ) -> Payload:
        """One page of `item[] {item_id, item_status, update_time}`; `item_status` repeats."""
        params: dict[str, Any] = {
            "offset": offset,
            "page_size": page_size,
            "item_status": list(item_status),
        }
        if update_time_from is not None:
            params["update_time_from"] = update_time_from
        if update_time_to is not None:
            params["update_time_to"] = update_time_to
        return _response(self._shop_call("GET", ITEM_LIST, params=params))

    def get_item_base_info(self, item_ids: Sequence[int]) -> Payload:
        """`item_list[]` for at most 50 items (Shopee's limit; more is refused)."""
        params = {"item_id_list": ",".join(str(item_id) for item_id in item_ids)}
        return _response(self._shop_call("GET", ITEM_BASE_INFO, params=params))

    def get_model_list(self, item_id: int) -> Payload:
        """`tier_variation[]` and `model[]` of one item that has models."""
        return _response(self._shop_call("GET", MODEL_LIST, params={"item_id": item_id}))

    def add_item(self, body: Mapping[str, Any]) -> Payload:
        """Create an item. Not idempotent: only throttled replies are retried."""
        return _response(self._shop_call("POST", ADD_ITEM, body=body, idempotent=False))

    def init_tier_variation(
        self,
        *,
        item_id: int,
        tier_variation: Sequence[Mapping[str, Any]],
        model: Sequence[Mapping[str, Any]],
    ) -> Payload:
        """Give an item without models its option tiers and models (at most two tiers)."""
        body = {"item_id": item_id, "tier_variation": tier_variation, "model": model}
        payload = self._shop_call("POST", INIT_TIER_VARIATION, body=body, idempotent=False)
        return _response(payload)

    def update_stock(self, *, item_id: int, stock_list: Sequence[Mapping[str, Any]]) -> Payload:
        """Absolute seller stock for 1–50 models of one item (model_id 0: the item itself)."""
        body = {"item_id": item_id, "stock_list": stock_list}
        return _response(self._shop_call("POST", UPDATE_STOCK, body=body))

    def update_price(self, *, item_id: int, price_list: Sequence[Mapping[str, Any]]) -> Payload:
        """Original price for 1–50 models of one item (model_id 0: the item itself)."""
        body = {"item_id": item_id, "price_list": price_list}
        return _response(self._shop_call("POST", UPDATE_PRICE, body=body))

    def update_item(self, body: Mapping[str, Any]) -> Payload:
        """Overwrite the item fields present in `body` (absolute values: safe to retry)."""
        return _response(self._shop_call("POST", UPDATE_ITEM, body=body))

    def update_tier_variation(
        self, *, item_id: int, tier_variation: Sequence[Mapping[str, Any]]
    ) -> Payload:
        """Replace an item's option lists (existing models keep their tier indexes)."""
        body = {"item_id": item_id, "tier_variation": tier_variation}
        return _response(self._shop_call("POST", UPDATE_TIER_VARIATION, body=body))

    def add_model(self, *, item_id: int, model_list: Sequence[Mapping[str, Any]]) -> Payload:
        """Add 1–50 models to an item with tiers. Not idempotent: only throttling is retried."""
        body = {"item_id": item_id, "model_list": model_list}
        return _response(self._shop_call("POST", ADD_MODEL, body=body, idempotent=False))

    def unlist_item(self, *, item_id: int, unlist: bool) -> Payload:
        body = {"item_list": [{"item_id": item_id, "unlist": unlist}]}
        return _response(self._shop_call("POST", UNLIST_ITEM, body=body))

    def delete_item(self, *, item_id: int) -> Payload:
        return _response(self._shop_call("POST", DELETE_ITEM, body={"item_id": item_id}))

    # -- tokens ----------------------------------------------------------------------------

    def exchange_refresh_token(self, current: ShopeeCredentials) -> ShopeeCredentials:
        """Trade the refresh token for a new token pair (`kit.Client.refresh_access_token`
        persists it through the callback before it is used)."""
        body = {
            "refresh_token": current.refresh_token.get_secret_value(),
            "partner_id": current.partner_id,
            "shop_id": current.shop_id,
        }
        try:
            # Not idempotent: a refresh token works once, so a lost reply must not be re-sent.
            payload = self._public_call("POST", REFRESH_TOKEN, body=body, idempotent=False)
        except AdapterError as exc:
            # A wrong key keeps its own message; anything else refused here is the token.
            if exc.retryable or exc.code == "error_sign":
                raise
            raise CredentialsError(
                f"Shopee refused the refresh token ({exc.code}): it was used already or has "
                "expired; reconnect the shop in Shopee to issue new tokens",
                code=exc.code,
            ) from exc
        if not payload.get("access_token") or not payload.get("refresh_token"):
            raise AdapterError(
                "Shopee answered the token refresh without new tokens", retryable=False, code="auth"
            )
        return current.with_tokens(
            access_token=str(payload["access_token"]), refresh_token=str(payload["refresh_token"])
        )

    def no_refresh_token(self) -> CredentialsError:
        """Shopee's own wording and code for an expired token that cannot be refreshed."""
        return CredentialsError(
            "Shopee refused the access token (error_auth) and the channel has no refresh "
            "token: reconnect the shop in Shopee to issue new tokens",
            code="error_auth",
        )

    # -- plumbing --------------------------------------------------------------------------

    def _shop_call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Payload:
        def send(used: dict[str, str]) -> Payload:
            return self._send(method, path, params, body, used=used, idempotent=idempotent)

        return _checked(self.with_refresh(send, _token_expired), path)

    def _public_call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Payload:
        def build() -> OutgoingRequest:
            creds = self._credentials
            timestamp = int(self._clock())
            sign = shopee_sign(
                partner_key=creds.partner_key.get_secret_value(),
                partner_id=creds.partner_id,
                path=path,
                timestamp=timestamp,
            )
            query = {"partner_id": creds.partner_id, "timestamp": timestamp, "sign": sign}
            url = self._base_url + path
            return OutgoingRequest(method, url, params=query, json=body, files=files, data=data)

        response = self._caller.send(build, idempotent=idempotent)
        return _checked(_decoded(response, path), path)

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        *,
        used: dict[str, str],
        idempotent: bool,
    ) -> Payload:
        def build() -> OutgoingRequest:
            creds = self._credentials  # read per attempt: a refresh may have replaced it
            access_token = creds.access_token.get_secret_value()
            used["access_token"] = access_token
            timestamp = int(self._clock())
            sign = shopee_sign(
                partner_key=creds.partner_key.get_secret_value(),
                partner_id=creds.partner_id,
                path=path,
                timestamp=timestamp,
                access_token=access_token,
                shop_id=creds.shop_id,
            )
            query: dict[str, Any] = {
                "partner_id": creds.partner_id,
                "timestamp": timestamp,
                "sign": sign,
                "access_token": access_token,
                "shop_id": creds.shop_id,
            }
            if method == "GET" and params:
                query.update(params)
            json_body = body if method == "POST" else None
            return OutgoingRequest(method, self._base_url + path, params=query, json=json_body)

        return _decoded(self._caller.send(build, idempotent=idempotent), path)

    # -- orders ----------------------------------------------------------------------------

    def get_order_list(
        self,
        *,
        time_from: int,
        time_to: int,
        page_size: int,
        cursor: str = "",
        time_range_field: str = "update_time",
    ) -> Payload:
        """One page of `order_list[] {order_sn, order_status}` with `more` and `next_cursor`.

        Shopee refuses a window wider than 15 days (`order.order_list_invalid_time`): callers
        split longer ranges. Both ends are Unix seconds and inclusive.
        """
        params: dict[str, Any] = {
            "time_range_field": time_range_field,
            "time_from": time_from,
            "time_to": time_to,
            "page_size": page_size,
            "response_optional_fields": "order_status",
        }
        if cursor:
            params["cursor"] = cursor
        return _response(self._shop_call("GET", ORDER_LIST, params=params))

    def get_order_detail(self, order_sns: Sequence[str], *, fields: Sequence[str]) -> Payload:
        """`order_list[]` for 1–50 orders, with the optional `fields` Shopee must add."""
        params = {
            "order_sn_list": ",".join(order_sns),
            "response_optional_fields": ",".join(fields),
        }
        return _response(self._shop_call("GET", ORDER_DETAIL, params=params))

    def get_tracking_number(self, order_sn: str) -> Payload:
        """`tracking_number` of an order's parcel ("" until the courier has issued one)."""
        params = {"order_sn": order_sn}
        return _response(self._shop_call("GET", TRACKING_NUMBER, params=params))


def _token_expired(payload: Payload) -> bool:
    return payload.get("error") == "error_auth"


def _decoded(response: requests.Response, path: str) -> Payload:
    """The JSON object Shopee answered, prices as Decimal; AdapterError if there is none, or
    for a failed HTTP status whose body names no `error`."""
    return kit.reply_object(
        response,
        service=SERVICE,
        endpoint=_endpoint(path),
        names_error=lambda payload: bool(payload.get("error")),
    )


def _checked(payload: Payload, path: str) -> Payload:
    """`payload` itself when `error` is empty; otherwise the matching AdapterError."""
    error = str(payload.get("error") or "")
    if not error:
        return payload
    raise shopee_error(error, str(payload.get("message") or ""), endpoint=_endpoint(path))


def shopee_error(error: str, message: str, *, endpoint: str) -> AdapterError:
    """Turn Shopee's `error`/`message` pair into an exception that tells staff what to do."""
    said = f" Shopee said: {message}" if message else ""
    lowered = message.lower()
    if error == "error_sign":
        return CredentialsError(
            f"Shopee refused the signature (error_sign): check the partner key.{said}", code=error
        )
    if error == "error_auth":
        return CredentialsError(
            "Shopee refused the access token (error_auth): reconnect the shop in Shopee to issue "
            f"new tokens, and check the shop id.{said}",
            code=error,
        )
    if error == "error_permission":
        return CredentialsError(
            f"Shopee does not allow this app to call {endpoint} for this shop "
            f"(error_permission): check the app's permissions and the shop's authorization.{said}",
            code=error,
        )
    if error == "error_param" and ("partner_id" in lowered or "partner id" in lowered):
        return CredentialsError(
            f"Shopee does not know this partner id (error_param): check the partner id.{said}",
            code=error,
        )
    if error == "error_param" and "timestamp" in lowered:
        return AdapterError(
            f"Shopee refused the request time (error_param): check this server's clock.{said}",
            retryable=False,
            code=error,
        )
    if error in THROTTLED:
        return AdapterError(
            f"Shopee is throttling calls ({error}): try again in a moment.{said}",
            retryable=True,
            code=error,
        )
    if error == "error_limit":
        return AdapterError(
            "Shopee's daily call quota is used up (error_limit): it resets at midnight UTC+8."
            + said,
            retryable=True,
            code=error,
        )
    if error in TRANSIENT:
        return AdapterError(
            f"Shopee had an internal error on {endpoint} ({error}): try again later.{said}",
            retryable=True,
            code=error,
        )
    return AdapterError(f"Shopee refused {endpoint} ({error}).{said}", retryable=False, code=error)


def _response(payload: Payload) -> Payload:
    """The `response` object of a successful call (Shopee may leave it out when empty)."""
    response = payload.get("response")
    return response if isinstance(response, dict) else {}


def _endpoint(path: str) -> str:
    return path.removeprefix("/api/v2/")
