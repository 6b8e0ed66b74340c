"""Orders of bundles: a bundle sold on a marketplace reserves, deducts and gives back its
components, end to end (Shopee emulator → adapter over HTTP → pipeline → stock ledger)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.bundles import bundle_set_components
from catalog.models import Stock, StockMovement, Variant
from catalog.services import StockChange, stock_apply
from catalog.signals import stock_changed
from channels.inventory import on_stock_changed
from synclogs.models import SalesOrderLine, SyncLog
from tests.channels.builders import shop_item
from tests.factories import VariantFactory
from tests.synclogs.conftest import Shop, rows_of

pytestmark = pytest.mark.django_db
A = SyncLog.Action
T = StockMovement.Trigger


def list_bundle(shop: Shop, sku: str, *parts: tuple[str, int]) -> None:
    """A POS bundle `sku` of (component SKU, units) parts, listed on the shop as its own item."""
    bundle = VariantFactory(sku=sku)
    components = [(shop.variants.get(s) or Variant.objects.get(sku=s), n) for s, n in parts]
    bundle_set_components(bundle=bundle, components=components)
    item = shop.emulator.put_item(shop_item(f"{sku} kit", sku, price="60.00", quantity=5))
    shop.refs[sku] = (str(item), "")


def movements(number: str) -> list[tuple[str, str, int, int]]:
    return list(
        StockMovement.objects.filter(reference__endswith=number)
        .order_by("pk")
        .values_list("trigger", "variant__sku", "on_hand_delta", "reserved_delta")
    )


@pytest.fixture
def kit_shop(shop: Shop) -> Shop:
    """The shop (10 of each SKU on hand) also selling KIT: 2 × TEE-BLK-M and 1 × MUG-RED."""
    list_bundle(shop, "KIT", ("TEE-BLK-M", 2), ("MUG-RED", 1))
    return shop


def test_a_bundle_sold_reserves_then_deducts_its_components(kit_shop):
    shop = kit_shop
    number = shop.order(("KIT", 3))

    logs = shop.download()

    assert rows_of(logs) == [(A.CREATE_ORDER, 200)]
    assert shop.stock("TEE-BLK-M") == (10, 6)
    assert shop.stock("MUG-RED") == (10, 3)
    assert not Stock.objects.filter(variant__sku="KIT").exists()
    assert "reserved 9 units of 2 SKUs" in logs[0].message
    assert logs[0].response["stock"] == [
        {
            "sku": "TEE-BLK-M",
            "variant_id": shop.variants["TEE-BLK-M"].pk,
            "on_hand_delta": 0,
            "reserved_delta": 6,
            "via": "KIT",
        },
        {
            "sku": "MUG-RED",
            "variant_id": shop.variants["MUG-RED"].pk,
            "on_hand_delta": 0,
            "reserved_delta": 3,
            "via": "KIT",
        },
    ]

    shop.emulator.move_order(number, "paid")
    assert rows_of(shop.download()) == [(A.CONVERT_ORDER_TO_INVOICE, 200), (A.ADD_PAYMENT, 200)]

    assert shop.stock("TEE-BLK-M") == (4, 0)
    assert shop.stock("MUG-RED") == (7, 0)
    # every ledger row names the order (and its channel, so it is not echoed back to it)
    assert movements(number) == [
        (T.ORDER_ALLOCATION, "TEE-BLK-M", 0, 6),
        (T.ORDER_ALLOCATION, "MUG-RED", 0, 3),
        (T.ORDER_FULFILMENT, "TEE-BLK-M", -6, -6),
        (T.ORDER_FULFILMENT, "MUG-RED", -3, -3),
    ]
    assert set(
        StockMovement.objects.filter(reference__endswith=number).values_list(
            "source_channel_id", flat=True
        )
    ) == {shop.channel.pk}
    line = SalesOrderLine.objects.get(order__order_number=number)
    assert (line.reserved, line.deducted) == (0, 3)


def test_a_cancelled_bundle_gives_back_what_it_took_even_after_its_components_changed(kit_shop):
    shop = kit_shop
    reserved = shop.order(("KIT", 2))
    invoiced = shop.order(("KIT", 1), state="paid")
    shop.download()
    assert shop.stock("TEE-BLK-M") == (8, 4)  # 2 deducted, 4 reserved
    assert shop.stock("MUG-RED") == (9, 2)

    # when: the kit is now made of other things, and both orders are cancelled
    kit = Variant.objects.get(sku="KIT")
    bundle_set_components(bundle=kit, components=[(shop.variants["TEE-BLK-L"], 5)])
    shop.emulator.move_order(reserved, "cancelled")
    shop.emulator.move_order(invoiced, "cancelled")
    logs = shop.download()

    # then: what each order took comes back, and nothing of what the kit is made of now
    assert rows_of(logs) == [(A.VOID_INVOICE, 200), (A.VOID_INVOICE, 200)]
    assert shop.stock("TEE-BLK-M") == (10, 0)
    assert shop.stock("MUG-RED") == (10, 0)
    assert shop.stock("TEE-BLK-L") == (10, 0)
    assert movements(reserved)[-2:] == [
        (T.ORDER_RELEASE, "TEE-BLK-M", 0, -4),
        (T.ORDER_RELEASE, "MUG-RED", 0, -2),
    ]
    assert movements(invoiced)[-2:] == [
        (T.ORDER_RELEASE, "TEE-BLK-M", 2, 0),
        (T.ORDER_RELEASE, "MUG-RED", 1, 0),
    ]


def test_a_bundle_short_of_a_component_deducts_what_there_is_and_returns_exactly_that(kit_shop):
    shop = kit_shop
    mug = shop.variants["MUG-RED"]
    stock_apply(changes=[StockChange(mug.pk, shop.outlet.pk, set_on_hand=1)], trigger="manual")
    number = shop.order(("KIT", 2), state="shipped")

    [created, *_] = shop.download()

    assert created.action == A.CREATE_INVOICE
    assert shop.stock("TEE-BLK-M") == (6, 0)
    assert shop.stock("MUG-RED") == (0, 0)
    assert created.response["short"] == [
        {"sku": "MUG-RED", "ordered": 2, "deducted": 1, "via": "KIT"}
    ]
    assert "MUG-RED (sold 2, deducted 1)" in created.message
    assert "Stock was short for 1 SKU: MUG-RED" in created.attention

    shop.emulator.move_order(number, "returned")
    [void] = shop.download()

    assert void.action == A.VOID_INVOICE
    assert void.response["trigger"] == T.SHIPMENT_CANCELLATION
    assert shop.stock("TEE-BLK-M") == (10, 0)
    assert shop.stock("MUG-RED") == (1, 0)  # the one taken, not the two sold


def test_a_bundle_inside_a_bundle_moves_the_leaf_components(kit_shop):
    shop = kit_shop
    list_bundle(shop, "GIFT", ("KIT", 1), ("TEE-BLK-L", 1), ("TEE-BLK-M", 1))
    number = shop.order(("GIFT", 2), ("TEE-BLK-M", 1))

    [log] = shop.download()

    assert log.status == 200
    assert shop.stock("TEE-BLK-M") == (10, 7)  # 2 × (2 + 1) in the gifts, 1 on its own
    assert shop.stock("MUG-RED") == (10, 2)
    assert shop.stock("TEE-BLK-L") == (10, 2)
    assert [row["sku"] for row in log.response["stock"]] == ["TEE-BLK-M", "TEE-BLK-L", "MUG-RED"]
    assert log.response["stock"][0]["via"] == "GIFT"
    assert movements(number) == [
        (T.ORDER_ALLOCATION, "TEE-BLK-M", 0, 7),
        (T.ORDER_ALLOCATION, "TEE-BLK-L", 0, 2),
        (T.ORDER_ALLOCATION, "MUG-RED", 0, 2),
    ]


def test_an_order_of_a_bundle_costs_the_pipeline_what_an_order_of_a_variant_does(kit_shop):
    # The pipeline reads bundles once per page, whatever its size: one order more costs the
    # same statements whether it sells a bundle or a plain variant. (The inventory sync's own
    # listener, which learns which bundles to push, is measured with the channels.)
    shop = kit_shop

    def cost(sku: str, orders: int) -> int:
        for _ in range(orders):
            shop.order((sku, 1), ("TEE-BLK-L", 1))
        with CaptureQueriesContext(connection) as captured:
            shop.download()
        return len(captured)

    # not measured: the channel's first download records its window; an order is in the POS,
    # so every measured page also finds orders there (their overlap: one read more)
    shop.order(("MUG-RED", 1), ("TEE-BLK-L", 1))
    shop.download()
    stock_changed.disconnect(dispatch_uid="channels.inventory")
    try:
        plain = cost("MUG-RED", 5) - cost("MUG-RED", 1)
        bundles = cost("KIT", 5) - cost("KIT", 1)
    finally:
        stock_changed.connect(on_stock_changed, dispatch_uid="channels.inventory")
    assert bundles == plain
    assert shop.stock("TEE-BLK-M") == (10, 12)


@pytest.mark.parametrize("state", ["unpaid", "paid"])
def test_a_bundle_made_of_a_deleted_component_gives_back_the_rest(kit_shop, state):
    # the composition changed and the old component was deleted before the order came back
    shop = kit_shop
    cap = VariantFactory(sku="CAP")
    kit = Variant.objects.get(sku="KIT")
    bundle_set_components(bundle=kit, components=[(shop.variants["TEE-BLK-M"], 1), (cap, 1)])
    stock_apply(changes=[StockChange(cap.pk, shop.outlet.pk, set_on_hand=5)], trigger="import")
    number = shop.order(("KIT", 1), state=state)
    shop.download()
    bundle_set_components(bundle=kit, components=[(shop.variants["TEE-BLK-M"], 1)])
    cap.delete()

    shop.emulator.move_order(number, "cancelled")
    [void] = shop.download()

    assert void.status == 200
    assert shop.stock("TEE-BLK-M") == (10, 0)
    if state == "paid":
        [kept] = [row for row in void.response["stock_returned"] if "not_returned" in row]
        assert (kept["sku"], kept["not_returned"], kept["via"]) == ("CAP", 1, "KIT")
        assert "it was deleted" in kept["why"]
