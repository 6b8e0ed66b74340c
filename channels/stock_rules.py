"""Writes to products' and variants' own stock rules on a channel (StockRule), one at a time
or from a CSV file; every change queues a push of what it changed (channels.inventory).

The rules themselves, and what they make of a SKU's stock, are in channels.stock.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from django.db import transaction

from catalog.exceptions import UnknownSku
from catalog.imports.reading import (
    BadCell,
    Column,
    ImportResult,
    Progress,
    RowError,
    read_csv,
    whole_cell,
)
from catalog.models import Product, Variant, sku_key
from channels.inventory import stock_rules_changed_request
from channels.models import Channel, StockRule
from channels.stock import RULE_FIELDS


def rule_variant_ids(rules: Iterable[StockRule]) -> set[int]:
    """The variants whose quantity these rules decide: a variant rule's variant, a product
    rule's product's variants. One query when any rule is a product's."""
    rules = list(rules)
    ids = {rule.variant_id for rule in rules if rule.variant_id is not None}
    products = {rule.product_id for rule in rules if rule.product_id is not None}
    if products:
        ids |= set(Variant.objects.filter(product_id__in=products).values_list("pk", flat=True))
    return ids


def stock_rules_touched(*, channel_id: int, rules: Iterable[StockRule]) -> None:
    """Queue the push of what saving or deleting `rules` of the channel changed (after commit)."""
    variant_ids = rule_variant_ids(rules)
    if variant_ids:
        stock_rules_changed_request(channel_ids=[channel_id], variant_ids=variant_ids)


@transaction.atomic
def stock_rule_save(*, rule: StockRule, values: Mapping[str, Any]) -> StockRule:
    """Set `values` (StockRule's rule fields; None clears one) on the rule, check, save and
    queue the push of what it changes. Raises ValidationError naming the problem (a second
    rule for the same product or variant on the channel among them)."""
    before = rule_variant_ids([rule]) if rule.pk else set()
    for name, value in values.items():
        if name not in RULE_FIELDS:
            raise ValueError(f"not a rule field: {name}")
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    stock_rules_changed_request(
        channel_ids=[rule.channel_id], variant_ids=before | rule_variant_ids([rule])
    )
    return rule


@transaction.atomic
def stock_rule_delete(*, rule: StockRule) -> None:
    stock_rules_touched(channel_id=rule.channel_id, rules=[rule])
    rule.delete()


# --- CSV -------------------------------------------------------------------------------------

COLUMNS = (
    Column("sku", "The variant the rule is for (or leave blank and give handle)."),
    Column("handle", "The product the rule is for, by its handle (or give sku)."),
    Column("share_percent", "Share of the available stock sent, 0–100; blank: the channel's."),
    Column("maximum", "List at most this many; blank: the channel's."),
    Column("cutoff", "Send 0 below this many available; blank: the channel's."),
    Column("buffer", "Units held back; blank: the channel's."),
)
ALIASES = {"share": "share_percent", "share_%": "share_percent", "max": "maximum"}


@dataclass
class _Row:
    line: int
    sku: str
    handle: str
    values: dict[str, int | None]
    target: tuple[str, int] | None = None  # ("variant" | "product", id)
    problem: str = ""


