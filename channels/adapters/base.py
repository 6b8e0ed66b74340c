"""The seam between omni and the marketplaces.

Adapters take and return the plain dataclasses below; no raw JSON and no vendor exception crosses
this line. Every failure is an AdapterError that says whether trying again may help.
"""

import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from re import Pattern
from typing import Any, ClassVar, Protocol, runtime_checkable


class AdapterError(Exception):
    """A marketplace call failed. `retryable` tells the caller whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool, code: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class CredentialsError(AdapterError):
    """The marketplace refused the channel's credentials (wrong key, expired token, bad sign)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message, retryable=False, code=code)


class OrderNumbersMalformed(AdapterError):
    """Order numbers with characters the marketplace's numbers never contain, refused before
    any call (`get_orders`): a mistyped number, not a marketplace failure. `numbers` names
    them; `form` says what the marketplace's numbers look like."""

    def __init__(self, numbers: Sequence[str], *, service: str, form: str) -> None:
        shown = ", ".join(repr(n) for n in numbers[:10])
        super().__init__(
            f"Not {service} order number(s) ({form}): {shown}.",
            retryable=False,
            code="order_number",
        )
        self.numbers = list(numbers)

    @classmethod
    def check(
        cls, numbers: Iterable[str], pattern: Pattern[str], *, service: str, form: str
    ) -> None:
        """Raise for the numbers `pattern` does not match in full."""
        bad = [number for number in numbers if not pattern.fullmatch(number)]
        if bad:
            raise cls(bad, service=service, form=form)


@dataclass(frozen=True, slots=True)
class Limits:
    """A marketplace's page sizes and per-call limits, kept as data.

    `max_in_flight` is how many calls the adapter keeps in flight at once by default; a
    channel may set its own (`Channel.max_concurrent_calls`), since the real limit often
    depends on the shop's plan or the app's quota. Where the marketplace publishes no number
    the default is a conservative guess, and each adapter's comment says so.
    """

    page_size: int  # listings (items/products) per list page
    detail_ids_per_call: int  # ids per detail/base-info call
    stock_updates_per_call: int  # SKUs/models per stock update call
    price_updates_per_call: int  # SKUs/models per price update call
    one_item_per_update: bool  # stock/price calls take the SKUs of a single item only
    # Two calls editing one item at once are refused (Lazada's 4147): pushes never send two
    # calls of one item at the same time (`kit.push_in_batches`).
    serial_item_edits: bool = False
    order_ids_per_call: int = 50
    order_window_days: int | None = None  # widest time window one order-list call accepts
    # Calls in flight at once. 4 is the pool omni always used, for a marketplace whose limit
    # is not a number of calls (Shopify's is a cost budget per second).
    max_in_flight: int = 4


@dataclass(frozen=True, slots=True)
class RemoteListing:
    """One sellable unit on a channel (an item without variants, or one variant/model of it)."""

    item_id: str
    variant_id: str  # "" for an item without variants
    sku: str  # exactly as on the channel, white space and case included
    title: str  # the item's name, with the variant's name after " - " when it has one
    price: Decimal
    quantity: int
    status: str  # "live" | "inactive" | "removed"
    updated_at: datetime  # aware, UTC: when the channel last changed it


@dataclass(frozen=True, slots=True)
class UploadVariant:
    sku: str
    price: Decimal
    quantity: int
    options: dict[str, str] = field(default_factory=dict)  # e.g. {"Color": "Red", "Size": "M"}
    upc: str = ""


@dataclass(frozen=True, slots=True)
class UploadProduct:
    """What omni sends to create a product on a channel: only the synced fields (BRIEF §3)."""

    name: str
    description: str
    category: str
    brand: str
    images: tuple[str, ...]
    weight_kg: Decimal | None
    dimensions_cm: tuple[Decimal, Decimal, Decimal] | None  # length, width, height
    is_active: bool
    variants: tuple[UploadVariant, ...]
    option_names: tuple[str, ...] = ()  # e.g. ("Color", "Size"); empty for a single variant


