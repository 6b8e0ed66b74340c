"""Catalog pushes: the POS is the system of record (BRIEF §3).

A change to a product's synced fields, a variant added, the product activated, deactivated or
deleted in the POS is pushed to every channel where the product is listed. POS-only fields never
go (the adapters receive an UploadProduct, which has none). Nothing flows back: scans update
listings, never the catalog.

Prices go through the channel's price rule and overrides (channels.pricing). A channel selling
in another currency than the POS is never sent a price: the pushes that carry prices (the
synced fields, variants added) are recorded as failed with the reason; enabling, disabling and
deleting still go.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from django.db import transaction
from django.db.models import Prefetch

from catalog.models import Product, Variant
from channels.adapters.base import AdapterError
from channels.listing_store import listings_mark_duplicates
from channels.listings import _record_uploaded, upload_product
from channels.models import CatalogPush, Channel, Listing
from channels.pricing import channel_prices, price_problem
from channels.services import adapter_for
from channels.stock import channel_quantities

logger = logging.getLogger(__name__)
Action = CatalogPush.Action


def on_product_changed(sender, product_id: int, changed, created_variant_ids, **kwargs) -> None:
    """Listener of catalog.signals.product_changed: push once the change commits."""
    transaction.on_commit(
        lambda: _enqueue(
            "channels.tasks.catalog_push", product_id, list(changed), list(created_variant_ids)
        )
    )


def on_product_deleted(sender, product_id: int, variant_ids, **kwargs) -> None:
    """Listener of catalog.signals.product_deleted, sent before the delete: remember where the
    product is listed, then delete it there once the delete commits."""
    items = sorted(
        set(
            Listing.objects.filter(variant_id__in=list(variant_ids))
            .present()
            .values_list("channel_id", "item_id")
        )
    )
    if items:
        transaction.on_commit(
            lambda: _enqueue("channels.tasks.catalog_delete", product_id, [list(i) for i in items])
        )


def _enqueue(func: str, *args) -> None:
    from django_q.tasks import async_task

    async_task(func, *args, group="catalog-push")


def catalog_push(
    *, product_id: int, changed: Sequence[str], created_variant_ids: Sequence[int] = ()
) -> list[CatalogPush]:
    """Push one product's change to every channel item that lists it; one record per call."""
    product = (
        Product.objects.select_related("brand", "category")
        .prefetch_related(
            "images", Prefetch("variants", queryset=Variant.objects.order_by("position", "pk"))
        )
        .filter(pk=product_id)
        .first()
    )
    if product is None:
        return []
    records = []
    for channel, item_ids in _items_by_channel(product).items():
        adapter = adapter_for(channel)
        for item_id in item_ids:
            records += _push_item(channel, adapter, product, item_id, changed, created_variant_ids)
    return records


def _items_by_channel(product: Product) -> dict[Channel, list[str]]:
    listings = (
        Listing.objects.filter(variant__product=product, channel__is_active=True)
        .present()
        .select_related("channel")
        .order_by("channel_id", "item_id")
    )
    grouped: dict[Channel, list[str]] = defaultdict(list)
    for listing in listings:
        if listing.item_id not in grouped[listing.channel]:
            grouped[listing.channel].append(listing.item_id)
    return grouped


def _push_item(channel, adapter, product, item_id, changed, created_ids) -> list[CatalogPush]:
    variants = list(product.variants.all())
    # {variant id: its SKU on the channel}: a listed variant keeps the SKU it carries there
    listed = dict(
        Listing.objects.filter(channel=channel, item_id=item_id, variant__isnull=False)
        .present()
        .values_list("variant_id", "sku")
    )
    upload = _uploads(channel, product, variants)
    steps: list[tuple[str, object]] = []
    synced = [f for f in changed if f != "is_active"]
    if synced:
        mine = [v for v in variants if v.pk in listed]
        steps.append((Action.UPDATE, lambda: adapter.update_product(item_id, upload(mine, listed))))
    new = [v for v in variants if v.pk in set(created_ids) and v.pk not in listed]
    if new:
        steps.append(
            (
                Action.ADD_VARIANTS,
                lambda: _add(channel, adapter, item_id, upload(variants, listed), new),
            )
        )
    if "is_active" in changed:
        action = Action.ACTIVATE if product.is_active else Action.DEACTIVATE
        steps.append((action, lambda: adapter.set_active(item_id, product.is_active)))
    return [_attempt(channel, product.pk, item_id, action, call) for action, call in steps]


def _uploads(channel, product, variants: list[Variant]):
    """`upload(some variants)` -> the UploadProduct of the product with those variants, at the
    channel's quantities and prices. For a channel that cannot be sent prices, it refuses with
    the reason, as a marketplace refusal would be (recorded, not retried as it is). Cost: the
    quantities' and the prices' queries, once."""
    quantities = channel_quantities(channel=channel, variant_ids=[v.pk for v in variants])
    problem = price_problem(channel)
    prices = (
        {} if problem else channel_prices(channel=channel, variant_ids=[v.pk for v in variants])
    )

    def upload(chosen: list[Variant], skus: Mapping[int, str]):
        if problem is not None:
            raise AdapterError(str(problem), retryable=False, code="currency")
        return upload_product(product, chosen, quantities, prices, skus)

    return upload


def _add(channel, adapter, item_id, whole, new: list[Variant]) -> None:
    wanted = {v.sku_key for v in new}
    variants = [uv for uv in whole.variants if uv.sku.strip().lower() in wanted]
    created = adapter.add_variants(item_id, whole, variants)
    _record_uploaded(channel, new, created)


def _attempt(channel, product_id: int, item_id: str, action: str, call) -> CatalogPush:
    """Run one push; record it either way. One bad item never blocks the rest."""
    record = CatalogPush(channel=channel, product_id=product_id, item_id=item_id, action=action)
    try:
        call()
    except AdapterError as exc:
        record.error = str(exc)[:500]
        record.retryable = exc.retryable
        logger.warning("catalog push %s of item %s on %s failed: %s", action, item_id, channel, exc)
    record.save()
    return record


def catalog_delete(*, product_id: int, items: Iterable[Sequence]) -> list[CatalogPush]:
    """Delete a product deleted in the POS from every channel item that listed it."""
    records = []
    channels = Channel.objects.in_bulk({int(channel_id) for channel_id, _ in items})
    for channel_id, item_id in items:
        channel = channels.get(int(channel_id))
        if channel is None or not channel.is_active:
            continue
        adapter = adapter_for(channel)
        record = _attempt(
            channel,
            product_id,
            str(item_id),
            Action.DELETE,
            lambda a=adapter, i=str(item_id): a.delete_product(i),
        )
        if not record.error:
            Listing.objects.filter(channel=channel, item_id=str(item_id)).update(
                status=Listing.Status.REMOVED
            )
            listings_mark_duplicates(channel_id=channel.pk)
        records.append(record)
    return records
