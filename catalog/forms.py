"""Admin forms of the catalog: a variant's options as name/value fields instead of raw JSON, and
a bundle's components checked by the bundles' own rules."""

from typing import Any, NamedTuple

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from catalog.bundles import MAX_QUANTITY, bundles_check
from catalog.models import BundleComponent, Variant, sku_key
from catalog.services import variant_sku_check

# The API's limits on a variant's options (catalog.schemas.Options).
MAX_OPTIONS = 10
NAME_MAX, VALUE_MAX = 60, 120
# Rows shown for a variant with fewer options: three, as the catalog import and the
# marketplaces (Shopify, BigSeller) take.
SHOWN_OPTIONS = 3


class OptionRow(NamedTuple):
    """One name/value pair as posted; `number` counts from 1, as staff see the rows."""

    number: int
    name: str
    value: str


def _rows_of(value: Any) -> list[tuple[str, str]]:
    """The pairs to draw, by position: from the stored options (a dict, in its key order) or
    from a posted form (OptionRow, blank rows kept so a redrawn row stays where it was typed).

    Stored options that are not a dict (written by hand in a shell) are drawn as values
    without names, so saving asks for the names instead of dropping the values.
    """
    if not value:
        return []
    if isinstance(value, dict):
        return [(str(k), _text(v)) for k, v in value.items()]
    if isinstance(value, list | tuple) and all(isinstance(r, OptionRow) for r in value):
        rows = [("", "")] * max(r.number for r in value)
        for row in value:
            rows[row.number - 1] = (row.name, row.value)
        return rows
    if isinstance(value, list | tuple):
        return [("", _text(v)) for v in value]
    return [("", _text(value))]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class OptionsWidget(forms.Widget):
    """Rows of two text inputs, "Option name" and "Value", posted as `<name>_<i>_name` and
    `<name>_<i>_value`. At least SHOWN_OPTIONS rows, more when the variant has more options.

    Drawn with the project's templates (the form renderer only sees Django's own), and sized
    by `name_attrs` / `value_attrs`; `headings` puts "Option name" / "Value" above the columns
    (for a form with room for them; a table row relies on the placeholders).
    """

    template_name = "admin/catalog/widgets/options.html"

    def __init__(
        self,
        attrs: dict[str, Any] | None = None,
        *,
        name_attrs: dict[str, Any] | None = None,
        value_attrs: dict[str, Any] | None = None,
        headings: bool = False,
    ) -> None:
        super().__init__(attrs)
        self.name_attrs = name_attrs or {}
        self.value_attrs = value_attrs or {}
        self.headings = headings

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        pairs = _rows_of(value)
        pairs += [("", "")] * (SHOWN_OPTIONS - len(pairs))
        base_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        common = {"disabled": "disabled"} if context["widget"]["attrs"].get("disabled") else {}
        context["widget"]["headings"] = self.headings
        context["widget"]["rows"] = [
            {
                "number": i + 1,
                "pair": [
                    self._input(f"{name}_{i}", f"{base_id}_{i}", role, text, common)
                    for role, text in zip(("name", "value"), pair, strict=True)
                ],
            }
            for i, pair in enumerate(pairs)
        ]
        return context

    def _input(
        self, name: str, id_: str, role: str, value: str, common: dict[str, str]
    ) -> dict[str, Any]:
        """One text input, `<name>_name` or `<name>_value`."""
        extra, maxlength = (
            (self.name_attrs, NAME_MAX) if role == "name" else (self.value_attrs, VALUE_MAX)
        )
        attrs = {"id": f"{id_}_{role}", "maxlength": maxlength, **extra, **common}
        return {"name": f"{name}_{role}", "value": value, "role": role, "attrs": attrs}

    def format_value(self, value: Any) -> Any:
        return value  # get_context draws dicts and posted rows alike

    def render(self, name: str, value: Any, attrs=None, renderer=None) -> SafeString:
        html = render_to_string(self.template_name, self.get_context(name, value, attrs))
        return mark_safe(html)  # the template escapes every value

    def value_from_datadict(self, data, files, name: str) -> list[OptionRow]:
        rows = []
        for i in range(MAX_OPTIONS):
            option_name, value = data.get(f"{name}_{i}_name"), data.get(f"{name}_{i}_value")
            if option_name is not None or value is not None:
                rows.append(OptionRow(i + 1, option_name or "", value or ""))
        return rows

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return not self.value_from_datadict(data, files, name)

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_0_name" if id_ else id_


