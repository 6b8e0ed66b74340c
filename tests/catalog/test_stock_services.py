import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, close_old_connections, connection, transaction

from catalog.exceptions import StockError
from catalog.models import Stock, StockMovement, Variant
from catalog.services import (
    Actor,
    StockChange,
    stock_adjust,
    stock_apply,
    stock_import_levels,
    stock_set,
    variant_sku_check,
)
from catalog.signals import stock_changed
from tests.factories import OutletFactory, VariantFactory

pytestmark = pytest.mark.django_db
Trigger = StockMovement.Trigger


def test_skus_differing_only_in_case_and_spaces_cannot_both_exist():
    # given
    first = VariantFactory(sku="ABC-1")
    # when / then: the service explains the clash in words
    with pytest.raises(ValidationError) as excinfo:
        variant_sku_check(sku=" abc-1 ")
    message = str(excinfo.value)
    assert "'ABC-1'" in message
    assert "trimmed and ignoring letter case" in message
    assert first.product.name in message


def test_database_refuses_a_normalised_duplicate_sku_even_past_the_services():
    VariantFactory(sku="ABC-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        VariantFactory(sku=" abc-1 ")
    assert Variant.objects.count() == 1


def test_model_validation_names_the_rule():
    existing = VariantFactory(sku="ABC-1")
    duplicate = Variant(product=existing.product, sku="abc-1 ", retail_price=1)
    with pytest.raises(ValidationError) as excinfo:
        duplicate.full_clean()
    assert "ignoring letter case" in str(excinfo.value)


def test_blank_sku_is_refused():
    with pytest.raises(ValidationError, match="SKU is required"):
        variant_sku_check(sku="   ")


@pytest.mark.parametrize(
    ("call", "trigger"),
    [
        (lambda v, o: stock_adjust(variant_id=v, outlet_id=o, delta=5), Trigger.MANUAL),
        (
            lambda v, o: stock_adjust(variant_id=v, outlet_id=o, delta=5, trigger=Trigger.RECEIPT),
            Trigger.RECEIPT,
        ),
        (
            lambda v, o: stock_set(
                variant_id=v, outlet_id=o, quantity=5, trigger=Trigger.API_SINGLE
            ),
            Trigger.API_SINGLE,
        ),
        (lambda v, o: stock_import_levels(levels=[(v, o, 5)]), Trigger.IMPORT),
        (
            lambda v, o: stock_apply(
                changes=[StockChange(v, o, on_hand_delta=5)], trigger=Trigger.API_BULK
            ),
            Trigger.API_BULK,
        ),
    ],
)
def test_each_stock_service_writes_exactly_one_ledger_row_with_its_trigger(call, trigger):
    # given
    variant, outlet = VariantFactory(), OutletFactory()
    # when
    call(variant.pk, outlet.pk)
    # then
    stock = Stock.objects.get(variant=variant, outlet=outlet)
    assert stock.on_hand == 5
    movement = StockMovement.objects.get()
    assert (movement.trigger, movement.on_hand_delta, movement.on_hand_after) == (trigger, 5, 5)
    assert movement.stock_id == stock.pk


def test_ledger_records_reference_and_actor(admin_user):
    variant, outlet = VariantFactory(), OutletFactory()
    stock_adjust(
        variant_id=variant.pk,
        outlet_id=outlet.pk,
        delta=3,
        reference="count #7",
        actor=Actor.of_user(admin_user),
    )
    movement = StockMovement.objects.get()
    assert movement.reference == "count #7"
    assert movement.actor == "user:admin"
    assert movement.user_id == admin_user.pk


def test_a_change_that_would_go_negative_writes_nothing():
    # given
    variant, outlet = VariantFactory(), OutletFactory()
    stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=2)
    other = VariantFactory()
    # when: one good change and one bad one in the same call
    with pytest.raises(StockError, match="would leave on hand -1"):
        stock_apply(
            changes=[
                StockChange(other.pk, outlet.pk, on_hand_delta=10),
                StockChange(variant.pk, outlet.pk, on_hand_delta=-3),
            ],
            trigger=Trigger.MANUAL,
        )
    # then
    assert Stock.objects.get(variant=variant).on_hand == 2
    assert not Stock.objects.filter(variant=other).exists()
    assert StockMovement.objects.count() == 1


def test_an_unchanged_count_writes_no_ledger_row():
    variant, outlet = VariantFactory(), OutletFactory()
    stock_import_levels(levels=[(variant.pk, outlet.pk, 4)])
    stock_import_levels(levels=[(variant.pk, outlet.pk, 4)])
    assert StockMovement.objects.count() == 1


def test_reservations_move_reserved_not_on_hand():
    variant, outlet = VariantFactory(), OutletFactory()
    stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=10)
    stock_apply(
        changes=[StockChange(variant.pk, outlet.pk, reserved_delta=3)],
        trigger=Trigger.ORDER_ALLOCATION,
        reference="241201ABCD",
        source_channel_id=7,
    )
    stock = Stock.objects.get()
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 3, 7)
    allocation = StockMovement.objects.get(trigger=Trigger.ORDER_ALLOCATION)
    assert allocation.source_channel_id == 7


def test_the_seam_announces_the_movements_inside_the_transaction():
    variant, outlet = VariantFactory(), OutletFactory()
    received = []

    def listener(sender, movements, trigger, **kwargs):
        received.append((trigger, [m.on_hand_after for m in movements], connection.in_atomic_block))

    stock_changed.connect(listener)
    try:
        stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=4)
    finally:
        stock_changed.disconnect(listener)
    assert received == [(Trigger.MANUAL, [4], True)]


def test_bulk_levels_run_in_a_bounded_number_of_queries(django_assert_max_num_queries):
    outlet = OutletFactory()
    variants = VariantFactory.create_batch(300)
    levels = [(v.pk, outlet.pk, i) for i, v in enumerate(variants, start=1)]
    with django_assert_max_num_queries(12):
        stock_import_levels(levels=levels)
    assert StockMovement.objects.count() == 300


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_of_one_row_lose_no_update():
    # given: one stock row, and 8 threads each adding 1 unit 25 times on their own connection
    variant, outlet = VariantFactory(), OutletFactory()
    stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=100)
    errors: list[BaseException] = []

    def worker(sign: int) -> None:
        try:
            for _ in range(25):
                stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=sign)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(1 if i % 2 else -1,)) for i in range(8)]
    threads.append(threading.Thread(target=worker, args=(1,)))
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: 5 threads added 25 each, 4 removed 25 each
    assert errors == []
    stock = Stock.objects.get()
    assert stock.on_hand == 100 + 25
    assert StockMovement.objects.count() == 1 + 9 * 25
    # the ledger replays exactly: each row's "after" is the previous "after" plus its delta
    running = 0
    for delta, after in StockMovement.objects.order_by("pk").values_list(
        "on_hand_delta", "on_hand_after"
    ):
        running += delta
        assert after == running
    assert running == stock.on_hand
