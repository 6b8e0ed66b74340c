"""WooCommerce behind omni's Adapter protocol: listings in, quantities and prices out, catalog
pushes, orders and webhooks.

WooCommerce's shape, in short: a *simple* product is one sellable unit (price and stock on the
product); a *variable* product has option attributes (`variation: true`) and one variation per
combination, each with its own SKU, price and stock. omni's listing is the product in the first
case and each variation in the second (`variant_id` = the variation's id). Grouped and external
products hold no stock and are not listings.

The brand goes as a visible, non-variation product attribute named "Brand": WooCommerce core had
no brand field in REST v3 when this was written, and an attribute works on every store.
"""

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from catalog.models import sku_key
from channels.adapters import kit
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
    signature_matches,
)
from channels.adapters.convert import (
    decimal_text,
    header,
    iso_utc,
    push_json,
    to_decimal,
    unix_range,
    watermark_second,
)
from channels.adapters.paging import PageTally
from channels.adapters.readahead import ReadAhead
from channels.adapters.uploads import (
    check_distinct_options,
    check_option_names,
    option_names,
    option_value,
    require_variants,
)
from channels.adapters.woocommerce.client import (
    MAX_BATCH_ITEMS,
    MAX_PER_PAGE,
    SERVICE,
    Page,
    Payload,
    WooCommerceClient,
    WooCommerceError,
    error_detail,
    walk_pages,
)
from channels.adapters.woocommerce.credentials import WooCommerceCredentials
from channels.adapters.woocommerce.orders import (
    LEFT_OUT,
    ORDER_NUMBER,
    ORDER_NUMBER_FORM,
    STATUS_TABLE,
    modified_at,
    order_from_payload,
    order_number,
)

LISTING_STATUS = {
    "publish": "live",
    "trash": "removed",
}  # draft, pending, private, future: inactive
BRAND_ATTRIBUTE = "Brand"
WEIGHT_PER_KG = {
    "kg": Decimal(1),
    "g": Decimal(1000),
    "lbs": Decimal("2.20462262185"),
    "oz": Decimal("35.2739619496"),
}
LENGTH_PER_CM = {
    "cm": Decimal(1),
    "m": Decimal("0.01"),
    "mm": Decimal(10),
    "in": Decimal("0.393700787402"),
    "yd": Decimal("0.0109361329834"),
}
NOT_FOUND = frozenset(
    {
        "woocommerce_rest_product_invalid_id",
        "woocommerce_rest_shop_order_invalid_id",
        "woocommerce_rest_invalid_id",
    }
)
_PING = re.compile(rb"webhook_id=(\d+)")


