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
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from catalog.models import sku_key
from channels.adapters.base import (
    AdapterError,
    CredentialsError,
    Limits,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    RemoteOrder,
    UploadProduct,
    UploadVariant,
    WebhookEvent,
    WebhookRejected,
    authorization_notice,
    signature_matches,
)
from channels.adapters.convert import (
    decimal_text,
    header,
    iso_utc,
    push_json,
    to_decimal,
)
from channels.adapters.kit import BaseAdapter, PushBatch, PushRow, Unpushable, chunks
from channels.adapters.paging import PageTally, reported_total
from channels.adapters.shopify.bulk import (
    BulkOperation,
    BulkStats,
    BulkUnavailable,
    bulk_listing_pages,
)
from channels.adapters.shopify.client import BULK_PRODUCTS, SERVICE, ShopifyClient, webhook_hmac
from channels.adapters.shopify.credentials import ShopifyCredentials
from channels.adapters.shopify.orders import STATUS_TABLE, order_from_node, parse_time, tail
from channels.adapters.uploads import (
    check_distinct_options,
    check_option_names,
    option_value,
    require_variants,
)

logger = logging.getLogger(__name__)

# -- catalog ------------------------------------------------------------------------------------

LISTING_STATUS = {"ACTIVE": "live"}  # DRAFT, ARCHIVED and UNLISTED are not for sale
DEFAULT_OPTION = ("Title", "Default Title")  # what Shopify calls a product without options
MAX_OPTIONS = 3
MAX_VARIANTS = 2048
VARIANTS_FIRST = 20  # variants read with each product; more are paged per product
VARIANTS_PAGE = 250  # the further pages of a product's variants (client.PRODUCT_VARIANTS)
# Full reads of shops this large go through a bulk operation: below it, the few paginated calls
# end before a bulk operation would (Shopify takes seconds to start one, however small).
BULK_FROM = 1000  # products
BULK_PAGE = 250  # products per page read from a bulk result
BULK_POLL_FIRST = 0.2  # seconds before the first poll of a bulk operation...
BULK_POLL_GROWTH = 1.5  # ...each wait half as long again as the last...
BULK_POLL_MAX = 2.0  # ...up to this
BULK_WAIT_LIMIT = 1800.0  # seconds an operation may run before it is canceled for the pages
ORDERS_FIRST = 15  # orders per page, with...
LINES_FIRST = 10  # ...their first lines (see the query costs in client.py)
LINES_PAGE = 100  # an order's further lines, a call (client.ORDER_LINES)
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


