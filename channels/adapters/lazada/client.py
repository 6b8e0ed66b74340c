"""A thin HTTP client of the Lazada Open Platform: one method per endpoint, JSON answers.

Hosts (shared/reference/marketplace-apis.md §3.1): one API host per country,
`https://api.lazada.<tld>/rest`, and the channel's base URL picks it (a token works only on its
own country's host). Tokens are refreshed on `https://auth.lazada.com/rest`; against any other
host (a local emulator, a proxy) the refresh goes to the base URL itself.

Signing (§3.1): every call carries `app_key`, `timestamp` (milliseconds), `sign_method=sha256`,
`sign` and, for seller calls, `access_token`. The signature is the UPPERCASE hex HMAC-SHA256,
keyed with the app secret, of the API path followed by every other parameter (system and
business, `sign` excluded) sorted by name in ASCII order and concatenated as `name + value`,
with no separator and no URL-encoding. Parameters with an empty value are never sent, so the
"skip empty values" rule never has to be relied on. GET calls put every parameter in the
query; POST calls send every parameter, `sign` included, form-encoded in the body, as the
official SDK does. Structured inputs go in one parameter (`payload`, `apiRequestBody`) as an
XML or JSON string.

Errors: Lazada answers `{"code", "type", "message", "request_id", "detail"}` with `code` "0" on
success, whatever the HTTP status, so we branch on `code`. Throttling (901, 4154, ApiCallLimit,
E1002, SellerCallLimit) and 4147 (another edit of the item under way) are retried by
`HttpCaller` through `classify_reply`; the rest becomes an `AdapterError`, or a
`CredentialsError` when the keys or tokens are at fault, with a message a staff member can act
on.

Tokens: when a seller call answers `IllegalAccessToken` and a refresh token is known, the
client refreshes once (`/auth/token/refresh`), hands the whole new credentials to
`on_credentials_changed` so they are persisted, and repeats the call.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import requests

from channels.adapters import kit
from channels.adapters.base import AdapterError, CredentialsError
from channels.adapters.convert import decimal_text
from channels.adapters.http import OutgoingRequest, RetryAdvice, default_classifier
from channels.adapters.lazada.credentials import LazadaCredentials

SERVICE = "Lazada"

# Where tokens are refreshed for every country (§3.1).
AUTH_URL = "https://auth.lazada.com/rest"
API_HOSTS = frozenset(
    {
        "api.lazada.sg",
        "api.lazada.com.my",
        "api.lazada.co.th",
        "api.lazada.vn",
        "api.lazada.com.ph",
        "api.lazada.co.id",
    }
)

SELLER = "/seller/get"
CATEGORY_TREE = "/category/tree/get"
IMAGE_MIGRATE = "/image/migrate"
PRODUCTS = "/products/get"
PRODUCT_ITEM = "/product/item/get"
PRODUCT_CREATE = "/product/create"
PRODUCT_UPDATE = "/product/update"
PRODUCT_DEACTIVATE = "/product/deactivate"
PRODUCT_REMOVE = "/product/remove"
PRICE_QUANTITY = "/product/price_quantity/update"
ORDERS = "/orders/get"
ORDER = "/order/get"
ORDERS_ITEMS = "/orders/items/get"
TOKEN_REFRESH = "/auth/token/refresh"

SUCCESS = "0"
# "Not done, ask again shortly" (§3.6): retried by HttpCaller, retryable for the caller after.
THROTTLED = frozenset(
    {"901", "4154", "ApiCallLimit", "E1002", "SellerCallLimit", "HOT_KEY_BLOCK_EXCEPTION"}
)
# An app-level ban lasts long: retrying within the same call would only extend it.
APP_BANNED = "AppApiCallLimit"
# Lazada's own transient failures; the request may or may not have been processed.
TRANSIENT = frozenset(
    {"E006", "E0006", "1000", "513", "ServiceTimeout", "SYS_ERROR", "SELLER_SERVICE_FAIL"}
)
# Overview codes: with a non-empty `detail` they carry per-SKU business failures; without one
# they are the occasional transient failure the FAQ describes.
OVERVIEW = frozenset({"500", "501", "503", "E500", "E501"})
# Another edit of the same item is still being applied (§3.3): nothing was changed, and the
# call succeeds once that edit is done.
EDIT_UNDER_WAY = "4147"
NOT_PERMITTED = frozenset(
    {"InsufficientPermission", "SELLER_NOT_PERMITTED", "E0501", "EDIT_ITEM_NOT_BELONG_SELLER"}
)

Payload = dict[str, Any]


def lazada_sign(*, app_secret: str, path: str, params: Mapping[str, Any]) -> str:
    """The `sign` parameter: UPPERCASE hex HMAC-SHA256 of path + sorted name/value pairs.

    `params` are every parameter that will be sent (system and business); `sign` itself and
    empty values are left out, as the documentation says.
    """
    pairs = "".join(
        f"{name}{value}"
        for name, value in sorted(params.items())
        if name != "sign" and value is not None and str(value) != ""
    )
    digest = hmac.new(app_secret.encode(), (path + pairs).encode(), hashlib.sha256)
    return digest.hexdigest().upper()


def auth_url_for(base_url: str) -> str:
    """Where tokens are refreshed: Lazada's auth host for its API hosts, else the base URL."""
    host = (urlsplit(base_url).hostname or "").lower()
    return AUTH_URL if host in API_HOSTS else base_url.rstrip("/")


