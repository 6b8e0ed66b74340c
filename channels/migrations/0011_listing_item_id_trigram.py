# The listing search's third field, the start of an item id: without its own index the OR of the
# three searched fields makes PostgreSQL read the whole table.

from django.db import migrations

from omni.search import trigram_index


class Migration(migrations.Migration):
    dependencies = [("channels", "0010_listing_search_trigrams")]

    operations = [trigram_index("channels_listing", "item_id")]
