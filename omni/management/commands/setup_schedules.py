"""`python manage.py setup_schedules`: make django-q2's schedules match the list in code."""

from typing import Any

from django.core.management.base import BaseCommand
from django_q.models import Schedule

# The name is the identity; every run makes the table match this list. Safe to re-run.
SCHEDULES: list[dict[str, Any]] = [
    {
        "name": "inventory: full sync of channels that are due",
        "func": "channels.tasks.inventory_sync_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    {
        "name": "inventory: retry pushes that have come due",
        "func": "channels.tasks.inventory_flush_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "prices: resume, re-queue and retry price syncs",
        "func": "channels.tasks.price_syncs_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    # Orders (synclogs): incremental download by update time, the missing-order check, and
    # retention of the sync logs.
    {
        "name": "orders: download orders updated on every channel",
        "func": "synclogs.tasks.orders_download_all",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    {
        "name": "orders: log orders of the last 7 days missing from the POS",
        "func": "synclogs.tasks.orders_reconcile_all",
        "schedule_type": Schedule.HOURLY,
    },
    {
        "name": "sync logs: delete rows older than 90 days",
        "func": "synclogs.tasks.synclogs_prune",
        "schedule_type": Schedule.DAILY,
    },
]

# Names this command created in earlier versions and no longer wants.
RETIRED: list[str] = []


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules declared in code. Safe to re-run."

    def handle(self, *args: Any, **options: Any) -> None:
        for spec in SCHEDULES:
            fields = dict(spec)
            name = fields.pop("name")
            _, created = Schedule.objects.update_or_create(
                name=name, defaults={**fields, "repeats": -1}
            )
            self.stdout.write(f"{'created' if created else 'updated'}: {name}")
        deleted, _ = Schedule.objects.filter(name__in=RETIRED).delete()
        if deleted:
            self.stdout.write(f"removed {deleted} retired schedule(s)")
