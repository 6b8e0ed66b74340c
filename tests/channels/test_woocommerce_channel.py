"""A WooCommerce channel through omni's own services: scans, upload and catalog pushes, over
real HTTP against the WooCommerce emulator."""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from channels import selectors
from channels.catalog_sync import catalog_delete, catalog_push
from channels.emulators.woocommerce import WooCommerceEmulator
from channels.listings import listings_upload
from channels.models import Channel, Listing, Scan
from channels.scans import scan_request, scan_run
from tests.channels.test_woocommerce_adapter import grid_item, plain_item
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator(seed=9) as emulator:
        emulator.ids = {
            "plain": emulator.put_item(plain_item("MUG-01")),
            "grid": emulator.put_item(grid_item("Grid Tee", 2, 2, prefix="TEE")),
            "gone": emulator.put_item(plain_item("OLD-1")),
        }
        yield emulator


def make_channel(emulator: WooCommerceEmulator) -> Channel:
    return Channel.objects.create(
        kind="woocommerce",
        name="Woo Test",
        api_base_url=emulator.base_url,
        credentials=emulator.credentials,
        order_outlet=OutletFactory(code="web"),
    )


def run_scan(channel: Channel, kind: str = Scan.Kind.FULL) -> Scan:
    return scan_run(scan_id=scan_request(channel=channel, kind=kind, enqueue=False).pk)


def test_scans_map_listings_and_see_a_trashed_product_as_removed(woo):
    # given
    VariantFactory(sku="MUG-01")
    VariantFactory(sku="TEE-C00-S01")
    channel = make_channel(woo)
    # when
    full = run_scan(channel)
    woo.remove_item(woo.ids["gone"])
    updated = run_scan(channel, Scan.Kind.UPDATED)
    # then
    assert full.status == Scan.Status.SUCCEEDED, full.error
    assert updated.status == Scan.Status.SUCCEEDED, updated.error
    assert sorted(lst.sku for lst in selectors.sold_in_channel(channel)) == [
        "MUG-01",
        "TEE-C00-S01",
    ]
    gone = Listing.objects.get(channel=channel, item_id=woo.ids["gone"])
    assert gone.status == Listing.Status.REMOVED
    assert updated.seen == 1  # cost grows with what changed, not with the store


def test_upload_then_catalog_pushes_reach_the_store(woo):
    # given: a POS product with two variants, uploaded
    channel = make_channel(woo)
    product = ProductFactory(name="Canvas Tote", supplier="Secret Supplier", description="Roomy.")
    VariantFactory(product=product, sku="TOTE-1", options={"Color": "Natural"})
    VariantFactory(product=product, sku="TOTE-2", options={"Color": "Black"})
    report = listings_upload(
        channel=channel, variant_ids=product.variants.values_list("pk", flat=True)
    )
    assert report.failed == []
    item_id = Listing.objects.filter(channel=channel, sku="TOTE-1").get().item_id
    # when: renamed, repriced and deactivated in the POS
    product.name = "Canvas Tote XL"
    product.is_active = False
    product.save()
    product.variants.filter(sku="TOTE-2").update(retail_price=Decimal("59.00"))
    records = catalog_push(product_id=product.pk, changed=["name", "is_active"])
    # then
    assert [r.error for r in records] == ["", ""]
    stored = woo.product(item_id)
    assert (stored["name"], stored["status"]) == ("Canvas Tote XL", "draft")
    assert {v["sku"]: v["regular_price"] for v in woo.variations(item_id)}["TOTE-2"] == "59.00"
    assert "Secret Supplier" not in str([call.body for call in woo.log.writes])
    # and deleting it in the POS deletes it on the store, once
    deleted = catalog_delete(product_id=product.pk, items=[(channel.pk, item_id)])
    assert [r.error for r in deleted] == [""]
    assert item_id not in woo.product_ids()
