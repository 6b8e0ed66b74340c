"""`bench propagation` run small: two marketplaces, ten orders, no added latency. Every order
placed is seen on the other marketplace with and without webhooks, the figures print, and the
web server and the worker it started are gone afterwards, also when the run fails.

Real processes (gunicorn and `manage.py worker`) share the test database, so these tests need
PostgreSQL and commit what they write."""

import io
import re

import pytest
from django.core.management import call_command

from channels.models import Channel
from omni.benchmarks import propagation_bench
from omni.benchmarks.propagation_bench import PREFIX, Processes
from synclogs.models import SalesOrder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SMALL = (
    "--kinds",
    "shopee,lazada",
    "--orders",
    "10",
    "--variants",
    "40",
    "--latency",
    "0",
    "--every",
    "0.1",
    "--download-every",
    "2",
    "--timeout",
    "30",
)
WINDOW = r"p50 \d+\.\d\d  p95 \d+\.\d\d  max \d+\.\d\d"


@pytest.fixture
def started(monkeypatch) -> list[Processes]:
    """The web server and worker each run starts, to check they are gone afterwards."""
    made: list[Processes] = []
    original = Processes.__init__

    def spy(self, options):
        original(self, options)
        made.append(self)

    monkeypatch.setattr(Processes, "__init__", spy)
    return made


def assert_stopped(processes: Processes) -> None:
    assert processes.web is not None
    assert processes.worker is not None
    assert processes.web.poll() is not None, "gunicorn still running"
    assert processes.worker.pids() == [], "worker processes still running"


def bench(*args: str) -> str:
    out = io.StringIO()
    call_command("bench", "propagation", *args, stdout=out)
    return out.getvalue()


def test_every_order_reaches_the_other_marketplace_with_and_without_webhooks(started):
    # when
    output = bench(*SMALL)

    # then: both runs measured every order and printed the window
    with_hooks, without = output.split("without webhooks:")
    for part in (with_hooks, without):
        assert "orders measured     10 of 10" in part, output
        assert re.search(WINDOW, part), output
        assert re.search(r"load average\s+\d+\.\d\d at start, \d+\.\d\d at end", part), output
        assert "gave up on" not in part, output
    # and each run took its own path: pushes with webhooks, the schedule's download without
    assert "webhooks not answered 200" not in with_hooks, output
    assert "process_webhook_event" in with_hooks, output
    assert "orders_download_all" not in with_hooks, output
    assert "orders downloaded every 2 s only (the schedule's interval is 300 s)" in without
    assert "orders_download_all" in without, output
    # and nothing is left behind: processes, channels, orders
    assert_stopped(started[0])
    assert not Channel.objects.filter(name__startswith=PREFIX).exists()
    assert not SalesOrder.objects.exists()


def test_a_run_that_fails_still_stops_the_web_server_and_the_worker(started, monkeypatch):
    # given: the run breaks once the processes are up
    def broken(self, report, *, webhooks):
        raise RuntimeError("broken run")

    monkeypatch.setattr(propagation_bench.Bench, "measure", broken)
    # when / then
    with pytest.raises(RuntimeError, match="broken run"):
        bench(*SMALL)
    assert_stopped(started[0])
    assert not Channel.objects.filter(name__startswith=PREFIX).exists()
