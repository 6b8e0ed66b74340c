"""`bench admin` on a small dataset: every page it times answers 200, a page that does not
fails the run, --reuse keeps the data for the next run, and a slow page's query is explained."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from channels.models import Channel
from channels.tabs import TABS
from omni.benchmarks import admin_bench
from omni.benchmarks.admin_bench import NAME
from synclogs.models import SyncLog

# The bench vacuums the tables it filled, which PostgreSQL refuses inside a transaction.
pytestmark = pytest.mark.django_db(transaction=True)

SMALL = ("--listings", "300", "--logs", "2000", "--repeat", "1")
FIGURES = r"\s+\d+\.\d\s+\d+\.\d\s+\d+\s+\d+\.\d$"  # median ms, max ms, queries, their ms


def bench(*args: str) -> str:
    out = io.StringIO()
    call_command("bench", "admin", *args, stdout=out)
    return out.getvalue()


def timed(output: str, label: str) -> bool:
    return re.search(rf"^{re.escape(label)}{FIGURES}", output, re.MULTILINE) is not None


def test_bench_admin_times_every_tab_the_logs_and_the_report():
    # when
    output = bench(*SMALL)
    # then: every page answered 200 and has its figures
    for tab in TABS:
        assert timed(output, tab.title), tab.title
    for label in (
        "Channels",
        "Sync Logs · All",
        "Sync Logs · Create Order",
        "Sync Logs · 404 on one channel",
        "Sync Logs · 7-day report",
        "Sync Logs · 7-day report, counted again",
    ):
        assert timed(output, label), label
    assert re.search(rf"^Sold in Channel · search \S+{FIGURES}", output, re.MULTILINE)
    assert re.search(rf"^Sync Logs · search \S+{FIGURES}", output, re.MULTILINE)
    assert "target ≤ 200 ms median per page; over it:" in output
    assert "load average at start:" in output
    assert "load average at end:" in output
    # and it removed what it built
    assert not Channel.objects.filter(name__startswith=NAME).exists()
    assert not SyncLog.objects.exists()


def test_bench_admin_fails_when_a_page_does_not_answer(monkeypatch):
    # given: the login does not hold, so every page sends the browser to the login page
    monkeypatch.setattr(Client, "force_login", lambda self, user, backend=None: None)
    # when / then
    with pytest.raises(CommandError, match="did not answer 200.*login"):
        bench(*SMALL)
    assert not Channel.objects.filter(name__startswith=NAME).exists()


def test_bench_admin_reuse_keeps_the_dataset_for_the_next_run():
    # given
    first = bench(*SMALL, "--reuse")
    # when
    second = bench(*SMALL, "--reuse")
    # then
    assert "building one" in first
    assert "reusing the dataset" in second
    assert not re.search(r"^sync log rows\s+\d", second, re.MULTILINE)  # nothing was built
    assert timed(second, "Sync Logs · All")
    assert Channel.objects.filter(name__startswith=NAME).count() == 2


@pytest.mark.postgres
def test_bench_admin_explains_the_slowest_query_of_a_page_over_target(monkeypatch):
    # given: a target every page misses
    monkeypatch.setattr(admin_bench, "TARGET_MS", 0)
    # when
    output = bench(*SMALL)
    # then: each page's slowest query is explained on the data it was timed on
    assert output.count("  slowest query (") == len(TABS) + 8
    assert "Execution Time:" in output
    assert output.rindex("Execution Time:") < output.index("remove the data")
