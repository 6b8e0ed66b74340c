"""Admin pieces shared by the apps."""

from typing import Any, ClassVar

from django.core.paginator import Paginator
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """For tables that only grow (ledgers, logs): counts at most COUNT_CAP + 1 rows.

    An exact COUNT(*) over millions of rows on every changelist load is wasted work; staff see
    "10,000+" pages' worth and filter down instead.
    """

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


class ReadOnlyAdminMixin:
    """For a ModelAdmin or an inline whose rows only services write (logs, ledgers, tab views):
    the admin refuses to add, change or delete them, whatever the user's permissions.

    `denied_permissions` narrows what is refused, for an admin that still lets staff change or
    delete a row by hand (say {"add"}); what it does not deny is left to Django's own checks.
    Put the mixin before the ModelAdmin base class.
    """

    denied_permissions: ClassVar[frozenset[str]] = frozenset({"add", "change", "delete"})

    # `*obj`: a ModelAdmin's has_add_permission takes (request), an inline's (request, obj).
    def has_add_permission(self, request: HttpRequest, *obj: Any) -> bool:
        if "add" in self.denied_permissions:
            return False
        return super().has_add_permission(request, *obj)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if "change" in self.denied_permissions:
            return False
        return super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if "delete" in self.denied_permissions:
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc]


# Inline, so a badge reads the same on any admin page, with or without the apps' stylesheets.
BADGE_STYLE = (
    "display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-weight:600;"
    "font-size:0.85em;white-space:nowrap;background:{}"
)
GREEN, GREY, ORANGE, RED = "#2e7d32", "#757575", "#ef6c00", "#c62828"


def state_badge(label: str, colour: str) -> str:
    """A coloured pill naming a row's state, for a changelist column."""
    return format_html('<span style="{}">{}</span>', BADGE_STYLE.format(colour), label)


# A message column wide enough to read: without it a changelist squeezes it to a word a line.
MESSAGE_STYLE = "display:inline-block;min-width:16em"


def clipped(text: str, limit: int) -> str:
    """A message for a changelist column: at least 16em wide, cut at the last word within
    `limit` characters with "…" and the whole of it in the tooltip."""
    if len(text) <= limit:
        return format_html('<span style="{}">{}</span>', MESSAGE_STYLE, text) if text else ""
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return format_html('<span style="{}" title="{}">{}…</span>', MESSAGE_STYLE, text, cut)
