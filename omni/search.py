"""Substring search served by an index, on PostgreSQL.

The admin's search boxes match by substring: a plain entry in `search_fields` is Django's
`icontains`, which PostgreSQL runs as `UPPER(column::text) LIKE UPPER('%term%')`. A B-tree index
cannot serve a pattern with a leading `%`; a trigram GIN index on `UPPER(column)` can (the
pg_trgm extension), so a search over a million log rows reads a few index pages instead of the
table. SQLite, the embedded default, scans: its tables are a shop's demo or a test.

In a migration: `operations = [trigram_index("channels_listing", "title"), ...]`.

A field searched only by its start (`^field` in `search_fields`, Django's `istartswith`:
`UPPER(column::text) LIKE UPPER('term%')`) needs no trigrams: `prefix_index` adds a B-tree on
`UPPER(column)` with `text_pattern_ops`, which serves such a pattern whatever the database's
collation, at a fraction of a trigram index's cost per insert.
"""

from django.db import migrations


def _index_name(table: str, column: str) -> str:
    return f"{table}_{column}_trgm"[:63]  # PostgreSQL's identifier limit


def trigram_index(table: str, column: str) -> migrations.RunPython:
    """A migration operation adding a trigram index on UPPER(`column`) of `table` on
    PostgreSQL (and the pg_trgm extension where it is missing); nothing elsewhere."""
    return _postgresql_index(
        table,
        _index_name(table, column),
        f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)',
        first="CREATE EXTENSION IF NOT EXISTS pg_trgm",
    )


def prefix_index(table: str, column: str) -> migrations.RunPython:
    """A migration operation adding a B-tree index serving searches by the start of `column`
    of `table` on PostgreSQL (see the module's docstring); nothing elsewhere."""
    return _postgresql_index(
        table, f"{table}_{column}_prefix"[:63], f'((UPPER("{column}"::text)) text_pattern_ops)'
    )


def _postgresql_index(
    table: str, name: str, definition: str, *, first: str = ""
) -> migrations.RunPython:
    """Create the index `name` on `table` (`definition`: what follows the table's name), after
    the statement `first`, on PostgreSQL; drop it when the migration is reversed."""

    def create(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        if first:
            schema_editor.execute(first)
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" {definition}')

    def drop(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')

    return migrations.RunPython(create, drop, elidable=False)
