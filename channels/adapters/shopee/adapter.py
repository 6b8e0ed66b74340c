"""Shopee behind omni's Adapter protocol: listings in, quantities and prices out, products created.

Shopee's shape, in short: an item either has no models (price and stock on the item, `model_id`
0 in write calls) or has one to two option tiers and one model per combination. omni's listing
is the item in the first case and each model in the second.
"""

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cached_property, partial
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
)
from channels.adapters.convert import (
    to_decimal,
    utc_from_seconds,
    watermark_second,
)
from channels.adapters.http import download_image
from channels.adapters.paging import IncompleteRead, PageTally, reported_total
from channels.adapters.readahead import ReadAhead
from channels.adapters.shopee import orders as shopee_orders
from channels.adapters.shopee.client import SERVICE, ShopeeClient
from channels.adapters.shopee.credentials import ShopeeCredentials
from channels.adapters.uploads import (
    category_id,
    check_distinct_options,
    check_option_names,
    option_names,
    option_value,
    require_variants,
    require_weight,
)

logger = logging.getLogger(__name__)

# A full scan lists what a buyer can see or the seller can re-enable; deleted items simply drop
# out, and the caller marks what it no longer sees as removed. An incremental scan must also ask
# for deleted and banned items, or deletions since the watermark would go unnoticed.
FULL_SCAN_STATUSES = ("NORMAL", "UNLIST")
INCREMENTAL_STATUSES = ("NORMAL", "UNLIST", "BANNED", "SELLER_DELETE", "SHOPEE_DELETE")
REMOVED_STATUSES = frozenset({"BANNED", "SELLER_DELETE", "SHOPEE_DELETE"})
LISTING_STATUS = {"NORMAL": "live", "UNLIST": "inactive", "REVIEWING": "inactive"}
MAX_TIERS = 2  # Shopee's limit on option names per item
MAX_IMAGES = 9  # Shopee's limit on images per item


