"""Domain errors raised by catalog services. Interfaces map them to messages and HTTP codes."""


class CatalogError(Exception):
    """Base class: the request was understood but the catalog refuses it."""


class StockError(CatalogError):
    """One or more stock changes would break a rule; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        )


class UnknownSku(CatalogError):
    def __init__(self, sku: str) -> None:
        self.sku = sku
        super().__init__(f"No variant has the SKU {sku!r}.")


class UnknownOutlet(CatalogError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"No outlet has the code {code!r}.")
