"""LazadaAdapter against the Lazada emulator, over real HTTP on 127.0.0.1: what is Lazada's own.

What every marketplace shares (credentials, throttling, token refresh, scans, pushes, orders,
webhooks) is a scenario of test_contract.py.
"""

import hashlib
import hmac
import json
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from channels.adapters import build_adapter
from channels.adapters.base import (
    AdapterError,
    CredentialsError,
    OrderNumbersMalformed,
    OrderState,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    RemoteOrderLine,
    UploadProduct,
    UploadVariant,
    WebhookRejected,
)
from channels.adapters.http import RetryPolicy
from channels.adapters.lazada import adapter as adapter_module
from channels.adapters.lazada.adapter import LazadaAdapter, listings_from_product
from channels.adapters.lazada.client import (
    AUTH_URL,
    PRICE_QUANTITY,
    PRODUCT_CREATE,
    PRODUCT_UPDATE,
    TOKEN_REFRESH,
    auth_url_for,
    lazada_sign,
)
from channels.adapters.lazada.orders import (
    STATUS_TABLE,
    order_from_payload,
    order_state,
    webhook_event,
)
from channels.emulators import lazada as emulator_module
from channels.emulators.base import Faults
from channels.emulators.lazada import ORDER_STATUSES, LazadaEmulator
from tests.channels.builders import grid_item, shop_item
from tests.channels.conftest import FAST_RETRY

NOW = datetime.now(UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def lazada() -> Iterator[LazadaEmulator]:
    """A small Lazada shop: 40 products, about a third of them with options."""
    with LazadaEmulator(items=40, seed=7) as emulator:
        yield emulator


def lazada_adapter(emulator: LazadaEmulator, **overrides: Any) -> LazadaAdapter:
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "credentials": emulator.credentials,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return LazadaAdapter(**options)


def all_listings(adapter: LazadaAdapter, **kwargs: Any) -> list[RemoteListing]:
    return [listing for page in adapter.iter_listing_pages(**kwargs) for listing in page]


def key(listing: RemoteListing) -> tuple[str, str]:
    return listing.item_id, listing.variant_id


def tee(image: str, **changes: Any) -> UploadProduct:
    fields: dict[str, Any] = {
        "name": "Omni Test Tee",
        "description": "Soft cotton.",
        "category": "Clothing > T-Shirts",
        "brand": "Northwind",
        "images": (image,),
        "weight_kg": Decimal("0.25"),
        "dimensions_cm": (Decimal("30"), Decimal("20"), Decimal("2.5")),
        "is_active": True,
        "option_names": ("Color", "Size"),
        "variants": (
            UploadVariant("OT-BLK-M", Decimal("19.90"), 5, {"Color": "Black", "Size": "M"}),
            UploadVariant("OT-BLK-L", Decimal("19.90"), 6, {"Color": "Black", "Size": "L"}),
            UploadVariant("OT-WHT-M", Decimal("21"), 7, {"Color": "White", "Size": "M"}),
        ),
    }
    fields.update(changes)
    return UploadProduct(**fields)


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4b60000000049454e44ae426082"
)


# -- signing ----------------------------------------------------------------------------------


def test_signature_matches_lazadas_official_test_vector():
    # From Lazada's developer guide (shared/reference/marketplace-apis.md, signing vectors).
    sign = lazada_sign(
        app_secret="helloworld",
        path="/order/get",
        params={
            "app_key": "123456",
            "access_token": "test",
            "order_id": "1234",
            "sign_method": "sha256",
            "timestamp": "1517820392000",
        },
    )

    assert sign == "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"


def test_post_signature_covers_the_form_payload_and_leaves_out_sign_and_empty_values():
    # Base string = API path + every parameter but `sign`, sorted by name, as name + value:
    #   /product/price_quantity/update
    #   access_token50000601c0a2bRjK0r6wJ  app_key123456
    #   payload<Request><Product><Skus><Sku><ItemId>3100000001</ItemId><SkuId>17000000001
    #     </SkuId><Quantity>20</Quantity></Sku></Skus></Product></Request>   (one line)
    #   sign_methodsha256  timestamp1733300000000
    # Expected value computed once in a shell, outside the code under test:
    #   echo -n "$BASE" | openssl dgst -sha256 -hmac helloworld   (then upper-cased)
    # and again with python3 hmac.new(key, base, hashlib.sha256).hexdigest().upper().
    payload = (
        "<Request><Product><Skus><Sku><ItemId>3100000001</ItemId><SkuId>17000000001</SkuId>"
        "<Quantity>20</Quantity></Sku></Skus></Product></Request>"
    )
    sign = lazada_sign(
        app_secret="helloworld",
        path="/product/price_quantity/update",
        params={
            "timestamp": "1733300000000",
            "sign_method": "sha256",
            "payload": payload,
            "app_key": "123456",
            "access_token": "50000601c0a2bRjK0r6wJ",
            "sign": "ignored",
            "update_after": "",
        },
    )

    assert sign == "95A8F0067DBF42AF585DB8594814F8EB53C350FC570E795C02452AEC7E7EEDF3"


