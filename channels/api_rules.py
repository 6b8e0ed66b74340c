"""The channels' API: products' and variants' own stock rules per channel, and the per-SKU
preview of what every channel is sent.

The channel's own rule (share, maximum, cut-off, buffer, priority) is part of the channel:
PATCH /api/channels/{id}. Interfaces only: parse, call channels.stock_rules or channels.stock,
render.
"""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from catalog.models import Product
from channels.models import Channel, StockRule
from channels.schemas import AllocationOut, StockRuleFields, StockRuleIn, StockRuleOut
from channels.stock import allocation_preview
from channels.stock_rules import stock_rule_delete, stock_rule_save, variant_by_sku
from omni.api_base import Id, Page, Text, responses

router = Router(tags=["stock rules"])


def _rules() -> QuerySet[StockRule]:
    return StockRule.objects.select_related("product", "variant__product").order_by("pk")


@router.get(
    "/channels/{channel_id}/stock-rules",
    response=responses({200: list[StockRuleOut]}, 404),
    summary="A channel's product and variant stock rules",
)
@paginate(Page)
def stock_rule_list(request: HttpRequest, channel_id: Id) -> QuerySet[StockRule]:
    channel = get_object_or_404(Channel, pk=channel_id)
    return _rules().filter(channel=channel)


@router.post(
    "/channels/{channel_id}/stock-rules",
    response=responses({201: StockRuleOut}, 404, 409),
    summary="Give a product or a variant its own stock rule on a channel",
)
def stock_rule_create(request: HttpRequest, channel_id: Id, payload: StockRuleIn) -> Status:
    """Blank fields follow the channel's rule (a variant's first its product's). `maximum: 0`
    keeps it off the channel. 404 for an unknown channel, SKU or handle; 422 when the product or
    variant has a rule on the channel already (change it with PATCH). The channel's listings
    whose quantity changes are pushed."""
    channel = get_object_or_404(Channel, pk=channel_id)
    rule = StockRule(channel=channel)
    if payload.sku is not None:
        rule.variant = variant_by_sku(payload.sku)
    else:
        rule.product = get_object_or_404(Product, handle=payload.handle)
    values = payload.model_dump(include={"share_percent", "maximum", "cutoff", "buffer"})
    stock_rule_save(rule=rule, values=values)
    return Status(201, _rules().get(pk=rule.pk))


@router.patch(
    "/stock-rules/{rule_id}",
    response=responses({200: StockRuleOut}, 404, 409),
    summary="Change a stock rule",
)
def stock_rule_patch(request: HttpRequest, rule_id: Id, payload: StockRuleFields) -> Any:
    """Only the fields sent change; null makes a field follow the channel's rule again."""
    rule = get_object_or_404(StockRule, pk=rule_id)
    stock_rule_save(rule=rule, values=payload.model_dump(exclude_unset=True))
    return _rules().get(pk=rule.pk)


@router.delete(
    "/stock-rules/{rule_id}",
    response=responses({204: None}, 404, 409),
    summary="Remove a stock rule",
)
def stock_rule_remove(request: HttpRequest, rule_id: Id) -> Status:
    """The product or variant follows the channel's rule again; its listings are pushed."""
    stock_rule_delete(rule=get_object_or_404(StockRule, pk=rule_id))
    return Status(204, None)


class AllocationQuery(Schema):
    sku: Text(64, min_length=1)


@router.get(
    "/stock-allocation",
    response=responses({200: AllocationOut}, 404),
    summary="What every channel is sent of a SKU, and which rule decided it",
)
def stock_allocation(request: HttpRequest, query: Query[AllocationQuery]) -> dict[str, Any]:
    """For each active channel: the SKU's available stock over the channel's outlets, the
    rules applied in order (share, maximum, cut-off, buffer, priority) with the quantity each
    leaves, what is sent, and whose rule it was (the channel's, the product's, the variant's).
    A bundle's available stock is what its components make."""
    variant = variant_by_sku(query.sku)
    return {
        "sku": variant.sku,
        "channels": [
            {
                "channel_id": line.channel.pk,
                "channel": line.channel.name,
                "is_priority": line.channel.is_priority,
                "available": line.available,
                "steps": [step._asdict() for step in line.steps],
                "quantity": line.quantity,
                "decided_by": line.decided_by,
                "rule_from": line.rule.source,
                "listings": line.listings,
            }
            for line in allocation_preview(variant)
        ],
    }
