"""The channels' API: price overrides per variant, and price syncs.

Interfaces only: parse, call channels.pricing, render. The price a channel is sent is the POS
retail price through the channel's rule (markup in percent, then an amount, then rounding),
unless the variant has an override on the channel; a channel selling in another currency than
the POS is sent no price (409 where a price would be sent).
"""

import io
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError as NinjaValidationError

from catalog.imports.reading import ImportFileError
from catalog.models import sku_key
from channels.models import Channel, PriceOverride, PriceSync
from channels.pricing import (
    MANUAL,
    channel_price,
    listed_counts,
    price_explain,
    price_override_delete,
    price_override_set,
    price_overrides_import,
    price_problem,
    price_sync_request,
    reason_label,
)
from omni.api_base import Amount, Id, InSchema, PageIn, Text, actor_of, responses

router = Router(tags=["prices"])

Price = Amount(14, 2)
Sku = Text(120, min_length=1)
# A CSV of sku,price rows travels as a JSON string; the API's body limit (1 MiB) holds some
# 40,000 rows.
CSV_MAX = 1_000_000


class PriceOverrideIn(InSchema):
    price: Price = Field(description="The variant's price on the channel, in its currency.")


class PriceOverrideOut(Schema):
    sku: str
    variant_id: int
    product: str
    pos_price: Decimal = Field(description="The POS retail price.")
    rule_price: Decimal | None = Field(
        description="What the channel's rule makes of the POS price (null when the channel "
        "sells in another currency)."
    )
    price: Decimal = Field(description="The override: the price sent instead of the rule's.")


class PriceOverridePage(Schema):
    items: list[PriceOverrideOut]
    count: int


class OverrideFilterIn(Schema):
    sku: Text(120) | None = Field(None, description="Only this SKU (trimmed, any letter case).")


class OverrideImportIn(InSchema):
    csv: Text(CSV_MAX, strip=False) = Field(
        description="UTF-8 CSV text; the first line names the columns `sku` and `price` (in "
        "any order; `,`, `;` or tab between cells). Prices are amounts ≥ 0 with at most two "
        "decimals, a dot for decimals and no thousands separator."
    )
    partial: bool = Field(
        False,
        description="Write the good rows even if some rows are bad; otherwise one bad row "
        "stops the whole file and nothing is written.",
    )
    dry_run: bool = Field(False, description="Only check the file: nothing is written.")


class LineError(Schema):
    line: int = Field(description="The line in the file, the header being line 1.")
    problem: str


class OverrideImportOut(Schema):
    rows: int = Field(description="Rows read (blank lines left out).")
    created: int = Field(description="Overrides created (or that would be, in a dry run).")
    updated: int = Field(description="Overrides whose price changed.")
    unchanged: int = Field(description="Rows whose override already had that price.")
    written: bool = Field(
        description="Whether the good rows were written: false in a dry run, and when bad "
        "rows refused the file (without `partial`)."
    )
    errors: list[LineError] = Field(description="The bad rows, by line, each problem named.")
    price_sync_id: int | None = Field(
        description="The price sync queued for the changes (one for the whole file), if any."
    )


class PriceSyncOut(Schema):
    id: int
    channel_id: int
    reason: str
    reason_label: str
    status: str = Field(description="queued, running, succeeded or failed.")
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress_at: datetime | None = Field(description="The running sync's last sign of life.")
    listed: int | None = Field(
        description="While queued or running: the channel's listed variants, the sync's "
        "length; null once it ended (then `considered` is)."
    )
    considered: int = Field(description="Listed variants looked at so far.")
    pushed: int = Field(description="Prices the marketplace accepted.")
    failed: int = Field(description="Prices the marketplace refused.")
    calls: int = Field(description="Calls made to the marketplace.")
    failure_sample: list[dict[str, str | bool]] = Field(
        description="Some of the refusals, with the marketplace's words: sku, item, variant, "
        "error, and whether trying again later may help (retryable)."
    )
    message: str


class PriceStepOut(Schema):
    label: str
    price: Decimal


