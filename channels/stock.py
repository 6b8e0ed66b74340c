"""How much of a SKU's stock each channel is sent: the allocation rules (BRIEF §4).

The trigger table (channels.inventory) decides *when* a channel is sent a quantity; this module
decides *how much*. The quantity sent is the SKU's available stock over the channel's outlets
(a bundle's is what its components make: catalog.selectors.available_stock) through, in this
order:

1. the share: that percentage of the available stock, rounded down;
2. the maximum: never more than this many;
3. the low-stock cut-off: 0 when the available stock is below it;
4. the buffer: this many units held back;
5. never below zero;
6. the priority hold: when the available stock is at or below the threshold of an active
   priority channel, every channel that is not a priority channel is sent 0.

A product's or a variant's own rule (StockRule) replaces the channel's rule field by field: a
variant's blank fields fall back to its product's rule, a product's to the channel's.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from django.db.models import Count, Max

from catalog.models import Variant
from catalog.selectors import available_stock
from channels.models import Channel, Listing, StockRule

# The fields a StockRule may override, by their names on StockRule → on Channel.
RULE_FIELDS = {
    "share_percent": "stock_share_percent",
    "maximum": "stock_maximum",
    "cutoff": "stock_cutoff",
    "buffer": "buffer",
}
# The channel fields whose change may change what channels are sent.
CHANNEL_RULE_FIELDS = frozenset(RULE_FIELDS.values())
PRIORITY_FIELDS = frozenset({"is_priority", "priority_threshold", "is_active"})


class Step(NamedTuple):
    """One rule applied, for the preview: its name, what it says, the quantity it leaves."""

    rule: str
    setting: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Rule:
    """The allocation rule in force for one SKU on one channel, and where it comes from."""

    share_percent: int = 100
    maximum: int | None = None
    cutoff: int | None = None
    buffer: int = 0
    source: str = "channel"  # "channel", "product" or "variant" (the most specific one used)

    @classmethod
    def of_channel(cls, channel: Channel) -> "Rule":
        return cls(
            share_percent=channel.stock_share_percent,
            maximum=channel.stock_maximum,
            cutoff=channel.stock_cutoff,
            buffer=channel.buffer,
        )

    def overridden(self, override: Mapping[str, int | None], source: str) -> "Rule":
        """This rule with the fields `override` sets (None: not set), from `source`."""
        changes = {field: value for field, value in override.items() if value is not None}
        return replace(self, **changes, source=source) if changes else self


def allocate(
    available: int, rule: Rule, *, priority_threshold: int | None = None, steps=None
) -> int:
    """The quantity a channel is sent of a SKU with `available` units over its outlets.

    `priority_threshold` is the threshold in force for a channel that is not a priority
    channel (None for a priority channel, or when there is none). With `steps` (a list), each
    rule that applied is appended to it as a Step, for the preview.
    """
    quantity = max(available, 0)
    if steps is not None:
        where = "over the channel's outlets"
        if available < 0:
            where += f" ({available}: more reserved than on hand)"
        steps.append(Step("available", where, quantity))
    if rule.share_percent < 100:
        quantity = quantity * rule.share_percent // 100
        _step(steps, "share", f"{rule.share_percent}% rounded down", quantity)
    if rule.maximum is not None and quantity > rule.maximum:
        quantity = rule.maximum
        _step(steps, "maximum", f"at most {rule.maximum}", quantity)
    if rule.cutoff is not None and available < rule.cutoff:
        quantity = 0
        _step(steps, "cut-off", f"0 below {rule.cutoff} available", quantity)
    if rule.buffer:
        quantity = max(quantity - rule.buffer, 0)
        _step(steps, "buffer", f"{rule.buffer} held back", quantity)
    if priority_threshold is not None and available <= priority_threshold and quantity:
        quantity = 0
        _step(steps, "priority", f"kept for priority channels at {priority_threshold} or less", 0)
    return quantity


def _step(steps, rule: str, setting: str, quantity: int) -> None:
    if steps is not None:
        steps.append(Step(rule, setting, quantity))


def decided_by(steps: Iterable[Step]) -> str:
    """The rule that set the quantity: the last one that changed it, else "available"."""
    last, quantity = "available", None
    for step in steps:
        if quantity is not None and step.quantity != quantity:
            last = step.rule
        quantity = step.quantity
    return last


def priority_threshold_for(channel: Channel, active: Iterable[Channel] | None = None) -> int | None:
    """The threshold at or below which `channel` is sent 0 to keep stock for the priority
    channels: the highest of the active priority channels' thresholds; None for a priority
    channel itself, or when no active priority channel has one. One query, none when the
    `active` channels are given."""
    if channel.is_priority:
        return None
    if active is not None:
        thresholds = [
            c.priority_threshold
            for c in active
            if c.is_priority and c.priority_threshold is not None and c.pk != channel.pk
        ]
        return max(thresholds, default=None)
    return (
        Channel.objects.filter(is_active=True, is_priority=True, priority_threshold__isnull=False)
        .exclude(pk=channel.pk)
        .aggregate(threshold=Max("priority_threshold"))["threshold"]
    )


class RuleBook:
    """The rules of one channel for a set of variants: the channel's, and its products' and
    variants' own. Two queries at most (the channel's StockRules; the products of the variants
    when any product has a rule), whatever the number of variants; none when the channel was
    read with `has_stock_rules` false (channels.inventory reads the active channels so)."""

    def __init__(self, channel: Channel, variant_ids: Collection[int]) -> None:
        self.base = Rule.of_channel(channel)
        by_variant: dict[int, dict[str, int | None]] = {}
        by_product: dict[int, dict[str, int | None]] = {}
        rules = StockRule.objects.filter(channel=channel)
        if getattr(channel, "has_stock_rules", True) is False:  # read with the channel
            rules = rules.none()
        for variant_id, product_id, *values in rules.values_list(
            "variant_id", "product_id", *RULE_FIELDS
        ):
            fields = dict(zip(RULE_FIELDS, values, strict=True))
            if variant_id is not None:
                by_variant[variant_id] = fields
            else:
                by_product[product_id] = fields
        self._variant_rules = by_variant
        self._product_rules = {p: self.base.overridden(f, "product") for p, f in by_product.items()}
        self._product_of: dict[int, int] = {}
        if by_product and variant_ids:
            self._product_of = dict(
                Variant.objects.filter(
                    pk__in=list(variant_ids), product_id__in=list(by_product)
                ).values_list("pk", "product_id")
            )

    def rule(self, variant_id: int) -> Rule:
        product_id = self._product_of.get(variant_id)
        rule = self.base if product_id is None else self._product_rules[product_id]
        own = self._variant_rules.get(variant_id)
        return rule if own is None else rule.overridden(own, "variant")


def channel_quantities(*, channel: Channel, variant_ids: Iterable[int]) -> dict[int, int]:
    """What the channel should show of each variant: its available stock over the channel's
    outlets through the channel's rules. Variants with no stock get 0.

    Cost: the available stock (catalog.selectors.available_stock: one aggregate, plus one query
    per level of bundles), the rule book (one or two) and the priority threshold (one).
    """
    ids = list(variant_ids)
    if not ids:
        return {}
    available = available_stock(variant_ids=ids, outlet_ids=channel.stock_outlet_ids())
    book = RuleBook(channel, ids)
    threshold = priority_threshold_for(channel)
    return {
        vid: allocate(available[vid], book.rule(vid), priority_threshold=threshold) for vid in ids
    }


class StockMoves:
    """What one stock change (its ledger rows) moved on each channel: the variants whose
    quantity there changed. A variant whose quantity the rules leave where it was (held at a
    maximum, cut off, under the buffer) need not be pushed: whatever was sent or is queued for
    it still holds.

    Only variants that hold stock move here (a bundle has no ledger rows of its own; the
    bundles containing a changed variant are worked out by the channel's flush:
    channels.inventory). For one signal and all its channels the stock is read once per set of
    outlets; each channel adds its rule book (one or two queries).
    """

    def __init__(self, movements: Iterable[Any]) -> None:
        self.movements = list(movements)
        self._deltas: dict[frozenset[int], dict[int, int]] = {}
        self._after: dict[frozenset[int], dict[int, int]] = {}

    def moved(
        self, channel: Channel, variant_ids: Collection[int], active: Iterable[Channel]
    ) -> set[int]:
        """Those of `variant_ids` whose quantity on `channel` the change moved; `active` are
        the active channels (for the priority threshold)."""
        outlets = frozenset(channel.stock_outlet_ids())
        deltas = self._deltas_over(outlets)
        touched = [variant for variant in variant_ids if deltas.get(variant)]
        if not touched:
            return set()
        after = self._after_over(touched, outlets)
        book = RuleBook(channel, touched)
        threshold = priority_threshold_for(channel, active)
        moved = set()
        for variant in touched:
            rule = book.rule(variant)
            before = after[variant] - deltas[variant]
            if allocate(before, rule, priority_threshold=threshold) != allocate(
                after[variant], rule, priority_threshold=threshold
            ):
                moved.add(variant)
        return moved

    def _deltas_over(self, outlets: frozenset[int]) -> dict[int, int]:
        """{variant: how far the change moved its available stock over `outlets`}."""
        if outlets not in self._deltas:
            deltas: dict[int, int] = {}
            for m in self.movements:
                if m.outlet_id in outlets:
                    moved = m.on_hand_delta - m.reserved_delta
                    deltas[m.variant_id] = deltas.get(m.variant_id, 0) + moved
            self._deltas[outlets] = deltas
        return self._deltas[outlets]

    def _after_over(self, ids: list[int], outlets: frozenset[int]) -> dict[int, int]:
        """The available stock of `ids` over `outlets` after the change; read once per set of
        outlets, as the channels of one shop share theirs."""
        known = self._after.setdefault(outlets, {})
        missing = [variant for variant in ids if variant not in known]
        if missing:  # variants with ledger rows: none is a bundle
            known.update(available_stock(variant_ids=missing, outlet_ids=outlets, leaves={}))
        return known


@dataclass
class ChannelAllocation:
    """One channel's line of the per-SKU preview."""

    channel: Channel
    available: int
    rule: Rule
    steps: list[Step]
    quantity: int
    decided_by: str
    listings: int  # present listings of the variant on the channel


def allocation_preview(variant: Variant) -> list[ChannelAllocation]:
    """For one SKU, what every active channel is sent and which rule decided it.

    Cost: per channel, the available stock and the rule book; channels are a handful.
    """
    channels = list(Channel.objects.filter(is_active=True).prefetch_related("outlets"))
    counts = dict(
        Listing.objects.filter(variant=variant)
        .present()
        .values("channel_id")
        .annotate(n=Count("pk"))
        .values_list("channel_id", "n")
    )
    lines = []
    for channel in channels:
        available = available_stock(variant_ids=[variant.pk], outlet_ids=channel.stock_outlet_ids())
        rule = RuleBook(channel, [variant.pk]).rule(variant.pk)
        steps: list[Step] = []
        quantity = allocate(
            available[variant.pk],
            rule,
            priority_threshold=priority_threshold_for(channel, channels),
            steps=steps,
        )
        lines.append(
            ChannelAllocation(
                channel=channel,
                available=available[variant.pk],
                rule=rule,
                steps=steps,
                quantity=quantity,
                decided_by=decided_by(steps),
                listings=counts.get(channel.pk, 0),
            )
        )
    return lines
