"""Bulk writes of scanned listings: one statement per batch, whatever its size.

On PostgreSQL a batch is one `INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT DO
UPDATE`: three parameters for any number of rows, so Python binds no value one by one. Elsewhere
(SQLite) Django's `bulk_create(update_conflicts=True)` does the same job more slowly.
"""

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, Q

from channels.models import Listing
from omni.bulk import json_value, plan_without


class ListingRow(NamedTuple):
    """The scanned state of one listing, as written."""

    item_id: str
    variant_ref: str
    sku: str
    sku_key: str
    title: str
    price: Decimal
    quantity: int
    status: str
    channel_updated_at: datetime | None
    variant_id: int | None


SCANNED = ListingRow._fields[2:]  # what a scan may change on an existing listing

# The rows travel as one JSON document: a single parameter whatever the batch size, encoded by
# the json module's C code and decoded by PostgreSQL, instead of thousands of bound values.
_UPSERT = """
INSERT INTO {table} (channel_id, item_id, variant_ref, sku, sku_key, title, price, quantity,
    status, channel_updated_at, variant_id, is_manual_link, duplicate_sku, push_error,
    last_seen_at, created_at, updated_at)
SELECT %(channel)s, r.item_id, r.variant_ref, r.sku, r.sku_key, r.title, r.price, r.quantity,
    r.status, r.channel_updated_at, r.variant_id, false, false, '', %(now)s, %(now)s, %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(item_id text, variant_ref text, sku text,
    sku_key text, title text, price numeric, quantity int, status text,
    channel_updated_at timestamptz, variant_id bigint)
ON CONFLICT (channel_id, item_id, variant_ref) DO UPDATE SET
    sku = EXCLUDED.sku, sku_key = EXCLUDED.sku_key, title = EXCLUDED.title,
    price = EXCLUDED.price, quantity = EXCLUDED.quantity, status = EXCLUDED.status,
    channel_updated_at = EXCLUDED.channel_updated_at, variant_id = EXCLUDED.variant_id,
    last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
"""


def listings_upsert(*, channel_id: int, rows: Sequence[ListingRow], now: datetime) -> None:
    """Insert new listings and overwrite the scanned fields of existing ones, in one statement.

    Callers decide `variant_id` (a manual link is kept by passing its variant back).
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        document = json.dumps([row._asdict() for row in rows], default=json_value)
        with connection.cursor() as cursor:
            cursor.execute(
                _UPSERT.format(table=Listing._meta.db_table),
                {"channel": channel_id, "now": now, "rows": document},
            )
        return
    Listing.objects.bulk_create(
        [
            Listing(
                channel_id=channel_id,
                last_seen_at=now,
                created_at=now,
                updated_at=now,
                **row._asdict(),
            )
            for row in rows
        ],
        update_conflicts=True,
        unique_fields=["channel", "item_id", "variant_ref"],
        update_fields=[*SCANNED, "last_seen_at", "updated_at"],
        batch_size=500,
    )


def listings_seen(*, ids: Sequence[int], now: datetime) -> None:
    """Record that a scan saw these unchanged listings (the full scan's removal test uses it)."""
    if ids:
        Listing.objects.filter(pk__in=list(ids)).update(last_seen_at=now)


# The reads a scan makes per batch. The keys travel as one JSON array and rows come back as
# plain tuples: no per-value binding and no model instances for thousands of rows. The keys are
# joined rather than tested with `IN`/`ANY`, so no plan can compare every row with every key.
_COLUMNS = ("id", "item_id", "variant_ref", *SCANNED, "is_manual_link")


def listings_of_items(*, channel_id: int, item_ids: Collection[str]) -> list[tuple]:
    """(id, item_id, variant_ref, *SCANNED, is_manual_link) of the channel's listings of
    these items."""
    if not item_ids:
        return []
    if connection.vendor != "postgresql":  # SQLite returns text dates: let Django convert
        rows = Listing.objects.filter(channel_id=channel_id, item_id__in=list(item_ids))
        return list(rows.values_list(*_COLUMNS))
    table = connection.ops.quote_name(Listing._meta.db_table)
    columns = ", ".join(f"l.{name}" for name in _COLUMNS)
    sql = (
        f"SELECT {columns} FROM jsonb_array_elements_text(%s::jsonb) AS k(item_id) "
        f"JOIN {table} AS l ON l.item_id = k.item_id WHERE l.channel_id = %s"
    )
    return _by_index(sql, [json.dumps(sorted(item_ids)), channel_id])


def _by_index(sql: str, params: list) -> list[tuple]:
    """Run a key lookup with sequential scans ruled out for this statement.

    While a first scan fills a channel, the planner's statistics still describe an empty
    table and it would happily scan all of it for each batch; the index on the keys is always
    the right plan here.
    """
    with connection.cursor() as cursor, plan_without(cursor, "enable_seqscan"):
        cursor.execute(sql, params)
        return cursor.fetchall()


# Joins only, so the plan stays linear in the channel's listings whatever the planner believes
# about the table (an `IN (subquery)` per row can be evaluated without a hash, row by row).
_MARK_DUPLICATES = """
WITH shared AS MATERIALIZED (
    SELECT sku_key FROM {table}
    WHERE channel_id = %(channel)s AND status <> 'removed' AND sku_key <> ''
    GROUP BY sku_key HAVING count(*) > 1
), wanted AS MATERIALIZED (
    SELECT l.id, (l.status <> 'removed' AND s.sku_key IS NOT NULL) AS flag
    FROM {table} AS l LEFT JOIN shared AS s ON s.sku_key = l.sku_key
    WHERE l.channel_id = %(channel)s
)
UPDATE {table} AS t SET duplicate_sku = w.flag
FROM wanted AS w
WHERE t.id = w.id AND t.duplicate_sku <> w.flag
"""


def listings_mark_duplicates(*, channel_id: int) -> int:
    """Flag the channel's present listings that share a normalised SKU; how many are flagged.

    Called after anything that adds, removes or re-SKUs listings (scans, uploads, catalog
    deletes), so the Multiple Listed SKU tab is an indexed filter instead of a GROUP BY over
    the whole channel on every page view. On PostgreSQL one statement whose shared-SKU set is
    computed once and probed as a hash (nested loops are ruled out for it), so its cost stays
    linear in the channel's listings whatever the planner believes about the table; elsewhere
    two ORM updates.
    """
    present = Listing.objects.filter(channel_id=channel_id).present()
    if connection.vendor == "postgresql":
        # Right after a channel's first scan the planner's statistics still describe an empty
        # channel; it then probes the shared-SKU set once per listing (a nested loop: 12 s at
        # 100,000 listings). Every join here covers the whole channel, so hashing is always the
        # right plan.
        with connection.cursor() as cursor, plan_without(cursor, "enable_nestloop"):
            table = connection.ops.quote_name(Listing._meta.db_table)
            cursor.execute(_MARK_DUPLICATES.format(table=table), {"channel": channel_id})
        return present.filter(duplicate_sku=True).count()
    shared = list(
        present.exclude(sku_key="")
        .values("sku_key")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("sku_key", flat=True)
    )
    Listing.objects.filter(channel_id=channel_id, duplicate_sku=True).exclude(
        Q(sku_key__in=shared) & ~Q(status=Listing.Status.REMOVED)
    ).update(duplicate_sku=False)
    present.filter(sku_key__in=shared, duplicate_sku=False).update(duplicate_sku=True)
    return present.filter(duplicate_sku=True).count()
