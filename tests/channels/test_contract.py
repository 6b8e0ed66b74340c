"""One contract, every marketplace: the same scenarios against each adapter and its emulator.

Scans into the six tabs, upload, pushes within per-call limits, throttling, credentials (checked,
refused, validated, never shown), token refresh, orders through the pipeline, webhook
signatures, and the registry building each kind's pair. The marketplaces are the rows of
`channels.marketplaces.MARKETPLACES`: a new row runs every scenario, so a marketplace whose
adapter or emulator is missing or incomplete fails here rather than being left out. Where a
marketplace lacks a feature (token refresh) its registry row says so and the scenario checks
what it does instead.

Every scenario runs over real HTTP against the marketplace's emulator, through omni's own
services where a user would go through them (scans, tabs, upload) and through the adapter where
the contract is the adapter's (pushes within per-call limits, throttling, credentials, orders,
webhooks). Emulator helpers are the uniform ones of docs/adapters.md.
"""

import base64
import math
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from pydantic import SecretStr

from catalog.models import ProductImage, Stock, StockMovement
from catalog.services import stock_adjust
from channels import selectors
from channels.adapters import adapter_class, build_adapter, credentials_schema
from channels.adapters.base import (
    AdapterError,
    CredentialsError,
    OrderState,
    PriceUpdate,
    QuantityUpdate,
    RemoteListing,
    WebhookRejected,
)
from channels.adapters.http import RetryPolicy
from channels.emulators import emulator_class
from channels.inventory import inventory_flush
from channels.listings import listings_upload
from channels.marketplaces import BY_KIND, KINDS
from channels.models import Channel, Listing, PendingPush, Scan
from channels.scans import scan_request, scan_run
from synclogs.models import SalesOrder, SyncLog
from synclogs.services import order_manual_download
from tests.channels.builders import shop_item
from tests.channels.conftest import FAST_RETRY
from tests.factories import OutletFactory, ProductFactory, VariantFactory

PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
# A retry policy patient enough for a third of all calls to fail, with short sleeps.
PATIENT = RetryPolicy(attempts=10, base_delay=0.005, max_delay=0.05)
# "HMAC-SHA256(<key>, <message>), <hex|base64>, in <header>", as the registry writes it.
WEBHOOK_SCHEME = re.compile(
    r"HMAC-SHA256\((?P<key>[^,]+), (?P<message>[^)]+)\), (?P<encoding>hex|base64), "
    r"in (?P<header>\S+)"
)


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


def adapter(kind: str, emulator, **options: Any):
    """An adapter for `emulator`, with its credentials unless `credentials` is given."""
    return adapter_class(kind)(
        **{
            "base_url": emulator.base_url,
            "credentials": emulator.credentials,
            "retry": FAST_RETRY,
            **options,
        }
    )


def all_listings(client) -> list[RemoteListing]:
    return [listing for page in client.iter_listing_pages() for listing in page]


def secrets_of(kind: str, credentials: Mapping[str, Any]) -> dict[str, str]:
    """The values of `credentials` that the kind's schema keeps secret, by field."""
    model = credentials_schema(kind).model_validate(credentials)
    return {
        name: value.get_secret_value()
        for name in type(model).model_fields
        if isinstance(value := getattr(model, name), SecretStr) and value.get_secret_value()
    }


def token_calls(emulator) -> int:
    """Calls to the marketplace's token endpoint (every one has "token" in its path; no other
    endpoint does)."""
    return sum(count for path, count in emulator.log.counts.items() if "token" in path)


def signature_header(kind: str) -> str:
    """The header a kind's pushes are signed in, as its registry row says."""
    scheme = WEBHOOK_SCHEME.fullmatch(BY_KIND[kind].webhook_scheme)
    assert scheme, f"unreadable webhook_scheme for {kind}"
    return scheme["header"]


def connect(kind: str, emulator) -> Channel:
    return Channel.objects.create(
        kind=kind,
        name=f"{kind} shop",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="jkt"),
    )


def scan(channel: Channel, kind: str = Scan.Kind.FULL) -> Scan:
    done = scan_run(scan_id=scan_request(channel=channel, kind=kind, enqueue=False).pk)
    assert done.status == Scan.Status.SUCCEEDED, done.error
    return done


def skus(queryset) -> list[str]:
    return sorted(queryset.values_list("sku", flat=True))


