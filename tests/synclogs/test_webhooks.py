"""The webhook service: verify, keep once, queue the download; and 404s for missed orders."""

import pytest
from django.urls import reverse

from channels.emulators.base import signed_json_push
from channels.emulators.shopee import ShopeeEmulator
from channels.models import Channel
from channels.services import channel_save
from omni.admin_tools import ORANGE, state_badge
from synclogs.models import SalesOrder, SyncLog, WebhookEvent
from synclogs.services import order_manual_download
from synclogs.webhooks import webhook_receive
from tests.synclogs.conftest import make_shop, rows_of, stock_up

pytestmark = pytest.mark.django_db
A = SyncLog.Action
URL = "https://omni.example.com/api/webhooks/shopee/1"


def receive(shop, headers, body, capture):
    with capture(execute=True):
        return webhook_receive(channel=shop.channel, url=URL, headers=headers, body=body)


def test_a_signed_push_is_kept_once_and_downloads_its_order(
    shop, django_capture_on_commit_callbacks
):
    # given: a new order and Shopee's push about it
    number = shop.order(("MUG-RED", 1))
    headers, body = shop.emulator.signed_webhook(number, URL)

    # when: the push arrives, then Shopee delivers it again
    first = receive(shop, headers, body, django_capture_on_commit_callbacks)
    replay = receive(shop, headers, body, django_capture_on_commit_callbacks)

    # then: answered 2xx with an empty body both times; processed once
    assert (first.status, first.body, first.duplicate) == (200, b"", False)
    assert (replay.status, replay.body, replay.duplicate) == (200, b"", True)
    assert WebhookEvent.objects.count() == 1
    event = WebhookEvent.objects.get()
    assert (event.topic, event.order_number) == ("order_status", number)
    assert event.processed_at is not None
    assert rows_of(SyncLog.objects.order_by("pk")) == [(A.CREATE_ORDER, 200)]
    assert SyncLog.objects.get().origin == SyncLog.Origin.WEBHOOK


def test_a_wrongly_signed_push_is_refused_and_nothing_is_kept(
    shop, django_capture_on_commit_callbacks
):
    number = shop.order(("MUG-RED", 1))
    headers, body = shop.emulator.signed_webhook(number, URL)

    receipts = [
        receive(
            shop, {**headers, "Authorization": "0" * 64}, body, django_capture_on_commit_callbacks
        ),
        receive(shop, {}, body, django_capture_on_commit_callbacks),
        # a body changed on the way
        receive(
            shop,
            headers,
            body.replace(b'"code":3', b'"code":3 '),
            django_capture_on_commit_callbacks,
        ),
    ]

    # signed for another URL: Shopee signs the exact callback URL it was given
    with django_capture_on_commit_callbacks(execute=True):
        receipts.append(
            webhook_receive(channel=shop.channel, url=URL + "/", headers=headers, body=body)
        )

    assert [r.status for r in receipts] == [401, 401, 401, 401]
    assert b"signature" in receipts[0].body or b"Authorization" in receipts[0].body
    assert shop.emulator.partner_key.encode() not in receipts[0].body
    assert WebhookEvent.objects.count() == 0
    assert SyncLog.objects.count() == 0


def test_a_malformed_body_with_a_good_signature_is_400(shop, django_capture_on_commit_callbacks):
    from channels.adapters.shopee.orders import push_signature

    for body in (b"not json", b'{"data": {}}', b"[1, 2]"):
        signature = push_signature(partner_key=shop.emulator.partner_key, url=URL, body=body)
        receipt = receive(
            shop, {"Authorization": signature}, body, django_capture_on_commit_callbacks
        )
        assert receipt.status == 400, body
    assert WebhookEvent.objects.count() == 0


def test_a_payment_push_for_an_order_never_downloaded_is_404_until_downloaded_by_hand(
    shop, django_capture_on_commit_callbacks
):
    # given: an order the POS never saw, now paid; Shopee pushes the status change
    number = shop.order(("TEE-BLK-M", 1), state="paid")
    headers, body = shop.emulator.signed_webhook(number, URL)

    # when
    receive(shop, headers, body, django_capture_on_commit_callbacks)

    # then: the payment could not be added: the order is missing, nothing was created
    [row] = SyncLog.objects.all()
    assert (row.action, row.status) == (A.ADD_PAYMENT, 404)
    assert "Manual Download Order" in row.message
    assert SalesOrder.objects.count() == 0

    # when: staff download it by hand
    logs = order_manual_download(channel=shop.channel, order_numbers=[number], actor="user:ana")

    # then: it is created, invoiced and paid
    assert rows_of(logs) == [(A.CREATE_INVOICE, 200), (A.ADD_PAYMENT, 200)]
    assert {row.actor for row in logs} == {"user:ana"}
    assert SalesOrder.objects.get().payment.amount == 25


