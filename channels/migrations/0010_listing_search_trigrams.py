# Substring search of listings by title and SKU, served on PostgreSQL (omni.search).

from django.db import migrations

from omni.search import trigram_index


class Migration(migrations.Migration):
    dependencies = [("channels", "0009_words_for_triggers")]

    operations = [
        trigram_index("channels_listing", "title"),
        trigram_index("channels_listing", "sku_key"),
    ]
