"""Catalog pushes over the Shopee emulator: the POS is the system of record (BRIEF §3)."""

from decimal import Decimal

import pytest

from catalog.models import Product, ProductImage, Variant
from catalog.services import product_delete, product_saved
from channels.emulators.shopee import ShopeeEmulator
from channels.listings import listings_upload
from channels.models import CatalogPush, Channel, Listing, Scan
from channels.scans import scan_request, scan_run
from tests.channels.builders import shop_item
from tests.factories import BrandFactory, OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db

PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


@pytest.fixture
def shop():
    with ShopeeEmulator(items=0, seed=8) as emulator:
        yield emulator


@pytest.fixture
def listed(shop):
    """A two-variant product uploaded to a Shopee channel."""
    product = ProductFactory(
        name="Linen Shirt",
        description="Breezy.",
        supplier="Secret Supplier Co",
        supplier_code="SUP-SECRET-77",
        tags="internal-tag",
    )
    url = shop.serve_file(f"/img/{product.pk}.png", PIXEL, "image/png")
    ProductImage.objects.create(product=product, url=url)
    VariantFactory(product=product, sku="LIN-WHT", options={"Color": "White"})
    VariantFactory(product=product, sku="LIN-BLU", options={"Color": "Blue"})
    channel = Channel.objects.create(
        kind="shopee",
        name="Shopee",
        api_base_url=shop.base_url,
        credentials=shop.credentials,
        order_outlet=OutletFactory(code="jkt"),
    )
    report = listings_upload(
        channel=channel, variant_ids=product.variants.values_list("pk", flat=True)
    )
    assert report.failed == []
    item_id = int(Listing.objects.filter(channel=channel).first().item_id)
    return product, channel, item_id


def save(product: Product, changed, created=(), capture=None):
    """Announce a POS change as every door does, and run what it queues after commit."""
    with capture(execute=True):
        product_saved(product=product, changed=changed, created_variant_ids=created)


def everything_sent(shop) -> str:
    return str([call.body for call in shop.log.writes])


def test_synced_fields_arrive_and_pos_only_fields_never_do(
    shop, listed, django_capture_on_commit_callbacks
):
    product, _channel, item_id = listed
    # when: staff change synced and POS-only fields together
    Product.objects.filter(pk=product.pk).update(
        name="Linen Shirt Relaxed",
        description="Now relaxed fit.",
        weight_kg=Decimal("0.400"),
        brand=BrandFactory(name="Kaya Living"),
        supplier="Other Secret Supplier",
        tags="x-tag",
    )
    Variant.objects.filter(sku="LIN-BLU").update(retail_price=Decimal("129000"))
    product.refresh_from_db()
    save(
        product,
        ["name", "description", "weight_kg", "brand", "supplier", "tags", "variants"],
        capture=django_capture_on_commit_callbacks,
    )
    # then
    item = shop.item(item_id)
    assert item["item_name"] == "Linen Shirt Relaxed"
    assert item["description"] == "Now relaxed fit."
    assert Decimal(str(item["weight"])) == Decimal("0.4")
    prices = {
        m["model_sku"]: Decimal(str(m["price_info"][0]["original_price"]))
        for m in item["models"]["model"]
    }
    assert prices["LIN-BLU"] == Decimal("129000")
    sent = everything_sent(shop)
    for secret in ("Secret Supplier", "SUP-SECRET-77", "internal-tag", "x-tag"):
        assert secret not in sent
    assert CatalogPush.objects.filter(error="").count() == 1


def test_pos_only_changes_send_nothing(shop, listed, django_capture_on_commit_callbacks):
    product, _channel, _item_id = listed
    shop.log.clear()
    save(
        product,
        ["supplier", "supplier_price", "reorder_point", "tax_rate", "tags"],
        capture=django_capture_on_commit_callbacks,
    )
    assert shop.log.writes == []
    assert CatalogPush.objects.count() == 0


def test_a_variant_added_in_the_pos_is_added_to_the_channel_item(
    shop, listed, django_capture_on_commit_callbacks
):
    product, channel, item_id = listed
    new = VariantFactory(product=product, sku="LIN-GRN", options={"Color": "Green"})
    save(product, ["variants"], created=[new.pk], capture=django_capture_on_commit_callbacks)
    skus = {m["model_sku"] for m in shop.item(item_id)["models"]["model"]}
    assert skus == {"LIN-WHT", "LIN-BLU", "LIN-GRN"}
    assert Listing.objects.get(channel=channel, sku="LIN-GRN").variant == new


