"""Admin pieces shared by the apps."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """For tables that only grow (ledgers, logs): counts at most COUNT_CAP + 1 rows.

    An exact COUNT(*) over millions of rows on every changelist load is wasted work; staff see
    "10,000+" pages' worth and filter down instead.
    """

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()
