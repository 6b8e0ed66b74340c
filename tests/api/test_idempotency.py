"""Idempotency-Key on stock adjustments: a retried `delta` is applied once."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from catalog.models import Stock, StockMovement
from omni.auth import token_create
from omni.models import IdempotentRequest
from tests.api.conftest import ApiClient
from tests.api.test_end_to_end import ok, product_body

pytestmark = pytest.mark.django_db

ADJUST = "/api/stock/adjust"


@pytest.fixture
def tee(api):
    ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
    ok(api.post("/api/products", product_body("Tee", "T-1")), 201)
    ok(api.post(ADJUST, {"sku": "T-1", "outlet": "jkt", "quantity": 10}))


def on_hand() -> int:
    return Stock.objects.get().on_hand


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_retried_delta_with_its_key_is_applied_once_and_answered_again(api, tee):
    body = {"sku": "T-1", "outlet": "jkt", "delta": -3, "reference": "POS-7"}
    first = api.post(ADJUST, body, headers=keyed("adj-0001"))
    again = api.post(ADJUST, body, headers=keyed("adj-0001"))
    assert first.status_code == again.status_code == 200
    assert (
        first.json()
        == again.json()
        == {
            "sku": "T-1",
            "outlet": "jkt",
            "on_hand": 7,
            "reserved": 0,
            "available": 7,
        }
    )
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert on_hand() == 7
    assert StockMovement.objects.filter(reference="POS-7").count() == 1


def test_each_new_key_applies_and_no_key_applies_every_time(api, tee):
    body = {"sku": "T-1", "outlet": "jkt", "delta": 1}
    api.post(ADJUST, body, headers=keyed("a"))
    api.post(ADJUST, body, headers=keyed("b"))
    api.post(ADJUST, body)
    api.post(ADJUST, body)
    assert on_hand() == 14


def test_a_key_reused_for_another_request_is_refused_and_changes_nothing(api, tee):
    ok(api.post(ADJUST, {"sku": "T-1", "outlet": "jkt", "delta": 1}, headers=keyed("k1")))
    reused = api.post(ADJUST, {"sku": "T-1", "outlet": "jkt", "delta": 5}, headers=keyed("k1"))
    assert reused.status_code == 422
    [error] = reused.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert "already used for a different request" in error["msg"]
    assert on_hand() == 11


def test_a_badly_formed_key_is_refused_before_anything_is_applied(api, tee):
    for key in ("x" * 256, "naïve-key"):
        response = api.post(ADJUST, {"sku": "T-1", "outlet": "jkt", "delta": 1}, headers=keyed(key))
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "idempotency_key_invalid"
    assert on_hand() == 10


def test_a_refused_request_keeps_nothing_so_its_retry_is_judged_afresh(api, tee):
    body = {"sku": "T-1", "outlet": "jkt", "delta": -15}
    assert api.post(ADJUST, body, headers=keyed("k2")).status_code == 409  # below zero
    ok(api.post(ADJUST, {"sku": "T-1", "outlet": "jkt", "delta": 10}))
    assert ok(api.post(ADJUST, body, headers=keyed("k2")))["on_hand"] == 5


def test_keys_belong_to_their_token_and_are_forgotten_after_a_day(api, tee):
    body = {"sku": "T-1", "outlet": "jkt", "delta": 1}
    other = ApiClient(token_create(name="Other app", scopes="read,write")[1])
    ok(api.post(ADJUST, body, headers=keyed("same")))
    ok(other.post(ADJUST, body, headers=keyed("same")))
    assert on_hand() == 12
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))
    ok(api.post(ADJUST, body, headers=keyed("same")))
    assert on_hand() == 13


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_keyed_request_sent_at_once_from_several_threads_is_applied_once(api, tee):
    body = {"sku": "T-1", "outlet": "jkt", "delta": 2}
    answers: list[tuple[int, dict, str | None]] = []

    def send() -> None:
        try:
            response = api.post(ADJUST, body, headers=keyed("burst"))
            answers.append(
                (response.status_code, response.json(), response.headers.get("Idempotent-Replayed"))
            )
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert on_hand() == 12
    assert {(status, answer["on_hand"]) for status, answer, _ in answers} == {(200, 12)}
    assert sorted(replayed or "" for _s, _a, replayed in answers) == [""] + ["true"] * 5