class ShopifyAdapter(BaseAdapter[ShopifyCredentials, ShopifyClient]):
    """omni's Adapter for one Shopify shop.

    `base_url` is the shop's own address (`https://<shop>.myshopify.com`); the rest as
    `BaseAdapter` takes it. Reads run in one thread: Shopify's cost budget, not the number of
    calls in flight, is what limits them. `bulk_from` is the product count from which a full
    read goes through a bulk operation, `bulk_wait_limit` how many seconds it waits for one
    (see `iter_listing_pages`); `bulk_stats` says what became of them.
    """

    kind = "shopify"
    service = SERVICE
    credentials_model = ShopifyCredentials
    client_class = ShopifyClient
    order_number_pattern = ORDER_NAME
    order_number_form = ORDER_NAME_FORM
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
    STATUS_TABLE = STATUS_TABLE
    # Defaults of the constructor's `bulk_from` and `bulk_wait_limit`.
    bulk_from: int = BULK_FROM
    bulk_wait_limit: float = BULK_WAIT_LIMIT

    def __init__(
        self,
        *,
        bulk_from: int | None = None,
        bulk_wait_limit: float | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        if bulk_from is not None:
            self.bulk_from = bulk_from
        if bulk_wait_limit is not None:
            self.bulk_wait_limit = bulk_wait_limit
        self.bulk_stats = BulkStats()

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

        A full read of a shop of `bulk_from` products or more (the first page's count says)
        goes on through a bulk operation instead (`_bulk_listing_pages`): one operation
        Shopify runs on its side, polled, then its JSONL result streamed, in pages of 250
        products, leaving out those of the first page. When the operation cannot be used
        (refused, failed, canceled, expired, or still running after `bulk_wait_limit`
        seconds) nothing of it has been read, and the pages simply go on; `bulk_stats`
        counts those fallbacks. Incremental reads stay on the paginated query: they read
        what changed, which is little.

        Shopify deletes products outright and no query lists deleted ones, so an incremental
        scan cannot report removals; a full scan does, by what it no longer sees. Whether a
        stock-only change moves a product's `updatedAt` is not documented: incremental scans
        should not be relied on for quantities.

        IncompleteRead (channels.adapters.paging) when a page is empty or short while
        `hasNextPage` says more follow, or names no cursor to go on from, or when the read
        ends short of `productsCount` (asked for with each page, at one point); the same for a
        page of a product's further variants, and for a bulk result with fewer objects than
        its operation wrote (see `bulk.py`).
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
            if search is None and tally.pages == 1 and (tally.total or 0) >= self.bulk_from:
                read = frozenset(tail(node.get("id")) for node in nodes)
                if (yield from self._bulk_listing_pages(read)):
                    return
                # Nothing of the bulk read was used: the pages go on after the first one.

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
        targets = self._targets([u for u in updates if 0 <= u.quantity < MAX_QUANTITY])

        def resolve(update: QuantityUpdate) -> tuple[str, str, _Target]:
            if update.quantity >= MAX_QUANTITY:
                raise Unpushable(f"quantity {update.quantity} is more than Shopify accepts")
            target = _found(targets, update)
            # Keyed by inventory item: if the same one comes twice, the last value wins.
            return "", target.inventory_item_gid, target

        return self.push(
            updates,
            per_call=self.limits.stock_updates_per_call,
            resolve=resolve,  # type: ignore[arg-type]
            send=self._set_quantities,
            one_item=False,  # inventorySetQuantities may mix products
        )

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Variant prices; one productVariantsBulkUpdate per product and 250 variants.

        A listing without a variant id (a product without options) costs one nodes() lookup
        per 100 to find its variant. Shopify applies the valid rows of a call and names the
        refused ones in `userErrors`; those fail with Shopify's message.
        """
        targets = self._targets([u for u in updates if _valid_price(u) and not u.variant_id])

        def resolve(update: PriceUpdate) -> tuple[str, str, None]:
            if not _valid_price(update):
                raise Unpushable(f"price {update.price} is not a valid price")
            _check_ids(update)
            if update.variant_id:
                return tail(update.item_id), VARIANT_GID + tail(update.variant_id), None
            return tail(update.item_id), _found(targets, update).variant_gid, None

        return self.push(
            updates,
            per_call=self.limits.price_updates_per_call,
            resolve=resolve,  # type: ignore[arg-type]
            send=self._set_prices,
        )

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
        by_key = {sku_key(v.get("sku")): str(v["id"]) for v in variants if sku_key(v.get("sku"))}
        rows = []
        for variant in product.variants:
            if node.get("hasOnlyDefaultVariant") and len(variants) == 1:
                variant_gid = str(variants[0]["id"])
            else:
                variant_gid = by_key.get(sku_key(variant.sku), "")
            if variant_gid:
                rows.append({"id": variant_gid, **_variant_fields(variant, product)})
        for chunk in chunks(rows, self.limits.price_updates_per_call):
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
        until = iso_utc(math.ceil(updated_to.timestamp()), zone="Z")
        search = f"updated_at:>='{_iso(updated_from)}' AND updated_at:<'{until}'"
        yield from self._order_pages(search, self.limits.order_ids_per_call)

    def get_orders(self, order_numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders (their Shopify names, e.g. "#1042"; a bare number gets the "#"),
        in Shopify's order; unknown ones are left out. OrderNumbersMalformed, unasked, for a
        name with white space, quotes or backslashes. One call per 15 names."""
        given = [n.strip() for n in order_numbers if n.strip()]
        self.check_order_numbers(given)
        wanted = list(dict.fromkeys(_order_name(n) for n in given))
        orders: list[RemoteOrder] = []
        for chunk in chunks(wanted, self.limits.order_ids_per_call):
            search = " OR ".join(f"name:'{name}'" for name in chunk)
            keys = {_name_key(name) for name in chunk}
            for page in self._order_pages(search, len(chunk)):
                orders.extend(o for o in page if _name_key(o.order_number) in keys)
        return orders

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check a webhook as Shopify signs it: `X-Shopify-Hmac-SHA256` is the base64
        HMAC-SHA256 of the raw body with the app's client secret (the URL is not signed), or
        with the secret it replaced, for an hour after (`ShopifyCredentials.webhook_secrets`).

        WebhookRejected(401) for a missing or wrong signature, checked first so nothing about
        an unsigned body is revealed; WebhookRejected(400) for a body that is not a JSON object
        or a delivery without `X-Shopify-Webhook-Id` (the id that makes a re-delivery one
        event). Order topics (`orders/...`) become "order_status" with the order's name.
        """
        given = header(headers, "x-shopify-hmac-sha256").strip()
        if not given:
            raise WebhookRejected("the webhook has no X-Shopify-Hmac-SHA256 header", status=401)
        secrets = self.credentials.webhook_secrets(now=time.time())
        if not any(signature_matches(given, webhook_hmac(secret=s, body=body)) for s in secrets):
            raise WebhookRejected(
                "the webhook signature does not match: check the channel's client secret (the "
                "app's, which Shopify signs webhooks with)",
                status=401,
            )
        delivery_id = header(headers, "x-shopify-webhook-id").strip()
        if not delivery_id:
            raise WebhookRejected("the webhook has no X-Shopify-Webhook-Id header", status=400)
        payload = push_json(
            body,
            not_json="the webhook body is not JSON",
            not_object="the webhook body is not a JSON object",
        )
        shopify_topic = header(headers, "x-shopify-topic").strip()
        number = str(payload.get("name") or "")
        if shopify_topic.startswith("orders/") and number:
            topic = "order_status"
        elif shopify_topic.startswith("products/"):
            topic = "product"
        elif shopify_topic == "app/uninstalled":
            topic, number = "authorization", ""
        else:
            topic, number = "other", ""
        notice = authorization_notice(SERVICE, cancelled=True) if topic == "authorization" else ""
        return WebhookEvent(
            delivery_id=delivery_id,
            topic=topic,
            order_number=number,
            payload=payload,
            notice=notice,
        )

    # -- reading ---------------------------------------------------------------------------

    def _bulk_listing_pages(
        self, read: frozenset[str]
    ) -> Generator[list[RemoteListing], None, bool]:
        """The rest of a full read through a bulk operation; the products in `read` (ids)
        were listed already. False, having yielded nothing, when the operation cannot be used
        (logged and counted in `bulk_stats`); True once its whole result has been read.

        Calls: bulkOperationRunQuery (10 points), a 1-point poll every 0.2 s at first, the
        wait growing by half each time up to 2 s, and one download of the result.
        """
        try:
            operation = self._finished_bulk_operation()
            download = self._client.bulk_result(operation.url)
        except BulkUnavailable as unavailable:
            return self._bulk_fallback(str(unavailable))
        except CredentialsError:
            raise
        except AdapterError as exc:
            return self._bulk_fallback(f"its result could not be downloaded: {exc}")
        try:
            yield from bulk_listing_pages(
                download.chunks(),
                operation,
                listings=listings_from_product,
                skip=read,
                page_products=BULK_PAGE,
            )
        finally:
            download.close()
        self.bulk_stats.read += 1
        return True

    def _finished_bulk_operation(self) -> BulkOperation:
        """Start the bulk read of every product and wait for it to end; the operation when it
        completed with a result. BulkUnavailable otherwise (a refused start, a failed, canceled
        or expired operation, one still running after `bulk_wait_limit` seconds, which is
        then canceled, or a call that fails while starting or polling). A refused token stays
        a CredentialsError."""
        operation = self._start_bulk_operation()
        deadline = time.monotonic() + self.bulk_wait_limit
        delay = BULK_POLL_FIRST
        while operation.running:
            if time.monotonic() + delay > deadline:
                self._cancel_bulk_operation(operation)
                raise BulkUnavailable(f"it was still running after {self.bulk_wait_limit:g} s")
            self._client.idle(delay)
            delay = min(delay * BULK_POLL_GROWTH, BULK_POLL_MAX)
            try:
                node = self._client.bulk_operation(operation.gid)
            except CredentialsError:
                raise
            except AdapterError as exc:
                self._cancel_bulk_operation(operation)
                raise BulkUnavailable(f"polling it failed: {exc}") from None
            if node is None:
                raise BulkUnavailable(f"{SERVICE} no longer knows the operation")
            operation = BulkOperation.from_node(node)
        problem = operation.unusable()
        if problem:
            raise BulkUnavailable(problem)
        return operation

    def _start_bulk_operation(self) -> BulkOperation:
        """bulkOperationRunQuery; BulkUnavailable when Shopify refuses it (`userErrors`: one
        is running already, or the limit of running ones is reached; a token that may not run
        bulk operations, ACCESS_DENIED) or the call fails."""
        try:
            answer = self._client.bulk_run_query(BULK_PRODUCTS)
        except CredentialsError as exc:
            if exc.code != "ACCESS_DENIED":
                raise
            raise BulkUnavailable(f"{SERVICE} does not allow it: {exc}") from None
        except AdapterError as exc:
            raise BulkUnavailable(f"it could not be started: {exc}") from None
        errors = _user_errors(answer)
        if errors:
            raise BulkUnavailable(f"{SERVICE} refused it: {errors[0][1]}")
        node = answer.get("bulkOperation")
        if not isinstance(node, dict) or not node.get("id"):
            raise BulkUnavailable(f"{SERVICE} started no operation")
        self.bulk_stats.started += 1
        return BulkOperation.from_node(node)

    def _cancel_bulk_operation(self, operation: BulkOperation) -> None:
        """Cancel an operation given up on, so it does not hold one of the shop's bulk query
        slots; a failure to cancel is only logged (it ends on its own)."""
        try:
            self._client.bulk_cancel(operation.gid)
        except AdapterError as exc:
            logger.info("%s bulk operation %s not canceled: %s", SERVICE, operation.gid, exc)

    def _bulk_fallback(self, reason: str) -> bool:
        self.bulk_stats.fallbacks += 1
        self.bulk_stats.last_fallback = reason
        logger.warning("%s bulk read not used, reading page by page: %s", SERVICE, reason)
        return False

    def _listings_of_product(self, node: Mapping[str, Any]) -> list[RemoteListing]:
        return listings_from_product(node, self._all_variants(node))

    def _all_variants(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """A product's variants: those it came with, then the rest, 250 per call; those read
        when the product is deleted meanwhile."""

        def rest(after: str) -> Mapping[str, Any] | None:
            more = self._client.product_variants(product_id=str(node["id"]), after=after)
            return None if more is None else more.get("variants") or {}

        tally = PageTally(SERVICE, f"variants of {node.get('id')}", VARIANTS_FIRST)
        return _all_nodes(node.get("variants") or {}, tally, VARIANTS_PAGE, rest, gone=None)

    def _order_pages(self, search: str, first: int) -> Iterator[list[RemoteOrder]]:
        """Pages of the orders `search` matches, with all their lines. IncompleteRead
        (retryable: the download keeps its watermark) for a page of orders or of an order's
        lines empty or short while `hasNextPage` says more follow, for one without an
        `endCursor`, and for an order gone before its further lines were read."""
        tally = PageTally(SERVICE, "orders", first)
        after: str | None = None
        while True:
            page = self._client.orders(
                first=first, after=after, query=search, lines_first=LINES_FIRST
            )
            nodes = [node for node in page.get("nodes") or [] if isinstance(node, dict)]
            info = page.get("pageInfo") or {}
            more = bool(info.get("hasNextPage"))
            tally.page(len(nodes), more=more)
            orders = [order_from_node(node, self._all_lines(node)) for node in nodes]
            if orders:
                yield orders
            if not more:
                return
            after = str(info.get("endCursor") or "")
            if not after:
                raise tally.cannot_continue("sent no endCursor")

    def _all_lines(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """An order's lines: those it came with, then the rest, LINES_PAGE per call."""

        def rest(after: str) -> Mapping[str, Any] | None:
            more = self._client.order_lines(order_id=str(node["id"]), after=after)
            return None if more is None else more.get("lineItems") or {}

        tally = PageTally(SERVICE, f"lines of {node.get('id')}", LINES_FIRST)
        gone = "the order could no longer be read"
        return _all_nodes(node.get("lineItems") or {}, tally, LINES_PAGE, rest, gone=gone)

    # -- writing ---------------------------------------------------------------------------

    def _targets(self, updates: Sequence[QuantityUpdate | PriceUpdate]) -> dict[str, Any]:
        """{gid asked: the variant (and inventory item) it lands on, the reason there is none,
        or the AdapterError of its lookup}, looked up by gid 100 at a time (credential errors
        stop everything). Updates with ids that are not Shopify's are not looked up."""
        asked = list(dict.fromkeys(_asked_gid(u) for u in updates if _ids_valid(u)))
        found: dict[str, Any] = {}
        for chunk in chunks(asked, self.limits.detail_ids_per_call):
            try:
                nodes = self._client.nodes(chunk)
            except CredentialsError:
                raise
            except AdapterError as exc:
                found.update(dict.fromkeys(chunk, exc))
                continue
            found.update((gid, node) for gid, node in zip(chunk, nodes, strict=False))
        return found

    def _set_quantities(self, batch: PushBatch) -> dict[str, str | AdapterError | Unpushable]:
        """One inventorySetQuantities for the batch, then once more without the rows Shopify
        refused (it changes none of a call's rows when it refuses some)."""
        refused: dict[str, str | AdapterError | Unpushable] = {}
        pending = batch.rows
        for attempt in range(2):
            try:
                named, whole = self._send_quantities(pending)
            except CredentialsError:
                raise
            except AdapterError as exc:
                if attempt == 0:
                    raise
                return {**refused, **dict.fromkeys((row.key for row in pending), exc)}
            if whole is not None:  # refused as a whole, no row named
                return {**refused, **dict.fromkeys((row.key for row in pending), whole)}
            if not named:
                return refused
            refused.update(named)
            pending = [row for row in pending if row.key not in named]
            if not pending:
                return refused
        held = Unpushable("Shopify refused the batch; try again", retryable=True)
        return {**refused, **dict.fromkeys((row.key for row in pending), held)}

    def _send_quantities(self, rows: list[PushRow]) -> tuple[dict[str, str], str | None]:
        """Send one inventorySetQuantities; ({inventory item gid: Shopify's reason}, None), or
        ({}, reason) when Shopify refused the call without naming a row."""
        location = self.credentials.location_id
        quantities = [
            {
                "inventoryItemId": row.key,
                "locationId": location,
                "quantity": row.update.quantity,  # type: ignore[union-attr]
                "changeFromQuantity": None,  # required from 2026-04; null skips the check
            }
            for row in rows
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
        refused: dict[str, str] = {}
        for row, message in _user_errors(answer):
            if row is None or not 0 <= row < len(rows):
                return {}, f"Shopify refused the stock update: {message}"
            refused[rows[row].key] = message
        return refused, None

    def _set_prices(self, batch: PushBatch) -> dict[str, str]:
        variants = [{"id": row.key, "price": decimal_text(row.update.price)} for row in batch.rows]  # type: ignore[union-attr]
        answer = self._client.variants_bulk_update(
            product_id=PRODUCT_GID + batch.group, variants=variants
        )
        refused: dict[str, str] = {}
        for row, message in _user_errors(answer):
            if row is None or not 0 <= row < len(batch.rows):
                return {"": message}
            refused[batch.rows[row].key] = message
        return refused

    def _product_set_input(self, product: UploadProduct) -> dict[str, Any]:
        """The productSet input, after every check that can be made without Shopify."""
        require_variants(product, service=SERVICE)
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
        check_option_names(product, names, service=SERVICE, most=MAX_OPTIONS)
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
        check_distinct_options(product, combos)
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
    item_id = tail(node.get("id"))
    title = str(node.get("title") or "")
    status = LISTING_STATUS.get(str(node.get("status") or ""), "inactive")
    updated_at = parse_time(node.get("updatedAt"))
    only_default = bool(node.get("hasOnlyDefaultVariant"))
    return [
        RemoteListing(
            item_id=item_id,
            variant_id="" if only_default else tail(variant.get("id")),
            sku=str(variant.get("sku") or ""),
            title=title if only_default else f"{title} - {variant.get('title') or ''}".strip(),
            price=to_decimal(variant.get("price")),
            quantity=int(variant.get("inventoryQuantity") or 0),
            status=status,
            updated_at=updated_at,
        )
        for variant in variants
    ]


def _target(
    update: QuantityUpdate | PriceUpdate, node: Mapping[str, Any] | None
) -> tuple[_Target | None, str]:
    """The variant an update lands on, or why there is none."""
    if node is None:
        return None, _NOT_FOUND
    if update.variant_id:
        owner = tail((node.get("product") or {}).get("id"))
        if owner != tail(update.item_id):
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


def _found(targets: Mapping[str, Any], update: QuantityUpdate | PriceUpdate) -> _Target:
    """The variant an update lands on, from `ShopifyAdapter._targets`; Unpushable (or the
    AdapterError of its lookup) when there is none."""
    _check_ids(update)
    looked_up = targets.get(_asked_gid(update))
    if isinstance(looked_up, AdapterError):
        raise looked_up
    target, problem = _target(update, looked_up)
    if target is None:
        raise Unpushable(problem)
    return target


def _asked_gid(update: QuantityUpdate | PriceUpdate) -> str:
    """What to look an update up by: its variant, or the product of a listing without one."""
    if update.variant_id:
        return VARIANT_GID + tail(update.variant_id)
    return PRODUCT_GID + tail(update.item_id)


def _ids_valid(update: QuantityUpdate | PriceUpdate) -> bool:
    return _numeric(update.item_id) is not None and (
        not update.variant_id or _numeric(update.variant_id) is not None
    )


def _check_ids(update: QuantityUpdate | PriceUpdate) -> None:
    if not _ids_valid(update):
        raise Unpushable("not a Shopify product/variant id")


def _valid_price(update: PriceUpdate) -> bool:
    return update.price.is_finite() and update.price >= 0


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
    fields: dict[str, Any] = {"price": decimal_text(variant.price), "inventoryItem": inventory_item}
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
    return [{"optionName": name, "name": option_value(product, variant, name)} for name in names]


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


def _numeric(value: str) -> str | None:
    number = tail(value)
    return number if number.isdigit() else None


def _gid(prefix: str, item_id: str) -> str:
    number = _numeric(item_id)
    if number is None:
        raise AdapterError(f"{item_id!r} is not a Shopify id", retryable=False, code="invalid_id")
    return prefix + number


def _iso(when: datetime) -> str:
    """Shopify's search syntax takes ISO 8601 in UTC; whole seconds, rounded down."""
    if when.tzinfo is None:
        raise ValueError("Shopify search times must be aware datetimes")
    return iso_utc(math.floor(when.timestamp()), zone="Z")


def _all_nodes(
    connection: Mapping[str, Any],
    tally: PageTally,
    page_size: int,
    rest: Callable[[str], Mapping[str, Any] | None],
    *,
    gone: str | None,
) -> list[Mapping[str, Any]]:
    """The nodes of a connection nested in a node: its first page as it came, then the rest,
    `page_size` per `rest(after)` call. IncompleteRead when a page is empty or short while
    more follow, or says more follow without an endCursor (`tally`). `rest` returns None when
    the node itself is gone: the nodes read so far, or with `gone`, IncompleteRead saying so."""
    nodes: list[Mapping[str, Any]] = []
    while True:
        page = [entry for entry in connection.get("nodes") or [] if isinstance(entry, dict)]
        info = connection.get("pageInfo") or {}
        tally.page(len(page), more=bool(info.get("hasNextPage")))
        nodes.extend(page)
        if not info.get("hasNextPage"):
            return nodes
        if not info.get("endCursor"):
            raise tally.cannot_continue("sent no endCursor")
        tally.page_size = page_size
        more = rest(str(info["endCursor"]))
        if more is None:
            if gone:
                raise tally.cannot_continue(gone)
            return nodes
        connection = more


def _order_name(number: str) -> str:
    """A name to search for: trimmed, "#" added to a bare number."""
    name = str(number).strip()
    return f"#{name}" if name.isdigit() else name


def _name_key(name: str) -> str:
    return name.strip().lstrip("#").lower()


def _count(count: Any) -> int | None:
    """A Count object's value (EXACT, or AT_LEAST: a lower bound, which a read may not fall
    short of either); None when absent."""
    return reported_total(count.get("count")) if isinstance(count, dict) else None