def test_an_authorization_push_puts_a_notice_on_the_channel_until_new_credentials(
    shop, admin_client, django_capture_on_commit_callbacks
):
    # given: Shopee pushing, twice, that the shop's authorization of omni expires in 7 days
    envelope = {"shop_id": shop.emulator.shop_id, "code": 12, "timestamp": 1765000000, "data": {}}
    headers, body = signed_json_push(
        envelope, secret=shop.emulator.partner_key, signed_prefix=URL.encode() + b"|"
    )

    # when
    first = receive(shop, headers, body, django_capture_on_commit_callbacks)
    again = receive(shop, headers, body, django_capture_on_commit_callbacks)

    # then: kept once, nothing downloaded, and the channel says what to do, in the admin too
    assert (first.status, again.status, again.duplicate) == (200, 200, True)
    assert WebhookEvent.objects.get().topic == "authorization"
    assert SyncLog.objects.count() == 0
    channel = Channel.objects.get(pk=shop.channel.pk)
    assert "Shopee says omni's access to the shop expires within 7 days" in (
        channel.authorization_notice
    )
    assert channel.authorization_notice_at is not None
    listed = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()
    assert str(state_badge("Connect again", ORANGE)) in listed
    assert "expires within 7 days" in listed
    page = admin_client.get(reverse("admin:channels_channel_change", args=[channel.pk]))
    assert "expires within 7 days" in page.content.decode()

    # when: staff enter the same credentials again, then the shop's new ones
    channel_save(channel=channel, data={"credentials": shop.emulator.credentials})
    channel.refresh_from_db()
    unchanged = channel.authorization_notice
    renewed = {**shop.emulator.credentials, "access_token": "new-token-after-reconnecting"}
    channel_save(channel=channel, data={"credentials": renewed})

    # then: the notice stays until the credentials change
    assert unchanged.startswith("Shopee says")
    channel.refresh_from_db()
    assert (channel.authorization_notice, channel.authorization_notice_at) == ("", None)
    listed = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()
    assert "expires within 7 days" not in listed
    assert str(state_badge("Connect again", ORANGE)) not in listed


def test_a_push_naming_another_shop_of_the_app_is_kept_for_that_shops_channel(
    shop, django_capture_on_commit_callbacks
):
    # given: a second Shopee shop served by the same app (the same partner key); Shopee sends
    # every shop's pushes to the app's one push URL, registered as the first channel's
    with ShopeeEmulator(items=0, seed=11, shop_id=7_654_321) as second:
        assert second.partner_key == shop.emulator.partner_key
        other = make_shop(second, name="Shopee MY", outlet=shop.outlet)
        stock_up(other)
        number = other.order(("MUG-RED", 1))
        headers, body = second.signed_webhook(number, URL)
        stranger = {"shop_id": 999, "code": 3, "timestamp": 1765000000, "data": {"ordersn": "X1"}}
        stranger_push = signed_json_push(
            stranger, secret=second.partner_key, signed_prefix=URL.encode() + b"|"
        )

        # when: both arrive at the first channel's URL
        routed = receive(shop, headers, body, django_capture_on_commit_callbacks)
        unheld = receive(shop, *stranger_push, django_capture_on_commit_callbacks)

        # then: the second shop's order is downloaded into its own channel; the push for a
        # shop omni does not hold is answered 200 and not kept
        assert (routed.status, unheld.status) == (200, 200)
        event = WebhookEvent.objects.get()
        assert (event.channel_id, event.order_number) == (other.channel.pk, number)
        assert rows_of(SyncLog.objects.filter(channel=other.channel)) == [(A.CREATE_ORDER, 200)]
        assert not SyncLog.objects.filter(channel=shop.channel).exists()
        assert "no shopee channel holds" in unheld.message


def test_the_channel_list_filters_the_channels_to_connect_again(shop, admin_client):
    # given: two channels, one with Shopee's notice that its authorization expires
    with ShopeeEmulator(items=0, seed=11, shop_id=7_654_321) as second:
        other = make_shop(second, name="Shopee MY", outlet=shop.outlet)
        Channel.objects.filter(pk=other.channel.pk).update(
            authorization_notice="Shopee says omni's access to the shop expires within 7 days"
        )
        url = reverse("admin:channels_channel_changelist")

        # when
        listed = admin_client.get(url, {"attention": "connect"}).content.decode()

        # then
        assert "Shopee MY" in listed
        assert "Shopee SG" not in listed
        assert "1 channel" in listed
