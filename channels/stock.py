"""The quantity a channel should show for a POS variant (BRIEF §4)."""

from collections.abc import Iterable

from django.db.models import F, Sum

from catalog.models import Stock
from channels.models import Channel


def channel_quantities(*, channel: Channel, variant_ids: Iterable[int]) -> dict[int, int]:
    """Available stock (on hand − reserved) summed over the channel's outlets, less its buffer,
    never below zero; one aggregate query. Variants with no stock rows get 0.
    """
    ids = list(variant_ids)
    rows = (
        Stock.objects.filter(variant_id__in=ids, outlet_id__in=channel.stock_outlet_ids())
        .values("variant_id")
        .annotate(available=Sum(F("on_hand") - F("reserved")))
    )
    available = {row["variant_id"]: row["available"] for row in rows}
    return {vid: max(0, (available.get(vid) or 0) - channel.buffer) for vid in ids}