@dataclass(frozen=True, slots=True)
class QuantityUpdate:
    item_id: str
    variant_id: str
    quantity: int  # absolute, never negative


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    item_id: str
    variant_id: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class PushResult:
    """The outcome of one listing's update inside a (possibly partly failed) batch call."""

    item_id: str
    variant_id: str
    ok: bool
    error: str = ""
    retryable: bool = False


@dataclass(slots=True)
class CallStats:
    """HTTP calls made and seconds spent waiting on them, for benchmarks and scan records."""

    calls: int = 0
    seconds: float = 0.0
    retries: int = 0
    # The longest run of calls a read had to make one after another, each needing the answer
    # before it (a cursor's next page, the details of a page just listed): with `calls` and
    # the calls allowed in flight, what sets the least time a read can take (`bench scan`).
    chain: int = 0


CredentialsSaver = Callable[[dict[str, Any]], None]


@runtime_checkable
class SharedCredentials(Protocol):
    """A `CredentialsSaver` for credentials that several processes use at once (a channel's
    row), which can also hold them locked for a whole token refresh, so the processes spend a
    single-use refresh token once between them.

    `refresh(renew)` locks the stored credentials, calls `renew(stored)`, stores what it
    returns (None: nothing, the stored ones stand) and returns the credentials stored, once
    they are committed and the lock released. When `renew` raises, nothing is stored.
    """

    def __call__(self, new_credentials: dict[str, Any]) -> None: ...

    def refresh(
        self, renew: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]: ...


class OrderState(StrEnum):
    """Where an order stands, in omni's terms. Each adapter maps its marketplace's statuses
    onto these in its own STATUS_TABLE; the order pipeline works from the state alone."""

    UNPAID = "unpaid"  # placed, not paid yet (cash on delivery counts as unpaid until delivered)
    PAID = "paid"  # paid (or confirmed COD), waiting to be shipped
    SHIPPED = "shipped"  # handed to the courier
    DELIVERED = "delivered"  # received by the buyer / completed
    CANCELLED = "cancelled"
    RETURNED = "returned"  # returned or refunded after shipping


@dataclass(frozen=True, slots=True)
class RemoteOrderLine:
    line_id: str
    item_id: str
    variant_id: str  # "" for an item without variants
    sku: str  # as on the channel
    title: str
    quantity: int
    unit_price: Decimal  # what the buyer paid per unit, after the seller's discounts


@dataclass(frozen=True, slots=True)
class RemoteOrder:
    """One marketplace order as omni needs it. `source` is the marketplace's own payload for
    this order (already parsed), kept only so the sync log can show what a step was based on."""

    order_number: str  # what staff search by (Shopee order_sn, Shopify name, ...)
    order_id: str  # the marketplace's id for API calls, when it differs; else = order_number
    status: str  # the marketplace's own status, verbatim
    state: OrderState
    created_at: datetime  # aware, UTC
    updated_at: datetime  # aware, UTC
    currency: str
    total: Decimal
    lines: tuple[RemoteOrderLine, ...]
    paid_at: datetime | None = None
    payment_method: str = ""
    courier: str = ""
    tracking_number: str = ""
    cancel_reason: str = ""
    source: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # False when the marketplace's status is not in the adapter's table (one it added since):
    # `state` is then UNPAID, in which the pipeline only reserves stock, and the sync log asks
    # staff to look. One new status must not stop a channel's other orders.
    status_known: bool = True


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified marketplace push."""

    delivery_id: str  # the marketplace's id for this delivery, for de-duplication
    topic: str  # e.g. "order_status", "product", "authorization", "other"
    order_number: str = ""  # set when the push is about one order
    payload: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    notice: str = ""  # for "authorization": what staff must do, in the marketplace's name
    # The shop the push names, where a marketplace sends every shop of an app to one URL
    # (Shopee's shop_id, Lazada's seller_id); "" when it names none.
    shop: str = ""


def authorization_notice(service: str, *, cancelled: bool, within: str = "") -> str:
    """What staff read when a marketplace pushes that the seller's authorization of omni was
    cancelled, or expires `within` ("7 days") if nobody connects the shop again."""
    if cancelled:
        return (
            f"{service} says the seller cancelled omni's access to the shop: nothing syncs "
            "until the shop is connected again and its new credentials entered."
        )
    return (
        f"{service} says omni's access to the shop expires within {within}: connect the shop "
        "again and enter its new credentials before then, or syncing stops."
    )


class WebhookRejected(Exception):
    """A push whose signature is missing or wrong (401), or whose body is malformed (400)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def signature_matches(given: str, expected: str) -> bool:
    """Whether a push's signature header equals the one computed, in constant time. Compared
    as bytes: `hmac.compare_digest` refuses a str with non-ASCII characters, and a header
    carrying some is simply a wrong signature (401), never an error."""
    return hmac.compare_digest(given.encode(errors="replace"), expected.encode())