def test_deactivating_and_activating_in_the_pos_toggles_the_channel(
    shop, listed, django_capture_on_commit_callbacks
):
    product, _channel, item_id = listed
    Product.objects.filter(pk=product.pk).update(is_active=False)
    product.refresh_from_db()
    save(product, ["is_active"], capture=django_capture_on_commit_callbacks)
    assert shop.item(item_id)["item_status"] == "UNLIST"
    Product.objects.filter(pk=product.pk).update(is_active=True)
    product.refresh_from_db()
    save(product, ["is_active"], capture=django_capture_on_commit_callbacks)
    assert shop.item(item_id)["item_status"] == "NORMAL"


def test_deleting_in_the_pos_deletes_on_the_channel(
    shop, listed, django_capture_on_commit_callbacks
):
    product, channel, item_id = listed
    with django_capture_on_commit_callbacks(execute=True):
        product_delete(product=product)
    assert item_id not in shop.item_ids("NORMAL", "UNLIST")
    assert set(Listing.objects.filter(channel=channel).values_list("status", flat=True)) == {
        "removed"
    }


def test_deleting_on_the_channel_never_touches_the_pos(shop, listed):
    from channels.scans import scan_request, scan_run

    product, channel, item_id = listed
    shop.remove_item(str(item_id))
    scan = scan_request(channel=channel, kind="full", enqueue=False)
    scan_run(scan_id=scan.pk)
    product.refresh_from_db()
    assert product.is_active
    assert product.variants.count() == 2


def test_a_refused_push_is_recorded_and_the_rest_still_go(
    shop, listed, django_capture_on_commit_callbacks
):
    product, _channel, item_id = listed
    shop.set_in_promotion(item_id)  # Shopee refuses price changes during a promotion
    Variant.objects.filter(sku="LIN-WHT").update(retail_price=Decimal("1000"))
    Product.objects.filter(pk=product.pk).update(name="Linen Shirt II")
    product.refresh_from_db()
    save(product, ["name", "variants"], capture=django_capture_on_commit_callbacks)
    assert shop.item(item_id)["item_name"] == "Linen Shirt II"
    push = CatalogPush.objects.get()
    assert "promotion" in push.error


def test_uploading_a_missing_variant_adds_it_to_the_existing_item(shop, listed):
    # given: a variant created in the POS that the channel does not list yet
    product, channel, item_id = listed
    new = VariantFactory(product=product, sku="LIN-RED", options={"Color": "Red"})
    items_before = shop.item_ids()
    # when: staff upload it from Not in Channel
    report = listings_upload(channel=channel, variant_ids=[new.pk])
    # then: the same item gained a model; no second item was created
    assert report.failed == []
    assert "added to its item" in report.done[0]
    assert shop.item_ids() == items_before
    assert "LIN-RED" in {m["model_sku"] for m in shop.item(item_id)["models"]["model"]}
    assert Listing.objects.get(channel=channel, sku="LIN-RED").item_id == str(item_id)


def test_a_push_keeps_the_sku_a_listing_carries_under_the_channels_prefix(
    shop, django_capture_on_commit_callbacks
):
    # given: the shop sells the POS's TEE-1 and TEE-2 as "TKP-TEE-1" and "TKP-TEE-2", matched
    # by the channel's prefix rule
    product = ProductFactory(name="Tee")
    url = shop.serve_file(f"/img/{product.pk}.png", PIXEL, "image/png")
    ProductImage.objects.create(product=product, url=url)
    for n, size in ((1, "S"), (2, "M")):
        VariantFactory(
            product=product, sku=f"TEE-{n}", retail_price=Decimal("50000"), options={"Size": size}
        )
    item_id = shop.put_item(shop_item("Tee", "TKP-TEE-1", "TKP-TEE-2"))
    channel = Channel.objects.create(
        kind="shopee", name="Shopee", api_base_url=shop.base_url, credentials=shop.credentials,
        order_outlet=OutletFactory(code="jkt"), sku_strip_prefixes="TKP-",
    )  # fmt: skip
    scan = scan_run(scan_id=scan_request(channel=channel, kind=Scan.Kind.FULL, enqueue=False).pk)
    assert scan.matched == 2
    # when: the POS changes the product's name and the variant's price
    Product.objects.filter(pk=product.pk).update(name="Tee Relaxed")
    Variant.objects.filter(product=product).update(retail_price=Decimal("65000"))
    product.refresh_from_db()
    save(product, ["name", "variants"], capture=django_capture_on_commit_callbacks)
    # then: the listing is updated under its own SKU, never renamed to the POS's
    item = shop.item(int(item_id))
    assert item["item_name"] == "Tee Relaxed"
    models = item.get("models", {}).get("model") or [item]
    skus = [model.get("model_sku") or model.get("item_sku") for model in models]
    assert sorted(skus) == ["TKP-TEE-1", "TKP-TEE-2"]
    assert set(shop.listing_prices().values()) == {Decimal("65000")}
    assert CatalogPush.objects.get().error == ""
