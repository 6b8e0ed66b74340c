"""The Sync Logs admin: tabs, badges, the Order Log, the 7-day report and its links."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from synclogs.admin import changelist_url
from synclogs.models import ACTION_MODELS, SalesOrder, SyncLog
from synclogs.selectors import sync_report
from synclogs.services import orders_reconcile

pytestmark = pytest.mark.django_db
A = SyncLog.Action


def many_rows(shop, n: int = 60) -> None:
    """Log rows of every step and status over the last ten days."""
    now = timezone.now()
    actions, statuses = list(A.values), [200, 409, 400, 404]
    SyncLog.objects.bulk_create(
        SyncLog(
            channel=shop.channel,
            order_number=f"ORD{i:04d}",
            action=actions[i % len(actions)],
            status=statuses[i % 4],
            origin=SyncLog.Origin.SCHEDULE,
            message=f"row {i}",
            request={"order_number": f"ORD{i:04d}"},
            created_at=now - timedelta(hours=4 * i),
        )
        for i in range(n)
    )


def test_every_tab_lists_its_rows_with_a_bounded_number_of_queries(
    admin_client, shop, django_assert_max_num_queries
):
    many_rows(shop)
    for action, model in [*ACTION_MODELS.items(), (None, SyncLog)]:
        url = reverse(f"admin:synclogs_{model._meta.model_name}_changelist")
        with django_assert_max_num_queries(12):
            response = admin_client.get(url)
        assert response.status_code == 200
        shown = response.context["cl"].result_list
        assert shown, action
        assert all(row.action == action for row in shown) or action is None


def test_a_row_shows_a_coloured_badge_a_link_to_its_order_log_and_its_payloads(admin_client, shop):
    number = shop.order(("MUG-RED", 1), state="paid")
    shop.download()
    row = SyncLog.objects.filter(action=A.ADD_PAYMENT).get()

    listing = admin_client.get(reverse("admin:synclogs_synclog_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:synclogs_synclog_change", args=[row.pk]))

    assert "background:#2e7d32" in listing  # 200 is green
    log_url = reverse("admin:synclogs_order_log", args=[shop.channel.pk, number])
    assert log_url in listing
    page = unescape(detail.content.decode())
    assert row.message in page
    assert f'"order_sn": "{number}"' in page  # the request, pretty-printed
    assert shop.emulator.partner_key not in page
    assert shop.emulator.credentials["access_token"] not in page


def test_the_order_log_lists_every_row_of_one_order_oldest_first(admin_client, shop):
    number = shop.order(("MUG-RED", 1))
    shop.download()
    shop.emulator.move_order(number, "paid")
    shop.download()

    response = admin_client.get(reverse("admin:synclogs_order_log", args=[shop.channel.pk, number]))

    assert response.status_code == 200
    steps = [item["log"].action for item in response.context["rows"]]
    assert steps == [A.CREATE_ORDER, A.CONVERT_ORDER_TO_INVOICE, A.ADD_PAYMENT]
    assert "Invoice INV-" in response.content.decode()


def test_every_number_of_the_report_opens_exactly_the_rows_behind_it(admin_client, shop):
    many_rows(shop)
    response = admin_client.get(reverse("admin:synclogs_report"))
    assert response.status_code == 200
    lines = [line for ch in response.context["channels"] for line in [ch["total"], *ch["steps"]]]
    cells = [cell for line in lines for cell in [*line["cells"], line["attention"]]]
    assert len(cells) == (1 + 6) * 6  # the channel's line and a line per step
    assert sum(value for value, _ in cells) > 0
    for value, url in cells:
        assert unescape(url) in unescape(response.content.decode())
        shown = admin_client.get(url)
        assert shown.status_code == 200, url
        assert shown.context["cl"].result_count == value, url
    # and the report counts only the last seven days (rows go back ten)
    total = sum(r.transactions for r in sync_report())
    since = sync_report()[0].since
    assert total == SyncLog.objects.filter(created_at__gte=since).count() < SyncLog.objects.count()


def test_manual_download_order_from_the_report_page(admin_client, shop):
    number = shop.order(("TEE-BLK-L", 2), state="paid")

    response = admin_client.post(
        reverse("admin:synclogs_report"),
        {"channel": shop.channel.pk, "order_numbers": f"{number}\nNOSUCHORDER1"},
        follow=True,
    )

    assert response.status_code == 200
    text = " ".join(str(m) for m in response.context["messages"])
    assert "downloaded 1 order(s)" in text
    assert "NOSUCHORDER1" in text
    assert SalesOrder.objects.filter(order_number=number).exists()


def test_missing_orders_are_logged_404_and_downloaded_by_the_admin_action(admin_client, shop):
    # given: two paid orders the automatic download never saw, and one cancelled
    missing = [shop.order(("MUG-RED", 1), state="paid") for _ in range(2)]
    shop.order(("MUG-RED", 1), state="cancelled")

    # when: the missing-order check runs (twice: the second says nothing new)
    rows = orders_reconcile(channel=shop.channel)
    assert orders_reconcile(channel=shop.channel) == []

    # then: one 404 per missing order, on Create Order
    assert sorted(r.order_number for r in rows) == sorted(missing)
    assert {(r.action, r.status) for r in rows} == {(A.CREATE_ORDER, 404)}
    assert SalesOrder.objects.count() == 0

    # when: staff download all missing orders of the channel from the report page
    response = admin_client.post(
        reverse("admin:synclogs_report"), {"download_missing": shop.channel.pk}, follow=True
    )

    # then: both are in the POS, invoiced and paid
    assert response.status_code == 200
    assert sorted(SalesOrder.objects.values_list("order_number", flat=True)) == sorted(missing)


def test_the_changelist_action_downloads_the_selected_orders(admin_client, shop):
    number = shop.order(("MUG-RED", 1), state="paid")
    orders_reconcile(channel=shop.channel)
    row = SyncLog.objects.get()

    response = admin_client.post(
        changelist_url(None),
        {"action": "download_orders", "_selected_action": [row.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert SalesOrder.objects.filter(order_number=number).exists()
    assert re.search(r"downloaded 1 order", " ".join(str(m) for m in response.context["messages"]))


def test_the_document_pages_are_bounded_too(admin_client, shop, django_assert_max_num_queries):
    numbers = [shop.order(("MUG-RED", 1), state=s) for s in ("unpaid", "paid", "shipped") * 4]
    shop.download()
    order = SalesOrder.objects.get(order_number=numbers[2])
    pages = [
        reverse("admin:synclogs_salesorder_changelist"),
        reverse("admin:synclogs_webhookevent_changelist"),
        reverse("admin:synclogs_salesorder_change", args=[order.pk]),
        reverse("admin:synclogs_order_log", args=[shop.channel.pk, numbers[2]]),
        reverse("admin:synclogs_report"),
    ]
    for url in pages:
        with django_assert_max_num_queries(14):
            response = admin_client.get(url)
        assert response.status_code == 200, url
