"""Substring search in the catalog admin, served by trigram indexes on PostgreSQL.

The products, variants, stock and ledger changelists search these columns with `icontains`
(any part of a SKU, UPC, product name, handle or ledger reference); see omni.search.
"""

from django.db import migrations

from omni.search import trigram_index


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_ledger_history_keys_unchecked"),
    ]

    operations = [
        trigram_index("catalog_product", "name"),
        trigram_index("catalog_product", "handle"),
        trigram_index("catalog_variant", "sku_key"),
        trigram_index("catalog_variant", "upc"),
        trigram_index("catalog_stockmovement", "reference"),
    ]
