"""prune_synclogs: dry run by default, batched deletes with --commit; the scheduled tasks."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from synclogs.models import SyncLog, WebhookEvent

pytestmark = pytest.mark.django_db


def test_help_works(capsys):
    with pytest.raises(SystemExit):
        call_command("prune_synclogs", "--help")
    assert "--commit" in capsys.readouterr().out


@pytest.fixture
def aged(shop):
    now = timezone.now()
    SyncLog.objects.bulk_create(
        SyncLog(
            channel=shop.channel,
            order_number=f"O{i}",
            action=SyncLog.Action.CREATE_ORDER,
            status=200,
            origin="schedule",
            message="old" if i < 25 else "recent",
            created_at=now - timedelta(days=120 if i < 25 else 10),
        )
        for i in range(40)
    )
    WebhookEvent.objects.create(
        channel=shop.channel, delivery_id="x", topic="other", received_at=now - timedelta(days=100)
    )


def test_a_dry_run_counts_and_deletes_nothing(aged):
    out = StringIO()
    call_command("prune_synclogs", "--days", "90", stdout=out)
    assert "Dry run: 26 row(s)" in out.getvalue()
    assert SyncLog.objects.count() == 40
    assert WebhookEvent.objects.count() == 1


def test_commit_deletes_only_old_rows_in_batches(aged):
    out = StringIO()
    call_command("prune_synclogs", "--days", "90", "--commit", "--batch-size", "7", stdout=out)
    assert "Deleted 26 row(s)" in out.getvalue()
    assert set(SyncLog.objects.values_list("message", flat=True)) == {"recent"}
    assert WebhookEvent.objects.count() == 0


def test_nonsense_days_are_refused(aged):
    with pytest.raises(CommandError):
        call_command("prune_synclogs", "--days", "0")
    assert SyncLog.objects.count() == 40


def test_the_schedules_are_declared():
    from omni.management.commands.setup_schedules import SCHEDULES

    funcs = {spec["func"] for spec in SCHEDULES}
    assert {
        "synclogs.tasks.orders_download_all",
        "synclogs.tasks.orders_reconcile_all",
        "synclogs.tasks.synclogs_prune",
    } <= funcs