class ShopeeAdapter(kit.BaseAdapter[ShopeeCredentials, ShopeeClient]):
    """omni's Adapter for one Shopee shop (construction, credentials, the calls in flight and
    the worker pool: `kit.BaseAdapter`)."""

    kind = "shopee"
    service = SERVICE
    limits = Limits(
        page_size=100,
        detail_ids_per_call=50,
        stock_updates_per_call=50,
        price_updates_per_call=50,
        one_item_per_update=True,
        order_ids_per_call=50,
        order_window_days=15,
        # Unpublished (marketplace-apis.md §1.6 names only the throttle codes): a conservative
        # default; a channel sets its own, and throttling narrows the adapter's window anyway.
        max_in_flight=8,
    )
    STATUS_TABLE = shopee_orders.STATUS_TABLE
    credentials_model = ShopeeCredentials
    client_class = ShopeeClient
    order_number_pattern = shopee_orders.ORDER_SN
    order_number_form = shopee_orders.ORDER_SN_FORM

    # -- Adapter protocol ------------------------------------------------------------------

    def check_credentials(self) -> None:
        """One cheap authenticated call (get_shop_info); CredentialsError if Shopee refuses."""
        self._client.get_shop_info()

    def iter_listing_pages(
        self, *, updated_since: datetime | None = None
    ) -> Iterator[list[RemoteListing]]:
        """One list of listings per get_item_list page (up to 100 items, more listings).

        Costs per page: one list call, one base-info call per 50 items and one model-list call
        per item with models. Up to `max_in_flight` calls run at once: the pages after the
        first are independent once its `total_count` is known, so several are read ahead, and
        each page's details are read while the next pages are listed (`kit.read_ahead`).
        With `updated_since`, items Shopee changed from that second until now come back,
        deleted and banned ones as "removed"; a removed item Shopee no longer describes comes
        back as one listing with variant_id "". Take the next watermark before calling, so
        changes made during the scan are picked up by the next one.

        IncompleteRead (channels.adapters.paging) when a page comes back empty or short while
        `has_next_page` says more follow, or the list ends short of `total_count`.
        """
        statuses, window = self._scan_filter(updated_since)
        with self.pool() as pool_map:

            def read(page: tuple[list[dict[str, Any]], int]) -> list[RemoteListing]:
                summaries, depth = page
                return self._page_listings(summaries, pool_map, depth=depth)

            walk = partial(self._item_pages, statuses=statuses, window=window)
            for listings in self.read_ahead(walk, read):
                if listings:
                    yield listings

    def _item_pages(
        self,
        ahead: ReadAhead[Any],
        *,
        statuses: tuple[str, ...],
        window: dict[str, int],
    ) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """The walk over get_item_list: (the page's items, how many calls deep it is). The
        offsets up to the `total_count` the latest page reports are read ahead; the walk still
        goes on while `has_next_page` says more follow, and stops when it says not."""
        size = self.limits.page_size

        def fetch(offset: int) -> dict[str, Any]:
            return self._client.get_item_list(
                offset=offset, page_size=size, item_status=statuses, **window
            )

        def plan(offset: int, page: dict[str, Any]) -> range:
            total = reported_total(page.get("total_count"))
            return range(offset + size, total or 0, size) if page.get("has_next_page") else range(0)

        read = ahead.reader(fetch, plan)
        tally = PageTally(SERVICE, "items", size)
        offset, depth, planned_to = 0, 1, 0
        while True:
            page = read(offset)
            summaries = page.get("item") or []
            more = bool(page.get("has_next_page"))
            tally.page(len(summaries), more=more, total=reported_total(page.get("total_count")))
            if offset == 0:
                planned_to = max(plan(0, page), default=0)
            if summaries:
                yield summaries, depth
            if not more:
                return
            offset = max(int(page.get("next_offset") or 0), offset + len(summaries))
            # Planned pages needed only the first; a page past the plan needed this one.
            depth = 2 if offset <= planned_to else depth + 1

    def create_product(self, product: UploadProduct) -> list[RemoteListing]:
        """Create the item, then its option tiers and models; the listings Shopee now holds.

        Calls: get_category and get_channel_list (once per adapter), one image download and
        upload per image (the first 9), add_item, init_tier_variation when the product has
        options, then the reads that return the listings. The brand goes as a free-text name
        (brand_id 0); Shopee's brand ids are per category and are not mapped.
        """
        # Everything that can be checked locally is checked before Shopee is asked to change.
        plan = _tier_plan(product)
        body = self._add_item_body(product, has_models=plan is not None)
        item_id = self._add_item(product, body)
        if plan is not None:
            self._add_models(item_id, *plan)
        with self.read_back(f"item {item_id}"):
            return self._listings_of_items([item_id], pool_map=kit.serial_map)

    def _add_item(self, product: UploadProduct, body: Mapping[str, Any]) -> int:
        created = self._client.add_item(body)
        if not created.get("item_id"):
            raise AdapterError(
                f"Shopee accepted {product.name!r} but returned no item id: check Seller Centre "
                "before uploading again",
                retryable=False,
                code="add_item",
            )
        return int(created["item_id"])

    def _add_models(
        self, item_id: int, tier_variation: list[dict[str, Any]], models: list[dict[str, Any]]
    ) -> None:
        try:
            self._client.init_tier_variation(
                item_id=item_id, tier_variation=tier_variation, model=models
            )
        except AdapterError as exc:
            raise AdapterError(
                f"Shopee created item {item_id} but refused its variants: {exc} Fix the "
                "variants, then delete the item in Seller Centre before uploading again.",
                retryable=False,
                code=exc.code,
            ) from exc

    def update_quantities(self, updates: Sequence[QuantityUpdate]) -> list[PushResult]:
        """Absolute seller stock; one update_stock call per item and 50 models, in order.

        A refused call fails only its own listings (credential errors stop everything); a
        listing in Shopee's `failure_list` fails with Shopee's reason.
        """

        def send(batch: kit.PushBatch) -> Mapping[str, str]:
            stock_list = [
                {"model_id": row.target, "seller_stock": [{"stock": row.update.quantity}]}
                for row in batch.rows
            ]
            return _refused(
                self._client.update_stock(item_id=int(batch.group), stock_list=stock_list)
            )

        return self.push(
            updates, per_call=self.limits.stock_updates_per_call, resolve=_resolve, send=send
        )

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Original prices; one update_price call per item and 50 models, in order."""

        def send(batch: kit.PushBatch) -> Mapping[str, str]:
            price_list = [
                {"model_id": row.target, "original_price": _json_number(row.update.price)}
                for row in batch.rows
            ]
            return _refused(
                self._client.update_price(item_id=int(batch.group), price_list=price_list)
            )

        return self.push(
            updates, per_call=self.limits.price_updates_per_call, resolve=_resolve, send=send
        )

    # -- catalog pushes --------------------------------------------------------------------

    def update_product(self, item_id: str, product: UploadProduct) -> None:
        """Overwrite the item's synced fields, then its models' (or its own) prices.

        Calls: image downloads and uploads, update_item, get_model_list for an item with
        models, and one update_price per 50 models. POS-only fields are not in UploadProduct,
        so they cannot go.
        """
        item = int(item_id)
        body = self._add_item_body(product, has_models=len(product.variants) > 1)
        fields = (
            "item_name",
            "description",
            "weight",
            "category_id",
            "image",
            "brand",
            "dimension",
        )
        self._client.update_item({"item_id": item, **{k: body[k] for k in fields if k in body}})
        by_key = self._models_by_sku(item)
        updates = [
            PriceUpdate(item_id, by_key.get(sku_key(v.sku), ""), v.price)
            for v in product.variants
            if not by_key or sku_key(v.sku) in by_key
        ]
        failed = [r for r in self.update_prices(updates) if not r.ok]
        if failed:
            raise AdapterError(
                f"Shopee updated item {item_id} but refused {len(failed)} price(s): "
                f"{failed[0].error}",
                retryable=any(r.retryable for r in failed),
                code="update_price",
            )

    def add_variants(
        self, item_id: str, product: UploadProduct, new: Sequence[UploadVariant]
    ) -> list[RemoteListing]:
        """Add POS variants to an item with models: extend its option lists where a new
        value appears (update_tier_variation), then add_model; the new listings."""
        item = int(item_id)
        current = self._client.get_model_list(item)
        tiers = [
            {"name": t["name"], "option_list": [dict(o) for o in t.get("option_list") or []]}
            for t in current.get("tier_variation") or []
        ]
        if not tiers:
            raise AdapterError(
                f"Shopee item {item_id} has no variants to add to: upload the product again "
                "as a product with options",
                retryable=False,
                code="param",
            )
        rows, grew = _new_model_rows(product, new, tiers)
        if grew:
            self._client.update_tier_variation(item_id=item, tier_variation=tiers)
        self._client.add_model(item_id=item, model_list=rows)
        wanted = {sku_key(v.sku) for v in new}
        listings = self._listings_of_items([item], pool_map=kit.serial_map)
        return [lst for lst in listings if sku_key(lst.sku) in wanted]

    def set_active(self, item_id: str, active: bool) -> None:
        answer = self._client.unlist_item(item_id=int(item_id), unlist=not active)
        failures = answer.get("failure_list") or []
        if failures:
            raise AdapterError(
                f"Shopee could not {'list' if active else 'unlist'} item {item_id}: "
                f"{failures[0].get('failed_reason', 'no reason given')}",
                retryable=False,
                code="unlist_item",
            )

    def delete_product(self, item_id: str) -> None:
        self._client.delete_item(item_id=int(item_id))

    def _models_by_sku(self, item: int) -> dict[str, str]:
        """{normalised model SKU: model id} of an item; empty for an item without models."""
        info = self._client.get_item_base_info([item]).get("item_list") or []
        if not info or not info[0].get("has_model"):
            return {}
        models = self._client.get_model_list(item).get("model") or []
        return {sku_key(m.get("model_sku", "")): str(m["model_id"]) for m in models}

    # -- reading listings ------------------------------------------------------------------

    def confirm_listings(self, item_ids: Sequence[str]) -> list[RemoteListing]:
        """The items' listings by get_item_base_info (50 items a call) and get_model_list (one
        per item with models); a deleted item comes back "removed" or not at all."""
        ids = [int(item_id) for item_id in item_ids if item_id.isdigit()]
        with self.pool() as pool_map:
            return self._listings_of_items(ids, pool_map=pool_map)

    def _scan_filter(
        self, updated_since: datetime | None
    ) -> tuple[tuple[str, ...], dict[str, int]]:
        if updated_since is None:
            return FULL_SCAN_STATUSES, {}
        since = watermark_second(updated_since)
        until = max(since, int(self._clock()))
        return INCREMENTAL_STATUSES, {"update_time_from": since, "update_time_to": until}

    def _page_listings(
        self, summaries: Sequence[Mapping[str, Any]], pool_map: kit.PoolMap, *, depth: int
    ) -> list[RemoteListing]:
        ids = [int(summary["item_id"]) for summary in summaries]
        described = self._listings_of_items(ids, pool_map=pool_map, depth=depth)
        seen = {listing.item_id for listing in described}
        placeholders = [
            _removed_item(summary)
            for summary in summaries
            if str(summary["item_id"]) not in seen
            and summary.get("item_status") in REMOVED_STATUSES
        ]
        return described + placeholders

    def _listings_of_items(
        self, ids: Sequence[int], *, pool_map: kit.PoolMap, depth: int = 0
    ) -> list[RemoteListing]:
        """The listings of these items: base info 50 items a call, then one model list per
        item with models, each round's calls `pool_map` at a time. `depth`: how many calls
        deep the list page naming them was (for `CallStats.chain`)."""
        chunks = list(kit.chunks(ids, self.limits.detail_ids_per_call))
        infos = [
            info
            for answer in pool_map(self._client.get_item_base_info, chunks)
            for info in answer.get("item_list") or []
        ]
        with_models = [int(info["item_id"]) for info in infos if info.get("has_model")]
        model_lists = dict(
            zip(with_models, pool_map(self._client.get_model_list, with_models), strict=True)
        )
        self.chained(depth + (2 if with_models else 1))
        listings: list[RemoteListing] = []
        for info in infos:
            listings.extend(listings_from_item(info, model_lists.get(int(info["item_id"]))))
        return listings

    # -- writing ---------------------------------------------------------------------------

    def _add_item_body(self, product: UploadProduct, *, has_models: bool) -> dict[str, Any]:
        require_variants(product, service=SERVICE)
        weight = require_weight(product, service=SERVICE)
        first = product.variants[0]
        body: dict[str, Any] = {
            "item_name": product.name,
            # Shopee refuses an empty description; the name is the least surprising stand-in.
            "description": product.description.strip() or product.name,
            "item_sku": "" if has_models else first.sku,
            "original_price": _json_number(min(variant.price for variant in product.variants)),
            "seller_stock": [{"stock": 0 if has_models else first.quantity}],
            "weight": _json_number(weight),
            "category_id": self._category_id(product.category),
            "image": {"image_id_list": self._upload_images(product)},
            "logistic_info": [{"logistic_id": i, "enabled": True} for i in self._logistics()],
            "brand": {"brand_id": 0, "original_brand_name": product.brand.strip() or "NoBrand"},
            "item_status": "NORMAL" if product.is_active else "UNLIST",
            "condition": "NEW",
        }
        if product.dimensions_cm is not None:
            length, width, height = (max(1, math.ceil(side)) for side in product.dimensions_cm)
            body["dimension"] = {
                "package_length": length,
                "package_width": width,
                "package_height": height,
            }
        return body

    def _category_id(self, category: str) -> int:
        """A Shopee category id from the POS category: a number is taken as the id itself,
        a name must equal a Shopee leaf category's name (last part of a "A > B" path)."""
        return int(category_id(category, lambda: self._leaf_categories, service=SERVICE))

    @cached_property
    def _leaf_categories(self) -> dict[str, int]:
        """{lower-cased leaf category name: id}: one get_category call per adapter."""
        leaves: dict[str, int] = {}
        for node in self._client.get_category().get("category_list") or []:
            if not node.get("has_children"):
                name = node.get("display_category_name") or node["original_category_name"]
                leaves[str(name).lower()] = int(node["category_id"])
        return leaves

    @cached_property
    def _logistic_ids(self) -> list[int]:
        """The enabled shipping channels: one get_channel_list call per adapter."""
        channels = self._client.get_channel_list().get("logistics_channel_list") or []
        return [
            int(channel["logistics_channel_id"]) for channel in channels if channel.get("enabled")
        ]

    def _logistics(self) -> list[int]:
        if not self._logistic_ids:
            raise AdapterError(
                "The Shopee shop has no enabled shipping channel: enable one in Seller Centre",
                retryable=False,
                code="logistics",
            )
        return self._logistic_ids

    def _upload_images(self, product: UploadProduct) -> list[str]:
        urls = [url for url in product.images if url.strip()][:MAX_IMAGES]
        if not urls:
            raise AdapterError(
                f"Shopee needs at least one image for {product.name!r}: add one in the POS",
                retryable=False,
                code="image",
            )
        return [self._upload_image(url) for url in urls]

    def _upload_image(self, url: str) -> str:
        image = download_image(self._caller, url)
        answer = self._client.upload_image(
            filename=image.filename, content=image.content, content_type=image.content_type
        )
        return _image_id(answer)

    # -- orders ----------------------------------------------------------------------------

    def order_pages(self, start: int, end: int) -> Iterator[list[RemoteOrder]]:
        """One list per get_order_list page of a window (`kit.BaseAdapter.iter_orders` cuts
        the range into windows of at most `limits.order_window_days`: Shopee refuses wider
        ones). Calls per page of up to 100 orders: the list call, one detail call per 50
        orders and one tracking-number call per shipped order.

        IncompleteRead (retryable: the download keeps its watermark and reads the range
        again) for a page empty or short while `more` says others follow, for `more` without
        a `next_cursor`, and for an order listed that the detail call does not return: an
        order left out would never be downloaded, and its units never taken off the POS.
        """
        time_to = end - 1  # Shopee's time_to is inclusive
        tally = PageTally(SERVICE, "orders", self.limits.page_size)
        cursor = ""
        while True:
            page = self._client.get_order_list(
                time_from=start, time_to=time_to, page_size=self.limits.page_size, cursor=cursor
            )
            numbers = [str(row["order_sn"]) for row in page.get("order_list") or []]
            more = bool(page.get("more"))
            tally.page(len(numbers), more=more)
            if numbers:
                yield self._listed_orders(numbers)
            if not more:
                return
            cursor = str(page.get("next_cursor") or "")
            if not cursor:
                raise tally.cannot_continue("gave no next_cursor")

    def _listed_orders(self, numbers: Sequence[str]) -> list[RemoteOrder]:
        orders = self.get_orders(numbers)
        missing = set(numbers) - {order.order_number for order in orders}
        if missing:
            raise IncompleteRead(
                f"{SERVICE}'s order detail left out {len(missing)} of the {len(numbers)} orders "
                f"its order list named ({', '.join(sorted(missing)[:3])})"
            )
        return orders

    def orders_by_number(self, numbers: Sequence[str]) -> list[RemoteOrder]:
        """The orders with their lines, in Shopee's order; unknown numbers are left out (a
        number that is not letters and digits never gets here: `order_number_pattern`).

        Calls: one get_order_detail (for up to 50 numbers), plus one get_tracking_number per
        order that has been shipped (Shopee keeps tracking numbers out of the order detail).
        """
        orders: list[RemoteOrder] = []
        answer = self._client.get_order_detail(numbers, fields=shopee_orders.DETAIL_FIELDS)
        for detail in answer.get("order_list") or []:
            order = shopee_orders.order_from_detail(detail)
            if order.state in shopee_orders.SHIPPED_STATES:
                order = shopee_orders.order_from_detail(
                    detail, tracking_number=self._tracking_number(order.order_number)
                )
            orders.append(order)
        return orders

    def _tracking_number(self, order_sn: str) -> str:
        """The order's tracking number; "" when Shopee refuses to say for good (a parcel with
        none yet, or an app not allowed the logistics API): the order, its invoice and its
        shipment matter more than the number, which a later change of the order brings. A
        passing failure (a server error, throttling) and refused credentials still fail the
        call."""
        try:
            answer = self._client.get_tracking_number(order_sn)
        except CredentialsError:
            raise
        except AdapterError as exc:
            if exc.retryable:
                raise
            logger.warning("Shopee gave no tracking number for order %s: %s", order_sn, exc)
            return ""
        return str(answer.get("tracking_number") or "")

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check a push as Shopee signs it (HMAC of `url|body` with the partner key)."""
        return shopee_orders.webhook_event(
            partner_key=self.credentials.partner_key.get_secret_value(),
            url=url,
            headers=headers,
            body=body,
        )

    def owns_push(self, event: WebhookEvent) -> bool:
        """Shopee sends the pushes of every shop an app serves to the app's one push URL: a
        push is this channel's when it names this shop (or no shop)."""
        return not event.shop or event.shop == str(self.credentials.shop_id)