def test_webhook_signature_matches_a_vector_computed_by_hand():
    # Authorization = lowercase hex HMAC-SHA256(app_secret, app_key + raw body), computed once:
    #   echo -n "123456$BODY" | openssl dgst -sha256 -hmac helloworld
    body = (
        b'{"seller_id":"100123456","message_type":0,"data":{"order_status":"pending",'
        b'"status_update_time":1733300000,"trade_order_id":"820000000001",'
        b'"trade_order_line_id":"820000500001"},"timestamp":1733300001,"site":"lazada_sg"}'
    )
    adapter = LazadaAdapter(
        base_url="https://api.lazada.sg/rest",
        credentials={"app_key": "123456", "app_secret": "helloworld", "access_token": "t"},
    )
    signature = "a204f187d01e3d16af54bb4eaa612086b19cae1a5a2d72b2b53fc6f002997467"

    headers = {"authorization": signature}  # header names arrive in any case

    event = adapter.verify_webhook(url="https://omni.test/hooks/lazada", headers=headers, body=body)

    assert (event.topic, event.order_number) == ("order_status", "820000000001")


def test_each_change_of_an_order_pushed_is_a_delivery_of_its_own():
    def push(data: dict[str, Any], at: int) -> bytes:
        body = {"seller_id": "1", "message_type": 0, "data": data, "timestamp": at}
        return json.dumps(body).encode()

    order = {"trade_order_id": "820000000001", "trade_order_line_id": "820000500001"}
    paid = {**order, "order_status": "pending", "status_update_time": 1733300000}
    # a redelivery of one change (sent again a second later) is the same delivery...
    assert webhook_event(push(paid, 1)).delivery_id == webhook_event(push(paid, 2)).delivery_id
    # ...and the next change is another, even from a push that leaves its status out
    cancelled = {**paid, "order_status": "canceled", "status_update_time": 1733300500}
    assert webhook_event(push(paid, 1)).delivery_id != webhook_event(push(cancelled, 9)).delivery_id
    bare = [webhook_event(push(order, at)).delivery_id for at in (1, 9)]
    assert bare[0] != bare[1]


def test_tokens_are_refreshed_on_lazadas_auth_host_only_for_lazadas_own_hosts():
    assert auth_url_for("https://api.lazada.co.th/rest") == AUTH_URL
    assert auth_url_for("http://127.0.0.1:9104/rest") == "http://127.0.0.1:9104/rest"


# -- credentials --------------------------------------------------------------------------------


def test_a_wrong_app_secret_is_refused_with_lazadas_code_and_words(lazada):
    # The contract suite checks that wrong credentials change nothing; here, what Lazada says.
    adapter = lazada_adapter(lazada, credentials=lazada.wrong_credentials())
    item_id, sku_id = next(iter(lazada.listing_quantities()))

    with pytest.raises(CredentialsError) as refused:
        adapter.check_credentials()
    assert "check the app key and app secret" in str(refused.value)
    assert refused.value.code == "IncompleteSignature"
    with pytest.raises(CredentialsError):
        adapter.update_quantities([QuantityUpdate(item_id, sku_id, 999)])
    assert [call.reply["code"] for call in lazada.log.writes_to(PRICE_QUANTITY)] == [
        "IncompleteSignature"
    ]


def test_invalid_credentials_name_the_fields_but_not_the_values(lazada):
    with pytest.raises(CredentialsError) as refused:
        build_adapter(
            "lazada",
            base_url=lazada.base_url,
            credentials={"app_key": "", "app_secret": "sekrit", "token": "sekrit-too"},
        )

    message = str(refused.value)
    assert "app_key" in message
    assert "access_token" in message
    assert "sekrit" not in message


# -- reading listings ------------------------------------------------------------------------------


def test_full_iteration_returns_every_sku_as_the_shop_holds_it(lazada):
    adapter = lazada_adapter(lazada)

    listings = all_listings(adapter)

    assert {key(listing): listing.quantity for listing in listings} == lazada.listing_quantities()
    assert {key(listing): listing.price for listing in listings} == lazada.listing_prices()
    assert {listing.status for listing in listings} <= {"live", "inactive"}
    assert all(listing.updated_at.tzinfo is UTC for listing in listings)
    with_options = [listing for listing in listings if " - " in listing.title]
    assert with_options, "the generated shop should have products with options"
    product = lazada.product(with_options[0].item_id)
    assert with_options[0].title.startswith(product["attributes"]["name"] + " - ")


def test_iteration_pages_follow_lazadas_page_size():
    with LazadaEmulator(items=120, seed=3) as emulator:
        adapter = lazada_adapter(emulator)

        pages = list(adapter.iter_listing_pages())

        assert len(pages) == 3  # 50 + 50 + 20 products
        assert emulator.log.count("/products/get") == 3
        assert adapter.stats.calls == 3


def test_a_catalog_past_lazadas_offset_limit_is_read_in_creation_windows(monkeypatch):
    # given: Lazada's offset cap scaled down from 10,000 to 100, on both sides of the wire
    monkeypatch.setattr(adapter_module, "MAX_PRODUCTS_OFFSET", 100)
    monkeypatch.setattr(emulator_module, "MAX_PRODUCTS_OFFSET", 100)
    with LazadaEmulator(items=400, seed=5) as emulator:
        adapter = lazada_adapter(emulator)
        # when
        listings = all_listings(adapter)
        # then: every SKU once, and Lazada never had to refuse an offset
        assert sorted(key(listing) for listing in listings) == sorted(emulator.listing_quantities())
        # 8 pages of 50 products, plus about two calls per halving of the creation window
        # (2012 to now, halved until a window holds at most 150 products)
        assert emulator.log.count("/products/get") < 8 + 2 * 12


