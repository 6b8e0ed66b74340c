"""The Sync Logs screens surface problems: rows that need attention, steps and triggers in
words, search by any part of an order number, and a date range that includes both its days."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from synclogs.models import ACTION_MODELS, SalesOrder, SyncLog
from tests.channels.builders import shop_item

pytestmark = pytest.mark.django_db
A = SyncLog.Action
ALL = reverse("admin:synclogs_synclog_changelist")
ORDERS = reverse("admin:synclogs_salesorder_changelist")


def cells(html: str, field: str) -> list[str]:
    """The visible text of every `field` cell of a changelist's results, top to bottom."""
    found = re.findall(rf'<t[dh] class="field-{field}[^"]*">(.*?)</t[dh]>', html, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in found]


def log(channel, number: str, *, when: datetime | None = None, **fields) -> SyncLog:
    values = {
        "action": A.CREATE_ORDER,
        "status": 200,
        "origin": SyncLog.Origin.SCHEDULE,
        "message": f"Row of {number}.",
    }
    return SyncLog.objects.create(
        channel=channel,
        order_number=number,
        created_at=when or timezone.now(),
        **{**values, **fields},
    )


# --- needs attention ---------------------------------------------------------------------------


def test_an_order_with_skus_the_pos_does_not_know_is_marked_as_needing_attention(
    admin_client, shop
):
    # given: one order with two lines the POS cannot match, one with known SKUs only
    unknown = shop.emulator.put_item(shop_item("Mystery Box", "NOT-IN-POS", "ALSO-UNKNOWN"))
    models = shop.emulator.item(unknown)["models"]["model"]
    odd = shop.emulator.create_order(
        [(str(unknown), str(m["model_id"]), 1) for m in models] + [(*shop.refs["MUG-RED"], 1)]
    )
    plain = shop.order(("MUG-RED", 1))

    # when: the scheduled download takes both
    shop.download()
    page = admin_client.get(ALL).content.decode()

    # then: the odd order's Create Order row is orange and says why; the plain one is green
    numbers = [cell.split()[0] for cell in cells(page, "order_link")]
    status = dict(zip(numbers, cells(page, "status_badge"), strict=True))
    message = dict(zip(numbers, cells(page, "short_message"), strict=True))
    assert status[odd] == "200 OK · needs attention"
    assert status[plain] == "200 OK"
    said, skus = message[odd].split(": ")
    assert said == "2 lines with SKUs the POS does not know"
    assert sorted(skus.split(", ")) == ["ALSO-UNKNOWN", "NOT-IN-POS"]
    reason = SyncLog.objects.get(order_number=odd).attention
    assert reason == message[odd]
    assert f'title="{reason}"' in unescape(page)  # and in the badge's tooltip
    assert "background:#ef6c00" in page
    assert "Created sales order" in message[plain]


def test_an_order_arriving_paid_with_an_unknown_sku_needs_attention_on_create_invoice(
    admin_client, shop
):
    unknown = shop.emulator.put_item(shop_item("Mystery Box", "NOT-IN-POS"))
    number = shop.emulator.create_order([(str(unknown), "", 2)], state="paid")

    shop.download()

    invoice_tab = reverse("admin:synclogs_createinvoicelog_changelist")
    page = admin_client.get(invoice_tab).content.decode()
    assert cells(page, "status_badge") == ["200 OK · needs attention"]
    assert cells(page, "short_message") == ["1 line with a SKU the POS does not know: NOT-IN-POS"]
    # the payment that followed is fine
    assert SyncLog.objects.get(order_number=number, action=A.ADD_PAYMENT).attention == ""


def test_the_needs_attention_filter_lists_exactly_those_rows_on_every_tab(admin_client, shop):
    # given: two rows needing attention among plain rows of several steps
    flagged = [
        log(shop.channel, "ODD-1", attention="1 line with a SKU the POS does not know: X"),
        log(
            shop.channel,
            "ODD-2",
            action=A.CREATE_INVOICE,
            attention="Stock was short for 1 SKU: MUG-RED",
        ),
    ]
    for i, action in enumerate(A.values):
        log(shop.channel, f"PLAIN-{i}", action=action)

    # when / then: All, filtered, shows both; each tab shows its own
    page = admin_client.get(ALL, {"attention": "yes"})
    assert page.status_code == 200
    assert sorted(cells(page.content.decode(), "order_link")) == [
        "ODD-1 Shopee SG",
        "ODD-2 Shopee SG",
    ]
    assert "By needs attention" in page.content.decode()
    for row in flagged:
        tab = reverse(f"admin:synclogs_{ACTION_MODELS[row.action]._meta.model_name}_changelist")
        shown = cells(admin_client.get(tab, {"attention": "yes"}).content.decode(), "order_link")
        assert shown == [f"{row.order_number} Shopee SG"]
    # and "Nothing to look at" leaves them out
    rest = cells(admin_client.get(ALL, {"attention": "no"}).content.decode(), "order_link")
    assert len(rest) == len(A.values)
    assert not any(n.startswith("ODD") for n in rest)


