"""API tokens: creating, revoking and authenticating them, and the per-token rate limit.

A token is `omni_` followed by 43 URL-safe characters (256 random bits). Only its sha256 is
stored, so a leaked database does not leak usable tokens; the plain token is returned once, by
`token_create`, and never again.

Requests send it as `Authorization: Bearer <token>`. `read` allows GET (and HEAD/OPTIONS),
`write` allows every other method. Outcomes, each with a JSON `detail` saying what to do:
no or malformed header, unknown or revoked token → 401; missing scope → 403; over the rate
limit → 429 with `Retry-After`.
"""

import hashlib
import math
import secrets
import time
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError, AuthorizationError, Throttled
from ninja.security.http import HttpAuthBase

from omni.models import ApiToken

TOKEN_PREFIX = "omni_"
_SECRET_BYTES = 32  # token_urlsafe(32) is 43 characters
TOKEN_LENGTH = len(TOKEN_PREFIX) + 43
_SHOWN_CHARS = 12  # "omni_" + 7 random characters: enough to tell tokens apart
LAST_USED_RESOLUTION = timedelta(minutes=1)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPES = frozenset(ApiToken.Scope.values)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scopes_parse(raw: str | Iterable[str]) -> list[str]:
    """`"read,write"` (or a list) → `["read", "write"]`; ValidationError naming a bad scope."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = sorted({item.strip().lower() for item in items if item.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValidationError(
            {"scopes": f"Scopes must be among {', '.join(sorted(SCOPES))}; got {raw!r}."}
        )
    return scopes


def token_create(*, name: str, scopes: str | Iterable[str]) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token, which is shown once and never kept.

    Raises ValidationError for a blank name or unknown scopes.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A token needs a name saying who uses it."})
    cleaned = scopes_parse(scopes)
    for _ in range(5):  # a prefix clash is astronomically rare; retry rather than fail
        plain = TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
        row = ApiToken(
            name=name[:100], prefix=plain[:_SHOWN_CHARS], secret_hash=_hash(plain), scopes=cleaned
        )
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            continue
        return row, plain
    raise RuntimeError("could not draw a unique token prefix")  # pragma: no cover


def token_revoke(*, token: ApiToken) -> None:
    """Revoke now; requests with this token get 401 from their next call. Revoking twice keeps
    the first revocation time."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, updated_at=now
    )
    token.refresh_from_db(fields=["revoked_at", "updated_at"])


def token_authenticate(raw: str) -> ApiToken:
    """The active token `raw` names. Raises AuthenticationError (401) otherwise.

    Cost: one indexed read; plus one UPDATE at most once a minute per token (last_used_at).
    """
    raw = raw.strip()
    if not raw.startswith(TOKEN_PREFIX) or len(raw) != TOKEN_LENGTH:
        raise AuthenticationError(message="Unknown API token.")
    token = ApiToken.objects.filter(secret_hash=_hash(raw)).first()
    if token is None:
        raise AuthenticationError(message="Unknown API token.")
    if token.revoked_at is not None:
        raise AuthenticationError(message="This API token has been revoked.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def required_scope(method: str) -> str:
    return ApiToken.Scope.READ if method.upper() in READ_METHODS else ApiToken.Scope.WRITE


def rate_limit_hit(*, key: str, limit: int, window: int = 60) -> int | None:
    """Count one request against `key` in the current fixed window of `window` seconds.

    Returns None while within `limit`, else the seconds until the window ends (for
    Retry-After). A limit of 0 disables the check. The counter lives in the default cache:
    per process with LocMem (so with N server processes the effective limit is N × limit),
    shared by every process with Redis (REDIS_URL).
    Cost: two cache operations.
    """
    if limit <= 0:
        return None
    now = time.time()
    start = int(now // window) * window
    cache_key = f"omni:api-rate:{key}:{start}"
    cache.add(cache_key, 0, timeout=window + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # the key expired between add and incr: this is the window's first hit
        cache.set(cache_key, 1, timeout=window + 5)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil(start + window - now))


class TokenAuth(HttpAuthBase):
    """ninja auth: a bearer token with the scope the method needs, within the rate limit.

    On success `request.auth` is the ApiToken.
    """

    openapi_scheme = "bearer"
    openapi_description = (
        "An API token (`omni_…`), created in the admin or with `manage.py create_api_token`. "
        "`read` scope for GET, `write` for POST, PATCH and DELETE."
    )

    def __call__(self, request: HttpRequest) -> ApiToken:
        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        if not header:
            raise AuthenticationError(
                message="Authentication required: send 'Authorization: Bearer <API token>'."
            )
        if scheme.lower() != "bearer" or not raw.strip():
            raise AuthenticationError(
                message="Malformed Authorization header: expected 'Bearer <API token>'."
            )
        token = token_authenticate(raw)
        scope = required_scope(request.method or "GET")
        if not token.allows(scope):
            raise AuthorizationError(
                message=f"This API token lacks the '{scope}' scope needed for "
                f"{request.method} requests (it has: {', '.join(token.scopes) or 'none'})."
            )
        wait = rate_limit_hit(
            key=str(token.pk), limit=getattr(settings, "API_RATE_LIMIT_PER_MINUTE", 0)
        )
        if wait is not None:
            raise Throttled(wait=wait)
        return token
