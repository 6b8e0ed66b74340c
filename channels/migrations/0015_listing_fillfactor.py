"""Listings leave room on each page for their next version, on PostgreSQL.

Every push rewrites its listing's row (the quantity sent, when, any error), many times a day.
PostgreSQL can then keep the new version on the same page without touching the table's eleven
indexes (three of them trigram indexes) only when the page has room: a "HOT" update. At the
default fill factor of 100 pages are packed full, and in `bench rules` a third of the pushes'
updates went to another page, writing an entry in every index. 85 keeps a sixth of each new
page free. It applies to pages written from now on; existing ones change as they are rewritten.
"""

from django.db import migrations

FILLFACTOR = 85


def _set(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE channels_listing SET (fillfactor = {FILLFACTOR})")


def _reset(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE channels_listing RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0014_bundle_recount"),
    ]

    operations = [migrations.RunPython(_set, _reset, elidable=False)]
