"""A variant's options in the admin: rows of "Option name" / "Value" instead of raw JSON, on the
variant page and in the product page's table of variants."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils.html import escape

from catalog.models import Variant
from tests.factories import ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


class _FormFields(HTMLParser):
    """What a browser would post from a page's main form: its inputs, selects and textareas."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self.inputs: dict[str, dict[str, str]] = {}  # name -> attributes, for assertions
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        name = attrs.get("name", "")
        if tag == "input" and name and "__prefix__" not in name:
            self.inputs[name] = attrs
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file") or (
                kind == "checkbox" and "checked" not in attrs
            ):
                return
            self.data[name] = attrs.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select" and "__prefix__" not in name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value", "")
        elif tag == "textarea" and "__prefix__" not in name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.removeprefix("\n")


def page_form(client, url: str) -> _FormFields:
    response = client.get(url)
    assert response.status_code == 200
    parser = _FormFields()
    parser.feed(response.content.decode())
    return parser


def row_of(form: _FormFields, option: str, prefix: str = "") -> int:
    """The row showing the option `option` (its order is the database's: PostgreSQL's jsonb keeps
    keys in its own order, not in the order they were written)."""
    rows = [n for n in form.data if n.startswith(f"{prefix}options_") and n.endswith("_name")]
    return next(int(n.split("_")[-2]) for n in rows if form.data[n] == option)


def options_shown(form: _FormFields, prefix: str = "") -> dict[str, str]:
    shown = {}
    for i in range(10):
        name = form.data.get(f"{prefix}options_{i}_name")
        if name:
            shown[name] = form.data[f"{prefix}options_{i}_value"]
    return shown


def variant_url(variant: Variant) -> str:
    return reverse("admin:catalog_variant_change", args=[variant.pk])


def product_url(variant: Variant) -> str:
    return reverse("admin:catalog_product_change", args=[variant.product_id])


@pytest.fixture
def variant():
    return VariantFactory(sku="TEE-BLA-M", options={"Color": "Black", "Size": "M"})


# --- showing ---------------------------------------------------------------------------------


def test_the_variant_page_shows_each_option_in_a_name_and_a_value_field(admin_client, variant):
    form = page_form(admin_client, variant_url(variant))
    # then: one row per option, and an empty row to make three; no JSON box
    assert options_shown(form) == {"Color": "Black", "Size": "M"}
    assert (form.data["options_2_name"], form.data["options_2_value"]) == ("", "")
    assert form.inputs["options_2_name"]["placeholder"]
    assert "options" not in form.data


def test_the_product_page_shows_each_variants_options_in_fields(admin_client, variant):
    VariantFactory(product=variant.product, sku="TEE-RED-L", options={"Color": "Red", "Size": "L"})
    form = page_form(admin_client, product_url(variant))
    shown = {
        form.data[f"variants-{row}-sku"]: options_shown(form, f"variants-{row}-")
        for row in range(2)
    }
    assert shown == {
        "TEE-BLA-M": {"Color": "Black", "Size": "M"},
        "TEE-RED-L": {"Color": "Red", "Size": "L"},
    }


def test_a_variant_with_more_than_three_options_shows_them_all(admin_client):
    options = {"Color": "Black", "Size": "M", "Fit": "Slim", "Sleeve": "Long"}
    variant = VariantFactory(options=options)
    form = page_form(admin_client, variant_url(variant))
    assert options_shown(form) == options
    assert "options_4_name" not in form.data


# --- saving ----------------------------------------------------------------------------------


def test_options_typed_on_the_variant_page_are_saved_as_json(admin_client, variant):
    form = page_form(admin_client, variant_url(variant))
    # when: staff change a value, add an option, and leave spaces around a name
    data = {
        **form.data,
        f"options_{row_of(form, 'Size')}_value": "L",
        "options_2_name": " Material ",
        "options_2_value": "Cotton",
    }
    response = admin_client.post(variant_url(variant), data)
    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    variant.refresh_from_db()
    assert variant.options == {"Color": "Black", "Size": "L", "Material": "Cotton"}


