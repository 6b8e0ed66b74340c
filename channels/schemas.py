"""The channels' API shapes. Credentials go in and never come out: responses carry only
`credentials_set`."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from catalog.schemas import Count, Handle, Slug
from channels.adapters import credentials_schema
from channels.adapters.base import AdapterError
from channels.models import Channel, Scan
from channels.tabs import ApiTab as Tab
from omni.api_base import (
    Amount,
    BoundedDict,
    Choice,
    Id,
    InSchema,
    Text,
    Url,
    exactly_one_of,
)

ChannelKind = Choice(Channel.Kind)
SyncMode = Choice(Channel.SyncMode)
DuplicatePolicy = Choice(Channel.DuplicatePolicy)
ScanKind = Choice(Scan.Kind)


# Every marketplace's credentials are a flat set of keys, tokens and ids; these bounds keep any
# set small and storable, and the kind's own schema (channels.adapters) checks its fields.
CREDENTIALS_MAX_KEYS = 20
CredentialValue = (
    Text(4096, strip=False) | bool | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None
)
Credentials = Annotated[
    BoundedDict(
        Text(64, min_length=1, strip=False), CredentialValue, max_items=CREDENTIALS_MAX_KEYS
    ),
    Field(
        description="The marketplace keys and tokens, as that kind expects them (write-only: "
        "never returned). On connecting, the fields each kind takes are given by the one-of "
        "rule on `kind`.",
    ),
]


def _credentials_by_kind(schema: dict[str, Any]) -> None:
    """ChannelIn's JSON Schema gains a one-of rule: for each kind omni can connect, the
    credentials that kind's schema takes. A kind with no adapter yet has no branch."""
    branches = []
    for kind in Channel.Kind.values:
        try:
            fields = credentials_schema(kind).model_json_schema()
        except AdapterError:
            continue
        fields.pop("title", None)
        fields.pop("description", None)  # the model's docstring, written for developers
        properties = {"kind": {"const": kind}, "credentials": fields}
        branches.append({"properties": properties})
    schema["oneOf"] = branches


Minutes = Annotated[int, Field(ge=5, le=10_080)]  # up to a week
Percent = Annotated[int, Field(ge=0, le=100)]
MarkupPercent = Amount(6, 2, low=-90, high=1000)
MarkupAmount = Amount(12, 2, low=-(10**10) + 1)
Price = Amount(12, 2)
Step = Amount(12, 2, low=Decimal("0.01"))
RoundMode = Literal["nearest", "up", "down"]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Affixes = Annotated[
    Text(300), Field(description="Comma-separated; letter case ignored.", examples=["TKP-, SHP-"])
]


class ChannelRules(Schema):
    """The channel's stock, SKU and price rules: in ChannelIn with their defaults, in
    ChannelPatch only when sent (null clears a rule that may be blank)."""

    stock_share_percent: Percent = Field(
        100, description="Share of the available stock sent, rounded down."
    )
    stock_maximum: Count | None = Field(None, description="Never list more than this; null: none.")
    stock_cutoff: Count | None = Field(
        None, description="Send 0 when the available stock is below this; null: none."
    )
    is_priority: bool = Field(
        False, description="When a SKU runs low, only priority channels are sent its stock."
    )
    priority_threshold: Count | None = Field(
        None,
        description="For a priority channel: at or below this available stock, every other "
        "channel is sent 0.",
    )
    sku_strip_prefixes: Affixes = ""
    sku_strip_suffixes: Affixes = ""
    currency: Currency = Field("IDR", description="ISO 4217; prices go only in the POS's.")
    price_markup_percent: MarkupPercent = Decimal("0")
    price_markup_amount: MarkupAmount = Field(
        Decimal("0"), description="Added after the percentage, in the channel's currency."
    )
    price_round_step: Step | None = Field(None, description="e.g. 100 or 1000; null: none.")
    price_round_mode: RoundMode = "nearest"
    price_ending: Price = Field(
        Decimal("0"), description="With a step: prices end in this (e.g. 900); below the step."
    )


