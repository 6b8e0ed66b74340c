"""`bench scan` at a small size: it scans an emulated shop over HTTP, prints its figures beside
the floor, times each tab, and leaves nothing behind."""

import io

import pytest
from django.core.management import call_command

from catalog.models import Product
from channels.models import Channel, Listing

pytestmark = pytest.mark.django_db(transaction=True)  # the emulator runs in a forked process


def test_bench_scan_prints_its_figures_and_removes_what_it_created():
    out = io.StringIO()
    call_command(
        "bench",
        "scan",
        "--kind",
        "lazada",
        "--items",
        "300",
        "--changed",
        "20",
        "--latency",
        "0.01",
        stdout=out,
    )
    output = out.getvalue()
    assert "full scan: 3" in output  # about 300 listings
    assert "wall ÷ floor" in output
    assert "Scan Updated Products after" in output
    assert output.count("median of 3, target ≤ 200 ms") == 6  # every tab
    assert not Channel.objects.exists()
    assert not Listing.objects.exists()
    assert not Product.objects.exists()


def test_bench_scan_of_a_shopify_bulk_read_prints_no_calls_floor():
    # given: a shop large enough for a bulk operation (1,000 products or more)
    out = io.StringIO()
    # when
    call_command(
        "bench", "scan", "--kind", "shopify", "--items", "1800", "--changed", "5", stdout=out
    )
    # then: its time is the operation's, so no floor of calls × latency is claimed
    output = out.getvalue()
    assert "read through a bulk operation" in output
    assert "wall ÷ floor" not in output