class Adapter(Protocol):
    kind: ClassVar[str]
    limits: ClassVar[Limits]
    stats: CallStats

    def check_credentials(self) -> None:
        """Make one cheap authenticated call; raise CredentialsError if refused."""

    def iter_listing_pages(
        self, *, updated_since: datetime | None = None
    ) -> Iterator[list[RemoteListing]]:
        """Every listing (or only those changed since `updated_since`), a page at a time.

        With `updated_since`, listings removed on the channel since then come back with
        status "removed" where the marketplace reports deletions.
        """

    def confirm_listings(self, item_ids: Sequence[str]) -> list[RemoteListing] | None:
        """The listings these items have now, asked for item by item rather than read from
        the list: a full read of a list paged by offset or page number skips an item for each
        one deleted behind it while it reads (the rest move up a place), so a full scan asks
        here before it marks an unseen listing removed. An item the marketplace no longer has
        yields nothing (or its listings as "removed"). None where the list is read by a
        cursor or a snapshot, which a deletion does not shift: nothing to confirm.
        """

    def create_product(self, product: UploadProduct) -> list[RemoteListing]:
        """Create the product with its variants; the listings it created."""

    def update_quantities(self, updates: Sequence[QuantityUpdate]) -> list[PushResult]:
        """Set absolute quantities, batching within the marketplace's per-call limits."""

    def update_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Set prices, batching within the marketplace's per-call limits."""

    # --- catalog pushes (the POS is the system of record) --------------------------------

    def update_product(self, item_id: str, product: UploadProduct) -> None:
        """Overwrite the item's synced fields (name, description, category, brand, images,
        weight, dimensions) and its variants' prices; never POS-only fields."""

    def add_variants(
        self, item_id: str, product: UploadProduct, new: Sequence[UploadVariant]
    ) -> list[RemoteListing]:
        """Add variants created in the POS to an existing item; the listings created."""

    def set_active(self, item_id: str, active: bool) -> None:
        """List (enable) or unlist (disable) the item."""

    def delete_product(self, item_id: str) -> None:
        """Delete the item on the channel."""

    # --- orders -------------------------------------------------------------------------

    def iter_orders(
        self, *, updated_from: datetime, updated_to: datetime
    ) -> Iterator[list[RemoteOrder]]:
        """Orders updated in [updated_from, updated_to), a page at a time, with their lines.
        The adapter splits the range into the marketplace's allowed windows."""

    def get_orders(self, order_numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders (Manual Download Order); numbers the marketplace does not know
        (or refuses) are left out. OrderNumbersMalformed, before any call, for numbers with
        characters the marketplace's numbers never contain."""

    def verify_webhook(self, *, url: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check a push's signature exactly as the marketplace signs it; WebhookRejected if not."""

    def owns_push(self, event: WebhookEvent) -> bool:
        """Whether a verified push is about this channel's shop. False for a push naming
        another shop of the same app (Shopee and Lazada send all of an app's shops to one
        URL)."""