class PriceOut(Schema):
    channel_id: int
    sku: str
    variant_id: int
    currency: str = Field(description="The channel's currency.")
    pos_currency: str
    pos_price: Decimal = Field(description="The POS retail price.")
    steps: list[PriceStepOut] = Field(
        description="The rule, step by step, from the POS price to the rule's price (empty "
        "when the currency problem stops it)."
    )
    rule_price: Decimal | None
    override: Decimal | None = Field(description="The variant's own price on the channel.")
    price: Decimal | None = Field(description="The price sent: null when none is.")
    problem: str = Field(description="Why no price is sent (another currency), else empty.")


class PriceQueryIn(Schema):
    sku: Sku = Field(description="The variant's SKU (trimmed, any letter case).")


def _channel(channel_id: int) -> Channel:
    return get_object_or_404(Channel, pk=channel_id)


def _override_out(channel: Channel, override: PriceOverride, rules: bool) -> dict:
    variant = override.variant
    return {
        "sku": variant.sku,
        "variant_id": variant.pk,
        "product": variant.product.name,
        "pos_price": variant.retail_price,
        "rule_price": channel_price(channel, variant.retail_price) if rules else None,
        "price": override.price,
    }


@router.get(
    "/channels/{channel_id}/price-overrides",
    response=responses({200: PriceOverridePage}, 404),
    summary="A channel's price overrides",
)
def price_override_list(
    request: HttpRequest,
    channel_id: Id,
    filters: Query[OverrideFilterIn],
    page: Query[PageIn],
) -> dict:
    """The variants with their own price on the channel, by SKU, with the POS price and what
    the channel's rule would make of it. `{"items": [...], "count": N}`, `limit` and `offset`.
    Cost: one count and one page query."""
    channel = _channel(channel_id)
    rows: QuerySet[PriceOverride] = PriceOverride.objects.filter(channel=channel)
    if filters.sku is not None:
        rows = rows.filter(variant__sku_key=sku_key(filters.sku))
    found = rows.select_related("variant__product").order_by("variant__sku_key", "pk")
    rules = price_problem(channel) is None
    items = found[page.offset : page.offset + page.limit]
    return {
        "items": [_override_out(channel, override, rules) for override in items],
        "count": rows.count(),
    }


@router.post(
    "/channels/{channel_id}/price-overrides/import",
    response=responses({200: OverrideImportOut}, 404, 409),
    summary="Import price overrides from CSV",
)
def price_override_import(request: HttpRequest, channel_id: Id, payload: OverrideImportIn) -> dict:
    """Set many overrides at once from CSV text (`sku,price`). Every row is checked first: a
    SKU the POS knows, a price that is an amount ≥ 0 with at most two decimals, each SKU once.
    Bad rows come back by line; unless `partial`, one bad row means nothing is written
    (`written: false`). Importing the same file twice changes nothing the second time. One
    price sync is queued for all the changes. A file that cannot be read at all (no header,
    unknown columns, not CSV) is a 422 on `csv`."""
    channel = _channel(channel_id)
    try:
        result = price_overrides_import(
            channel=channel,
            stream=io.StringIO(payload.csv),
            partial=payload.partial,
            dry_run=payload.dry_run,
        )
    except ImportFileError as exc:
        detail = str(exc)
        if exc.errors:
            detail += " " + "; ".join(f"line {e.line}: {e.reason}" for e in exc.errors[:20])
        raise NinjaValidationError(
            [{"loc": ["body", "payload", "csv"], "msg": detail, "type": "csv_file"}]
        ) from None
    queued = None
    if result.written and (result.created or result.updated):
        queued = (
            PriceSync.objects.filter(channel=channel, status=PriceSync.Status.QUEUED)
            .values_list("pk", flat=True)
            .first()
        )
    return {
        "rows": result.rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "written": result.written,
        "errors": [{"line": e.line, "problem": e.reason} for e in result.errors],
        "price_sync_id": queued,
    }