def _code_and_detail(response: requests.Response) -> tuple[str, bool]:
    # Most replies are successes: spare them a second JSON parse.
    if b'"code":"0"' in response.content:
        return SUCCESS, False
    try:
        payload = response.json()
    except ValueError:
        return "", False
    if not isinstance(payload, dict):
        return "", False
    return str(payload.get("code", "")), bool(payload.get("detail"))


def to_xml(root: str, tree: Mapping[str, Any]) -> str:
    """`tree` as Lazada's XML payload under `<root>`: a list repeats its parent's tag.

    `{"Product": {"Skus": {"Sku": [a, b]}}}` becomes
    `<Product><Skus><Sku>…</Sku><Sku>…</Sku></Skus></Product>`. Tag names are ours (fixed
    field names); text is escaped.
    """
    return f'<?xml version="1.0" encoding="UTF-8" ?><{root}>{_xml_body(tree)}</{root}>'


def _xml_body(tree: Mapping[str, Any]) -> str:
    parts = []
    for tag, value in tree.items():
        for one in value if isinstance(value, list) else [value]:
            inner = _xml_body(one) if isinstance(one, Mapping) else escape(_text(one))
            parts.append(f"<{tag}>{inner}</{tag}>")
    return "".join(parts)


def _text(value: Any) -> str:
    return decimal_text(value) if isinstance(value, Decimal) else str(value)


