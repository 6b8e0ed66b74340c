"""Products, variants and stock through the API: the catalog rules, and clear refusals."""

import pytest

from catalog.models import Product, StockMovement, Variant
from catalog.signals import product_changed
from tests.api.test_end_to_end import ok, product_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def outlets(api):
    ok(api.post("/api/outlets", {"code": "jkt", "name": "Jakarta"}), 201)
    ok(api.post("/api/outlets", {"code": "wh", "name": "Warehouse", "kind": "warehouse"}), 201)


@pytest.fixture
def announced():
    """The product_changed announcements made (what catalog sync pushes to channels)."""
    calls = []

    def listen(sender, **kwargs):
        calls.append(kwargs)

    product_changed.connect(listen)
    yield calls
    product_changed.disconnect(listen)


def errors(response) -> dict[tuple, str]:
    assert response.status_code == 422, response.content
    return {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}


def test_a_product_is_created_with_its_variants_synced_and_pos_only_fields(api):
    body = product_body("Tee", "TEE-S", "TEE-M", tags="summer", reorder_point=5)
    body["variants"][0]["options"] = {"Size": "S"}
    product = ok(api.post("/api/products", body), 201)
    assert [v["sku"] for v in product["variants"]] == ["TEE-S", "TEE-M"]
    assert product["variants"][0]["options"] == {"Size": "S"}
    assert (product["brand"], product["category"], product["weight_kg"]) == (
        "Lumo",
        "T-Shirts",
        "0.250",
    )
    assert (product["supplier"], product["supplier_price"], product["tags"]) == (
        "PT Sumber Kain",
        "20.00",
        "summer",
    )
    assert ok(api.get(f"/api/products/{product['id']}")) == product


def test_every_problem_of_a_product_is_named_at_once_and_nothing_is_written(api):
    ok(api.post("/api/products", product_body("Old", "TEE-1")), 201)
    body = product_body("New", " tee-1 ", "NEW-1", "new-1 ")
    body["variants"][1]["retail_price"] = "-1"
    body["weight_kg"] = "1.2345"
    found = errors(api.post("/api/products", body))
    assert ("body", "payload", "variants", 1, "retail_price") in found
    assert ("body", "payload", "weight_kg") in found
    assert Product.objects.count() == 1  # the schema refused it before any service ran
    body = product_body("New", " tee-1 ", "NEW-1", "new-1 ")
    found = errors(api.post("/api/products", body))
    assert "clashes with 'TEE-1'" in found[("body", "variants", 0, "sku")]
    assert "also given at variants.1" in found[("body", "variants", 2, "sku")]
    assert Product.objects.count() == 1
    assert errors(api.post("/api/products", {"name": "No variants", "variants": []}))


def test_patch_changes_only_what_is_sent_and_announces_synced_changes(api, announced):
    product = ok(api.post("/api/products", product_body("Tee", "TEE-S")), 201)
    pid, variant = product["id"], product["variants"][0]
    announced.clear()
    # a POS-only change: saved, announced with no synced field (nothing to push)
    changed = ok(api.patch(f"/api/products/{pid}", {"supplier_code": "SC-9"}))
    assert changed["supplier_code"] == "SC-9"
    assert changed["name"] == "Tee"
    assert announced == []
    # a synced change, a variant price, a new variant
    body = {
        "name": "Tee Shirt",
        "variants": [
            {"id": variant["id"], "retail_price": "55.00"},
            {"sku": "TEE-L", "retail_price": "60"},
        ],
    }
    changed = ok(api.patch(f"/api/products/{pid}", body))
    assert changed["name"] == "Tee Shirt"
    assert [(v["sku"], v["retail_price"]) for v in changed["variants"]] == [
        ("TEE-S", "55.00"),
        ("TEE-L", "60.00"),
    ]
    new_id = Variant.objects.get(sku="TEE-L").pk
    assert announced[-1]["created_variant_ids"] == [new_id]
    assert set(announced[-1]["changed"]) == {"name", "variants"}
    # the same request again changes nothing, so nothing is pushed twice
    announced.clear()
    same = {"name": "Tee Shirt", "variants": [{"id": variant["id"], "retail_price": "55.00"}]}
    again = ok(api.patch(f"/api/products/{pid}", same))
    assert again["updated_at"] == changed["updated_at"]
    assert announced == []