class OptionsField(forms.Field):
    """A variant's options from name/value rows, cleaned to the JSON the model stores:
    {"Color": "Red", "Size": "M"}, in the order of the rows (which PostgreSQL's jsonb does not
    keep: it stores keys in an order of its own, and the rows show them in that order).

    Names and values are trimmed; an empty row is skipped. Refused, each naming its row: a
    value without a name, a name without a value, a name given twice (ignoring letter case,
    as the catalog import compares them), a name or value longer than the API takes.
    """

    widget = OptionsWidget

    def prepare_value(self, value: Any) -> Any:
        return value

    def to_python(self, value: Any) -> dict[str, str]:
        if isinstance(value, dict):  # an initial value, when the field is disabled
            return value
        options: dict[str, str] = {}
        first_row: dict[str, int] = {}  # casefolded name -> the row that gave it first
        errors: list[str] = []
        for row in value or []:
            name, option = row.name.strip(), row.value.strip()
            if not name and not option:
                continue
            problem = _row_problem(row.number, name, option)
            if problem:
                errors.append(problem)
                continue
            seen = first_row.get(name.casefold())
            if seen:
                errors.append(
                    f"Option name “{name}” is given twice (options {seen} and {row.number}): "
                    "each option of a variant needs its own name."
                )
                continue
            first_row[name.casefold()] = row.number
            options[name] = option
        if errors:
            raise ValidationError(errors, code="invalid")
        return options

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            new = self.to_python(data)
        except ValidationError:
            return True
        old = {str(k): _text(v) for k, v in initial.items()} if isinstance(initial, dict) else {}
        return list(old.items()) != list(new.items())


def _row_problem(number: int, name: str, value: str) -> str:
    where = f"Option {number}"
    if not name:
        return f"{where}: the value “{value}” needs a name, such as Color or Size."
    if not value:
        return f"{where}: “{name}” needs a value, such as Red or M (or clear the name)."
    if len(name) > NAME_MAX:
        return f"{where}: the name is too long ({len(name)} characters; at most {NAME_MAX})."
    if len(value) > VALUE_MAX:
        return f"{where}: the value is too long ({len(value)} characters; at most {VALUE_MAX})."
    return ""


# --- variants --------------------------------------------------------------------------------

OPTIONS_HELP = "Name and value of each option, e.g. Color = Red, Size = M."


class VariantInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: dict[str, str] = {}
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            sku = form.cleaned_data.get("sku", "")
            key = sku_key(sku)
            if key in seen:
                raise ValidationError(
                    f"SKUs {seen[key]!r} and {sku!r} are the same once trimmed and ignoring case; "
                    "each variant needs its own SKU."
                )
            seen[key] = sku


class VariantInlineForm(forms.ModelForm):
    """A variant as a row of the product page's table: sized so the table fits the screen
    beside the admin's navigation (1440 px)."""

    options = OptionsField(
        required=False,
        help_text=OPTIONS_HELP,
        widget=OptionsWidget(
            name_attrs={"placeholder": "Option name", "style": "width:7.5em"},
            value_attrs={"placeholder": "Value", "style": "width:7.5em"},
        ),
    )

    class Meta:
        model = Variant
        fields = ["sku", "upc", "options", "retail_price", "is_active", "position"]
        widgets = {
            "sku": forms.TextInput(attrs={"style": "width:11em"}),
            "upc": forms.TextInput(attrs={"style": "width:9.5em"}),
            "retail_price": forms.NumberInput(attrs={"style": "width:7.5em", "step": "0.01"}),
            "position": forms.NumberInput(attrs={"style": "width:3.5em", "min": 0}),
        }

    def clean_sku(self) -> str:
        sku = (self.cleaned_data.get("sku") or "").strip()
        variant_sku_check(sku=sku, exclude_pk=self.instance.pk)
        return sku


class VariantForm(VariantInlineForm):
    """A variant on its own page: room for wider fields and headings over the options."""

    options = OptionsField(
        required=False,
        help_text=OPTIONS_HELP,
        widget=OptionsWidget(
            name_attrs={"placeholder": "e.g. Color", "style": "width:12em"},
            value_attrs={"placeholder": "e.g. Red", "style": "width:16em"},
            headings=True,
        ),
    )

    class Meta(VariantInlineForm.Meta):
        fields = ["product", *VariantInlineForm.Meta.fields]
        widgets = {}


# --- bundles ---------------------------------------------------------------------------------


class BundleComponentForm(forms.ModelForm):
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        initial=1,
        help_text="Units of this component in one bundle.",
        widget=forms.NumberInput(attrs={"style": "width:6em"}),
    )

    class Meta:
        model = BundleComponent
        fields = ["component", "quantity"]


class BundleComponentFormSet(forms.BaseInlineFormSet):
    """A variant's components, checked as a whole by catalog.bundles.bundles_check (no cycle,
    no stock held by the variant, each component once), each problem shown on its row or,
    when it is the variant's, above the table. Saved by VariantAdmin through
    catalog.bundles.bundle_set_components."""

    def components(self) -> list[tuple[Variant, int]]:
        """The (variant, quantity) pairs the rows ask for, in their order (after clean)."""
        return [
            (form.cleaned_data["component"], form.cleaned_data["quantity"]) for form in self._kept()
        ]

    def _kept(self) -> list[forms.Form]:
        return [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and form.cleaned_data.get("component") is not None
            and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None or any(form.errors for form in self.forms):
            return  # a new variant can hold no stock nor be in a bundle: nothing to check yet
        kept = self._kept()
        pairs = [(f.cleaned_data["component"].pk, f.cleaned_data["quantity"]) for f in kept]
        problems = []
        for refusal in bundles_check({self.instance.pk: pairs}):
            if refusal.index is None:
                problems.append(refusal.text)
            else:
                kept[refusal.index].add_error("component", refusal.text)
        if problems:
            raise ValidationError(problems)
