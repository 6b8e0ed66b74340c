"""A property-based run over the API's own OpenAPI document.

For every operation, Hypothesis draws path ids, query parameters and bodies from the document's
schemas (mostly valid, sometimes wrong in type, size or encoding, sometimes not JSON at all),
sends them with a read+write token, and checks that the answer is never a 5xx, is a status the
document lists for that operation, and matches the schema the document gives for it.
Bounded: a few dozen examples per operation, all against a local database and emulator.
"""

import json
import socket
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from channels.emulators.shopee import ShopeeEmulator
from tests.api.conftest import ApiClient
from tests.api.schema import fill, openapi, operations

pytestmark = pytest.mark.django_db
EXAMPLES = 30
OPERATIONS = [op for op in operations() if op != ("get", "/api/health")]
HUGE = [0, -1, 2**31, 2**63, 10**30, -(10**30)]
JUNK_TEXT = ["", " ", "\x00", "a\x00b", "\ud800", "💥" * 3, "' OR 1=1 --", "x" * 5000]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(JUNK_TEXT),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = openapi()["components"]["schemas"][name]
    return node


def valid(node: dict[str, Any], *, name: str = "", known: dict | None = None) -> st.SearchStrategy:
    """Values the schema describes (a small, edge-heavy subset of them). `known` gives real
    values for some field names (an existing SKU, outlet code, working credentials), drawn
    half the time so requests also get past validation into the services."""
    node = resolve(node)
    known = known or {}
    if name == "api_base_url":  # never let a generated channel point anywhere but the emulator
        return st.just(known["api_base_url"])
    if name in known:
        return st.sampled_from(known[name]) | _valid(node, name, known)
    return _valid(node, name, known)


def _valid(node: dict[str, Any], name: str, known: dict) -> st.SearchStrategy:
    for key in ("anyOf", "oneOf"):
        if key in node:
            return st.one_of([valid(n, name=name, known=known) for n in node[key]])
    if "allOf" in node:
        return valid(node["allOf"][0], name=name, known=known)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    if kind == "string":
        if node.get("format") == "date-time":
            return st.datetimes().map(lambda d: d.isoformat() + "Z")
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= node.get("maxLength", 200)
            )
        size = min(node.get("maxLength", 40), 40)
        return st.text(min_size=node.get("minLength", 0), max_size=max(size, 1))
    if kind == "integer":
        low, high = node.get("minimum", -(2**40)), node.get("maximum", 2**40)
        return st.integers(min_value=low, max_value=high) | st.sampled_from([low, high])
    if kind == "number":
        return st.decimals(min_value=node.get("minimum", -(10**6)), max_value=10**6, places=2).map(
            str
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(
            valid(node.get("items", {}), known=known),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 4), 4),
        )
    if kind == "object" or "properties" in node:
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        fields = {k: valid(v, name=k, known=known) for k, v in properties.items()}
        strategy = st.fixed_dictionaries(
            {k: s for k, s in fields.items() if k in required},
            optional={k: s for k, s in fields.items() if k not in required},
        )
        if node.get("additionalProperties") and not properties:
            return st.dictionaries(st.text(max_size=12), json_values, max_size=4)
        return strategy
    return json_values


def wrong(node: dict[str, Any], **kw: Any) -> st.SearchStrategy:
    """Mostly-valid values with a wrong leaf now and then."""
    return st.one_of(valid(node, **kw), valid(node, **kw), json_values, st.sampled_from(HUGE))


def request_strategy(method: str, path: str, ids: list[int], known: dict):
    op = openapi()["paths"][path][method]
    path_ids = st.sampled_from([*ids, 1, 2, 999_999, 2**63 - 1]) | st.sampled_from(HUGE)
    params = st.fixed_dictionaries(
        {},
        optional={
            p["name"]: wrong(p["schema"], name=p["name"], known=known) | st.sampled_from(JUNK_TEXT)
            for p in op.get("parameters", [])
            if p["in"] == "query"
        },
    )
    body_schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    if body_schema is None:
        body = st.none()
    else:
        body = valid(body_schema, known=known).map(json.dumps) | st.one_of(
            json_values.map(json.dumps),
            st.sampled_from(["{", "[1,", "null", '{"a": NaN}', "\xff\xfe", '"\\ud800"']),
        )
    return st.tuples(path_ids, params, body)


def query_string(params: dict[str, Any]) -> str:
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        return value if isinstance(value, str) else json.dumps(value)

    return urlencode(
        {k: text(v).encode("utf-8", "surrogatepass") for k, v in params.items() if v is not None}
    )


def check(op: dict[str, Any], response) -> None:
    status = str(response.status_code)
    assert response.status_code < 500, response.content[:2000]
    assert status in op["responses"], f"undocumented status {status}: {response.content[:500]}"
    content = op["responses"][status].get("content", {})
    if "text/plain" in content:
        assert response["Content-Type"].startswith("text/plain")
        return
    documented = content.get("application/json")
    if documented is None:
        assert response.content == b"", "a body where none is documented"
        return
    schema = {**documented["schema"], "components": openapi()["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(response.json()))
    assert not errors, f"answer does not match its schema: {errors[0].message}"


@pytest.fixture
def only_loopback(monkeypatch):
    """Nothing in this test may reach beyond this machine, whatever it is asked to do."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"blocked in tests: {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture
def world(api, only_loopback):
    """A little of everything, so ids in paths sometimes name something real."""
    with ShopeeEmulator(items=3, seed=11, pos_skus=("FZ-1",)) as shop:
        api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"})
        product = api.post(
            "/api/products",
            {"name": "Tee", "variants": [{"sku": "FZ-1", "retail_price": "10.00"}]},
        ).json()
        channel = api.post(
            "/api/channels",
            {
                "kind": "shopee",
                "name": "Shopee",
                "api_base_url": shop.base_url,
                "credentials": shop.credentials,
                "order_outlet": "jkt",
            },
        ).json()
        known = {
            "api_base_url": shop.base_url,
            "credentials": [shop.credentials],
            "sku": ["FZ-1", " fz-1 "],
            "outlet": ["jkt"],
            "order_outlet": ["jkt"],
            "outlets": [["jkt"]],
            "tab": ["in_pos", "not_in_channel"],
            "variant_ids": [[v["id"] for v in product["variants"]]],
        }
        yield {"ids": [product["id"], channel["id"]], "known": known}


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_input_makes_an_operation_fail_or_break_its_schema(api: ApiClient, world, method, path):
    op = openapi()["paths"][path][method]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request_strategy(method, path, world["ids"], world["known"]))
    def run(drawn):
        path_id, params, body = drawn
        url = fill(path, default=path_id)
        if query := query_string(params):
            url += "?" + query
        if method == "get":
            response = api.get(url)
        else:
            raw = (body or "").encode("utf-8", "surrogatepass")
            response = api.send(method.upper(), url, raw=raw)
        check(op, response)

    run()
