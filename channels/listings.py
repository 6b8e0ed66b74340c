"""Acting on the tabs: Upload to a channel, Download to POS, and linking by hand."""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from catalog.models import Product, Variant, sku_key
from catalog.selectors import variant_ids_by_sku_key
from catalog.services import variant_sku_check
from channels.adapters.base import AdapterError, UploadProduct, UploadVariant
from channels.listing_store import listings_mark_duplicates
from channels.models import Channel, Listing
from channels.pricing import PriceProblem, channel_prices
from channels.services import adapter_for
from channels.sku_rules import SkuMapper
from channels.stock import channel_quantities


@dataclass
class ActionReport:
    """What an action did, for the admin message and the API answer."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def upload_product(
    product: Product,
    variants: list[Variant],
    quantities: dict[int, int],
    prices: dict[int, Decimal],
    skus: Mapping[int, str] | None = None,
):
    """The synced fields of a product, as a channel receives them (BRIEF §3). `prices` are the
    channel's prices of the variants (channels.pricing.channel_prices): the rule's or the
    override's, never the bare retail price. `skus` are the SKUs variants already listed carry
    on the channel (a prefix its SKU rules strip, an alias): sent as they are, so an update
    finds its listing and never renames it to the POS SKU."""
    skus = skus or {}
    dims = (product.length_cm, product.width_cm, product.height_cm)
    option_names = tuple(dict.fromkeys(k for v in variants for k in (v.options or {})))
    return UploadProduct(
        name=product.name,
        description=product.description or product.name,
        category=product.category.name if product.category else "",
        brand=product.brand.name if product.brand else "",
        images=tuple(image.url for image in product.images.all()),
        weight_kg=product.weight_kg,
        dimensions_cm=dims if all(d is not None for d in dims) else None,
        is_active=product.is_active,
        option_names=option_names,
        variants=tuple(
            UploadVariant(
                sku=skus.get(v.pk) or v.sku,
                price=prices[v.pk],
                quantity=quantities.get(v.pk, 0),
                options={k: str(val) for k, val in (v.options or {}).items()},
                upc=v.upc,
            )
            for v in variants
        ),
    )


def listings_upload(*, channel: Channel, variant_ids: Iterable[int]) -> ActionReport:
    """Put the chosen variants on the channel, and record their listings.

    A product not on the channel yet is created there with the chosen variants. A product the
    channel already lists gets the chosen variants it lacks added to its item, so one product
    never becomes two items. Variants already listed, or inactive in the POS, are skipped
    with the reason. One product's failure never stops the others.
    """
    report = ActionReport()
    by_product = _unlisted_by_product(channel, variant_ids, report)
    adapter = adapter_for(channel)
    items = _listed_items(channel, list(by_product))
    everything = [v for p in by_product for v in p.variants.all()]
    quantities = channel_quantities(channel=channel, variant_ids=[v.pk for v in everything])
    try:
        prices = channel_prices(channel=channel, variant_ids=[v.pk for v in everything])
    except PriceProblem as exc:  # never sent a price in another currency: nothing uploaded
        report.failed += [f"{product.name}: {exc}" for product in by_product]
        return report
    for product, variants in by_product.items():
        try:
            if product.pk in items:
                whole = upload_product(product, list(product.variants.all()), quantities, prices)
                new = [
                    uv for uv in whole.variants if sku_key(uv.sku) in {v.sku_key for v in variants}
                ]
                remote = adapter.add_variants(items[product.pk], whole, new)
            else:
                remote = adapter.create_product(
                    upload_product(product, variants, quantities, prices)
                )
        except AdapterError as exc:
            report.failed.append(f"{product.name}: {exc}")
            continue
        _record_uploaded(channel, variants, remote)
        verb = "added to its item" if product.pk in items else "created"
        report.done.append(f"{product.name} ({len(variants)} variant(s) {verb})")
    return report


def _listed_items(channel: Channel, products: list[Product]) -> dict[int, str]:
    """{product id: the channel item that already lists it} for the products listed there."""
    rows = (
        Listing.objects.filter(channel=channel, variant__product__in=products)
        .present()
        .order_by("item_id")
        .values_list("variant__product_id", "item_id")
    )
    return dict(reversed(list(rows)))


def _unlisted_by_product(channel, variant_ids, report) -> dict[Product, list[Variant]]:
    variants = (
        Variant.objects.filter(pk__in=list(variant_ids))
        .select_related("product__brand", "product__category")
        .prefetch_related("product__images", "product__variants")
    )
    listed = set(
        Listing.objects.filter(channel=channel, variant__in=variants)
        .present()
        .values_list("variant_id", flat=True)
    )
    grouped: dict[Product, list[Variant]] = defaultdict(list)
    for variant in variants:
        product = variant.product
        if variant.pk in listed:
            report.skipped.append(f"{variant.sku}: already listed on {channel}")
        elif not (variant.is_active and product.is_active):
            report.skipped.append(f"{variant.sku}: inactive in the POS")
        else:
            grouped[product].append(variant)
    return grouped


def _record_uploaded(channel: Channel, variants: list[Variant], remote) -> None:
    """Record the listings an upload created, mapped as a scan would map them (under the
    channel's SKU rules), so the next scan finds them as they are. Three queries and the
    duplicate marking; `variants` are those uploaded (kept for the callers' sake)."""
    remote = list(remote)
    mapped = SkuMapper.for_channel(channel, skus=[r.sku for r in remote]).keys(
        r.sku for r in remote
    )
    by_key = variant_ids_by_sku_key(set(mapped.values()))
    now = timezone.now()
    rows = [
        Listing(
            channel=channel,
            item_id=r.item_id,
            variant_ref=r.variant_id,
            sku=r.sku,
            sku_key=mapped[r.sku],
            title=r.title[:300],
            price=r.price,
            quantity=r.quantity,
            status=r.status,
            channel_updated_at=r.updated_at,
            last_seen_at=now,
            variant_id=by_key.get(mapped[r.sku]),
        )
        for r in remote
    ]
    Listing.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["channel", "item_id", "variant_ref"],
        update_fields=["sku", "sku_key", "title", "price", "quantity", "status", "variant"],
    )
    listings_mark_duplicates(channel_id=channel.pk)


@transaction.atomic
def listings_download_to_pos(*, channel: Channel, listing_ids: Iterable[int]) -> ActionReport:
    """Create POS products from Not in POS listings: one product per channel item.

    A listing with a blank SKU is refused: the SKU must be filled in on the marketplace first,
    then the channel scanned, so the SKU stays the join key on both sides.
    """
    report = ActionReport()
    listings = list(
        Listing.objects.filter(
            channel=channel, pk__in=list(listing_ids), variant__isnull=True
        ).order_by("item_id", "variant_ref")
    )
    by_item: dict[str, list[Listing]] = defaultdict(list)
    for listing in listings:
        if not listing.sku_key:
            report.skipped.append(
                f"“{listing.title}” has no SKU: fill in the SKU on {channel.get_kind_display()} "
                "first, scan the channel, then download it."
            )
        else:
            by_item[listing.item_id].append(listing)
    mapper = SkuMapper.for_channel(channel, skus=[listing.sku for listing in listings])
    for item_listings in by_item.values():
        _download_item(item_listings, report, mapper)
    return report


def _download_item(listings: list[Listing], report: ActionReport, mapper: SkuMapper) -> None:
    first = listings[0]
    name = first.title.split(" - ")[0] if first.variant_ref else first.title
    product = Product.objects.create(name=name[:255], description=name)
    made: dict[str, Variant] = {}
    for position, listing in enumerate(listings):
        if listing.sku_key not in made:
            # the POS SKU the listing is matched by: its SKU less the channel's prefix and
            # suffix (channels.sku_rules), so the next scan matches it to this variant
            pos_sku = mapper.map(listing.sku).pos_sku or listing.sku.strip()
            existing = Variant.objects.filter(sku_key=listing.sku_key).first()
            if existing is not None:
                made[listing.sku_key] = existing
            else:
                variant_sku_check(sku=pos_sku)
                made[listing.sku_key] = Variant.objects.create(
                    product=product,
                    sku=pos_sku,
                    retail_price=max(listing.price, Decimal("0")),
                    position=position,
                    options=_options_from_title(listing),
                )
        listing.variant = made[listing.sku_key]
    Listing.objects.bulk_update(listings, ["variant"])
    if not product.variants.exists():
        product.delete()
        report.skipped.append(f"“{name}”: its SKUs were already in the POS; listings linked")
        return
    report.done.append(f"{product.name} ({len(made)} variant(s))")


def _options_from_title(listing: Listing) -> dict[str, str]:
    if not listing.variant_ref or " - " not in listing.title:
        return {}
    return {"Variant": listing.title.split(" - ", 1)[1][:60]}


def listing_link(*, listing: Listing, variant: Variant | None) -> None:
    """Link a listing to a POS variant by hand (or unlink it); scans keep a manual link."""
    listing.variant = variant
    listing.is_manual_link = variant is not None
    listing.save(update_fields=["variant", "is_manual_link", "updated_at"])


def listings_with_channels():
    """Prefetch for In POS: each variant's present listings with their channel."""
    return Prefetch(
        "channel_listings",
        queryset=Listing.objects.present().select_related("channel").order_by("channel__name"),
        to_attr="present_listings",
    )