def test_endless_throttling_is_reported_with_one_of_lazadas_throttling_codes():
    with LazadaEmulator(seed=1) as emulator:
        emulator.set_faults(throttle_rate=1.0)
        policy = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)
        adapter = lazada_adapter(emulator, retry=policy)

        with pytest.raises(AdapterError) as failed:
            adapter.check_credentials()

        assert failed.value.code in {"901", "4154", "ApiCallLimit"}
        assert "throttling" in str(failed.value)
        assert (adapter.stats.calls, adapter.stats.retries) == (3, 2)


def test_incremental_iteration_returns_only_changed_and_deleted_products(lazada):
    # given: a scan watermark, then one price change, one rename and one deletion
    watermark = datetime.now(UTC)
    quantities = lazada.listing_quantities()
    (priced, priced_sku), (renamed, _), (deleted, _) = (
        next(k for k in quantities if k[0] == item)
        for item in list(dict.fromkeys(i for i, _ in quantities))[:3]
    )
    lazada.change_sku(priced, priced_sku, price=Decimal("12.34"))
    lazada.touch_item(renamed, name="Renamed on Lazada")
    lazada.remove_item(deleted)
    adapter = lazada_adapter(lazada)
    # when
    listings = all_listings(adapter, updated_since=watermark)
    # then
    assert {listing.item_id for listing in listings} == {priced, renamed, deleted}
    changed = next(listing for listing in listings if listing.variant_id == priced_sku)
    assert changed.price == Decimal("12.34")
    assert all(
        listing.title.startswith("Renamed on Lazada")
        for listing in listings
        if listing.item_id == renamed
    )
    assert {listing.status for listing in listings if listing.item_id == deleted} == {"removed"}
    assert deleted not in {listing.item_id for listing in all_listings(adapter)}


def test_parser_maps_the_reference_products_payload():
    # The /products/get example of shared/reference/marketplace-apis.md §3.8 (numbers as
    # strings, as Lazada often sends them), plus a deleted SKU.
    product = {
        "item_id": "3100000001",
        "primary_category": "10001234",
        "created_time": "1730000000000",
        "updated_time": "1733300000000",
        "status": "Active",
        "attributes": {"name": "Bamboo Cup", "brand": "No Brand"},
        "skus": [
            {
                "SkuId": 17000000001,
                "SellerSku": "CUP-GRN",
                "ShopSku": "3100000001_SGAMZ-17000000001",
                "quantity": 30,
                "Available": 28,
                "price": Decimal("12.9"),
                "special_price": Decimal("9.9"),
                "Status": "active",
            },
            {"SkuId": 17000000002, "SellerSku": "CUP-RED", "price": "12.9", "Status": "deleted"},
        ],
    }
    when = datetime(2024, 12, 4, 8, 13, 20, tzinfo=UTC)

    assert listings_from_product(product, include_removed=False) == [
        RemoteListing(
            "3100000001", "17000000001", "CUP-GRN", "Bamboo Cup", Decimal("12.9"), 30, "live", when
        )
    ]
    removed = listings_from_product(product, include_removed=True)[1]
    assert (removed.variant_id, removed.status) == ("17000000002", "removed")


# -- creating and updating products ---------------------------------------------------------------


def test_create_product_with_variants_is_returned_by_the_next_iteration(lazada):
    # given
    image = lazada.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = lazada_adapter(lazada)
    # when
    created = adapter.create_product(tee(image))
    # then
    assert [(c.sku, c.title, c.price, c.quantity, c.status) for c in created] == [
        ("OT-BLK-M", "Omni Test Tee - Black,M", Decimal("19.9"), 5, "live"),
        ("OT-BLK-L", "Omni Test Tee - Black,L", Decimal("19.9"), 6, "live"),
        ("OT-WHT-M", "Omni Test Tee - White,M", Decimal("21"), 7, "live"),
    ]
    assert {key(c) for c in created} <= {key(listing) for listing in all_listings(adapter)}
    product = lazada.product(created[0].item_id)
    assert product["variation"]["Variation1"]["options"] == ["Black", "White"]
    assert product["skus"][0]["package_height"] == "2.50"
    assert lazada.log.count("/image/migrate") == 1
    assert len(lazada.log.writes_to(PRODUCT_CREATE)) == 1


def test_create_product_without_options_by_category_id_and_inactive(lazada):
    image = lazada.serve_file("/cdn/mug.png", PNG, "image/png")
    product = tee(
        image,
        name="Omni Mug",
        description="",
        category="10002006",  # a Lazada category id typed into the POS category
        brand="",
        is_active=False,
        option_names=(),
        variants=(UploadVariant("MUG-1", Decimal("8"), 12),),
    )

    created = lazada_adapter(lazada).create_product(product)

    assert [(c.sku, c.title, c.quantity, c.status) for c in created] == [
        ("MUG-1", "Omni Mug", 12, "inactive")
    ]
    assert lazada.product(created[0].item_id)["attributes"]["brand"] == "No Brand"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"category": "Spaceships"}, "no category named 'Spaceships'"),
        ({"dimensions_cm": None}, "needs package dimensions"),
        ({"weight_kg": None}, "needs a weight"),
        ({"images": ()}, "needs at least one image"),
        ({"option_names": ("Color", "Size", "Fit")}, "allows 2 option names"),
    ],
)
def test_create_product_refuses_what_lazada_would_before_changing_anything(
    lazada, changes, message
):
    image = lazada.serve_file("/cdn/tee.png", PNG, "image/png")
    items_before = lazada.item_ids()

    with pytest.raises(AdapterError, match=message) as refused:
        lazada_adapter(lazada).create_product(tee(image, **changes))

    assert not refused.value.retryable
    assert lazada.item_ids() == items_before
    assert lazada.log.writes == []


