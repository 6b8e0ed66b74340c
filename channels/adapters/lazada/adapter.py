"""Lazada behind omni's Adapter protocol: listings in, quantities and prices out, products
created and kept in step, orders and pushes read.

Lazada's shape, in short (shared/reference/marketplace-apis.md §3): a product (`item_id`) has
one or more SKUs (`SkuId`), each with its own seller SKU, price, quantity and status. omni's
listing is the SKU, so `variant_id` is always the SkuId, even for a product without options:
every Lazada write names the SKU by id, and keeping it in the listing spares a lookup per push.
A write that names only the item (variant id "") is accepted for single-SKU products and costs
one extra read per item.

Orders have no status of their own: every order item (one unit each) has one. The order's
state is derived from its items' states (see `orders.order_state`).
"""

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any

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
    header,
    iso_utc,
    to_decimal,
    watermark_second,
)
from channels.adapters.lazada.client import EDIT_UNDER_WAY, SERVICE, LazadaClient
from channels.adapters.lazada.credentials import LazadaCredentials
from channels.adapters.lazada.orders import (
    STATUS_TABLE,
    from_millis,
    order_from_payload,
    order_time,
    to_int,
    webhook_event,
)
from channels.adapters.paging import IncompleteRead, PageTally, reported_total
from channels.adapters.readahead import ReadAhead
from channels.adapters.uploads import (
    category_id,
    check_option_names,
    option_names,
    option_value,
    require_variants,
    require_weight,
)

PRODUCTS_PAGE = 50  # /products/get `limit` at most
MAX_PRODUCTS_OFFSET = 10_000  # /products/get refuses a larger offset
ORDERS_PAGE = 100  # /orders/get `limit` at most
MAX_ORDERS_OFFSET = 5_000  # /orders/get refuses a larger offset
ORDER_IDS_PER_CALL = 50  # /orders/items/get `order_ids` at most
SKUS_PER_WRITE = 50  # /product/price_quantity/update and /product/remove, at most
# Lazada opened in 2012: no product was created before, so it starts every creation window.
FIRST_PRODUCT_SECOND = int(datetime(2012, 1, 1, tzinfo=UTC).timestamp())
MAX_VARIATIONS = 2  # option names per product
MAX_VARIATION_NAME = 15  # characters in an option name
MAX_OPTION_LENGTH = 20  # characters in an option value
MAX_OPTIONS = 50  # values of one option
MAX_IMAGES = 8  # images per product
MAX_NAME = 255  # characters in a product name
ITEM_GONE = frozenset({"208", "E208", "4137", "E0002"})  # the product does not exist (any more)
ORDER_UNKNOWN = frozenset({"16", "E016"})
ORDER_ID = re.compile(r"[0-9]+")  # an order number is the order id, all digits
ALREADY_INACTIVE = "E0004"  # /product/deactivate: "Product Status not online"
CENT = Decimal("0.01")
# A /products/get page: its creation-time window (first and last second) and its offset.
_PageKey = tuple[int, int, int]


