"""Marketplace pushes: verify, keep once, queue the work. The HTTP endpoint calls
`webhook_receive` and answers with what the receipt says; the queued task calls
`webhook_event_process`.

A paused channel (`Channel.is_active` off) syncs nothing, but its pushes are still verified,
kept and answered 2xx, because marketplaces retry a push that fails and give up on the
endpoint after a run of failures (Shopify deletes the subscription, WooCommerce disables the
webhook, Shopee disables pushes below 30% success). They are `held` instead of queued, and
`webhooks_release` queues them when the channel is saved active again: every path that resumes
a channel (admin, API, shell) saves it, so the Channel post_save signal is the one place.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from channels.adapters.base import AdapterError, WebhookRejected
from channels.adapters.base import WebhookEvent as AdapterEvent
from channels.models import Channel
from channels.services import adapter_for
from synclogs.exceptions import InvalidOrderNumbers, OrderDownloadFailed
from synclogs.models import WebhookEvent
from synclogs.services import order_download_pushed

logger = logging.getLogger(__name__)

# Topics whose event is worth a download of the order it names.
ORDER_TOPICS = frozenset({"order_status"})


@dataclass(frozen=True, slots=True)
class WebhookReceipt:
    """What to answer the marketplace, and what happened.

    `status` and `body` are the HTTP reply (Shopee wants a 2xx with an empty body; a refusal
    says why in plain text). `duplicate` is True for a delivery already kept, which queues
    nothing. `event_id` is the kept event, if any.
    """

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    duplicate: bool = False
    event_id: int | None = None
    message: str = ""


def webhook_receive(
    *, channel: Channel, url: str, headers: Mapping[str, str], body: bytes
) -> WebhookReceipt:
    """Verify a push with the channel's adapter, keep it once per delivery id, and queue
    `synclogs.tasks.process_webhook_event` after commit when it names an order; for a paused
    channel, keep it held instead (answered the same, queued on resume).

    A push naming another shop of the same app (Shopee and Lazada send all of an app's shops to
    the one URL registered) is kept for the channel of that shop (`_owner`), or answered 200
    and not kept when omni has none. A push about the seller's authorization (cancelled, expiring)
    puts its notice on the channel, for staff to connect the shop again. A refused push
    (missing, malformed or wrong signature 401, malformed body 400) keeps nothing. Cost: the
    signature check, one insert (plus one locked read of the channel row when it is paused,
    one update for a notice, and a check with each channel of the kind for another shop's
    push); nothing is downloaded before answering, so the marketplace gets its reply fast.
    `url` must be the exact URL the marketplace was given.
    """
    try:
        adapter = adapter_for(channel)
        event = adapter.verify_webhook(url=url, headers=headers, body=body)
    except WebhookRejected as exc:
        logger.info("channel %s: push refused (%s): %s", channel.pk, exc.status, exc)
        return WebhookReceipt(exc.status, str(exc).encode(), message=str(exc))
    except AdapterError as exc:  # e.g. credentials that no longer validate
        logger.warning("channel %s: push not verifiable: %s", channel.pk, exc)
        return WebhookReceipt(503, b"cannot verify pushes for this channel now", message=str(exc))
    if not adapter.owns_push(event):
        owner = _owner(channel, url=url, headers=headers, body=body)
        if owner is None:
            message = f"push for shop {event.shop}, which no {channel.kind} channel holds"
            logger.info("channel %s: %s: not kept", channel.pk, message)
            return WebhookReceipt(200, message=f"{message}: not kept")
        channel, event = owner
    work = event.topic in ORDER_TOPICS and bool(event.order_number)
    with transaction.atomic():
        held = work and not _takes_work(channel)
        try:
            with transaction.atomic():
                kept = WebhookEvent.objects.create(
                    channel=channel,
                    delivery_id=event.delivery_id[:100],
                    topic=event.topic[:40],
                    order_number=event.order_number[:64],
                    payload=event.payload,
                    held=held,
                )
        except IntegrityError:
            return WebhookReceipt(200, duplicate=True, message="delivery already received")
        if event.topic == "authorization" and event.notice:
            # Shown on the channel until staff enter new credentials (see channels.services).
            Channel.objects.filter(pk=channel.pk).update(
                authorization_notice=event.notice[:300], authorization_notice_at=timezone.now()
            )
        if work and not held:
            transaction.on_commit(lambda: _queue(kept.pk))
    kept_as = "held until the channel is active again" if held else "kept"
    return WebhookReceipt(200, event_id=kept.pk, message=f"{event.topic} push {kept_as}")


def _owner(
    channel: Channel, *, url: str, headers: Mapping[str, str], body: bytes
) -> tuple[Channel, AdapterEvent] | None:
    """The channel of `channel`'s kind whose shop a push names, with the push as that
    channel's keys verify it; None when no channel holds the shop."""
    siblings = Channel.objects.filter(kind=channel.kind).exclude(pk=channel.pk).order_by("pk")
    for sibling in siblings:
        try:
            adapter = adapter_for(sibling)
            event = adapter.verify_webhook(url=url, headers=headers, body=body)
        except (WebhookRejected, AdapterError):  # another app's keys, or unreadable ones
            continue
        if adapter.owns_push(event):
            return sibling, event
    return None