def test_a_product_lazada_refuses_is_not_created_and_the_reason_is_shown(lazada):
    image = lazada.serve_file("/cdn/tee.png", PNG, "image/png")
    odd_price = UploadVariant("X-1", Decimal("19.999"), 1, {"Color": "A", "Size": "B"})
    product = tee(image, variants=(odd_price,))
    items_before = lazada.item_ids()

    with pytest.raises(AdapterError) as refused:
        lazada_adapter(lazada).create_product(product)

    assert "4104" in str(refused.value)
    assert "PRICE_PRECISION" in str(refused.value)
    assert lazada.item_ids() == items_before


def test_update_product_overwrites_synced_fields_and_prices_only(lazada):
    # given: a product on Lazada, and its quantity changed since
    image = lazada.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = lazada_adapter(lazada)
    created = adapter.create_product(tee(image))
    item_id = created[0].item_id
    lazada.change_sku(item_id, created[0].variant_id, quantity=42)
    renamed = tee(
        image,
        name="Omni Tee v2",
        weight_kg=Decimal("0.3"),
        variants=(
            UploadVariant(" ot-blk-m ", Decimal("24.50"), 0, {"Color": "Black", "Size": "M"}),
        ),
    )
    # when
    adapter.update_product(item_id, renamed)
    # then
    product = lazada.product(item_id)
    assert product["attributes"]["name"] == "Omni Tee v2"
    by_sku = {sku["SellerSku"]: sku for sku in product["skus"]}
    assert Decimal(str(by_sku["OT-BLK-M"]["price"])) == Decimal("24.50")
    assert by_sku["OT-BLK-M"]["quantity"] == 42  # stock is the inventory sync's business
    assert Decimal(str(by_sku["OT-WHT-M"]["price"])) == Decimal("21")
    assert {sku["package_weight"] for sku in product["skus"]} == {"0.30"}
    [update] = lazada.log.writes_to(PRODUCT_UPDATE)
    assert '"quantity"' not in update.body.decode()


def test_add_variants_twice_adds_them_once(lazada):
    image = lazada.serve_file("/cdn/tee.png", PNG, "image/png")
    adapter = lazada_adapter(lazada)
    item_id = adapter.create_product(tee(image))[0].item_id
    new = [UploadVariant("OT-RED-S", Decimal("19.90"), 3, {"Color": "Red", "Size": "S"})]

    first = adapter.add_variants(item_id, tee(image), new)
    again = adapter.add_variants(item_id, tee(image), new)

    assert [(c.sku, c.title, c.quantity) for c in first] == [
        ("OT-RED-S", "Omni Test Tee - Red,S", 3)
    ]
    assert again == first
    assert len(lazada.product(item_id)["skus"]) == 4
    assert len(lazada.log.writes_to(PRODUCT_CREATE)) == 2  # the product, then the one variant


def test_variants_cannot_be_added_to_a_product_without_options(lazada):
    item_id = lazada.put_item(shop_item("Plain PLAIN-1", "PLAIN-1"))
    image = lazada.serve_file("/cdn/tee.png", PNG, "image/png")

    with pytest.raises(AdapterError, match="listed without options"):
        lazada_adapter(lazada).add_variants(
            item_id, tee(image), [UploadVariant("PLAIN-2", Decimal("1"), 1, {"Color": "Red"})]
        )


def test_set_active_twice_has_one_effect_each_way(lazada):
    item_id = lazada.put_item(grid_item("ACT", 2, 2, sku="ACT"))
    adapter = lazada_adapter(lazada)

    adapter.set_active(item_id, False)
    adapter.set_active(item_id, False)  # Lazada answers E0004 "not online": already done
    offline = {listing.status for listing in all_listings(adapter) if listing.item_id == item_id}
    adapter.set_active(item_id, True)
    adapter.set_active(item_id, True)

    assert offline == {"inactive"}
    assert lazada.product(item_id)["status"] == "Active"
    assert {sku["Status"] for sku in lazada.product(item_id)["skus"]} == {"active"}


def test_delete_product_twice_has_one_effect(lazada):
    item_id = lazada.put_item(grid_item("DEL", 2, 1, sku="DEL"))
    watermark = datetime.now(UTC)
    adapter = lazada_adapter(lazada)

    adapter.delete_product(item_id)
    adapter.delete_product(item_id)

    assert item_id not in {listing.item_id for listing in all_listings(adapter)}
    removed = [
        listing.status
        for listing in all_listings(adapter, updated_since=watermark)
        if listing.item_id == item_id
    ]
    assert removed == ["removed", "removed"]
    assert len(lazada.log.writes_to("/product/remove")) == 1


# -- pushing quantities and prices -----------------------------------------------------------------