class LazadaClient(kit.Client[LazadaCredentials]):
    """Calls Lazada for one seller. Thread-safe: a token refresh happens once for all threads.

    `auth_url` overrides where tokens are refreshed (by default `auth_url_for(base_url)`).
    """

    def __init__(self, *, auth_url: str | None = None, **settings: Any) -> None:
        super().__init__(**settings)
        self._auth_url = (auth_url or auth_url_for(self._base_url)).rstrip("/")

    @staticmethod
    def classify_reply(response: requests.Response) -> RetryAdvice | None:
        """HTTP 429/5xx as usual, plus Lazada's throttling and transient codes in a 200 body."""
        advice = default_classifier(response)
        if advice is not None or response.status_code != 200:
            return advice
        code, detail = _code_and_detail(response)
        if code in THROTTLED:
            # "Request too frequent: retry in the next second" (901); the server did nothing.
            return RetryAdvice(
                code, retry_after=1.0 if code == "901" else None, unprocessed=True, throttled=True
            )
        if code in TRANSIENT or (code in OVERVIEW and not detail):
            return RetryAdvice(code)
        if code == EDIT_UNDER_WAY:
            # A push from another worker is editing the item: sent again after a short wait.
            return RetryAdvice(code, unprocessed=True)
        return None

    # -- seller, categories, images ----------------------------------------------------------

    def get_seller(self) -> Payload:
        """The seller's profile (`name`, `seller_id`, `short_code`, ...): one cheap call."""
        return _data(self._seller_call("GET", SELLER))

    def get_category_tree(self) -> list[Any]:
        """Every category, as nested `{category_id, name, leaf, children[]}` nodes."""
        data = self._seller_call("GET", CATEGORY_TREE).get("data")
        return data if isinstance(data, list) else []

    def migrate_image(self, url: str) -> Payload:
        """Copy an image from `url` to Lazada's image host; `image {url, hash_code}`.

        Lazada accepts only its own image URLs in products, so every POS image goes through
        here once per upload. Idempotent: the same URL gives the same image.
        """
        payload = to_xml("Request", {"Image": {"Url": url}})
        return _data(self._seller_call("POST", IMAGE_MIGRATE, {"payload": payload}))

    # -- products ----------------------------------------------------------------------------

    def get_products(
        self,
        *,
        product_filter: str,
        offset: int,
        limit: int,
        update_after: str = "",
        create_after: str = "",
        create_before: str = "",
    ) -> Payload:
        """One page: `total_products` (matching the whole filter) and `products[]`."""
        params = {
            "filter": product_filter,
            "offset": offset,
            "limit": limit,
            "update_after": update_after,
            "create_after": create_after,
            "create_before": create_before,
        }
        return _data(self._seller_call("GET", PRODUCTS, params))

    def get_product_item(self, item_id: str) -> Payload:
        """One product with all its SKUs, as in `/products/get`."""
        return _data(self._seller_call("GET", PRODUCT_ITEM, {"item_id": item_id}))

    def create_product(self, product: Mapping[str, Any]) -> Payload:
        """Create a product (or, with `AssociatedSku`, add SKUs to one); `item_id`, `sku_list`.

        Not idempotent: only throttled replies are retried.
        """
        payload = json.dumps({"Request": {"Product": product}}, default=_text)
        return _data(
            self._seller_call("POST", PRODUCT_CREATE, {"payload": payload}, idempotent=False)
        )

    def update_product(self, product: Mapping[str, Any]) -> Payload:
        """Overwrite the given fields of a product and of the SKUs named by `SkuId`."""
        payload = json.dumps({"Request": {"Product": product}}, default=_text)
        return _data(self._seller_call("POST", PRODUCT_UPDATE, {"payload": payload}))

    def deactivate_product(self, item_id: str) -> Payload:
        """Take every SKU of a product offline (`apiRequestBody`, by ItemId: Lazada no longer
        takes seller SKUs here)."""
        body = json.dumps({"Request": {"Product": {"ItemId": item_id}}})
        return _data(self._seller_call("POST", PRODUCT_DEACTIVATE, {"apiRequestBody": body}))

    def remove_skus(self, sku_refs: Sequence[str]) -> Payload:
        """Delete up to 50 SKUs, each named `SkuId_<item id>_<sku id>`.

        By SKU id rather than `seller_sku_list`: a seller SKU may be blank, or shared by two
        products, and would then delete the wrong listing or none.
        """
        params = {"sku_id_list": json.dumps(list(sku_refs))}
        return _data(self._seller_call("POST", PRODUCT_REMOVE, params))

    def update_price_quantity(self, skus: Sequence[Mapping[str, Any]]) -> list[Payload]:
        """Set `Quantity` and/or `Price` of at most 50 SKUs (`ItemId` + `SkuId` each).

        The per-SKU failures Lazada reports in `detail[]` under an overview code (500/501) are
        returned, not raised: the SKUs not named there were updated. An empty list: all were.
        """
        payload = to_xml("Request", {"Product": {"Skus": {"Sku": list(skus)}}})
        answer = self._send_with_refresh("POST", PRICE_QUANTITY, {"payload": payload})
        detail = answer.get("detail")
        code = str(answer.get("code", ""))
        if code in OVERVIEW and isinstance(detail, list) and detail:
            return [row for row in detail if isinstance(row, dict)]
        _checked(answer, PRICE_QUANTITY)
        return []

    # -- orders ------------------------------------------------------------------------------

    def get_orders(
        self, *, update_after: str, update_before: str, offset: int, limit: int
    ) -> Payload:
        """One page of orders updated in the window, oldest change first: `countTotal`,
        `orders[]` (headers only, with the distinct item `statuses`)."""
        params = {
            "update_after": update_after,
            "update_before": update_before,
            "sort_by": "updated_at",
            "sort_direction": "ASC",
            "offset": offset,
            "limit": limit,
        }
        return _data(self._seller_call("GET", ORDERS, params))

    def get_order(self, order_id: str) -> Payload:
        """One order's header; AdapterError code "16" when Lazada does not know it."""
        return _data(self._seller_call("GET", ORDER, {"order_id": order_id}))

    def get_orders_items(self, order_ids: Sequence[str]) -> list[Any]:
        """`[{order_id, order_number, order_items[]}]` for at most 50 orders."""
        params = {"order_ids": json.dumps([int(i) if i.isdigit() else i for i in order_ids])}
        data = self._seller_call("GET", ORDERS_ITEMS, params).get("data")
        return data if isinstance(data, list) else []

    # -- tokens ------------------------------------------------------------------------------

    def exchange_refresh_token(self, current: LazadaCredentials) -> LazadaCredentials:
        """Trade the refresh token for a new pair on the auth host (`/auth/token/refresh`).

        Not idempotent: a lost reply may have used up the refresh token already.
        """
        refresh_token = current.refresh_token.get_secret_value()
        answer = self._send(
            "POST",
            TOKEN_REFRESH,
            {"refresh_token": refresh_token},
            seller=False,
            base_url=self._auth_url,
            idempotent=False,
        )
        code = str(answer.get("code", ""))
        if code in ("IllegalRefreshToken", "AUTH_TYPE_UNSUPPORTED"):
            raise CredentialsError(
                f"Lazada refused the refresh token ({code}): it has expired or was replaced; "
                "reconnect the shop in Lazada to issue new tokens",
                code=code,
            )
        _checked(answer, TOKEN_REFRESH)
        if not answer.get("access_token"):
            raise AdapterError(
                "Lazada answered the token refresh without a new access token",
                retryable=False,
                code="auth",
            )
        return current.with_tokens(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token") or refresh_token),
            seller_id=_seller_id(answer) or current.seller_id,
        )

    def no_refresh_token(self) -> CredentialsError:
        return CredentialsError(
            "Lazada refused the access token (IllegalAccessToken) and the channel has no "
            "refresh token: reconnect the shop in Lazada to issue new tokens",
            code="IllegalAccessToken",
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _seller_call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = True,
    ) -> Payload:
        return _checked(self._send_with_refresh(method, path, params, idempotent=idempotent), path)

    def _send_with_refresh(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = True,
    ) -> Payload:
        return self.with_refresh(
            lambda used: self._send(method, path, params, used=used, idempotent=idempotent),
            _token_expired,
        )

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        *,
        seller: bool = True,
        base_url: str | None = None,
        used: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> Payload:
        business = {
            name: _text(value)
            for name, value in (params or {}).items()
            if value is not None and _text(value) != ""
        }
        url = (base_url or self._base_url) + path

        def build() -> OutgoingRequest:
            creds = self._credentials  # read per attempt: a refresh may have replaced it
            sent = {
                **business,
                "app_key": creds.app_key,
                "timestamp": str(int(self._clock() * 1000)),
                "sign_method": "sha256",
            }
            if seller:
                sent["access_token"] = creds.access_token.get_secret_value()
                if used is not None:
                    used["access_token"] = sent["access_token"]
            sent["sign"] = lazada_sign(
                app_secret=creds.app_secret.get_secret_value(), path=path, params=sent
            )
            if method == "GET":
                return OutgoingRequest("GET", url, params=sent)
            return OutgoingRequest("POST", url, data=sent)

        return _decoded(self._caller.send(build, idempotent=idempotent), path)


