"""Shopify behind omni's Adapter protocol: listings in, quantities and prices out, products
created and kept in step, orders and webhooks read.

Shopify's shape, in short: every product has at least one variant. A product with no options
has a single "Default Title" variant (`hasOnlyDefaultVariant`); omni's listing is then the
product itself (variant id ""), otherwise one listing per variant. Ids are the numbers at the
end of Shopify's gids (`gid://shopify/Product/123` is "123").

Stock is set at one location (the channel's `location_id`) as the "available" quantity; a scan
reports Shopify's `inventoryQuantity`, the variant's total over all locations, so the two agree
for a shop that sells from one location.
"""

import html
import json
import math
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import product as cartesian
from typing import Any, ClassVar

import requests
from pydantic import ValidationError

from channels.adapters import credentials_error
from channels.adapters.base import (
    AdapterError,
    CallStats,
    CredentialsError,
    CredentialsSaver,
    Limits,
    OrderNumbersMalformed,
    OrderState,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    RemoteOrder,
    RemoteOrderLine,
    UploadProduct,
    UploadVariant,
    WebhookEvent,
    WebhookRejected,
    signature_matches,
)
from channels.adapters.http import HttpCaller, RetryPolicy
from channels.adapters.paging import PageTally, reported_total
from channels.adapters.shopify.client import SERVICE, ShopifyClient, classify_reply, webhook_hmac
from channels.adapters.shopify.credentials import ShopifyCredentials

# -- orders: Shopify's statuses and omni's states ------------------------------------------------

FINANCIAL_STATUSES = (
    "AUTHORIZED",
    "EXPIRED",
    "PAID",
    "PARTIALLY_PAID",
    "PARTIALLY_REFUNDED",
    "PENDING",
    "REFUNDED",
    "VOIDED",
)
FULFILLMENT_STATUSES = (
    "FULFILLED",
    "FULFILLMENT_NOT_REQUIRED",
    "IN_PROGRESS",
    "ON_HOLD",
    "OPEN",
    "PARTIALLY_FULFILLED",
    "PENDING_FULFILLMENT",
    "REQUEST_DECLINED",
    "RESTOCKED",
    "SCHEDULED",
    "UNFULFILLED",
)
SHIPPED_FULFILLMENTS = frozenset({"FULFILLED", "PARTIALLY_FULFILLED"})
# An authorised card payment is as good as paid for shipping: the merchant captures it when
# fulfilling. Pending, partly paid and expired authorisations are not paid yet.
PAID_FINANCIALS = frozenset({"PAID", "PARTIALLY_REFUNDED", "AUTHORIZED"})


def order_status(financial: str, fulfillment: str, *, cancelled: bool, closed: bool) -> str:
    """An order's status as omni records it: Shopify's own values joined by "/".

    `FINANCIAL/FULFILLMENT`, with `/CLOSED` when the order is archived, or `CANCELLED/...` when
    `cancelledAt` is set (a cancelled order is closed too, so CLOSED is left out then).
    """
    if cancelled:
        return f"CANCELLED/{financial}/{fulfillment}"
    return f"{financial}/{fulfillment}" + ("/CLOSED" if closed else "")


def order_state(financial: str, fulfillment: str, *, cancelled: bool, closed: bool) -> OrderState:
    """The rule behind STATUS_TABLE, first match wins:

    1. cancelled (`cancelledAt` set) -> cancelled;
    2. refunded in full, or restocked -> returned if anything had shipped or was restocked,
       else cancelled (money back and nothing sent: the sale is off);
    3. payment voided -> cancelled;
    4. fulfilled or partly fulfilled -> delivered once the order is closed (archived: Shopify
       closes fulfilled, paid orders when done), else shipped, paid or not (cash on delivery);
    5. not paid (pending, partly paid, authorisation expired) -> unpaid;
    6. paid with nothing to ship (digital goods) -> delivered;
    7. otherwise paid and waiting to ship (unfulfilled, on hold, scheduled, in progress...).
    """
    shipped = fulfillment in SHIPPED_FULFILLMENTS
    if cancelled:
        return OrderState.CANCELLED
    if financial == "REFUNDED" or fulfillment == "RESTOCKED":
        if shipped or fulfillment == "RESTOCKED":
            return OrderState.RETURNED
        return OrderState.CANCELLED
    if financial == "VOIDED":
        return OrderState.CANCELLED
    if shipped:
        return OrderState.DELIVERED if closed else OrderState.SHIPPED
    if financial not in PAID_FINANCIALS:
        return OrderState.UNPAID
    if fulfillment == "FULFILLMENT_NOT_REQUIRED":
        return OrderState.DELIVERED
    return OrderState.PAID


# Every status omni can record for a Shopify order (8 financial x 11 fulfillment statuses, each
# open, closed or cancelled), mapped by the rule above. The order pipeline reads only the state.
STATUS_TABLE: dict[str, OrderState] = {
    order_status(financial, fulfillment, cancelled=cancelled, closed=closed): order_state(
        financial, fulfillment, cancelled=cancelled, closed=closed
    )
    for financial, fulfillment in cartesian(FINANCIAL_STATUSES, FULFILLMENT_STATUSES)
    for cancelled, closed in ((False, False), (False, True), (True, False))
}

# -- catalog ------------------------------------------------------------------------------------

