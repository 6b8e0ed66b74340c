"""The emulator framework (server, call log, fault knobs), the shop generator and the
`emulator` management command; what each marketplace's emulator adds is in
test_<kind>_emulator.py."""

import hashlib
import hmac
import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command

from channels.emulators.base import (
    Emulator,
    ExpiringTokens,
    Faults,
    IdSequence,
    Listing,
    Refusal,
    Reply,
    Request,
    Route,
    ShopCache,
    TokenKind,
    TokenPair,
    TokenStore,
    signed_json_push,
)
from channels.emulators.shop import LEAVES, ShopMix, category_ids, generate_shop


class EchoEmulator(Emulator):
    """The smallest emulator: answers every call with what it received."""

    name = "echo"

    def handle(self, request: Request) -> Reply:
        return Reply.json({"path": request.path, "body": request.parsed_body()})


# -- framework ------------------------------------------------------------------------------------


def test_framework_serves_logs_writes_and_stops():
    with EchoEmulator() as emulator:
        url = emulator.base_url
        assert emulator.port > 0
        assert requests.get(url + "/ping", timeout=5).json() == {"path": "/ping", "body": None}
        requests.post(url + "/write", json={"quantity": 3}, timeout=5)
        assert emulator.log.count("/ping") == 1
        [write] = emulator.log.writes_to("/write")
        assert (write.method, write.body, write.status) == ("POST", {"quantity": 3}, 200)
        assert write.reply == {"path": "/write", "body": {"quantity": 3}}
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/ping", timeout=2)


def test_faults_are_seeded_and_repeatable():
    def statuses(seed: int) -> list[int]:
        faults = Faults(error_rate=0.3, throttle_rate=0.3)
        with EchoEmulator(seed=seed, faults=faults) as emulator, requests.Session() as session:
            return [session.get(emulator.base_url + "/x", timeout=5).status_code for _ in range(40)]

    first = statuses(5)

    assert first == statuses(5)
    assert first != statuses(6)
    assert set(first) == {200, 429, 500}


def test_throttled_reply_carries_a_fractional_retry_after():
    with EchoEmulator(faults=Faults(throttle_rate=1.0, retry_after=0.05)) as emulator:
        reply = requests.get(emulator.base_url + "/x", timeout=5)

    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "0.05"


def test_latency_is_added_to_every_reply():
    with EchoEmulator() as emulator:
        emulator.set_faults(latency=0.1)
        started = time.monotonic()
        requests.get(emulator.base_url + "/x", timeout=5)
        assert time.monotonic() - started >= 0.1


def test_fault_knobs_are_validated():
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError, match="cannot exceed 1"):
        Faults(error_rate=0.6, throttle_rate=0.6)


def test_served_files_bypass_faults():
    with EchoEmulator(faults=Faults(error_rate=1.0)) as emulator:
        url = emulator.serve_file("/cdn/a.txt", b"hello", "text/plain")
        assert requests.get(url, timeout=5).content == b"hello"
        assert requests.get(emulator.base_url + "/api", timeout=5).status_code == 500


# -- shop generator --------------------------------------------------------------------------------


def test_generated_shop_is_the_same_for_the_same_seed():
    assert generate_shop(50, seed=9, now=1_750_000_000) == generate_shop(
        50, seed=9, now=1_750_000_000
    )
    assert generate_shop(50, seed=9, now=1_750_000_000) != generate_shop(
        50, seed=10, now=1_750_000_000
    )


def test_generated_shop_has_the_awkward_cases_a_real_shop_has():
    now = 1_750_000_000
    pos_skus = [f"POS-{n:05d}" for n in range(3000)]
    shop = generate_shop(2000, seed=4, pos_skus=pos_skus, now=now)
    skus = [variant.sku for item in shop for variant in item.variants]
    in_pos = {sku.lower() for sku in pos_skus}
    by_key = Counter(sku.strip().lower() for sku in skus if sku)

    assert any(item.has_variants for item in shop)
    assert any(not item.has_variants for item in shop)
    assert {len(item.variants) for item in shop if item.has_variants} <= set(range(1, 7))
    assert all(len(item.option_names) in (1, 2) for item in shop if item.has_variants)
    assert "" in skus  # blank SKUs
    assert any(count > 1 for count in by_key.values())  # duplicate SKUs
    assert any(sku and sku.strip().lower() not in in_pos for sku in skus)  # unknown to the POS
    matching = [sku for sku in skus if sku.strip().lower() in in_pos]
    assert len(matching) > 0.7 * len(skus)  # most listings carry a POS SKU
    assert any(sku != sku.strip() for sku in matching)  # surrounding spaces
    assert any(sku.strip() not in pos_skus for sku in matching)  # another letter case
    assert all(now - 90 * 86400 <= item.updated_at <= now - 3600 for item in shop)
    assert {item.status for item in shop} == {"live", "inactive"}