# -- scans, upload and pushes ---------------------------------------------------------------------


@pytest.mark.django_db
def test_full_and_incremental_scans_fill_the_six_tabs(kind, emulator):
    # given: a POS catalog and a shop overlapping it the way real ones do
    for sku in ("TEE-BLK-M", "TEE-WHT-M", "MUG-01", "CUP-GRN", "BAG-NAT"):
        VariantFactory(sku=sku)
    ids = {
        "exact": emulator.put_item(shop_item("Black Tee", "TEE-BLK-M")),
        "noisy": emulator.put_item(shop_item("White Tee", " tee-wht-m ")),
        "variants": emulator.put_item(
            shop_item("Green Cup", "CUP-GRN", "UNKNOWN-9")
        ),
        "dup_a": emulator.put_item(shop_item("Mug", "MUG-01")),
        "dup_b": emulator.put_item(shop_item("Mug Twin Pack", "mug-01")),
        "gone": emulator.put_item(shop_item("Old Stock", "OLD-1")),
    }  # fmt: skip
    channel = connect(kind, emulator)
    # when
    first = scan(channel)
    # then
    sold = {
        (lst.sku.strip().upper(), lst.variant.sku) for lst in selectors.sold_in_channel(channel)
    }
    assert sold == {
        ("TEE-BLK-M", "TEE-BLK-M"), ("TEE-WHT-M", "TEE-WHT-M"), ("CUP-GRN", "CUP-GRN"),
        ("MUG-01", "MUG-01"),
    }  # fmt: skip
    assert selectors.sold_in_channel(channel).count() == 5  # both duplicates are sold
    assert skus(selectors.not_in_pos(channel)) == ["OLD-1", "UNKNOWN-9"]
    assert skus(selectors.multiple_listed_sku(channel)) == ["MUG-01", "mug-01"]
    assert skus(selectors.not_in_channel(channel)) == ["BAG-NAT"]
    stats = selectors.channel_statistic(channel)
    assert (stats.live_product, stats.sold_in_channel, stats.not_in_pos) == (7, 5, 2)
    assert first.seen == 7
    # when: one item changes on the channel and one is removed
    emulator.touch_item(str(ids["exact"]), name="Black Tee Relaxed")
    updated = scan(channel, Scan.Kind.UPDATED)
    assert updated.changed >= 1
    assert updated.seen < first.seen  # only what changed was fetched
    assert Listing.objects.get(channel=channel, sku="TEE-BLK-M").title.startswith(
        "Black Tee Relaxed"
    )
    emulator.remove_item(str(ids["gone"]))
    full = scan(channel)
    assert full.removed == 1
    assert "OLD-1" not in skus(selectors.not_in_pos(channel))


def tote(emulator):
    """A POS product with all that every marketplace needs to list it, its image served by
    `emulator`; no variants yet."""
    product = ProductFactory(
        name="Canvas Tote Bag Natural Large",
        description="Roomy canvas tote.",
        length_cm=Decimal("40"),
        width_cm=Decimal("10"),
        height_cm=Decimal("35"),
    )
    url = emulator.serve_file(f"/media/{product.pk}.png", PIXEL, "image/png")
    ProductImage.objects.create(product=product, url=url)
    return product


@pytest.mark.django_db
def test_upload_creates_what_the_next_scan_sells(kind, emulator):
    channel = connect(kind, emulator)
    product = tote(emulator)
    VariantFactory(product=product, sku="TOTE-NAT", options={"Color": "Natural"})
    VariantFactory(product=product, sku="TOTE-BLK", options={"Color": "Black"})
    # when
    report = listings_upload(
        channel=channel, variant_ids=product.variants.values_list("pk", flat=True)
    )
    # then
    assert report.failed == []
    scan(channel)
    assert skus(selectors.sold_in_channel(channel)) == ["TOTE-BLK", "TOTE-NAT"]


def _listings(kind, emulator, count_items: int, models: int):
    for n in range(count_items):
        emulator.put_item(
            shop_item(
                f"Pack {n}",
                *(f"P{n}-{m}" for m in range(models)),
                options=[{"Size": f"S{m}"} for m in range(models)],
            )
        )
    return [lst for page in adapter(kind, emulator).iter_listing_pages() for lst in page]


