"""An order allocation updates the other channels in real-time mode; its own only to repair a
push that overwrote the marketplace's own deduction."""

from datetime import timedelta

import pytest
from django.db.models import F

from catalog.services import stock_adjust
from channels.emulators.shopee import ShopeeEmulator
from channels.inventory import inventory_flush
from channels.models import Channel, Listing, PendingPush, Scan
from channels.scans import scan_request, scan_run
from tests.synclogs.conftest import make_shop, stock_up

pytestmark = pytest.mark.django_db
UPDATE_STOCK = "/api/v2/product/update_stock"


def scanned(shop):
    scan = scan_request(channel=shop.channel, kind=Scan.Kind.FULL, enqueue=False)
    assert scan_run(scan_id=scan.pk).status == Scan.Status.SUCCEEDED
    return shop


def pushed(emulator) -> dict[tuple[int, int], int]:
    """(item_id, model_id) -> quantity of every update_stock the channel received."""
    return {
        (call.body["item_id"], row["model_id"]): row["seller_stock"][0]["stock"]
        for call in emulator.log.writes_to(UPDATE_STOCK)
        for row in call.body["stock_list"]
    }


def test_an_order_allocation_reaches_the_other_channel_but_not_its_own():
    with ShopeeEmulator(seed=21) as sg_shop, ShopeeEmulator(seed=22, shop_id=7_654_321) as my_shop:
        # given: two real-time channels selling the same POS stock
        sg = scanned(make_shop(sg_shop, name="Shopee SG", inventory_sync_mode="realtime"))
        my = scanned(
            make_shop(my_shop, name="Shopee MY", outlet=sg.outlet, inventory_sync_mode="realtime")
        )
        stock_up(sg)
        for channel in (sg.channel, my.channel):
            inventory_flush(channel_id=channel.pk)
        # the last pushes went out well before the buyer's order
        Listing.objects.update(pushed_at=F("pushed_at") - timedelta(minutes=30))
        sg_shop.log.clear()
        my_shop.log.clear()

        # when: a buyer on Shopee SG orders 3 black M tees and the order is downloaded
        sg.order(("TEE-BLK-M", 3))
        sg.download()
        assert sg.stock("TEE-BLK-M") == (10, 3)
        for channel in (sg.channel, my.channel):
            inventory_flush(channel_id=channel.pk)

        # then: Shopee MY is told the 7 left; Shopee SG, which sold them, is told nothing
        item_id, model_id = my.refs["TEE-BLK-M"]
        assert pushed(my_shop) == {(int(item_id), int(model_id)): 7}
        assert pushed(sg_shop) == {}
        assert not PendingPush.objects.exists()
        assert Channel.objects.count() == 2


def test_a_push_sent_before_an_order_reached_the_pos_is_repaired_when_it_does():
    with ShopeeEmulator(seed=21) as shop_emulator:
        # given: a real-time channel showing the POS's 10
        shop = scanned(make_shop(shop_emulator, inventory_sync_mode="realtime"))
        stock_up(shop)
        inventory_flush(channel_id=shop.channel.pk)
        item_id, model_id = (int(ref) for ref in shop.refs["TEE-BLK-M"])
        # when: a buyer orders 2, the marketplace takes them off its stock at once; before omni
        # downloads the order, a receipt of 1 is pushed as the absolute 11
        shop.order(("TEE-BLK-M", 2))
        assert shop_emulator.quantities()[(item_id, model_id)] == 8
        stock_adjust(variant_id=shop.variants["TEE-BLK-M"].pk, outlet_id=shop.outlet.pk, delta=1)
        inventory_flush(channel_id=shop.channel.pk)
        assert shop_emulator.quantities()[(item_id, model_id)] == 11  # the order is overwritten
        # and then the order is downloaded and the outbox drained
        shop.download()
        inventory_flush(channel_id=shop.channel.pk)
        # then: the marketplace shows what the POS has for sale: 11 on hand, 2 reserved
        assert shop.stock("TEE-BLK-M") == (11, 2)
        assert shop_emulator.quantities()[(item_id, model_id)] == 9


def test_a_pushed_order_the_pos_does_not_hold_never_puts_its_units_back_on_sale():
    from synclogs.models import SyncLog
    from synclogs.services import order_download_pushed

    with ShopeeEmulator(seed=21) as shop_emulator:
        # given: a real-time channel just told the POS's 10 (a push within the clock skew)
        shop = scanned(make_shop(shop_emulator, inventory_sync_mode="realtime"))
        stock_up(shop)
        inventory_flush(channel_id=shop.channel.pk)
        item_id, model_id = (int(ref) for ref in shop.refs["TEE-BLK-M"])
        # when: a buyer's order arrives already paid, the marketplace takes its 2 units off,
        # and its webhook reaches omni, which has never seen the order
        number = shop.order(("TEE-BLK-M", 2), state="paid")
        assert shop_emulator.quantities()[(item_id, model_id)] == 8
        logs = order_download_pushed(channel=shop.channel, order_number=number)
        inventory_flush(channel_id=shop.channel.pk)
        # then: it is logged missing, to download, and the marketplace keeps its deduction
        assert {log.status for log in logs} == {SyncLog.Status.MISSING}
        assert not PendingPush.objects.exists()
        assert shop_emulator.quantities()[(item_id, model_id)] == 8
