from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("synclogs", "0002_webhook_held")]

    operations = [
        migrations.AddField(
            model_name="orderdownload",
            name="lease_token",
            field=models.CharField(blank=True, editable=False, max_length=32),
        ),
    ]
