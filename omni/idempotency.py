"""`Idempotency-Key` for API writes that are not safe to repeat (a stock `delta`).

A client that may retry (a timeout, a dropped connection) sends a unique key with the request;
the first request with that key is applied and its answer kept, and every later request with the
same key and the same method, path and body gets that answer again, marked with an
`Idempotent-Replayed: true` header, without being applied. The same key with a different
request is refused (422, as is a badly formed key). A request that fails (a 4xx from a domain
error, a 5xx) keeps nothing, so retrying it runs it again. Keys belong to the token that sent
them and are forgotten after KEEP_HOURS.

Concurrent requests with one key are serialised by the unique (token, key) index: the key row
is inserted in the request's own transaction, so a second request waits for the first to commit
and then replays its answer (or, if the first failed, runs itself).
"""

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja.errors import ValidationError

from omni.models import IdempotentRequest

HEADER = "Idempotency-Key"
KEEP_HOURS = 24
MAX_KEY_LENGTH = 255


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Make a django-ninja write endpoint honour `Idempotency-Key` (see the module docstring).

    The endpoint must answer 200 with a schema (a pydantic model). Without the header it runs
    as before. Cost with the header: a few indexed queries around the endpoint's own.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(request, *args, **kwargs)
        _check(key)
        token = request.auth  # type: ignore[attr-defined]
        fingerprint = hashlib.sha256(
            b"\n".join([request.method.encode(), request.path.encode(), request.body])
        ).hexdigest()
        with transaction.atomic():
            IdempotentRequest.objects.filter(
                token=token, created_at__lt=timezone.now() - timedelta(hours=KEEP_HOURS)
            ).delete()
            try:
                with transaction.atomic():
                    kept = IdempotentRequest.objects.create(
                        token=token, key=key, fingerprint=fingerprint, status=0, response={}
                    )
            except IntegrityError:
                return _replay(IdempotentRequest.objects.get(token=token, key=key), fingerprint)
            answer = view(request, *args, **kwargs)
            kept.status, kept.response = 200, answer.model_dump(mode="json")
            kept.save(update_fields=["status", "response"])
            return answer

    return wrapper


def _check(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise _refused(
            f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, e.g. a UUID made for "
            "this request",
            "idempotency_key_invalid",
        )


def _refused(msg: str, code: str) -> ValidationError:
    """A 422 in the API's usual field-error shape, pointing at the header."""
    return ValidationError([{"loc": ["header", HEADER], "msg": msg, "type": code}])


def _replay(kept: IdempotentRequest, fingerprint: str) -> JsonResponse:
    if kept.fingerprint != fingerprint:
        raise _refused(
            "this key was already used for a different request; use a new key for each new request",
            "idempotency_key_reused",
        )
    response = JsonResponse(kept.response, status=kept.status)
    response["Idempotent-Replayed"] = "true"
    return response