class ChannelIn(ChannelRules, InSchema):
    model_config = ConfigDict(json_schema_extra=_credentials_by_kind)

    kind: ChannelKind
    name: Text(100, min_length=1)
    api_base_url: Url(300) | Literal[""] = Field(
        "", description="Blank for the marketplace's production host."
    )
    credentials: Credentials
    inventory_sync_mode: SyncMode = Channel.SyncMode.REALTIME
    duplicate_sku_policy: DuplicatePolicy = Field(
        Channel.DuplicatePolicy.SKIP,
        description="`update_all` also switches inventory_sync_mode to `fulfillment`.",
    )
    outlets: Annotated[list[Slug], Field(max_length=100)] = Field(
        default_factory=list, description="Codes of the outlets whose stock this channel sells."
    )
    order_outlet: Slug = Field(description="Code of the outlet where its orders take stock.")
    buffer: Count = 0
    fulfillment_sync_minutes: Minutes = 60
    is_active: bool = True


class ChannelPatch(InSchema):
    """Only the fields sent change. `credentials` replaces the stored ones whole."""

    name: Text(100, min_length=1) | None = None
    api_base_url: Url(300) | Literal[""] | None = None
    credentials: Credentials | None = None
    inventory_sync_mode: SyncMode | None = None
    duplicate_sku_policy: DuplicatePolicy | None = None
    outlets: Annotated[list[Slug], Field(max_length=100)] | None = None
    order_outlet: Slug | None = None
    buffer: Count | None = None
    fulfillment_sync_minutes: Minutes | None = None
    is_active: bool | None = None
    stock_share_percent: Percent | None = None
    stock_maximum: Count | None = None
    stock_cutoff: Count | None = None
    is_priority: bool | None = None
    priority_threshold: Count | None = None
    sku_strip_prefixes: Affixes | None = None
    sku_strip_suffixes: Affixes | None = None
    currency: Currency | None = None
    price_markup_percent: MarkupPercent | None = None
    price_markup_amount: MarkupAmount | None = None
    price_round_step: Step | None = None
    price_round_mode: RoundMode | None = None
    price_ending: Price | None = None


class ChannelOut(Schema):
    id: int
    kind: str
    name: str
    api_base_url: str
    credentials_set: bool = Field(description="Whether credentials are stored; never shown.")
    inventory_sync_mode: str
    duplicate_sku_policy: str
    outlets: list[str]
    order_outlet: str
    buffer: int
    fulfillment_sync_minutes: int
    is_active: bool
    stock_share_percent: int
    stock_maximum: int | None
    stock_cutoff: int | None
    is_priority: bool
    priority_threshold: int | None
    sku_strip_prefixes: str
    sku_strip_suffixes: str
    currency: str
    price_markup_percent: Decimal
    price_markup_amount: Decimal
    price_round_step: Decimal | None
    price_round_mode: str
    price_ending: Decimal
    last_scan_at: datetime | None
    last_inventory_sync_at: datetime | None
    last_error: str
    authorization_notice: str
    authorization_notice_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_credentials_set(obj: Channel) -> bool:
        return bool(obj.credentials)

    @staticmethod
    def resolve_outlets(obj: Channel) -> list[str]:
        return sorted(o.code for o in obj.outlets.all())

    @staticmethod
    def resolve_order_outlet(obj: Channel) -> str:
        return obj.order_outlet.code


class ChannelWriteOut(ChannelOut):
    warning: str = Field("", description="Set when the change may oversell (update_all).")


class ChannelFilterIn(Schema):
    kind: ChannelKind | None = None
    is_active: bool | None = None
    q: Text(100) | None = Field(None, description="Part of the name.")


class StatisticOut(Schema):
    channel_id: int
    live_product: int
    sold_in_channel: int
    not_in_pos: int
    last_scan_at: datetime | None


class ListingRefOut(Schema):
    listing_id: int
    item_id: str
    variant_ref: str


class TabRowOut(Schema):
    """A row of a product tab. Listing tabs (sold_in_channel, not_in_pos, multiple_listed_sku)
    fill the listing fields; POS tabs (not_in_channel, in_pos) fill the variant fields, and
    in_pos lists where the variant is listed on this channel."""

    sku: str
    title: str
    listing_id: int | None = None
    item_id: str | None = None
    variant_ref: str | None = Field(None, description="Blank for an item without variants.")
    status: str | None = Field(None, description="The listing's status on the channel.")
    price: Decimal | None = Field(None, description="Channel price, or the POS retail price.")
    quantity: int | None = Field(None, description="Quantity on the channel, as last seen.")
    variant_id: int | None = None
    product_id: int | None = None
    listed: list[ListingRefOut] | None = None


