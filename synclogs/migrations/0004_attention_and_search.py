"""Sync log rows that need attention, order counts for the 7-day report, and substring search.

- `SyncLog.attention`: why a done step still needs staff (unknown SKUs, short stock), with a
  partial index for the "Needs attention" filter and the report's counts.
- The report index carries the order number, so the report counts distinct orders from the
  index alone.
- `ReportSnapshot`: the report as last computed, read while it is fresh.
- Trigram indexes (PostgreSQL) for the order number searches of the Sync Logs and of the sales
  orders (with the marketplace order id), which match by substring.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models

from omni.search import trigram_index


class Migration(migrations.Migration):
    dependencies = [("synclogs", "0003_download_lease_token")]

    operations = [
        migrations.RemoveIndex(model_name="synclog", name="synclogs_log_report"),
        migrations.AddField(
            model_name="synclog",
            name="attention",
            field=models.CharField(
                blank=True,
                help_text="Why staff should look at this row although its step was done.",
                max_length=300,
                verbose_name="needs attention",
            ),
        ),
        migrations.AlterField(
            model_name="synclog",
            name="action",
            field=models.CharField(
                choices=[
                    ("create_order", "Create Order"),
                    ("convert_order_to_invoice", "Convert Order To Invoice"),
                    ("create_invoice", "Create Invoice"),
                    ("create_outbound_logistic", "Create Outbound Logistic"),
                    ("add_payment", "Add Payment"),
                    ("void_invoice", "Void Invoice"),
                ],
                max_length=32,
                verbose_name="step",
            ),
        ),
        migrations.AlterField(
            model_name="synclog",
            name="origin",
            field=models.CharField(
                choices=[
                    ("schedule", "Scheduled download"),
                    ("webhook", "Webhook"),
                    ("manual", "Manual Download Order"),
                    ("reconcile", "Missing order check"),
                ],
                max_length=10,
                verbose_name="trigger",
            ),
        ),
        migrations.AddIndex(
            model_name="salesorder",
            index=models.Index(fields=["-ordered_at", "-id"], name="synclogs_order_recent"),
        ),
        migrations.AddIndex(
            model_name="synclog",
            index=models.Index(
                fields=["created_at", "channel", "action", "status", "order_number"],
                name="synclogs_log_report_orders",
            ),
        ),
        migrations.AddIndex(
            model_name="synclog",
            index=models.Index(
                condition=models.Q(("attention", ""), _negated=True),
                fields=["created_at", "channel", "action"],
                name="synclogs_log_attention",
            ),
        ),
        migrations.CreateModel(
            name="ReportSnapshot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("days", models.PositiveSmallIntegerField(unique=True)),
                ("since", models.DateTimeField()),
                ("until", models.DateTimeField()),
                ("up_to_id", models.BigIntegerField(default=0)),
                ("computed_at", models.DateTimeField()),
                ("channels", models.JSONField(default=list, encoder=DjangoJSONEncoder)),
            ],
            options={"ordering": ["days"]},
        ),
        trigram_index("synclogs_synclog", "order_number"),
        trigram_index("synclogs_salesorder", "order_number"),
        trigram_index("synclogs_salesorder", "remote_id"),
    ]
