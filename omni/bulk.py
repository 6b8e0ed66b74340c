"""Bulk writes that cost one statement per batch, not one SQL fragment per value.

Django's `bulk_update` builds a `CASE WHEN pk = … THEN …` per field and row: fine for dozens of
rows, slow for thousands. On PostgreSQL `bulk_set` sends the rows as one JSON document and
joins it in a single `UPDATE … FROM jsonb_to_recordset(…)`; elsewhere it falls back to
`bulk_update`. `insert_rows` and `update_rows` (PostgreSQL only) go further for whole-number
columns: one array parameter per column, no model instances at all. `copy_insert` and
`copy_update` take rows of any columns as {attname: value}: on PostgreSQL new rows go in
through COPY and updates through a temporary table filled by COPY, because Django's
bulk_create/bulk_update spend most of their time preparing each value in Python; elsewhere they
fall back to bulk_create and one executemany. `matching_chunks` reads the rows of many keys a
few queries at a time.

The choice between PostgreSQL and the other databases for these is made here, and only here.
"""

import gc
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

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
            cursor.execute(sql, [json.dumps(rows, default=json_value)])


def json_value(value: Any) -> str:
    """`json.dumps` default for bulk rows: decimals and dates as the text PostgreSQL parses."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in a bulk write")


# --- PostgreSQL: rows sent as arrays -----------------------------------------------------------
#
# `insert_rows` and `update_rows` send each column as ONE array parameter and let the server
# unnest them: the query text stays the same size for 10 or 100,000 rows, and nothing is built
# per value on the client. Whole-number columns (ids, counts) travel as array literals, which
# Python joins some twenty times faster than psycopg adapts a list element by element; columns
# holding the same value on every row travel once, as a scalar (found here: a stock import's
# outlet, a zero reserved count), which spares building, sending and unnesting that array.

ARRAY_BATCH = 50_000


def int_array(values: Iterable[int]) -> str:
    """`values` as a PostgreSQL array literal ("{1,2,3}"), to send cast to bigint[] or integer[].

    Nothing but digits, signs and commas reaches the query: a list of nothing but ints is
    written by its repr (several times faster than one str() per value); anything else goes
    through int() value by value, which refuses what is not a whole number.
    """
    values = list(values)
    if set(map(type, values)) <= {int}:
        return "{" + repr(values)[1:-1].replace(" ", "") + "}"
    return "{" + ",".join(map(str, map(int, values))) + "}"


def insert_rows(
    model: type[models.Model],
    columns: Mapping[str, Sequence[int]],
    *,
    constants: Mapping[str, Any] | None = None,
    returning: Sequence[str] = (),
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """PostgreSQL only: insert one row per position of the equal-length `columns`.

    `columns` maps attnames to whole numbers, one per row; `constants` maps attnames to one
    value shared by every row. Fields named in neither get no value from here, so they must have
    a database default (an identity primary key does). `returning` names columns to read back
    from the inserted rows; the order of the returned rows is not specified, so return a key.
    With `conflict` (the fields of a unique constraint), a row that exists already gets the
    `update` fields instead. Rows are written in the order given (unnest's). No signals, no
    model instances. Cost: one statement per ARRAY_BATCH rows.
    """
    meta = model._meta
    quote = connection.ops.quote_name
    _array_columns(meta, columns)  # refuses a column that is not whole numbers
    columns, constants = _constant_columns(columns, constants, keep=1)
    names, arrays = _array_columns(meta, columns)
    fixed = {meta.get_field(name): value for name, value in constants.items()}
    targets = ", ".join(quote(f.column) for f in [*names, *fixed])
    values = ", ".join([*(f"a.c{i}" for i in range(len(names))), *map(_cast, fixed)])
    back = ", ".join(quote(meta.get_field(name).column) for name in returning)
    upsert = ""
    if conflict:
        keys = ", ".join(quote(meta.get_field(name).column) for name in conflict)
        sets = ", ".join(
            f"{column} = EXCLUDED.{column}"
            for column in (quote(meta.get_field(name).column) for name in update)
        )
        upsert = f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({targets}) SELECT {values} "
        f"FROM unnest({arrays}) AS a({', '.join(f'c{i}' for i in range(len(names)))})"
        + upsert
        + (f" RETURNING {back}" if back else "")
    )
    found: list[tuple[Any, ...]] = []
    _require_postgresql("insert_rows")
    with connection.cursor() as cursor:
        for batch in _column_batches(columns):
            cursor.execute(sql, [*fixed.values(), *batch])  # in the order they appear
            if back:
                found += cursor.fetchall()
    return found


def upsert_rows(
    model: type[models.Model],
    columns: Mapping[str, Sequence[int]],
    *,
    constants: Mapping[str, Any],
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert one row per position of `columns` (whole numbers, as insert_rows takes them) with
    `constants`; a row whose `conflict` fields exist already gets the `update` fields instead.
    Rows are written in the order given, so callers that take row locks can agree on one; no
    two rows may share their `conflict` fields (PostgreSQL refuses to update a row twice).

    PostgreSQL: insert_rows, one statement. Elsewhere: bulk_create with update_conflicts.
    """
    if connection.vendor == "postgresql":
        insert_rows(model, columns, constants=constants, conflict=conflict, update=update)
        return
    names = list(columns)
    model._default_manager.bulk_create(
        [
            model(**dict(zip(names, values, strict=True)), **constants)
            for values in zip(*columns.values(), strict=True)
        ],
        update_conflicts=True,
        unique_fields=list(conflict),
        update_fields=list(update),
        batch_size=1000,
    )


def update_rows(
    model: type[models.Model],
    pks: Sequence[int],
    columns: Mapping[str, Sequence[int]],
    *,
    constants: Mapping[str, Any] | None = None,
) -> int:
    """PostgreSQL only: set `columns` (whole numbers, one per pk) and `constants` (one value for
    every row) on the rows whose primary keys are `pks`. Returns the number of rows updated.

    No signals, no save(), no auto_now: pass `updated_at` in `constants` when it should move.
    Cost: one statement per ARRAY_BATCH rows.
    """
    meta = model._meta
    quote = connection.ops.quote_name
    columns = {meta.pk.attname: pks, **columns}
    _array_columns(meta, columns)  # refuses a column that is not whole numbers
    columns, constants = _constant_columns(columns, constants, keep=1)  # the pks stay
    names, arrays = _array_columns(meta, columns)
    fixed = {meta.get_field(name): value for name, value in constants.items()}
    sets = [f"{quote(f.column)} = a.c{i}" for i, f in enumerate(names) if i]
    sets += [f"{quote(f.column)} = {_cast(f)}" for f in fixed]
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {', '.join(sets)} "
        f"FROM unnest({arrays}) AS a({', '.join(f'c{i}' for i in range(len(names)))}) "
        f"WHERE t.{quote(meta.pk.column)} = a.c0"
    )
    updated = 0
    _require_postgresql("update_rows")
    with connection.cursor() as cursor:
        for batch in _column_batches(columns):
            cursor.execute(sql, [*fixed.values(), *batch])  # in the order they appear
            updated += cursor.rowcount
    return updated


