"""What every marketplace checks and reads of an upload (`UploadProduct`) before anything is
sent, written once: so that nothing is created half-way, and staff read the same words for the
same problem whatever the marketplace.

Each check raises AdapterError (code "param" or "category", not retryable) naming the product
and what to fix in the POS; `service` is the marketplace's name in the message. The checks a
marketplace makes, and in which order, stay in its adapter.
"""

from collections.abc import Callable, Hashable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

from channels.adapters.base import AdapterError, UploadProduct, UploadVariant

T = TypeVar("T")


def require_variants(product: UploadProduct, *, service: str) -> None:
    """AdapterError when the product has no variant: there would be nothing to list."""
    if not product.variants:
        raise AdapterError(
            f"{product.name!r} has no variant to list on {service}", retryable=False, code="param"
        )


def require_weight(product: UploadProduct, *, service: str) -> Decimal:
    """The product's weight (kg); AdapterError when it has none, for a marketplace that needs
    one."""
    if product.weight_kg is None or product.weight_kg <= 0:
        raise AdapterError(
            f"{service} needs a weight for {product.name!r}: fill in its weight (kg) in the POS",
            retryable=False,
            code="param",
        )
    return product.weight_kg


def option_names(product: UploadProduct) -> tuple[str, ...]:
    """The product's option names: `option_names`, else the first variant's; () for none."""
    return tuple(product.option_names) or (
        tuple(product.variants[0].options) if product.variants else ()
    )


def check_option_names(
    product: UploadProduct,
    names: Sequence[str],
    *,
    service: str,
    most: int | None = None,
    apart: str = "variants",
) -> None:
    """AdapterError when several variants come without option names to tell them (the
    marketplace's `apart`: variants, SKUs, variations) apart, or with more names than the
    marketplace's `most`."""
    if not names and len(product.variants) > 1:
        raise AdapterError(
            f"{product.name!r} has {len(product.variants)} variants but no option names: "
            f"{service} needs them (e.g. Color, Size) to tell the {apart} apart",
            retryable=False,
            code="param",
        )
    if most is not None and len(names) > most:
        raise AdapterError(
            f"{service} allows {most} option names per product; {product.name!r} has "
            f"{len(names)} ({', '.join(names)})",
            retryable=False,
            code="param",
        )


def option_value(product: UploadProduct, variant: UploadVariant, name: str) -> str:
    """The variant's value of option `name`, trimmed; AdapterError when it has none, as no
    marketplace can list a variant without it."""
    value = str(variant.options.get(name, "")).strip()
    if not value:
        raise AdapterError(
            f"Variant {variant.sku!r} of {product.name!r} has no {name}",
            retryable=False,
            code="param",
        )
    return value


def check_distinct_options(product: UploadProduct, combos: Sequence[Hashable]) -> None:
    """AdapterError when two variants have the same options: `combos` holds each variant's
    option values (or their positions), one per variant, and the marketplace could not tell
    two alike apart."""
    if len(set(combos)) != len(combos):
        raise AdapterError(
            f"Two variants of {product.name!r} have the same options", retryable=False, code="param"
        )


def category_id(category: str, leaves: Callable[[], Mapping[str, T]], *, service: str) -> str | T:
    """A marketplace category id from the POS category: a number is taken as the id itself
    (returned as text); a name must equal a leaf category's name, or the last part of an
    "A > B" path, in `leaves()` ({lower-cased leaf name: id}, asked only for a name).
    AdapterError (code "category") when no leaf has that name."""
    wanted = category.strip()
    if wanted.isdigit():
        return wanted
    names = leaves()
    for candidate in (wanted, wanted.replace("/", ">").split(">")[-1]):
        found = names.get(candidate.strip().lower())
        if found is not None:
            return found
    raise AdapterError(
        f"{service} has no category named {category!r}: name the POS category after a "
        f"{service} category, or put the {service} category id in it",
        retryable=False,
        code="category",
    )
