"""Row locks for stock. Every caller locks in (variant, outlet) order, so none can deadlock."""

from collections.abc import Sequence
from contextlib import nullcontext

from django.db import connection

from catalog.models import Stock
from omni.bulk import int_array, keyed_lookup

# (stock id, on hand, reserved) of one locked row.
Level = tuple[int, int, int]


def stocks_locked(variant_ids: Sequence[int], outlet_ids: Sequence[int]) -> list[Stock]:
    """Lock the stock rows of these variants at these outlets, in (variant, outlet) order.

    On SQLite `select_for_update` is a no-op; its IMMEDIATE transactions serialise writers instead.
    """
    return list(
        Stock.objects.filter(variant_id__in=variant_ids, outlet_id__in=outlet_ids)
        .order_by("variant_id", "outlet_id")
        .select_for_update()
    )


# Up to this many pairs the planner's own choice, the unique (variant, outlet) index, stands:
# an order or an adjustment locks a handful of rows and should cost one round trip.
FEW_PAIRS = 1000

# The pairs arrive as two arrays zipped by unnest(); rows are locked as they leave the sort,
# so in (variant, outlet) order. The unique (variant, outlet) index serves the join of a few
# pairs; a large batch is hashed against the stock of its outlets only (the third parameter,
# the batch's distinct outlets, through the outlet index), so importing into a new outlet
# reads no stock rows at all.
_LOCK_LEVELS = """
SELECT s.id, s.variant_id, s.outlet_id, s.on_hand, s.reserved
FROM {table} AS s
JOIN unnest(%s::bigint[], %s::bigint[]) AS p(variant_id, outlet_id)
  ON s.variant_id = p.variant_id AND s.outlet_id = p.outlet_id
WHERE s.outlet_id = ANY(%s::bigint[])
ORDER BY s.variant_id, s.outlet_id
FOR UPDATE OF s
"""


def stock_levels_locked(pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Level]:
    """Lock the existing stock rows of these (variant, outlet) pairs, in (variant, outlet) order.

    Returns {(variant_id, outlet_id): (stock id, on hand, reserved)} as read under the lock;
    pairs with no stock row are absent. Plain tuples, no model instances. Callers locking in
    several calls pass the pairs sorted and chunk them in that order, so the whole lock order
    stays the (variant, outlet) order every stock writer uses.

    Cost: one query (for more than FEW_PAIRS pairs on PostgreSQL, a few more round trips to
    choose its plan: see omni.bulk.keyed_lookup). On PostgreSQL the pairs travel as two array
    parameters, so any number fits; elsewhere they become IN lists (variants × outlets,
    narrowed here), so keep a call to a few thousand pairs, and select_for_update is a no-op on
    SQLite (see stocks_locked).
    """
    if not pairs:
        return {}
    if connection.vendor == "postgresql":
        table = Stock._meta.db_table
        sql = _LOCK_LEVELS.format(table=connection.ops.quote_name(table))
        outlets = [o for _, o in pairs]
        params = [int_array(v for v, _ in pairs), int_array(outlets), int_array(set(outlets))]
        with connection.cursor() as cursor:
            plan = (
                keyed_lookup(cursor, table, len(pairs)) if len(pairs) > FEW_PAIRS else nullcontext()
            )
            with plan:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
        # The join matched the pairs exactly.
        return {(v, o): (pk, on_hand, reserved) for pk, v, o, on_hand, reserved in rows}
    rows = (
        Stock.objects.filter(
            variant_id__in={v for v, _ in pairs}, outlet_id__in={o for _, o in pairs}
        )
        .order_by("variant_id", "outlet_id")
        .select_for_update()
        .values_list("id", "variant_id", "outlet_id", "on_hand", "reserved")
    )
    # variants × outlets may hold rows of pairs that were not asked for.
    wanted = set(pairs)
    return {
        (v, o): (pk, on_hand, reserved) for pk, v, o, on_hand, reserved in rows if (v, o) in wanted
    }