def _constant_columns(
    columns: Mapping[str, Sequence[int]], constants: Mapping[str, Any] | None, *, keep: int
) -> tuple[dict[str, Sequence[int]], dict[str, Any]]:
    """`columns` without those holding one value on every row, and `constants` with them.

    The first `keep` columns stay arrays whatever they hold: at least one is needed to give
    the number of rows (and update_rows' first is the primary keys). Cost: one pass over
    each column, in C (list.count).
    """
    rows = _length(columns)
    arrays: dict[str, Sequence[int]] = {}
    fixed = dict(constants or {})
    for position, (name, values) in enumerate(columns.items()):
        same = position >= keep and rows > 1 and values.count(values[0]) == rows
        if same and type(values[0]) is int:  # True equals 1, but travels as a boolean
            fixed[name] = values[0]
        else:
            arrays[name] = values
    return arrays, fixed


def _array_columns(
    meta: Any, columns: Mapping[str, Sequence[int]]
) -> tuple[list["models.Field[Any, Any]"], str]:
    """The fields of `columns`, and the unnest() arguments: one cast array parameter each."""
    if not columns:
        raise ValueError("at least one column of values is needed")
    fields = [meta.get_field(name) for name in columns]
    for field in fields:
        stored = field.target_field if field.is_relation else field
        if stored.get_internal_type() not in _WHOLE_NUMBER_TYPES:
            raise TypeError(f"{meta.label}.{field.name} is not a whole-number column")
    return fields, ", ".join(f"%s::{f.rel_db_type(connection)}[]" for f in fields)


def _cast(field: "models.Field[Any, Any]") -> str:
    """A scalar parameter, typed as `field`'s column (an untyped NULL would be read as text).

    Text columns take text: casting to varchar(n) would cut a long value silently, whereas
    assigning text to the column refuses it.
    """
    if isinstance(field, models.CharField | models.TextField):
        return "%s::text"
    return f"%s::{field.db_type(connection)}"


def _require_postgresql(name: str) -> None:
    if connection.vendor != "postgresql":
        raise NotImplementedError(
            f"{name} needs PostgreSQL (unnest of arrays), not {connection.vendor}"
        )