def webhook_event_process(*, event_id: int) -> str:
    """Download the order a kept push named; a line for the task log.

    Claimed first, so a second delivery of the task does nothing; held instead when the channel
    has been paused since the push arrived. A failed download releases the claim, records the
    error and raises OrderDownloadFailed, so the task is retried; a push naming a number the
    marketplace can never have is recorded as failed, for good. Cost: two short statements,
    then the download (see services.order_download_pushed).
    """
    claim = _claim(event_id)
    if claim:
        return f"event {event_id}: {claim}"
    event = WebhookEvent.objects.select_related("channel").get(pk=event_id)
    try:
        rows = order_download_pushed(channel=event.channel, order_number=event.order_number)
    except OrderDownloadFailed as exc:
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=None, error=str(exc)[:500])
        raise
    except InvalidOrderNumbers as exc:
        WebhookEvent.objects.filter(pk=event_id).update(error=str(exc)[:500])
        return f"event {event_id}: {exc}"
    WebhookEvent.objects.filter(pk=event_id).update(error="")
    return f"event {event_id}: order {event.order_number}, {len(rows)} row(s)"


def webhooks_release(*, channel_id: int) -> int:
    """Queue the pushes the channel held while it was paused, oldest first; how many.
    Cost: one query on a partial index (held events only) and one update."""
    ids = list(
        WebhookEvent.objects.filter(channel_id=channel_id, held=True)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)
    )
    if ids:
        WebhookEvent.objects.filter(pk__in=ids).update(held=False)
    for event_id in ids:
        _queue(event_id)
    return len(ids)


def on_channel_saved(
    sender: type[Channel],
    instance: Channel,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """post_save of Channel: a channel saved active releases what it held, after commit.
    Saves that name their fields without `is_active` (token rotation) cannot resume it."""
    if raw or not instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    channel_id = instance.pk
    transaction.on_commit(lambda: webhooks_release(channel_id=channel_id))


def _takes_work(channel: Channel) -> bool:
    """Whether the channel is active. A channel seen paused is read again under a row lock: a
    resume committing meanwhile is either seen here, or waits for this push to be kept held
    and then releases it."""
    return channel.is_active or _active_locked(channel.pk)


def _active_locked(channel_id: int) -> bool:
    """The channel's `is_active`, read under a row lock held until the transaction ends, so
    a concurrent save of the channel waits for it (PostgreSQL's FOR NO KEY UPDATE, which
    still lets rows that refer to the channel be written; SQLite serialises writers)."""
    active = (
        Channel.objects.select_for_update(no_key=True)
        .filter(pk=channel_id)
        .values_list("is_active", flat=True)
        .first()
    )
    return bool(active)


def _claim(event_id: int) -> str:
    """Why this run may not process the event; empty when it may (it is claimed)."""
    channel_id = (
        WebhookEvent.objects.filter(pk=event_id).values_list("channel_id", flat=True).first()
    )
    if channel_id is None:
        return "no longer kept"
    unclaimed = WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True)
    with transaction.atomic():
        if not _active_locked(channel_id):
            held = unclaimed.update(held=True)
            return "held until the channel is active again" if held else "already processed"
        claimed = unclaimed.update(processed_at=timezone.now(), held=False)
    return "" if claimed else "already processed"


def _queue(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "synclogs.tasks.process_webhook_event",
        event_id,
        task_name=f"webhook-event-{event_id}",
        group="webhooks",
    )