def test_generated_shop_follows_its_mix():
    mix = ShopMix(variant_share=0, blank_sku_share=0, duplicate_sku_share=0, inactive_share=0)

    shop = generate_shop(300, seed=1, mix=mix)

    skus = [item.variants[0].sku for item in shop]
    assert all(not item.has_variants and item.status == "live" for item in shop)
    assert all(skus)
    assert len(set(skus)) == len(skus)


# -- command --------------------------------------------------------------------------------------


def test_emulator_command_help_renders():
    with pytest.raises(SystemExit):
        call_command("emulator", "--help")


def test_emulator_command_refuses_an_unknown_marketplace():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("emulator", "ebay")


# -- route table and hooks ------------------------------------------------------------------------


class DefaultsEmulator(Emulator):
    """A route table with every hook left as the framework gives it."""

    name = "defaults"
    routes = (
        Route("GET", "/items/{id:int}", "_get_item"),
        Route("DELETE", "/items/{id:int}", "_get_item"),
        Route("POST", "/items/{slug}", "_by_slug"),
        Route("GET", "/refuse", "_refuse"),
        Route("GET", "/boom", "_boom"),
    )

    def _get_item(self, request: Request, id: str) -> dict[str, Any]:
        return {"id": id}

    def _by_slug(self, request: Request, slug: str) -> dict[str, Any]:
        return {"slug": slug}

    def _refuse(self, request: Request) -> dict[str, Any]:
        raise Refusal("no thanks")

    def _boom(self, request: Request) -> dict[str, Any]:
        raise RuntimeError("a bug in the handler")