def test_patch_refuses_another_products_variant_and_a_taken_sku(api):
    first = ok(api.post("/api/products", product_body("A", "A-1")), 201)
    second = ok(api.post("/api/products", product_body("B", "B-1")), 201)
    other = {"variants": [{"id": second["variants"][0]["id"], "upc": "123"}]}
    assert (
        "has no variant"
        in errors(api.patch(f"/api/products/{first['id']}", other))[("body", "variants", 0, "id")]
    )
    taken = {"variants": [{"id": first["variants"][0]["id"], "sku": "b-1"}]}
    assert (
        "clashes"
        in errors(api.patch(f"/api/products/{first['id']}", taken))[("body", "variants", 0, "sku")]
    )
    assert Variant.objects.get(pk=first["variants"][0]["id"]).sku == "A-1"


def test_images_are_replaced_and_cleared(api):
    product = ok(api.post("/api/products", product_body("Tee", "T-1")), 201)
    url = f"/api/products/{product['id']}"
    images = ["https://img.test/1.png", "https://img.test/2.png"]
    assert ok(api.patch(url, {"images": images}))["images"] == images
    assert ok(api.patch(url, {"images": images[::-1]}))["images"] == images[::-1]
    assert ok(api.patch(url, {"images": None}))["images"] == []
    assert ("body", "payload", "images", 0) in errors(api.patch(url, {"images": ["not a url"]}))


def test_variants_are_found_by_sku_trimmed_and_ignoring_case(api, outlets):
    ok(api.post("/api/products", product_body("Tee", "TEE-Blk-M")), 201)
    found = ok(api.get("/api/variants", {"sku": "  tee-blk-m "}))
    assert [v["sku"] for v in found["items"]] == ["TEE-Blk-M"]
    assert found["items"][0]["product_name"] == "Tee"
    assert ok(api.get("/api/variants", {"sku": "TEE"}))["count"] == 0
    assert ok(api.get("/api/products", {"sku": "tee-blk-m"}))["count"] == 1


def test_adjust_takes_exactly_one_of_delta_and_quantity(api, outlets):
    ok(api.post("/api/products", product_body("Tee", "T-1")), 201)
    for body in (
        {"sku": "T-1", "outlet": "jkt"},
        {"sku": "T-1", "outlet": "jkt", "delta": 1, "quantity": 1},
    ):
        detail = api.post("/api/stock/adjust", body).json()["detail"]
        assert "exactly one of delta and quantity" in detail[0]["msg"]
    assert (
        api.post("/api/stock/adjust", {"sku": "T-1", "outlet": "nope", "delta": 1}).status_code
        == 404
    )
    big = api.post("/api/stock/adjust", {"sku": "T-1", "outlet": "jkt", "quantity": 10**12})
    assert big.status_code == 422
    assert not StockMovement.objects.exists()


def test_bulk_reports_each_bad_row_and_applies_the_rest_once(api, outlets):
    ok(api.post("/api/products", product_body("Tee", "T-1", "T-2", "T-3")), 201)
    rows = [
        {"sku": "T-1", "outlet": "jkt", "quantity": 5},
        {"sku": "t-2 ", "outlet": "wh", "quantity": 7},
        {"sku": "T-3", "outlet": "jkt", "quantity": -2},  # negative
        {"sku": "T-3", "outlet": "nowhere", "quantity": 1},  # unknown outlet
        {"sku": "T-9", "outlet": "jkt", "quantity": 1},  # unknown SKU
        {"sku": "T-2", "outlet": "jkt", "quantity": 1},  # the same SKU and outlet…
        {"sku": "t-2", "outlet": "jkt", "quantity": 2},  # …twice
        {"sku": "T-1\x00", "outlet": "jkt", "quantity": 1},  # unstorable
        {"sku": "T-3", "outlet": "jkt", "quantity": 10**20},  # too large
    ]
    result = ok(api.post("/api/stock/bulk", {"rows": rows, "reference": "count 12"}))
    assert (result["applied"], result["refused"]) == (2, 7)
    by_row = {r["row"]: r for r in result["rows"]}
    assert (by_row[0]["on_hand"], by_row[1]["on_hand"]) == (5, 7)
    assert "between 0 and" in by_row[2]["error"]
    assert "No outlet" in by_row[3]["error"]
    assert "No variant" in by_row[4]["error"]
    assert "rows 5, 6" in by_row[5]["error"]
    assert by_row[5]["error"] == by_row[6]["error"]
    assert "No variant" in by_row[7]["error"]
    assert "between 0 and" in by_row[8]["error"]
    movements = StockMovement.objects.all()
    assert movements.count() == 2
    assert set(movements.values_list("trigger", "reference")) == {("api_bulk", "count 12")}
    # the same request again: every row reported the same, nothing written twice
    again = ok(api.post("/api/stock/bulk", {"rows": rows, "reference": "count 12"}))
    assert [r["error"] for r in again["rows"]] == [r["error"] for r in result["rows"]]
    assert StockMovement.objects.count() == 2
