"""The POS catalog: the system of record every channel is kept in step with."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from omni.models import TimeStampedModel, created_at_unindexed


def sku_key(sku: str | None) -> str:
    """The form two SKUs are compared in: surrounding white space trimmed, letter case ignored.

    The database computes the same thing in `Variant.sku_key`; listings store it too, so
    matching a listing to a variant is an indexed equality join.
    """
    return (sku or "").strip().lower()


class Brand(TimeStampedModel):
    name = models.CharField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Category(TimeStampedModel):
    name = models.CharField(max_length=120)
    parent = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="children"
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="catalog_category_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Outlet(TimeStampedModel):
    class Kind(models.TextChoices):
        STORE = "store", "Store"
        WAREHOUSE = "warehouse", "Warehouse"

    code = models.SlugField(
        max_length=40, unique=True, help_text="Short code used in imports and the API."
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STORE)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProductQuerySet(models.QuerySet["Product"]):
    def active(self) -> "ProductQuerySet":
        return self.filter(is_active=True)


class Product(TimeStampedModel):
    # Groups the variants of one product in imports; POS-only, like Lightspeed's handle.
    handle = models.SlugField(max_length=120, unique=True, null=True, blank=True)
    # Synced to every channel where the product is listed.
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    brand = models.ForeignKey(Brand, models.PROTECT, null=True, blank=True, related_name="products")
    category = models.ForeignKey(
        Category, models.PROTECT, null=True, blank=True, related_name="products"
    )
    weight_kg = models.DecimalField(
        "weight (kg)",
        max_digits=8,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    length_cm = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    width_cm = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    height_cm = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive products are disabled on every channel."
    )
    # POS-only: these never leave the POS.
    supplier = models.CharField(max_length=120, blank=True)
    supplier_code = models.CharField(max_length=80, blank=True)
    supplier_price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    reorder_point = models.PositiveIntegerField(null=True, blank=True)
    reorder_quantity = models.PositiveIntegerField(null=True, blank=True)
    tax_rate = models.DecimalField(
        "tax (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    tags = models.CharField(max_length=255, blank=True, help_text="Comma-separated.")

    objects = ProductQuerySet.as_manager()

    SYNCED_FIELDS = (
        "name",
        "description",
        "brand",
        "category",
        "weight_kg",
        "length_cm",
        "width_cm",
        "height_cm",
        "is_active",
    )
    POS_ONLY_FIELDS = (
        "handle",
        "supplier",
        "supplier_code",
        "supplier_price",
        "reorder_point",
        "reorder_quantity",
        "tax_rate",
        "tags",
    )

    class Meta:
        ordering = ["name", "pk"]
        indexes = [
            # Ordering by name. Search by any part of the name or handle (the admin's and the
            # API's icontains) is served by trigram indexes on PostgreSQL: migration 0004.
            models.Index(fields=["name"], name="catalog_product_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ProductImage(TimeStampedModel):
    product = models.ForeignKey(Product, models.CASCADE, related_name="images")
    created_at = created_at_unindexed()
    url = models.URLField(max_length=500)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["product", "position", "pk"]

    def __str__(self) -> str:
        return self.url


class VariantQuerySet(models.QuerySet["Variant"]):
    def active(self) -> "VariantQuerySet":
        return self.filter(is_active=True, product__is_active=True)

    def by_sku(self, sku: str) -> "VariantQuerySet":
        return self.filter(sku_key=sku_key(sku))


class Variant(TimeStampedModel):
    product = models.ForeignKey(Product, models.CASCADE, related_name="variants")
    sku = models.CharField(
        "SKU",
        max_length=64,
        help_text="The join key with every channel. Compared trimmed and case-insensitive.",
    )
    # Maintained by the database, so no write path (shell, bulk insert, migration) can skip it.
    sku_key = models.GeneratedField(
        expression=Lower(Trim("sku")),
        output_field=models.CharField(max_length=64),
        db_persist=True,
        verbose_name="normalised SKU",
    )
    upc = models.CharField("UPC / barcode", max_length=32, blank=True)
    options = models.JSONField(
        default=dict, blank=True, help_text='Option values, e.g. {"Color": "Red", "Size": "M"}.'
    )
    retail_price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    is_active = models.BooleanField("active", default=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = created_at_unindexed()

    objects = VariantQuerySet.as_manager()

    class Meta:
        ordering = ["product", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                Lower(Trim("sku")),
                name="catalog_variant_sku_unique_normalised",
                violation_error_message=(
                    "This SKU is already used by another variant "
                    "(SKUs are compared trimmed and ignoring letter case)."
                ),
            ),
            models.CheckConstraint(
                condition=~models.Q(sku=""), name="catalog_variant_sku_not_blank"
            ),
            models.CheckConstraint(
                condition=models.Q(retail_price__gte=0), name="catalog_variant_price_not_negative"
            ),
        ]
        indexes = [
            # Listing → variant matching joins on the normalised SKU.
            models.Index(fields=["sku_key"], name="catalog_variant_sku_key"),
            # Lookups by whole barcode. Search by any part of a SKU or barcode (the admin's
            # icontains) is served by trigram indexes on PostgreSQL: migration 0004.
            models.Index(fields=["upc"], name="catalog_variant_upc"),
        ]

    def __str__(self) -> str:
        return self.sku

    @property
    def option_label(self) -> str:
        return " / ".join(str(v) for v in (self.options or {}).values())


class BundleComponent(models.Model):
    """One component of a bundle (kit): `quantity` units of `component` make one `bundle`.

    A variant with components is a bundle: it holds no stock of its own, its available stock is
    the fewest whole bundles its components make, and selling it moves its components' stock
    (catalog.bundles). A component in use cannot be deleted (PROTECT).
    """

    bundle = models.ForeignKey(Variant, models.CASCADE, related_name="components")
    component = models.ForeignKey(Variant, models.PROTECT, related_name="in_bundles")
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["bundle", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["bundle", "component"],
                name="catalog_bundle_component_once",
                violation_error_message="This component is already in the bundle.",
            ),
            models.CheckConstraint(
                condition=~models.Q(bundle=models.F("component")),
                name="catalog_bundle_not_itself",
                violation_error_message="A bundle cannot contain itself.",
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="catalog_bundle_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × variant {self.component_id} in variant {self.bundle_id}"


class StockQuerySet(models.QuerySet["Stock"]):
    def for_outlets(self, outlet_ids) -> "StockQuerySet":
        return self.filter(outlet_id__in=outlet_ids)

    def with_available(self) -> "StockQuerySet":
        return self.annotate(available_qty=models.F("on_hand") - models.F("reserved"))


class Stock(TimeStampedModel):
    """What one outlet holds of one variant. Changed only through catalog.services."""

    # No index of its own: the (variant, outlet) unique constraint serves lookups by variant.
    variant = models.ForeignKey(Variant, models.CASCADE, related_name="stocks", db_index=False)
    outlet = models.ForeignKey(Outlet, models.PROTECT, related_name="stocks")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    created_at = created_at_unindexed()

    objects = StockQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "outlet"], name="catalog_stock_one_row_per_outlet"
            ),
            models.CheckConstraint(
                condition=models.Q(on_hand__gte=0), name="catalog_stock_on_hand_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0), name="catalog_stock_reserved_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"stock v{self.variant_id}@o{self.outlet_id}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(models.Model):
    """The append-only ledger: one row per change of one stock row, written with it."""

    class Trigger(models.TextChoices):
        IMPORT = "import", "Import inventory level"
        MANUAL = "manual", "Adjust inventory manually"
        RECEIPT = "receipt", "Receive receipt"
        ORDER_ALLOCATION = "order_allocation", "Allocate order"
        ORDER_RELEASE = "order_release", "Order cancelled or voided, stock returned"
        ORDER_FULFILMENT = "order_fulfilment", "Order invoiced, reservation deducted"
        SHIPMENT_CANCELLATION = "shipment_cancellation", "Cancel shipment"
        API_SINGLE = "api_single", "API single row update"
        API_BULK = "api_bulk", "API bulk update"

    # The ledger is history: its keys to the stock row, variant and outlet are not checked by
    # the database on every insert (a bulk import appends hundreds of thousands of rows, and
    # each checked key costs a lookup and a row lock at commit). stock_apply writes each ledger
    # row in the transaction that locked or created its stock row, and copies the stock row's
    # variant and outlet, which the stock row's own checked keys guarantee. Stock rows are never
    # deleted on their own (neither the admin nor the services can); a variant's ledger goes
    # with the variant, and an outlet with a ledger cannot be deleted.
    stock = models.ForeignKey(
        Stock, models.DO_NOTHING, related_name="movements", db_index=False, db_constraint=False
    )
    # (variant, created_at) below serves lookups by variant.
    variant = models.ForeignKey(
        Variant, models.CASCADE, related_name="movements", db_index=False, db_constraint=False
    )
    outlet = models.ForeignKey(
        Outlet, models.PROTECT, related_name="movements", db_constraint=False
    )
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    reference = models.CharField(max_length=120, blank=True, help_text="Import file, order number…")
    actor = models.CharField(
        max_length=120, blank=True, help_text="Who or what caused it: a user, a command, a token."
    )
    # Indexed only where set (see Meta): most movements come from imports, orders and tasks.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The sales channel whose order caused this movement, if any. Kept as a bare id because the
    # catalog does not know about channels; inventory sync uses it never to echo a channel's own
    # order back to that channel.
    source_channel_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The ledger admin: movements of one variant, newest first.
            models.Index(fields=["variant", "-created_at"], name="catalog_movement_variant"),
            # The ledger admin's trigger filter.
            models.Index(fields=["trigger", "-created_at"], name="catalog_movement_trigger"),
            # Deleting a user clears their movements' user; most movements have none.
            models.Index(
                fields=["user"],
                name="catalog_movement_user",
                condition=models.Q(user__isnull=False),
            ),
            # And, on PostgreSQL, a trigram index on the reference (migration 0004): the ledger
            # admin's search by any part of an order number or a file name.
        ]

    def __str__(self) -> str:
        where = f"v{self.variant_id}@o{self.outlet_id}"
        return f"{self.get_trigger_display()} {self.on_hand_delta:+d} {where}"


class ImportRun(models.Model):
    """One CSV uploaded in the admin (catalog or stock levels), imported by a worker: its
    options, its progress while it runs and its outcome (catalog.imports.runs).

    The file's text is kept only until the run ends: the outcome (counts, bad rows, the
    file-level error) is what staff look back at, and a large file is tens of megabytes.
    """

    class Kind(models.TextChoices):
        CATALOG = "catalog", "Products"
        STOCK = "stock", "Stock levels"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Stage(models.TextChoices):
        READING = "reading", "Reading"
        CHECKING = "checking", "Checking"
        WRITING = "writing", "Writing"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    file_name = models.CharField(max_length=255)
    text = models.TextField(blank=True, help_text="The file, decoded; cleared when the run ends.")
    partial = models.BooleanField(
        "import the good rows", default=False, help_text="Otherwise one bad row stops the file."
    )
    dry_run = models.BooleanField("only check", default=False)
    outlet = models.ForeignKey(
        Outlet,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Stock levels: the outlet chosen for the whole file.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The imports list, newest first.
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life.")
    stage = models.CharField(max_length=10, choices=Stage.choices, blank=True)
    stage_started_at = models.DateTimeField(null=True, blank=True)
    rows_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rows in the file, once read."
    )
    rows_done = models.PositiveIntegerField(default=0, help_text="Rows done in the stage.")
    summary = models.JSONField(
        default=dict, blank=True, help_text="The counts the import reported."
    )
    errors = models.JSONField(
        default=list, blank=True, help_text="The first bad rows, as [line, reason] pairs."
    )
    errors_total = models.PositiveIntegerField("bad rows", default=0)
    error = models.TextField(blank=True, help_text="Why the file as a whole was refused.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "import"
        verbose_name_plural = "imports"

    def __str__(self) -> str:
        return self.file_name

    @property
    def live(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
