"""Admin pieces shared by the apps."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
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


class KnownCountPaginator(Paginator):
    """A Paginator given its count: rows the page already counted, or could count more cheaply
    than by counting its queryset."""

    def __init__(self, object_list: Any, per_page: int, *args: Any, count: int, **kwargs: Any):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count


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


def with_note(value: Any, note: Any) -> str:
    """A changelist cell of two lines: `value`, and `note` muted under it (one column where two
    would widen the list)."""
    return format_html('{}<br><span class="omni-muted">{}</span>', value, note)


# A message column wide enough to read: without it a changelist squeezes it to a word a line.
MESSAGE_STYLE = "display:inline-block;min-width:16em"


def clipped(text: str, limit: int) -> str:
    """A message for a changelist column: at least 16em wide, cut at the last word within
    `limit` characters with "…" and the whole of it in the tooltip."""
    if len(text) <= limit:
        return format_html('<span style="{}">{}</span>', MESSAGE_STYLE, text) if text else ""
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return format_html('<span style="{}" title="{}">{}…</span>', MESSAGE_STYLE, text, cut)


class DateRangeFilter(admin.FieldListFilter):
    """A "from … to …" pair of dates for a datetime column, both days included, as
    `("created_at", DateRangeFilter)` in `list_filter`.

    The query string carries `<field>__from` and `<field>__to` (YYYY-MM-DD, either may be
    left out), so a range is a link staff can share. Days are the site's time zone, and the
    filter compares the column itself (>= the first midnight, < the midnight after the last
    day), so the column's index serves it. A date that is not one gets the admin's usual
    "?e=1" answer.
    """

    template = "admin/omni/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path) -> None:
        self.from_param = f"{field_path}__from"
        self.to_param = f"{field_path}__to"
        super().__init__(field, request, params, model, model_admin, field_path)

    def expected_parameters(self) -> list[str]:
        return [self.from_param, self.to_param]

    def _day(self, name: str) -> date | None:
        values = self.used_parameters.get(name)
        value = values[-1] if isinstance(values, list) else values
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise IncorrectLookupParameters(f"{value!r} is not a date (YYYY-MM-DD)") from exc

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        first, last = self._day(self.from_param), self._day(self.to_param)
        zone = timezone.get_current_timezone()
        if first:
            start = datetime.combine(first, time.min, tzinfo=zone)
            queryset = queryset.filter(**{f"{self.field_path}__gte": start})
        if last:
            end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
            queryset = queryset.filter(**{f"{self.field_path}__lt": end})
        return queryset

    def choices(self, changelist) -> Iterator[dict[str, Any]]:
        # One "choice": what the template needs to draw its form, keeping the other filters,
        # the search and the order, and dropping the page number.
        ours = {self.from_param, self.to_param}
        keep = [
            (key, value)
            for key, values in changelist.params.items()
            if key not in ours and key != PAGE_VAR
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "from_param": self.from_param,
            "to_param": self.to_param,
            "from_value": self._value(self.from_param),
            "to_value": self._value(self.to_param),
            "keep": keep,
            "clear_url": changelist.get_query_string(remove=[*ours, PAGE_VAR]),
            "active": any(self._value(name) for name in ours),
        }

    def _value(self, name: str) -> str:
        values = self.used_parameters.get(name)
        return (values[-1] if isinstance(values, list) else values) or ""


STATE_COLOURS = {"queued": GREY, "running": "#1565c0", "succeeded": GREEN, "failed": RED}


@dataclass(frozen=True)
class Progress:
    """A piece of long work as staff watch it: a scan, an inventory sync, an import.

    `state` is one of STATE_COLOURS (another outcome, say "to confirm", is drawn orange);
    `total` is None while unknown (the bar then slides instead of filling). `poll_url` answers
    the same bar rendered anew (see `progress_bar`); the page's progress.js asks it every 2 s
    while the work is queued or running.
    """

    state: str
    label: str  # the badge: "Running", "Succeeded", "Failed", ...
    done: int = 0
    total: int | None = None
    unit: str = "rows"
    started_at: datetime | None = None
    error: str = ""
    poll_url: str = ""

    @property
    def live(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return 1.0 if self.state == "succeeded" else None
        return min(self.done / self.total, 1.0)

    @property
    def percent(self) -> int:
        return round((self.fraction or 0) * 100)

    @property
    def badge(self) -> str:
        return state_badge(self.label, STATE_COLOURS.get(self.state, ORANGE))

    @property
    def counts(self) -> str:
        if self.state == "queued" and not self.done:
            return "waiting for a worker"
        if self.total:
            return f"{self.done:,} of {self.total:,} {self.unit}"
        return f"{self.done:,} {self.unit}" if self.done or not self.live else ""

    @property
    def estimate(self) -> str:
        """ "about 3 min left", from the pace so far; "" until there is a pace to go by."""
        if self.state != "running" or not self.total or not self.done or not self.started_at:
            return ""
        elapsed = (timezone.now() - self.started_at).total_seconds()
        left = elapsed / self.done * max(self.total - self.done, 0)
        if left < 60:
            return f"about {max(round(left), 1)} s left"
        return f"about {round(left / 60)} min left"


def progress_bar(progress: Progress) -> str:
    """The bar's HTML, for a changelist column, a readonly field or the poll answer alone."""
    return render_to_string("admin/omni/progress.html", {"p": progress})