class TabFilterIn(Schema):
    tab: Tab = "sold_in_channel"
    sku: Text(120) | None = Field(
        None,
        description=(
            "Matched trimmed, ignoring letter case: the POS SKU, or the SKU as the channel shows "
            "it (its SKU rules applied: a prefix or suffix taken off, an alias)."
        ),
    )
    q: Text(120) | None = Field(None, description="Part of the title or product name.")


class ScanIn(InSchema):
    kind: ScanKind = Scan.Kind.FULL


class ScanOut(Schema):
    id: int
    channel_id: int
    kind: str
    status: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pages_done: int
    listings_done: int
    seen: int
    new: int
    changed: int
    matched: int
    not_in_pos: int
    duplicates: int
    removed: int
    removal_held: int = Field(
        description="Listings not seen by a full scan in status to_confirm, waiting for POST "
        "/api/scans/{id}/confirm-removal."
    )
    note: str
    error: str


class InventorySyncQueuedOut(Schema):
    channel_id: int
    task: str = Field(description="The background task's name.")
    status: Literal["queued"] = "queued"
    results: str = Field(description="Where the finished sync's record appears.")


class InventorySyncOut(Schema):
    id: int
    channel_id: int
    trigger: str
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    considered: int
    drift: int
    queued: int
    skipped_duplicates: int
    message: str


class UploadIn(InSchema):
    variant_ids: Annotated[list[Id], Field(min_length=1, max_length=200)] = Field(
        description="POS variants to create on the channel (Not in Channel rows), up to 200."
    )


class DownloadIn(InSchema):
    listing_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)] = Field(
        description="Not in POS listings to create as POS products, up to 1,000."
    )


class ActionOut(Schema):
    """What an action did, one line per product: done, skipped (with the reason), failed."""

    done: list[str]
    skipped: list[str]
    failed: list[str]


# --- stock rules -------------------------------------------------------------------------------

RuleShare = Annotated[int, Field(ge=0, le=100)]


class StockRuleFields(InSchema):
    share_percent: RuleShare | None = Field(
        None, description="Share of the available stock sent; null: the channel's."
    )
    maximum: Count | None = Field(
        None,
        description="List at most this many (0 keeps it off the channel); null: the channel's.",
    )
    cutoff: Count | None = Field(
        None, description="Send 0 when fewer are available; null: the channel's."
    )
    buffer: Count | None = Field(None, description="Units held back; null: the channel's.")


class StockRuleIn(StockRuleFields):
    """A product's rule (by `handle`) or a variant's (by `sku`) on the channel."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("sku", "handle"))

    sku: Text(64, min_length=1) | None = Field(None, description="The variant's SKU.")
    handle: Handle | None = Field(None, description="The product's handle.")

    @model_validator(mode="after")
    def _one_target(self) -> "StockRuleIn":
        if (self.sku is None) == (self.handle is None):
            raise ValueError("give either sku (a variant's rule) or handle (a product's rule)")
        return self


class StockRuleOut(Schema):
    id: int
    channel_id: int
    sku: str | None = Field(description="The variant's SKU, for a variant's rule.")
    handle: str | None = Field(description="The product's handle, for a product's rule.")
    product: str = Field(description="The product's name.")
    share_percent: int | None
    maximum: int | None
    cutoff: int | None
    buffer: int | None

    @staticmethod
    def resolve_sku(obj) -> str | None:
        return obj.variant.sku if obj.variant_id else None

    @staticmethod
    def resolve_handle(obj) -> str | None:
        return obj.product.handle if obj.product_id else None

    @staticmethod
    def resolve_product(obj) -> str:
        return obj.variant.product.name if obj.variant_id else obj.product.name


class StepOut(Schema):
    rule: str = Field(description="available, share, maximum, cut-off, buffer or priority.")
    setting: str
    quantity: int = Field(description="The quantity the rule leaves.")


class ChannelAllocationOut(Schema):
    channel_id: int
    channel: str
    is_priority: bool
    available: int = Field(description="On hand − reserved over the channel's outlets.")
    steps: list[StepOut]
    quantity: int = Field(description="What the channel is sent.")
    decided_by: str = Field(description="The rule that set the quantity.")
    rule_from: str = Field(description="channel, product or variant: whose rule applied.")
    listings: int = Field(description="The variant's listings on the channel.")


class AllocationOut(Schema):
    sku: str
    channels: list[ChannelAllocationOut]