def test_stock_and_price_pushes_stay_within_per_call_limits(kind, emulator):
    listings = _listings(kind, emulator, count_items=3, models=6)
    client = adapter(kind, emulator)
    limits = client.limits
    # when
    results = client.update_quantities(
        [QuantityUpdate(lst.item_id, lst.variant_id, 40 + n) for n, lst in enumerate(listings)]
    )
    prices = client.update_prices(
        [PriceUpdate(lst.item_id, lst.variant_id, Decimal("99000")) for lst in listings]
    )
    # then
    assert all(r.ok for r in results + prices), [r.error for r in results + prices if not r.ok]
    held = emulator.listing_quantities()
    assert [held[(lst.item_id, lst.variant_id)] for lst in listings] == [
        40 + n for n in range(len(listings))
    ]
    # at most one call per item and per-call limit, whichever way the marketplace batches
    per_item = 6
    assert emulator.update_calls("stock") <= 3 * math.ceil(per_item / limits.stock_updates_per_call)
    assert emulator.update_calls("price") <= 3 * math.ceil(per_item / limits.price_updates_per_call)
    assert set(emulator.listing_prices().values()) == {Decimal("99000")}


# -- throttling -----------------------------------------------------------------------------------


def test_throttling_and_server_errors_are_survived(kind, emulator):
    # given: a quarter of all calls throttled (HTTP 429 with Retry-After, or the marketplace's
    # own throttling answer inside an HTTP 200 body) and a tenth failing with a server error
    for n in range(12):
        emulator.put_item(shop_item(f"Tee {n}", f"T-{n}"))
    expected = emulator.listing_quantities()
    emulator.set_faults(throttle_rate=0.25, error_rate=0.1, retry_after=0.01)
    client = adapter(kind, emulator, retry=PATIENT)
    # when: the shop is read until both faults have been met (a small shop is a few calls)
    for _ in range(50):
        listings = all_listings(client)
        if emulator.log.faults["error"] and emulator.log.faults["throttle"]:
            break
    # then: every listing as the shop holds it, each fault retried exactly once
    assert sorted(lst.sku for lst in listings) == sorted(f"T-{n}" for n in range(12))
    assert {(lst.item_id, lst.variant_id): lst.quantity for lst in listings} == expected
    faults = emulator.log.faults
    assert faults["error"] > 0
    assert faults["throttle"] > 0
    assert client.stats.retries == faults["error"] + faults["throttle"]


def test_throttling_that_never_ends_gives_up_with_a_retryable_error(kind, emulator):
    emulator.set_faults(throttle_rate=1.0, retry_after=0.01)
    client = adapter(
        kind, emulator, retry=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)
    )

    with pytest.raises(AdapterError) as failed:
        client.check_credentials()

    assert failed.value.retryable
    assert failed.value.code  # the marketplace's throttling code, or the HTTP status
    assert "try again" in str(failed.value)
    assert (client.stats.calls, client.stats.retries) == (3, 2)


# -- credentials ----------------------------------------------------------------------------------


def test_check_credentials_accepts_the_shops_own_with_one_call(kind, emulator):
    saved: list[dict] = []
    client = adapter(kind, emulator, on_credentials_changed=saved.append)

    client.check_credentials()

    assert client.stats.calls == 1
    assert saved == []  # nothing was renewed, so nothing is to be persisted


def test_wrong_credentials_are_refused_clearly_and_change_nothing(kind, emulator):
    listings = _listings(kind, emulator, count_items=1, models=2)
    before = emulator.listing_quantities()
    wrong = adapter(kind, emulator, credentials=emulator.wrong_credentials())
    with pytest.raises(CredentialsError) as excinfo:
        wrong.check_credentials()
    assert str(excinfo.value)
    assert not excinfo.value.retryable
    for secret in secrets_of(kind, emulator.wrong_credentials()).values():
        assert secret not in str(excinfo.value)
    with pytest.raises(CredentialsError):
        wrong.update_quantities(
            [QuantityUpdate(lst.item_id, lst.variant_id, 999) for lst in listings]
        )
    assert emulator.listing_quantities() == before


def test_credentials_never_show_their_secrets(kind, emulator):
    schema = credentials_schema(kind)
    credentials = schema.model_validate(emulator.credentials)
    secrets = secrets_of(kind, emulator.credentials)

    assert secrets, "every marketplace has at least one secret"
    for name, secret in secrets.items():
        assert secret not in repr(credentials)
        assert secret not in str(credentials.model_dump(mode="json"))
        assert credentials.as_dict()[name] == secret
    assert schema.model_validate(credentials.as_dict()) == credentials


