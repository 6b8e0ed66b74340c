import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, close_old_connections, connection, transaction

from catalog import services as catalog_services
from catalog.exceptions import StockError
from catalog.models import Stock, StockMovement, Variant
from catalog.services import (
    MAX_STORABLE,
    Actor,
    StockChange,
    stock_adjust,
    stock_apply,
    stock_import_levels,
    stock_set,
    variant_sku_check,
)
from catalog.signals import stock_changed
from omni import bulk as omni_bulk
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


# --- the bulk path: many rows per call, as the CSV import and the API bulk update send them ----

LEDGER_FIELDS = (
    "id",
    "stock_id",
    "variant_id",
    "outlet_id",
    "trigger",
    "on_hand_delta",
    "reserved_delta",
    "on_hand_after",
    "reserved_after",
    "reference",
    "actor",
    "user_id",
    "source_channel_id",
    "created_at",
)


def _ledger() -> list[tuple]:
    return list(
        StockMovement.objects.order_by("variant_id", "outlet_id").values_list(*LEDGER_FIELDS)
    )


def _levels() -> dict[tuple[int, int], tuple[int, int]]:
    return {
        (v, o): (on_hand, reserved)
        for v, o, on_hand, reserved in Stock.objects.values_list(
            "variant_id", "outlet_id", "on_hand", "reserved"
        )
    }


@pytest.fixture
def small_batches(monkeypatch):
    """Lock, write and send a few rows at a time, so a handful of rows crosses batch bounds."""
    monkeypatch.setattr(catalog_services, "CHUNK", 2)
    monkeypatch.setattr(catalog_services, "PG_LOCK_CHUNK", 2)
    monkeypatch.setattr(omni_bulk, "ARRAY_BATCH", 2)


@pytest.mark.parametrize("batches", ["one batch", "small batches"])
def test_one_call_creates_changes_and_skips_rows_and_returns_exactly_its_ledger_rows(
    request, batches, admin_user
):
    # given: two outlets; some rows exist, some do not
    if batches == "small batches":
        request.getfixturevalue("small_batches")
    shop, store = OutletFactory(), OutletFactory()
    a, b, c, d = VariantFactory.create_batch(4)
    stock_import_levels(levels=[(a.pk, shop.pk, 5), (b.pk, shop.pk, 7), (b.pk, store.pk, 1)])
    before = _ledger()
    # when: given out of order, with one change that leaves its row as it is
    records = stock_apply(
        changes=[
            StockChange(d.pk, store.pk, set_on_hand=4),  # new row
            StockChange(b.pk, shop.pk, on_hand_delta=-2, reserved_delta=3),  # existing row
            StockChange(a.pk, shop.pk, set_on_hand=5),  # unchanged: no ledger row
            StockChange(c.pk, shop.pk, reserved_delta=0),  # nothing at all
            StockChange(b.pk, store.pk, set_on_hand=0),  # down to zero
        ],
        trigger=Trigger.RECEIPT,
        reference="PO-77",
        actor=Actor.of_user(admin_user),
        source_channel_id=9,
    )
    # then: the levels a person would read in the admin
    assert _levels() == {
        (a.pk, shop.pk): (5, 0),
        (b.pk, shop.pk): (5, 3),
        (b.pk, store.pk): (0, 0),
        (d.pk, store.pk): (4, 0),
    }
    # exactly one ledger row per changed stock row, and the records are those rows, in
    # (variant, outlet) order
    written = [row for row in _ledger() if row not in before]
    assert [tuple(r)[:-1] for r in records] == sorted(written, key=lambda r: (r[2], r[3]))
    assert [
        (r.variant_id, r.outlet_id, r.on_hand_delta, r.on_hand_after, r.stock_created)
        for r in records
    ] == [
        (b.pk, shop.pk, -2, 5, False),
        (b.pk, store.pk, -1, 0, False),
        (d.pk, store.pk, 4, 4, True),
    ]
    assert {(r.trigger, r.reference, r.actor, r.user_id, r.source_channel_id) for r in records} == {
        (Trigger.RECEIPT, "PO-77", "user:admin", admin_user.pk, 9)
    }
    stocks = dict(Stock.objects.values_list("pk", "on_hand"))
    assert all(stocks[r.stock_id] == r.on_hand_after for r in records)
    assert records[0].pk == records[0].id


