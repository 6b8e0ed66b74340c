"""Marketplace orders as POS documents, and the sync log of every step that made them.

Documents (BRIEF §5): a SalesOrder with its lines reserves stock at the channel's order outlet;
its Invoice turns the reservation into a deduction; an OutboundLogistic records the parcel; a
Payment records the money. Voiding returns the stock. Each line keeps what it did to stock
(`reserved`, `deducted`), so a void gives back exactly what was taken and nothing more.

The SyncLog is append-only: one row per step per attempt, with a status code staff read as
200 done, 409 already done, 400 wrong status, 404 missing in the POS.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from catalog.models import Outlet, Variant
from channels.adapters.base import OrderState
from channels.models import Channel
from omni.models import TimeStampedModel


class State(models.TextChoices):
    """omni's order states (channels.adapters.base.OrderState), as stored."""

    UNPAID = OrderState.UNPAID.value, "Unpaid"
    PAID = OrderState.PAID.value, "Paid"
    SHIPPED = OrderState.SHIPPED.value, "Shipped"
    DELIVERED = OrderState.DELIVERED.value, "Delivered"
    CANCELLED = OrderState.CANCELLED.value, "Cancelled"
    RETURNED = OrderState.RETURNED.value, "Returned"


class SalesOrder(TimeStampedModel):
    """A marketplace order in the POS. One per channel and order number, whoever creates it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open (stock reserved)"
        INVOICED = "invoiced", "Invoiced"
        VOIDED = "voided", "Voided"

    channel = models.ForeignKey(Channel, models.PROTECT, related_name="sales_orders")
    order_number = models.CharField(max_length=64)
    remote_id = models.CharField("marketplace order id", max_length=64, blank=True)
    # The outlet it reserved at, kept: the channel's order outlet may change later, and a void
    # must return stock where it was taken.
    outlet = models.ForeignKey(Outlet, models.PROTECT, related_name="sales_orders")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    remote_status = models.CharField("marketplace status", max_length=32)
    state = models.CharField(max_length=10, choices=State.choices)
    currency = models.CharField(max_length=3, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    ordered_at = models.DateTimeField()
    remote_updated_at = models.DateTimeField("updated on the marketplace")
    unmapped_lines = models.PositiveSmallIntegerField(
        default=0, help_text="Lines whose SKU matches no POS variant: kept, with no stock change."
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-ordered_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "order_number"], name="synclogs_order_unique_number"
            ),
        ]
        indexes = [
            # The sales orders changelist: newest first, and its order date range filter.
            # (Its order number and marketplace order id searches are trigram indexes,
            # migration 0004, as Django cannot declare them.)
            models.Index(fields=["-ordered_at", "-id"], name="synclogs_order_recent"),
        ]

    def __str__(self) -> str:
        return self.order_number


class SalesOrderLine(models.Model):
    order = models.ForeignKey(SalesOrder, models.CASCADE, related_name="lines")
    line_id = models.CharField(max_length=64)
    variant = models.ForeignKey(
        Variant, models.PROTECT, null=True, blank=True, related_name="sales_order_lines"
    )
    sku = models.CharField("SKU on the channel", max_length=120, blank=True)
    title = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    # What this line currently holds against stock at the order's outlet.
    reserved = models.PositiveIntegerField(default=0)
    deducted = models.PositiveIntegerField(default=0)
    # A bundle's line (catalog.bundles) holds its leaf components' stock instead, as the bundle
    # was made when the line first held stock, so a void gives back exactly what was taken
    # even if the bundle's components have changed since; `reserved` and `deducted` then count
    # whole bundles.
    components = models.JSONField(
        default=list,
        blank=True,
        help_text='A bundle\'s components as sold: [{"variant_id", "sku", "per_unit", '
        '"reserved", "deducted"}]; empty for any other line.',
    )

    class Meta:
        ordering = ["order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_id"], name="synclogs_line_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku or self.title}"

    @property
    def is_unmapped(self) -> bool:
        return self.variant_id is None


class Invoice(TimeStampedModel):
    order = models.OneToOneField(SalesOrder, models.PROTECT, related_name="invoice")
    total = models.DecimalField(max_digits=14, decimal_places=2)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"INV-{self.pk:08d}"


class OutboundLogistic(TimeStampedModel):
    order = models.OneToOneField(SalesOrder, models.PROTECT, related_name="outbound_logistic")
    courier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.tracking_number or f"shipment of order {self.order_id}"


class Payment(TimeStampedModel):
    order = models.OneToOneField(SalesOrder, models.PROTECT, related_name="payment")
    invoice = models.ForeignKey(Invoice, models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    method = models.CharField(max_length=60, blank=True)
    paid_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"payment of {self.amount} for order {self.order_id}"


class SyncLog(models.Model):
    """One step of one order, as it was attempted. Never updated; pruned after N days."""

    class Action(models.TextChoices):
        CREATE_ORDER = "create_order", "Create Order"
        CONVERT_ORDER_TO_INVOICE = "convert_order_to_invoice", "Convert Order To Invoice"
        CREATE_INVOICE = "create_invoice", "Create Invoice"
        CREATE_OUTBOUND_LOGISTIC = "create_outbound_logistic", "Create Outbound Logistic"
        ADD_PAYMENT = "add_payment", "Add Payment"
        VOID_INVOICE = "void_invoice", "Void Invoice"

    class Status(models.IntegerChoices):
        OK = 200, "200 OK"
        CONFLICT = 409, "409 Conflict"
        WRONG_STATUS = 400, "400 Bad Request"
        MISSING = 404, "404 Not Found"

    class Origin(models.TextChoices):
        SCHEDULE = "schedule", "Scheduled download"
        WEBHOOK = "webhook", "Webhook"
        MANUAL = "manual", "Manual Download Order"
        RECONCILE = "reconcile", "Missing order check"

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="sync_logs")
    order_number = models.CharField(max_length=64)
    action = models.CharField("step", max_length=32, choices=Action.choices)
    status = models.PositiveSmallIntegerField(choices=Status.choices)
    origin = models.CharField("trigger", max_length=10, choices=Origin.choices)
    # A step that was done (200) but left something for staff to fix: order lines whose SKU the
    # POS does not know, stock that was short. Blank when there is nothing to look at.
    attention = models.CharField(
        "needs attention",
        max_length=300,
        blank=True,
        help_text="Why staff should look at this row although its step was done.",
    )
    sales_order = models.ForeignKey(
        SalesOrder, models.SET_NULL, null=True, blank=True, related_name="sync_logs"
    )
    # {"sales_order": id, "invoice": id, ...}: the documents this step wrote or found done.
    documents = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    message = models.TextField()
    # What the step was based on (the marketplace order) and what it did; never credentials.
    request = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    response = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    actor = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The changelists' default order and the date filter; prune_synclogs' cut-off.
            models.Index(fields=["-created_at", "-id"], name="synclogs_log_recent"),
            # A tab (action) with the status badge filter, newest first.
            models.Index(fields=["action", "status", "-created_at"], name="synclogs_log_tab"),
            # The channel filter, alone or with a tab, newest first.
            models.Index(fields=["channel", "action", "-created_at"], name="synclogs_log_channel"),
            # The Order Log (one channel's order number, oldest first) and missing-order checks.
            models.Index(
                fields=["channel", "order_number", "created_at"], name="synclogs_log_order"
            ),
            # sync_report(): distinct orders per channel, step, status and day over a date
            # range, answered from the index alone (an index-only scan on PostgreSQL); the
            # order number is what it counts (a key column rather than INCLUDE, which SQLite
            # lacks). Also the "each order once" view of a date range.
            models.Index(
                fields=["created_at", "channel", "action", "status", "order_number"],
                name="synclogs_log_report_orders",
            ),
            # The "Needs attention" filter and the report's attention counts: a few rows
            # among millions, so a partial index.
            models.Index(
                fields=["created_at", "channel", "action"],
                condition=~models.Q(attention=""),
                name="synclogs_log_attention",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.order_number}: {self.status}"

    @property
    def needs_attention(self) -> bool:
        return bool(self.attention)


class OrderDownload(models.Model):
    """Where a channel's scheduled order download stands: its watermark and its last run."""

    channel = models.OneToOneField(Channel, models.CASCADE, related_name="order_download")
    synced_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Orders updated before this time were downloaded; the next run starts here "
        "(less an overlap). Moves only when a run succeeds.",
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    orders_seen = models.PositiveIntegerField(default=0, help_text="In the last run.")
    # One download per channel at a time: a short lease renewed by the run's heartbeat
    # (omni.leases), so a crashed run holds nothing up for more than half a minute.
    locked_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["channel"]

    def __str__(self) -> str:
        return f"order download of channel {self.channel_id}"


