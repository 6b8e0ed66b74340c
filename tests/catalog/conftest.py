"""Fixtures shared by the catalog tests: CSV text builders and a written CSV file."""

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

CATALOG_HEADER = (
    "handle,name,sku,retail_price,option1_name,option1_value,option2_name,option2_value,brand,"
    "category,active,weight_kg,image_urls"
)


def catalog_csv(*rows: str, header: str = CATALOG_HEADER) -> str:
    """A catalog file: the header line, then the given rows, Unix line endings."""
    return "\n".join([header, *rows]) + "\n"


def tee_rows(handle: str = "linen-tee", sku_prefix: str = "TEE") -> list[str]:
    """Two variants of one product with every product column filled the same way."""
    return [
        f"{handle},Linen Tee,{sku_prefix}-S,49.90,Size,S,Color,Sand,Kestrel,Apparel > Tops,yes,"
        "0.25,https://img.example.com/tee-1.jpg",
        f"{handle},Linen Tee,{sku_prefix}-M,49.90,Size,M,Color,Sand,Kestrel,Apparel > Tops,yes,"
        "0.25,https://img.example.com/tee-1.jpg",
    ]


@pytest.fixture
def as_stream() -> Callable[[str], io.StringIO]:
    """Turn CSV text into the text stream the imports read."""
    return lambda text: io.StringIO(text, newline="")


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str, Sequence[str]], Path]:
    """Write a CSV file (name, lines) under tmp_path and return its path."""

    def write(name: str, lines: Sequence[str]) -> Path:
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