def test_clearing_a_row_removes_that_option(admin_client, variant):
    form = page_form(admin_client, variant_url(variant))
    color = row_of(form, "Color")
    data = {**form.data, f"options_{color}_name": "", f"options_{color}_value": ""}
    assert admin_client.post(variant_url(variant), data).status_code == 302
    variant.refresh_from_db()
    assert variant.options == {"Size": "M"}


def test_options_typed_in_the_product_pages_table_are_saved_as_json(admin_client, variant):
    form = page_form(admin_client, product_url(variant))
    data = {
        **form.data,
        f"variants-0-options_{row_of(form, 'Size', 'variants-0-')}_value": "XL",
        "variants-0-options_2_name": "Fit",
        "variants-0-options_2_value": "Slim",
    }
    response = admin_client.post(product_url(variant), data)
    assert response.status_code == 302
    variant.refresh_from_db()
    assert variant.options == {"Color": "Black", "Size": "XL", "Fit": "Slim"}


def test_a_variant_added_on_the_product_page_gets_its_options(admin_client):
    product = ProductFactory()
    url = reverse("admin:catalog_product_change", args=[product.pk])
    form = page_form(admin_client, url)
    # when: the one empty row of a product without variants is filled in
    data = {
        **form.data,
        "variants-0-sku": "CAP-NAV",
        "variants-0-retail_price": "19.00",
        "variants-0-options_0_name": "Color",
        "variants-0-options_0_value": "Navy",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert Variant.objects.get(sku="CAP-NAV").options == {"Color": "Navy"}


def test_a_variant_without_options_saves_an_empty_object(admin_client):
    variant = VariantFactory(options={})
    form = page_form(admin_client, variant_url(variant))
    assert admin_client.post(variant_url(variant), form.data).status_code == 302
    variant.refresh_from_db()
    assert variant.options == {}


# --- refusing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            lambda size: {f"options_{size}_name": ""},
            "Option {size_number}: the value “M” needs a name, such as Color or Size.",
        ),
        (
            lambda size: {"options_2_name": "size", "options_2_value": "L"},
            "Option name “size” is given twice (options {size_number} and 3): each option of a "
            "variant needs its own name.",
        ),
        (
            lambda size: {"options_2_name": "Material"},
            "Option 3: “Material” needs a value, such as Red or M (or clear the name).",
        ),
        (
            lambda size: {"options_2_name": "N" * 61, "options_2_value": "x"},
            "Option 3: the name is too long (61 characters; at most 60).",
        ),
    ],
)
def test_a_bad_row_is_refused_naming_the_option_and_nothing_changes(
    admin_client, variant, typed, message
):
    form = page_form(admin_client, variant_url(variant))
    size = row_of(form, "Size")
    rows = typed(size)
    message = message.format(size_number=size + 1)
    # when
    response = admin_client.post(variant_url(variant), {**form.data, **rows})
    # then: the page comes back with the error on the options, and what was typed is kept
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["options"] == [message]
    assert escape(message) in response.content.decode()
    redrawn = _FormFields()
    redrawn.feed(response.content.decode())
    for name, value in rows.items():
        assert redrawn.data[name] == value
    variant.refresh_from_db()
    assert variant.options == {"Color": "Black", "Size": "M"}


def test_a_bad_row_in_the_product_pages_table_is_refused_on_that_variant(admin_client, variant):
    form = page_form(admin_client, product_url(variant))
    size = row_of(form, "Size", "variants-0-")
    data = {**form.data, "variants-0-options_2_name": "SIZE", "variants-0-options_2_value": "L"}
    # when
    response = admin_client.post(product_url(variant), data)
    # then
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert errors["options"] == [
        f"Option name “SIZE” is given twice (options {size + 1} and 3): "
        "each option of a variant needs its own name."
    ]
    variant.refresh_from_db()
    assert variant.options == {"Color": "Black", "Size": "M"}


def test_saving_a_page_without_touching_the_options_keeps_them(admin_client, variant):
    form = page_form(admin_client, product_url(variant))
    data = {**form.data, "name": "Renamed Tee"}
    assert admin_client.post(product_url(variant), data).status_code == 302
    variant.refresh_from_db()
    assert variant.options == {"Color": "Black", "Size": "M"}
    assert variant.product.name == "Renamed Tee"
