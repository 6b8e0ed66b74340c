"""WooCommerce orders and webhooks: statuses to OrderState, windows, Manual Download Order and
signature checks, against the emulator over real HTTP."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from channels.adapters.base import OrderState, RemoteOrder, WebhookRejected
from channels.adapters.woocommerce.adapter import (
    STATUS_TABLE,
    WooCommerceAdapter,
    order_from_payload,
    webhook_signature,
)
from channels.emulators.woocommerce import ORDER_STATUSES, WooCommerceEmulator
from tests.channels.conftest import FAST_RETRY

HOOK_URL = "https://omni.example.test/hooks/woocommerce/3"


@pytest.fixture
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator(items=12, seed=5) as emulator:
        yield emulator


def woo_adapter(emulator: WooCommerceEmulator, **overrides: Any) -> WooCommerceAdapter:
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return WooCommerceAdapter(**options)


def some_lines(emulator: WooCommerceEmulator) -> list[tuple[str, str, int]]:
    """One variation and one simple product, as order lines."""
    quantities = emulator.listing_quantities()
    variation = next(ref for ref in quantities if ref[1])
    simple = next(ref for ref in quantities if not ref[1])
    return [(*variation, 2), (*simple, 1)]


def all_orders(adapter: WooCommerceAdapter, start: datetime, end: datetime) -> list[RemoteOrder]:
    return [o for page in adapter.iter_orders(updated_from=start, updated_to=end) for o in page]


def test_every_woocommerce_status_has_a_state():
    core = {
        "pending",
        "processing",
        "on-hold",
        "completed",
        "cancelled",
        "refunded",
        "failed",
        "checkout-draft",
        "trash",
    }

    assert core <= set(STATUS_TABLE)
    assert set(STATUS_TABLE) >= ORDER_STATUSES  # every status the emulator can hold
    assert set(STATUS_TABLE.values()) == set(OrderState)


@pytest.mark.parametrize("state", list(OrderState))
def test_an_order_comes_back_in_the_state_it_was_created_in(woo, state):
    number = woo.create_order(some_lines(woo), state=state)

    [order] = woo_adapter(woo).get_orders([number])

    assert (order.order_number, order.state) == (number, state)


def test_an_order_moves_through_every_state(woo):
    # given
    adapter = woo_adapter(woo)
    start = datetime.now(UTC) - timedelta(seconds=1)
    number = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    seen = []
    # when
    for state in (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED, OrderState.RETURNED):
        woo.move_order(number, state)
        end = datetime.now(UTC) + timedelta(minutes=1)
        [order] = all_orders(adapter, start, end)
        [fetched] = adapter.get_orders([number])
        seen.append((order.status, order.state, fetched.state))
    # then
    assert seen == [
        ("processing", OrderState.PAID, OrderState.PAID),
        ("shipped", OrderState.SHIPPED, OrderState.SHIPPED),
        ("completed", OrderState.DELIVERED, OrderState.DELIVERED),
        ("refunded", OrderState.RETURNED, OrderState.RETURNED),
    ]


def test_an_order_carries_its_lines_money_and_times(woo):
    lines = some_lines(woo)
    number = woo.create_order(lines, state=OrderState.PAID)
    source = woo.order(number)

    [order] = woo_adapter(woo).get_orders([number])

    assert order.order_id == str(source["id"])
    assert (order.currency, order.total) == ("EUR", Decimal(source["total"]))
    assert order.payment_method == "Direct bank transfer"
    assert order.courier == "Flat rate"
    assert order.paid_at is not None
    assert order.paid_at.tzinfo is UTC
    # The site clock runs 7 hours ahead: the times are the GMT ones.
    assert order.created_at == datetime.fromisoformat(source["date_created_gmt"] + "+00:00")
    assert [(line.item_id, line.variant_id, line.quantity) for line in order.lines] == lines
    prices = woo.listing_prices()
    assert [line.unit_price for line in order.lines] == [prices[(i, v)] for i, v, _ in lines]
    assert order.lines[0].sku == source["line_items"][0]["sku"]


def test_a_window_returns_only_orders_changed_inside_it(woo):
    # given: an order changed before the window, one inside, one after
    early = woo.create_order(some_lines(woo), state=OrderState.PAID)
    woo.state.orders[int(early)].date_modified -= 3600
    start = datetime.now(UTC) - timedelta(seconds=5)
    inside = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    end = datetime.now(UTC) + timedelta(seconds=5)
    late = woo.create_order(some_lines(woo), state=OrderState.PAID)
    woo.state.orders[int(late)].date_modified += 3600
    # when
    numbers = [o.order_number for o in all_orders(woo_adapter(woo), start, end)]
    # then
    assert numbers == [inside]


def test_orders_come_a_page_of_100_at_a_time(woo):
    start = datetime.now(UTC) - timedelta(seconds=5)
    numbers = [woo.create_order(some_lines(woo), state=OrderState.PAID) for _ in range(130)]
    adapter = woo_adapter(woo)

    pages = list(adapter.iter_orders(updated_from=start, updated_to=start + timedelta(minutes=5)))

    assert [len(page) for page in pages] == [100, 30]
    assert sorted(o.order_number for page in pages for o in page) == sorted(numbers)
    assert adapter.stats.calls == 2


def test_drafts_and_trashed_orders_are_never_downloaded(woo):
    start = datetime.now(UTC) - timedelta(seconds=5)
    kept = woo.create_order(some_lines(woo), state=OrderState.PAID)
    draft = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.set_order_status(draft, "checkout-draft")
    trashed = woo.create_order(some_lines(woo), state=OrderState.DELIVERED)
    woo.set_order_status(trashed, "trash")
    adapter = woo_adapter(woo)

    listed = all_orders(adapter, start, datetime.now(UTC) + timedelta(seconds=5))
    fetched = adapter.get_orders([draft, trashed, kept])

    assert [o.order_number for o in listed] == [kept]
    assert [o.order_number for o in fetched] == [kept]


def test_on_hold_and_failed_orders_are_unpaid(woo):
    on_hold = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.set_order_status(on_hold, "on-hold")
    failed = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.set_order_status(failed, "failed")

    orders = woo_adapter(woo).get_orders([on_hold, failed])

    assert [(o.status, o.state) for o in orders] == [
        ("on-hold", OrderState.UNPAID),
        ("failed", OrderState.UNPAID),
    ]


def test_manual_download_takes_numbers_as_staff_type_them(woo):
    number = woo.create_order(some_lines(woo), state=OrderState.PAID)
    adapter = woo_adapter(woo)

    orders = adapter.get_orders([f" #{number} ", number, "999999", "no-such-order"])

    assert [o.order_number for o in orders] == [number]


def test_an_order_number_given_by_a_plugin_is_found_by_search(woo):
    # given: a sequential-numbers plugin gave order 1201 the number "WC-1001", and order 1202
    # the number "1201"
    first = woo.create_order(some_lines(woo), state=OrderState.PAID)
    second = woo.create_order(some_lines(woo), state=OrderState.UNPAID)
    woo.state.orders[int(first)].number = "WC-1001"
    woo.state.orders[int(second)].number = first
    adapter = woo_adapter(woo)
    # when
    orders = adapter.get_orders(["WC-1001", first])
    # then
    assert [(o.order_number, o.order_id) for o in orders] == [
        ("WC-1001", first),
        (first, second),
    ]


def test_an_unknown_plugin_status_is_kept_and_treated_as_unpaid():
    payload = {"id": 9, "number": "9", "status": "awaiting-pickup", "total": "10.00"}

    order = order_from_payload(payload)

    assert (order.status, order.state, order.total) == (
        "awaiting-pickup",
        OrderState.UNPAID,
        Decimal("10.00"),
    )


def test_line_prices_are_what_the_buyer_paid_per_unit_tax_included():
    payload = {
        "id": 1207,
        "number": "1207",
        "status": "processing",
        "currency": "EUR",
        "total": "41.00",
        "date_created_gmt": "2025-01-03T09:15:00",
        "date_modified_gmt": "2025-01-03T09:20:00",
        "line_items": [
            {
                "id": 55,
                "name": "Wool Beanie - Grey",
                "product_id": 801,
                "variation_id": 802,
                "quantity": 3,
                "sku": "BEANIE-GRY",
                "total": "30.00",
                "total_tax": "6.30",
            }
        ],
    }

    [line] = order_from_payload(payload).lines

    assert (line.item_id, line.variant_id, line.unit_price) == ("801", "802", Decimal("12.10"))


# -- webhooks -----------------------------------------------------------------------------------


def test_a_signed_order_webhook_is_accepted(woo):
    number = woo.create_order(some_lines(woo), state=OrderState.PAID)
    headers, body = woo.signed_webhook(number, HOOK_URL)

    event = woo_adapter(woo).verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert (event.topic, event.order_number) == ("order_status", number)
    assert event.delivery_id.startswith(headers["X-WC-Webhook-Delivery-ID"])
    assert event.payload["status"] == "processing"
    assert b"\\/" in body  # PHP's JSON, checked byte for byte, never re-serialised


def test_webhook_signature_matches_a_vector_computed_by_hand():
    # echo -n '{"id":1207,"status":"processing","number":"1207"}' \
    #   | openssl dgst -sha256 -hmac 'whsec-7f3a9c' -binary | base64
    body = b'{"id":1207,"status":"processing","number":"1207"}'

    assert webhook_signature("whsec-7f3a9c", body) == "6jvb1SLsS0Z1FIkX1dkvtnNZqc76nHx3Fkd/RP5b6v4="


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("no signature", 401),
        ("wrong signature", 401),
        ("tampered body", 401),
        ("not json", 400),
        ("no delivery id", 400),
    ],
)
def test_a_bad_webhook_is_refused(woo, change, status):
    number = woo.create_order(some_lines(woo), state=OrderState.PAID)
    headers, body = woo.signed_webhook(number, HOOK_URL)
    if change == "no signature":
        del headers["X-WC-Webhook-Signature"]
    elif change == "wrong signature":
        headers["X-WC-Webhook-Signature"] = webhook_signature("not-the-secret", body)
    elif change == "tampered body":
        body = body.replace(b'"processing"', b'"completed"')
    elif change == "not json":
        body = b"<html>"
        headers["X-WC-Webhook-Signature"] = webhook_signature(woo.webhook_secret, body)
    elif change == "no delivery id":
        del headers["X-WC-Webhook-Delivery-ID"]

    with pytest.raises(WebhookRejected) as rejected:
        woo_adapter(woo).verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert rejected.value.status == status
    assert woo.webhook_secret not in str(rejected.value)


def test_a_webhook_is_refused_while_the_channel_has_no_webhook_secret(woo):
    headers, body = woo.signed_webhook(
        woo.create_order(some_lines(woo), state=OrderState.PAID), HOOK_URL
    )
    adapter = woo_adapter(woo, credentials={**woo.credentials, "webhook_secret": ""})

    with pytest.raises(WebhookRejected, match="no WooCommerce webhook secret") as rejected:
        adapter.verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert rejected.value.status == 401


def test_two_events_in_one_second_stay_two_and_a_redelivery_stays_one(woo):
    # WooCommerce's delivery id is a hash of the webhook id and the current second only.
    woo.clock = lambda: 1_767_225_600.0
    adapter = woo_adapter(woo)
    first, second = (woo.create_order(some_lines(woo), state=OrderState.PAID) for _ in range(2))
    (h1, b1), (h2, b2) = woo.signed_webhook(first, HOOK_URL), woo.signed_webhook(second, HOOK_URL)

    one = adapter.verify_webhook(url=HOOK_URL, headers=h1, body=b1)
    two = adapter.verify_webhook(url=HOOK_URL, headers=h2, body=b2)
    one_again = adapter.verify_webhook(url=HOOK_URL, headers=h1, body=b1)

    assert h1["X-WC-Webhook-Delivery-ID"] == h2["X-WC-Webhook-Delivery-ID"]
    assert one.delivery_id != two.delivery_id
    assert one_again.delivery_id == one.delivery_id


def test_the_ping_sent_when_a_webhook_is_created_is_answered(woo):
    event = woo_adapter(woo).verify_webhook(
        url=HOOK_URL,
        headers={"User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"},
        body=b"webhook_id=7",
    )

    assert (event.topic, event.order_number, event.delivery_id) == ("other", "", "ping-7")


def test_a_product_webhook_is_not_an_order_event(woo):
    body = json.dumps({"id": 801, "name": "Tee"}).encode()
    headers = {
        "X-WC-Webhook-Topic": "product.updated",
        "X-WC-Webhook-Signature": webhook_signature(woo.webhook_secret, body),
        "X-WC-Webhook-Delivery-ID": "abc123",
    }

    event = woo_adapter(woo).verify_webhook(url=HOOK_URL, headers=headers, body=body)

    assert (event.topic, event.order_number) == ("product", "")