def test_update_quantities_for_120_skus_makes_three_calls():
    with LazadaEmulator(seed=2) as emulator:
        # given: one product with 12 colours x 10 sizes
        item_id = emulator.put_item(grid_item("BIG", 12, 10, sku="BIG"))
        skus = [str(sku["SkuId"]) for sku in emulator.product(item_id)["skus"]]
        updates = [QuantityUpdate(item_id, sku, n) for n, sku in enumerate(skus)]
        # when
        results = lazada_adapter(emulator).update_quantities(updates)
        # then
        calls = emulator.log.writes_to(PRICE_QUANTITY)
        assert len(calls) == math.ceil(120 / 50) == emulator.update_calls("stock")
        assert sorted(call.body.count(b"%3CSku%3E") for call in calls) == [20, 50, 50]
        assert all(result.ok for result in results)
        quantities = emulator.listing_quantities()
        assert [quantities[(item_id, sku)] for sku in skus] == list(range(120))


def test_an_items_skus_go_in_one_call_so_no_two_calls_at_once_edit_it():
    # given: 30 items of 3 SKUs, updated in the order a flush may list them (every item's
    # first SKU, then every second, then every third), and Lazada applying an edit for as
    # long as a round trip takes, refusing another edit of the item meanwhile (4147)
    with LazadaEmulator(seed=3, faults=Faults(latency=0.1)) as emulator:
        items = [emulator.put_item(grid_item(f"T{n}", 3, 1, sku=f"T{n}")) for n in range(30)]
        skus = {item: [str(s["SkuId"]) for s in emulator.product(item)["skus"]] for item in items}
        updates = [QuantityUpdate(item, skus[item][k], 40 + k) for k in range(3) for item in items]
        # when
        results = lazada_adapter(emulator).update_quantities(updates)
        # then: two calls of whole items, sent at once, neither refused
        assert all(result.ok for result in results)
        assert emulator.log.count(PRICE_QUANTITY) == 2
        assert emulator.peak_in_flight == 2
        assert emulator.log.faults["4147"] == 0
        quantities = emulator.listing_quantities()
        assert [quantities[(item, skus[item][2])] for item in items] == [42] * 30


def test_an_item_with_more_skus_than_a_call_takes_is_edited_one_call_after_another():
    # given: a product of 120 SKUs beside 20 single-SKU products, Lazada refusing overlapping
    # edits of one item
    with LazadaEmulator(seed=4, faults=Faults(latency=0.1)) as emulator:
        big = emulator.put_item(grid_item("BIG", 12, 10, sku="BIG"))
        small = [emulator.put_item(shop_item(f"One {n}", f"ONE-{n}")) for n in range(20)]
        keys = [k for k in emulator.listing_quantities() if k[0] in (big, *small)]
        # when
        results = lazada_adapter(emulator).update_quantities(
            [QuantityUpdate(item, sku, 7) for item, sku in keys]
        )
        # then: the fewest calls (three of the 140 SKUs), those of the big product one after
        # another, none refused
        assert all(result.ok for result in results)
        assert emulator.log.faults["4147"] == 0
        assert emulator.log.count(PRICE_QUANTITY) == math.ceil(140 / 50)
        assert all(emulator.listing_quantities()[k] == 7 for k in keys)


def test_items_too_big_to_share_a_call_whole_are_cut_into_full_calls_sent_in_two_waves():
    # given: four products of 26 SKUs (two do not fit in one call of 50)
    with LazadaEmulator(seed=6, faults=Faults(latency=0.1)) as emulator:
        items = [emulator.put_item(grid_item(f"M{n}", 13, 2, sku=f"M{n}")) for n in range(4)]
        keys = [k for k in emulator.listing_quantities() if k[0] in items]
        # when
        results = lazada_adapter(emulator).update_quantities(
            [QuantityUpdate(item, sku, 9) for item, sku in keys]
        )
        # then: three calls (50, 50 and 4 SKUs) rather than four, none refused
        assert all(result.ok for result in results)
        assert emulator.log.count(PRICE_QUANTITY) == 3
        assert emulator.log.faults["4147"] == 0
        assert all(emulator.listing_quantities()[k] == 9 for k in keys)


def test_an_edit_refused_while_another_worker_edits_the_item_is_sent_again():
    # given: two workers pushing the same item at the same time (a stock flush and a price
    # push), Lazada refusing the later one with 4147 while it applies the first
    with LazadaEmulator(items=4, seed=5, faults=Faults(latency=0.2)) as emulator:
        item, sku = next(iter(emulator.listing_quantities()))
        patient = RetryPolicy(attempts=5, base_delay=0.2, max_delay=1.0)
        stock, price = (lazada_adapter(emulator, retry=patient) for _ in range(2))
        start = threading.Barrier(2)

        def push_stock() -> list[PushResult]:
            start.wait()
            return stock.update_quantities([QuantityUpdate(item, sku, 21)])

        def push_price() -> list[PushResult]:
            start.wait()
            return price.update_prices([PriceUpdate(item, sku, Decimal("9.90"))])

        # when
        with ThreadPoolExecutor(2) as pool:
            pushed = [pool.submit(push_stock), pool.submit(push_price)]
            results = [result for future in pushed for result in future.result()]
        # then: one was refused, waited and went again: both changes are on Lazada
        assert emulator.log.faults["4147"] >= 1
        assert all(result.ok for result in results)
        assert emulator.listing_quantities()[(item, sku)] == 21
        assert emulator.listing_prices()[(item, sku)] == Decimal("9.90")


def test_a_sku_refused_in_detail_for_an_edit_under_way_may_be_pushed_again():
    detail = [
        {"field": "SkuId", "code": "4147", "message": "Item is being edited", "sku_id": "11"},
        {"field": "SkuId", "code": "4152", "message": "Held by orders", "sku_id": "12"},
    ]

    refused = adapter_module._refused(detail)

    assert isinstance(refused["11"], AdapterError)
    assert refused["11"].retryable
    assert refused["12"] == "Held by orders"