# -- parsing Shopee payloads (pure functions) --------------------------------------------------


def listings_from_item(
    info: Mapping[str, Any], model_list: Mapping[str, Any] | None
) -> list[RemoteListing]:
    """The listings of one item: `info` from get_item_base_info, `model_list` from
    get_model_list (None for an item without models)."""
    item_id = str(info["item_id"])
    name = str(info.get("item_name") or "")
    item_status = str(info.get("item_status") or "")
    updated_at = utc_from_seconds(info.get("update_time"))
    models = (model_list or {}).get("model") or []
    if not models:
        return [
            RemoteListing(
                item_id=item_id,
                variant_id="",
                sku=str(info.get("item_sku") or ""),
                title=name,
                price=_price(info.get("price_info")),
                quantity=_quantity(info.get("stock_info_v2")),
                status=_status(item_status),
                updated_at=updated_at,
            )
        ]
    tiers = (model_list or {}).get("tier_variation") or []
    return [
        RemoteListing(
            item_id=item_id,
            variant_id=str(model["model_id"]),
            sku=str(model.get("model_sku") or ""),
            title=f"{name} - {_model_name(model, tiers)}",
            price=_price(model.get("price_info")),
            quantity=_quantity(model.get("stock_info_v2")),
            status=_status(item_status, str(model.get("model_status") or "")),
            updated_at=updated_at,
        )
        for model in models
    ]