def _length(columns: Mapping[str, Sequence[int]]) -> int:
    """The number of rows of `columns`; ValueError unless they all have it."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _column_batches(columns: Mapping[str, Sequence[int]]) -> Iterator[list[str]]:
    total = _length(columns)
    for start in range(0, total, ARRAY_BATCH):
        yield [int_array(values[start : start + ARRAY_BATCH]) for values in columns.values()]


_WHOLE_NUMBER_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


# --- rows of any columns, as {attname: value}: COPY on PostgreSQL ----------------------------
#
# Rows per COPY, per bulk_create and per executemany, and keys per query of `matching_chunks`
# (four times as many on PostgreSQL): well under PostgreSQL's and SQLite's limits on query
# parameters, large enough that 100,000 rows take a few dozen round trips.
CHUNK = 5000


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _AnyOf(models.Lookup):  # type: ignore[type-arg]
    """`column = ANY(%s)` with the keys as one array parameter (PostgreSQL).

    Unlike `__in`, the query text stays the same size however many keys there are, so
    building, sending and planning it costs no more for 20,000 keys than for 20. Whole numbers
    travel as an array literal (int_array) and text as one JSON document, both built in C:
    psycopg adapts a list element by element, which costs about a microsecond per key.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, params = self.process_lhs(compiler, connection)
        types = set(map(type, self.rhs))
        if types == {int}:
            return f"{lhs} = ANY(%s::bigint[])", (*params, int_array(self.rhs))
        if types == {str} and isinstance(
            self.lhs.output_field, models.CharField | models.TextField
        ):
            # text[], never cast to the column's varchar(n): that would cut longer keys short.
            keys = "ARRAY(SELECT jsonb_array_elements_text(%s::jsonb))"
            return f"{lhs} = ANY({keys})", (*params, json.dumps(self.rhs))
        return f"{lhs} = ANY(%s)", (*params, self.rhs)


def matching_chunks(
    queryset: models.QuerySet[Any], attname: str, keys: Sequence[Any]
) -> Iterator[models.QuerySet[Any]]:
    """`queryset` narrowed to rows whose `attname` is one of `keys`, in a few chunks: one
    query each when evaluated (4 × CHUNK keys per query on PostgreSQL, CHUNK elsewhere)."""
    if connection.vendor == "postgresql":
        for chunk in chunks(keys, 4 * CHUNK):
            yield queryset.filter(_AnyOf(models.F(attname), chunk))
    else:
        for chunk in chunks(keys):
            yield queryset.filter(**{f"{attname}__in": chunk})


def _insert_columns(model: type[models.Model]) -> list["models.Field[Any, Any]"]:
    return [f for f in model._meta.concrete_fields if not f.generated]


def _copy_value(field_: "models.Field[Any, Any]") -> Callable[[Any], Any]:
    """How a Python value goes into COPY's text format for this field."""
    if isinstance(field_, models.JSONField):
        return lambda value: None if value is None else json.dumps(value)
    return lambda value: value


