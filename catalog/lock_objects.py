"""Row locks for stock. Every caller locks in (variant, outlet) order, so none can deadlock."""

from collections.abc import Sequence

from catalog.models import Stock


def stocks_locked(variant_ids: Sequence[int], outlet_ids: Sequence[int]) -> list[Stock]:
    """Lock the stock rows of these variants at these outlets, in (variant, outlet) order.

    On SQLite `select_for_update` is a no-op; its IMMEDIATE transactions serialise writers instead.
    """
    return list(
        Stock.objects.filter(variant_id__in=variant_ids, outlet_id__in=outlet_ids)
        .order_by("variant_id", "outlet_id")
        .select_for_update()
    )
