"""Channels (connected marketplace shops), their listings as last scanned, and scan records."""

import copy
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from catalog.models import Outlet, Product, StockMovement, Variant
from channels.credentials_store import EncryptedJSONField
from channels.marketplaces import BY_KIND, MARKETPLACES
from omni.models import TimeStampedModel, created_at_unindexed

# The most calls in flight a channel may ask for: each takes a thread of the adapter's pool.
MAX_CONCURRENT_CALLS = 64
# The most calls a second a channel may be given as its quota.
MAX_CALLS_PER_SECOND = 1000


class Channel(TimeStampedModel):
    # One member per row of the marketplace registry, in its order: Kind.SHOPEE = "shopee",
    # labelled "Shopee", and so on (a new row changes the field's choices: makemigrations).
    Kind = models.TextChoices(
        "Kind",
        [(m.kind.upper(), (m.kind, m.label)) for m in MARKETPLACES],
        module=__name__,
        qualname="Channel.Kind",
    )

    class SyncMode(models.TextChoices):
        NONE = "none", "Do not synchronize"
        REALTIME = "realtime", "Real-time adjustment"
        FULFILLMENT = "fulfillment", "Synchronize with fulfillment channel"

    class DuplicatePolicy(models.TextChoices):
        SKIP = "skip", "Skip listings that share a SKU"
        UPDATE_ALL = "update_all", "Update every listing that shares a SKU (may oversell)"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100, unique=True)
    api_base_url = models.URLField(
        "API base URL",
        max_length=300,
        blank=True,
        help_text="Leave blank for the marketplace's production host; set it for a sandbox, "
        "a regional host or an emulator.",
    )
    # Write-only: validated per kind by the adapter's schema, never shown back anywhere;
    # encrypted at rest (channels/credentials_store.py).
    credentials = EncryptedJSONField(default=dict, blank=True, editable=False)
    inventory_sync_mode = models.CharField(
        max_length=20, choices=SyncMode.choices, default=SyncMode.REALTIME
    )
    duplicate_sku_policy = models.CharField(
        "duplicate SKUs",
        max_length=20,
        choices=DuplicatePolicy.choices,
        default=DuplicatePolicy.SKIP,
    )
    outlets = models.ManyToManyField(
        Outlet,
        related_name="selling_channels",
        blank=True,
        help_text="Outlets whose available stock this channel sells (the order outlet is "
        "always included).",
    )
    order_outlet = models.ForeignKey(
        Outlet,
        models.PROTECT,
        related_name="order_channels",
        help_text="Where this channel's orders reserve and deduct stock.",
    )
    # Allocation rules (channels.allocation): the quantity sent is the available stock over
    # the channel's outlets through, in this order, the share, the maximum, the low-stock
    # cut-off and the buffer, never below zero; then the priority channels' hold.
    stock_share_percent = models.PositiveSmallIntegerField(
        "share of available stock (%)",
        default=100,
        validators=[MaxValueValidator(100)],
        help_text="The channel is sent this share of the available stock, rounded down.",
    )
    stock_maximum = models.PositiveIntegerField(
        "list at most",
        null=True,
        blank=True,
        help_text="Never list more than this many units. Blank: no maximum.",
    )
    stock_cutoff = models.PositiveIntegerField(
        "low-stock cut-off",
        null=True,
        blank=True,
        help_text="Send 0 when the available stock is below this, keeping the last units for "
        "the shop or a priority channel. Blank: no cut-off.",
    )
    buffer = models.PositiveIntegerField(
        default=0,
        help_text="Units held back from the channel: taken off what the rules above leave.",
    )
    is_priority = models.BooleanField(
        "priority channel",
        default=False,
        help_text="When a SKU runs low (at or below the priority threshold), only priority "
        "channels are sent its stock; the others are sent 0.",
    )
    priority_threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For a priority channel: when a SKU's available stock is at or below this, "
        "every channel that is not a priority channel is sent 0 for it.",
    )
    # SKU mapping rules (channels.sku_rules): how a SKU on the channel becomes a POS SKU.
    sku_strip_prefixes = models.CharField(
        "strip SKU prefixes",
        max_length=300,
        blank=True,
        help_text="Comma-separated, e.g. “TKP-, SHP-”: taken off the start of a channel SKU "
        "before it is matched (letter case ignored).",
    )
    sku_strip_suffixes = models.CharField(
        "strip SKU suffixes",
        max_length=300,
        blank=True,
        help_text="Comma-separated, e.g. “-PROMO”: taken off the end of a channel SKU before "
        "it is matched (letter case ignored).",
    )
    # Price rules (channels.pricing): the price sent is the POS retail price through these.
    currency = models.CharField(
        max_length=3,
        default="IDR",
        validators=[RegexValidator(r"^[A-Z]{3}$", "Three capital letters, e.g. IDR or USD.")],
        help_text="The currency the channel sells in (ISO 4217). Prices are sent only when it "
        "is the POS currency: omni does not convert.",
    )
    price_markup_percent = models.DecimalField(
        "markup (%)",
        max_digits=6,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("1000"))],
        help_text="Added to the POS retail price; negative for a discount.",
    )
    price_markup_amount = models.DecimalField(
        "markup (amount)",
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Added after the percentage, in the channel's currency.",
    )
    price_round_step = models.DecimalField(
        "round to a step of",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="E.g. 100 or 1,000. Blank: the price is not rounded.",
    )
    price_round_mode = models.CharField(
        "rounding",
        max_length=10,
        choices=[("nearest", "To the nearest"), ("up", "Up"), ("down", "Down")],
        default="nearest",
    )
    price_ending = models.DecimalField(
        "ending in",
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="With a step: round to a price ending in this, e.g. 900 with a step of 1,000 "
        "gives 12,900. Must be less than the step.",
    )
    is_active = models.BooleanField(
        "active", default=True, help_text="Paused channels sync nothing."
    )
    last_scan_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Watermark of the last successful scan; Scan Updated Products starts here.",
    )
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    # What the marketplace last pushed about the seller's authorization of omni (cancelled,
    # or expiring); cleared when staff enter changed credentials.
    authorization_notice = models.CharField(
        "authorization", max_length=300, blank=True, editable=False
    )
    authorization_notice_at = models.DateTimeField(null=True, blank=True, editable=False)
    fulfillment_sync_minutes = models.PositiveIntegerField(
        "full inventory sync every (minutes)",
        default=60,
        validators=[MinValueValidator(5)],
        help_text="How often the recurring job pushes every listing's full quantity "
        "(real-time and fulfillment modes).",
    )
    last_inventory_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    max_concurrent_calls = models.PositiveSmallIntegerField(
        "calls at once",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CONCURRENT_CALLS)],
        help_text="How many calls omni may have in flight to the marketplace at once. Leave "
        "blank for the marketplace's default; raise it if the shop's plan or the app's quota "
        "allows more. omni slows down by itself when the marketplace says it is too many.",
    )
    max_calls_per_second = models.PositiveSmallIntegerField(
        "calls a second",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CALLS_PER_SECOND)],
        help_text="The app's quota of calls a second on this shop, where the marketplace shows "
        "it (Lazada shows each app's in its console): omni spaces its calls to stay under it. "
        "Leave blank to space nothing; omni still pauses whenever the marketplace says it is "
        "too many.",
    )
    # Debounce: set when a flush task is queued, cleared when a flush starts or ends.
    flush_queued = models.BooleanField(default=False, editable=False)
    # One flusher per channel at a time, so pushes leave in the order their values were read:
    # a short lease renewed by the flusher's heartbeat (omni.leases), and its holder's token.
    flush_locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    flush_lease = models.CharField(max_length=32, blank=True, editable=False)

    # Fields that workers and pushes write with statements of their own while staff may be
    # editing the channel: a token refresh (single-use refresh tokens), the flush lease, the
    # scans' watermark and error, the last full sync, a push's authorization notice. A full
    # save writes them only when this object changed them since it was read, so saving the
    # settings never puts back a value replaced meanwhile (a spent refresh token would leave
    # the channel unable to call the marketplace).
    WRITTEN_APART = (
        "credentials",
        "last_scan_at",
        "last_error",
        "last_inventory_sync_at",
        "flush_locked_until",
        "flush_lease",
        "authorization_notice",
        "authorization_notice_at",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> "Channel":
        channel = super().from_db(db, field_names, values)
        channel._remember_read()
        return channel

    def refresh_from_db(
        self, using: str | None = None, fields: Any = None, from_queryset: Any = None
    ) -> None:
        super().refresh_from_db(using, fields, from_queryset)
        self._remember_read(None if fields is None else set(fields))

    def _remember_read(self, fields: set[str] | None = None) -> None:
        """Note the `WRITTEN_APART` values as read (of `fields` only, for a partial read)."""
        kept = {} if fields is None else getattr(self, "_as_read", {})
        self._as_read = kept | {
            name: copy.deepcopy(self.__dict__[name])
            for name in self.WRITTEN_APART
            if name in self.__dict__ and (fields is None or name in fields)
        }

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A save naming no fields, of a row read from the database, writes the fields it
        read (as Django does) but not the `WRITTEN_APART` ones this object did not change."""
        as_read = getattr(self, "_as_read", None)
        if as_read and kwargs.get("update_fields") is None and not self._state.adding:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key
                and field.attname in self.__dict__
                and (field.name not in as_read or getattr(self, field.name) != as_read[field.name])
            ]
        super().save(*args, **kwargs)
        written = kwargs.get("update_fields")
        self._remember_read(None if written is None else set(written))

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.price_round_step is None and self.price_ending:
            errors["price_ending"] = "An ending needs a step to round to."
        elif self.price_round_step is not None and self.price_ending >= self.price_round_step:
            errors["price_ending"] = (
                f"The ending ({self.price_ending}) must be less than the step "
                f"({self.price_round_step})."
            )
        if self.priority_threshold is not None and not self.is_priority:
            errors["priority_threshold"] = (
                "Only a priority channel has a threshold: tick “priority channel”, or clear it."
            )
        if errors:
            raise ValidationError(errors)

    def base_url(self) -> str:
        return self.api_base_url or BY_KIND[self.kind].base_url

    def stock_outlet_ids(self) -> set[int]:
        """The outlets whose stock this channel sells: the chosen ones plus the order outlet."""
        return {o.pk for o in self.outlets.all()} | {self.order_outlet_id}


class ListingQuerySet(models.QuerySet["Listing"]):
    def present(self) -> "ListingQuerySet":
        """Listings still on the channel (live or inactive), not removed."""
        return self.exclude(status=Listing.Status.REMOVED)

    def mapped(self) -> "ListingQuerySet":
        return self.filter(variant__isnull=False)

    def unmapped(self) -> "ListingQuerySet":
        return self.filter(variant__isnull=True)


class Listing(TimeStampedModel):
    """One sellable unit on a channel as last seen by a scan."""

    class Status(models.TextChoices):
        LIVE = "live", "Live"
        INACTIVE = "inactive", "Inactive"
        REMOVED = "removed", "Removed"

    # No single-column index: every query by channel is served by a composite index below.
    channel = models.ForeignKey(Channel, models.CASCADE, related_name="listings", db_index=False)
    created_at = created_at_unindexed()  # scans write listings by the thousand
    item_id = models.CharField(max_length=64)
    variant_ref = models.CharField(
        "variant/model id",
        max_length=64,
        blank=True,
        help_text="Blank for an item without variants.",
    )
    sku = models.CharField("SKU on the channel", max_length=120, blank=True)
    sku_key = models.CharField("normalised SKU", max_length=120, blank=True, editable=False)
    title = models.CharField(max_length=300)
    price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    quantity = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LIVE)
    channel_updated_at = models.DateTimeField(null=True, blank=True)
    variant = models.ForeignKey(
        Variant,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="channel_listings",
        verbose_name="POS variant",
        db_index=False,  # served by the (variant, channel) index below
    )
    is_manual_link = models.BooleanField(
        default=False, help_text="Linked by hand; scans keep the link even if the SKUs differ."
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    duplicate_sku = models.BooleanField(
        default=False,
        editable=False,
        help_text="Shares its SKU with another listing of the channel; kept up to date by scans "
        "and uploads, for the Multiple Listed SKU tab.",
    )
    pushed_quantity = models.IntegerField(null=True, blank=True, editable=False)
    pushed_at = models.DateTimeField(null=True, blank=True, editable=False)
    push_error = models.CharField(max_length=500, blank=True, editable=False)

    objects = ListingQuerySet.as_manager()

    class Meta:
        ordering = ["channel_id", "title", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "item_id", "variant_ref"], name="channels_listing_unique_ref"
            ),
        ]
        indexes = [
            # Multiple Listed SKU and matching: listings of one channel by normalised SKU.
            models.Index(fields=["channel", "sku_key"], name="channels_listing_sku"),
            # Sold in Channel / Not in POS tabs and the statistic: by channel, status, mapping.
            models.Index(fields=["channel", "status", "variant"], name="channels_listing_tab"),
            # Multiple Listed SKU: the channel's duplicates in SKU order.
            models.Index(
                fields=["channel", "sku_key"],
                condition=models.Q(duplicate_sku=True),
                name="channels_listing_duplicates",
            ),
            # The listing tabs' default order (first screen without sorting the whole channel).
            models.Index(fields=["channel", "title", "id"], name="channels_listing_title"),
            # Not in Channel / In POS: listings of a variant.
            models.Index(fields=["variant", "channel"], name="channels_listing_variant"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def external_ref(self) -> str:
        return f"{self.item_id}/{self.variant_ref}" if self.variant_ref else self.item_id


class Scan(models.Model):
    """One scan of a channel's catalog: progress while it runs, counts when done."""

    class Kind(models.TextChoices):
        FULL = "full", "Full scan"
        UPDATED = "updated", "Scan Updated Products"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # A full scan that read the whole catalog but would remove more listings than the
        # safety valve allows: it removed nothing, and waits for staff to confirm.
        TO_CONFIRM = "to_confirm", "Removal awaits confirmation"

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="scans")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life.")
    since = models.DateTimeField(
        null=True, blank=True, help_text="Scan Updated Products: changes since this time."
    )
    pages_done = models.PositiveIntegerField(default=0)
    listings_done = models.PositiveIntegerField(default=0)
    seen = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    not_in_pos = models.PositiveIntegerField("not in POS", default=0)
    duplicates = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    http_calls = models.PositiveIntegerField(default=0)
    http_seconds = models.FloatField(default=0)
    error = models.TextField(blank=True)
    removal_held = models.PositiveIntegerField(
        default=0,
        help_text="Listings this full scan did not see but did not mark removed, because they "
        "were more than the safety valve allows without confirmation.",
    )
    note = models.TextField(
        blank=True, help_text="Why the removal was held, and who confirmed it when."
    )
    removal_confirmed_by = models.CharField(max_length=120, blank=True)
    removal_confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One scan per channel at a time: a second request fails on this index.
            models.UniqueConstraint(
                fields=["channel"],
                condition=models.Q(status__in=["queued", "running"]),
                name="channels_scan_one_at_a_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of channel {self.channel_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class SyncTrigger(models.TextChoices):
    """What started a full inventory sync (BRIEF §4), in the words of the trigger table."""

    FULFILLMENT_RECURRING = "fulfillment_recurring", "Fulfillment channel recurring job"
    FULFILLMENT_MANUAL = "fulfillment_manual", "Fulfillment channel manual sync"
    SALES_CHANNEL_MANUAL = "sales_channel_manual", "Sales channel manual sync"


OWN_ORDER_RESYNC = "own_order_resync"
LISTING_RETURNED = "listing_returned"
RULES_CHANGED = "rules_changed"
# Why a listing's stock is pushed: a stock movement's trigger, a full sync, the repair of a push
# that overwrote the marketplace's own order deduction (inventory.own_orders_seen), or a listing
# a full scan found back on the channel (scans).
PUSH_REASONS = [
    *StockMovement.Trigger.choices,
    *SyncTrigger.choices,
    (OWN_ORDER_RESYNC, "Repair after the channel's own order"),
    (LISTING_RETURNED, "Listing back on the channel"),
    (RULES_CHANGED, "Stock rule or bundle changed"),
]


class PendingPush(models.Model):
    """The outbox: a listing whose channel quantity must be brought in line with the POS.

    Written in the same transaction as the stock change that caused it. One row per listing, so
    any number of movements before a flush coalesce into one push; the quantity itself is read
    from stock when the flush sends it, so the newest value is always the one sent.
    """

    listing = models.OneToOneField(Listing, models.CASCADE, related_name="pending_push")
    channel = models.ForeignKey(Channel, models.CASCADE, related_name="pending_pushes")
    reason = models.CharField(max_length=40, choices=PUSH_REASONS)
    # Bumped each time the row is requested again; a flush deletes the row only if it is
    # unchanged, so a request that arrives while a push is in flight is not lost.
    requested_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    failed = models.BooleanField(
        default=False,
        help_text="Refused by the marketplace or out of quick retries; tried again hourly, "
        "and at once by the next stock change or full sync.",
    )

    class Meta:
        verbose_name_plural = "pending pushes"
        ordering = ["next_attempt_at", "pk"]
        indexes = [
            # inventory_flush: due rows of one channel.
            models.Index(fields=["channel", "next_attempt_at"], name="channels_push_due_at"),
        ]

    def __str__(self) -> str:
        return f"push listing {self.listing_id} ({self.reason})"


class BundleRecount(models.Model):
    """A stock change to a component of bundles, which the channel's flush turns into pushes
    for the bundles it moved on the channel (channels.inventory).

    Written in the stock change's transaction instead of working out there what every bundle
    containing the component now makes: one row per component, so any number of changes
    before a flush coalesce, and the flush works out each bundle once.
    """

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="bundle_recounts")
    component = models.ForeignKey(Variant, models.CASCADE, related_name="+")
    reason = models.CharField(max_length=40, choices=PUSH_REASONS)
    # Bumped each time the row is written again; the flush deletes the row only if unchanged.
    requested_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "component"], name="channels_bundle_recount_once"
            ),
        ]

    def __str__(self) -> str:
        return f"recount the bundles of variant {self.component_id} on channel {self.channel_id}"


