"""Bulk writes that cost one statement per batch, not one SQL fragment per value.

Django's `bulk_update` builds a `CASE WHEN pk = … THEN …` per field and row: fine for dozens of
rows, slow for thousands. On PostgreSQL `bulk_set` sends the rows as one JSON document and
joins it in a single `UPDATE … FROM jsonb_to_recordset(…)`; elsewhere it falls back to
`bulk_update`.
"""

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db import connection, models

BATCH = 5000


def bulk_set(
    model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]
) -> None:
    """Write `fields` of already saved `objs` back to their rows. No signals, no save()."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, list(fields), batch_size=1000)
        return
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    spec = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in [pk, *columns])
    sets = ", ".join(f"{quote(f.column)} = r.{quote(f.column)}" for f in columns)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {sets} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({spec}) "
        f"WHERE t.{quote(pk.column)} = r.{quote(pk.column)}"
    )
    iterator = iter(objs)
    with connection.cursor() as cursor:
        while batch := list(islice(iterator, BATCH)):
            rows = [
                {pk.column: obj.pk, **{f.column: getattr(obj, f.attname) for f in columns}}
                for obj in batch
            ]
            cursor.execute(sql, [json.dumps(rows, default=_json_value)])


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in a bulk write")
