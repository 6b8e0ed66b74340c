"""The 7-day report counts orders, not log rows, and every number opens exactly what it counts."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from channels.models import Channel
from synclogs.models import SyncLog
from synclogs.services import order_manual_download, orders_reconcile
from tests.channels.builders import shop_item

pytestmark = pytest.mark.django_db
A = SyncLog.Action
REPORT = reverse("admin:synclogs_report")
# A number of the report: its link and what it shows.
NUMBER = re.compile(r'<td class="num"><a href="([^"]+)"[^>]*>([\d,]+)</a></td>')
# A bar of a step's "orders by day" chart: its link and its tooltip.
BAR = re.compile(r'<a href="([^"]+)" style="height:\d+px" title="[^"]*: (\d+) orders?"></a>')


def report_lines(html: str) -> dict[tuple[str, str], list[int]]:
    """(channel, step) -> the numbers of that line, as the report shows them: Transactions,
    Successful, Conflict, Wrong status, Missing, Needs attention. A channel's own line is
    its "All steps" line."""
    lines: dict[tuple[str, str], list[int]] = {}
    channel = ""
    table = html.split('<table class="omni-report-table">')[1].split("</table>")[0]
    for row in re.findall(r"<tr\b.*?</tr>", table, re.S)[1:]:
        first = re.search(r'<th scope="rowgroup">(.*?)</th>', row)
        channel = unescape(first.group(1)) if first else channel
        step = unescape(re.findall(r"<td>([^<]+)</td>", row)[0])
        lines[(channel, step)] = [int(n.replace(",", "")) for _, n in NUMBER.findall(row)]
    return lines


def shown(client, url: str) -> int:
    """How many rows the changelist behind a link says it holds; when that fits on one page,
    also how many it lists (they must agree)."""
    response = client.get(unescape(url))
    assert response.status_code == 200, url
    html = response.content.decode()
    listed = html.count('class="action-checkbox"')
    count = response.context["cl"].result_count
    if count <= 50:
        assert listed == count, url
    return count


def log_rows(channel: Channel, specs) -> None:
    """Rows (number, action, status, hours ago[, attention]) of `channel`."""
    now = timezone.now()
    SyncLog.objects.bulk_create(
        SyncLog(
            channel=channel,
            order_number=number,
            action=action,
            status=status,
            origin=SyncLog.Origin.SCHEDULE,
            message=f"{number} {action} {status}",
            attention=attention[0] if attention else "",
            created_at=now - timedelta(hours=hours),
        )
        for number, action, status, hours, *attention in specs
    )


def test_an_order_downloaded_again_and_again_is_one_transaction(admin_client, shop):
    # given: an order created, then downloaded by hand three more times (each a 409)
    number = shop.order(("MUG-RED", 1))
    shop.download()
    for _ in range(3):
        order_manual_download(channel=shop.channel, order_numbers=[number])
    assert SyncLog.objects.filter(order_number=number).count() == 4

    # when
    html = admin_client.get(REPORT).content.decode()

    # then: one order, done once and already done on later tries
    lines = report_lines(html)
    assert lines[("Shopee SG", "Create Order")] == [1, 1, 1, 0, 0, 0]
    assert lines[("Shopee SG", "All steps")] == [1, 1, 1, 0, 0, 0]
    # and its Transactions link lists that order once
    transactions_url = NUMBER.findall(html)[0][0]
    assert shown(admin_client, transactions_url) == 1


def test_every_number_and_bar_of_the_report_opens_exactly_what_it_counts(admin_client, shop):
    # given: orders through the pipeline (one with an unknown SKU, one downloaded twice, one
    # cancelled before it reached the POS, one missed by the download) ...
    unknown = shop.emulator.put_item(shop_item("Mystery Box", "NOT-IN-POS"))
    shop.emulator.create_order([(str(unknown), "", 1)])
    again = shop.order(("TEE-BLK-M", 1), state="paid")
    shop.order(("MUG-RED", 1), state="shipped")
    shop.order(("TEE-BLK-L", 1), state="cancelled")
    shop.download()
    order_manual_download(channel=shop.channel, order_numbers=[again])
    shop.order(("MUG-RED", 2), state="paid")
    orders_reconcile(channel=shop.channel)
    # ... and rows over ten days on a second channel: retries across days, attention rows,
    # rows older than the report's seven days
    other = Channel.objects.create(
        kind="shopee", name="Tokopedia ID", api_base_url="http://127.0.0.1:9", credentials={},
        order_outlet=shop.outlet,
    )  # fmt: skip
    log_rows(
        other,
        [
            ("T-1", A.CREATE_ORDER, 200, 1, "1 line with a SKU the POS does not know: X"),
            ("T-1", A.CREATE_ORDER, 409, 30),
            ("T-1", A.CREATE_ORDER, 409, 60),
            ("T-2", A.CREATE_ORDER, 200, 50),
            ("T-2", A.CONVERT_ORDER_TO_INVOICE, 400, 49),
            ("T-2", A.CONVERT_ORDER_TO_INVOICE, 400, 2),
            ("T-3", A.ADD_PAYMENT, 404, 100),
            ("T-3", A.ADD_PAYMENT, 404, 124),
            ("T-4", A.CREATE_ORDER, 200, 24 * 9),  # before the report's first day
            ("T-4", A.CREATE_ORDER, 409, 3),
        ],
    )

    # when
    response = admin_client.get(REPORT)
    html = response.content.decode()

    # then: each channel's line and step lines, in orders
    lines = report_lines(html)
    assert lines[("Tokopedia ID", "All steps")] == [4, 2, 2, 1, 1, 1]
    assert lines[("Tokopedia ID", "Create Order")] == [3, 2, 2, 0, 0, 1]
    assert lines[("Tokopedia ID", "Convert Order To Invoice")] == [1, 0, 0, 1, 0, 0]
    assert lines[("Tokopedia ID", "Add Payment")] == [1, 0, 0, 0, 1, 0]
    assert lines[("Shopee SG", "All steps")][0] == 5  # five orders, one of them missing
    assert lines[("Shopee SG", "Create Order")][-1] == 1  # the unknown SKU
    # and every number and every bar opens a list of exactly that many
    numbers = [(url, int(n.replace(",", ""))) for url, n in NUMBER.findall(html)]
    bars = [(url, int(n)) for url, n in BAR.findall(html)]
    assert len(numbers) == 6 * sum(len(ch["steps"]) + 1 for ch in response.context["channels"])
    assert sum(n for _, n in numbers) > 0
    assert bars
    for url, number in numbers + bars:
        assert shown(admin_client, url) == number, unescape(url)


def test_missing_orders_can_be_downloaded_only_where_something_is_missing(admin_client, shop):
    # given: the shop has a paid order the download never saw; another channel misses nothing
    shop.order(("MUG-RED", 1), state="paid")
    orders_reconcile(channel=shop.channel)
    other = Channel.objects.create(
        kind="shopee", name="Quiet shop", api_base_url="http://127.0.0.1:9", credentials={},
        order_outlet=shop.outlet,
    )  # fmt: skip
    log_rows(other, [("Q-1", A.CREATE_ORDER, 200, 1)])

    html = admin_client.get(REPORT).content.decode()

    buttons = re.findall(r'<button type="submit" name="download_missing" value="(\d+)"', html)
    assert buttons == [str(shop.channel.pk)]
    assert html.count("Download all missing orders") == 1
    assert report_lines(html)[("Quiet shop", "All steps")][4] == 0


def test_a_link_keeps_its_count_after_more_rows_are_logged_until_counted_again(admin_client, shop):
    # given: the report as staff opened it
    log_rows(shop.channel, [(f"S-{i}", A.CREATE_ORDER, 200, i) for i in range(3)])
    html = admin_client.get(REPORT).content.decode()
    url, number = NUMBER.findall(html)[0]
    assert number == "3"

    # when: two more orders are logged
    log_rows(shop.channel, [("S-8", A.CREATE_ORDER, 200, 0), ("S-9", A.CREATE_ORDER, 409, 0)])

    # then: its link still lists the three it counted, and the page says as of when
    assert shown(admin_client, url) == 3
    again = admin_client.get(REPORT).content.decode()
    assert "Figures as of" in again
    assert report_lines(again)[("Shopee SG", "Create Order")][0] == 3
    # until staff count again
    fresh = admin_client.get(REPORT, {"refresh": "1"}).content.decode()
    assert report_lines(fresh)[("Shopee SG", "Create Order")] == [5, 4, 1, 0, 0, 0]
    url, number = NUMBER.findall(fresh)[0]
    assert shown(admin_client, url) == int(number) == 5


def test_the_report_is_bounded_in_queries_and_reads_its_snapshot_cheaply(
    admin_client, shop, django_assert_max_num_queries
):
    log_rows(shop.channel, [(f"S-{i}", A.values[i % 6], 200, i) for i in range(40)])
    with django_assert_max_num_queries(14):
        assert admin_client.get(REPORT).status_code == 200  # counted
    with django_assert_max_num_queries(6):
        assert admin_client.get(REPORT).status_code == 200  # read back


def test_a_slow_count_is_not_waited_for_the_worker_counts_again(
    admin_client, shop, django_capture_on_commit_callbacks
):
    from synclogs.models import ReportSnapshot

    # given: a report counted once, whose count took seconds (a week of a busy shop)
    log_rows(shop.channel, [("S-1", A.CREATE_ORDER, 200, 1)])
    admin_client.get(REPORT)
    ReportSnapshot.objects.update(
        compute_seconds=2.5, computed_at=timezone.now() - timedelta(minutes=5)
    )
    log_rows(shop.channel, [("S-2", A.CREATE_ORDER, 200, 0)])
    # when: staff open it after more orders were logged
    with django_capture_on_commit_callbacks(execute=True) as queued:
        stale = admin_client.get(REPORT).content.decode()
    # then: the page answers at once with the figures it has, and says a count is under way
    assert report_lines(stale)[("Shopee SG", "Create Order")][0] == 1
    assert "being counted in the background" in stale
    assert len(queued) == 1  # the worker's recount (run inline here)
    fresh = admin_client.get(REPORT).content.decode()
    assert report_lines(fresh)[("Shopee SG", "Create Order")][0] == 2
    assert "being counted in the background" not in fresh
