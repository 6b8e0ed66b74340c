"""The API's operations, read from its own OpenAPI document, so generated tests cover every
endpoint there is, including ones added later; and a validator that judges values by the
document as JSON Schema means it."""

import json
import re
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from omni.api import api

# Operations anyone may call: the liveness probe, and the marketplace webhooks, which are
# authenticated by the marketplace's signature instead of a token.
PUBLIC = {("get", "/api/health"), ("post", "/api/webhooks/{channel_id}")}
READ_METHODS = {"get", "head", "options"}


@cache
def openapi() -> dict[str, Any]:
    # Through JSON, as clients read it: response codes become strings, and so on.
    return json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api"), default=str))


def operations() -> list[tuple[str, str]]:
    """(method, path template) of every operation, in document order."""
    return [
        (method, path)
        for path, ops in openapi()["paths"].items()
        for method in ops
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def is_public(operation: dict[str, Any]) -> bool:
    return not operation.get("security")


def fill(path: str, ids: dict[str, int] | None = None, default: int = 1) -> str:
    """The path with each `{name}` replaced by ids[name] (or `default`)."""
    ids = ids or {}
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), default)), path)


# --- judging values by the document, as JSON Schema means it ---------------------------------


def _pattern(validator, pattern: str, instance: Any, schema: dict) -> Any:
    # ECMA 262 patterns, as JSON Schema means them: "$" is the end of the text, not also the
    # place before a final newline as in Python.
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _multiple_of(validator, step: Any, instance: Any, schema: dict) -> Any:
    # Exactly, as the JSON text reads (a float's shortest repr), not in binary floating point.
    if validator.is_type(instance, "number") and Decimal(repr(instance)) % Decimal(repr(step)):
        yield ValidationError(f"{instance!r} is not a multiple of {step!r}")


DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _date_time(value: object) -> bool:
    """RFC 3339, within what Python's datetime holds (years 1 to 9999, no leap second)."""
    text = str(value)
    if not DATE_TIME.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _plain_url(value: object) -> bool:
    """A URL every validator takes; others are not counted as valid (the check is one-sided)."""
    host = r"([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,12}|localhost|[0-9]{1,3}(\.[0-9]{1,3}){3}"
    path = r"(/[a-zA-Z0-9./_-]*)?"
    return bool(re.fullmatch(rf"https?://({host})(:[0-9]{{2,5}})?{path}", str(value)))


FORMATS = FormatChecker()
FORMATS.checks("date-time")(_date_time)
FORMATS.checks("uri")(_plain_url)
DocumentValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "multipleOf": _multiple_of},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def document_validator(schema: dict[str, Any]) -> Any:
    """A validator for `schema` (a part of the document; its $refs resolve in the document)."""
    return DocumentValidator(
        {**schema, "components": openapi()["components"]}, format_checker=FORMATS
    )