def test_invalid_credentials_name_the_fields_but_not_the_values(kind, emulator):
    fields = credentials_schema(kind).model_fields
    missing = next(name for name, field in fields.items() if field.is_required())
    given = {name: value for name, value in emulator.credentials.items() if name != missing}

    with pytest.raises(CredentialsError) as refused:
        build_adapter(
            kind, base_url=emulator.base_url, credentials={**given, "x": "sekrit-unknown"}
        )

    message = str(refused.value)
    assert missing in message
    assert "x: " in message
    assert "sekrit" not in message
    for secret in secrets_of(kind, emulator.credentials).values():
        assert secret not in message


# -- tokens ---------------------------------------------------------------------------------------


def keys_never_expire(kind: str, emulator) -> None:
    """What a marketplace without token refresh (its row's `refreshes_tokens` is False) does
    instead: its keys never expire, so they cannot be made to, the credentials take no refresh
    token, and using them never hands anything back to persist."""
    assert not hasattr(emulator, "expire_access_tokens")
    assert "refresh_token" not in credentials_schema(kind).model_fields
    saved: list[dict] = []
    client = adapter(kind, emulator, on_credentials_changed=saved.append)
    client.check_credentials()
    client.check_credentials()
    assert saved == []


def test_an_expired_token_is_refreshed_once_and_the_whole_credentials_persisted(kind, emulator):
    if not BY_KIND[kind].refreshes_tokens:
        keys_never_expire(kind, emulator)
        return
    # given
    old = emulator.credentials
    emulator.expire_access_tokens()
    saved: list[dict] = []
    client = adapter(kind, emulator, on_credentials_changed=saved.append)
    # when
    client.check_credentials()
    client.check_credentials()
    # then: one refresh, and what is handed back to persist is every credential, renewed
    assert len(saved) == 1
    assert token_calls(emulator) == 1
    schema = credentials_schema(kind)
    renewed = schema.model_validate(emulator.credentials).as_dict()
    assert _without_expiry(saved[0]) == _without_expiry(renewed)
    assert saved[0]["access_token"] != old["access_token"]
    assert saved[0]["refresh_token"] != old["refresh_token"]
    assert all(at > time.time() for name, at in saved[0].items() if name.endswith("_expires_at"))
    assert schema.model_validate(saved[0]).as_dict() == saved[0]


def _without_expiry(credentials: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in credentials.items() if not name.endswith("_expires_at")}


def test_an_expired_token_without_refresh_token_asks_to_reconnect(kind, emulator):
    if not BY_KIND[kind].refreshes_tokens:
        keys_never_expire(kind, emulator)
        return
    emulator.expire_access_tokens()
    client = adapter(kind, emulator, credentials={**emulator.credentials, "refresh_token": ""})

    with pytest.raises(CredentialsError, match="reconnect the shop"):
        client.check_credentials()


def test_a_used_refresh_token_is_refused_with_a_clear_message(kind, emulator):
    if not BY_KIND[kind].refreshes_tokens:
        keys_never_expire(kind, emulator)
        return
    stale = emulator.credentials
    emulator.expire_access_tokens()
    adapter(kind, emulator).check_credentials()  # refreshes: `stale`'s refresh token is used up
    emulator.expire_access_tokens()

    with pytest.raises(CredentialsError, match="refused the refresh token") as refused:
        adapter(kind, emulator, credentials=stale).check_credentials()

    for secret in secrets_of(kind, stale).values():
        assert secret not in str(refused.value)


# -- orders and webhooks --------------------------------------------------------------------------


def test_orders_are_read_in_every_state(kind, emulator):
    listings = _listings(kind, emulator, count_items=1, models=2)
    line = [(listings[0].item_id, listings[0].variant_id, 2)]
    client = adapter(kind, emulator)
    number = emulator.create_order(line, state=OrderState.PAID)
    (order,) = client.get_orders([number])
    assert order.state == OrderState.PAID
    assert order.lines[0].quantity == 2
    assert order.lines[0].sku.strip().upper() == listings[0].sku.strip().upper()
    for state in (OrderState.SHIPPED, OrderState.DELIVERED):
        emulator.move_order(number, state)
        assert client.get_orders([number])[0].state == state
    cancelled = emulator.create_order(line, state=OrderState.UNPAID)
    emulator.move_order(cancelled, OrderState.CANCELLED)
    now = timezone.now()
    window = {"updated_from": now - timedelta(days=2), "updated_to": now + timedelta(minutes=5)}
    found = {o.order_number: o.state for page in client.iter_orders(**window) for o in page}
    assert found[number] == OrderState.DELIVERED
    assert found[cancelled] == OrderState.CANCELLED


