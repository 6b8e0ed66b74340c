"""Marketplace pushes: verify, keep once, queue the work. The HTTP endpoint calls
`webhook_receive` and answers with what the receipt says."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from channels.adapters.base import AdapterError, WebhookRejected
from channels.models import Channel
from channels.services import adapter_for
from synclogs.models import WebhookEvent

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
    `synclogs.tasks.process_webhook_event` after commit when it names an order.

    A refused push (wrong signature 401, malformed body 400) keeps nothing. Cost: the
    signature check, one insert; nothing is downloaded before answering, so the marketplace
    gets its reply fast. `url` must be the exact URL the marketplace was given.
    """
    try:
        event = adapter_for(channel).verify_webhook(url=url, headers=headers, body=body)
    except WebhookRejected as exc:
        logger.info("channel %s: push refused (%s): %s", channel.pk, exc.status, exc)
        return WebhookReceipt(exc.status, str(exc).encode(), message=str(exc))
    except AdapterError as exc:  # e.g. credentials that no longer validate
        logger.warning("channel %s: push not verifiable: %s", channel.pk, exc)
        return WebhookReceipt(503, b"cannot verify pushes for this channel now", message=str(exc))
    with transaction.atomic():
        try:
            with transaction.atomic():
                kept = WebhookEvent.objects.create(
                    channel=channel,
                    delivery_id=event.delivery_id[:100],
                    topic=event.topic[:40],
                    order_number=event.order_number[:64],
                    payload=event.payload,
                )
        except IntegrityError:
            return WebhookReceipt(200, duplicate=True, message="delivery already received")
        if event.topic in ORDER_TOPICS and event.order_number:
            transaction.on_commit(lambda: _queue(kept.pk))
    return WebhookReceipt(200, event_id=kept.pk, message=f"{event.topic} push kept")


def _queue(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "synclogs.tasks.process_webhook_event",
        event_id,
        task_name=f"webhook-event-{event_id}",
        group="webhooks",
    )
