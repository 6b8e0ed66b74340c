from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels", "0006_credentials_encrypted")]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="flush_lease",
            field=models.CharField(blank=True, editable=False, max_length=32),
        ),
        migrations.AlterField(
            model_name="pendingpush",
            name="failed",
            field=models.BooleanField(
                default=False,
                help_text="Refused by the marketplace or out of quick retries; tried again hourly, and at once by the next stock change or full sync.",
            ),
        ),
        migrations.RemoveIndex(model_name="pendingpush", name="channels_push_due"),
        migrations.AddIndex(
            model_name="pendingpush",
            index=models.Index(fields=["channel", "next_attempt_at"], name="channels_push_due_at"),
        ),
    ]