def test_prices_of_several_products_share_one_call(lazada):
    quantities = lazada.listing_quantities()
    updates = [PriceUpdate(item, sku, Decimal("7.50")) for item, sku in list(quantities)[:30]]

    results = lazada_adapter(lazada).update_prices(updates)

    assert all(result.ok for result in results)
    assert lazada.update_calls("price") == 1
    assert lazada.update_calls("stock") == 0
    prices = lazada.listing_prices()
    assert {prices[(u.item_id, u.variant_id)] for u in updates} == {Decimal("7.50")}


def test_skus_lazada_names_in_detail_fail_and_the_others_succeed(lazada):
    # given: one SKU with 5 units held by orders, one product in a campaign (no decrease)
    first_sku_of = {}
    for item, sku in lazada.listing_quantities():
        first_sku_of.setdefault(item, sku)
    (held_item, held_sku), (camp_item, camp_sku), (free_item, free_sku) = list(
        first_sku_of.items()
    )[:3]
    lazada.set_reserved(held_item, held_sku, 5)
    lazada.change_sku(camp_item, camp_sku, quantity=10)
    lazada.set_campaign_lock(camp_item)
    adapter = lazada_adapter(lazada)
    # when
    results = adapter.update_quantities(
        [
            QuantityUpdate(held_item, held_sku, 2),
            QuantityUpdate(camp_item, camp_sku, 3),
            QuantityUpdate(free_item, free_sku, 77),
        ]
    )
    prices = adapter.update_prices([PriceUpdate(free_item, free_sku, Decimal("0"))])
    # then
    assert [result.ok for result in results] == [False, False, True]
    assert "held by orders" in results[0].error
    assert "may not decrease" in results[1].error
    assert lazada.listing_quantities()[(free_item, free_sku)] == 77
    assert lazada.listing_quantities()[(camp_item, camp_sku)] == 10
    assert not prices[0].ok
    assert "PRICE_IS_ZERO" in prices[0].error


def test_updates_that_name_no_sku_are_resolved_or_refused_clearly(lazada):
    plain = lazada.put_item(shop_item("Plain ONLY-ONE", "ONLY-ONE"))
    several = lazada.put_item(grid_item("MANY", 2, 1, sku="MANY"))
    adapter = lazada_adapter(lazada)

    results = adapter.update_quantities(
        [
            QuantityUpdate(plain, "", 9),
            QuantityUpdate(several, "", 9),
            QuantityUpdate("not-a-number", "", 9),
        ]
    )

    assert [result.ok for result in results] == [True, False, False]
    assert "has several SKUs" in results[1].error
    assert "not a Lazada item/SKU id" in results[2].error
    [only_sku] = [sku for item, sku in lazada.listing_quantities() if item == plain]
    assert lazada.listing_quantities()[(plain, only_sku)] == 9


def test_a_refused_call_fails_its_own_listings_only():
    # given: seeded faults that refuse one of two calls with HTTP 500, not the other (the two
    # go at once, so which one is not fixed)
    with LazadaEmulator(items=40, seed=1, faults=Faults(error_rate=0.5)) as emulator:
        keys = list(emulator.listing_quantities())
        assert len(keys) > 50
        adapter = lazada_adapter(emulator, retry=RetryPolicy(attempts=1))
        # when
        results = adapter.update_quantities([QuantityUpdate(i, s, 1234) for i, s in keys])
        # then: one call's listings failed together, retryably; the other call's went, and
        # each item's SKUs were in one of the two calls
        assert len(results) == len(keys)
        assert emulator.log.count(PRICE_QUANTITY) == 2
        sent = {k for k, result in zip(keys, results, strict=True) if result.ok}
        refused = set(keys) - sent
        assert sent
        assert refused
        assert all(r.retryable and "HTTP 500" in r.error for r in results if not r.ok)
        assert {item for item, _ in sent}.isdisjoint(item for item, _ in refused)
        quantities = emulator.listing_quantities()
        assert [quantities[k] == 1234 for k in keys] == [result.ok for result in results]


# -- orders -------------------------------------------------------------------------------------


def test_status_table_maps_every_lazada_order_item_status():
    assert set(STATUS_TABLE) == ORDER_STATUSES
    assert set(STATUS_TABLE.values()) == set(OrderState)


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        (["unpaid"], OrderState.UNPAID),
        (["pending", "packed"], OrderState.PAID),
        (["canceled", "canceled"], OrderState.CANCELLED),
        (["canceled", "ready_to_ship"], OrderState.PAID),
        (["shipped", "pending"], OrderState.SHIPPED),
        (["delivered", "shipped"], OrderState.DELIVERED),
        (["returned", "canceled"], OrderState.RETURNED),
        (["returned", "delivered"], OrderState.DELIVERED),
        (["shipped_back_success"], OrderState.RETURNED),
        (["a_status_lazada_adds_later"], OrderState.UNPAID),
    ],
)
def test_one_order_state_is_derived_from_the_item_statuses(statuses, state):
    assert order_state(statuses) is state


