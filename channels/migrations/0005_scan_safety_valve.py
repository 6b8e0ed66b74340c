from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels", "0004_listing_duplicate_flag")]

    operations = [
        migrations.AddField(
            model_name="scan",
            name="removal_held",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Listings this full scan did not see but did not mark removed, because "
                "they were more than the safety valve allows without confirmation.",
            ),
        ),
        migrations.AddField(
            model_name="scan",
            name="note",
            field=models.TextField(
                blank=True, help_text="Why the removal was held, and who confirmed it when."
            ),
        ),
        migrations.AddField(
            model_name="scan",
            name="removal_confirmed_by",
            field=models.CharField(blank=True, max_length=120),
        ),
        migrations.AddField(
            model_name="scan",
            name="removal_confirmed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="scan",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("to_confirm", "Removal awaits confirmation"),
                ],
                default="queued",
                max_length=10,
            ),
        ),
    ]