def copy_insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    tick: Callable[[int], None],
    *,
    keys: bool = True,
) -> list[int]:
    """Insert rows given as {attname: value}; with `keys`, the new primary keys, in order.
    `tick` is called with the number of rows written after each chunk.

    Fields a row leaves out take their model default. No signals, no save(). On PostgreSQL:
    one COPY per CHUNK rows, after one query reserving the keys when they are wanted.
    Elsewhere: bulk_create, which needs a database that returns inserted keys (SQLite 3.35+).
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        for chunk in chunks(objs):
            model.objects.bulk_create(chunk)
            tick(len(chunk))
        return [obj.pk for obj in objs] if keys else []
    return _copy_insert_postgresql(model, rows, tick, keys=keys)


def _copy_insert_postgresql(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    tick: Callable[[int], None],
    *,
    keys: bool,
) -> list[int]:
    meta = model._meta
    pk_name = meta.pk.attname
    columns = [f for f in _insert_columns(model) if keys or not f.primary_key]
    defaults = {f.attname: f.get_default() for f in columns if not f.primary_key}
    values_of = operator.itemgetter(*(f.attname for f in columns))
    json_at = [i for i, f in enumerate(columns) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in columns)
    with connection.cursor() as cursor:
        pks: list[int] = []
        if keys:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            pks = [pk for (pk,) in cursor.fetchall()]
            rows = [{**row, pk_name: pk} for row, pk in zip(rows, pks, strict=True)]
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({names}) FROM STDIN") as copy:
                for row in chunk:
                    values = list(values_of({**defaults, **row}))
                    for i in json_at:
                        values[i] = None if values[i] is None else json.dumps(values[i])
                    copy.write_row(values)
            tick(len(chunk))
    return pks


def copy_update(
    model: type[models.Model],
    attnames: Sequence[str],
    rows: list[tuple[int, dict[str, Any]]],
    tick: Callable[[int], None],
) -> None:
    """Set `attnames` (plus updated_at) on the rows given as (pk, {attname: value}). `tick` is
    called with the number of rows written after each chunk. No signals, no save().

    On PostgreSQL: COPY into a temporary table, then one UPDATE … FROM. Elsewhere: one
    executemany of a single-row UPDATE, which SQLite runs without a round trip per row.
    """
    if not rows:
        return
    meta = model._meta
    fields = [meta.get_field(a) for a in attnames] + [meta.get_field("updated_at")]
    now = timezone.now()
    full = [(pk, [*(values[a] for a in attnames), now]) for pk, values in rows]
    if connection.vendor == "postgresql":
        _copy_update_postgresql(model, fields, full, tick)
        return
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        for chunk in chunks(full):
            params = [
                [
                    *(f.get_db_prep_save(v, connection) for f, v in zip(fields, vals, strict=True)),
                    pk,
                ]
                for pk, vals in chunk
            ]
            cursor.executemany(sql, params)
            tick(len(chunk))


def _copy_update_postgresql(
    model: type[models.Model],
    fields: list["models.Field[Any, Any]"],
    rows: list[tuple[int, list[Any]]],
    tick: Callable[[int], None],
) -> None:
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    columns = [quote(f.column) for f in fields]
    adapters = [_copy_value(f) for f in fields]
    temp = quote("import_update")
    with connection.cursor() as cursor:
        names = ", ".join(columns)
        cursor.execute(
            f"CREATE TEMPORARY TABLE {temp} AS SELECT {pk}, {names} FROM {table} WITH NO DATA"
        )
        sql = f"COPY {temp} ({pk}, {names}) FROM STDIN"
        for chunk in chunks(rows):
            with cursor.cursor.copy(sql) as copy:
                for row_pk, values in chunk:
                    copy.write_row([row_pk, *(a(v) for a, v in zip(adapters, values, strict=True))])
            tick(len(chunk))
        assignments = ", ".join(f"{c} = u.{c}" for c in columns)
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM {temp} AS u WHERE t.{pk} = u.{pk}"
        )
        cursor.execute(f"DROP TABLE {temp}")


# --- PostgreSQL: choosing how a batch of keys meets a table ------------------------------------
#
# A batch of keys joined to a large table is answered either by one index lookup per key, or by
# one sequential read of the table hashed against the keys. The planner weighs the two with its
# statistics, which describe the table as it was at the last ANALYZE: during and after a bulk
# import they are far off, and it then reads a million rows to find twenty, or probes an index
# a hundred thousand times for a table it could read in a twentieth of that. `keyed_lookup`
# makes the choice from the table's size on disk, which is always current.

# A sequential read costs about as much per 8 kB page as five index lookups cost per key
# (PostgreSQL 15, 100,000 variants: 0.05 s to read the table, 0.4 s to look up every key).
KEYS_PER_PAGE = 5


@contextmanager
def plan_without(cursor: Any, setting: str) -> Iterator[None]:
    """Within the block, the planner may not use one kind of plan for statements on `cursor`:
    `setting` is a planner switch such as "enable_seqscan" or "enable_nestloop". PostgreSQL
    only; a savepoint scopes the setting. Cost: a few round trips (savepoint, set, reset).
    """
    with transaction.atomic():
        cursor.execute(f"SET LOCAL {setting} = off")
        try:
            yield
        finally:
            # Releasing the savepoint would not undo SET LOCAL: restore it for the rest of the
            # caller's transaction.
            cursor.execute(f"SET LOCAL {setting} TO DEFAULT")


@contextmanager
def keyed_lookup(cursor: Any, table: str, keys: int) -> Iterator[None]:
    """Within the block, statements on `cursor` join `keys` keys to `table` (a table name)
    by the cheaper of the two plans: hashing when there are more than KEYS_PER_PAGE keys per
    page of the table, index lookups otherwise (see plan_without). PostgreSQL only.
    Cost: one query for the table's size, then plan_without's round trips.
    """
    cursor.execute("SELECT pg_relation_size(%s::regclass) / 8192", [table])
    (pages,) = cursor.fetchone()
    avoided = "enable_nestloop" if keys > KEYS_PER_PAGE * pages else "enable_seqscan"
    with plan_without(cursor, avoided):
        yield


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a block that builds hundreds of thousands of
    objects at once (a CSV import).

    Every full collection walks every live object, and building that many objects sets off
    dozens of them: 5.5 of the 20 seconds of `bench import` went to collections that freed
    nothing. Reference counting still frees whatever the block drops; only reference cycles
    made meanwhile wait for the first collection after it. The block that disabled the
    collector enables it again, so nested blocks leave it to the outermost.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