class InventorySync(models.Model):
    """One full inventory sync of a channel: drift found, pushes queued, duplicates skipped."""

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="inventory_syncs")
    trigger = models.CharField(max_length=40, choices=SyncTrigger.choices)
    requested_by = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    considered = models.PositiveIntegerField(default=0)
    drift = models.PositiveIntegerField(
        default=0, help_text="Listings whose channel quantity differed from what it should be."
    )
    drift_sample = models.JSONField(default=list, blank=True)
    queued = models.PositiveIntegerField(default=0)
    skipped_duplicates = models.PositiveIntegerField(default=0)
    skipped_sample = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"inventory sync {self.pk} of channel {self.channel_id}"


class CatalogPush(models.Model):
    """One catalog change pushed to one channel item (BRIEF §3), done or failed."""

    class Action(models.TextChoices):
        UPDATE = "update", "Update synced fields"
        ADD_VARIANTS = "add_variants", "Add variants"
        ACTIVATE = "activate", "Enable"
        DEACTIVATE = "deactivate", "Disable"
        DELETE = "delete", "Delete"

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="catalog_pushes")
    product_id = models.BigIntegerField(help_text="Kept as a bare id: the product may be deleted.")
    item_id = models.CharField(max_length=64)
    action = models.CharField(max_length=20, choices=Action.choices)
    error = models.CharField(max_length=500, blank=True)
    retryable = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "catalog pushes"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} item {self.item_id} on channel {self.channel_id}"


