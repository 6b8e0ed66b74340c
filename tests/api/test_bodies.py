"""Request bodies: a body must be a JSON object, every object inside it too; a body that is not
JSON is a 400, one that is JSON of the wrong shape (or missing) a 422, and neither writes."""

import typing

import pytest
from pydantic import BaseModel

from catalog.models import Outlet, Product, Stock
from channels.models import Channel, Scan
from omni.api import api
from omni.api_base import InSchema
from tests.api.conftest import ApiClient, outlet_product_channel
from tests.api.schema import fill, openapi, operations

pytestmark = pytest.mark.django_db
NOT_OBJECTS = [b"[null, null]", b'"hello"', b"3", b"null", b"true", b"[]"]
NOT_JSON = [b"{", b'{"name": "x",}', b'{"buffer": NaN}', b"Infinity", b"\xff\xfe{}"]
# Operations whose body the marketplace signs: any bytes, checked by the signature.
RAW_BODIES = {("post", "/api/webhooks/{channel_id}")}
BODY_OPERATIONS = [
    (method, path)
    for method, path in operations()
    if "requestBody" in openapi()["paths"][path][method] and (method, path) not in RAW_BODIES
]


@pytest.fixture
def world(api: ApiClient, shop):
    """One outlet, product and channel, so each id in a path names something."""
    product, channel = outlet_product_channel(api, shop, sku="TEE-1", price="10")
    return {"product_id": product["id"], "channel_id": channel["id"]}


def state() -> tuple:
    """What a refused request must leave as it was."""
    channel = Channel.objects.values().get()
    product = Product.objects.values().get()
    return (
        channel,
        product,
        Outlet.objects.count(),
        Stock.objects.count(),
        Scan.objects.count(),
    )


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
def test_a_body_that_is_not_an_object_is_refused_and_writes_nothing(api, world, method, path):
    before = state()
    for body in NOT_OBJECTS:
        # when
        response = api.send(method.upper(), fill(path, world), raw=body)
        # then
        assert response.status_code == 422, (body, response.content)
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "payload"]
        assert error["type"] == "object_type"
        assert error["msg"].startswith("Expected a JSON object, got ")
    assert state() == before


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
def test_a_body_that_is_not_json_is_a_400_and_writes_nothing(api, world, method, path):
    before = state()
    for body in NOT_JSON:
        response = api.send(method.upper(), fill(path, world), raw=body)
        assert response.status_code == 400, (body, response.content)
        assert response.json()["detail"] == "Cannot parse request body"
    assert state() == before


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
def test_an_empty_body_is_a_422_unless_the_body_is_optional(api, world, method, path):
    # when
    response = api.send(method.upper(), fill(path, world), raw=b"")
    # then
    if openapi()["paths"][path][method]["requestBody"].get("required"):
        assert response.status_code == 422
        assert response.json()["detail"] == [
            {
                "loc": ["body", "payload"],
                "msg": "This request needs a JSON object body.",
                "type": "missing",
            }
        ]
    else:
        assert response.status_code < 300


def test_a_scan_without_a_body_is_a_full_scan_and_a_null_body_is_refused(api, world):
    url = f"/api/channels/{world['channel_id']}/scans"
    assert api.post(url, raw=b"null").status_code == 422
    assert not Scan.objects.exists()
    # when
    response = api.post(url)
    # then
    assert response.status_code == 202
    assert response.json()["kind"] == "full"


def test_a_patch_that_is_not_an_object_leaves_the_channel_as_it_was(api, world):
    url = f"/api/channels/{world['channel_id']}"
    before = Channel.objects.values().get()
    assert api.patch(url, raw=b"[null, null]").status_code == 422
    assert api.patch(url, raw=b'"hello"').status_code == 422
    assert Channel.objects.values().get() == before
    # an empty object is a patch that changes nothing
    assert api.patch(url, {}).status_code == 200


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "Cap", "variants": [["CAP-1", "5"]]}, ["body", "payload", "variants", 0]),
        ({"name": "Cap", "variants": ["CAP-1"]}, ["body", "payload", "variants", 0]),
        ({"name": "Cap", "variants": [None]}, ["body", "payload", "variants", 0]),
    ],
)
def test_an_object_inside_a_body_must_be_an_object_too(api, world, body, loc):
    response = api.post("/api/products", body)
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(loc, "object_type")]
    assert Product.objects.count() == 1


def test_a_variant_patch_that_is_not_an_object_adds_no_variant(api, world):
    url = f"/api/products/{world['product_id']}"
    response = api.patch(url, {"variants": [[]]})
    assert response.status_code == 422
    assert Product.objects.get().variants.count() == 1


def _models_in(annotation: typing.Any) -> typing.Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models_in(field.annotation)
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def test_every_object_a_body_can_hold_refuses_other_json_values():
    # The walk ninja's own OpenAPI generator makes over the mounted routers.
    bodies = [
        model
        for router in api._get_bound_routers()
        for view in router.path_operations.values()
        for operation in view.operations
        for params in operation.models
        if params.__ninja_param_source__ == "body"
        for field in params.model_fields.values()
        for model in _models_in(field.annotation)
    ]
    assert bodies
    assert [m.__name__ for m in bodies if not issubclass(m, InSchema)] == []