def _removed_item(summary: Mapping[str, Any]) -> RemoteListing:
    return RemoteListing(
        item_id=str(summary["item_id"]),
        variant_id="",
        sku="",
        title="",
        price=Decimal("0"),
        quantity=0,
        status="removed",
        updated_at=utc_from_seconds(summary.get("update_time")),
    )


def _status(item_status: str, model_status: str = "") -> str:
    if item_status in REMOVED_STATUSES:
        return "removed"
    status = LISTING_STATUS.get(item_status, "inactive")
    if status == "live" and model_status and model_status != "MODEL_NORMAL":
        return "inactive"
    return status


def _model_name(model: Mapping[str, Any], tiers: Sequence[Mapping[str, Any]]) -> str:
    """Option values joined by "," as Shopee shows them ("Black,M"), from the tier indexes."""
    values = []
    for tier, index in zip(tiers, model.get("tier_index") or [], strict=False):
        options = tier.get("option_list") or []
        if 0 <= int(index) < len(options):
            values.append(str(options[int(index)].get("option", "")))
    return ",".join(values) or str(model.get("model_name") or model["model_id"])


def _price(price_info: Any) -> Decimal:
    if not price_info:
        return Decimal("0")
    return to_decimal(price_info[0].get("original_price", 0))


def _quantity(stock_info: Any) -> int:
    if not stock_info:
        return 0
    seller_stock = stock_info.get("seller_stock")
    if seller_stock is not None:
        return sum(int(row.get("stock", 0)) for row in seller_stock)
    return int((stock_info.get("summary_info") or {}).get("total_available_stock", 0))


