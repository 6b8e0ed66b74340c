"""Proof that a paged read of a marketplace's list saw all of it.

Each marketplace says in its own way whether a list goes on (Shopee `has_next_page`, TikTok a
`next_page_token`, Shopify `pageInfo.hasNextPage`, WooCommerce `X-WP-TotalPages`, Lazada only
its `total_products`) and most say how long the list is. A pager feeds every page it receives to
a `PageTally`, which raises `IncompleteRead` as soon as the read is provably incomplete:

- a page comes back empty while the marketplace says more follow;
- a page comes back with fewer entries than were asked for while more follow (offset and
  cursor pages alike: only the last page of a list may be short);
- the list ends with fewer entries read than the marketplace's own total, by more than the
  churn allowance.

Churn allowance. A list changes while it is read, and that is no fault: an entry added behind
the read position is never returned but raises the total by one; one deleted behind an offset
moves the rest up and lowers it by one. Every such change shows in the totals the marketplace
reports page after page, so the allowance is the sum of those changes during the read, plus
CHURN_SLACK for an addition and a deletion falling between the same two pages (the total does
not move, and one entry may go unread).
"""

from dataclasses import dataclass
from typing import Any

from channels.adapters.base import AdapterError

INCOMPLETE_READ = "incomplete_read"
CHURN_SLACK = 2


class IncompleteRead(AdapterError):
    """The marketplace answered, but not with the whole list: nothing may be concluded from
    what was not seen. Retryable: a later read usually gets every page."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, code=INCOMPLETE_READ)


@dataclass(slots=True)
class PageTally:
    """Counts one paged read of one list and refuses it once it is provably incomplete.

    `noun` names the entries as the marketplace counts them ("items", "products"): totals
    count those, not omni's listings.
    """

    service: str
    noun: str
    page_size: int
    pages: int = 0
    read: int = 0
    total: int | None = None
    churn: int = 0

    def page(
        self,
        size: int,
        *,
        more: bool,
        total: int | None = None,
        new: int | None = None,
        number: int | None = None,
    ) -> None:
        """Record one page of `size` entries (`new` of them not seen before, when the pager
        re-reads), with the marketplace's own "more follow" signal and total.

        Raises IncompleteRead for an empty or short page while more follow, and for a last page
        that leaves the read short of the total by more than the churn allowance.
        """
        self.pages += 1
        self.read += size if new is None else new
        if total is not None:
            if self.total is not None:
                self.churn += abs(total - self.total)
            self.total = total
        where = f"page {self.pages if number is None else number} of its {self.noun}"
        if more and size == 0:
            raise IncompleteRead(
                f"{self.service} returned {where} empty while saying more follow ({self._so_far()})"
            )
        if more and size < self.page_size:
            raise IncompleteRead(
                f"{self.service} returned {where} with {size} of the {self.page_size} asked "
                f"for while saying more follow ({self._so_far()})"
            )
        if not more:
            self._check_total()

    def cannot_continue(self, reason: str) -> IncompleteRead:
        """The error for a list that says it goes on but gives no way to ask for the rest."""
        return IncompleteRead(
            f"{self.service} said more {self.noun} follow page {self.pages} but {reason} "
            f"({self._so_far()})"
        )

    def _check_total(self) -> None:
        if self.total is None:
            return
        missing = self.total - self.read
        if missing > self.churn + CHURN_SLACK:
            raise IncompleteRead(
                f"{self.service} ended its list of {self.noun} after page {self.pages} with "
                f"{missing} of its {self.total} {self.noun} not read"
                f"{f' (its total moved by {self.churn} during the read)' if self.churn else ''}"
            )

    def _so_far(self) -> str:
        of_total = f" of {self.total}" if self.total is not None else ""
        return f"{self.read}{of_total} {self.noun} read"


def reported_total(value: Any) -> int | None:
    """A count as a marketplace sends it (a number or a numeric string); None when it sent
    none or something unreadable, so no check leans on it."""
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