def _token_expired(answer: Payload) -> bool:
    return str(answer.get("code", "")) == "IllegalAccessToken"


def _decoded(response: requests.Response, path: str) -> Payload:
    """The JSON object Lazada answered, prices as Decimal; AdapterError if there is none, or
    for a failed HTTP status whose body says success."""
    return kit.reply_object(
        response,
        service=SERVICE,
        endpoint=path,
        names_error=lambda payload: str(payload.get("code", SUCCESS)) != SUCCESS,
    )


def _checked(payload: Payload, path: str) -> Payload:
    """`payload` itself when `code` is "0"; otherwise the matching AdapterError."""
    code = str(payload.get("code", ""))
    if code != SUCCESS:
        raise lazada_error(code, _message(payload), endpoint=path)
    return payload


def _message(payload: Payload) -> str:
    message = str(payload.get("message") or "")
    details = [
        str(row.get("message") or "")
        for row in payload.get("detail") or []
        if isinstance(row, dict) and row.get("message")
    ]
    return "; ".join(part for part in [message, *details] if part)[:500]


def lazada_error(code: str, message: str, *, endpoint: str) -> AdapterError:
    """Turn Lazada's `code`/`message` pair into an exception that tells staff what to do."""
    said = f" Lazada said: {message}" if message else ""
    if code == "IncompleteSignature":
        return CredentialsError(
            f"Lazada refused the request signature ({code}): check the app key and app secret."
            + said,
            code=code,
        )
    if code == "IllegalAccessToken":
        return CredentialsError(
            f"Lazada refused the access token ({code}): reconnect the shop in Lazada to issue "
            "new tokens, and check that the channel's base URL is the shop's country." + said,
            code=code,
        )
    if code in ("IllegalRefreshToken", "InvalidCode"):
        return CredentialsError(
            f"Lazada refused the seller's authorization ({code}): reconnect the shop in Lazada."
            + said,
            code=code,
        )
    if code in NOT_PERMITTED:
        return CredentialsError(
            f"Lazada does not allow this app to call {endpoint} for this seller ({code}): check "
            "the app's permissions and the seller's authorization." + said,
            code=code,
        )
    if code == "InvalidTimestamp":
        return AdapterError(
            f"Lazada refused the request time ({code}): check this server's clock." + said,
            retryable=False,
            code=code,
        )
    if code in THROTTLED:
        return AdapterError(
            f"Lazada is throttling calls ({code}): try again in a moment." + said,
            retryable=True,
            code=code,
        )
    if code == APP_BANNED:
        return AdapterError(
            f"Lazada has paused this app's calls for a while ({code}): try again later." + said,
            retryable=True,
            code=code,
        )
    if code == EDIT_UNDER_WAY:
        return AdapterError(
            f"Another change to this product is still being applied on Lazada ({code}): try "
            "again in a moment." + said,
            retryable=True,
            code=code,
        )
    if code in TRANSIENT or code in OVERVIEW:
        return AdapterError(
            f"Lazada had an internal error on {endpoint} ({code}): try again later." + said,
            retryable=True,
            code=code,
        )
    if code in ("SellerNotActive", "SellerNotVerified"):
        return AdapterError(
            f"The Lazada seller account is not active or not verified ({code}): check it in "
            "Seller Center." + said,
            retryable=False,
            code=code,
        )
    return AdapterError(f"Lazada refused {endpoint} ({code}).{said}", retryable=False, code=code)


def _seller_id(answer: Payload) -> str:
    """The seller a token answer is for: its `country_user_info` entry of the token's
    `country` (the only one, for a one-country token); "" when it names none."""
    entries = [e for e in answer.get("country_user_info") or [] if isinstance(e, dict)]
    country = str(answer.get("country") or "").lower()
    ours = [e for e in entries if str(e.get("country") or "").lower() == country] or entries
    seller = str(ours[0].get("seller_id") or "") if ours else ""
    return seller if seller.isdigit() else ""


def _data(payload: Payload) -> Payload:
    """The `data` object of a successful call (Lazada sends `{}` or leaves it out when empty)."""
    data = payload.get("data")
    return data if isinstance(data, dict) else {}