@pytest.mark.parametrize("state", list(OrderState))
def test_an_order_in_each_state_is_fetched_with_that_state(lazada, state):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    number = lazada.create_order([(item_id, sku_id, 2)], state=state)

    [order] = lazada_adapter(lazada).get_orders([number])

    assert (order.order_number, order.state) == (number, state)
    assert order.updated_at.tzinfo is UTC
    assert (order.paid_at is None) == (state is OrderState.UNPAID)


def test_an_order_moves_through_its_states_as_iteration_sees_it(lazada):
    # given
    (item_a, sku_a), (item_b, sku_b) = list(lazada.listing_quantities())[:2]
    number = lazada.create_order([(item_a, sku_a, 3), (item_b, sku_b, 1)], state=OrderState.UNPAID)
    adapter = lazada_adapter(lazada)
    seen = []
    # when
    for state in (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED, OrderState.RETURNED):
        lazada.move_order(number, state)
        pages = list(adapter.iter_orders(updated_from=NOW - HOUR, updated_to=NOW + HOUR))
        seen.append([(order.order_number, order.state) for page in pages for order in page])
    # then
    assert seen == [
        [(number, OrderState.PAID)],
        [(number, OrderState.SHIPPED)],
        [(number, OrderState.DELIVERED)],
        [(number, OrderState.RETURNED)],
    ]


def test_order_lines_count_units_and_leave_out_cancelled_items(lazada):
    (item_a, sku_a), (item_b, sku_b) = list(lazada.listing_quantities())[:2]
    number = lazada.create_order([(item_a, sku_a, 3), (item_b, sku_b, 1)])
    lazada.set_order_statuses(number, ["shipped", "shipped", "shipped", "canceled"])

    [order] = lazada_adapter(lazada).get_orders([number])

    assert order.state is OrderState.SHIPPED
    assert [(line.item_id, line.variant_id, line.quantity) for line in order.lines] == [
        (item_a, sku_a, 3)
    ]
    assert order.tracking_number.startswith("LZSG")
    assert order.status == "shipped,canceled"


def test_a_cancelled_order_keeps_its_lines_and_says_why(lazada):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    number = lazada.create_order([(item_id, sku_id, 1)])
    lazada.move_order(number, OrderState.CANCELLED)

    [order] = lazada_adapter(lazada).get_orders([number])

    assert order.state is OrderState.CANCELLED
    assert [line.quantity for line in order.lines] == [1]
    assert order.cancel_reason == "Change of mind"


def test_get_orders_leaves_out_numbers_lazada_does_not_know(lazada):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    number = lazada.create_order([(item_id, sku_id, 1)])

    orders = lazada_adapter(lazada).get_orders(["820999999999", number, number])

    assert [order.order_number for order in orders] == [number]
    calls = sum(lazada.log.counts.values())
    with pytest.raises(OrderNumbersMalformed, match="'not-a-number'"):
        lazada_adapter(lazada).get_orders([number, "not-a-number"])
    assert sum(lazada.log.counts.values()) == calls  # refused before asking Lazada


def test_iter_orders_pages_by_100_and_keeps_to_the_window():
    with LazadaEmulator(items=3, seed=4) as emulator:
        item_id, sku_id = next(iter(emulator.listing_quantities()))
        numbers = [emulator.create_order([(item_id, sku_id, 1)]) for _ in range(230)]
        adapter = lazada_adapter(emulator)

        pages = list(adapter.iter_orders(updated_from=NOW - HOUR, updated_to=NOW + HOUR))
        before = list(adapter.iter_orders(updated_from=NOW - 2 * HOUR, updated_to=NOW - HOUR))

        assert [len(page) for page in pages] == [100, 100, 30]
        assert sorted(order.order_number for page in pages for order in page) == sorted(numbers)
        assert before == []
        assert emulator.log.count("/orders/items/get") == 2 + 2 + 1  # 50 orders a call


def test_iter_orders_restarts_the_window_at_lazadas_offset_limit(monkeypatch):
    # given: Lazada's order offset cap scaled down from 5,000 to 100, on both sides
    monkeypatch.setattr(adapter_module, "MAX_ORDERS_OFFSET", 100)
    monkeypatch.setattr(emulator_module, "MAX_ORDERS_OFFSET", 100)
    clock = iter(range(1_790_000_000, 1_790_001_000))
    with LazadaEmulator(items=2, seed=4, clock=lambda: next(clock)) as emulator:
        item_id, sku_id = next(iter(emulator.listing_quantities()))
        numbers = [emulator.create_order([(item_id, sku_id, 1)]) for _ in range(250)]
        adapter = lazada_adapter(emulator)
        start = datetime.fromtimestamp(1_790_000_000, tz=UTC)
        # when
        orders = [
            order
            for page in adapter.iter_orders(updated_from=start, updated_to=start + HOUR)
            for order in page
        ]
        # then
        assert sorted(order.order_number for order in orders) == sorted(numbers)


