"""Reads of the catalog shared by the imports, the stock API and the channels' scans."""

import json
from collections.abc import Collection, Mapping
from typing import Any

from django.db import connection
from django.db.models import F, Sum

from catalog.bundles import leaf_components
from catalog.models import Stock, Variant
from omni.bulk import keyed_lookup, matching_chunks


def variant_ids_by_sku_key(keys: Collection[str]) -> dict[str, int]:
    """{normalised SKU: variant id} for those of `keys` the POS knows (see catalog.models.sku_key).

    Blank keys, and keys no database column could hold (a NUL, unpaired surrogates), match
    nothing. Cost: one query whatever the number of keys (on PostgreSQL a few round trips more,
    to choose its plan). On PostgreSQL the keys travel as one JSON array, joined to the variants
    by index lookups or by hashing, whichever is cheaper for this many keys
    (omni.bulk.keyed_lookup).
    """
    wanted = sorted({key for key in keys if key and storable(key)})
    if not wanted:
        return {}
    table = connection.ops.quote_name(Variant._meta.db_table)
    document = json.dumps(wanted)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            keys_in = "SELECT value FROM json_each(%s)"
            cursor.execute(
                f"SELECT sku_key, id FROM {table} WHERE sku_key IN ({keys_in})", [document]
            )
            return dict(cursor.fetchall())
        with keyed_lookup(cursor, Variant._meta.db_table, len(wanted)):
            cursor.execute(
                f"SELECT v.sku_key, v.id FROM jsonb_array_elements_text(%s::jsonb) AS k(sku_key) "
                f"JOIN {table} AS v ON v.sku_key = k.sku_key",
                [document],
            )
            return dict(cursor.fetchall())


def storable(text: str) -> bool:
    """Whether `text` can be sent to the database at all: no NUL, no unpaired surrogates."""
    if "\0" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def available_stock(
    *,
    variant_ids: Collection[int],
    outlet_ids: Collection[int],
    leaves: Mapping[int, Mapping[int, int]] | None = None,
) -> dict[int, int]:
    """{variant id: what it has available over `outlet_ids`} for every id of `variant_ids`.

    A plain variant: the sum of on hand − reserved over those outlets (negative when more is
    reserved than on hand; 0 without stock rows). A bundle (catalog.bundles): the fewest whole
    bundles its components make, min over its leaf components of floor(max(available, 0) /
    units one bundle takes), a bundle inside a bundle being replaced by its own components (so
    a component two inner bundles share is counted once for both: never more than can be
    sold). This is what channels are sent, before their own buffer and allocation rules.

    Cost, whatever the number of ids: one query per level of bundle nesting (one when no id is
    a bundle), then one aggregate of the stock; each per chunk of 20,000 ids on PostgreSQL,
    5,000 elsewhere (omni.bulk.matching_chunks), so a channel of 100,000 listings takes a
    handful of queries. A caller that has read the bundles among the ids already passes their
    `leaves` (catalog.bundles.leaf_components; {} for ids all plain), saving that read.
    """
    wanted = set(variant_ids)
    if leaves is None:
        leaves = leaf_components(wanted)
    levels = _available(_plain(wanted, leaves), outlet_ids, by_outlet=False)
    return {variant: _count(variant, leaves, levels) for variant in wanted}


def available_stock_by_outlet(
    *, variant_ids: Collection[int], outlet_ids: Collection[int]
) -> dict[int, dict[int, int]]:
    """{variant id: {outlet id: what it has available there}}, as available_stock counts it
    but at each outlet on its own (a bundle at an outlet is what its components make there).
    Same cost as available_stock."""
    wanted = set(variant_ids)
    leaves = leaf_components(wanted)
    at: dict[int, dict[int, int]] = {outlet: {} for outlet in outlet_ids}
    for (variant, outlet), available in _available(
        _plain(wanted, leaves), outlet_ids, by_outlet=True
    ).items():
        at[outlet][variant] = available
    return {
        variant: {outlet: _count(variant, leaves, levels) for outlet, levels in at.items()}
        for variant in wanted
    }


def _plain(wanted: set[int], leaves: Mapping[int, Mapping[int, int]]) -> set[int]:
    """The plain variants whose stock `wanted` needs: its own plain ones, and every leaf
    component of its bundles."""
    return (wanted - leaves.keys()) | {leaf for parts in leaves.values() for leaf in parts}


def _count(variant: int, leaves: Mapping[int, Mapping[int, int]], levels: Mapping[Any, int]) -> int:
    parts = leaves.get(variant)
    if parts is None:
        return levels.get(variant, 0)
    return bundles_made(parts, levels)


def bundles_made(parts: Mapping[int, int], levels: Mapping[Any, int]) -> int:
    """The whole bundles `parts` ({leaf component: units one bundle takes}) make of `levels`
    ({variant: available}; a leaf absent has none, one short of stock counts as none)."""
    return min((max(levels.get(leaf, 0), 0) // units for leaf, units in parts.items()), default=0)


def _available(
    variant_ids: Collection[int], outlet_ids: Collection[int], *, by_outlet: bool
) -> dict[Any, int]:
    """{variant id (or (variant id, outlet id) `by_outlet`): sum of on hand − reserved over the
    outlets} for those with stock rows. One aggregate per chunk of ids."""
    outlets = sorted(set(outlet_ids))
    if not outlets or not variant_ids:
        return {}
    keys = ["variant_id", "outlet_id"] if by_outlet else ["variant_id"]
    rows = (
        Stock.objects.filter(outlet_id__in=outlets)
        .order_by()
        .values(*keys)
        .annotate(available=Sum(F("on_hand") - F("reserved")))
        .values_list(*keys, "available")
    )
    found: dict[Any, int] = {}
    for chunk in matching_chunks(rows, "variant_id", sorted(variant_ids)):
        for *key, available in chunk:
            found[tuple(key) if by_outlet else key[0]] = available
    return found
