"""The JSON API root: authentication, the app routers, and domain errors mapped to HTTP once.

Every operation needs an API token (omni.auth.TokenAuth) unless it says `auth=None`: the
health probe, and the marketplace webhooks, which are authenticated by their signature.

Error answers are JSON: `{"detail": "…"}`, or for 422 `{"detail": [{"loc", "msg", "type"}]}`
naming each refused field. 400 malformed body, 401 no/unknown/revoked token, 403 missing
scope, 404 unknown id, 409 refused by a domain rule (nothing written), 413 body too large,
422 invalid value, 429 over the rate limit (with Retry-After).

A body is JSON in UTF-8 (no NaN or Infinity) and must be an object: a body that is not JSON is
a 400; one that is JSON but not an object, or a missing body where one is required, a 422.
"""

import json
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, Throttled
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from catalog.exceptions import CatalogError, UnknownOutlet, UnknownSku
from channels.exceptions import ChannelError, InvalidCredentials
from omni.api_base import ErrorOut
from omni.auth import TokenAuth
from synclogs.exceptions import InvalidOrderNumbers, OrderDownloadFailed

# What each error status means in this API, shown in the OpenAPI document for every operation
# that lists it (in place of the bare HTTP reason phrase).
ERROR_MEANINGS = {
    400: "The body is not JSON, or Content-Length is not a number.",
    401: "No API token, or an unknown or revoked one.",
    403: "The token lacks the scope: `read` for GET, `write` for anything else.",
    404: "Nothing has this id (or a code named in the body is unknown).",
    409: "Refused by a rule of the data (nothing written), or it conflicts with a concurrent "
    "write: read again and retry.",
    413: "The body is over this endpoint's size limit.",
    422: "A value is refused: each entry names where (`loc`), why (`msg`) and a code (`type`).",
    429: "Over the token's rate limit; retry after `Retry-After` seconds.",
    502: "The marketplace could not be asked; nothing was written.",
}


class StrictJsonParser(Parser):
    """Bodies are JSON as RFC 8259 defines it: UTF-8 text (Python would also take UTF-16 and
    UTF-32), without NaN, Infinity and -Infinity (which Python's json module also takes)."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body.decode("utf-8"), parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


class OmniApi(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """The generated document, with each error status described as ERROR_MEANINGS says."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    if int(status) in ERROR_MEANINGS:
                        answer["description"] = ERROR_MEANINGS[int(status)]
        return schema


api = OmniApi(
    title="omni",
    version="1",
    description=(
        "The omnichannel back office of a retail POS: catalog, channels, stock and order logs.\n\n"
        "Authenticate with `Authorization: Bearer <API token>` (tokens are created in the admin "
        "or with `manage.py create_api_token NAME --scopes read,write`). Lists answer "
        '`{"items": [...], "count": N}` and take `limit` (≤ 500) and `offset`. Errors answer '
        '`{"detail": ...}` with 400, 401, 403, 404, 409, 413, 422 or 429.'
    ),
    urls_namespace="api",
    auth=TokenAuth(),
    parser=StrictJsonParser(),
)

api.add_router("/", "catalog.api.router")
api.add_router("/", "channels.api.router")
api.add_router("/", "channels.api_rules.router")
api.add_router("/", "channels.api_sku.router")
api.add_router("/", "channels.api_pricing.router")
api.add_router("/", "synclogs.api.router")


@api.get(
    "/health",
    tags=["meta"],
    summary="Liveness probe",
    auth=None,
    response={200: dict[str, str], 400: ErrorOut, 413: ErrorOut},
)
def health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


# --- errors ----------------------------------------------------------------------------------


def _detail(request: HttpRequest, status: int, detail: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


def _field_errors(errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """{"order_numbers": [...]} → [{"loc": ["body", "order_numbers"], "type": "invalid"…}]."""
    return [error for key, messages in errors.items() for error in _at(key, messages, "invalid")]


def _django_errors(exc: DjangoValidationError) -> list[dict[str, Any]]:
    """A Django ValidationError as field errors, each typed by its Django code (`unique`,
    `max_length`…; `invalid` when it has none)."""
    by_key = exc.error_dict if hasattr(exc, "error_dict") else {"__all__": exc.error_list}
    return [
        error
        for key, errors in by_key.items()
        for each in errors
        for error in _at(key, each.messages, each.code or "invalid")
    ]


def _at(key: str, messages: list[str], kind: str) -> list[dict[str, Any]]:
    """Django's key "variants.1.sku" → loc ["body", "variants", 1, "sku"]."""
    path = [] if key == "__all__" else [int(p) if p.isdigit() else p for p in key.split(".")]
    return [{"loc": ["body", *path], "msg": m, "type": kind} for m in messages]


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    # Only where and why: never the submitted value, which may be a secret.
    errors = [_field_error(e) for e in exc.errors]
    return _detail(request, 422, errors)


def _field_error(error: dict[str, Any]) -> dict[str, Any]:
    loc, kind = list(error.get("loc", ())), error.get("type", "")
    msg = str(error.get("msg", ""))
    if kind == "missing" and len(loc) == 2 and loc[0] == "body":
        msg = "This request needs a JSON object body."  # loc is ["body", <view parameter>]
    return {"loc": loc, "msg": msg, "type": kind}


@api.exception_handler(DjangoValidationError)
def _model_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    return _detail(request, 422, _django_errors(exc))


@api.exception_handler(InvalidCredentials)
def _invalid_credentials(request: HttpRequest, exc: InvalidCredentials) -> HttpResponse:
    return _detail(request, 422, _field_errors({"credentials": [str(exc)]}))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _detail(request, 404, str(exc) or "Not found.")


api.add_exception_handler(ObjectDoesNotExist, _not_found)
api.add_exception_handler(UnknownSku, _not_found)
api.add_exception_handler(UnknownOutlet, _not_found)


@api.exception_handler(CatalogError)
def _conflict(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _detail(request, 409, str(exc))


api.add_exception_handler(ChannelError, _conflict)  # ScanAlreadyRunning among them


@api.exception_handler(InvalidOrderNumbers)
def _invalid_order_numbers(request: HttpRequest, exc: InvalidOrderNumbers) -> HttpResponse:
    return _detail(request, 422, _field_errors({"order_numbers": [str(exc)]}))


@api.exception_handler(OrderDownloadFailed)
def _marketplace_failed(request: HttpRequest, exc: OrderDownloadFailed) -> HttpResponse:
    # The marketplace, not the request, is at fault: a gateway error, with whether to retry.
    detail = f"{exc} ({'retry later' if exc.retryable else 'check the channel settings'})"
    return _detail(request, 502, detail)


@api.exception_handler(IntegrityError)
def _integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    # A unique rule checked before writing can still lose a race with a concurrent request.
    return _detail(
        request, 409, "Conflicts with data written meanwhile (e.g. a concurrent request); retry."
    )


@api.exception_handler(DataError)
def _data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    return _detail(
        request,
        422,
        [{"loc": ["body"], "msg": "A value is out of range for storage.", "type": "range"}],
    )


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _detail(request, 413, "Request body too large.")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _detail(request, 401, exc.message)
    response["WWW-Authenticate"] = 'Bearer realm="omni"'
    return response


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    response = _detail(request, 429, f"Rate limit reached; retry in {exc.wait} s.")
    response["Retry-After"] = str(exc.wait)
    return response