class WebhookEvent(models.Model):
    """A verified marketplace push, kept once per delivery id.

    A push about an order is queued for processing, unless its channel is paused: then it is
    `held`, answered like any other (so the marketplace does not retry it), and queued when
    the channel is active again (synclogs.webhooks.webhooks_release).
    """

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="webhook_events")
    delivery_id = models.CharField(max_length=100)
    topic = models.CharField(max_length=40)
    order_number = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    held = models.BooleanField(
        default=False, help_text="Received while the channel was paused; processed on resume."
    )
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "delivery_id"], name="synclogs_webhook_unique_delivery"
            ),
        ]
        indexes = [
            # prune_synclogs: events older than the cut-off.
            models.Index(fields=["received_at"], name="synclogs_webhook_received"),
            # Resuming a channel: its held events, a handful among millions.
            models.Index(
                fields=["channel"], condition=models.Q(held=True), name="synclogs_webhook_held"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} push {self.delivery_id[:12]} on channel {self.channel_id}"


class ReportSnapshot(models.Model):
    """The Sync Logs report of the last `days` days as last computed (synclogs.services.
    report_snapshot), one row per `days`.

    Counting distinct orders over a week of a busy shop's log takes seconds, so staff read
    this copy while it is fresh (nothing logged since, or under a minute old). It counted the
    rows with id ≤ `up_to_id`; its links carry that bound, so each opens exactly what its
    number counted even after more rows were logged.
    """

    days = models.PositiveSmallIntegerField(unique=True)
    since = models.DateTimeField()
    until = models.DateTimeField()
    up_to_id = models.BigIntegerField(default=0)
    computed_at = models.DateTimeField()
    # How long the count took: past REPORT_INLINE_SECONDS, a stale copy is shown while the
    # worker counts again, rather than making staff wait.
    compute_seconds = models.FloatField(default=0)
    # [{"total": row, "steps": [row, ...]}, ...]: selectors.ChannelReport as JSON.
    channels = models.JSONField(default=list, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["days"]

    def __str__(self) -> str:
        return f"report of {self.days} days computed at {self.computed_at:%Y-%m-%d %H:%M:%S}"


# --- the Sync Logs tabs (one per step; the SyncLog admin itself is "All") --------------------


class _ActionManager(models.Manager["SyncLog"]):
    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action

    def get_queryset(self) -> models.QuerySet["SyncLog"]:
        return super().get_queryset().filter(action=self.action)


class CreateOrderLog(SyncLog):
    objects = _ActionManager(SyncLog.Action.CREATE_ORDER)

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Create Order"


class ConvertOrderToInvoiceLog(SyncLog):
    objects = _ActionManager(SyncLog.Action.CONVERT_ORDER_TO_INVOICE)

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Convert Order To Invoice"


class CreateInvoiceLog(SyncLog):
    objects = _ActionManager(SyncLog.Action.CREATE_INVOICE)

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Create Invoice"


class CreateOutboundLogisticLog(SyncLog):
    objects = _ActionManager(SyncLog.Action.CREATE_OUTBOUND_LOGISTIC)

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Create Outbound Logistic"


class AddPaymentLog(SyncLog):
    objects = _ActionManager(SyncLog.Action.ADD_PAYMENT)

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Add Payment"


class VoidInvoiceLog(SyncLog):
    objects = _ActionManager(SyncLog.Action.VOID_INVOICE)

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Void Invoice"


# Tab order as in the Sync Logs menu, with the proxy model of each step.
ACTION_MODELS: dict[str, type[SyncLog]] = {
    SyncLog.Action.CREATE_ORDER: CreateOrderLog,
    SyncLog.Action.CONVERT_ORDER_TO_INVOICE: ConvertOrderToInvoiceLog,
    SyncLog.Action.CREATE_INVOICE: CreateInvoiceLog,
    SyncLog.Action.CREATE_OUTBOUND_LOGISTIC: CreateOutboundLogisticLog,
    SyncLog.Action.ADD_PAYMENT: AddPaymentLog,
    SyncLog.Action.VOID_INVOICE: VoidInvoiceLog,
}