# --- words, not stored values ------------------------------------------------------------------


def test_steps_and_triggers_read_as_words_on_every_sync_logs_screen(admin_client, shop):
    number = shop.order(("MUG-RED", 1), state="paid")
    shop.download()
    row = SyncLog.objects.filter(order_number=number).first()
    raw = set(A.values) | set(SyncLog.Origin.values)
    labels = {str(label) for label in A.labels}

    listing = admin_client.get(ALL).content.decode()
    assert set(cells(listing, "action")) <= labels
    assert set(cells(listing, "action")) == {"Create Invoice", "Add Payment"}

    report = admin_client.get(reverse("admin:synclogs_report")).content.decode()
    order_log = admin_client.get(
        reverse("admin:synclogs_order_log", args=[shop.channel.pk, number])
    ).content.decode()
    detail = admin_client.get(reverse("admin:synclogs_synclog_change", args=[row.pk]))
    for page in (listing, report, order_log, detail.content.decode()):
        text = visible_text(page)
        assert not raw & set(re.findall(r"[a-z_]+", text)), raw & set(re.findall(r"[a-z_]+", text))
    assert "Create Invoice" in visible_text(report)
    assert "Scheduled download" in visible_text(order_log)
    assert "Scheduled download" in visible_text(detail.content.decode())
    assert "By step" in listing  # the filter is named in words too


def visible_text(html: str) -> str:
    """What a reader sees: the page without its tags, scripts and styles (attributes, such
    as the filter links' query strings, are not shown)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["SPX-2412", "x-2412", "41201-7", "01-7ab", "7AB"])
def test_the_order_number_search_finds_an_order_by_any_part_of_its_number(admin_client, shop, term):
    log(shop.channel, "SPX-241201-7AB")
    log(shop.channel, "TKP-990000-ZZZ")

    page = admin_client.get(ALL, {"q": term}).content.decode()

    assert cells(page, "order_link") == ["SPX-241201-7AB Shopee SG"]


def test_the_sales_orders_are_found_by_part_of_their_number_or_marketplace_id(admin_client, shop):
    now = timezone.now()
    for number, remote_id in (("241201ABCD1234", "880011223344"), ("241202WXYZ5678", "99")):
        SalesOrder.objects.create(
            channel=shop.channel,
            order_number=number,
            remote_id=remote_id,
            outlet=shop.outlet,
            remote_status="UNPAID",
            state="unpaid",
            ordered_at=now,
            remote_updated_at=now,
        )

    for term in ("241201", "abcd12", "1234", "11223"):
        page = admin_client.get(ORDERS, {"q": term}).content.decode()
        assert cells(page, "order_number") == ["241201ABCD1234"], term


# --- the date range ----------------------------------------------------------------------------


def test_the_date_range_includes_its_first_and_last_day_whole(admin_client, shop):
    # given: rows just inside and just outside 3–5 December (the site's time zone is UTC)
    zone = timezone.get_current_timezone()
    assert zone.utcoffset(datetime(2026, 12, 3)) == timedelta(0)
    for number, when in (
        ("BEFORE", datetime(2026, 12, 2, 23, 59, 59, tzinfo=UTC)),
        ("FIRST", datetime(2026, 12, 3, 0, 0, 0, tzinfo=UTC)),
        ("LAST", datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)),
        ("AFTER", datetime(2026, 12, 6, 0, 0, 0, tzinfo=UTC)),
    ):
        log(shop.channel, number, when=when)

    page = admin_client.get(
        ALL, {"created_at__from": "2026-12-03", "created_at__to": "2026-12-05"}
    ).content.decode()

    assert [cell.split()[0] for cell in cells(page, "order_link")] == ["LAST", "FIRST"]
    assert 'value="2026-12-03"' in page  # the form shows the range it applied
    # one day alone is that whole day
    day = admin_client.get(ALL, {"created_at__from": "2026-12-05", "created_at__to": "2026-12-05"})
    assert [c.split()[0] for c in cells(day.content.decode(), "order_link")] == ["LAST"]


@pytest.mark.parametrize("url", [ALL, ORDERS])
def test_a_date_that_is_not_one_gets_the_admins_usual_answer(admin_client, shop, url):
    field = "created_at" if url == ALL else "ordered_at"

    response = admin_client.get(url, {f"{field}__from": "2026-02-31"})

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
    assert admin_client.get(response["Location"]).status_code == 200


def test_the_sales_orders_have_a_date_range_on_their_order_date(admin_client, shop):
    for number, day in (("IN-RANGE", 4), ("TOO-LATE", 9)):
        when = datetime(2026, 12, day, 12, tzinfo=UTC)
        SalesOrder.objects.create(
            channel=shop.channel,
            order_number=number,
            outlet=shop.outlet,
            remote_status="UNPAID",
            state="unpaid",
            ordered_at=when,
            remote_updated_at=when,
        )

    page = admin_client.get(
        ORDERS, {"ordered_at__from": "2026-12-01", "ordered_at__to": "2026-12-07"}
    ).content.decode()

    assert cells(page, "order_number") == ["IN-RANGE"]
