"""django-q2 entry points: take ids, call one service, report a line."""

from channels.scans import scan_run as scan_run_service


def scan_run(scan_id: int) -> str:
    scan = scan_run_service(scan_id=scan_id)
    return f"scan {scan.pk} {scan.status}: seen={scan.seen} new={scan.new} removed={scan.removed}"


def inventory_flush(channel_id: int) -> str:
    from channels.inventory import inventory_flush as flush

    result = flush(channel_id=channel_id)
    if result.locked_out:
        return f"channel {channel_id}: another flush is running"
    return (
        f"channel {channel_id}: pushed={result.pushed} retrying={result.retrying} "
        f"failed={result.failed} calls={result.calls}"
    )


def inventory_flush_due() -> str:
    """Safety net on a schedule: flush channels whose retries have come due, those out of
    quick retries included (hourly), and those whose flusher died mid-flush."""
    from channels.inventory import inventory_flush_due as flush_due

    results = flush_due()
    return f"flushed {len(results)} channel(s), pushed={sum(r.pushed for r in results)}"


def inventory_sync_due() -> str:
    from channels.inventory import inventory_sync_due as run_due

    return f"full inventory sync of channels {run_due()}"


def catalog_push(product_id: int, changed: list[str], created_variant_ids: list[int]) -> str:
    from channels.catalog_sync import catalog_push as push

    records = push(product_id=product_id, changed=changed, created_variant_ids=created_variant_ids)
    failed = [r for r in records if r.error]
    return f"product {product_id}: {len(records) - len(failed)} pushed, {len(failed)} failed"


def catalog_delete(product_id: int, items: list[list]) -> str:
    from channels.catalog_sync import catalog_delete as delete

    records = delete(product_id=product_id, items=items)
    return f"product {product_id}: deleted on {sum(not r.error for r in records)} item(s)"


def inventory_sync(channel_id: int, requested_by: str) -> str:
    """The sales-channel manual sync, queued by the API's "Sync inventory now"."""
    from channels.inventory import inventory_sync_run
    from channels.models import Channel, SyncTrigger

    channel = Channel.objects.prefetch_related("outlets").get(pk=channel_id)
    record = inventory_sync_run(
        channel=channel, trigger=SyncTrigger.SALES_CHANNEL_MANUAL, requested_by=requested_by
    )
    return f"inventory sync {record.pk} of channel {channel_id}: {record.message}"


def stock_rules_push(channel_ids: list[int] | None, variant_ids: list[int] | None) -> str:
    """Push what a stock rule, priority channel or bundle change changed (see
    channels.inventory.stock_rules_changed)."""
    from channels.inventory import stock_rules_changed

    queued = stock_rules_changed(channel_ids=channel_ids, variant_ids=variant_ids)
    return f"{queued} listing(s) queued after a rule change"


def sku_rules_rematch(channel_id: int, channel_skus: list[str] | None = None) -> str:
    """Re-match a channel's listings after its SKU rules changed (channels.sku_rules)."""
    from channels.models import Channel
    from channels.sku_rules import sku_rules_rematch as rematch

    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:  # deleted since: its listings went with it
        return f"channel {channel_id}: deleted, nothing to re-match"
    return f"channel {channel_id}: {rematch(channel=channel, channel_skus=channel_skus)}"


def price_sync_run(sync_id: int) -> str:
    """Run a queued price sync (channels.pricing)."""
    from channels.pricing import price_sync_run as run

    sync = run(sync_id=sync_id)
    return f"price sync {sync.pk} {sync.status}: pushed={sync.pushed} failed={sync.failed}"


def price_syncs_due() -> str:
    """Safety net on a schedule: resume price syncs whose worker died, queue again those whose
    task was lost, retry those that failed for a reason that may pass."""
    from channels.pricing import price_syncs_due as due

    report = due()
    return (
        f"price syncs: resumed {report.resumed}, queued again {report.requeued}, "
        f"retried {report.retried}"
    )
