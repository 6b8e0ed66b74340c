"""Bad input from outside gets a clear 4xx, never a 5xx, on every marketplace.

Over HTTP, as a marketplace or an integration would call omni, against each emulator:
- a push whose signature header is malformed (non-ASCII, empty, very long, not base64) is 401
  and keeps nothing;
- a push for a paused channel is kept and answered 2xx but held, and processed once staff
  resume the channel (API, admin or any save);
- Manual Download Order answers 404 naming a number the marketplace does not know, 422 naming
  one it can never have (refused before the marketplace is asked), and 502 only when the
  marketplace cannot answer.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from channels.adapters.base import OrderState
from channels.emulators import emulator_class
from channels.marketplaces import KINDS
from channels.models import Channel
from omni.auth import token_create
from synclogs.models import SyncLog, WebhookEvent
from tests.api.conftest import ApiClient
from tests.channels.builders import shop_item
from tests.channels.test_contract import signature_header
from tests.factories import OutletFactory

pytestmark = pytest.mark.django_db

MALFORMED_SIGNATURES = [
    "ü" * 64,  # non-ASCII, as a header arrives decoded as Latin-1
    "ç­¾å\x90\x8d",  # UTF-8 bytes of 签名 read as Latin-1
    "签名" * 32,  # non-Latin-1 (test clients and proxies can hand it on)
    "",
    "a" * 20_000,
    "!!not*base64==",
    "Zm9v",  # valid base64 of the wrong digest
]
# A number each marketplace could have but does not, and numbers it can never have.
UNKNOWN_NUMBER = {
    "shopee": "241201ZZZZ9999",
    "tokopedia": "576461413038999999",
    "tiktok_shop": "576461413038999999",
    "lazada": "820000009999",
    "shopify": "#9999",
    "woocommerce": "9999",
}
DIGITS_ONLY = ["5764-6141", "#576461", "12a", "١٢٣", "1,2"]
MALFORMED_NUMBERS = {
    "shopee": ["241201-ABCD", "241201ÄBCD", "2412 01AB", "AB,CD", "#241201ABCD"],
    "tokopedia": DIGITS_ONLY,
    "tiktok_shop": DIGITS_ONLY,
    "lazada": DIGITS_ONLY,
    "shopify": ["#10 42", "10'42", 'say"1042"', "10\\42"],
    "woocommerce": ["12 01", "12\t01", "12\u200301"],
}


@dataclass
class Shop:
    kind: str
    emulator: Any
    channel: Channel
    line: tuple[str, str]

    @property
    def hook_url(self) -> str:
        return f"/api/webhooks/{self.channel.pk}"

    def order(self, state: OrderState = OrderState.UNPAID) -> str:
        return self.emulator.create_order([(*self.line, 1)], state=state)

    def push(self, number: str) -> tuple[dict[str, str], bytes]:
        return self.emulator.signed_webhook(number, "http://testserver" + self.hook_url)

    def calls(self) -> int:
        return sum(self.emulator.log.counts.values())


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def shop(kind) -> Iterator[Shop]:
    with emulator_class(kind)(items=0, seed=41) as emulator:
        item_id = emulator.put_item(shop_item("Tee", "TEE-1", quantity=10))
        line = next(key for key in emulator.listing_quantities() if key[0] == str(item_id))
        channel = Channel.objects.create(
            kind=kind, name=f"{kind} shop", api_base_url=emulator.base_url,
            credentials=emulator.credentials, order_outlet=OutletFactory(code="jkt"),
        )  # fmt: skip
        yield Shop(kind, emulator, channel, line)


@pytest.fixture
def api() -> ApiClient:
    return ApiClient(token_create(name="ERP", scopes="read,write")[1])


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """POST a push to omni as the marketplace does (no token), running what it queues."""
    marketplace = Client(raise_request_exception=False)

    def post(shop: Shop, headers: dict[str, str], body: bytes):
        with django_capture_on_commit_callbacks(execute=True):
            return marketplace.post(
                shop.hook_url, body, content_type="application/json", headers=headers
            )

    return post


# --- webhooks: a malformed signature is 401 -------------------------------------------------------


@pytest.mark.parametrize("signature", MALFORMED_SIGNATURES, ids=range(len(MALFORMED_SIGNATURES)))
def test_a_malformed_signature_header_is_401_and_keeps_nothing(shop, deliver, signature):
    headers, body = shop.push(shop.order())
    # when
    response = deliver(shop, {**headers, signature_header(shop.kind): signature}, body)
    # then
    assert response.status_code == 401, response.content[:200]
    assert response.content  # a plain-text reason for the marketplace's log
    assert not WebhookEvent.objects.exists()
    assert not SyncLog.objects.exists()


def test_a_push_without_its_signature_header_is_401(shop, deliver):
    headers, body = shop.push(shop.order())
    name = signature_header(shop.kind)
    unsigned = {key: value for key, value in headers.items() if key != name}
    assert deliver(shop, unsigned, body).status_code == 401
    assert not WebhookEvent.objects.exists()


# --- webhooks: a paused channel holds its pushes ---------------------------------------------


def pause(channel: Channel) -> None:
    Channel.objects.filter(pk=channel.pk).update(is_active=False)
    channel.refresh_from_db()


def created(number: str) -> list[tuple[str, int]]:
    return list(SyncLog.objects.filter(order_number=number).values_list("action", "status"))


def test_a_push_for_a_paused_channel_is_kept_answered_and_held(shop, deliver):
    pause(shop.channel)
    number = shop.order()
    headers, body = shop.push(number)
    # when: delivered, then delivered again
    first, again = deliver(shop, headers, body), deliver(shop, headers, body)
    # then: answered as any kept push (2xx, nothing to retry), kept once, not processed
    assert (first.status_code, first.content) == (200, b"")
    assert again.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.held, event.processed_at, event.order_number) == (True, None, number)
    assert created(number) == []


def test_resuming_through_the_api_processes_what_was_held(
    shop, deliver, api, django_capture_on_commit_callbacks
):
    pause(shop.channel)
    number = shop.order()
    deliver(shop, *shop.push(number))
    assert created(number) == []
    # when: an integration resumes the channel
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/channels/{shop.channel.pk}", {"is_active": True})
    # then: the held push is processed, once
    assert response.status_code == 200, response.content
    assert created(number) == [(SyncLog.Action.CREATE_ORDER, 200)]
    event = WebhookEvent.objects.get()
    assert (event.held, event.processed_at is not None) == (False, True)
    with django_capture_on_commit_callbacks(execute=True):
        api.patch(f"/api/channels/{shop.channel.pk}", {"is_active": True})
    assert len(created(number)) == 1


@pytest.mark.parametrize("kind", ["shopee"])
def test_resuming_in_the_admin_or_a_shell_processes_what_was_held(
    shop, deliver, admin_client, django_capture_on_commit_callbacks
):
    pause(shop.channel)
    first = shop.order()
    deliver(shop, *shop.push(first))
    # when: staff tick "active" on the channel's admin page
    url = reverse("admin:channels_channel_change", args=[shop.channel.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value is not None and value is not False}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {**data, "is_active": "on"})
    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert created(first) == [(SyncLog.Action.CREATE_ORDER, 200)]
    # when: paused again, a push held, and the channel resumed from a shell
    pause(shop.channel)
    second = shop.order()
    deliver(shop, *shop.push(second))
    assert created(second) == []
    shop.channel.is_active = True
    with django_capture_on_commit_callbacks(execute=True):
        shop.channel.save()
    assert created(second) == [(SyncLog.Action.CREATE_ORDER, 200)]


@pytest.mark.parametrize("kind", ["shopee"])
def test_a_push_queued_before_a_pause_is_held_when_its_turn_comes(
    shop, django_capture_on_commit_callbacks
):
    number = shop.order()
    headers, body = shop.push(number)
    # given: kept while the channel was active; its processing still queued
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = Client().post(
            shop.hook_url, body, content_type="application/json", headers=headers
        )
    assert response.status_code == 200
    pause(shop.channel)
    # when: the queued processing runs while the channel is paused
    for callback in queued:
        callback()
    # then: held, not processed; processed on resume
    assert WebhookEvent.objects.get().held
    assert created(number) == []
    shop.channel.is_active = True
    with django_capture_on_commit_callbacks(execute=True):
        shop.channel.save()
    assert created(number) == [(SyncLog.Action.CREATE_ORDER, 200)]


# --- Manual Download Order: 404, 422, and 502 only when the marketplace fails -------------------


def download(api: ApiClient, shop: Shop, numbers: list[str]):
    return api.post(f"/api/channels/{shop.channel.pk}/orders/download", {"order_numbers": numbers})


def test_a_number_the_marketplace_does_not_know_is_404_naming_it(shop, api):
    unknown = UNKNOWN_NUMBER[shop.kind]
    # when
    response = download(api, shop, [unknown])
    # then
    assert response.status_code == 404, response.content
    detail = response.json()["detail"]
    assert unknown in detail
    assert "settings" not in detail
    assert not SyncLog.objects.exists()


def test_known_and_unknown_numbers_together_download_the_known_ones(shop, api):
    known, unknown = shop.order(), UNKNOWN_NUMBER[shop.kind]
    response = download(api, shop, [unknown, known])
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["not_found"] == [unknown]
    assert [(row["order_number"], row["status"]) for row in answer["logs"]] == [(known, 200)]


def test_a_number_the_marketplace_can_never_have_is_422_unasked(shop, api):
    for number in MALFORMED_NUMBERS[shop.kind]:
        calls = shop.calls()
        # when
        response = download(api, shop, [UNKNOWN_NUMBER[shop.kind], number])
        # then: refused, naming it, before the marketplace was asked anything
        assert response.status_code == 422, (number, response.content)
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "order_numbers"]
        assert repr(number) in error["msg"], error["msg"]
        assert shop.calls() == calls
    assert not SyncLog.objects.exists()


def test_a_marketplace_that_cannot_answer_is_502(shop, api):
    shop.emulator.set_faults(throttle_rate=1.0, retry_after=0.01)
    response = download(api, shop, [UNKNOWN_NUMBER[shop.kind]])
    assert response.status_code == 502, response.content
    assert "retry later" in response.json()["detail"]


@pytest.mark.parametrize("kind", ["shopee"])
def test_the_admin_form_names_the_numbers_it_refuses(shop, admin_client):
    url = reverse("admin:synclogs_report")

    def submit(numbers: str) -> list[str]:
        response = admin_client.post(
            url, {"channel": shop.channel.pk, "order_numbers": numbers}, follow=True
        )
        return [str(message) for message in response.context["messages"]]

    assert any("241201ZZZZ9999" in m and "does not know" in m for m in submit("241201ZZZZ9999"))
    assert any("'AB-12'" in m for m in submit("AB-12 241201ZZZZ9999"))
    assert not SyncLog.objects.exists()