def test_webhook_signatures_are_accepted_and_refused(kind, emulator):
    listings = _listings(kind, emulator, count_items=1, models=1)
    number = emulator.create_order(
        [(listings[0].item_id, listings[0].variant_id, 1)], state=OrderState.PAID
    )
    url = "https://omni.example.com/api/webhooks/7"
    headers, body = emulator.signed_webhook(number, url)
    client = adapter(kind, emulator)
    event = client.verify_webhook(url=url, headers=headers, body=body)
    assert event.order_number == number
    assert event.delivery_id
    with pytest.raises(WebhookRejected) as excinfo:
        client.verify_webhook(url=url, headers=headers, body=body.replace(b"}", b" }", 1))
    assert excinfo.value.status == 401
    unsigned = {k: v for k, v in headers.items() if k.lower() != signature_header(kind).lower()}
    with pytest.raises(WebhookRejected):
        client.verify_webhook(url=url, headers=unsigned, body=body)


def test_pushes_are_signed_as_the_registry_says(kind, emulator):
    # given: a push as the marketplace delivers it
    scheme = WEBHOOK_SCHEME.fullmatch(BY_KIND[kind].webhook_scheme)
    assert scheme, f"unreadable webhook_scheme for {kind}"
    listings = _listings(kind, emulator, count_items=1, models=1)
    number = emulator.create_order(
        [(listings[0].item_id, listings[0].variant_id, 1)], state=OrderState.PAID
    )
    headers, body = emulator.signed_webhook(number, "https://omni.example.com/api/webhooks/7")
    # then: the signature is a SHA-256 digest, in the header and the encoding the row names
    signature = headers[scheme["header"]]
    if scheme["encoding"] == "hex":
        digest = bytes.fromhex(signature)
    else:
        digest = base64.b64decode(signature, validate=True)
    assert len(digest) == 32
    # and without that header the adapter refuses the push
    unsigned = {k: v for k, v in headers.items() if k != scheme["header"]}
    with pytest.raises(WebhookRejected) as refused:
        adapter(kind, emulator).verify_webhook(url="", headers=unsigned, body=body)
    assert refused.value.status == 401


@pytest.mark.django_db
def test_orders_are_downloaded_and_taken_through_the_pipeline(kind, emulator):
    # given: a POS variant with stock at the channel's order outlet, listed on the channel
    action = SyncLog.Action
    variant = VariantFactory(sku="TEE-BLK-M")
    emulator.put_item(shop_item("Black Tee", "TEE-BLK-M"))
    channel = connect(kind, emulator)
    stock_adjust(variant_id=variant.pk, outlet_id=channel.order_outlet_id, delta=10)
    scan(channel)
    listing = Listing.objects.get(channel=channel, sku="TEE-BLK-M")
    number = emulator.create_order(
        [(listing.item_id, listing.variant_ref, 2)], state=OrderState.UNPAID
    )

    def download() -> list[tuple[str, int]]:
        rows = order_manual_download(channel=channel, order_numbers=[number])
        return [(row.action, row.status) for row in rows]

    def stock() -> tuple[int, int]:
        row = Stock.objects.get(variant=variant, outlet=channel.order_outlet)
        return row.on_hand, row.reserved

    # when / then: each status does exactly its steps, and doing one twice writes nothing
    assert download() == [(action.CREATE_ORDER, 200)]
    assert stock() == (10, 2)
    emulator.move_order(number, OrderState.PAID)
    assert download() == [(action.CONVERT_ORDER_TO_INVOICE, 200), (action.ADD_PAYMENT, 200)]
    assert stock() == (8, 0)
    emulator.move_order(number, OrderState.SHIPPED)
    assert (action.CREATE_OUTBOUND_LOGISTIC, 200) in download()
    movements = StockMovement.objects.count()
    assert {status for _, status in download()} == {409}
    assert StockMovement.objects.count() == movements
    emulator.move_order(number, OrderState.RETURNED)
    assert download() == [(action.VOID_INVOICE, 200)]
    assert stock() == (10, 0)
    assert SalesOrder.objects.get(channel=channel).order_number == number