def _image_id(answer: Mapping[str, Any]) -> str:
    info = answer.get("image_info") or {}
    if not info and answer.get("image_info_list"):
        info = answer["image_info_list"][0].get("image_info") or {}
    if not info.get("image_id"):
        raise AdapterError("Shopee accepted an image but returned no image id", retryable=True)
    return str(info["image_id"])


# -- building Shopee payloads (pure functions) -------------------------------------------------


def _tier_plan(product: UploadProduct) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """`tier_variation` and `model` for init_tier_variation, or None for a plain item.

    Option names come from `product.option_names`, else from the first variant's options.
    Each tier's options keep the order in which variants first use them.
    """
    names = option_names(product)
    check_option_names(product, names, service=SERVICE, most=MAX_TIERS)
    if not names:
        return None
    options: list[list[str]] = [[] for _ in names]
    models = [_model_row(product, variant, names, options) for variant in product.variants]
    check_distinct_options(product, [tuple(model["tier_index"]) for model in models])
    tier_variation = [
        {"name": name, "option_list": [{"option": value} for value in values]}
        for name, values in zip(names, options, strict=True)
    ]
    return tier_variation, models


def _model_row(
    product: UploadProduct, variant: UploadVariant, names: Sequence[str], options: list[list[str]]
) -> dict[str, Any]:
    tier_index = []
    for tier, name in enumerate(names):
        value = option_value(product, variant, name)
        if value not in options[tier]:
            options[tier].append(value)
        tier_index.append(options[tier].index(value))
    return {
        "tier_index": tier_index,
        "model_sku": variant.sku,
        "original_price": _json_number(variant.price),
        "seller_stock": [{"stock": variant.quantity}],
    }