class WooCommerceAdapter(kit.BaseAdapter[WooCommerceCredentials, WooCommerceClient]):
    """omni's Adapter for one WooCommerce store.

    `base_url` is the site (`https://shop.example.com`); `credentials` a mapping validated by
    `WooCommerceCredentials` (or an instance). WooCommerce keys never expire, so
    `on_credentials_changed` is accepted for the common constructor and never called.
    `retry` tunes back-off; `max_in_flight` how many calls run at once (the channel's setting,
    else `limits.max_in_flight`; 1 reads one call at a time). `stats` counts every HTTP call.
    """

    kind = "woocommerce"
    service = SERVICE
    limits = Limits(
        page_size=MAX_PER_PAGE,
        detail_ids_per_call=1,  # variations are read one product per call
        stock_updates_per_call=MAX_BATCH_ITEMS,
        price_updates_per_call=MAX_BATCH_ITEMS,
        # Simple products of many items share a products batch; variations are batched per
        # product, so those calls hold one item's variations only.
        one_item_per_update=False,
        order_ids_per_call=1,  # GET /orders/{id}
        order_window_days=None,  # any window: the list is paged, not capped
        # Core WooCommerce limits nothing (marketplace-apis.md §5.6): the store's host does,
        # with as many PHP workers as its plan gives (often 4 to 10). Unpublished: a
        # conservative default, for the channel to raise on a bigger host.
        max_in_flight=4,
    )
    STATUS_TABLE = STATUS_TABLE
    credentials_model = WooCommerceCredentials
    client_class = WooCommerceClient
    order_number_pattern = ORDER_NUMBER
    order_number_form = ORDER_NUMBER_FORM

    # Store settings, read on first use and kept for the adapter's life.
    _units: tuple[str, str] | None = None
    _category_ids: dict[str, int] | None = None

    # -- Adapter protocol: credentials and listings --------------------------------------------

    def check_credentials(self) -> None:
        """One cheap authenticated call (one product); CredentialsError if the store refuses."""
        self._client.list_products(page=1, per_page=1)

    def iter_listing_pages(
        self, *, updated_since: datetime | None = None
    ) -> Iterator[list[RemoteListing]]:
        """One list of listings per products page (up to 100 products, more listings).

        Costs per page: one list call, plus one variations call per variable product on it
        (more for a product with over 100 variations). Up to `max_in_flight` calls run at once:
        pages after the first are read ahead up to `X-WP-TotalPages`, and each page's
        variations are read while the next pages are listed (`kit.read_ahead`).
        A full scan reads every product but those in the trash. With `updated_since`, products
        modified from that second on come back, then a second pass over the trash returns
        the products trashed since then as "removed". Products deleted for good leave no trace:
        only a full scan notices them. Take the next watermark before calling.

        IncompleteRead (channels.adapters.paging) when a page of products or of a product's
        variations comes back empty or short before `X-WP-TotalPages`, or a list ends short of
        `X-WP-Total`.
        """
        if updated_since is None:
            yield from self._scan("any", None)
            return
        # modified_after is strict and to the second: one second earlier includes the
        # watermark's own second, so nothing changed in it is missed.
        after = _gmt(watermark_second(updated_since) - 1)
        yield from self._scan("any", after)
        yield from self._scan("trash", after)

    def _scan(self, status: str, modified_after: str | None) -> Iterator[list[RemoteListing]]:
        with self.pool() as pool_map:

            def read(page: tuple[list[Payload], int]) -> list[RemoteListing]:
                rows, depth = page
                return self._page_listings(rows, pool_map, depth=depth)

            walk = partial(self._product_pages, status=status, modified_after=modified_after)
            for listings in self.read_ahead(walk, read):
                if listings:
                    yield listings

    def _product_pages(
        self, ahead: ReadAhead[Any], *, status: str, modified_after: str | None
    ) -> Iterator[tuple[list[Payload], int]]:
        """`walk_pages` over the products: (the page's new rows, how many calls deep the
        page is). The pages a page's `X-WP-TotalPages` announces are read ahead; a walk that
        steps back (the set shrank) or goes past them reads on from there."""
        asked: list[int] = []

        def fetch(page: int) -> Page:
            return self._client.list_products(
                page=page, status=status, modified_after=modified_after
            )

        def plan(number: int, page: Page) -> range:
            return range(number + 1, (page.total_pages or 0) + 1)

        def read(number: int) -> Page:
            asked.append(number)
            return reader(number)

        reader = ahead.reader(fetch, plan)
        # Products in id order: an edit during the scan never moves a product between pages.
        tally = PageTally(SERVICE, "products", MAX_PER_PAGE)
        for rows in walk_pages(read, per_page=MAX_PER_PAGE, tally=tally):
            # Page 1 comes first; the pages it announces needed only it.
            yield rows, 1 if asked[-1] == 1 else 2

    def _page_listings(
        self, rows: Sequence[Payload], pool_map: kit.PoolMap, *, depth: int = 0
    ) -> list[RemoteListing]:
        variable = [
            int(row["id"])
            for row in rows
            if row.get("type") == "variable" and row.get("variations")
        ]
        variations = dict(zip(variable, pool_map(self._variations, variable), strict=True))
        self.chained(depth + (1 if variable else 0))
        listings: list[RemoteListing] = []
        for row in rows:
            listings.extend(listings_from_product(row, variations.get(int(row["id"]), [])))
        return listings

    def confirm_listings(self, item_ids: Sequence[str]) -> list[RemoteListing]:
        """One `GET /products/{id}` per product, then its variations as a scan reads them,
        `max_in_flight` calls at a time. A product deleted for good (an invalid id) yields
        nothing, one in the trash its listings as "removed"."""
        ids = [int(item_id) for item_id in item_ids if item_id.isdigit()]
        with self.pool() as pool_map:
            rows = [row for row in pool_map(self._product_if_any, ids) if row is not None]
            return self._page_listings(rows, pool_map)

    def _product_if_any(self, product_id: int) -> Payload | None:
        try:
            return self._client.get_product(product_id)
        except WooCommerceError as exc:
            if exc.code not in NOT_FOUND:
                raise
            return None  # deleted for good

    def _variations(self, product_id: int) -> list[Payload]:
        def fetch(page: int) -> Page:
            return self._client.list_variations(product_id, page=page)

        tally = PageTally(SERVICE, f"variations of product {product_id}", MAX_PER_PAGE)
        return [
            row for rows in walk_pages(fetch, per_page=MAX_PER_PAGE, tally=tally) for row in rows
        ]

    # -- Adapter protocol: creating products ---------------------------------------------------

    def create_product(self, product: UploadProduct) -> list[RemoteListing]:
        """Create a simple product (one variant, no options) or a variable product and its
        variations; the listings WooCommerce now holds.

        Calls: the weight and dimension units (once per adapter, only when the product has a
        weight or dimensions), the category list (once per adapter; one more call creates a
        category the store lacks), the create, and for a variable product one variations batch
        per 100 variants. Images go as URLs: WooCommerce downloads them itself. WooCommerce
        refuses a SKU another product already has, so an upload repeated after a lost reply
        fails with that product's id instead of creating a twin.
        """
        names = _option_names(product)  # checked before anything is sent
        body = self._product_body(product, names)
        if not names:
            variant = product.variants[0]
            body.update(
                type="simple", **_stock_fields(variant.quantity), **_variant_fields(variant)
            )
            created = self._client.create_product(body)
            return listings_from_product(created, [])
        body["type"] = "variable"
        parent = self._client.create_product(body)
        parent_id = int(parent["id"])
        rows = [_variation_body(variant, names) for variant in product.variants]
        try:
            made, failures = self._create_variations(parent_id, rows)
        except CredentialsError:
            raise
        except AdapterError as exc:
            failures = [str(exc)]
        if failures:
            raise AdapterError(
                f"WooCommerce created product {parent_id} ({product.name!r}) but not all its "
                f"variants: {'; '.join(failures)}. Fix them in the POS, then add the missing "
                "variants; those created are picked up by the next scan.",
                retryable=False,
                code="variations",
            )
        return listings_from_product(parent, made)

    def _create_variations(
        self, parent_id: int, rows: Sequence[Payload]
    ) -> tuple[list[Payload], list[str]]:
        made: list[Payload] = []
        failures: list[str] = []
        for chunk in kit.chunks(rows, MAX_BATCH_ITEMS):
            # Not idempotent: a batch that may have run is not sent again.
            answer = self._client.batch_variations(parent_id, {"create": chunk}, idempotent=False)
            for sent, item in zip(chunk, _answer_items(answer, "create", len(chunk)), strict=True):
                error = _item_error(item)
                if error is None:
                    made.append(item)
                else:
                    failures.append(f"{sent.get('sku') or 'no SKU'}: {error[0]}")
        return made, failures

    # -- Adapter protocol: quantities and prices -----------------------------------------------

    def update_quantities(self, updates: Sequence[QuantityUpdate]) -> list[PushResult]:
        """Absolute stock (`manage_stock` on), 100 per batch call: simple products share
        `POST /products/batch`, variations go per product to `/products/{id}/variations/batch`.

        A refused call fails only its own listings (credential errors stop everything); an
        item WooCommerce refuses inside a batch fails with WooCommerce's message.
        """
        per_call = self.limits.stock_updates_per_call
        return self._push(updates, per_call, lambda update: _stock_fields(update.quantity))

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Regular prices (strings, as WooCommerce takes them), batched like quantities. Sale
        prices are the store's own promotions and are left alone."""
        per_call = self.limits.price_updates_per_call
        return self._push(
            updates, per_call, lambda update: {"regular_price": decimal_text(update.price)}
        )

    def _push(
        self, updates: Sequence[kit.Update], per_call: int, fields: Callable[[Any], Payload]
    ) -> list[PushResult]:
        return self.push(
            updates,
            per_call=per_call,
            # Grouped by endpoint (`_batch_target`), which keeps variations of one product per
            # call while simple products of any item share the products batch.
            one_item=True,
            resolve=_batch_target,
            send=lambda batch: self._send_batch(batch, fields),
        )

    def _send_batch(
        self, batch: kit.PushBatch, fields: Callable[[Any], Payload]
    ) -> dict[str, AdapterError]:
        """One batch call; what WooCommerce said of each item it refused, by key (retryable
        when the item failed on WooCommerce's side: a 5xx, or no result for it)."""
        body = {"update": [{"id": int(row.key), **fields(row.update)} for row in batch.rows]}
        if batch.group:
            answer = self._client.batch_variations(int(batch.group), body)
        else:
            answer = self._client.batch_products(body)
        refused = {}
        items = _answer_items(answer, "update", len(batch.rows))
        for row, item in zip(batch.rows, items, strict=True):
            error = _item_error(item)
            if error is not None:
                refused[row.key] = AdapterError(error[0], retryable=error[1])
        return refused

    # -- Adapter protocol: catalog pushes ----------------------------------------------------

    def update_product(self, item_id: str, product: UploadProduct) -> None:
        """Overwrite the synced fields (name, description, category, brand, images, weight,
        dimensions, option values) and the variants' SKUs, UPCs and regular prices.

        Never sent: status (see `set_active`), stock, sale prices, anything POS-only. Variants
        are matched to variations by SKU (letter case and surrounding spaces ignored), else by
        their option values; variants with no match are left for `add_variants`.
        Calls: read the product, write it; for a variable product read its variations and
        update them in batches of 100. Images already on the product (recognised by the name
        omni gave them) are kept, not downloaded again.
        """
        current = self._client.get_product(_id(item_id))
        names = _option_names(product)
        is_variable = current.get("type") == "variable"
        # A simple product gets no option attributes: it has no variations to tell apart.
        body = self._product_body(product, names if is_variable else (), current=current)
        if not is_variable and len(product.variants) == 1:
            body.update(_variant_fields(product.variants[0]))
        self._client.update_product(_id(item_id), body)
        if is_variable:
            self._update_variations(_id(item_id), product, names)

    def _update_variations(
        self, parent_id: int, product: UploadProduct, names: Sequence[str]
    ) -> None:
        variations = self._variations(parent_id)
        rows = []
        for variant in product.variants:
            match = _matching_variation(variant, variations)
            if match is not None:
                rows.append({"id": int(match["id"]), **_variant_fields(variant)})
        failures = []
        for chunk in kit.chunks(rows, MAX_BATCH_ITEMS):
            answer = self._client.batch_variations(parent_id, {"update": chunk})
            for sent, item in zip(chunk, _answer_items(answer, "update", len(chunk)), strict=True):
                error = _item_error(item)
                if error is not None:
                    failures.append(f"{sent.get('sku') or sent['id']}: {error[0]}")
        if failures:
            raise AdapterError(
                f"WooCommerce updated product {parent_id} but refused some variations: "
                + "; ".join(failures),
                retryable=False,
                code="variations",
            )

    def add_variants(
        self, item_id: str, product: UploadProduct, new: Sequence[UploadVariant]
    ) -> list[RemoteListing]:
        """Add variants created in the POS to a variable product; the listings created.

        The product's option attributes gain the new values first (values already there are
        kept, so existing variations stay valid). A variant whose SKU the product already has
        is not created again but returned as it is, so a repeated call has one effect.
        Calls: read the product and its variations, write its attributes when they change,
        one variations batch per 100 new variants.
        """
        parent_id = _id(item_id)
        current = self._client.get_product(parent_id)
        if current.get("type") != "variable":
            raise AdapterError(
                f"WooCommerce product {parent_id} is a simple product: variants cannot be added "
                "to it. Delete it on WooCommerce and upload the product again with its variants.",
                retryable=False,
                code="not_variable",
            )
        names = _option_names(product)
        if not names:
            raise AdapterError(
                f"{product.name!r} has no option names (e.g. Color, Size): WooCommerce needs them "
                "to tell the new variations apart",
                retryable=False,
                code="param",
            )
        for variant in new:
            _check_options(product, variant, names)
        attributes = _merged_attributes(current, product, names, new)
        if _attribute_set(attributes) != _attribute_set(current.get("attributes") or []):
            current = self._client.update_product(parent_id, {"attributes": attributes})
        existing = {sku_key(str(v.get("sku") or "")): v for v in self._variations(parent_id)}
        existing.pop("", None)  # a blank SKU identifies nothing
        already = [existing[sku_key(v.sku)] for v in new if sku_key(v.sku) in existing]
        missing = [v for v in new if sku_key(v.sku) not in existing]
        made, failures = self._create_variations(
            parent_id, [_variation_body(v, names) for v in missing]
        )
        if failures:
            raise AdapterError(
                f"WooCommerce refused new variants of product {parent_id}: {'; '.join(failures)}",
                retryable=False,
                code="variations",
            )
        return listings_from_product(current, already + made)

    def set_active(self, item_id: str, active: bool) -> None:
        """Publish (enable) or return to draft (disable) the product; the same call twice has
        one effect."""
        self._client.update_product(_id(item_id), {"status": "publish" if active else "draft"})

    def delete_product(self, item_id: str) -> None:
        """Delete the product for good (`force=true`), its variations with it. A product that
        is gone already counts as deleted, so a repeated call has one effect."""
        try:
            self._client.delete_product(_id(item_id), force=True)
        except WooCommerceError as exc:
            if exc.code not in NOT_FOUND:
                raise

    # -- product bodies ------------------------------------------------------------------------

    def _product_body(
        self, product: UploadProduct, names: Sequence[str], *, current: Payload | None = None
    ) -> Payload:
        body: Payload = {"name": product.name, "description": product.description}
        categories = self._categories(product.category)
        if categories:  # a blank POS category leaves the store's categories as they are
            body["categories"] = categories
        if current is None:
            body["status"] = "publish" if product.is_active else "draft"
            body["attributes"] = _new_attributes(product, names)
        else:
            body["attributes"] = _merged_attributes(current, product, names, product.variants)
        images = _images(product.images, current)
        if images is not None:
            body["images"] = images
        if product.weight_kg is not None:
            body["weight"] = _convert(product.weight_kg, WEIGHT_PER_KG, self._unit_names()[0])
        if product.dimensions_cm is not None:
            unit = self._unit_names()[1]
            length, width, height = (
                _convert(d, LENGTH_PER_CM, unit) for d in product.dimensions_cm
            )
            body["dimensions"] = {"length": length, "width": width, "height": height}
        return body

    def _unit_names(self) -> tuple[str, str]:
        """The store's weight and dimension units (settings read once per adapter)."""
        if self._units is None:
            weight = self._client.get_setting("products", "woocommerce_weight_unit")
            length = self._client.get_setting("products", "woocommerce_dimension_unit")
            units = (str(weight.get("value") or "kg"), str(length.get("value") or "cm"))
            if units[0] not in WEIGHT_PER_KG or units[1] not in LENGTH_PER_CM:
                raise AdapterError(
                    f"The WooCommerce store uses units omni does not know ({units[0]}, "
                    f"{units[1]}): set them in WooCommerce > Settings > Products",
                    retryable=False,
                    code="units",
                )
            self._units = units
        return self._units

    def _categories(self, category: str) -> list[Payload]:
        """`[{"id"}]` for the POS category: a number is taken as the category id itself; a
        name (or the last part of "A > B") is looked up by name and created when missing."""
        wanted = category.strip()
        if not wanted:
            return []
        if wanted.isdigit():
            return [{"id": int(wanted)}]
        leaf = re.split(r"\s*[>/]\s*", wanted)[-1].strip() or wanted
        known = self._known_categories()
        if leaf.lower() not in known:
            known[leaf.lower()] = self._create_category(leaf)
        return [{"id": known[leaf.lower()]}]

    def _known_categories(self) -> dict[str, int]:
        if self._category_ids is None:

            def fetch(page: int) -> Page:
                return self._client.list_categories(page=page)

            found: dict[str, int] = {}
            for rows in walk_pages(fetch, per_page=MAX_PER_PAGE):
                for row in rows:
                    # WordPress answers term names HTML-escaped ("Food &amp; Drink").
                    found.setdefault(
                        html.unescape(str(row.get("name") or "")).lower(), int(row["id"])
                    )
            self._category_ids = found
        return self._category_ids

    def _create_category(self, name: str) -> int:
        try:
            return int(self._client.create_category(name)["id"])
        except WooCommerceError as exc:
            # Created meanwhile (by us, on a retried call, or by someone else): use that one.
            existing = exc.data.get("resource_id") if exc.code == "term_exists" else None
            if existing:
                return int(existing)
            raise

    # -- Adapter protocol: orders ------------------------------------------------------------

    def iter_orders(
        self, *, updated_from: datetime, updated_to: datetime
    ) -> Iterator[list[RemoteOrder]]:
        """Orders modified in [updated_from, updated_to), a page of up to 100 at a time.

        One call per page (`status=any`, oldest change first); WooCommerce caps no window.
        Times go to the whole second (the store keeps no finer), widened so no order on the
        window's edge seconds is missed: one on an edge may come in two adjacent windows, which
        the order pipeline takes once. Checkout drafts and trashed orders are left out.
        IncompleteRead (retryable: the download keeps its watermark) for a page empty or short
        before `X-WP-TotalPages`, or a walk ending short of `X-WP-Total` (`walk_pages`).
        """
        start, end = unix_range(updated_from, updated_to)
        if updated_to <= updated_from:
            return
        after, before = _gmt(start - 1), _gmt(end)

        def fetch(page: int) -> Page:
            return self._client.list_orders(page=page, modified_after=after, modified_before=before)

        tally = PageTally(SERVICE, "orders", MAX_PER_PAGE)
        for rows in walk_pages(fetch, per_page=MAX_PER_PAGE, tally=tally):
            orders = [order_from_payload(row) for row in rows if row.get("status") not in LEFT_OUT]
            if orders:
                yield orders

    @staticmethod
    def clean_order_number(number: str) -> str:
        """Trimmed, a leading "#" ignored (OrderNumbersMalformed, unasked, for a number with
        spaces or control characters: `order_number_pattern`)."""
        return number.strip().lstrip("#").strip()

    def orders_by_number(self, numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders, in the order asked; unknown numbers, checkout drafts and trashed
        orders are left out.

        One `GET /orders/{id}` per number (a WooCommerce order number is its id unless a
        plugin numbers orders); a number that is not an id, or names another order, is looked
        up with one search call.
        """
        found: list[RemoteOrder] = []
        for number in numbers:
            payload = self._find_order(number)
            if payload is not None and payload.get("status") not in LEFT_OUT:
                found.append(order_from_payload(payload))
        return found

    def _find_order(self, number: str) -> Payload | None:
        if number.isdigit():
            try:
                payload = self._client.get_order(int(number))
            except WooCommerceError as exc:
                if exc.code not in NOT_FOUND:
                    raise
            else:
                if order_number(payload) == number:
                    return payload
        page = self._client.list_orders(page=1, search=number, orderby="id")
        return next((row for row in page.rows if order_number(row) == number), None)

    # -- Adapter protocol: webhooks ----------------------------------------------------------

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check `X-WC-Webhook-Signature` = base64 HMAC-SHA256(webhook secret, raw body).

        WebhookRejected(401) when the signature is missing or wrong (or no webhook secret is
        set), 400 when the body is not a JSON object or the delivery id is missing. WooCommerce
        signs the body only, so `url` plays no part.

        The event's `delivery_id` is `X-WC-Webhook-Delivery-ID` plus a digest of the body.
        WooCommerce makes that header from the webhook's id and the current second only, so
        two different events of one webhook sent in the same second (a bulk status change)
        share it; with the digest they stay two events, while the same delivery received
        twice still has one key.

        The one unsigned request WooCommerce sends, the ping when a webhook is created (form
        body `webhook_id=<id>`), is accepted as topic "other" so the store sees the 200 it
        waits for; it carries nothing to act on.
        """
        signature = header(headers, "x-wc-webhook-signature").strip()
        if not signature:
            ping = _PING.fullmatch(body.strip())
            if ping is not None:
                return WebhookEvent(delivery_id=f"ping-{ping.group(1).decode()}", topic="other")
            raise WebhookRejected("WooCommerce push without an X-WC-Webhook-Signature", status=401)
        secret = self.credentials.webhook_secret.get_secret_value()
        if not secret:
            raise WebhookRejected(
                "The channel has no WooCommerce webhook secret: copy the webhook's Secret from "
                "WooCommerce > Settings > Advanced > Webhooks into the channel",
                status=401,
            )
        if not signature_matches(signature, webhook_signature(secret, body)):
            raise WebhookRejected("WooCommerce push with a wrong signature", status=401)
        delivery_id = header(headers, "x-wc-webhook-delivery-id").strip()
        if not delivery_id:
            raise WebhookRejected(
                "WooCommerce push without an X-WC-Webhook-Delivery-ID", status=400
            )
        payload = push_json(
            body,
            not_json="WooCommerce push whose body is not JSON",
            not_object="WooCommerce push whose body is not a JSON object",
        )
        delivery_id = f"{delivery_id}-{hashlib.sha256(body).hexdigest()[:16]}"
        resource = header(headers, "x-wc-webhook-topic").split(".")[0].strip()
        if resource == "order":
            return WebhookEvent(
                delivery_id=delivery_id,
                topic="order_status",
                order_number=order_number(payload),
                payload=payload,
            )
        topic = "product" if resource == "product" else "other"
        return WebhookEvent(delivery_id=delivery_id, topic=topic, payload=payload)


def webhook_signature(secret: str, body: bytes) -> str:
    """`X-WC-Webhook-Signature`: base64 of HMAC-SHA256 over the raw body, keyed with the
    webhook's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# -- parsing WooCommerce payloads (pure functions) ------------------------------------------------


def listings_from_product(
    product: Mapping[str, Any], variations: Sequence[Mapping[str, Any]]
) -> list[RemoteListing]:
    """The listings of one product: itself when simple, each of `variations` when variable.

    A variable product in the trash whose variations are not given comes back as one
    "removed" listing with variant_id "", so the scan still learns it is gone.
    """
    product_id = str(product["id"])
    name = html.unescape(str(product.get("name") or ""))
    status = str(product.get("status") or "")
    updated_at = modified_at(product)
    kind = product.get("type")
    if kind == "simple":
        return [
            RemoteListing(
                item_id=product_id,
                variant_id="",
                sku=str(product.get("sku") or ""),
                title=name,
                price=_price(product),
                quantity=_quantity(product),
                status=_listing_status(status),
                updated_at=updated_at,
            )
        ]
    if kind != "variable":
        return []  # grouped and external products hold no stock
    if not variations:
        if status != "trash":
            return []
        return [RemoteListing(product_id, "", "", name, Decimal(0), 0, "removed", updated_at)]
    return [
        RemoteListing(
            item_id=product_id,
            variant_id=str(variation["id"]),
            sku=str(variation.get("sku") or ""),
            title=f"{name} - {_options_text(variation)}" if _options_text(variation) else name,
            price=_price(variation),
            quantity=_quantity(variation),
            status=_listing_status(status, str(variation.get("status") or "publish")),
            updated_at=max(updated_at, modified_at(variation)),
        )
        for variation in variations
    ]


def _listing_status(product_status: str, variation_status: str = "publish") -> str:
    status = LISTING_STATUS.get(product_status, "inactive")
    if status == "live" and variation_status != "publish":
        return "inactive"  # a disabled variation is "private"
    return status


def _options_text(variation: Mapping[str, Any]) -> str:
    """ "Red, M": the variation's option values, as WooCommerce names variations."""
    return ", ".join(
        html.unescape(str(attribute.get("option") or ""))
        for attribute in variation.get("attributes") or []
        if attribute.get("option")
    )


def _price(row: Mapping[str, Any]) -> Decimal:
    return to_decimal(row.get("regular_price") or row.get("price"), finite=True)


def _quantity(row: Mapping[str, Any]) -> int:
    # null when stock is not managed; negative when backorders are allowed: kept as it is.
    value = row.get("stock_quantity")
    return int(value) if value is not None else 0


def _gmt(seconds: int) -> str:
    """A `*_gmt` filter's value: ISO 8601 with no zone (the field is UTC)."""
    return iso_utc(seconds, zone="")


# -- building WooCommerce payloads (pure functions) ----------------------------------------------


def _option_names(product: UploadProduct) -> tuple[str, ...]:
    """The product's option names ((): a simple product); AdapterError on what WooCommerce
    would refuse or what would mix variants up, before anything is sent."""
    require_variants(product, service=SERVICE)
    names = option_names(product)
    check_option_names(product, names, service=SERVICE, apart="variations")
    if not names:
        return ()
    if any(name.strip().lower() == BRAND_ATTRIBUTE.lower() for name in names):
        raise AdapterError(
            f"{product.name!r} has an option named {BRAND_ATTRIBUTE!r}, which omni uses for the "
            "brand on WooCommerce: rename the option",
            retryable=False,
            code="param",
        )
    combos = [tuple(_check_options(product, variant, names)) for variant in product.variants]
    check_distinct_options(product, combos)
    return names


def _check_options(
    product: UploadProduct, variant: UploadVariant, names: Sequence[str]
) -> list[str]:
    return [option_value(product, variant, name) for name in names]


def _new_attributes(product: UploadProduct, names: Sequence[str]) -> list[Payload]:
    attributes = [
        {
            "name": name,
            "options": list(dict.fromkeys(str(v.options[name]).strip() for v in product.variants)),
            "visible": True,
            "variation": True,
        }
        for name in names
    ]
    return attributes + _brand_attribute(product)


def _merged_attributes(
    current: Mapping[str, Any],
    product: UploadProduct,
    names: Sequence[str],
    variants: Sequence[UploadVariant],
) -> list[Payload]:
    """The product's attributes with the variants' option values added (none removed: other
    variations may use them) and the brand set; other attributes kept as they are."""
    attributes = [dict(a) for a in current.get("attributes") or [] if isinstance(a, dict)]
    attributes = [
        a for a in attributes if str(a.get("name", "")).lower() != BRAND_ATTRIBUTE.lower()
    ]
    by_name = {str(a.get("name", "")).lower(): a for a in attributes}
    for name in names:
        values = [str(v.options[name]).strip() for v in variants if v.options.get(name)]
        attribute = by_name.get(name.lower())
        if attribute is None:
            attributes.append(
                {
                    "name": name,
                    "options": list(dict.fromkeys(values)),
                    "visible": True,
                    "variation": True,
                }
            )
            continue
        options = list(attribute.get("options") or [])
        attribute["options"] = options + [v for v in dict.fromkeys(values) if v not in options]
        attribute["variation"] = True
    return attributes + _brand_attribute(product)


def _attribute_set(attributes: Sequence[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
    """What matters of attributes for a change: WooCommerce's answers add ids and positions."""
    return {
        (
            str(a.get("name", "")).lower(),
            tuple(a.get("options") or ()),
            bool(a.get("variation")),
            bool(a.get("visible")),
        )
        for a in attributes
    }


def _brand_attribute(product: UploadProduct) -> list[Payload]:
    brand = product.brand.strip()
    if not brand:
        return []
    return [{"name": BRAND_ATTRIBUTE, "options": [brand], "visible": True, "variation": False}]


def _variation_body(variant: UploadVariant, names: Sequence[str]) -> Payload:
    return {
        **_variant_fields(variant),
        **_stock_fields(variant.quantity),
        "attributes": [
            {"name": name, "option": str(variant.options[name]).strip()} for name in names
        ],
    }


def _variant_fields(variant: UploadVariant) -> Payload:
    fields: Payload = {"sku": variant.sku.strip(), "regular_price": decimal_text(variant.price)}
    if variant.upc.strip():
        fields["global_unique_id"] = variant.upc.strip()  # GTIN/UPC/EAN/ISBN, WooCommerce 9.2+
    return fields


def _stock_fields(quantity: int) -> Payload:
    # stock_quantity is ignored unless the product (or variation) manages its stock.
    return {"manage_stock": True, "stock_quantity": quantity}


def _convert(value: Decimal, per_unit: Mapping[str, Decimal], unit: str) -> str:
    converted = (Decimal(value) * per_unit[unit]).quantize(Decimal("0.001")).normalize()
    return format(converted, "f")


def _images(urls: Sequence[str], current: Mapping[str, Any] | None) -> list[Payload] | None:
    """The `images` to send, or None to leave the product's images alone.

    WooCommerce downloads every image sent as `src` into the media library, again on every
    update. So each image omni sends is named after its URL ("tee (1a2b3c4d5e)"); on an update
    an image already on the product under that name goes by its `id`, and when the list is
    unchanged no images go at all.
    """
    wanted = [(url.strip(), _image_name(url.strip())) for url in urls if url.strip()]
    if current is None:
        return [{"src": url, "name": name} for url, name in wanted]
    present = {
        str(image.get("name") or ""): image.get("id") for image in current.get("images") or []
    }
    names_now = [str(image.get("name") or "") for image in current.get("images") or []]
    if names_now == [name for _, name in wanted]:
        return None
    return [
        {"id": present[name]} if present.get(name) else {"src": url, "name": name}
        for url, name in wanted
    ]


def _image_name(url: str) -> str:
    stem = PurePosixPath(urlsplit(url).path).stem or "image"
    return f"{stem} ({hashlib.sha256(url.encode()).hexdigest()[:10]})"


def _matching_variation(
    variant: UploadVariant, variations: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    key = sku_key(variant.sku)
    if key:
        for variation in variations:
            if sku_key(str(variation.get("sku") or "")) == key:
                return variation
    wanted = {name.lower(): str(value).strip().lower() for name, value in variant.options.items()}
    if not wanted:
        return None
    for variation in variations:
        options = {
            str(a.get("name") or "").lower(): str(a.get("option") or "").strip().lower()
            for a in variation.get("attributes") or []
        }
        if options == wanted:
            return variation
    return None


def _batch_target(update: kit.Update) -> tuple[str, str, None]:
    """Where an update goes, as (group, key, target) for `kit.push_in_batches`: a simple
    product to the products batch (group ""), a variation to its product's variations batch
    (group = the product id); the key is the id the batch item names."""
    if isinstance(update, PriceUpdate) and update.price < 0:
        raise kit.Unpushable("a price cannot be negative")
    try:
        item_id = int(update.item_id)
        variant_id = int(update.variant_id) if update.variant_id else None
    except ValueError:
        raise kit.Unpushable("not a WooCommerce product/variation id") from None
    if variant_id is None:
        return "", str(item_id), None
    return str(item_id), str(variant_id), None


def _answer_items(answer: Mapping[str, Any], action: str, sent: int) -> list[Payload]:
    items = answer.get(action)
    if not isinstance(items, list) or len(items) != sent:
        raise AdapterError(
            f"WooCommerce answered a batch of {sent} {action}s with "
            f"{len(items) if isinstance(items, list) else 'no'} results: check the products on "
            "WooCommerce before trying again",
            retryable=False,
            code="bad_reply",
        )
    return [item if isinstance(item, dict) else {} for item in items]


def _item_error(item: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(message, retryable) of a batch item WooCommerce refused, or None if it was done."""
    error = item.get("error")
    if not error:
        return None if item.get("id") else ("WooCommerce gave no result for this item", True)
    if not isinstance(error, dict):
        return str(error), False
    data: dict[str, Any] = error["data"] if isinstance(error.get("data"), dict) else {}
    status = int(data.get("status") or 400) if str(data.get("status") or "400").isdigit() else 400
    message = html.unescape(re.sub(r"<[^>]+>", "", str(error.get("message") or ""))).strip()
    code = str(error.get("code") or "")
    text = f"{message or 'refused'} ({code})" if code else message or "refused"
    return text + error_detail(code, data), status >= 500


def _id(item_id: str) -> int:
    if not str(item_id).strip().isdigit():
        raise AdapterError(
            f"{item_id!r} is not a WooCommerce product id", retryable=False, code="param"
        )
    return int(item_id)
