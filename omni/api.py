"""The JSON API root: authentication, the app routers, and domain errors mapped to HTTP once.

Every operation needs an API token (omni.auth.TokenAuth) unless it says `auth=None`: the
health probe, and the marketplace webhooks, which are authenticated by their signature.

Error answers are JSON: `{"detail": "…"}`, or for 422 `{"detail": [{"loc", "msg", "type"}]}`
naming each refused field. 400 malformed body, 401 no/unknown/revoked token, 403 missing
scope, 404 unknown id, 409 refused by a domain rule (nothing written), 413 body too large,
422 invalid value, 429 over the rate limit (with Retry-After).
"""

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from catalog.exceptions import CatalogError, UnknownOutlet, UnknownSku
from channels.exceptions import ChannelError, InvalidCredentials
from omni.auth import TokenAuth
from synclogs.exceptions import InvalidOrderNumbers, OrderDownloadFailed

api = NinjaAPI(
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
)

api.add_router("/", "catalog.api.router")
api.add_router("/", "channels.api.router")
api.add_router("/", "synclogs.api.router")


@api.get("/health", tags=["meta"], summary="Liveness probe", auth=None)
def health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


# --- errors ----------------------------------------------------------------------------------


def _detail(request: HttpRequest, status: int, detail: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


def _field_errors(errors: dict[str, list[str]], source: str = "body") -> list[dict[str, Any]]:
    """Django's {"variants.1.sku": [...]} → [{"loc": ["body", "variants", 1, "sku"], ...}]."""
    out = []
    for key, messages in errors.items():
        path = [] if key == "__all__" else [int(p) if p.isdigit() else p for p in key.split(".")]
        out.extend({"loc": [source, *path], "msg": m, "type": "invalid"} for m in messages)
    return out


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    # Only where and why: never the submitted value, which may be a secret.
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors
    ]
    return _detail(request, 422, errors)


@api.exception_handler(DjangoValidationError)
def _model_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        return _detail(request, 422, _field_errors(exc.message_dict))
    return _detail(request, 422, _field_errors({"__all__": exc.messages}))


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