@pytest.mark.django_db
def test_a_push_never_leaves_an_order_oversold(kind, emulator, settings):
    # given: a real-time channel showing the POS's 10, a second one of another marketplace
    settings.OMNI_FLUSH_ON_COMMIT = False  # the "worker" below drains the outbox
    variant = VariantFactory(sku="TEE-BLK-M")
    emulator.put_item(shop_item("Black Tee", "TEE-BLK-M"))
    channel = connect(kind, emulator)
    Channel.objects.filter(pk=channel.pk).update(inventory_sync_mode=Channel.SyncMode.REALTIME)
    other_kind = "woocommerce" if kind == "shopee" else "shopee"
    with emulator_class(other_kind)(items=0, seed=22) as other_emulator:
        other_emulator.put_item(shop_item("Black Tee", "TEE-BLK-M"))
        other = Channel.objects.create(
            kind=other_kind, name="other shop", api_base_url=other_emulator.base_url,
            credentials=other_emulator.credentials, order_outlet=channel.order_outlet,
            inventory_sync_mode=Channel.SyncMode.REALTIME,
        )  # fmt: skip
        scan(channel)
        scan(other)
        outlet = channel.order_outlet_id
        stock_adjust(variant_id=variant.pk, outlet_id=outlet, delta=10)
        drain_all(channel, other)
        listing = Listing.objects.get(channel=channel, sku="TEE-BLK-M")
        ref = (listing.item_id, listing.variant_ref)
        assert emulator.listing_quantities()[ref] == 10
        # when: a buyer orders 2; the marketplace takes them off its stock at once
        number = emulator.create_order([(*ref, 2)], state=OrderState.PAID)
        assert emulator.listing_quantities()[ref] == 8
        # and before omni downloads the order, a receipt of 1 is pushed as the absolute 11
        stock_adjust(variant_id=variant.pk, outlet_id=outlet, delta=1)
        drain_all(channel, other)
        # then the order is downloaded, and the worker drains
        order_manual_download(channel=channel, order_numbers=[number])
        drain_all(channel, other)
        # then: every channel shows exactly what the POS has
        assert Stock.objects.get(variant=variant, outlet_id=outlet).on_hand == 9
        assert emulator.listing_quantities()[ref] == 9
        assert set(other_emulator.listing_quantities().values()) == {9}
        # when: an order placed and cancelled before omni saw it, with a push in between
        cancelled = emulator.create_order([(*ref, 3)], state=OrderState.UNPAID)
        stock_adjust(variant_id=variant.pk, outlet_id=outlet, delta=1)
        drain_all(channel, other)
        emulator.move_order(cancelled, OrderState.CANCELLED)  # the marketplace puts the 3 back
        order_manual_download(channel=channel, order_numbers=[cancelled])
        drain_all(channel, other)
        # then: the give-back is repaired too
        assert emulator.listing_quantities()[ref] == 10
        assert set(other_emulator.listing_quantities().values()) == {10}


def drain_all(*channels: Channel) -> None:
    for _ in range(20):
        for channel in channels:
            inventory_flush(channel_id=channel.pk)
        if not PendingPush.objects.filter(next_attempt_at__lte=timezone.now()).exists():
            return
    raise AssertionError("the outbox did not drain")


# -- the registry's pair --------------------------------------------------------------------------


def test_the_registry_builds_an_adapter_that_works_with_the_emulator(kind, emulator):
    marketplace = BY_KIND[kind]
    assert adapter_class(kind) is import_string(marketplace.adapter)
    assert adapter_class(kind).kind == kind
    assert credentials_schema(kind) is import_string(marketplace.credentials)
    assert type(emulator) is import_string(marketplace.emulator)
    built = build_adapter(kind, base_url=emulator.base_url, credentials=emulator.credentials)
    assert built.kind == kind
    built.check_credentials()


def test_the_same_seed_gives_the_same_shop(kind):
    cls = emulator_class(kind)
    with cls(items=20, seed=21) as one, cls(items=20, seed=21) as two:
        assert one.listing_quantities() == two.listing_quantities()
        assert one.listing_prices() == two.listing_prices()
        assert one.credentials == two.credentials