LISTING_STATUS = {"ACTIVE": "live"}  # DRAFT, ARCHIVED and UNLISTED are not for sale
DEFAULT_OPTION = ("Title", "Default Title")  # what Shopify calls a product without options
MAX_OPTIONS = 3
MAX_VARIANTS = 2048
VARIANTS_FIRST = 20  # variants read with each product; more are paged per product
VARIANTS_PAGE = 250  # the further pages of a product's variants (client.PRODUCT_VARIANTS)
ORDERS_FIRST = 15  # orders per page, with...
LINES_FIRST = 10  # ...their first lines (see the query costs in client.py)
MAX_QUANTITY = 1_000_000_000  # Shopify refuses quantities from here on
# An order name: the shop's prefix (often "#"), the number, its suffix. Searched for as
# name:'…', which no white space, quote, backslash or control character can be part of.
ORDER_NAME = re.compile(r"[^\s'\"\\\x00-\x1f\x7f]+")
ORDER_NAME_FORM = "an order name such as #1042, without spaces, quotes or backslashes"

PRODUCT_GID = "gid://shopify/Product/"
VARIANT_GID = "gid://shopify/ProductVariant/"
ORDER_GID = "gid://shopify/Order/"


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one update lands: the variant and its inventory item."""

    variant_gid: str
    inventory_item_gid: str


class ShopifyAdapter:
    """omni's Adapter for one Shopify shop.

    `base_url` is the shop's own address (`https://<shop>.myshopify.com`); `credentials` a
    mapping validated by `ShopifyCredentials` (or an instance of it); `on_credentials_changed`
    receives the whole credentials dict after a token refresh; `retry` tunes back-off. `stats`
    counts every HTTP call this adapter makes.
    """

    kind: ClassVar[str] = "shopify"
    limits: ClassVar[Limits] = Limits(
        # Shopify allows 250 per page, but a page's calculated cost must stay under 1,000
        # points: 40 products with their first 20 variants cost 922.
        page_size=40,
        detail_ids_per_call=100,  # nodes(ids:) lookups, 5 points each
        stock_updates_per_call=250,  # inventorySetQuantities: input arrays of at most 250
        price_updates_per_call=250,  # productVariantsBulkUpdate rows per call
        # Price calls take one product each; stock calls may mix products (and do: one
        # flag covers both, so it states the constraint that exists).
        one_item_per_update=True,
        order_ids_per_call=ORDERS_FIRST,
        order_window_days=None,  # orders(query:) takes any updated_at range
    )
    STATUS_TABLE: ClassVar[dict[str, OrderState]] = STATUS_TABLE

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Mapping[str, Any] | ShopifyCredentials,
        on_credentials_changed: CredentialsSaver | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.stats = CallStats()
        self._caller = HttpCaller(
            stats=self.stats,
            service=SERVICE,
            session=session,
            policy=retry,
            classify=classify_reply,
        )
        self._client = ShopifyClient(
            base_url=base_url,
            credentials=_validated(credentials),
            caller=self._caller,
            on_credentials_changed=on_credentials_changed,
        )

    @property
    def credentials(self) -> ShopifyCredentials:
        """The credentials in use, tokens included once refreshed."""
        return self._client.credentials

    def close(self) -> None:
        """Release pooled connections (those of a session passed in, too)."""
        self._caller.session.close()

    # -- Adapter protocol ------------------------------------------------------------------

    def check_credentials(self) -> None:
        """One cheap call (shop name and the stock location, 2 points); CredentialsError if
        Shopify refuses the token or the location does not exist."""
        location_id = self.credentials.location_id
        data = self._client.check(location_id=location_id)
        location = data.get("location")
        if not isinstance(location, dict):
            raise CredentialsError(
                f"The Shopify shop has no location {location_id}: set the channel's location "
                "id to one listed under Settings > Locations",
                code="location",
            )
        if location.get("isActive") is False:
            raise CredentialsError(
                f"The Shopify location {location.get('name') or location_id} is deactivated: "
                "choose an active location for the channel",
                code="location",
            )

    def iter_listing_pages(
        self, *, updated_since: datetime | None = None
    ) -> Iterator[list[RemoteListing]]:
        """One list of listings per page of 40 products (id order).

        Cost per page: one call (at most 922 points), plus one call per 250 further variants
        of a product with more than 20. With `updated_since`, only products Shopify changed
        from that second on (`updated_at:>='…'`, whole seconds rounded down so nothing in the
        watermark's own second is missed).

        Shopify deletes products outright and no query lists deleted ones, so an incremental
        scan cannot report removals; a full scan does, by what it no longer sees. Whether a
        stock-only change moves a product's `updatedAt` is not documented: incremental scans
        should not be relied on for quantities.

        IncompleteRead (channels.adapters.paging) when a page is empty or short while
        `hasNextPage` says more follow, or names no cursor to go on from, or when the read
        ends short of `productsCount` (asked for with each page, at one point); the same for a
        page of a product's further variants.
        """
        search = None if updated_since is None else f"updated_at:>='{_iso(updated_since)}'"
        tally = PageTally(SERVICE, "products", self.limits.page_size)
        after: str | None = None
        while True:
            page = self._client.products(
                first=self.limits.page_size,
                after=after,
                query=search,
                variants_first=VARIANTS_FIRST,
            )
            nodes = [node for node in page.get("nodes") or [] if isinstance(node, dict)]
            info = page.get("pageInfo") or {}
            more = bool(info.get("hasNextPage"))
            tally.page(len(nodes), more=more, total=_count(page.get("productsCount")))
            listings = [listing for node in nodes for listing in self._listings_of_product(node)]
            if listings:
                yield listings
            if not more:
                return
            after = str(info.get("endCursor") or "")
            if not after:
                raise tally.cannot_continue("sent no endCursor")

    def create_product(self, product: UploadProduct) -> list[RemoteListing]:
        """Create the product with its options, variants and stock in one productSet call.

        Checked here before Shopify is asked (nothing is created when they fail): at least
        one variant, at most 3 option names and 2048 variants, every variant with a value for
        each option and no two alike, prices not negative. Sent: name, description (as HTML),
        brand (vendor), category (product type), images (Shopify downloads them), status
        (active or draft), and per variant SKU, barcode, price, weight and the stock at the
        channel's location. Shopify has no fields for dimensions, so they do not go.
        """
        product_input = self._product_set_input(product)
        answer = self._client.product_set(product_input)
        _raise_user_errors(answer, f"create {product.name!r}", code="product_set")
        node = answer.get("product")
        if not isinstance(node, dict) or not node.get("id"):
            raise AdapterError(
                f"Shopify accepted {product.name!r} but returned no product: check the Shopify "
                "admin before uploading again",
                retryable=False,
                code="product_set",
            )
        return self._listings_of_product(node)

    def update_quantities(self, updates: Sequence[QuantityUpdate]) -> list[PushResult]:
        """Absolute "available" quantities at the channel's location.

        Calls: one nodes() lookup per 100 listings (variant -> inventory item), then one
        inventorySetQuantities per 250, each with its own idempotency key (a retried call is
        applied once) and `changeFromQuantity: null` (omni is the source of truth, so no
        compare-and-swap). When Shopify refuses some rows of a call, it changes none of them:
        those rows fail with Shopify's message and the others are sent again once.
        """
        for update in updates:
            if update.quantity < 0:
                raise ValueError(f"negative quantity for {update.item_id}/{update.variant_id}")
        results: dict[int, PushResult] = {
            index: _failed(update, f"quantity {update.quantity} is more than Shopify accepts")
            for index, update in enumerate(updates)
            if update.quantity >= MAX_QUANTITY
        }
        targets = self._targets(updates, results)
        rows = [
            (index, target, update.quantity)
            for index, update in enumerate(updates)
            if (target := targets.get(index)) is not None and index not in results
        ]
        for start in range(0, len(rows), self.limits.stock_updates_per_call):
            batch = rows[start : start + self.limits.stock_updates_per_call]
            results.update(self._set_quantities(updates, batch))
        return [results[index] for index in range(len(updates))]

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Variant prices; one productVariantsBulkUpdate per product and 250 variants.

        A listing without a variant id (a product without options) costs one nodes() lookup
        per 100 to find its variant. Shopify applies the valid rows of a call and names the
        refused ones in `userErrors`; those fail with Shopify's message.
        """
        results: dict[int, PushResult] = {}
        rows: dict[str, list[tuple[int, str, Decimal]]] = {}
        defaults: list[int] = []
        for index, update in enumerate(updates):
            if not update.price.is_finite() or update.price < 0:
                results[index] = _failed(update, f"price {update.price} is not a valid price")
            elif _numeric(update.item_id) is None or (
                update.variant_id and _numeric(update.variant_id) is None
            ):
                results[index] = _failed(update, "not a Shopify product/variant id")
            elif not update.variant_id:
                defaults.append(index)
            else:
                rows.setdefault(_tail(update.item_id), []).append(
                    (index, VARIANT_GID + _tail(update.variant_id), update.price)
                )
        looked_up: dict[int, PushResult] = {}
        targets = self._targets([updates[i] for i in defaults], looked_up)
        for position, index in enumerate(defaults):
            target = targets.get(position)
            if target is None:
                results[index] = looked_up[position]
            else:
                rows.setdefault(_tail(updates[index].item_id), []).append(
                    (index, target.variant_gid, updates[index].price)
                )
        per_call = self.limits.price_updates_per_call
        for item_id, item_rows in rows.items():
            for start in range(0, len(item_rows), per_call):
                batch = item_rows[start : start + per_call]
                results.update(self._set_prices(updates, item_id, batch))
        return [results[index] for index in range(len(updates))]

    # -- catalog pushes --------------------------------------------------------------------

    def update_product(self, item_id: str, product: UploadProduct) -> None:
        """Overwrite the product's synced fields, then its variants' price, SKU, barcode and
        weight (matched by SKU; a product without options takes the only variant).

        Calls: productUpdate (name, description, brand, category), a further read per 250
        variants past the first 250, and one productVariantsBulkUpdate per 250 variants.
        Images are not replaced: Shopify re-hosts them, so replacing means deleting and
        uploading every image on each push. POS-only fields are not in UploadProduct.
        """
        gid = _gid(PRODUCT_GID, item_id)
        fields = {"id": gid, **_product_fields(product)}
        answer = self._client.product_update(fields)
        _raise_user_errors(answer, f"update product {item_id}", code="product_update")
        node = answer.get("product") or {}
        variants = self._all_variants(node)
        by_key = {_key(v.get("sku")): str(v["id"]) for v in variants if _key(v.get("sku"))}
        rows = []
        for variant in product.variants:
            if node.get("hasOnlyDefaultVariant") and len(variants) == 1:
                variant_gid = str(variants[0]["id"])
            else:
                variant_gid = by_key.get(_key(variant.sku), "")
            if variant_gid:
                rows.append({"id": variant_gid, **_variant_fields(variant, product)})
        for start in range(0, len(rows), self.limits.price_updates_per_call):
            chunk = rows[start : start + self.limits.price_updates_per_call]
            answer = self._client.variants_bulk_update(product_id=gid, variants=chunk)
            errors = _user_errors(answer)
            if errors:
                raise AdapterError(
                    f"Shopify updated product {item_id} but refused {len(errors)} variant "
                    f"change(s): {errors[0][1]}",
                    retryable=False,
                    code="variants_bulk_update",
                )

    def add_variants(
        self, item_id: str, product: UploadProduct, new: Sequence[UploadVariant]
    ) -> list[RemoteListing]:
        """Add POS variants to a product that has options (productVariantsBulkCreate, with the
        stock at the channel's location); the listings created. New option values are added
        to the product's options; a new option name, or a product without options, is refused
        by Shopify with its reason."""
        if not new:
            return []
        gid = _gid(PRODUCT_GID, item_id)
        names = _option_names(product)
        if not names:
            raise AdapterError(
                f"{product.name!r} has no option names: Shopify needs them (e.g. Color, Size) "
                "to tell new variants apart",
                retryable=False,
                code="param",
            )
        location = self.credentials.location_id
        rows = []
        for variant in new:
            fields = _variant_fields(variant, product)
            fields["inventoryItem"] = {"tracked": True, **fields["inventoryItem"]}
            rows.append(
                {
                    "optionValues": _option_values(product, variant, names),
                    **fields,
                    "inventoryQuantities": [
                        {"locationId": location, "availableQuantity": variant.quantity}
                    ],
                }
            )
        answer = self._client.variants_bulk_create(product_id=gid, variants=rows)
        _raise_user_errors(answer, f"add variants to product {item_id}", code="variants_add")
        node = answer.get("product") or {"id": gid}
        created = [v for v in answer.get("productVariants") or [] if isinstance(v, dict)]
        return listings_from_product(node, created)

    def set_active(self, item_id: str, active: bool) -> None:
        """ACTIVE (for sale) or DRAFT (hidden) through productUpdate."""
        fields = {"id": _gid(PRODUCT_GID, item_id), "status": "ACTIVE" if active else "DRAFT"}
        answer = self._client.product_update(fields)
        _raise_user_errors(
            answer, f"{'activate' if active else 'deactivate'} product {item_id}", code="status"
        )

    def delete_product(self, item_id: str) -> None:
        """productDelete. A product that is already gone counts as deleted, so a delete that
        is sent twice has one effect and no error."""
        answer = self._client.product_delete(product_id=_gid(PRODUCT_GID, item_id))
        errors = _user_errors(answer)
        if errors and not all("does not exist" in message.lower() for _, message in errors):
            raise AdapterError(
                f"Shopify could not delete product {item_id}: {errors[0][1]}",
                retryable=False,
                code="product_delete",
            )

    # -- orders ----------------------------------------------------------------------------

    def iter_orders(
        self, *, updated_from: datetime, updated_to: datetime
    ) -> Iterator[list[RemoteOrder]]:
        """Orders updated in [updated_from, updated_to), 15 per page with their lines.

        One call per page (at most 857 points), plus one per 100 further lines of an order
        with more than 10. Whole seconds: the start is rounded down, the end up. Without the
        `read_all_orders` scope Shopify shows only the last 60 days of orders.
        """
        if updated_from.tzinfo is None or updated_to.tzinfo is None:
            raise ValueError("iter_orders needs aware datetimes")
        end = datetime.fromtimestamp(math.ceil(updated_to.timestamp()), tz=UTC)
        search = f"updated_at:>='{_iso(updated_from)}' AND updated_at:<'{_iso(end)}'"
        yield from self._order_pages(search, self.limits.order_ids_per_call)

    def get_orders(self, order_numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders (their Shopify names, e.g. "#1042"; a bare number gets the "#"),
        in Shopify's order; unknown ones are left out. OrderNumbersMalformed, unasked, for a
        name with white space, quotes or backslashes. One call per 15 names."""
        given = [n.strip() for n in order_numbers if n.strip()]
        OrderNumbersMalformed.check(given, ORDER_NAME, service=SERVICE, form=ORDER_NAME_FORM)
        wanted = list(dict.fromkeys(_order_name(n) for n in given))
        orders: list[RemoteOrder] = []
        per_call = self.limits.order_ids_per_call
        for start in range(0, len(wanted), per_call):
            chunk = wanted[start : start + per_call]
            search = " OR ".join(f"name:'{name}'" for name in chunk)
            keys = {_name_key(name) for name in chunk}
            for page in self._order_pages(search, len(chunk)):
                orders.extend(o for o in page if _name_key(o.order_number) in keys)
        return orders

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check a webhook as Shopify signs it: `X-Shopify-Hmac-SHA256` is the base64
        HMAC-SHA256 of the raw body with the app's client secret (the URL is not signed).

        WebhookRejected(401) for a missing or wrong signature, checked first so nothing about
        an unsigned body is revealed; WebhookRejected(400) for a body that is not a JSON object
        or a delivery without `X-Shopify-Webhook-Id` (the id that makes a re-delivery one
        event). Order topics (`orders/...`) become "order_status" with the order's name.
        """
        given = _header(headers, "x-shopify-hmac-sha256").strip()
        if not given:
            raise WebhookRejected("the webhook has no X-Shopify-Hmac-SHA256 header", status=401)
        expected = webhook_hmac(secret=self.credentials.client_secret.get_secret_value(), body=body)
        if not signature_matches(given, expected):
            raise WebhookRejected(
                "the webhook signature does not match: check the channel's client secret (the "
                "app's, which Shopify signs webhooks with)",
                status=401,
            )
        delivery_id = _header(headers, "x-shopify-webhook-id").strip()
        if not delivery_id:
            raise WebhookRejected("the webhook has no X-Shopify-Webhook-Id header", status=400)
        payload = _json_body(body)
        shopify_topic = _header(headers, "x-shopify-topic").strip()
        number = str(payload.get("name") or "")
        if shopify_topic.startswith("orders/") and number:
            topic = "order_status"
        elif shopify_topic.startswith("products/"):
            topic = "product"
        else:
            topic, number = "other", ""
        return WebhookEvent(
            delivery_id=delivery_id, topic=topic, order_number=number, payload=payload
        )

    # -- reading ---------------------------------------------------------------------------

    def _listings_of_product(self, node: Mapping[str, Any]) -> list[RemoteListing]:
        return listings_from_product(node, self._all_variants(node))

    def _all_variants(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """A product's variants: those it came with, then the rest, 250 per call.
        IncompleteRead when a page of them is empty or short while more follow."""
        tally = PageTally(SERVICE, f"variants of {node.get('id')}", VARIANTS_FIRST)
        connection = node.get("variants") or {}
        variants: list[Mapping[str, Any]] = []
        while True:
            nodes = [v for v in connection.get("nodes") or [] if isinstance(v, dict)]
            info = connection.get("pageInfo") or {}
            tally.page(len(nodes), more=bool(info.get("hasNextPage")))
            variants.extend(nodes)
            if not info.get("hasNextPage"):
                return variants
            if not info.get("endCursor"):
                raise tally.cannot_continue("sent no endCursor")
            tally.page_size = VARIANTS_PAGE
            more = self._client.product_variants(
                product_id=str(node["id"]), after=str(info["endCursor"])
            )
            if more is None:  # deleted meanwhile
                return variants
            connection = more.get("variants") or {}

    def _order_pages(self, search: str, first: int) -> Iterator[list[RemoteOrder]]:
        after: str | None = None
        while True:
            page = self._client.orders(
                first=first, after=after, query=search, lines_first=LINES_FIRST
            )
            nodes = [node for node in page.get("nodes") or [] if isinstance(node, dict)]
            orders = [order_from_node(node, self._all_lines(node)) for node in nodes]
            if orders:
                yield orders
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage") or not nodes:
                return
            after = str(info.get("endCursor") or "")

    def _all_lines(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        connection = node.get("lineItems") or {}
        lines = [line for line in connection.get("nodes") or [] if isinstance(line, dict)]
        info = connection.get("pageInfo") or {}
        while info.get("hasNextPage"):
            more = self._client.order_lines(
                order_id=str(node["id"]), after=str(info.get("endCursor") or "")
            )
            if more is None:
                break
            connection = more.get("lineItems") or {}
            lines.extend(line for line in connection.get("nodes") or [] if isinstance(line, dict))
            info = connection.get("pageInfo") or {}
        return lines

    # -- writing ---------------------------------------------------------------------------

    def _targets(
        self,
        updates: Sequence[QuantityUpdate] | Sequence[PriceUpdate],
        results: dict[int, PushResult],
    ) -> dict[int, _Target]:
        """{index: variant and inventory item} for the updates Shopify knows, looked up by
        gid 100 at a time. The others get a failed result in `results`: unknown to Shopify,
        or in a lookup call that failed (credential errors stop everything)."""
        asked: dict[int, str] = {}
        for index, update in enumerate(updates):
            if _numeric(update.item_id) is None or (
                update.variant_id and _numeric(update.variant_id) is None
            ):
                results[index] = _failed(update, "not a Shopify product/variant id")
                continue
            asked[index] = (
                VARIANT_GID + _tail(update.variant_id)
                if update.variant_id
                else PRODUCT_GID + _tail(update.item_id)
            )
        found: dict[str, Mapping[str, Any]] = {}
        failed: dict[str, AdapterError] = {}
        unique = list(dict.fromkeys(asked.values()))
        for start in range(0, len(unique), self.limits.detail_ids_per_call):
            chunk = unique[start : start + self.limits.detail_ids_per_call]
            try:
                nodes = self._client.nodes(chunk)
            except CredentialsError:
                raise
            except AdapterError as exc:
                failed.update(dict.fromkeys(chunk, exc))
                continue
            for gid, node in zip(chunk, nodes, strict=False):
                if isinstance(node, dict):
                    found[gid] = node
        targets: dict[int, _Target] = {}
        for index, gid in asked.items():
            if gid in failed:
                error = failed[gid]
                results[index] = _failed(updates[index], str(error), retryable=error.retryable)
                continue
            target, problem = _target(updates[index], found.get(gid))
            if target is not None:
                targets[index] = target
            else:
                results[index] = _failed(updates[index], problem)
        return targets

    def _set_quantities(
        self, updates: Sequence[QuantityUpdate], batch: list[tuple[int, _Target, int]]
    ) -> dict[int, PushResult]:
        results: dict[int, PushResult] = {}
        pending = batch
        for _ in range(2):  # the batch, then once more without the rows Shopify refused
            if not pending:
                break
            try:
                refused, retryable_all = self._send_quantities(pending)
            except CredentialsError:
                raise
            except AdapterError as exc:
                for index, _, _ in pending:
                    results[index] = _failed(updates[index], str(exc), retryable=exc.retryable)
                return results
            if retryable_all is not None:  # refused as a whole, no row named
                for index, _, _ in pending:
                    results[index] = _failed(updates[index], retryable_all)
                return results
            for position, message in refused.items():
                index = pending[position][0]
                results[index] = _failed(updates[index], message)
            if not refused:
                for index, _, _ in pending:
                    results[index] = PushResult(
                        updates[index].item_id, updates[index].variant_id, ok=True
                    )
                return results
            pending = [row for position, row in enumerate(pending) if position not in refused]
        for index, _, _ in pending:  # held back twice by other rows: try these again later
            results.setdefault(
                index,
                _failed(updates[index], "Shopify refused the batch; try again", retryable=True),
            )
        return results

    def _send_quantities(
        self, rows: list[tuple[int, _Target, int]]
    ) -> tuple[dict[int, str], str | None]:
        """Send one inventorySetQuantities; ({row position: Shopify's reason}, None), or
        ({}, reason) when Shopify refused the call without naming a row."""
        # One row per inventory item: if the same one comes twice, the last value wins.
        by_item: dict[str, int] = {}
        for position, (_, target, _) in enumerate(rows):
            by_item[target.inventory_item_gid] = position
        positions = list(by_item.values())
        location = self.credentials.location_id
        quantities = [
            {
                "inventoryItemId": rows[position][1].inventory_item_gid,
                "locationId": location,
                "quantity": rows[position][2],
                "changeFromQuantity": None,  # required from 2026-04; null skips the check
            }
            for position in positions
        ]
        key = str(uuid.uuid4())
        answer = self._client.inventory_set_quantities(
            {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"gid://omni/InventorySync/{key}",
                "quantities": quantities,
            },
            key=key,
        )
        errors = _user_errors(answer)
        if not errors:
            return {}, None
        refused: dict[int, str] = {}
        for row, message in errors:
            if row is None or not 0 <= row < len(positions):
                return {}, f"Shopify refused the stock update: {message}"
            sent = positions[row]
            item = rows[sent][1].inventory_item_gid
            for position, (_, target, _) in enumerate(rows):
                if target.inventory_item_gid == item:
                    refused[position] = message
        return refused, None

    def _set_prices(
        self, updates: Sequence[PriceUpdate], item_id: str, batch: list[tuple[int, str, Decimal]]
    ) -> dict[int, PushResult]:
        variants = [{"id": gid, "price": _money(price)} for _, gid, price in batch]
        try:
            answer = self._client.variants_bulk_update(
                product_id=PRODUCT_GID + item_id, variants=variants
            )
        except CredentialsError:
            raise
        except AdapterError as exc:
            return {
                index: _failed(updates[index], str(exc), retryable=exc.retryable)
                for index, _, _ in batch
            }
        refused: dict[int, str] = {}
        for row, message in _user_errors(answer):
            if row is None or not 0 <= row < len(batch):
                return {index: _failed(updates[index], message) for index, _, _ in batch}
            refused[row] = message
        return {
            index: (
                _failed(updates[index], refused[position])
                if position in refused
                else PushResult(updates[index].item_id, updates[index].variant_id, ok=True)
            )
            for position, (index, _, _) in enumerate(batch)
        }

    def _product_set_input(self, product: UploadProduct) -> dict[str, Any]:
        """The productSet input, after every check that can be made without Shopify."""
        if not product.variants:
            raise AdapterError(
                f"{product.name!r} has no variant to list on Shopify",
                retryable=False,
                code="param",
            )
        if len(product.variants) > MAX_VARIANTS:
            raise AdapterError(
                f"Shopify allows {MAX_VARIANTS} variants per product; {product.name!r} has "
                f"{len(product.variants)}",
                retryable=False,
                code="param",
            )
        for variant in product.variants:
            if not variant.price.is_finite() or variant.price < 0:
                raise AdapterError(
                    f"Variant {variant.sku!r} of {product.name!r} has no valid price",
                    retryable=False,
                    code="param",
                )
        names = _option_names(product)
        if not names and len(product.variants) > 1:
            raise AdapterError(
                f"{product.name!r} has {len(product.variants)} variants but no option names: "
                "Shopify needs them (e.g. Color, Size) to tell the variants apart",
                retryable=False,
                code="param",
            )
        if len(names) > MAX_OPTIONS:
            raise AdapterError(
                f"Shopify allows {MAX_OPTIONS} option names per product; {product.name!r} has "
                f"{len(names)} ({', '.join(names)})",
                retryable=False,
                code="param",
            )
        location = self.credentials.location_id
        variants = []
        for variant in product.variants:
            option_values = (
                _option_values(product, variant, names)
                if names
                else [{"optionName": DEFAULT_OPTION[0], "name": DEFAULT_OPTION[1]}]
            )
            fields = _variant_fields(variant, product)
            variants.append(
                {
                    "optionValues": option_values,
                    "sku": variant.sku,
                    "price": fields["price"],
                    **({"barcode": fields["barcode"]} if "barcode" in fields else {}),
                    "inventoryItem": {"tracked": True, **fields["inventoryItem"]},
                    "inventoryQuantities": [
                        {"locationId": location, "name": "available", "quantity": variant.quantity}
                    ],
                }
            )
        combos = [tuple(v["name"] for v in row["optionValues"]) for row in variants]
        if len(set(combos)) != len(combos):
            raise AdapterError(
                f"Two variants of {product.name!r} have the same options",
                retryable=False,
                code="param",
            )
        return {
            **_product_fields(product),
            "status": "ACTIVE" if product.is_active else "DRAFT",
            "productOptions": _product_options(names, variants),
            "files": [
                {"originalSource": url.strip(), "contentType": "IMAGE"}
                for url in product.images
                if url.strip()
            ],
            "variants": variants,
        }


# -- parsing Shopify payloads (pure functions) ---------------------------------------------------


def listings_from_product(
    node: Mapping[str, Any], variants: Sequence[Mapping[str, Any]]
) -> list[RemoteListing]:
    """The listings of one product node (`id title status updatedAt hasOnlyDefaultVariant`)
    and its variant nodes (`id sku title price inventoryQuantity`)."""
    item_id = _tail(node.get("id"))
    title = str(node.get("title") or "")
    status = LISTING_STATUS.get(str(node.get("status") or ""), "inactive")
    updated_at = _parse_time(node.get("updatedAt"))
    only_default = bool(node.get("hasOnlyDefaultVariant"))
    return [
        RemoteListing(
            item_id=item_id,
            variant_id="" if only_default else _tail(variant.get("id")),
            sku=str(variant.get("sku") or ""),
            title=title if only_default else f"{title} - {variant.get('title') or ''}".strip(),
            price=_decimal(variant.get("price")),
            quantity=int(variant.get("inventoryQuantity") or 0),
            status=status,
            updated_at=updated_at,
        )
        for variant in variants
    ]


def order_from_node(
    node: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None = None
) -> RemoteOrder:
    """One RemoteOrder from an order node as client.ORDER_FIELDS asks for it; `lines` are all
    its line nodes (default: those in the node). An unknown status raises AdapterError rather
    than guessing a state: the pipeline would otherwise invoice or void on a wrong guess."""
    name = str(node.get("name") or "")
    financial = str(node.get("displayFinancialStatus") or "")
    fulfillment = str(node.get("displayFulfillmentStatus") or "")
    status = order_status(
        financial,
        fulfillment,
        cancelled=bool(node.get("cancelledAt")),
        closed=bool(node.get("closed")),
    )
    state = STATUS_TABLE.get(status)
    if state is None:
        raise AdapterError(
            f"Shopify order {name or node.get('id')} has a status omni does not know "
            f"({status}): it was left alone",
            retryable=False,
            code="order_status",
        )
    money = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    if lines is None:
        lines = (node.get("lineItems") or {}).get("nodes") or []
    tracking = _tracking(node)
    return RemoteOrder(
        order_number=name,
        order_id=_tail(node.get("id")),
        status=status,
        state=state,
        created_at=_parse_time(node.get("createdAt")),
        updated_at=_parse_time(node.get("updatedAt")),
        currency=str(money.get("currencyCode") or ""),
        total=_decimal(money.get("amount")),
        lines=tuple(_order_line(line) for line in lines),
        payment_method=", ".join(str(g) for g in node.get("paymentGatewayNames") or []),
        courier=str(tracking.get("company") or ""),
        tracking_number=str(tracking.get("number") or ""),
        cancel_reason=str(node.get("cancelReason") or "") if node.get("cancelledAt") else "",
        source=dict(node),
    )


def _order_line(line: Mapping[str, Any]) -> RemoteOrderLine:
    product = line.get("product") if isinstance(line.get("product"), dict) else {}
    variant = line.get("variant") if isinstance(line.get("variant"), dict) else {}
    price = (
        (line.get("discountedUnitPriceAfterAllDiscountsSet") or {}).get("shopMoney") or {}
    ).get("amount")
    return RemoteOrderLine(
        line_id=_tail(line.get("id")),
        item_id=_tail(product.get("id")),
        # A line of a product without options refers to it as the listing does: variant "".
        variant_id="" if product.get("hasOnlyDefaultVariant") else _tail(variant.get("id")),
        sku=str(line.get("sku") or ""),
        title=str(line.get("name") or ""),
        quantity=int(line.get("quantity") or 0),
        unit_price=_decimal(price),
    )


def _tracking(node: Mapping[str, Any]) -> Mapping[str, Any]:
    for fulfillment in node.get("fulfillments") or []:
        for info in (fulfillment or {}).get("trackingInfo") or []:
            if isinstance(info, dict):
                return info
    return {}


def _target(
    update: QuantityUpdate | PriceUpdate, node: Mapping[str, Any] | None
) -> tuple[_Target | None, str]:
    """The variant an update lands on, or why there is none."""
    if node is None:
        return None, _NOT_FOUND
    if update.variant_id:
        owner = _tail((node.get("product") or {}).get("id"))
        if owner != _tail(update.item_id):
            return None, f"variant {update.variant_id} is not part of product {update.item_id}"
        return _Target(str(node["id"]), str((node.get("inventoryItem") or {}).get("id") or "")), ""
    if not node.get("hasOnlyDefaultVariant"):
        return None, f"product {update.item_id} has variants: name the variant to update"
    variants = (node.get("variants") or {}).get("nodes") or []
    if not variants:
        return None, _NOT_FOUND
    only = variants[0]
    return _Target(str(only["id"]), str((only.get("inventoryItem") or {}).get("id") or "")), ""


_NOT_FOUND = "not found on Shopify (deleted?)"


def _user_errors(answer: Mapping[str, Any]) -> list[tuple[int | None, str]]:
    """Each `userErrors` entry as (the input row it names, or None; Shopify's message).
    A row is the number after the input list's name in `field`, e.g.
    ["input", "quantities", "3", "quantity"] or ["variants", "0", "price"]."""
    errors = []
    for error in answer.get("userErrors") or []:
        if not isinstance(error, dict):
            continue
        field = [str(part) for part in error.get("field") or []]
        row = next((int(part) for part in field if part.isdigit()), None)
        message = str(error.get("message") or "refused by Shopify")
        code = str(error.get("code") or "")
        errors.append((row, f"{message} ({code})" if code else message))
    return errors


def _raise_user_errors(answer: Mapping[str, Any], what: str, *, code: str) -> None:
    errors = _user_errors(answer)
    if errors:
        said = "; ".join(message for _, message in errors[:3])
        raise AdapterError(f"Shopify refused to {what}: {said}", retryable=False, code=code)


# -- building Shopify payloads (pure functions) --------------------------------------------------


def _product_fields(product: UploadProduct) -> dict[str, Any]:
    """The product-level synced fields: name, description, brand, category."""
    return {
        "title": product.name,
        "descriptionHtml": _description_html(product.description),
        "vendor": product.brand.strip(),
        "productType": product.category.strip(),
    }


def _variant_fields(variant: UploadVariant, product: UploadProduct) -> dict[str, Any]:
    """A variant's synced fields for productVariantsBulk* inputs (SKU lives on the inventory
    item there); the product's weight goes on each variant, as Shopify keeps it."""
    inventory_item: dict[str, Any] = {"sku": variant.sku}
    if product.weight_kg is not None and product.weight_kg > 0:
        inventory_item["measurement"] = {
            "weight": {"value": float(product.weight_kg), "unit": "KILOGRAMS"}
        }
    fields: dict[str, Any] = {"price": _money(variant.price), "inventoryItem": inventory_item}
    if variant.upc.strip():
        fields["barcode"] = variant.upc.strip()
    return fields


def _option_names(product: UploadProduct) -> tuple[str, ...]:
    names = tuple(product.option_names)
    if not names and product.variants:
        names = tuple(product.variants[0].options)
    return tuple(name for name in names if name.strip())


def _option_values(
    product: UploadProduct, variant: UploadVariant, names: Sequence[str]
) -> list[dict[str, str]]:
    values = []
    for name in names:
        value = str(variant.options.get(name, "")).strip()
        if not value:
            raise AdapterError(
                f"Variant {variant.sku!r} of {product.name!r} has no {name}",
                retryable=False,
                code="param",
            )
        values.append({"optionName": name, "name": value})
    return values


def _product_options(
    names: Sequence[str], variants: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Option names with their values in the order variants first use them."""
    if not names:
        return [{"name": DEFAULT_OPTION[0], "values": [{"name": DEFAULT_OPTION[1]}]}]
    options = []
    for position, name in enumerate(names, start=1):
        values = dict.fromkeys(
            value["name"]
            for row in variants
            for value in row["optionValues"]
            if value["optionName"] == name
        )
        options.append(
            {"name": name, "position": position, "values": [{"name": v} for v in values]}
        )
    return options


def _description_html(text: str) -> str:
    """Plain POS text as HTML: escaped, paragraphs kept, line breaks kept."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


# -- small helpers ---------------------------------------------------------------------------------


def _failed(
    update: QuantityUpdate | PriceUpdate, error: str, *, retryable: bool = False
) -> PushResult:
    return PushResult(update.item_id, update.variant_id, ok=False, error=error, retryable=retryable)


def _money(value: Decimal) -> str:
    return f"{value:f}"


def _decimal(raw: Any) -> Decimal:
    try:
        return Decimal(str(raw if raw is not None else 0))
    except InvalidOperation:
        return Decimal("0")


def _numeric(value: str) -> str | None:
    tail = _tail(value)
    return tail if tail.isdigit() else None


def _tail(gid: Any) -> str:
    """The number at the end of a gid ("gid://shopify/Product/12" -> "12"); "" for none."""
    return str(gid or "").rsplit("/", 1)[-1]


def _gid(prefix: str, item_id: str) -> str:
    number = _numeric(item_id)
    if number is None:
        raise AdapterError(f"{item_id!r} is not a Shopify id", retryable=False, code="invalid_id")
    return prefix + number


def _iso(when: datetime) -> str:
    """Shopify's search syntax takes ISO 8601 in UTC; whole seconds, rounded down."""
    if when.tzinfo is None:
        raise ValueError("Shopify search times must be aware datetimes")
    moment = datetime.fromtimestamp(math.floor(when.timestamp()), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(raw: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return datetime.fromtimestamp(0, tz=UTC)


def _key(sku: Any) -> str:
    return str(sku or "").strip().lower()


def _order_name(number: str) -> str:
    """A name to search for: trimmed, "#" added to a bare number."""
    name = str(number).strip()
    return f"#{name}" if name.isdigit() else name


def _name_key(name: str) -> str:
    return name.strip().lstrip("#").lower()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("the webhook body is not JSON", status=400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("the webhook body is not a JSON object", status=400)
    return payload


def _validated(credentials: Mapping[str, Any] | ShopifyCredentials) -> ShopifyCredentials:
    if isinstance(credentials, ShopifyCredentials):
        return credentials
    try:
        return ShopifyCredentials.model_validate(dict(credentials))
    except ValidationError as exc:
        raise credentials_error(
            SERVICE, exc.errors(include_input=False, include_url=False)
        ) from None


def _count(count: Any) -> int | None:
    """A Count object's value (EXACT, or AT_LEAST: a lower bound, which a read may not fall
    short of either); None when absent."""
    return reported_total(count.get("count")) if isinstance(count, dict) else None
