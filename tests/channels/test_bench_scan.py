"""`bench scan` at a small size: it scans an emulated shop over HTTP, prints its figures beside
the floor, times each tab, and leaves nothing behind."""

import io

import pytest
from django.core.management import call_command

from catalog.models import Product
from channels.models import Channel, Listing

pytestmark = pytest.mark.django_db(transaction=True)  # the emulator runs in a forked process


def bench_scan(*options: str) -> str:
    """What `bench scan` with these options prints."""
    out = io.StringIO()
    call_command("bench", "scan", *options, stdout=out)
    return out.getvalue()


def test_bench_scan_prints_its_figures_and_removes_what_it_created():
    output = bench_scan(
        "--kind", "lazada", "--items", "300", "--changed", "20", "--latency", "0.01"
    )
    assert "full scan: 3" in output  # about 300 listings
    assert "wall ÷ floor" in output
    assert "Scan Updated Products after" in output
    assert output.count("median of 3, target ≤ 200 ms") == 6  # every tab
    assert not Channel.objects.exists()
    assert not Listing.objects.exists()
    assert not Product.objects.exists()


def test_bench_scan_of_a_shopify_bulk_read_prints_no_calls_floor():
    # given: a shop large enough for a bulk operation (1,000 products or more)
    # when
    output = bench_scan("--kind", "shopify", "--items", "1800", "--changed", "5")
    # then: its time is the operation's, so no floor of calls × latency is claimed
    assert "read through a bulk operation" in output
    assert "wall ÷ floor" not in output


def test_bench_scan_against_a_quota_of_calls_a_second_prints_its_floor_and_no_refusal():
    # given: a marketplace handling 3 calls a second, and a channel told its app may make 2
    # when
    output = bench_scan(
        "--kind", "lazada", "--items", "300", "--changed", "20",
        "--max-per-second", "3", "--calls-a-second", "2",
    )  # fmt: skip
    # then: the floor counts the quota, and the spaced calls were never refused
    assert "3 calls a second" in output
    assert "at 3 a second" in output
    refused = next(line for line in output.splitlines() if "refused as too many" in line)
    assert refused.split()[4] == "0"