def _resolve(update: QuantityUpdate | PriceUpdate) -> tuple[str, str, int]:
    """(item id, model id, model id as Shopee's number) of an update: its call is limited to
    its item, and Shopee names a refused row by model id (0: the item itself)."""
    try:
        item_id = int(update.item_id)
        model_id = int(update.variant_id or 0)
    except ValueError:
        raise kit.Unpushable("not a Shopee item/model id") from None
    return str(item_id), str(model_id), model_id


def _refused(answer: Mapping[str, Any]) -> dict[str, str]:
    """{model id: Shopee's reason} of a stock or price call's `failure_list`."""
    return {
        str(int(failure.get("model_id", 0))): str(
            failure.get("failed_reason") or "refused by Shopee"
        )
        for failure in answer.get("failure_list") or []
    }


def _json_number(value: Decimal) -> int | float:
    """Whole amounts as JSON integers (Shopee takes only integers in most regions)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _new_model_rows(
    product: UploadProduct, new: Sequence[UploadVariant], tiers: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """add_model rows for `new`, extending `tiers` in place with unseen option values."""
    names = [t["name"] for t in tiers]
    grew = False
    rows = []
    for variant in new:
        tier_index = []
        for tier, name in zip(tiers, names, strict=True):
            value = option_value(product, variant, name)
            values = [o["option"] for o in tier["option_list"]]
            if value not in values:
                tier["option_list"].append({"option": value})
                values.append(value)
                grew = True
            tier_index.append(values.index(value))
        rows.append(
            {
                "tier_index": tier_index,
                "model_sku": variant.sku,
                "original_price": _json_number(variant.price),
                "seller_stock": [{"stock": variant.quantity}],
            }
        )
    return rows, grew
