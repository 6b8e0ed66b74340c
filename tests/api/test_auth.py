"""Tokens and scopes, checked on every operation the OpenAPI document lists, so a new endpoint
cannot skip them; plus the token's life cycle, the rate limit and the body-size limit."""

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import get_resolver
from django.utils import timezone

from omni.auth import token_create, token_revoke
from omni.models import ApiToken
from tests.api.conftest import ApiClient
from tests.api.schema import PUBLIC, READ_METHODS, fill, is_public, openapi, operations

pytestmark = pytest.mark.django_db

PROTECTED = [op for op in operations() if op not in PUBLIC]
WRITES = [op for op in PROTECTED if op[0] not in READ_METHODS]
READS = [op for op in PROTECTED if op[0] in READ_METHODS]


def call(client: ApiClient, method: str, path: str):
    url = fill(path)
    return client.get(url) if method == "get" else client.send(method.upper(), url, {})


def test_the_document_lists_every_api_route_and_only_the_known_public_ones():
    # Every URL the API serves is in the OpenAPI document (nothing hidden from these tests)…
    documented = {re.sub(r"\{\w+\}", "<>", path) for _, path in operations()}
    served = set()
    for pattern in get_resolver().url_patterns:
        if str(pattern.pattern) == "api/":
            for route in pattern.url_patterns:
                if route.name not in {"openapi-json", "openapi-view", "api-root"}:
                    served.add("/api/" + re.sub(r"<[^>]+>", "<>", str(route.pattern)))
    assert served == documented
    # …and the operations without a token requirement are exactly the intended ones.
    public = {
        (method, path)
        for path, ops in openapi()["paths"].items()
        for method, op in ops.items()
        if is_public(op)
    }
    assert public <= PUBLIC
    assert len(PROTECTED) >= 20


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_401_with_a_clear_message(anonymous, method, path):
    response = call(anonymous, method, path)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_unknown_malformed_and_revoked_tokens_are_401(db, method, path):
    token, plain = token_create(name="old", scopes="read,write")
    token_revoke(token=token)
    assert "revoked" in call(ApiClient(plain), method, path).json()["detail"]
    for bad in [plain[:-1] + ("A" if plain[-1] != "A" else "B"), "nonsense", ""]:
        client = ApiClient(bad or None)
        assert call(client, method, path).status_code == 401
    response = ApiClient(None).client.generic(
        method.upper(), fill(path), headers={"Authorization": f"Token {plain}"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_read_token_cannot_write(reader, method, path):
    response = call(reader, method, path)
    assert response.status_code == 403
    assert "lacks the 'write' scope" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), READS)
def test_a_write_only_token_cannot_read(db, method, path):
    client = ApiClient(token_create(name="pusher", scopes="write")[1])
    response = call(client, method, path)
    assert response.status_code == 403
    assert "lacks the 'read' scope" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_token_with_the_scope_gets_past_authentication(api, method, path):
    # Unknown ids or empty bodies may be refused, but not for want of a token.
    assert call(api, method, path).status_code not in (401, 403)


def test_the_plain_token_is_never_stored():
    token, plain = token_create(name="ERP", scopes=["write", "read"])
    row = ApiToken.objects.values().get(pk=token.pk)
    assert plain not in str(row)
    assert row["secret_hash"] == hashlib.sha256(plain.encode()).hexdigest()
    assert row["prefix"] == plain[:12]
    assert row["scopes"] == ["read", "write"]
    assert plain not in str(token)
    assert plain not in repr(token)


def test_last_used_is_recorded_at_most_once_a_minute(django_assert_num_queries):
    token, plain = token_create(name="ERP", scopes="read")
    client = ApiClient(plain)
    client.get("/api/outlets")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    # within the minute: the token is read, never written
    with django_assert_num_queries(3):  # token, count, page
        client.get("/api/outlets")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/outlets")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_revoking_takes_effect_on_the_next_request():
    token, plain = token_create(name="ERP", scopes="read")
    client = ApiClient(plain)
    assert client.get("/api/outlets").status_code == 200
    token_revoke(token=token)
    assert client.get("/api/outlets").status_code == 401


def test_create_api_token_prints_the_token_alone_on_its_last_line():
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token", "ERP nightly", "--scopes", "read,write", stdout=out, stderr=err
    )
    plain = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(r"omni_[A-Za-z0-9_-]{43}", plain)
    assert out.getvalue().count(plain) == 1
    assert plain not in err.getvalue()
    token = ApiToken.objects.get(name="ERP nightly")
    assert token.scopes == ["read", "write"]
    assert ApiClient(plain).post("/api/outlets", {"code": "x", "name": "X"}).status_code == 201


def test_create_api_token_refuses_an_unknown_scope():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Scopes must be among read, write"):
        call_command("create_api_token", "x", "--scopes", "read,admin")
    assert not ApiToken.objects.exists()


def test_the_admin_shows_a_new_token_once_and_revokes(client):
    admin = User.objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        "/admin/omni/apitoken/add/",
        {"name": "Warehouse", "scope_choices": ["read", "write"]},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    plain = re.search(r"omni_[A-Za-z0-9_-]{43}", shown[0]).group(0)
    token = ApiToken.objects.get(name="Warehouse")
    assert token.scopes == ["read", "write"]
    assert ApiClient(plain).get("/api/outlets").status_code == 200
    # never again: not on the change page, not in the list
    assert plain not in client.get(f"/admin/omni/apitoken/{token.pk}/change/").content.decode()
    assert plain not in client.get("/admin/omni/apitoken/").content.decode()
    client.post(
        "/admin/omni/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert ApiClient(plain).get("/api/outlets").status_code == 401


def test_over_the_rate_limit_is_429_with_retry_after(settings, api, reader):
    settings.API_RATE_LIMIT_PER_MINUTE = 5
    statuses = [api.get("/api/outlets").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = api.get("/api/outlets")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Rate limit" in refused.json()["detail"]
    # per token: another integration is not held back
    assert reader.get("/api/outlets").status_code == 200


def test_an_oversized_body_is_413_before_anything_is_read(api, settings):
    settings.API_MAX_BODY_BYTES = 2048
    big = {"code": "x", "name": "y" * 5000}
    response = api.post("/api/outlets", big)
    assert response.status_code == 413
    assert "limit of 2048" in response.json()["detail"]
    # the bulk endpoint has its own, larger limit: 10,000 rows fit
    rows = [{"sku": f"SKU-{i:05d}", "outlet": "jkt", "quantity": i} for i in range(10_000)]
    assert api.post("/api/stock/bulk", {"rows": rows}).status_code == 200


def test_ten_thousand_and_one_rows_are_refused_whole(api):
    rows = [{"sku": "A", "outlet": "jkt", "quantity": 1}] * 10_001
    response = api.post("/api/stock/bulk", {"rows": rows})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "rows"]


def test_expired_last_used_does_not_block(api):
    # a token unused for a year still works (tokens do not expire; they are revoked)
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(days=365))
    assert api.get("/api/outlets").status_code == 200


def test_unknown_paths_and_methods_answer_json(api):
    missing = api.get("/api/nothing-here")
    assert missing.status_code == 404
    assert "see /api/docs" in missing.json()["detail"]
    wrong = api.send("PUT", "/api/outlets", {})
    assert wrong.status_code == 405
    assert wrong.json()["detail"] == "PUT is not allowed on /api/outlets."
