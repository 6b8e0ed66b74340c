"""Saving a channel's settings never puts back what a worker or a push wrote meanwhile: a
refreshed (single-use) token, the flush lease, the scan's error, an authorization notice."""

import pytest

from channels.models import Channel
from tests.factories import OutletFactory

pytestmark = pytest.mark.django_db
TOKENS = {"partner_id": 1, "partner_key": "k" * 32, "shop_id": 7, "access_token": "a-1"}


def shopee_channel() -> Channel:
    outlet = OutletFactory()
    return Channel.objects.create(
        kind="shopee",
        name="Shopee",
        credentials={**TOKENS, "refresh_token": "r-1"},
        order_outlet=outlet,
    )


def test_a_settings_save_from_a_row_read_earlier_keeps_what_workers_wrote_since():
    channel = shopee_channel()
    # given: staff open the channel; meanwhile a worker refreshes its tokens (the old refresh
    # token is spent), holds the flush lease and records a scan error, and a push a notice
    opened = Channel.objects.get(pk=channel.pk)
    refreshed = {**TOKENS, "access_token": "a-2", "refresh_token": "r-2"}
    Channel.objects.filter(pk=channel.pk).update(
        credentials=refreshed,
        flush_lease="lease-1",
        last_error="HTTP 500",
        authorization_notice="Shopee says omni's access to the shop expires within 7 days",
    )

    # when: staff save a setting
    opened.buffer = 3
    opened.save()

    # then
    row = Channel.objects.get(pk=channel.pk)
    assert row.buffer == 3
    assert row.credentials == refreshed
    assert (row.flush_lease, row.last_error) == ("lease-1", "HTTP 500")
    assert row.authorization_notice.startswith("Shopee says")


def test_what_the_object_itself_changed_is_saved():
    channel = shopee_channel()
    opened = Channel.objects.get(pk=channel.pk)
    new = {**TOKENS, "access_token": "a-3", "refresh_token": "r-3"}

    opened.credentials = new
    opened.last_error = "refused"
    opened.save()
    opened.buffer = 5
    opened.save()  # a second save of the same object writes nothing stale either

    row = Channel.objects.get(pk=channel.pk)
    assert (row.credentials, row.last_error, row.buffer) == (new, "refused", 5)


def test_a_partial_reload_keeps_what_the_object_changed_in_other_fields():
    channel = shopee_channel()
    opened = Channel.objects.get(pk=channel.pk)
    new = {**TOKENS, "access_token": "a-4", "refresh_token": "r-4"}

    opened.credentials = new
    opened.refresh_from_db(fields=["last_error"])
    opened.save()

    assert Channel.objects.get(pk=channel.pk).credentials == new