class ShopRefusal(Refusal):
    """The shop's error body carries a code besides the message."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message, status=status)
        self.code = code


class ShopEmulator(Emulator):
    """A shop behind `/api`, a token header, a `{"ok", "data"}` envelope and JSON errors."""

    name = "shop"
    routes = (
        Route("GET", "/items", "_list_items", auth="public"),
        Route("POST", "/items", "_add_item"),
        Route("POST", "/items/batch", "_add_batch"),
        Route("GET", "/items/{id:int}", "_get_item", envelope="item"),
        Route("DELETE", "/items/{id:int}", "_delete_item"),
        Route("GET", "/items/{id:int}/files/{name}.json", "_get_file", auth="public"),
        Route("GET", "/admin", "_list_items", auth="admin"),
        Route("GET", "/locked", "_lock_probe", auth="public"),
        Route("GET", "/unlocked", "_lock_probe", auth="public", locked=False),
    )

    TOKEN = "secret"

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[int, str] = {}
        self._ids = IdSequence(100)

    def route_path(self, request: Request) -> str:
        return request.path.removeprefix("/api")

    def authenticate(self, request: Request, route: Route) -> Reply | None:
        if route.auth == "public":
            return None
        if route.auth == "admin":
            return Reply.text("admins only", status=403)
        if request.headers.get("x-token") != self.TOKEN:
            raise ShopRefusal("invalid token", code="auth", status=401)
        return None

    def wrap(self, payload: Any, route: Route) -> Reply:
        return Reply.json({"ok": True, "envelope": route.envelope or "plain", "data": payload})

    def wrap_error(self, refusal: Refusal) -> Reply:
        code = refusal.code if isinstance(refusal, ShopRefusal) else "refused"
        return Reply.json(
            {"ok": False, "code": code, "message": refusal.message}, status=refusal.status
        )

    def not_found(self, request: Request) -> Reply:
        return Reply.json({"ok": False, "code": "no_route", "path": request.path}, status=404)

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        return Reply.json({"ok": False, "code": "bad_method", "allowed": list(allowed)}, status=405)

    def _list_items(self, request: Request) -> list[dict[str, Any]]:
        return [{"id": item_id, "name": name} for item_id, name in sorted(self.items.items())]

    def _add_item(self, request: Request) -> dict[str, Any]:
        name = request.json().get("name")
        if not name:
            raise ShopRefusal("name is required", code="invalid", status=422)
        item_id = self._ids.next()
        self.items[item_id] = name
        return {"id": item_id}

    def _add_batch(self, request: Request) -> dict[str, Any]:
        return {"batch": True}

    def _get_item(self, request: Request, id: str) -> dict[str, Any]:
        name = self.items.get(int(id))
        if name is None:
            raise ShopRefusal(f"no item {id}", code="not_found", status=404)
        return {"id": id, "name": name}

    def _delete_item(self, request: Request, id: str) -> Reply:
        self.items.pop(int(id), None)
        return Reply(204)

    def _get_file(self, request: Request, id: str, name: str) -> dict[str, Any]:
        return {"id": id, "name": name}

    def _lock_probe(self, request: Request) -> dict[str, Any]:
        # Another thread tries the lock: it fails exactly when this handler holds it.
        taken: list[bool] = []

        def probe() -> None:
            got = self.lock.acquire(blocking=False)
            if got:
                self.lock.release()
            taken.append(not got)

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        return {"held": taken[0]}


@pytest.fixture
def shop() -> Iterator[ShopEmulator]:
    with ShopEmulator() as emulator:
        yield emulator


def shop_call(emulator: ShopEmulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"X-Token": ShopEmulator.TOKEN, **kwargs.pop("headers", {})}
    return requests.request(method, emulator.base_url + path, headers=headers, timeout=5, **kwargs)


def test_routes_answer_through_the_hooks(shop):
    created = shop_call(shop, "POST", "/api/items", json={"name": "Mug"})
    listed = shop_call(shop, "GET", "/api/items", headers={"X-Token": ""})

    assert created.status_code == 200
    assert created.json() == {"ok": True, "envelope": "plain", "data": {"id": 100}}
    assert listed.status_code == 200
    assert listed.json()["data"] == [{"id": 100, "name": "Mug"}]
    assert shop.items == {100: "Mug"}


def test_path_parameters_reach_the_handler_as_strings(shop):
    shop.items[7] = "Cup"

    item = shop_call(shop, "GET", "/api/items/7")
    file = shop_call(shop, "GET", "/api/items/7/files/photo-1.json")

    assert item.json() == {"ok": True, "envelope": "item", "data": {"id": "7", "name": "Cup"}}
    assert file.json()["data"] == {"id": "7", "name": "photo-1"}


def test_an_int_parameter_takes_digits_only(shop):
    reply = shop_call(shop, "GET", "/api/items/abc")

    assert reply.status_code == 404
    assert reply.json() == {"ok": False, "code": "no_route", "path": "/api/items/abc"}


def test_route_path_hook_decides_what_is_looked_up(shop):
    assert shop_call(shop, "GET", "/api/items").status_code == 200
    assert shop_call(shop, "GET", "/items").status_code == 200  # the prefix is optional here
    assert shop_call(shop, "GET", "/v2/items").status_code == 404
    assert shop_call(shop, "GET", "/api/items?page=2").status_code == 200  # query is not path


def test_unknown_method_on_a_served_path_is_method_not_allowed(shop):
    reply = shop_call(shop, "PUT", "/api/items/7")

    assert reply.status_code == 405
    assert reply.json() == {"ok": False, "code": "bad_method", "allowed": ["GET", "DELETE"]}


def test_an_exact_path_wins_over_a_pattern_matching_it(shop):
    batch = shop_call(shop, "POST", "/api/items/batch")
    # `/items/batch` is served (POST only); GET does not fall through to `/items/{id:int}`.
    get_batch = shop_call(shop, "GET", "/api/items/batch")

    assert batch.json()["data"] == {"batch": True}
    assert get_batch.status_code == 405
    assert get_batch.json()["allowed"] == ["POST"]


def test_authenticate_refusal_is_answered_with_the_error_envelope(shop):
    refused = shop_call(shop, "POST", "/api/items", json={"name": "Mug"}, headers={"X-Token": "x"})

    assert refused.status_code == 401
    assert refused.json() == {"ok": False, "code": "auth", "message": "invalid token"}
    assert shop.items == {}  # the handler never ran
    [write] = shop.log.writes_to("/api/items")  # a refused write still reached the emulator
    assert (write.status, write.body, write.reply["code"]) == (401, {"name": "Mug"}, "auth")


def test_authenticate_may_answer_with_its_own_reply(shop):
    reply = shop_call(shop, "GET", "/api/admin")

    assert reply.status_code == 403
    assert reply.text == "admins only"  # as returned: not wrapped, not an error envelope


def test_a_refusal_from_a_handler_becomes_the_error_body(shop):
    missing = shop_call(shop, "GET", "/api/items/404")
    invalid = shop_call(shop, "POST", "/api/items", json={})

    assert missing.status_code == 404
    assert missing.json() == {"ok": False, "code": "not_found", "message": "no item 404"}
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "invalid"


def test_a_reply_from_a_handler_goes_out_unwrapped(shop):
    shop.items[3] = "Bowl"

    reply = shop_call(shop, "DELETE", "/api/items/3")

    assert reply.status_code == 204
    assert reply.content == b""
    assert shop.items == {}


def test_handlers_run_under_the_lock_unless_the_route_says_not(shop):
    assert shop_call(shop, "GET", "/api/locked").json()["data"] == {"held": True}
    assert shop_call(shop, "GET", "/api/unlocked").json()["data"] == {"held": False}


def test_default_hooks():
    with DefaultsEmulator() as emulator:
        url = emulator.base_url
        item = requests.get(url + "/items/5", timeout=5)
        unknown = requests.get(url + "/nowhere", timeout=5)
        wrong_method = requests.put(url + "/items/5", timeout=5)
        refused = requests.get(url + "/refuse", timeout=5)

    assert (item.status_code, item.json()) == (200, {"id": "5"})
    assert (unknown.status_code, unknown.text) == (404, "Not Found")
    assert (wrong_method.status_code, wrong_method.text) == (405, "Method Not Allowed")
    assert wrong_method.headers["Allow"] == "GET, DELETE"
    assert (refused.status_code, refused.json()) == (400, {"error": "no thanks"})


def test_the_first_declared_pattern_matching_a_path_decides_its_methods():
    with DefaultsEmulator() as emulator:
        url = emulator.base_url
        # `/items/5` is `/items/{id:int}` (GET, DELETE), declared before `/items/{slug}`.
        digits = requests.post(url + "/items/5", timeout=5)
        slug = requests.post(url + "/items/blue-mug", timeout=5)

    assert digits.status_code == 405
    assert (slug.status_code, slug.json()) == (200, {"slug": "blue-mug"})


def test_a_failing_handler_is_a_server_error_and_the_emulator_keeps_serving():
    with DefaultsEmulator() as emulator:
        failed = requests.get(emulator.base_url + "/boom", timeout=5)
        after = requests.get(emulator.base_url + "/items/1", timeout=5)

    assert (failed.status_code, failed.text) == (500, "emulator error")
    assert after.status_code == 200


def test_a_refusal_from_wrap_is_answered_with_wrap_error():
    # `handle` says a Refusal raised by any of its hooks is answered with `wrap_error`.
    class StrictEnvelopeEmulator(Emulator):
        name = "strict"
        routes = (Route("GET", "/big", "_big", envelope="strict"),)

        def wrap(self, payload: Any, route: Route) -> Reply:
            if route.envelope == "strict" and len(payload) > 2:
                raise Refusal("answer too large", status=413)
            return Reply.json(payload)

        def _big(self, request: Request) -> list[int]:
            return [1, 2, 3]

    with StrictEnvelopeEmulator() as emulator:
        reply = requests.get(emulator.base_url + "/big", timeout=5)

    assert (reply.status_code, reply.json()) == (413, {"error": "answer too large"})


def test_a_subclass_keeps_its_parents_routes_and_may_replace_handlers():
    class LouderEmulator(DefaultsEmulator):
        def _get_item(self, request: Request, id: str) -> dict[str, Any]:
            return {"id": id, "loud": True}

    with LouderEmulator() as emulator:
        reply = requests.get(emulator.base_url + "/items/5", timeout=5)

    assert reply.json() == {"id": "5", "loud": True}


# -- route table errors at class definition -------------------------------------------------------


def test_a_route_without_its_handler_fails_at_class_definition():
    with pytest.raises(TypeError, match="has no handler _missing for /x"):

        class _NoHandler(Emulator):
            routes = (Route("GET", "/x", "_missing"),)

    with pytest.raises(TypeError, match="has no handler _label for /x/{id}"):

        class _NotCallable(Emulator):
            routes = (Route("GET", "/x/{id}", "_label"),)
            _label = "not a method"


def test_a_duplicate_route_fails_at_class_definition():
    with pytest.raises(ValueError, match="two routes for GET /x"):

        class _TwiceExact(Emulator):
            routes = (Route("GET", "/x", "_x"), Route("GET", "/x", "_x"))

            def _x(self, request: Request) -> None: ...

    with pytest.raises(ValueError, match="two routes for POST /x/{id}"):

        class _TwicePattern(Emulator):
            routes = (Route("POST", "/x/{id}", "_x"), Route("POST", "/x/{id}", "_x"))

            def _x(self, request: Request, id: str) -> None: ...


def test_a_lowercase_method_fails_at_class_definition():
    with pytest.raises(ValueError, match="write the method in capitals, not get"):

        class _Lowercase(Emulator):
            routes = (Route("get", "/x", "_x"),)

            def _x(self, request: Request) -> None: ...


def test_an_unknown_parameter_type_fails_at_class_definition():
    with pytest.raises(ValueError, match="unknown parameter type 'float'"):

        class _Float(Emulator):
            routes = (Route("GET", "/x/{price:float}", "_x"),)

            def _x(self, request: Request, price: str) -> None: ...


def test_the_same_path_may_have_several_methods():
    class _Methods(Emulator):
        routes = (Route("GET", "/x", "_x"), Route("POST", "/x", "_x"))

        def _x(self, request: Request) -> None: ...

    assert [route.method for route in _Methods.router] == ["GET", "POST"]


# -- tokens and ids --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def token_store(clock: FakeClock, **options: Any) -> tuple[TokenStore, list[TokenKind]]:
    """A store numbering its tokens ("access-1", "refresh-2", ...), and the kinds it asked for."""
    asked: list[TokenKind] = []
    numbers = itertools.count(1)

    def new_token(kind: TokenKind) -> str:
        asked.append(kind)
        return f"{kind}-{next(numbers)}"

    options.setdefault("access_ttl", 3600)
    return TokenStore(new_token, clock=clock, **options), asked


def test_token_store_issues_a_first_pair_at_once_access_first():
    clock = FakeClock()

    store, asked = token_store(clock, access_ttl=3600)

    assert asked == ["access", "refresh"]
    assert store.current == TokenPair("access-1", "refresh-2")
    assert store.valid("access-1")
    assert store.expires_at("access-1") == clock.now + 3600
    assert store.expires_at("refresh-2") == math.inf  # no refresh_ttl: never expires
    assert store.expires_at("access-0") is None


def test_access_token_expires_after_its_lifetime():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=60)
    access = store.current.access

    clock.advance(59.9)
    assert store.access_state(access) == "valid"
    clock.advance(0.1)  # at its expiry time exactly
    assert store.access_state(access) == "expired"
    assert not store.valid(access)
    assert store.access_state("made-up") == "unknown"


def test_refresh_trades_a_refresh_token_once():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=60)
    first = store.current

    second = store.refresh(first.refresh)

    assert second == TokenPair("access-3", "refresh-4")
    assert store.current == second
    assert store.valid(second.access)
    assert store.refresh(first.refresh) is None  # single use
    assert store.refresh_state(first.refresh) == "unknown"
    assert store.refresh_state(second.refresh) == "valid"
    assert store.refresh("made-up") is None
    assert store.current == second


def test_without_grace_the_old_access_token_lives_out_its_lifetime():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=60)
    old = store.current.access

    clock.advance(30)
    store.refresh(store.current.refresh)

    clock.advance(29)
    assert store.valid(old)
    clock.advance(1)
    assert store.access_state(old) == "expired"


def test_old_access_grace_shortens_the_old_access_token():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=3600, old_access_grace=30)
    old = store.current.access

    new = store.refresh(store.current.refresh)

    assert new is not None
    assert store.expires_at(old) == clock.now + 30
    clock.advance(29)
    assert store.valid(old)
    clock.advance(1)
    assert store.access_state(old) == "expired"
    assert store.valid(new.access)


def test_old_access_grace_never_lengthens_the_old_access_token():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=60, old_access_grace=300)
    old = store.current.access

    clock.advance(50)
    store.refresh(store.current.refresh)

    assert store.expires_at(old) == clock.now + 10


def test_old_access_grace_zero_refuses_the_old_access_token_at_once():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=3600, old_access_grace=0)
    old = store.current.access

    store.refresh(store.current.refresh)

    assert store.access_state(old) == "expired"


def test_old_access_grace_applies_to_the_refreshed_pairs_access_token():
    # Two grants: the first holder refreshes its pair while the second pair is current.
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=3600, old_access_grace=0)
    first = store.current
    second = store.issue()

    store.refresh(first.refresh)

    # The docstring: the access token the refresh token "was issued with" gets the grace.
    assert store.access_state(first.access) == "expired"
    assert store.valid(second.access)


def test_refresh_tokens_expire_after_refresh_ttl():
    clock = FakeClock()
    store, _ = token_store(clock, access_ttl=60, refresh_ttl=600)
    pair = store.current

    assert store.expires_at(pair.refresh) == clock.now + 600
    clock.advance(600)
    assert store.refresh_state(pair.refresh) == "expired"
    assert store.refresh(pair.refresh) is None
    assert store.current == pair


def test_issue_makes_a_new_current_pair_and_keeps_the_old_one():
    clock = FakeClock()
    store, asked = token_store(clock)
    first = store.current

    second = store.issue()

    assert second == TokenPair("access-3", "refresh-4")
    assert asked == ["access", "refresh", "access", "refresh"]
    assert store.current == second
    assert store.valid(first.access)
    assert store.refresh_state(first.refresh) == "valid"


def test_revoked_tokens_are_unknown():
    clock = FakeClock()
    store, _ = token_store(clock)
    pair = store.current

    store.revoke(pair.access)
    store.revoke(pair.refresh)
    store.revoke("never-issued")  # harmless

    assert store.access_state(pair.access) == "unknown"
    assert store.refresh_state(pair.refresh) == "unknown"
    assert store.expires_at(pair.access) is None
    assert store.refresh(pair.refresh) is None


def test_expire_access_expires_every_access_token_issued_so_far():
    clock = FakeClock()
    store, _ = token_store(clock)
    first = store.current
    second = store.issue()

    store.expire_access()

    assert store.access_state(first.access) == "expired"
    assert store.access_state(second.access) == "expired"
    assert store.refresh_state(second.refresh) == "valid"
    third = store.refresh(second.refresh)
    assert third is not None
    assert store.valid(third.access)


def test_a_refresh_token_raced_by_many_threads_is_traded_once():
    store, _ = token_store(FakeClock())
    refresh_token = store.current.refresh
    barrier = threading.Barrier(8)
    results: list[TokenPair | None] = []
    results_lock = threading.Lock()

    def trade() -> None:
        barrier.wait()
        pair = store.refresh(refresh_token)
        with results_lock:
            results.append(pair)

    threads = [threading.Thread(target=trade) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [winner] = [pair for pair in results if pair is not None]
    assert len(results) == 8
    assert store.current == winner


def test_id_sequence_counts_from_first_and_peek_takes_nothing():
    ids = IdSequence(1000)

    assert ids.peek() == 1000
    assert ids.peek() == 1000
    assert [ids.next(), ids.next()] == [1000, 1001]
    assert ids.peek() == 1002
    assert IdSequence().next() == 1


def test_id_sequence_hands_out_each_id_once_across_threads():
    ids = IdSequence(1)
    per_thread = 5000
    barrier = threading.Barrier(8)
    taken: list[list[int]] = [[] for _ in range(8)]

    def take(mine: list[int]) -> None:
        barrier.wait()
        for _ in range(per_thread):
            mine.append(ids.next())

    threads = [threading.Thread(target=take, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [value for mine in taken for value in mine]
    assert len(every) == 8 * per_thread
    assert sorted(every) == list(range(1, 8 * per_thread + 1))
    assert ids.peek() == 8 * per_thread + 1
    assert all(mine == sorted(mine) for mine in taken)  # each thread sees them increase


# -- what the base gives every marketplace -------------------------------------------------------


class ListingsEmulator(ExpiringTokens, Emulator):
    """The helpers the base builds from a marketplace's hooks: two listings, tokens that
    expire, and a signing secret and token `wrong_credentials` gets wrong."""

    name = "listings"
    secret_fields = ("app_secret", "access_token")

    def __init__(self, clock: FakeClock | None = None) -> None:
        super().__init__(clock=clock or FakeClock())
        self.tokens, _ = token_store(FakeClock())

    @property
    def credentials(self) -> dict[str, Any]:
        return {
            "access_token": "shpat_" + self.tokens.current.access.encode().hex(),
            "app_key": "app-7",
            "app_secret": "cs_3fa9c2",
        }

    def iter_listings(self) -> Iterator[Listing]:
        yield Listing("10", "", 4, Decimal("9.90"))
        yield Listing("11", "21", 0, Decimal("12.00"))


def test_listing_helpers_are_built_from_iter_listings():
    emulator = ListingsEmulator()

    assert emulator.listing_quantities() == {("10", ""): 4, ("11", "21"): 0}
    assert emulator.listing_prices() == {("10", ""): Decimal("9.90"), ("11", "21"): Decimal("12")}
    with pytest.raises(NotImplementedError, match="iter_listings"):
        EchoEmulator().listing_quantities()


def test_wrong_credentials_zero_the_secret_fields_and_keep_the_rest():
    emulator = ListingsEmulator()
    right = emulator.credentials

    wrong = emulator.wrong_credentials()

    assert list(wrong) == list(right)  # same keys, same order
    assert wrong["app_key"] == right["app_key"]
    assert wrong["app_secret"] == "cs_000000"  # the prefix kept, the hex digits zeroed
    assert wrong["access_token"] == "shpat_" + "0" * (len(right["access_token"]) - 6)
    with pytest.raises(NotImplementedError, match="wrong_credentials"):
        EchoEmulator().wrong_credentials()


def test_expiring_tokens_expire_every_access_token_issued():
    emulator = ListingsEmulator()
    access = emulator.tokens.current.access

    emulator.expire_access_tokens()

    assert emulator.tokens.access_state(access) == "expired"
    assert not hasattr(EchoEmulator(), "expire_access_tokens")  # keys that never expire


def test_shop_cache_recomputes_when_the_version_moves_and_forgets_past_its_limit():
    cache: ShopCache[str, list[int]] = ShopCache(limit=2)
    computed: list[str] = []

    def compute(key: str) -> list[int]:
        computed.append(key)
        return [len(computed)]

    first = cache.get("a", 1, lambda: compute("a"))
    again = cache.get("a", 1, lambda: compute("a"))
    moved = cache.get("a", 2, lambda: compute("a"))
    for key in ("b", "c", "d"):  # the fourth key finds three: all are forgotten
        cache.get(key, 2, lambda key=key: compute(key))
    after_limit = cache.get("a", 2, lambda: compute("a"))

    assert first is again
    assert moved == [2]
    assert computed == ["a", "a", "b", "c", "d", "a"]
    assert after_limit == [6]


def test_json_object_raises_the_marketplaces_own_refusals():
    def request(body: bytes) -> Request:
        return Request("POST", "/x", {}, {"content-type": "application/json"}, body)

    not_json, not_object = Refusal("not JSON"), Refusal("not an object")

    assert request(b'{"a": 1}').json_object(not_json, not_object) == {"a": 1}
    for body, expected in ((b"{bad", not_json), (b"[1]", not_object), (b"", not_object)):
        with pytest.raises(Refusal) as refused:
            request(body).json_object(not_json, not_object)
        assert refused.value is expected


def test_throttled_in_body_follows_the_style_and_draws_only_when_mixed():
    emulator, twin = EchoEmulator(seed=4), EchoEmulator(seed=4)

    assert all(emulator.throttled_in_body("body") for _ in range(5))
    assert not any(emulator.throttled_in_body("http") for _ in range(5))
    mixed = [emulator.throttled_in_body("mixed") for _ in range(40)]

    assert mixed == [twin.random_fault() < 0.5 for _ in range(40)]  # no draw for body or http
    assert set(mixed) == {True, False}


def test_signed_json_push_signs_the_prefix_and_the_compact_body():
    headers, body = signed_json_push({"b": 1, "a": [2]}, secret="s3", signed_prefix=b"key|")

    assert body == b'{"b":1,"a":[2]}'
    assert headers == {
        "Authorization": hmac.new(b"s3", b"key|" + body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


def test_time_after_is_the_clock_or_a_second_past_the_previous_time():
    clock = FakeClock(1000.7)
    emulator = ListingsEmulator(clock)

    assert emulator.time_after(900) == 1000
    assert emulator.time_after(1000) == 1001
    assert emulator.time_after(1005) == 1006


def test_category_ids_number_departments_and_leaves_in_catalogue_order():
    departments, leaves = category_ids(100, 500)

    assert list(departments) == list(dict.fromkeys(leaf.department for leaf in LEAVES))
    assert list(departments.values()) == list(range(100, 100 + len(departments)))
    assert leaves == {leaf.name: 500 + n for n, leaf in enumerate(LEAVES)}