def test_every_row_that_would_go_negative_is_named_and_nothing_is_written(small_batches):
    # given: rows spread over several lock batches
    outlet = OutletFactory()
    variants = VariantFactory.create_batch(6)
    stock_import_levels(levels=[(v.pk, outlet.pk, 3) for v in variants])
    before_levels, before_ledger = _levels(), _ledger()
    # when: good changes first, bad ones in the first and the last batch
    with pytest.raises(StockError) as excinfo:
        stock_apply(
            changes=[
                StockChange(variants[0].pk, outlet.pk, reserved_delta=-1),
                *(StockChange(v.pk, outlet.pk, on_hand_delta=1) for v in variants[1:5]),
                StockChange(variants[5].pk, outlet.pk, on_hand_delta=-4),
            ],
            trigger=Trigger.MANUAL,
        )
    # then
    assert len(excinfo.value.problems) == 2
    assert f"variant {variants[0].pk} at outlet {outlet.pk}" in excinfo.value.problems[0]
    assert "reserved -1" in excinfo.value.problems[0]
    assert f"variant {variants[5].pk} at outlet {outlet.pk}" in excinfo.value.problems[1]
    assert "on hand -1" in excinfo.value.problems[1]
    assert (_levels(), _ledger()) == (before_levels, before_ledger)


def test_a_count_too_large_to_store_is_a_stock_error_not_a_database_error():
    variant, outlet = VariantFactory(), OutletFactory()
    stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=5)
    with pytest.raises(StockError, match="cannot be stored"):
        stock_apply(
            changes=[StockChange(variant.pk, outlet.pk, on_hand_delta=MAX_STORABLE)],
            trigger=Trigger.MANUAL,
        )
    assert Stock.objects.get().on_hand == 5
    assert StockMovement.objects.count() == 1


def test_the_same_row_twice_in_one_call_is_refused():
    variant, outlet = VariantFactory(), OutletFactory()
    with pytest.raises(StockError, match="appears twice"):
        stock_apply(
            changes=[
                StockChange(variant.pk, outlet.pk, on_hand_delta=1),
                StockChange(variant.pk, outlet.pk, on_hand_delta=2),
            ],
            trigger=Trigger.MANUAL,
        )
    assert not Stock.objects.exists()


def test_single_row_services_return_the_row_as_the_change_left_it():
    variant, outlet = VariantFactory(), OutletFactory()
    added = stock_adjust(variant_id=variant.pk, outlet_id=outlet.pk, delta=6)
    same = stock_set(variant_id=variant.pk, outlet_id=outlet.pk, quantity=6)
    counted = stock_set(variant_id=variant.pk, outlet_id=outlet.pk, quantity=2)
    row = Stock.objects.get()
    assert [(s.pk, s.on_hand) for s in (added, same, counted)] == [
        (row.pk, 6),
        (row.pk, 6),
        (row.pk, 2),
    ]
    # counting zero of something never stocked still gives a row to show, with no ledger row
    other = VariantFactory()
    zero = stock_set(variant_id=other.pk, outlet_id=outlet.pk, quantity=0)
    assert (zero.variant_id, zero.on_hand) == (other.pk, 0)
    assert StockMovement.objects.filter(variant=other).count() == 0


def test_the_signal_carries_the_returned_records():
    outlet = OutletFactory()
    variants = VariantFactory.create_batch(3)
    received = []

    def listener(sender, movements, trigger, **kwargs):
        received.append(list(movements))

    stock_changed.connect(listener)
    try:
        records = stock_import_levels(levels=[(v.pk, outlet.pk, 2) for v in variants])
    finally:
        stock_changed.disconnect(listener)
    assert received == [records]
    assert [(m.variant_id, m.outlet_id, m.source_channel_id) for m in received[0]] == [
        (v.pk, outlet.pk, None) for v in variants
    ]


def test_bulk_helpers_send_only_whole_numbers():
    with pytest.raises(ValueError, match="invalid literal"):
        omni_bulk.int_array(["1}", "2"])
    assert omni_bulk.int_array([3, -1, 0]) == "{3,-1,0}"
    with pytest.raises(TypeError, match="not a whole-number column"):
        omni_bulk.insert_rows(StockMovement, {"trigger": [1]})
    with pytest.raises(ValueError, match="at least one column"):
        omni_bulk.insert_rows(Stock, {})
    with pytest.raises(ValueError, match="different lengths"):
        list(omni_bulk._column_batches({"a": [1, 2], "b": [1]}))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_calls_over_the_same_rows_neither_deadlock_nor_lose_updates():
    # given: 40 rows; two writers send changes to all of them, listed in opposite orders
    outlet = OutletFactory()
    variants = VariantFactory.create_batch(40)
    stock_import_levels(levels=[(v.pk, outlet.pk, 100) for v in variants])
    errors: list[BaseException] = []

    def worker(order: list, sign: int) -> None:
        try:
            for _ in range(10):
                stock_apply(
                    changes=[StockChange(v.pk, outlet.pk, on_hand_delta=sign) for v in order],
                    trigger=Trigger.API_BULK,
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(variants, 2)),
        threading.Thread(target=worker, args=(variants[::-1], -1)),
    ]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: every row moved by 10 × 2 − 10 × 1, and its ledger replays to it
    assert errors == []
    assert set(Stock.objects.values_list("on_hand", flat=True)) == {110}
    for variant in variants:
        deltas = StockMovement.objects.filter(variant=variant).values_list(
            "on_hand_delta", flat=True
        )
        assert sum(deltas) == 110
