"""Stock rules through the API: a channel's own rule, products' and variants' rules, and the
per-SKU preview of what each channel is sent."""

import pytest

from catalog.services import stock_set
from channels.models import Channel, StockRule
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(db) -> Channel:
    return Channel.objects.create(
        kind="shopee", name="Shopee", order_outlet=OutletFactory(code="jkt"),
        credentials={"partner_id": 1, "partner_key": "k", "shop_id": 2, "access_token": "t"},
    )  # fmt: skip


def test_a_channel_rule_is_set_shown_and_cleared(api, channel):
    url = f"/api/channels/{channel.pk}"
    body = {"stock_share_percent": 80, "stock_maximum": 10, "stock_cutoff": 3, "buffer": 1}
    answer = api.patch(url, body)
    assert answer.status_code == 200, answer.content
    assert {k: answer.json()[k] for k in body} == body
    # null clears a rule that may be blank; a required one is left as it is
    cleared = api.patch(url, {"stock_maximum": None, "stock_share_percent": None}).json()
    assert (cleared["stock_maximum"], cleared["stock_share_percent"]) == (None, 80)
    refused = api.patch(url, {"stock_share_percent": 101})
    assert refused.status_code == 422
    not_priority = api.patch(url, {"priority_threshold": 3})
    assert not_priority.status_code == 422
    assert "Only a priority channel" in not_priority.content.decode()


def test_product_and_variant_rules_are_created_changed_and_removed(api, channel):
    tee = ProductFactory(name="Tee", handle="tee")
    variant = VariantFactory(product=tee, sku="TEE-1")
    url = f"/api/channels/{channel.pk}/stock-rules"
    made = api.post(url, {"sku": "tee-1", "maximum": 0})
    assert made.status_code == 201, made.content
    assert made.json() | {"id": 0} == {
        "id": 0, "channel_id": channel.pk, "sku": "TEE-1", "handle": None, "product": "Tee",
        "share_percent": None, "maximum": 0, "cutoff": None, "buffer": None,
    }  # fmt: skip
    product_rule = api.post(url, {"handle": "tee", "share_percent": 50})
    assert product_rule.json()["handle"] == "tee"
    # a second rule for the same variant, a body with both or neither target, unknown targets
    assert api.post(url, {"sku": "TEE-1", "maximum": 1}).status_code == 422
    assert api.post(url, {"sku": "TEE-1", "handle": "tee"}).status_code == 422
    assert api.post(url, {"maximum": 1}).status_code == 422
    assert api.post(url, {"sku": "NOPE"}).status_code == 404
    assert api.post(url, {"handle": "nope"}).status_code == 404
    listed = api.get(url).json()
    assert listed["count"] == 2
    rule_id = made.json()["id"]
    changed = api.patch(f"/api/stock-rules/{rule_id}", {"maximum": None, "buffer": 2}).json()
    assert (changed["maximum"], changed["buffer"]) == (None, 2)
    assert api.delete(f"/api/stock-rules/{rule_id}").status_code == 204
    assert list(StockRule.objects.values_list("variant_id", flat=True)) == [None]
    assert variant.pk  # the variant itself stays


def test_the_preview_shows_each_channel_and_the_rule_that_decided(api, channel):
    variant = VariantFactory(sku="CAP-1")
    stock_set(variant_id=variant.pk, outlet_id=channel.order_outlet_id, quantity=4)
    Channel.objects.filter(pk=channel.pk).update(stock_cutoff=5)
    Channel.objects.create(
        kind="lazada", name="Lazada", order_outlet=channel.order_outlet, credentials={"x": 1},
        is_priority=True, priority_threshold=2,
    )  # fmt: skip
    answer = api.get("/api/stock-allocation", {"sku": "cap-1"})
    assert answer.status_code == 200, answer.content
    by_name = {line["channel"]: line for line in answer.json()["channels"]}
    assert by_name["Shopee"]["quantity"] == 0
    assert by_name["Shopee"]["decided_by"] == "cut-off"
    assert by_name["Lazada"] | {"channel_id": 0} == {
        "channel_id": 0, "channel": "Lazada", "is_priority": True, "available": 4,
        "steps": [{"rule": "available", "setting": "over the channel's outlets", "quantity": 4}],
        "quantity": 4, "decided_by": "available", "rule_from": "channel", "listings": 0,
    }  # fmt: skip
    assert api.get("/api/stock-allocation", {"sku": "NOPE"}).status_code == 404
