"""The edge of the JSON API: the request-size limit, checked before anything reads the body,
and JSON answers for the routing errors Django would otherwise answer in HTML."""

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/"
# The one endpoint whose body may be large: 10,000 stock rows.
BULK_PATHS = ("/api/stock/bulk",)


def body_limit(path: str) -> int:
    """The largest body, in bytes, accepted for a request to `path`."""
    if path.rstrip("/") in BULK_PATHS:
        return settings.API_BULK_MAX_BODY_BYTES
    return settings.API_MAX_BODY_BYTES


class ApiEdgeMiddleware:
    """For /api/ requests: 413 when the declared Content-Length is over the path's limit (the
    body is never read; a body sent without Content-Length is not read by Django at all), and
    JSON instead of HTML for an unknown path (404) or method (405)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if response.status_code in (404, 405) and "json" not in response.get("Content-Type", ""):
            detail = (
                f"No API endpoint at {request.path}; see /api/docs."
                if response.status_code == 404
                else f"{request.method} is not allowed on {request.path}."
            )
            replaced = _json(response.status_code, detail)
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return _json(400, "Content-Length must be a whole number of bytes.")
        limit = body_limit(request.path)
        if length > limit:
            return _json(
                413, f"Request body of {length} bytes is over this endpoint's limit of {limit}."
            )
        return None


def _json(status: int, detail: str) -> HttpResponse:
    return HttpResponse(
        json.dumps({"detail": detail}), status=status, content_type="application/json"
    )
