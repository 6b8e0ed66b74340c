"""A Content-Security-Policy header on the admin pages.

Scripts come only from our own static files. The admin templates have one inline event
handler (the product tabs' channel picker submits its form on change); it is allowed by its
hash alone. Styles may be inline: the sync-log and tab templates carry `<style>` blocks and
computed `style` attributes (chart bars, status badges), and CSS cannot run script.
Nothing may frame the admin, and forms post only to it.

The API docs page (/api/docs) is left alone: its Swagger UI has needs of its own.
"""

import base64
import hashlib
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

HEADER = "Content-Security-Policy"

# Inline event handlers in templates/, each allowed by its hash. A new one needs its line
# here (tests/test_security.py checks that every handler in the templates is listed).
INLINE_HANDLERS = [
    "this.form.submit()",  # templates/admin/channels/tab_change_list.html
]


def source_hash(source: str) -> str:
    """The CSP hash source of an inline script or handler: 'sha256-<base64 digest>'."""
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    return f"'sha256-{digest}'"


ADMIN_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'unsafe-hashes'", *map(source_hash, INLINE_HANDLERS)],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy_header(policy: dict[str, list[str]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """Adds `ADMIN_POLICY` to every answer under the admin's URL. Cost: one string prefix test
    per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = policy_header(ADMIN_POLICY)
        self._prefix = ""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self._admin_prefix()) and HEADER not in response:
            response[HEADER] = self.header
        return response

    def _admin_prefix(self) -> str:
        if not self._prefix:
            self._prefix = reverse("admin:index")
        return self._prefix
