"""Bulk writes of scanned listings: one statement per batch, whatever its size.

On PostgreSQL a batch is one `INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT DO
UPDATE`: three parameters for any number of rows, so Python binds no value one by one. Elsewhere
(SQLite) Django's `bulk_create(update_conflicts=True)` does the same job more slowly.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection

from channels.models import Listing


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
    status, channel_updated_at, variant_id, is_manual_link, push_error, last_seen_at,
    created_at, updated_at)
SELECT %(channel)s, r.item_id, r.variant_ref, r.sku, r.sku_key, r.title, r.price, r.quantity,
    r.status, r.channel_updated_at, r.variant_id, false, '', %(now)s, %(now)s, %(now)s
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
        document = json.dumps([row._asdict() for row in rows], default=_json_value)
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


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def listings_seen(*, ids: Sequence[int], now: datetime) -> None:
    """Record that a scan saw these unchanged listings (the full scan's removal test uses it)."""
    if ids:
        Listing.objects.filter(pk__in=list(ids)).update(last_seen_at=now)