class LazadaAdapter(kit.BaseAdapter[LazadaCredentials, LazadaClient]):
    """omni's Adapter for one Lazada seller in one country.

    `base_url` is the country's API host (`https://api.lazada.sg/rest`, ...). `auth_url`,
    passed on to the client, overrides where tokens are refreshed (by default Lazada's auth
    host, or the base URL for other hosts); the other settings are `kit.BaseAdapter`'s.
    """

    kind = "lazada"
    service = SERVICE
    limits = Limits(
        page_size=PRODUCTS_PAGE,
        detail_ids_per_call=ORDER_IDS_PER_CALL,
        stock_updates_per_call=SKUS_PER_WRITE,
        price_updates_per_call=SKUS_PER_WRITE,
        one_item_per_update=False,
        # "Concurrent edits of one item fail with 4147 — serialize per item" (§3.3).
        serial_item_edits=True,
        order_ids_per_call=ORDER_IDS_PER_CALL,
        order_window_days=None,
        # Production limits are per app, shown only in Lazada's console; test accounts get
        # about 4 calls a second (SellerCallLimit, marketplace-apis.md §3.6). Unpublished: a
        # conservative default, for the channel to raise to its app's quota.
        max_in_flight=4,
    )
    # A page of products is one call: 4 rounds ahead kept a 100,000-listing scan at 100 ms per
    # reply within 1.19-1.28 of its floor in four runs, against 1.34 with one (the scan writing
    # 5,000 a batch).
    page_rounds_ahead = 4
    STATUS_TABLE = STATUS_TABLE
    credentials_model = LazadaCredentials
    client_class = LazadaClient
    order_number_pattern = ORDER_ID
    order_number_form = "digits: the order id"

    # -- Adapter protocol: credentials and listings ------------------------------------------

    def check_credentials(self) -> None:
        """One cheap authenticated call (/seller/get); CredentialsError if Lazada refuses."""
        self._client.get_seller()

    def iter_listing_pages(
        self, *, updated_since: datetime | None = None
    ) -> Iterator[list[RemoteListing]]:
        """One list of listings (SKUs) per /products/get page of up to 50 products.

        A full scan reads filter "all" (live and inactive products; deleted ones drop out and
        the caller marks what it no longer sees as removed). With `updated_since`, products
        changed from that second on come back (`update_after`), then the deleted ones (filter
        "deleted"), their SKUs with status "removed". Take the next watermark before calling,
        so changes made during the scan are picked up by the next one.

        Cost: one call per 50 products. Lazada refuses offsets past 10,000, so a filter matching
        more products is read in creation-time windows (from 2012 on), halved until each fits:
        each halving costs about two extra calls (the window too large, and often a half with
        nothing in it), a few dozen at most. Up to `max_in_flight` calls run at once: a
        window's pages after its first are independent once its `total_products` is known, so
        they are read ahead (`kit.read_ahead`). A window read incompletely raises
        IncompleteRead (see `_window_pages`).
        """
        update_after = ""
        filters: tuple[str, ...] = ("all",)
        if updated_since is not None:
            update_after = _iso(watermark_second(updated_since))
            filters = ("all", "deleted")
        include_removed = updated_since is not None

        def read(page: tuple[list[Any], int]) -> list[RemoteListing]:
            products, depth = page
            self.chained(depth)
            return [
                listing
                for product in products
                for listing in listings_from_product(product, include_removed=include_removed)
            ]

        def walk(ahead: ReadAhead[Any]) -> Iterator[tuple[list[Any], int]]:
            for product_filter in filters:
                yield from self._product_pages(ahead, product_filter, update_after)

        for listings in self.read_ahead(walk, read):
            if listings:
                yield listings

    def _product_pages(
        self, ahead: ReadAhead[Any], product_filter: str, update_after: str
    ) -> Iterator[tuple[list[Any], int]]:
        """Pages of raw products matching the filter, creation-time window by window, each with
        how many calls deep it is (a window's first page needed the window it was halved from;
        its further pages needed only its first)."""

        def fetch(key: _PageKey) -> dict[str, Any]:
            low, high, offset = key
            return self._client.get_products(
                product_filter=product_filter,
                offset=offset,
                limit=PRODUCTS_PAGE,
                update_after=update_after,
                create_after=_iso(low),
                create_before=_iso(high),
            )

        def plan(key: _PageKey, page: Mapping[str, Any]) -> list[_PageKey]:
            """What the walk asks for next: the rest of this window (or the first pages of
            its halves), then the first page of every window still to read."""
            low, high, offset = key
            total = to_int(page.get("total_products"))
            if offset == 0 and total > MAX_PRODUCTS_OFFSET + PRODUCTS_PAGE:
                nearest = [
                    (half_low, half_high, 0) for half_low, half_high, _ in _halves(low, high, 0)
                ]
            else:
                steps = range(offset + PRODUCTS_PAGE, total, PRODUCTS_PAGE)
                nearest = [(low, high, more) for more in steps]
            return nearest + [
                (window_low, window_high, 0) for window_low, window_high, _ in windows
            ]

        read = ahead.reader(fetch, plan)
        # (low, high, depth): a day of clock skew past now
        windows = [(FIRST_PRODUCT_SECOND, int(self._clock()) + 86_400, 1)]
        while windows:
            low, high, depth = windows.pop(0)
            page = read((low, high, 0))
            total = to_int(page.get("total_products"))
            if total > MAX_PRODUCTS_OFFSET + PRODUCTS_PAGE:
                if high <= low:
                    raise AdapterError(
                        f"Lazada reports {total} products created within one second: they "
                        "cannot be read page by page",
                        retryable=False,
                        code="14",
                    )
                windows[0:0] = _halves(low, high, depth + 1)
                continue
            for products, page_depth in self._window_pages(read, page, low, high):
                yield products, depth + page_depth

    def _window_pages(
        self,
        read: Callable[[_PageKey], dict[str, Any]],
        first: Mapping[str, Any],
        low: int,
        high: int,
    ) -> Iterator[tuple[list[Any], int]]:
        """The pages of one creation-time window, from its first, each with 0 for the first
        and 1 for the others (they needed the first's total). Lazada's only end signal is
        `total_products`: more follow while fewer have been read. IncompleteRead when a page
        is empty or short before that (channels.adapters.paging)."""
        tally = PageTally(SERVICE, "products", PRODUCTS_PAGE)
        page, offset = first, 0
        while True:
            products = page.get("products") or []
            offset += len(products)
            total = reported_total(page.get("total_products"))
            more = offset < total if total is not None else len(products) >= PRODUCTS_PAGE
            tally.page(len(products), more=more, total=total)
            if products:
                yield products, 0 if page is first else 1
            if not more:
                return
            page = read((low, high, offset))

    def confirm_listings(self, item_ids: Sequence[str]) -> list[RemoteListing]:
        """One /product/item/get per item, `max_in_flight` at a time; an item Lazada no longer
        has (or its deleted SKUs) yields nothing."""
        with self.pool() as pool_map:
            return [lst for found in pool_map(self._listings_if_any, item_ids) for lst in found]

    # -- Adapter protocol: creating and updating products ------------------------------------

    def create_product(self, product: UploadProduct) -> list[RemoteListing]:
        """Create the product with its SKUs; the listings Lazada now holds for them.

        Everything that can be checked here is, before Lazada is asked to change anything.
        Calls: /category/tree/get when the category is a name (once per adapter), one
        /image/migrate per image (Lazada takes only its own image URLs, at most 8), one
        /product/create, one /product/item/get to read the listings back. Options go as
        custom variations (at most 2 names of 15 characters, values of 20). The brand goes as
        its name ("No Brand" when blank); Lazada's brand ids are not mapped.
        """
        plan = _variation_plan(product)
        package = _package(product)
        category = self._category_id(product.category)
        images = self._migrate_images(product)
        node: dict[str, Any] = {
            "PrimaryCategory": category,
            "Images": {"Image": images},
            "Attributes": _attributes(product),
        }
        if plan is not None:
            node["variation"] = _variation_node(plan.names, plan.options)
        node["Skus"] = {
            "Sku": [
                _sku_node(variant, package, plan.sale_prop(variant) if plan else {}, product)
                for variant in product.variants
            ]
        }
        created = self._client.create_product(node)
        if not created.get("item_id"):
            raise AdapterError(
                f"Lazada accepted {product.name!r} but returned no item id: check Seller Center "
                "before uploading again",
                retryable=False,
                code="create",
            )
        wanted = {sku_key(variant.sku) for variant in product.variants}
        with self.read_back(f"item {created['item_id']}"):
            listings = self._listings_of(str(created["item_id"]))
        return [listing for listing in listings if sku_key(listing.sku) in wanted]

    def update_product(self, item_id: str, product: UploadProduct) -> None:
        """Overwrite name, description, brand, category, images, package weight and
        dimensions of the item, and the price of each of its SKUs whose seller SKU matches a
        variant (trimmed, any case). Quantities and status are not touched: they have pushes
        of their own. Calls: one /product/item/get, the image and category calls of
        `create_product`, one /product/update.
        """
        package = _package(product)
        item = self._client.get_product_item(item_id)
        skus = _live_skus(item)
        if not skus:
            raise AdapterError(
                f"Lazada item {item_id} has no SKU left to update", retryable=False, code="param"
            )
        prices = {sku_key(variant.sku): variant.price for variant in product.variants}
        sku_nodes = []
        for sku in skus:
            node: dict[str, Any] = {"SkuId": str(sku.get("SkuId")), **package}
            price = prices.get(sku_key(str(sku.get("SellerSku") or "")))
            if price is not None:
                node["price"] = price
            sku_nodes.append(node)
        self._client.update_product(
            {
                "ItemId": str(item_id),
                "PrimaryCategory": self._category_id(product.category),
                "Images": {"Image": self._migrate_images(product)},
                "Attributes": _attributes(product),
                "Skus": {"Sku": sku_nodes},
            }
        )

    def add_variants(
        self, item_id: str, product: UploadProduct, new: Sequence[UploadVariant]
    ) -> list[RemoteListing]:
        """Add variants to an item that has options; the listings of `new`.

        Variants whose seller SKU the item already has are not created again, so adding the
        same variants twice has one effect. Uses /product/create with `AssociatedSku` (an
        existing SKU of the item), as Lazada documents for adding SKUs to a product. Calls:
        one /product/item/get, one /product/create (when something is new), one more read.
        """
        package = _package(product)
        item = self._client.get_product_item(item_id)
        skus = _live_skus(item)
        existing = {sku_key(str(sku.get("SellerSku") or "")) for sku in skus}
        to_add = [variant for variant in new if sku_key(variant.sku) not in existing]
        if to_add:
            names, options = _item_variations(item)
            if not names or not skus:
                raise AdapterError(
                    f"Lazada item {item_id} was listed without options, so variants cannot be "
                    "added to it: delete it on Lazada and upload the product again",
                    retryable=False,
                    code="param",
                )
            plan = _extended_plan(product, names, options, to_add)
            node: dict[str, Any] = {
                "PrimaryCategory": str(item.get("primary_category") or ""),
                "AssociatedSku": str(skus[0].get("SkuId")),
                "Attributes": {"name": str((item.get("attributes") or {}).get("name") or "")},
                "variation": _variation_node(plan.names, plan.options),
                "Skus": {
                    "Sku": [
                        _sku_node(variant, package, plan.sale_prop(variant), product)
                        for variant in to_add
                    ]
                },
            }
            if item.get("images"):
                node["Images"] = {"Image": [str(url) for url in item["images"]]}
            self._client.create_product(node)
        wanted = {sku_key(variant.sku) for variant in new}
        return [listing for listing in self._listings_of(item_id) if sku_key(listing.sku) in wanted]

    def set_active(self, item_id: str, active: bool) -> None:
        """Put the item's SKUs online or take them offline; doing it twice has one effect.

        Offline: one /product/deactivate ("not online" already counts as done). Online: one
        /product/item/get and one /product/update setting every SKU's Status to active.
        """
        if not active:
            try:
                self._client.deactivate_product(str(item_id))
            except CredentialsError:
                raise
            except AdapterError as exc:
                if exc.code != ALREADY_INACTIVE:
                    raise
            return
        skus = _live_skus(self._client.get_product_item(item_id))
        if not skus:
            raise AdapterError(
                f"Lazada item {item_id} has no SKU left to activate", retryable=False, code="param"
            )
        self._client.update_product(
            {
                "ItemId": str(item_id),
                "Attributes": {},  # Lazada wants the node even when no attribute changes
                "Skus": {
                    "Sku": [{"SkuId": str(sku.get("SkuId")), "Status": "active"} for sku in skus]
                },
            }
        )

    def delete_product(self, item_id: str) -> None:
        """Delete every SKU of the item (so the item itself); an item already gone is fine.

        Calls: one /product/item/get, one /product/remove per 50 SKUs.
        """
        item = self._item_if_any(item_id)
        if item is None:
            return
        refs = [f"SkuId_{item_id}_{sku.get('SkuId')}" for sku in _live_skus(item)]
        for chunk in kit.chunks(refs, SKUS_PER_WRITE):
            self._client.remove_skus(chunk)

    # -- Adapter protocol: quantities and prices ---------------------------------------------

    def update_quantities(self, updates: Sequence[QuantityUpdate]) -> list[PushResult]:
        """Absolute quantities, 50 SKUs per /product/price_quantity/update call, in order.

        SKUs of several items share a call, but an item's SKUs are never in two calls at once
        (Lazada refuses concurrent edits of one item with 4147, `Limits.serial_item_edits`).
        A refused call fails only its own listings (credential errors stop everything); a SKU
        Lazada names in `detail[]` fails with Lazada's reason while the others in its call
        succeed.
        """
        return self._push(updates, self.limits.stock_updates_per_call, "Quantity")

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Prices (Lazada's `price`, not the special price), like `update_quantities`."""
        return self._push(updates, self.limits.price_updates_per_call, "Price")

    def _push(
        self,
        updates: Sequence[QuantityUpdate] | Sequence[PriceUpdate],
        per_call: int,
        field: str,
    ) -> list[PushResult]:
        """Rows keyed by SkuId, each carrying its ItemId; an update naming only the item is
        sent to that item's only SKU (one read per item, see `_single_sku`)."""
        single: dict[str, str] = {}

        def resolve(update: QuantityUpdate | PriceUpdate) -> tuple[str, str, str]:
            sku_id = update.variant_id or self._single_sku(update.item_id, single)
            problem = _id_problem(update.item_id, update.variant_id, sku_id)
            if problem:
                raise kit.Unpushable(problem)
            return update.item_id, sku_id, update.item_id

        def send(batch: kit.PushBatch) -> dict[str, str | AdapterError]:
            skus = [
                {"ItemId": row.target, "SkuId": row.key, field: _value(row.update)}
                for row in batch.rows
            ]
            return _refused(self._client.update_price_quantity(skus))

        return self.push(updates, per_call=per_call, resolve=resolve, send=send)

    def _single_sku(self, item_id: str, known: dict[str, str]) -> str:
        """The only SkuId of a single-SKU item (one read per item, remembered in `known`); ""
        when the item has several SKUs, none, or cannot be read."""
        if not item_id.isdigit():
            return ""
        if item_id not in known:
            try:
                skus = _live_skus(self._client.get_product_item(item_id))
            except CredentialsError:
                raise
            except AdapterError:
                skus = []
            known[item_id] = str(skus[0].get("SkuId")) if len(skus) == 1 else ""
        return known[item_id]

    # -- Adapter protocol: orders ------------------------------------------------------------

    def order_pages(self, start: int, end: int) -> Iterator[list[RemoteOrder]]:
        """Orders updated in the window (`kit.BaseAdapter.iter_orders`: the whole range, in
        whole seconds), a page of up to 100 at a time.

        /orders/get is read oldest change first; Lazada refuses offsets past 5,000, so the
        window then restarts at the last order's update time (orders already seen are left
        out). An order updated during the read leaves the window and moves the orders after
        it up a place: when `countTotal` shrinks by d, the read steps back d places, so none
        falls between two pages. IncompleteRead (retryable: the download keeps its watermark)
        for a page empty or short before `countTotal` is reached, or a read ending short of
        it, and for an order /orders/items/get leaves out. Cost per page: one /orders/get
        and one /orders/items/get per 50 orders; one more /orders/get per step back.
        """
        last = end - 1  # update_before is inclusive
        seen: set[str] = set()
        offset, tally, last_total = 0, PageTally(SERVICE, "orders", ORDERS_PAGE), None
        while True:
            page = self._client.get_orders(
                update_after=_iso(start), update_before=_iso(last), offset=offset, limit=ORDERS_PAGE
            )
            headers = [h for h in page.get("orders") or [] if isinstance(h, dict)]
            total = reported_total(page.get("countTotal"))
            fresh = [h for h in headers if str(h.get("order_id")) not in seen]
            seen.update(str(h.get("order_id")) for h in fresh)
            read_to = offset + len(headers)
            more = read_to < total if total is not None else len(headers) >= ORDERS_PAGE
            tally.page(len(headers), more=more, total=total, new=len(fresh))
            orders = self._with_lines(fresh)
            if orders:
                yield orders
            shrunk_by = last_total - total if last_total is not None and total is not None else 0
            last_total = total
            if shrunk_by > 0:
                more, read_to = True, max(0, offset - shrunk_by)
            if not more:
                return
            offset = read_to
            if offset + ORDERS_PAGE > MAX_ORDERS_OFFSET:
                start, offset = self._restart(start, headers), 0
                tally, last_total = PageTally(SERVICE, "orders", ORDERS_PAGE), None

    @staticmethod
    def _restart(start: int, headers: Sequence[Mapping[str, Any]]) -> int:
        """Where to restart once the offset limit is reached: the last order's update second."""
        moved = math.floor(order_time(headers[-1].get("updated_at")).timestamp())
        if moved <= start:
            raise AdapterError(
                "Lazada reports more than 5,000 orders updated within one second: they cannot "
                "be read page by page",
                retryable=False,
                code="14",
            )
        return moved

    def get_orders(self, order_numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders (Manual Download Order); numbers Lazada does not know are left out.

        Lazada's order number is its order id, all digits: anything else is
        OrderNumbersMalformed, unasked. Calls: one /order/get per number, one
        /orders/items/get per 50 orders found.
        """
        headers = []
        for number in self.wanted_order_numbers(order_numbers):
            try:
                found = self._client.get_order(number)
            except CredentialsError:
                raise
            except AdapterError as exc:
                if exc.code in ORDER_UNKNOWN:
                    continue
                raise
            if found.get("order_id"):
                headers.append(found)
        return self._with_lines(headers)

    def _with_lines(self, headers: Sequence[Mapping[str, Any]]) -> list[RemoteOrder]:
        ids = [str(header["order_id"]) for header in headers]
        items: dict[str, list[Any]] = {}
        for chunk in kit.chunks(ids, ORDER_IDS_PER_CALL):
            for entry in self._client.get_orders_items(chunk):
                if isinstance(entry, dict):
                    items[str(entry.get("order_id"))] = list(entry.get("order_items") or [])
        unlined = [order_id for order_id in ids if not items.get(order_id)]
        if unlined:
            # Every Lazada order has a line; one without would take no units off the POS.
            raise IncompleteRead(
                f"{SERVICE} returned no items for {len(unlined)} of {len(ids)} orders "
                f"({', '.join(unlined[:3])}) from /orders/items/get"
            )
        return [order_from_payload(header, items[str(header["order_id"])]) for header in headers]

    # -- Adapter protocol: pushes ------------------------------------------------------------

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check a push as Lazada signs it: header `Authorization` = hex HMAC-SHA256 keyed
        with the app secret over app key + raw body (the URL is not part of it).

        WebhookRejected(401) for a missing or wrong signature, (400) for a signed body that is
        not a Lazada push. Lazada sends no delivery id: see `delivery_id`.
        """
        signature = header(headers, "Authorization").strip()
        if not signature:
            raise WebhookRejected("The Lazada push has no Authorization signature", status=401)
        creds = self.credentials
        expected = hmac.new(
            creds.app_secret.get_secret_value().encode(),
            creds.app_key.encode() + body,
            hashlib.sha256,
        ).hexdigest()
        if not signature_matches(signature.lower(), expected):
            raise WebhookRejected(
                "The Lazada push signature does not match this channel's app key and secret",
                status=401,
            )
        return webhook_event(body)

    def owns_push(self, event: WebhookEvent) -> bool:
        """Lazada sends the pushes of every seller an app serves to the app's one push URL: a
        push is this channel's unless both it and the credentials name a seller, and not the
        same one (`LazadaCredentials.seller_id`, learnt at the first token refresh)."""
        seller = self.credentials.seller_id
        return not event.shop or not seller or event.shop == seller

    # -- helpers -----------------------------------------------------------------------------

    def _listings_of(self, item_id: str) -> list[RemoteListing]:
        item = self._client.get_product_item(item_id)
        return listings_from_product(item, include_removed=False)

    def _listings_if_any(self, item_id: str) -> list[RemoteListing]:
        """`_listings_of`, or none for an item Lazada no longer has."""
        item = self._item_if_any(item_id)
        return [] if item is None else listings_from_product(item, include_removed=False)

    def _item_if_any(self, item_id: str) -> Mapping[str, Any] | None:
        """The item as /product/item/get describes it; None when Lazada no longer has it."""
        try:
            return self._client.get_product_item(item_id)
        except CredentialsError:
            raise
        except AdapterError as exc:
            if exc.code in ITEM_GONE:
                return None
            raise

    def _category_id(self, category: str) -> str:
        """A Lazada category id from the POS category: a number is taken as the id itself,
        a name must equal a Lazada leaf category's name (last part of an "A > B" path)."""
        return category_id(category, lambda: self._leaf_categories, service=SERVICE)

    @cached_property
    def _leaf_categories(self) -> dict[str, str]:
        """{lower-cased leaf category name: id}: one /category/tree/get call per adapter."""
        leaves: dict[str, str] = {}
        stack = list(self._client.get_category_tree())
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            children = node.get("children") or []
            if node.get("leaf") or not children:
                leaves.setdefault(str(node.get("name") or "").lower(), str(node["category_id"]))
            stack.extend(children)
        return leaves

    def _migrate_images(self, product: UploadProduct) -> list[str]:
        urls = [url.strip() for url in product.images if url.strip()][:MAX_IMAGES]
        if not urls:
            raise AdapterError(
                f"Lazada needs at least one image for {product.name!r}: add one in the POS",
                retryable=False,
                code="image",
            )
        migrated = []
        for url in urls:
            image = self._client.migrate_image(url).get("image") or {}
            if not image.get("url"):
                raise AdapterError(
                    f"Lazada accepted the image {url} but returned no image URL",
                    retryable=True,
                    code="image",
                )
            migrated.append(str(image["url"]))
        return migrated


# -- parsing Lazada payloads (pure functions) ------------------------------------------------


def listings_from_product(
    product: Mapping[str, Any], *, include_removed: bool
) -> list[RemoteListing]:
    """The listings (one per SKU) of one product from /products/get or /product/item/get.

    A deleted product or SKU is "removed" (left out unless `include_removed`); a SKU is "live"
    when it and its product are active, else "inactive".
    """
    item_id = str(product.get("item_id"))
    attributes = product.get("attributes") or {}
    name = str(attributes.get("name") or "")
    product_status = str(product.get("status") or "").lower()
    updated_at = from_millis(product.get("updated_time"))
    names, _ = _item_variations(product)
    listings = []
    for sku in product.get("skus") or []:
        sku_status = str(sku.get("Status") or "").lower()
        if product_status == "deleted" or sku_status == "deleted":
            status = "removed"
        elif product_status == "active" and sku_status == "active":
            status = "live"
        else:
            status = "inactive"
        if status == "removed" and not include_removed:
            continue
        options = _sale_values(sku, names)
        listings.append(
            RemoteListing(
                item_id=item_id,
                variant_id=str(sku.get("SkuId")),
                sku=str(sku.get("SellerSku") or ""),
                title=f"{name} - {options}" if options else name,
                price=to_decimal(sku.get("price")),
                quantity=to_int(sku.get("quantity")),
                status=status,
                updated_at=updated_at,
            )
        )
    return listings


# -- building Lazada payloads (pure functions) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """Option names, the values of each in first-use order, for a product's variations."""

    names: tuple[str, ...]
    options: tuple[tuple[str, ...], ...]

    def sale_prop(self, variant: UploadVariant) -> dict[str, str]:
        return {name: str(variant.options.get(name, "")).strip() for name in self.names}


def _variation_plan(product: UploadProduct) -> _Plan | None:
    """The product's variations, or None for a single SKU without options; AdapterError
    naming what Lazada would refuse."""
    require_variants(product, service=SERVICE)
    if len(product.name) > MAX_NAME:
        raise AdapterError(
            f"Lazada allows product names of {MAX_NAME} characters; {product.name!r} is longer",
            retryable=False,
            code="param",
        )
    names = option_names(product)
    check_option_names(product, names, service=SERVICE, apart="SKUs")
    if not names:
        return None
    return _extended_plan(product, names, [[] for _ in names], product.variants)


def _extended_plan(
    product: UploadProduct,
    names: Sequence[str],
    existing: Sequence[Sequence[str]],
    variants: Sequence[UploadVariant],
) -> _Plan:
    check_option_names(product, names, service=SERVICE, most=MAX_VARIATIONS)
    too_long = [name for name in names if len(name) > MAX_VARIATION_NAME]
    if too_long:
        raise AdapterError(
            f"Lazada allows option names of {MAX_VARIATION_NAME} characters; shorten "
            f"{', '.join(too_long)}",
            retryable=False,
            code="param",
        )
    options = [list(values) for values in existing]
    combos = set()
    for variant in variants:
        combo = []
        for position, name in enumerate(names):
            value = option_value(product, variant, name)
            if len(value) > MAX_OPTION_LENGTH:
                raise AdapterError(
                    f"Lazada allows option values of {MAX_OPTION_LENGTH} characters; {value!r} "
                    f"of {variant.sku!r} is longer",
                    retryable=False,
                    code="param",
                )
            if value not in options[position]:
                options[position].append(value)
            combo.append(value)
        if tuple(combo) in combos:
            raise AdapterError(
                f"Two variants of {product.name!r} have the same options ({', '.join(combo)})",
                retryable=False,
                code="param",
            )
        combos.add(tuple(combo))
    for name, values in zip(names, options, strict=True):
        if len(values) > MAX_OPTIONS:
            raise AdapterError(
                f"Lazada allows {MAX_OPTIONS} values per option; {name} of {product.name!r} has "
                f"{len(values)}",
                retryable=False,
                code="param",
            )
    return _Plan(tuple(names), tuple(tuple(values) for values in options))


def _variation_node(names: Sequence[str], options: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Lazada's `variation` block: custom sales attributes, one per option name."""
    return {
        f"variation{position}": {
            "name": name,
            "hasImage": False,
            "customize": True,
            "options": {"option": list(values)},
        }
        for position, (name, values) in enumerate(zip(names, options, strict=True), start=1)
    }


def _package(product: UploadProduct) -> dict[str, Decimal]:
    """Package weight (kg) and dimensions (cm), two decimals: mandatory for every Lazada SKU."""
    weight = require_weight(product, service=SERVICE)
    if product.dimensions_cm is None or any(side <= 0 for side in product.dimensions_cm):
        raise AdapterError(
            f"Lazada needs package dimensions for {product.name!r}: fill in its length, width "
            "and height (cm) in the POS",
            retryable=False,
            code="param",
        )
    length, width, height = (_two_places(side) for side in product.dimensions_cm)
    return {
        "package_weight": _two_places(weight),
        "package_length": length,
        "package_width": width,
        "package_height": height,
    }


def _sku_node(
    variant: UploadVariant,
    package: Mapping[str, Decimal],
    sale_prop: Mapping[str, str],
    product: UploadProduct,
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "SellerSku": variant.sku,
        "quantity": variant.quantity,
        "price": variant.price,
        "Status": "active" if product.is_active else "inactive",
        **package,
    }
    if sale_prop:
        node["saleProp"] = dict(sale_prop)
    return node


def _attributes(product: UploadProduct) -> dict[str, str]:
    return {
        "name": product.name,
        # An empty description would delete Lazada's; the name is the least surprising stand-in.
        "description": product.description.strip() or product.name,
        "brand": product.brand.strip() or "No Brand",
    }


def _item_variations(item: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Option names and values of an item, from its `variation` block (Variation1, ...)."""
    variation = item.get("variation") or {}
    names, options = [], []
    if isinstance(variation, dict):
        for key in sorted(variation, key=lambda k: k.lower()):
            node = variation[key]
            if isinstance(node, dict) and node.get("name"):
                names.append(str(node["name"]))
                values = node.get("options") or []
                if isinstance(values, dict):  # the request shape, {"option": [...]}
                    values = values.get("option") or []
                options.append([str(v) for v in values])
    return names, options


def _sale_values(sku: Mapping[str, Any], names: Sequence[str]) -> str:
    """A SKU's option values joined by "," in the item's variation order ("Black,M")."""
    sale_prop = sku.get("saleProp") or {}
    if not isinstance(sale_prop, dict) or not sale_prop:
        return ""
    ordered = [str(sale_prop[name]) for name in names if name in sale_prop]
    rest = [str(value) for name, value in sale_prop.items() if name not in names]
    return ",".join(ordered + rest)


def _live_skus(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        sku
        for sku in item.get("skus") or []
        if isinstance(sku, dict) and str(sku.get("Status") or "").lower() != "deleted"
    ]


def _id_problem(item_id: str, variant_id: str, sku_id: str) -> str:
    if not item_id.isdigit() or (variant_id and not variant_id.isdigit()):
        return "not a Lazada item/SKU id"
    if not sku_id:
        return (
            f"Lazada item {item_id} does not exist or has several SKUs: name the SKU "
            "(variant id) to update"
        )
    return ""


def _value(update: QuantityUpdate | PriceUpdate) -> int | Decimal:
    return update.quantity if isinstance(update, QuantityUpdate) else update.price


def _refused(detail: Sequence[Mapping[str, Any]]) -> dict[str, str | AdapterError]:
    """Lazada's per-SKU failures by SkuId; a reason naming no SKU (under "") fails them all.
    A SKU refused because another edit of its item was under way (4147) may be sent again."""
    failed: dict[str, str | AdapterError] = {}
    unnamed: list[str] = []
    for row in detail:
        reason = str(row.get("message") or "refused by Lazada")
        sku_id = str(row.get("sku_id") or row.get("SkuId") or "")
        if not sku_id:
            unnamed.append(reason)
        elif str(row.get("code") or "") == EDIT_UNDER_WAY:
            failed[sku_id] = AdapterError(reason, retryable=True, code=EDIT_UNDER_WAY)
        else:
            failed[sku_id] = reason
    if unnamed:
        failed[""] = "; ".join(unnamed)
    return failed


# -- small conversions ------------------------------------------------------------------------


def _halves(low: int, high: int, depth: int) -> list[tuple[int, int, int]]:
    """A creation-time window cut in two: bounds are inclusive and whole seconds, so the
    halves do not overlap. No halves for a window of one second: it cannot be cut."""
    if high <= low:
        return []
    middle = (low + high) // 2
    return [(low, middle, depth), (middle + 1, high, depth)]


def _iso(second: int) -> str:
    """ISO 8601 in UTC, as Lazada's `*_after` / `*_before` filters take it."""
    return iso_utc(second, zone="+00:00")


def _two_places(value: Decimal) -> Decimal:
    return max(value.quantize(CENT, rounding=ROUND_HALF_UP), CENT)
