"""Bundles (kits): what they have available, the rules on their components, their stock, and
deleting a component, through the services, the admin and the API."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.bundles import (
    BundleError,
    ComponentInUse,
    bundle_set_components,
    bundles_containing,
    leaf_components,
)
from catalog.exceptions import StockError
from catalog.models import BundleComponent, Stock, StockMovement, Variant
from catalog.selectors import available_stock
from catalog.services import (
    BulkStockRow,
    StockChange,
    product_delete,
    stock_apply,
    stock_bulk_set,
    variant_delete,
)
from catalog.signals import bundle_changed
from tests.api.conftest import ApiClient
from tests.catalog.test_admin_options import page_form
from tests.factories import OutletFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def outlets():
    return OutletFactory(code="jkt"), OutletFactory(code="sby")


def stocked(sku: str, *levels: tuple, **fields) -> Variant:
    """A variant with (outlet, on hand, reserved) levels."""
    variant = VariantFactory(sku=sku, **fields)
    changes = [StockChange(variant.pk, o.pk, set_on_hand=n, reserved_delta=r) for o, n, r in levels]
    if changes:
        stock_apply(changes=changes, trigger="import")
    return variant


def kit(sku: str, *parts: tuple[Variant, int]) -> Variant:
    bundle = VariantFactory(sku=sku)
    bundle_set_components(bundle=bundle, components=list(parts))
    return bundle


# --- what a bundle has available ---------------------------------------------------------------


def test_a_bundle_has_the_fewest_whole_bundles_its_components_make(outlets):
    jkt, sby = outlets
    tee = stocked("TEE", (jkt, 7, 0), (sby, 2, 1))  # 7 + 1 available
    mug = stocked("MUG", (jkt, 5, 0))
    duo = kit("TEE-DUO", (tee, 2), (mug, 1))

    assert available_stock(variant_ids=[duo.pk, tee.pk, mug.pk], outlet_ids=[jkt.pk, sby.pk]) == {
        duo.pk: 4,  # tee: 8 // 2 = 4, mug: 5 // 1 = 5
        tee.pk: 8,
        mug.pk: 5,
    }
    assert available_stock(variant_ids=[duo.pk], outlet_ids=[sby.pk]) == {duo.pk: 0}  # no mug


def test_a_component_at_zero_or_below_makes_none(outlets):
    jkt, _ = outlets
    tee = stocked("TEE", (jkt, 10, 0))
    mug = stocked("MUG", (jkt, 1, 3))  # more reserved than on hand: -2
    cap = VariantFactory(sku="CAP")  # no stock row at all
    with_mug = kit("KIT-MUG", (tee, 1), (mug, 1))
    with_cap = kit("KIT-CAP", (tee, 1), (cap, 1))

    found = available_stock(variant_ids=[with_mug.pk, with_cap.pk, mug.pk], outlet_ids=[jkt.pk])

    assert found == {with_mug.pk: 0, with_cap.pk: 0, mug.pk: -2}


def test_a_bundle_inside_a_bundle_counts_its_components_and_a_shared_one_once(outlets):
    jkt, _ = outlets
    tee, mug, tote = (stocked(s, (jkt, n, 0)) for s, n in (("TEE", 12), ("MUG", 5), ("TOTE", 9)))
    duo = kit("TEE-DUO", (tee, 2))  # 6 duos
    gift = kit("GIFT", (duo, 1), (mug, 1))  # 5 gift boxes: the mugs run out first
    crate = kit("CRATE", (gift, 2), (duo, 1), (tote, 3))  # 2 × (2 tees + mug) + 2 tees = 6 tees

    found = available_stock(variant_ids=[duo.pk, gift.pk, crate.pk], outlet_ids=[jkt.pk])

    assert found == {duo.pk: 6, gift.pk: 5, crate.pk: 2}  # 12 // 6, 5 // 2, 9 // 3
    assert leaf_components([crate.pk]) == {crate.pk: {tee.pk: 6, mug.pk: 2, tote.pk: 3}}


def test_every_variant_asked_about_gets_an_answer(outlets):
    jkt, _ = outlets
    lonely = VariantFactory(sku="LONELY")
    assert available_stock(variant_ids=[lonely.pk, 999_999], outlet_ids=[jkt.pk]) == {
        lonely.pk: 0,
        999_999: 0,
    }
    assert available_stock(variant_ids=[lonely.pk], outlet_ids=[]) == {lonely.pk: 0}


def test_available_stock_costs_the_same_queries_for_1000_bundles_as_for_10(outlets):
    jkt, _ = outlets
    components = [VariantFactory(sku=f"PART-{n}") for n in range(20)]
    stock_apply(
        changes=[StockChange(c.pk, jkt.pk, set_on_hand=100) for c in components], trigger="import"
    )
    products = ProductFactory()
    bundles = Variant.objects.bulk_create(
        Variant(product=products, sku=f"KIT-{n:04d}", retail_price=1) for n in range(1000)
    )
    inner = bundles[:500]
    BundleComponent.objects.bulk_create(
        [
            BundleComponent(bundle=b, component=components[i % 20], quantity=3)
            for i, b in enumerate(inner)
        ]
        + [
            BundleComponent(bundle=b, component=inner[i], quantity=2)
            for i, b in enumerate(bundles[500:])
        ]
        + [
            BundleComponent(bundle=b, component=components[(i + 1) % 20])
            for i, b in enumerate(bundles)
        ]
    )

    def queries(ids):
        with CaptureQueriesContext(connection) as captured:
            found = available_stock(variant_ids=ids, outlet_ids=[jkt.pk])
        return len(captured), found

    few, few_found = queries([b.pk for b in bundles[:5] + bundles[500:505]])
    many, many_found = queries([b.pk for b in bundles])

    # one query per level of nesting (two levels and the leaves), one aggregate of the stock
    assert few == many <= 4
    assert many_found[bundles[0].pk] == 33  # min(100 // 3, 100 // 1)
    # two of KIT-0000 (3 + 1 parts) and one part: 6 of the first part, 3 of the second
    assert many_found[bundles[500].pk] == 16
    assert many_found == {**many_found, **few_found}


def test_bundles_containing_finds_every_level(outlets):
    tee, mug = VariantFactory(sku="TEE"), VariantFactory(sku="MUG")
    duo = kit("TEE-DUO", (tee, 2))
    gift = kit("GIFT", (duo, 1), (mug, 1))
    crate = kit("CRATE", (gift, 1))
    kit("MUGS", (mug, 4))

    assert bundles_containing([tee.pk]) == {duo.pk, gift.pk, crate.pk}
    assert bundles_containing([gift.pk]) == {crate.pk}
    assert bundles_containing([crate.pk]) == set()


# --- the rules ---------------------------------------------------------------------------------


def test_a_bundle_cannot_contain_itself_at_any_depth():
    tee = VariantFactory(sku="TEE")
    duo = kit("TEE-DUO", (tee, 2))
    gift = kit("GIFT", (duo, 1))

    with pytest.raises(BundleError, match="TEE-DUO cannot contain itself"):
        bundle_set_components(bundle=duo, components=[(duo, 1)])
    with pytest.raises(BundleError) as refused:
        bundle_set_components(bundle=duo, components=[(tee, 2), (gift, 1)])
    assert "TEE-DUO cannot contain GIFT" in str(refused.value)
    assert "TEE-DUO → GIFT → TEE-DUO" in str(refused.value)
    # and nothing changed
    assert list(duo.components.values_list("component__sku", "quantity")) == [("TEE", 2)]


def test_quantities_and_a_component_twice_are_refused_with_what_to_do():
    tee, mug = VariantFactory(sku="TEE"), VariantFactory(sku="MUG")
    duo = VariantFactory(sku="TEE-DUO")

    with pytest.raises(BundleError) as refused:
        bundle_set_components(bundle=duo, components=[(tee, 0), (mug, 1), (mug, 2)])

    problems = refused.value.problems
    assert "The quantity of TEE in TEE-DUO must be a whole number from 1 to 100,000, not 0." in (
        problems
    )
    assert (
        problems.count("MUG is listed 2 times in TEE-DUO: list it once, with the total quantity.")
        == 2
    )
    assert not BundleComponent.objects.exists()


def test_a_variant_holding_stock_cannot_become_a_bundle(outlets):
    jkt, sby = outlets
    tee = VariantFactory(sku="TEE")
    shelf = stocked("SHELF-DUO", (jkt, 3, 0))
    held = stocked("HELD-DUO", (sby, 0, 0))
    stock_apply(
        changes=[StockChange(held.pk, sby.pk, reserved_delta=1)], trigger="order_allocation"
    )

    with pytest.raises(
        BundleError, match=r"SHELF-DUO holds stock \(on hand 3, reserved 0 at jkt\)"
    ):
        bundle_set_components(bundle=shelf, components=[(tee, 2)])
    with pytest.raises(BundleError, match=r"reserved 1 at sby.*Bring its stock to 0 first"):
        bundle_set_components(bundle=held, components=[(tee, 2)])

    # a variant whose stock is back at zero can
    stock_apply(changes=[StockChange(shelf.pk, jkt.pk, set_on_hand=0)], trigger="manual")
    bundle_set_components(bundle=shelf, components=[(tee, 2)])
    assert shelf.components.count() == 1


def test_changing_components_replaces_them_and_is_announced_once(
    django_capture_on_commit_callbacks,
):
    tee, mug, cap = (VariantFactory(sku=s) for s in ("TEE", "MUG", "CAP"))
    duo = kit("TEE-DUO", (tee, 2), (mug, 1))
    announced = []

    def listener(sender, bundle_ids, **kwargs):
        announced.append(list(bundle_ids))

    bundle_changed.connect(listener)
    try:
        bundle_set_components(bundle=duo, components=[(tee, 3), (cap, 1)])
        bundle_set_components(bundle=duo, components=[(tee, 3), (cap, 1)])  # the same again
    finally:
        bundle_changed.disconnect(listener)

    assert sorted(duo.components.values_list("component__sku", "quantity")) == [
        ("CAP", 1),
        ("TEE", 3),
    ]
    assert announced == [[duo.pk]]


# --- a bundle's own stock ------------------------------------------------------------------------


def test_stock_apply_refuses_a_bundle_and_writes_nothing(outlets):
    jkt, _ = outlets
    tee = stocked("TEE", (jkt, 5, 0))
    duo = kit("TEE-DUO", (tee, 2))
    movements = StockMovement.objects.count()

    with pytest.raises(StockError) as refused:
        stock_apply(
            changes=[
                StockChange(tee.pk, jkt.pk, on_hand_delta=1),
                StockChange(duo.pk, jkt.pk, on_hand_delta=4),
            ],
            trigger="manual",
        )

    assert str(refused.value) == "TEE-DUO is a bundle: its stock is its components'"
    assert StockMovement.objects.count() == movements
    assert Stock.objects.get(variant=tee).on_hand == 5
    assert not Stock.objects.filter(variant=duo).exists()


def test_bulk_stock_refuses_a_bundle_row_and_applies_the_others(outlets):
    jkt, _ = outlets
    tee = VariantFactory(sku="TEE")
    kit("TEE-DUO", (tee, 2))

    results = stock_bulk_set(
        rows=[BulkStockRow("TEE", "jkt", 4), BulkStockRow("tee-duo ", "jkt", 2)]
    )

    assert [(r.ok, r.on_hand) for r in results] == [(True, 4), (False, None)]
    assert results[1].error == (
        "tee-duo is a bundle: its stock is its components': set the components' stock instead."
    )


# --- deleting a component ------------------------------------------------------------------


def test_a_component_cannot_be_deleted_while_a_bundle_uses_it():
    tee = VariantFactory(sku="TEE")
    kit("TEE-DUO", (tee, 2))
    kit("TEE-TRIO", (tee, 3))

    with pytest.raises(ComponentInUse) as refused:
        variant_delete(variant=tee)
    assert str(refused.value) == (
        "Cannot delete: TEE is a component of the bundles TEE-DUO, TEE-TRIO. Remove it from "
        "those bundles first (a bundle's stock is its components')."
    )
    with pytest.raises(ComponentInUse, match="TEE is a component of the bundles TEE-DUO"):
        product_delete(product=tee.product)
    assert Variant.objects.filter(pk=tee.pk).exists()


def test_a_bundle_and_its_components_may_go_together():
    product = ProductFactory()
    tee = VariantFactory(sku="TEE", product=product)
    duo = kit("TEE-DUO", (tee, 2))
    duo.product = product
    duo.save()

    product_delete(product=product)

    assert not Variant.objects.exists()
    assert not BundleComponent.objects.exists()


def test_a_bundle_itself_may_be_deleted():
    tee = VariantFactory(sku="TEE")
    duo = kit("TEE-DUO", (tee, 2))
    variant_delete(variant=duo)
    assert not BundleComponent.objects.exists()
    assert Variant.objects.filter(pk=tee.pk).exists()


# --- the admin ---------------------------------------------------------------------------------


def variant_url(variant: Variant) -> str:
    return reverse("admin:catalog_variant_change", args=[variant.pk])


def post_components(client, bundle: Variant, *rows: tuple[Variant, int]):
    """Post the variant page as a browser would, its components changed to `rows`: the rows it
    shows are changed in place (and ticked for deletion past `rows`), the others added."""
    data = page_form(client, variant_url(bundle)).data
    shown = int(data["components-INITIAL_FORMS"])
    for i, (component, quantity) in enumerate(rows):
        data[f"components-{i}-component"] = str(component.pk)
        data[f"components-{i}-quantity"] = str(quantity)
    for i in range(len(rows), shown):
        data[f"components-{i}-DELETE"] = "on"
    data["components-TOTAL_FORMS"] = str(max(shown, len(rows)))
    return client.post(variant_url(bundle), data)


def test_the_variant_page_makes_a_bundle_and_shows_what_it_makes_per_outlet(admin_client, outlets):
    jkt, sby = outlets
    tee = stocked("TEE", (jkt, 9, 1), (sby, 3, 0))
    mug = stocked("MUG", (jkt, 2, 0))
    duo = VariantFactory(sku="TEE-DUO")

    response = post_components(admin_client, duo, (tee, 2), (mug, 1))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert sorted(duo.components.values_list("component__sku", "quantity")) == [
        ("MUG", 1),
        ("TEE", 2),
    ]
    page = admin_client.get(variant_url(duo)).content.decode()
    assert "Available as a bundle" in page
    # jkt: tee 8 // 2 = 4, mug 2 → 2 bundles; sby: no mug → 0
    assert "<tr><td>jkt</td><td><strong>2</strong></td><td>8</td><td>2</td></tr>" in page
    assert "<tr><td>sby</td><td><strong>0</strong></td><td>3</td><td>0</td></tr>" in page


def test_the_variant_page_shows_a_cycle_on_the_components_row(admin_client):
    tee = VariantFactory(sku="TEE")
    duo = kit("TEE-DUO", (tee, 2))
    gift = kit("GIFT", (duo, 1))

    response = post_components(admin_client, duo, (tee, 2), (gift, 1))

    assert response.status_code == 200
    assert "TEE-DUO cannot contain GIFT: TEE-DUO would contain itself" in response.content.decode()
    assert list(duo.components.values_list("component__sku", flat=True)) == ["TEE"]


def test_the_variant_page_refuses_a_variant_with_stock(admin_client, outlets):
    jkt, _ = outlets
    tee = VariantFactory(sku="TEE")
    shelf = stocked("SHELF", (jkt, 2, 0))

    response = post_components(admin_client, shelf, (tee, 1))

    assert response.status_code == 200
    assert "SHELF holds stock (on hand 2, reserved 0 at jkt)" in response.content.decode()
    assert not shelf.components.exists()


def test_the_variants_list_marks_bundles_and_filters_them(
    admin_client, django_assert_max_num_queries
):
    tee = VariantFactory(sku="TEE")
    for n in range(15):
        kit(f"KIT-{n:02d}", (tee, n + 1))
    url = reverse("admin:catalog_variant_changelist")

    with django_assert_max_num_queries(12):
        page = admin_client.get(url).content.decode()
    assert page.count(">Bundle</span>") == 15
    bundles = admin_client.get(url, {"bundle": "yes"}).context["cl"].result_list
    plain = admin_client.get(url, {"bundle": "no"}).context["cl"].result_list
    assert {v.sku for v in bundles} == {f"KIT-{n:02d}" for n in range(15)}
    assert [v.sku for v in plain] == ["TEE"]


def test_deleting_a_component_in_the_admin_names_the_bundles(admin_client, outlets):
    tee = stocked("TEE", (outlets[0], 4, 0))  # with stock and a ledger, which staff cannot delete
    kit("TEE-DUO", (tee, 2))

    for url in (
        reverse("admin:catalog_variant_delete", args=[tee.pk]),
        reverse("admin:catalog_product_delete", args=[tee.product_id]),
    ):
        page = admin_client.get(url).content.decode()
        assert "TEE is a component of the bundle TEE-DUO. Remove it from the bundle first" in page
        admin_client.post(url, {"post": "yes"})
        assert Variant.objects.filter(pk=tee.pk).exists()


def test_the_product_page_refuses_deleting_a_component_and_lists_bundles(admin_client):
    tee = VariantFactory(sku="TEE")
    other = VariantFactory(sku="TEE-L", product=tee.product)
    kit("TEE-DUO", (tee, 2))
    url = reverse("admin:catalog_product_change", args=[tee.product_id])
    form = page_form(admin_client, url)
    row = next(n.split("-")[1] for n, v in form.data.items() if n.endswith("-sku") and v == "TEE")

    response = admin_client.post(url, {**form.data, f"variants-{row}-DELETE": "on"})

    assert response.status_code == 200
    assert "TEE is a component of the bundle TEE-DUO" in response.content.decode()
    assert Variant.objects.filter(pk__in=[tee.pk, other.pk]).count() == 2


def test_the_product_page_shows_what_a_bundle_is_made_of(admin_client):
    tee = VariantFactory(sku="TEE")
    mug = VariantFactory(sku="MUG")
    duo = kit("TEE-DUO", (tee, 2), (mug, 1))
    page = admin_client.get(reverse("admin:catalog_product_change", args=[duo.product_id]))
    assert "2 × TEE, 1 × MUG" in page.content.decode()


def test_adjusting_a_bundles_stock_in_the_admin_says_why_not(admin_client, outlets):
    jkt, _ = outlets
    duo = VariantFactory(sku="TEE-DUO")
    row = Stock.objects.create(variant=duo, outlet=jkt)  # left from before it was a bundle
    kit_of = VariantFactory(sku="TEE")
    bundle_set_components(bundle=duo, components=[(kit_of, 2)])
    url = reverse("admin:catalog_stock_change", args=[row.pk])

    response = admin_client.post(url, {"change_by": "5", "reason": "manual", "note": ""})

    assert response.status_code == 200
    assert "TEE-DUO is a bundle: its stock is its components&#x27;" in response.content.decode()
    row.refresh_from_db()
    assert row.on_hand == 0


# --- the API -------------------------------------------------------------------------------------


@pytest.fixture
def api(db) -> ApiClient:
    from omni.auth import token_create

    return ApiClient(token_create(name="ERP", scopes="read,write")[1])


def test_the_api_replaces_and_shows_a_bundles_components(api, outlets):
    jkt, _ = outlets
    stocked("TEE-BLK-M", (jkt, 9, 0))
    stocked("MUG-RED", (jkt, 4, 0))
    duo = VariantFactory(sku="TEE-DUO")
    url = f"/api/variants/{duo.pk}/components"

    response = api.send(
        "PUT",
        url,
        {"components": [{"sku": " tee-blk-m", "quantity": 2}, {"sku": "MUG-RED", "quantity": 1}]},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["is_bundle"] is True
    assert [(c["sku"], c["quantity"]) for c in body["components"]] == [
        ("TEE-BLK-M", 2),
        ("MUG-RED", 1),
    ]
    assert body["available"] == [
        {"outlet": "jkt", "available": 4},
        {"outlet": "sby", "available": 0},
    ]
    assert api.get(url).json() == body
    listed = api.get("/api/variants", {"sku": "TEE-DUO"}).json()["items"]
    assert listed[0]["is_bundle"] is True
    product = api.get(f"/api/products/{duo.product_id}").json()
    assert [v["is_bundle"] for v in product["variants"]] == [True]


def test_the_api_refuses_bad_components_clearly(api, outlets):
    jkt, _ = outlets
    tee = stocked("TEE", (jkt, 2, 0))
    duo = kit("TEE-DUO", (tee, 2))
    url = f"/api/variants/{duo.pk}/components"

    unknown = api.send(
        "PUT",
        url,
        {
            "components": [
                {"sku": "NOPE", "quantity": 1},
                {"sku": "TEE", "quantity": 1},
                {"sku": "tee", "quantity": 1},
            ]
        },
    )
    assert unknown.status_code == 422
    assert [(e["loc"], e["type"]) for e in unknown.json()["detail"]] == [
        (["body", "components", 0, "sku"], "unknown_sku"),
        (["body", "components", 2, "sku"], "repeated"),
    ]
    assert unknown.json()["detail"][0]["msg"] == "No variant has the SKU 'NOPE'."

    zero = api.send("PUT", url, {"components": [{"sku": "TEE", "quantity": 0}]})
    assert zero.status_code == 422

    gift = kit("GIFT", (duo, 1))
    cycle = api.send("PUT", url, {"components": [{"sku": "GIFT", "quantity": 1}]})
    assert cycle.status_code == 409
    assert "TEE-DUO cannot contain GIFT" in cycle.json()["detail"]

    with_stock = api.send(
        "PUT",
        f"/api/variants/{tee.pk}/components",
        {"components": [{"sku": "GIFT", "quantity": 1}]},
    )
    assert with_stock.status_code == 409
    assert "TEE holds stock (on hand 2, reserved 0 at jkt)" in with_stock.json()["detail"]

    assert api.get("/api/variants/999999/components").status_code == 404
    assert api.send("PUT", "/api/variants/999999/components", {"components": []}).status_code == 404
    assert list(duo.components.values_list("component_id", flat=True)) == [tee.pk]
    assert gift.components.count() == 1


def test_an_empty_list_makes_a_bundle_plain_again(api):
    tee = VariantFactory(sku="TEE")
    duo = kit("TEE-DUO", (tee, 2))
    response = api.send("PUT", f"/api/variants/{duo.pk}/components", {"components": []})
    assert response.status_code == 200
    assert response.json()["is_bundle"] is False
    assert not duo.components.exists()


def test_the_api_refuses_stock_for_a_bundle_and_deleting_a_component(api, outlets):
    tee = VariantFactory(sku="TEE")
    kit("TEE-DUO", (tee, 2))

    single = api.post("/api/stock/adjust", {"sku": "TEE-DUO", "outlet": "jkt", "quantity": 3})
    assert single.status_code == 409
    assert single.json()["detail"] == "TEE-DUO is a bundle: its stock is its components'"

    bulk = api.post(
        "/api/stock/bulk",
        {
            "rows": [
                {"sku": "TEE-DUO", "outlet": "jkt", "quantity": 3},
                {"sku": "TEE", "outlet": "jkt", "quantity": 3},
            ]
        },
    )
    assert bulk.status_code == 200
    assert [(r["ok"], r["error"][:40]) for r in bulk.json()["rows"]] == [
        (False, "TEE-DUO is a bundle: its stock is its co"),
        (True, ""),
    ]

    deleted = api.delete(f"/api/products/{tee.product_id}")
    assert deleted.status_code == 409
    assert "TEE is a component of the bundle TEE-DUO" in deleted.json()["detail"]


def test_the_api_documents_the_components_endpoints():
    from tests.api.schema import openapi

    paths = openapi()["paths"]["/api/variants/{variant_id}/components"]
    assert set(paths) == {"get", "put"}
    assert {"200", "404", "409", "422"} <= set(paths["put"]["responses"])
    assert "is_bundle" in openapi()["components"]["schemas"]["VariantRowOut"]["properties"]


def test_a_sku_is_required_to_name_a_component():
    duo = VariantFactory(sku="TEE-DUO")
    from catalog.bundles import bundle_set_components_by_sku

    with pytest.raises(ValidationError):
        bundle_set_components_by_sku(bundle=duo, components=[("", 1)])


# --- a stock write and a variant becoming a bundle at the same time -------------------------------


def _in_thread(work, started: threading.Event, release: threading.Event, errors: list):
    """Run `work` in a transaction of its own connection, held open until `release`."""

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                started.set()
                release.wait(timeout=10)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
            started.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["stock", "bundle"])
def test_a_stock_write_and_a_new_bundle_at_once_never_leave_a_bundle_with_stock(first):
    outlet = OutletFactory(code="jkt")
    tee, duo = VariantFactory(sku="TEE"), VariantFactory(sku="TEE-DUO")  # no stock row yet

    def write_stock() -> None:
        stock_apply(changes=[StockChange(duo.pk, outlet.pk, set_on_hand=3)], trigger="manual")

    def make_bundle() -> None:
        bundle_set_components(bundle=duo, components=[(tee, 2)])

    works = {"stock": write_stock, "bundle": make_bundle}
    second = "bundle" if first == "stock" else "stock"
    started, release, errors = threading.Event(), threading.Event(), []
    holder = _in_thread(works[first], started, release, errors)
    assert started.wait(timeout=10)
    assert errors == []
    # when: the other one starts while the first is still open; it must wait for it
    late_errors: list[BaseException] = []
    done = threading.Event()
    late = _in_thread(works[second], done, threading.Event(), late_errors)
    assert not done.wait(timeout=1)  # waiting on the first one's rows
    release.set()
    holder.join(timeout=10)
    late.join(timeout=10)

    # then: the second one saw the first and was refused; never both
    [refused] = late_errors
    expected = BundleError if second == "bundle" else StockError
    assert isinstance(refused, expected), refused
    has_stock = Stock.objects.filter(variant=duo).exclude(on_hand=0).exists()
    is_bundle = BundleComponent.objects.filter(bundle=duo).exists()
    assert (has_stock, is_bundle) == ((True, False) if first == "stock" else (False, True))
    assert not Stock.objects.filter(variant=duo, on_hand=0, reserved=0).exists()
