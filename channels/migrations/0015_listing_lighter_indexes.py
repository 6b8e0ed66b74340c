# Two indexes every scan paid for on each listing it writes, and no query needed:
# - the search finds listings by the start of their item id only, which a B-tree on
#   UPPER(item_id) serves (omni.search.prefix_index); its trigram index cost several times more;
# - nothing lists or filters listings by when they were created.

import django.utils.timezone
from django.db import migrations, models

from omni.search import prefix_index, trigram_index

ITEM_ID_TRIGRAMS = trigram_index("channels_listing", "item_id")


class Migration(migrations.Migration):
    dependencies = [("channels", "0014_bundle_recount")]

    operations = [
        prefix_index("channels_listing", "item_id"),
        migrations.RunPython(ITEM_ID_TRIGRAMS.reverse_code, ITEM_ID_TRIGRAMS.code, elidable=False),
        migrations.AlterField(
            model_name="listing",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
    ]
