"""The flush lease: a dead flusher holds a channel up for seconds, not minutes; a live one is
left to finish; pushes out of quick retries are retried on the schedule, not abandoned."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.services import stock_adjust
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import inventory_flush
from channels.models import Channel, Listing, PendingPush
from channels.tasks import inventory_flush_due
from omni.leases import LEASE_SECONDS, Lease
from tests.channels.builders import shop_item
from tests.channels.test_inventory import connect
from tests.factories import VariantFactory


@pytest.fixture
def shop():
    with ShopeeEmulator(items=0, seed=4) as emulator:
        yield emulator


def listed(shop, sku: str = "TEE-1"):
    variant = VariantFactory(sku=sku)
    item_id = shop.put_item(shop_item("Tee", sku, quantity=0))
    channel = connect(shop)
    return channel, variant, (item_id, 0)


def held_by_a_dead_flusher(channel: Channel, lapses_in: float) -> None:
    Channel.objects.filter(pk=channel.pk).update(
        flush_locked_until=timezone.now() + timedelta(seconds=lapses_in), flush_lease="dead"
    )


@pytest.mark.django_db
def test_a_dead_flushers_lease_lapses_and_the_next_flush_takes_over(shop):
    channel, variant, ref = listed(shop)
    held_by_a_dead_flusher(channel, lapses_in=1.0)
    stock_adjust(variant_id=variant.pk, outlet_id=channel.order_outlet_id, delta=6)
    # when: the flush that the stock change queued finds the lease taken, by no one alive
    result = inventory_flush(channel_id=channel.pk)
    # then: it waited for the lease to lapse, took it, and pushed
    assert not result.locked_out
    assert result.pushed == 1
    assert shop.quantities()[ref] == 6
    assert Channel.objects.get(pk=channel.pk).flush_locked_until is None


@pytest.mark.django_db
def test_without_waiting_a_held_lease_locks_the_flush_out(shop):
    channel, variant, ref = listed(shop)
    held_by_a_dead_flusher(channel, lapses_in=60)
    stock_adjust(variant_id=variant.pk, outlet_id=channel.order_outlet_id, delta=6)
    result = inventory_flush(channel_id=channel.pk, wait=False)
    assert result.locked_out
    assert PendingPush.objects.filter(listing__channel=channel).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_live_flusher_is_left_to_finish_and_a_lapsed_one_cannot_renew(shop, settings):
    settings.OMNI_LEASE_SECONDS = 1.5
    settings.OMNI_FLUSH_ON_COMMIT = False
    channel, variant, _ = listed(shop)
    holder = Lease(
        Channel.objects.filter(pk=channel.pk), until="flush_locked_until", token="flush_lease"
    )
    assert holder.take()
    stock_adjust(variant_id=variant.pk, outlet_id=channel.order_outlet_id, delta=6)
    # when: a second flush comes while the holder's heartbeat keeps its lease alive
    outcome: dict = {}
    with holder.heartbeat():
        waiter = threading.Thread(
            target=lambda: outcome.update(result=inventory_flush(channel_id=channel.pk))
        )
        waiter.start()
        waiter.join(timeout=30)
    # then: it saw the lease renewed, and left the work to the holder
    assert outcome["result"].locked_out
    assert PendingPush.objects.filter(listing__channel=channel).count() == 1
    # when: the holder stops beating and its lease lapses, another flush takes over
    result = inventory_flush(channel_id=channel.pk)
    assert result.pushed == 1
    assert not holder.renew()  # the old holder can neither renew nor release the new lease
    assert not holder.release()


@pytest.mark.django_db
def test_a_push_out_of_quick_retries_is_retried_by_the_schedule(shop, settings):
    channel, variant, ref = listed(shop)
    shop.set_faults(error_rate=1.0)
    stock_adjust(variant_id=variant.pk, outlet_id=channel.order_outlet_id, delta=6)
    inventory_flush(channel_id=channel.pk)
    push = PendingPush.objects.get(listing__channel=channel)
    assert push.failed
    assert push.next_attempt_at > timezone.now() + timedelta(minutes=30)  # an hour's back-off
    assert "500" in Listing.objects.get(pk=push.listing_id).push_error
    # when: the marketplace recovers and the slow retry comes due
    shop.set_faults(error_rate=0.0)
    PendingPush.objects.update(next_attempt_at=timezone.now())
    inventory_flush_due()
    # then
    assert shop.quantities()[ref] == 6
    assert not PendingPush.objects.exists()
    assert Listing.objects.get(channel=channel).push_error == ""


@pytest.mark.django_db
def test_a_flush_of_a_channel_deleted_since_it_was_queued_ends_at_once(shop):
    channel, _, _ = listed(shop)
    channel_id = channel.pk
    Channel.objects.filter(pk=channel_id).delete()
    started = time.monotonic()
    result = inventory_flush(channel_id=channel_id)
    assert result.locked_out
    assert time.monotonic() - started < LEASE_SECONDS  # did not sit out a lease for nobody