def stock_rules_import(
    *, channel: Channel, stream: TextIO, partial: bool = False, dry_run: bool = False
) -> ImportResult:
    """Import products' and variants' own rules on `channel` from CSV: one row per rule, by
    `sku` (a variant) or `handle` (a product); a row for a product or variant that has a rule
    already replaces its fields. Blank cells fall back to the channel's rule.

    Bad rows (unknown SKU or handle, both or neither given, a value that is not a whole number,
    a share above 100, a target twice in the file) are reported by line; nothing is written
    when any row is bad unless `partial`, which writes the good ones. Raises ImportFileError
    when the file as a whole cannot be read. Cost: a read of the file, two lookups (SKUs,
    handles), one of the channel's rules, one bulk insert and one bulk update, then one push
    request.
    """
    table = read_csv(stream, columns=COLUMNS, aliases=ALIASES, progress=Progress(None))
    index = table.index()
    errors: list[RowError] = []
    rows: list[_Row] = []
    for record in table.records:
        if record.problem:
            errors.append(RowError(record.line, record.problem))
            continue
        cell = {name: record.values[i] for name, i in index.items()}
        row = _Row(record.line, cell.get("sku", ""), cell.get("handle", ""), {})
        row.problem = _parse(row, cell)
        rows.append(row)
    _resolve(rows)
    seen: dict[tuple[str, int], int] = {}
    for row in rows:
        if not row.problem and row.target in seen:
            row.problem = f"the same {row.target[0]} as line {seen[row.target]}"
        elif not row.problem:
            seen[row.target] = row.line
    errors += [RowError(row.line, row.problem) for row in rows if row.problem]
    table.refuse_if_unreadable(errors)
    good = [row for row in rows if not row.problem]
    result = ImportResult(rows=len(rows) + len(table.unreadable), errors=sorted(errors))
    result.dry_run = dry_run
    if dry_run or (errors and not partial):
        _count(channel, good, result)
        return result
    with transaction.atomic():
        _write(channel, good, result)
    result.written = True
    return result


def _parse(row: _Row, cell: Mapping[str, str]) -> str:
    if bool(row.sku) == bool(row.handle):
        return "give either sku (a variant's rule) or handle (a product's rule), not both"
    for field in RULE_FIELDS:
        raw = cell.get(field, "")
        try:
            row.values[field] = whole_cell(field, raw) if raw else None
        except BadCell as exc:
            return str(exc)
    share = row.values.get("share_percent")
    if share is not None and share > 100:
        return f"share_percent must be at most 100, not {share}"
    if all(value is None for value in row.values.values()):
        return "no rule given: fill share_percent, maximum, cutoff or buffer"
    return ""


def _resolve(rows: list[_Row]) -> None:
    keys = {sku_key(row.sku) for row in rows if row.sku and not row.problem}
    handles = {row.handle for row in rows if row.handle and not row.problem}
    variants = dict(Variant.objects.filter(sku_key__in=keys).values_list("sku_key", "pk"))
    products = dict(Product.objects.filter(handle__in=handles).values_list("handle", "pk"))
    for row in rows:
        if row.problem:
            continue
        if row.sku:
            found = variants.get(sku_key(row.sku))
            row.target = ("variant", found) if found else None
            row.problem = "" if found else f"no variant has the SKU {row.sku!r}"
        else:
            found = products.get(row.handle)
            row.target = ("product", found) if found else None
            row.problem = "" if found else f"no product has the handle {row.handle!r}"


def _existing(channel: Channel) -> dict[tuple[str, int], StockRule]:
    existing = {}
    for rule in StockRule.objects.filter(channel=channel):
        if rule.variant_id is not None:
            existing[("variant", rule.variant_id)] = rule
        else:
            existing[("product", rule.product_id)] = rule
    return existing


def _count(channel: Channel, good: list[_Row], result: ImportResult) -> None:
    existing = _existing(channel)
    for row in good:
        rule = existing.get(row.target)
        if rule is None:
            result.created += 1
        elif all(getattr(rule, f) == v for f, v in row.values.items()):
            result.unchanged += 1
        else:
            result.updated += 1


def _write(channel: Channel, good: list[_Row], result: ImportResult) -> None:
    existing = _existing(channel)
    new, changed = [], []
    for row in good:
        rule = existing.get(row.target)
        if rule is None:
            kind, target_id = row.target
            rule = StockRule(channel=channel, **{f"{kind}_id": target_id}, **row.values)
            new.append(rule)
        elif all(getattr(rule, f) == v for f, v in row.values.items()):
            result.unchanged += 1
            continue
        else:
            for field, value in row.values.items():
                setattr(rule, field, value)
            changed.append(rule)
    StockRule.objects.bulk_create(new, batch_size=1000)
    StockRule.objects.bulk_update(changed, list(RULE_FIELDS), batch_size=1000)
    result.created, result.updated = len(new), len(changed)
    stock_rules_touched(channel_id=channel.pk, rules=[*new, *changed])


def variant_by_sku(sku: str) -> Variant:
    variant = Variant.objects.select_related("product").filter(sku_key=sku_key(sku)).first()
    if variant is None:
        raise UnknownSku(sku)
    return variant