@router.put(
    "/channels/{channel_id}/price-overrides/{sku}",
    response=responses({200: PriceOverrideOut}, 404, 409),
    summary="Set a variant's price on the channel",
)
def price_override_put(
    request: HttpRequest,
    channel_id: Id,
    sku: str,
    payload: PriceOverrideIn,
) -> dict:
    """The variant with `sku` gets its own price on the channel, in place of the rule's.
    Putting the same price again changes nothing. A change queues one price sync of the
    channel, which sends the new price to the variant's listings. 404 for an unknown SKU."""
    channel = _channel(channel_id)
    override = price_override_set(channel=channel, sku=sku, price=payload.price)
    fresh = PriceOverride.objects.select_related("variant__product").get(pk=override.pk)
    return _override_out(channel, fresh, price_problem(channel) is None)


@router.delete(
    "/channels/{channel_id}/price-overrides/{sku}",
    response=responses({204: None}, 404, 409),
    summary="Remove a variant's price on the channel",
)
def price_override_remove(request: HttpRequest, channel_id: Id, sku: str) -> Status:
    """The variant's listings go back to the rule's price (a price sync is queued). Removing
    one that is not there changes nothing and still answers 204; 404 for an unknown SKU."""
    price_override_delete(channel=_channel(channel_id), sku=sku)
    return Status(204, None)


def _sync_out(sync: PriceSync, listed: dict[int, int]) -> dict:
    live = sync.status in (PriceSync.Status.QUEUED, PriceSync.Status.RUNNING)
    return {
        **{name: getattr(sync, name) for name in PriceSyncOut.model_fields if hasattr(sync, name)},
        "reason_label": reason_label(sync.reason),
        "listed": listed.get(sync.channel_id, 0) if live else None,
        "failure_sample": sync.failure_sample or [],
    }


@router.post(
    "/channels/{channel_id}/price-syncs",
    response=responses({202: PriceSyncOut}, 404, 409),
    summary="Push the channel's prices now",
)
def price_sync_create(request: HttpRequest, channel_id: Id) -> Status:
    """Queues a price sync sending every listed variant of the channel its current price (the
    rule's, or its override). Runs in the background: poll GET /api/price-syncs/{id}. Asking
    while one is queued answers that one, so asking twice pushes once. 409 when the channel
    sells in another currency than the POS (no price is ever sent to it)."""
    channel = _channel(channel_id)
    sync = price_sync_request(channel=channel, reason=MANUAL, requested_by=actor_of(request).label)
    return Status(202, _sync_out(sync, listed_counts([channel.pk])))


@router.get(
    "/price-syncs/{sync_id}",
    response=responses({200: PriceSyncOut}, 404),
    summary="Get a price sync",
)
def price_sync_get(request: HttpRequest, sync_id: Id) -> dict:
    """Status, progress (`considered` of `listed`) and counts; the refusals' sample."""
    sync = get_object_or_404(PriceSync, pk=sync_id)
    return _sync_out(sync, listed_counts([sync.channel_id]))


@router.get(
    "/channels/{channel_id}/price-syncs",
    response=responses({200: list[PriceSyncOut]}, 404),
    summary="A channel's price syncs, newest first",
)
def price_sync_list(request: HttpRequest, channel_id: Id, page: Query[PageIn]) -> list[dict]:
    """At most `limit` syncs from `offset`. Cost: two queries."""
    channel = _channel(channel_id)
    syncs = PriceSync.objects.filter(channel=channel).order_by("-created_at", "-pk")
    listed = listed_counts([channel.pk])
    return [_sync_out(sync, listed) for sync in syncs[page.offset : page.offset + page.limit]]


@router.get(
    "/channels/{channel_id}/prices",
    response=responses({200: PriceOut}, 404),
    summary="A variant's price on the channel, explained",
)
def price_get(request: HttpRequest, channel_id: Id, query: Query[PriceQueryIn]) -> dict:
    """The POS price, the rule step by step (markup in percent, the amount, the rounding), the
    variant's override, and the price sent; or, for a channel selling in another currency,
    why none is sent. 404 for an unknown SKU."""
    return asdict(price_explain(channel=_channel(channel_id), sku=query.sku))
