from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("synclogs", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="held",
            field=models.BooleanField(
                default=False,
                help_text="Received while the channel was paused; processed on resume.",
            ),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(
                condition=models.Q(("held", True)),
                fields=["channel"],
                name="synclogs_webhook_held",
            ),
        ),
    ]
