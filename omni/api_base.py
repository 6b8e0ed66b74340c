"""Pieces every API router shares: bounded input types, pagination, error shapes, filtering.

Kept apart from omni/api.py (which imports the routers) so routers can import them without a
cycle.
"""

import hashlib
from collections.abc import Callable
from typing import Annotated, Any

import django_filters
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination
from pydantic import AfterValidator, StringConstraints

from catalog.services import Actor

# Ids are 64-bit in both databases; a larger number can name nothing, and passing it on would
# make the database driver raise (an overflow, not a 404).
MAX_ID = 2**63 - 1
# Stock counts are 32-bit integer columns.
MAX_QUANTITY = 1_000_000_000


def clean_text(value: str) -> str:
    """Refuse what a database cannot store: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def Text(max_length: int, *, min_length: int = 0, strip: bool = True) -> Any:  # noqa: N802
    """A string type of bounded length that any database can store."""
    return Annotated[
        str,
        StringConstraints(max_length=max_length, min_length=min_length, strip_whitespace=strip),
        AfterValidator(clean_text),
    ]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _url(value: str) -> str:
    URLValidator(schemes=["http", "https"])(value)
    return value


def _django_error(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Run a Django validator as a pydantic one (its ValidationError becomes a ValueError)."""

    def run(value: Any) -> Any:
        try:
            return check(value)
        except DjangoValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None

    return run


Url = Annotated[
    str,
    StringConstraints(max_length=500, strip_whitespace=True),
    AfterValidator(_django_error(_url)),
]


class ErrorOut(Schema):
    detail: str = Field(description="What went wrong and, where it helps, what to do.")


class FieldError(Schema):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "payload", "sku"].')
    msg: str = Field(description="Why the value was refused.")
    type: str = Field(description="A stable machine-readable code for the kind of error.")


class ValidationErrorOut(Schema):
    detail: list[FieldError]


# Responses every authenticated operation may give besides its own.
AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut}
COMMON_ERRORS: dict[int, type[Schema]] = {
    **AUTH_ERRORS,
    400: ErrorOut,
    413: ErrorOut,
    422: ValidationErrorOut,
}


def responses(ok: dict[int, Any], *extra: int) -> dict[int, Any]:
    """`ok` plus the common error responses plus ErrorOut for each status in `extra`
    (404, 409…), so the OpenAPI document lists every answer an operation can give."""
    return {**ok, **COMMON_ERRORS, **dict.fromkeys(extra, ErrorOut)}


class Page(LimitOffsetPagination):
    """`{"items": [...], "count": N}` with `limit` (1–500, default 50) and `offset`.

    Cost: one COUNT query and one page query, plus the endpoint's prefetches.
    """

    class Input(Schema):
        limit: int = Field(50, ge=1, le=500, description="Rows per page (at most 500).")
        offset: int = Field(0, ge=0, le=1_000_000_000, description="Rows to skip.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_limit=500, **kwargs)


PageIn = Page.Input


def filtered(
    filterset_class: type[django_filters.FilterSet], params: Schema, queryset: QuerySet
) -> QuerySet:
    """Apply a django-filter FilterSet to `queryset` with the query parameters in `params`.

    The parameters were already typed by ninja; a value the FilterSet still refuses (a choice it
    does not know, say) becomes a 422 naming the parameter, like any other validation error.
    """
    data = {k: v for k, v in params.model_dump().items() if v is not None}
    filterset = filterset_class(data=data, queryset=queryset)
    if not filterset.is_valid():
        raise NinjaValidationError(
            [
                {"loc": ["query", name], "msg": " ".join(messages), "type": "invalid_filter"}
                for name, messages in filterset.errors.items()
            ]
        )
    return filterset.qs


# Counts of large lists: exact up to EXACT_COUNT_UP_TO rows; above that, an exact count
# computed at most once per LARGE_COUNT_SECONDS per list and filter, from the cache.
EXACT_COUNT_UP_TO = 1000
LARGE_COUNT_SECONDS = 30


def count_of(queryset: QuerySet, *, key: str) -> int:
    """The number of rows in `queryset`, cheap however large it is.

    A list of up to EXACT_COUNT_UP_TO rows is counted exactly on every call, by a query that
    reads at most that many rows. A larger list is counted in full once, and that count is kept
    for LARGE_COUNT_SECONDS under `key` (which must name the list and its filters), because
    counting 100,000 rows on every page request would cost more than the page: so a count
    above EXACT_COUNT_UP_TO may lag changes by up to that long. Cost: nothing while a large
    count is kept; otherwise one bounded count query, plus one full count for a large list.
    """
    cache_key = "omni:api-count:" + hashlib.sha256(key.encode()).hexdigest()
    cached = cache.get(cache_key)
    if cached is not None:
        return int(cached)
    bounded = queryset.order_by()[: EXACT_COUNT_UP_TO + 1].count()
    if bounded <= EXACT_COUNT_UP_TO:
        return bounded
    full = queryset.order_by().count()
    cache.set(cache_key, full, LARGE_COUNT_SECONDS)
    return full


class CountedPage(Page):
    """Page whose count goes through `count_of`, keyed by the request's path and query."""

    def paginate_queryset(
        self, queryset: QuerySet, pagination: Any, request: HttpRequest, **params: Any
    ) -> Any:
        offset, limit = pagination.offset, min(pagination.limit, self.max_limit)
        key = (
            request.path
            + "?"
            + "&".join(
                f"{k}={v}" for k, v in sorted(request.GET.items()) if k not in ("limit", "offset")
            )
        )
        return {"items": queryset[offset : offset + limit], "count": count_of(queryset, key=key)}


def actor_of(request: HttpRequest) -> Actor:
    """Who a write is recorded as in the stock ledger and other logs: the token's name."""
    token = getattr(request, "auth", None)
    if token is None:
        return Actor(label="api")
    return Actor(label=f"api:{token.name}"[:120])