class StockRule(models.Model):
    """A product's or a variant's own allocation rule on one channel (channels.allocation).

    Each blank field falls back: a variant's rule to its product's, a product's to the
    channel's. `maximum` 0 keeps the product or variant off the channel's stock.
    """

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="stock_rules")
    product = models.ForeignKey(
        Product, models.CASCADE, null=True, blank=True, related_name="stock_rules"
    )
    variant = models.ForeignKey(
        Variant, models.CASCADE, null=True, blank=True, related_name="stock_rules"
    )
    share_percent = models.PositiveSmallIntegerField(
        "share (%)", null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    maximum = models.PositiveIntegerField("list at most", null=True, blank=True)
    cutoff = models.PositiveIntegerField("low-stock cut-off", null=True, blank=True)
    buffer = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["channel", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(product__isnull=True) ^ models.Q(variant__isnull=True),
                name="channels_stockrule_product_or_variant",
                violation_error_message="A rule is for a product or for a variant, not both.",
            ),
            models.UniqueConstraint(
                fields=["channel", "product"],
                condition=models.Q(product__isnull=False),
                name="channels_stockrule_one_per_product",
                violation_error_message="This product already has a rule on this channel.",
            ),
            models.UniqueConstraint(
                fields=["channel", "variant"],
                condition=models.Q(variant__isnull=False),
                name="channels_stockrule_one_per_variant",
                violation_error_message="This variant already has a rule on this channel.",
            ),
        ]

    def __str__(self) -> str:
        target = f"variant {self.variant_id}" if self.variant_id else f"product {self.product_id}"
        return f"stock rule for {target} on channel {self.channel_id}"


