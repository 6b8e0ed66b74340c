"""An upload whose product the marketplace created but omni could not read back says the product
exists, so staff do not create it twice (`kit.BaseAdapter.read_back`), over real HTTP."""

import pytest

from channels.listings import listings_upload
from tests.channels.test_contract import connect, tote
from tests.factories import VariantFactory

# The call that creates a product where the marketplace answers it with an id only, so the
# adapter reads the new product back with further calls (Shopify and WooCommerce answer with
# the product itself).
CREATE_CALLS = {
    "shopee": "_add_item",
    "lazada": "_create_product",
    "tiktok_shop": "_create_product",
    "tokopedia": "_create_product",
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(CREATE_CALLS))
def test_an_upload_whose_product_cannot_be_read_back_says_it_exists(kind, emulator, monkeypatch):
    # given: a marketplace that creates the product, then fails every call after it
    channel = connect(kind, emulator)
    product = tote(emulator)
    VariantFactory(product=product, sku="TOTE-NAT", options={})  # one SKU: one create call
    create = getattr(emulator, CREATE_CALLS[kind])

    def create_then_fail(*args):
        created = create(*args)
        emulator.set_faults(error_rate=1.0)
        return created

    monkeypatch.setattr(emulator, CREATE_CALLS[kind], create_then_fail)
    # when
    report = listings_upload(channel=channel, variant_ids=[product.variants.get().pk])
    # then: the upload fails saying the product exists, so staff do not create it twice
    (failed,) = report.failed
    assert "but reading it back failed" in failed
    assert "do not upload it again" in failed
    emulator.set_faults(error_rate=0.0)
    assert len({item for item, _variant in emulator.listing_quantities()}) == 1
