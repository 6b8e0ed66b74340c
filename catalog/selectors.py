"""Reads of the catalog shared by the imports, the stock API and the channels' scans."""

import json
from collections.abc import Collection

from django.db import connection

from catalog.models import Variant
from omni.bulk import keyed_lookup


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