def test_order_parser_maps_the_reference_payloads():
    # The order/get + order/items/get examples of shared/reference/marketplace-apis.md §3.8.
    header = {
        "order_id": "820000000001",
        "order_number": "820000000001",
        "statuses": ["canceled"],
        "created_at": "2024-12-01 10:00:00 +0800",
        "updated_at": "2024-12-01 12:30:00 +0800",
        "price": "25.80",
        "items_count": "2",
        "payment_method": "COD",
    }
    items = [
        {
            "order_item_id": "820000000101",
            "order_id": "820000000001",
            "sku": "CUP-GRN",
            "sku_id": "17000000001",
            "name": "Bamboo Cup",
            "status": "canceled",
            "item_price": "12.90",
            "paid_price": "12.90",
            "currency": "SGD",
            "cancel_return_initiator": "cancellation-customer",
            "reason": "Change of mind",
            "need_cancel_confirm": "false",
        }
    ]

    order = order_from_payload(header, items)

    assert order.state is OrderState.CANCELLED
    assert order.created_at == datetime(2024, 12, 1, 2, 0, tzinfo=UTC)
    assert order.updated_at == datetime(2024, 12, 1, 4, 30, tzinfo=UTC)
    assert (order.currency, order.total, order.payment_method) == ("SGD", Decimal("25.80"), "COD")
    line = RemoteOrderLine(
        "820000000101", "", "17000000001", "CUP-GRN", "Bamboo Cup", 1, Decimal("12.90")
    )
    assert order.lines == (line,)
    assert order.cancel_reason == "Change of mind"


# -- pushes ---------------------------------------------------------------------------------------


def test_a_signed_push_is_accepted_and_a_redelivery_has_the_same_id(lazada):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    number = lazada.create_order([(item_id, sku_id, 1)])
    adapter = lazada_adapter(lazada)
    headers, body = lazada.signed_webhook(number, "https://omni.test/hooks/lazada")

    event = adapter.verify_webhook(url="https://omni.test/hooks/lazada", headers=headers, body=body)
    again = adapter.verify_webhook(url="https://omni.test/hooks/lazada", headers=headers, body=body)
    lazada.move_order(number, OrderState.SHIPPED)
    headers, body = lazada.signed_webhook(number, "https://omni.test/hooks/lazada")
    moved = adapter.verify_webhook(url="https://omni.test/hooks/lazada", headers=headers, body=body)

    assert (event.topic, event.order_number) == ("order_status", number)
    assert again.delivery_id == event.delivery_id
    assert moved.delivery_id != event.delivery_id
    assert moved.payload["data"]["order_status"] == "shipped"


def test_pushes_with_a_missing_or_wrong_signature_are_refused_with_401(lazada):
    item_id, sku_id = next(iter(lazada.listing_quantities()))
    number = lazada.create_order([(item_id, sku_id, 1)])
    headers, body = lazada.signed_webhook(number, "https://omni.test/hooks/lazada")
    adapter = lazada_adapter(lazada)
    other = lazada_adapter(lazada, credentials=lazada.wrong_credentials())

    for attempt in (
        lambda: adapter.verify_webhook(url="", headers={}, body=body),
        lambda: adapter.verify_webhook(url="", headers=headers, body=body + b" "),
        lambda: other.verify_webhook(url="", headers=headers, body=body),
    ):
        with pytest.raises(WebhookRejected) as rejected:
            attempt()
        assert rejected.value.status == 401


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"data": {}}', b'{"message_type": 0}'])
def test_a_signed_push_that_is_not_a_lazada_push_is_refused_with_400(lazada, body):
    creds = lazada.credentials
    signature = hmac.new(
        creds["app_secret"].encode(), creds["app_key"].encode() + body, hashlib.sha256
    ).hexdigest()

    with pytest.raises(WebhookRejected) as rejected:
        lazada_adapter(lazada).verify_webhook(
            url="", headers={"Authorization": signature}, body=body
        )

    assert rejected.value.status == 400


# -- tokens -------------------------------------------------------------------------------------


def test_a_token_is_refreshed_behind_the_rest_path_of_lazadas_hosts(lazada):
    # The contract suite checks the refresh itself; here, through the API's /rest path, as
    # Lazada's hosts serve it.
    lazada.expire_access_tokens()
    saved: list[dict] = []
    adapter = lazada_adapter(
        lazada, base_url=lazada.base_url + "/rest", on_credentials_changed=saved.append
    )

    adapter.check_credentials()
    adapter.check_credentials()

    assert saved == [lazada.credentials]
    assert lazada.log.count("/rest" + TOKEN_REFRESH) == 1


def test_a_token_refresh_learns_the_seller_its_pushes_name():
    # given: a channel connected before omni stored the seller (no seller_id)
    with LazadaEmulator(items=2, seed=8, seller_id=100_777_001) as emulator:
        connected = {k: v for k, v in emulator.credentials.items() if k != "seller_id"}
        emulator.expire_access_tokens()
        saved: list[dict] = []
        adapter = lazada_adapter(
            emulator, credentials=connected, on_credentials_changed=saved.append
        )
        headers, body = emulator.signed_webhook(
            emulator.create_order([next(iter(emulator.listing_quantities())) + (1,)]), "u"
        )
        other_seller = json.loads(body) | {"seller_id": "100777999"}
        other_body = json.dumps(other_seller).encode()
        other_headers = {
            "Authorization": hmac.new(
                emulator.app_secret.encode(), emulator.app_key.encode() + other_body, hashlib.sha256
            ).hexdigest()
        }
        before = adapter.owns_push(
            adapter.verify_webhook(url="u", headers=other_headers, body=other_body)
        )

        # when
        adapter.check_credentials()

        # then: the refreshed credentials name the seller, and pushes for another seller of
        # the app are no longer taken as this channel's
        assert saved[-1]["seller_id"] == "100777001"
        own = adapter.verify_webhook(url="u", headers=headers, body=body)
        other = adapter.verify_webhook(url="u", headers=other_headers, body=other_body)
        assert (before, adapter.owns_push(own), adapter.owns_push(other)) == (True, True, False)
