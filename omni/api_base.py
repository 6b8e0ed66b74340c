"""Pieces every API router shares: bounded input types, pagination, error shapes, filtering.

Kept apart from omni/api.py (which imports the routers) so routers can import them without a
cycle.
"""

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import django_filters
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination
from pydantic import (
    AfterValidator,
    ModelWrapValidatorHandler,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from omni.actors import Actor

# Ids are 64-bit in both databases; a larger number can name nothing, and passing it on would
# make the database driver raise (an overflow, not a 404).
MAX_ID = 2**63 - 1
# Stock counts are 32-bit integer columns.
MAX_QUANTITY = 1_000_000_000


# What pydantic's `strip_whitespace` removes (Unicode White_Space), as a regex class body.
WHITESPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# The OpenAPI patterns of Text: no NUL; with min_length=1, some character that is not stripped.
NO_NUL_PATTERN = r"^[^\x00]*$"
HAS_TEXT_PATTERN = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"


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
    """A string type of bounded length that any database can store.

    Surrounding whitespace is stripped first (unless `strip=False`), so `min_length=1` means
    "not blank"; the OpenAPI document states both rules as a pattern. Lone surrogates are
    refused too, which a JSON Schema cannot say: they are not Unicode text.
    """
    if min_length > 1:
        raise ValueError("Text states min_length 0 or 1 as a pattern; larger needs another rule")
    pattern = HAS_TEXT_PATTERN if min_length and strip else NO_NUL_PATTERN
    shown: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": pattern}
    if min_length:
        shown["minLength"] = min_length
    return Annotated[
        str,
        StringConstraints(max_length=max_length, min_length=min_length, strip_whitespace=strip),
        AfterValidator(clean_text),
        WithJsonSchema(shown),
    ]


def json_schema_of(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of a type built here (to state a container's rules by hand)."""
    return TypeAdapter(annotation).json_schema()


def BoundedDict(key: Any, value: Any, *, max_items: int) -> Any:  # noqa: N802
    """A JSON object of at most `max_items` entries, its keys of type `key` (a Text) and its
    values of type `value`, stated as such in the OpenAPI document."""
    shown = {
        "type": "object",
        "maxProperties": max_items,
        "propertyNames": json_schema_of(key),
        "additionalProperties": json_schema_of(value),
    }
    return Annotated[dict[key, value], Field(max_length=max_items), WithJsonSchema(shown)]


def Amount(  # noqa: N802
    max_digits: int, places: int, *, low: int | Decimal = 0, high: int | None = None
) -> Any:
    """A decimal from `low` (0 unless given) to `high` (the most `max_digits` digits hold
    unless given), `places` of them after the point: a JSON number or, within the digits'
    own bounds, a string such as "49.90". The OpenAPI document gives the bounds (a number's
    places as `multipleOf`); a range of its own is documented for numbers only, as a string's
    pattern cannot say it."""
    whole = max_digits - places
    step = Decimal(1).scaleb(-places)
    largest = Decimal(10) ** whole - step if high is None else Decimal(high)
    number = {
        "type": "number",
        "minimum": float(low) if isinstance(low, Decimal) else low,
        "maximum": float(largest),
        "multipleOf": float(step),
    }
    if low == 0 and high is None:
        text = {"type": "string", "pattern": rf"^[0-9]{{1,{whole}}}(\.[0-9]{{1,{places}}})?$"}
        shown: dict[str, Any] = {"anyOf": [number, text], "examples": ["49.90"]}
    else:
        shown = {**number, "examples": [float(max(low, 0))]}
    return Annotated[
        Decimal,
        Field(
            ge=low,
            le=largest,
            max_digits=max_digits,
            decimal_places=places,
            allow_inf_nan=False,
        ),
        WithJsonSchema(shown),
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


def Url(max_length: int) -> Any:  # noqa: N802
    """An http(s) URL that Django's URLValidator accepts (a host name with a top-level
    domain, localhost or an IP address), at most `max_length` characters."""
    shown = {
        "type": "string",
        "format": "uri",
        "maxLength": max_length,
        "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
        "description": "An http or https URL with a domain name, localhost or an IP address.",
    }
    return Annotated[
        str,
        StringConstraints(max_length=max_length, strip_whitespace=True),
        AfterValidator(_django_error(_url)),
        WithJsonSchema(shown),
    ]


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


class InSchema(Schema):
    """The base of every request body and of each object inside one: it must be a JSON object.

    ninja's Schema also reads attributes off any Python object (to render models), so without
    this a body of `[null, null]`, `"hello"`, `3` or `null` would pass as "no field sent" and
    act on defaults. Refused with 422 `object_type`, naming where.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _object_only(
        cls, value: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        if not isinstance(value, dict | cls):
            raise PydanticCustomError(
                "object_type", "Expected a JSON object, got {got}.", {"got": _json_kind(value)}
            )
        return handler(value)


def Choice(choices: type[models.Choices]) -> Any:  # noqa: N802
    """A field taking one of a model's choices, its values listed where the field is: enum
    classes of one name (every `Kind`) would otherwise share one OpenAPI component."""
    values = list(choices.values)
    kind = "integer" if all(isinstance(v, int) for v in values) else "string"
    return Annotated[choices, WithJsonSchema({"type": kind, "enum": values})]


def exactly_one_of(*names: str) -> dict[str, Any]:
    """JSON Schema for "exactly one of these fields is given and not null", for a model's
    `json_schema_extra` next to the validator that enforces it."""
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names
        ]
    }


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
    filterset_class: type[django_filters.FilterSet],
    params: Schema,
    queryset: QuerySet,
    **context: Any,
) -> QuerySet:
    """Apply a django-filter FilterSet to `queryset` with the query parameters in `params`
    (and `context`, what that FilterSet takes beside them).

    The parameters were already typed by ninja; a value the FilterSet still refuses (a choice it
    does not know, say) becomes a 422 naming the parameter, like any other validation error.
    """
    data = {k: v for k, v in params.model_dump().items() if v is not None}
    filterset = filterset_class(data=data, queryset=queryset, **context)
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
