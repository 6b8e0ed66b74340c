"""A property-based run over the API's own OpenAPI document.

For every operation, Hypothesis draws path ids, query parameters and bodies from the document's
schemas (mostly valid, sometimes wrong in type, size or encoding, sometimes not JSON or not an
object at all), sends them with a read+write token, and checks that the answer
- is never a 5xx, is a status the document lists for that operation, and matches the schema
  the document gives for that status;
- to a body that is JSON but not an object, where the document asks for one, is a 422;
- to a request the document says is valid, is never a 422 for a rule of form (a type, a
  length, a pattern, a bound, a one-of rule) the document does not state: a client built from
  the document must be able to rely on it. Refusals for the state of the data (a SKU taken,
  credentials the marketplace's schema refuses) are not rules of form and may still come.
Bounded: a few dozen examples per operation, all against a local database and emulator.
"""

import json
import socket
from decimal import Decimal
from functools import cache
from typing import Any, get_args
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic_core.core_schema import ErrorType

from channels.emulators.shopee import ShopeeEmulator
from tests.api.conftest import ApiClient, outlet_product_channel
from tests.api.schema import document_validator, fill, openapi, operations

pytestmark = pytest.mark.django_db
EXAMPLES = 30
OPERATIONS = [op for op in operations() if op != ("get", "/api/health")]
HUGE = [0, -1, 2**31, 2**63, 10**30, -(10**30)]
JUNK_TEXT = ["", " ", "\x00", "a\x00b", "\ud800", "💥" * 3, "' OR 1=1 --", "x" * 5000]
NOT_OBJECTS = ["[null, null]", '"hello"', '"\\ud800"', "3", "null", "[]", "true"]
NOT_JSON = ["{", "[1,", '{"a": NaN}', "Infinity", "\xff\xfe", '{"a": 1} x']
URLS = ["https://example.com/a.jpg", "http://127.0.0.1:8000/x.png", "https://cdn.shop.co.id/i/1"]

# 422 `type`s that name a rule of form: pydantic's own, omni's validators ("value_error",
# "object_type"), a filter refusing a query value, a number the database cannot store, and
# Django's field checks. A request valid by the document must never get one of these.
RULES_OF_FORM = {
    *get_args(ErrorType),
    "object_type",
    "invalid_filter",
    "range",
    *("max_length", "min_length", "max_value", "min_value", "max_digits", "invalid_choice"),
    *("max_decimal_places", "max_whole_digits", "blank", "null"),
}

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


# --- drawing requests ------------------------------------------------------------------------


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
    if "oneOf" in node and "properties" in node:
        return st.one_of([_object(_one_branch(node, branch), known) for branch in node["oneOf"]])
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
        return _string(node)
    if kind == "integer":
        low, high = node.get("minimum", -(2**40)), node.get("maximum", 2**40)
        return st.integers(min_value=low, max_value=high) | st.sampled_from([low, high])
    if kind == "number":
        return _number(node)
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
        return _object(node, known)
    return json_values