class SkuAlias(models.Model):
    """A channel SKU that cannot be derived from the POS SKU by the channel's prefixes and
    suffixes: matched to this variant (channels.sku_rules)."""

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="sku_aliases")
    channel_sku = models.CharField("SKU on the channel", max_length=120)
    channel_sku_key = models.CharField(max_length=120, editable=False)
    variant = models.ForeignKey(
        Variant, models.CASCADE, related_name="sku_aliases", verbose_name="POS variant"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "SKU alias"
        verbose_name_plural = "SKU aliases"
        ordering = ["channel", "channel_sku_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "channel_sku_key"],
                name="channels_skualias_one_per_sku",
                violation_error_message="This channel SKU already has an alias on this channel.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_sku} → variant {self.variant_id}"


class PriceOverride(models.Model):
    """A variant's own price on one channel, in place of the channel's price rule."""

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="price_overrides")
    variant = models.ForeignKey(Variant, models.CASCADE, related_name="price_overrides")
    price = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["channel", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "variant"],
                name="channels_priceoverride_one_per_variant",
                violation_error_message="This variant already has a price on this channel.",
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="channels_priceoverride_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.price} for variant {self.variant_id} on channel {self.channel_id}"


class PriceSync(models.Model):
    """One push of prices to a channel's listed variants (channels.pricing): after a price rule
    changed, or asked for by staff."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="price_syncs")
    reason = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life.")
    considered = models.PositiveIntegerField(default=0)
    pushed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    failure_sample = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Price sync #{self.pk} of {self.channel}"


# --- the six product tabs (BRIEF §2), as admin changelists over proxies ------------------------


class SoldInChannel(Listing):
    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Sold in Channel"


class NotInPos(Listing):
    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Not in POS"


class NotInChannel(Variant):
    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Not in Channel"


class InPos(Variant):
    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "In POS"


class MultipleListedSku(Listing):
    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Multiple Listed SKU"


class ChannelStatistic(Channel):
    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "Channel Statistic"
