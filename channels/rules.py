"""What a change of a channel's settings sets off: its listings re-matched when its SKU rules
change, prices pushed when its price rules change, quantities pushed when its stock rules,
outlets or priority change.

Called by both places a channel is edited (channels.services.channel_save for the API, the
channel admin's save), after the save; the work itself runs in the worker once the save commits.
"""

from collections.abc import Collection

from channels.inventory import stock_rules_changed_request
from channels.models import Channel
from channels.pricing import price_rules_changed
from channels.sku_rules import sku_rules_rematch_request
from channels.stock import CHANNEL_RULE_FIELDS, PRIORITY_FIELDS

STOCK_FIELDS = CHANNEL_RULE_FIELDS | {"outlets", "order_outlet"}
SKU_FIELDS = frozenset({"sku_strip_prefixes", "sku_strip_suffixes"})
PRICE_FIELDS = frozenset(
    {
        "currency",
        "price_markup_percent",
        "price_markup_amount",
        "price_round_step",
        "price_round_mode",
        "price_ending",
    }
)


def channel_settings_changed(
    *, channel: Channel, changed: Collection[str], was_priority: bool, requested_by: str = ""
) -> None:
    """Queue what the change of the `changed` fields calls for, in the save's transaction.

    A priority channel's threshold, priority or pause changes what every other channel is
    sent, so all channels are checked then; a stock rule only its own channel. New SKU rules
    re-match the channel's listings (and push those newly matched); new price rules push every
    listed variant's price.
    """
    changed = set(changed)
    if changed & PRIORITY_FIELDS and (channel.is_priority or was_priority):
        stock_rules_changed_request()
    elif changed & STOCK_FIELDS:
        stock_rules_changed_request(channel_ids=[channel.pk])
    if changed & SKU_FIELDS:
        sku_rules_rematch_request(channel_id=channel.pk)
    if changed & PRICE_FIELDS:
        price_rules_changed(channel=channel, requested_by=requested_by)