def _string(node: dict[str, Any]) -> st.SearchStrategy:
    if node.get("format") == "date-time":
        return st.datetimes().map(lambda d: d.isoformat() + "Z")
    if node.get("format") == "uri":
        return st.sampled_from(URLS)
    if "pattern" in node:
        low, high = node.get("minLength", 0), node.get("maxLength", 200)
        return st.from_regex(node["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= high
        )
    size = min(node.get("maxLength", 40), 40)
    return st.text(min_size=node.get("minLength", 0), max_size=max(size, 1))


def _number(node: dict[str, Any]) -> st.SearchStrategy:
    places = -Decimal(str(node.get("multipleOf", 0.01))).as_tuple().exponent
    low, high = node.get("minimum", -(10**6)), node.get("maximum", 10**6)
    edges = st.sampled_from([low, high])
    return st.decimals(min_value=low, max_value=high, places=places).map(float) | edges


def _object(node: dict[str, Any], known: dict) -> st.SearchStrategy:
    properties = node.get("properties", {})
    extra = node.get("additionalProperties")
    if extra and not properties:
        size = min(node.get("maxProperties", 4), 4)
        if extra is True:
            return st.dictionaries(st.text(max_size=12), json_values, max_size=size)
        keys = _string(node.get("propertyNames", {"type": "string"}))
        return st.dictionaries(keys, valid(extra, known=known), max_size=size)
    required = set(node.get("required", []))
    fields = {k: valid(v, name=k, known=known) for k, v in properties.items()}
    return st.fixed_dictionaries(
        {k: s for k, s in fields.items() if k in required},
        optional={k: s for k, s in fields.items() if k not in required},
    )


def _one_branch(node: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """`node` narrowed to one branch of its oneOf: the fields that branch requires are required
    and not null, the ones only other branches require are left out, and the schemas the
    branch gives its fields (a `const` kind, that kind's credentials) replace the node's."""
    chosen = set(branch.get("required", []))
    others = {n for b in node["oneOf"] for n in b.get("required", [])} - chosen
    narrowed = branch.get("properties", {})
    properties = {}
    for name, schema in node["properties"].items():
        if name in others:
            continue
        if name in narrowed and narrowed[name] != {"not": {"type": "null"}}:
            schema = narrowed[name]
        properties[name] = _not_null(schema) if name in chosen else schema
    required = [*node.get("required", []), *chosen]
    rest = {k: v for k, v in node.items() if k != "oneOf"}
    return {**rest, "properties": properties, "required": required}


def _not_null(node: dict[str, Any]) -> dict[str, Any]:
    options = [n for n in node.get("anyOf", [node]) if n.get("type") != "null"]
    return {**node, "anyOf": options}


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
            json_values.map(json.dumps), st.sampled_from(["", *NOT_OBJECTS, *NOT_JSON])
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


# --- what the document says about a request --------------------------------------------------


@cache
def _validator(method: str, path: str, where: str) -> Any:
    op = openapi()["paths"][path][method]
    if where == "body":
        schema = op["requestBody"]["content"]["application/json"]["schema"]
    else:
        schema = next(p["schema"] for p in op.get("parameters", []) if p["name"] == where)
    return document_validator(schema)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    return json.loads(text, parse_constant=refuse)


def document_allows(method: str, path: str, path_id: int, params: dict, body: str | None) -> bool:
    """Whether the document says this request is valid. Text that is not Unicode (a lone
    surrogate) never is, and a query value is judged as drawn, before it became text."""
    op = openapi()["paths"][path][method]
    for parameter in op.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        value = path_id if where == "path" else params.get(name)
        if where not in ("path", "query") or (value is None and not parameter.get("required")):
            continue
        if _has_lone_surrogate(value) or not _validator(method, path, name).is_valid(value):
            return False
    if "requestBody" not in op:
        return True
    if not body:
        return not op["requestBody"].get("required")
    try:
        data = _strict_json(body)
    except ValueError:
        return False
    return not _has_lone_surrogate(data) and _validator(method, path, "body").is_valid(data)


def _json_but_not_object(op: dict[str, Any], body: str | None) -> bool:
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if resolve(schema.get("schema", {})).get("type") != "object" or not body:
        return False
    try:
        return not isinstance(_strict_json(body), dict)
    except ValueError:
        return False


# --- what the answer must be -----------------------------------------------------------------


def check(op: dict[str, Any], response, *, allowed: bool, not_object: bool) -> None:
    status = str(response.status_code)
    assert response.status_code < 500, response.content[:2000]
    assert status in op["responses"], f"undocumented status {status}: {response.content[:500]}"
    if not_object:
        assert response.status_code == 422, "a body that is not a JSON object was taken"
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
    if allowed and response.status_code == 422:
        unstated = [e for e in response.json()["detail"] if e["type"] in RULES_OF_FORM]
        assert not unstated, f"a valid request refused by a rule the document lacks: {unstated}"


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
        product, channel = outlet_product_channel(api, shop, sku="FZ-1", price="10.00")
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
        allowed = document_allows(method, path, path_id, params, body)
        check(op, response, allowed=allowed, not_object=_json_but_not_object(op, body))

    run()
