"""Shopify's Bulk Operations for a full read of the catalog: the operation as polled, and its
JSONL result turned into listings as it streams in.

A bulk query runs on Shopify's side and writes every product and variant to one JSONL file: one
JSON object per line, a nested connection's nodes on lines of their own with `__parentId`
naming their parent. Without grouping (`groupObjects: false`) a parent comes before its
children but not necessarily right before them, so products are assembled here in any order:
a product is complete once as many variant lines as its `variantsCount` have come (a variant
seen before its product waits for it).

Completeness, as the paginated read proves its own (`channels.adapters.paging`): the operation
reports how many objects it wrote (`objectCount`), how many of them products
(`rootObjectCount`) and the file's size; a file that ends with fewer, with a line that is not
a JSON object (cut mid-line), or with variants of a product it never listed is an
IncompleteRead, so a full scan removes nothing on it.

The shop may change while the operation runs (it reads the catalog over minutes): a product
whose variants changed between the two reads ends with more or fewer variant lines than its
count said; it is listed with those it has.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.adapters.base import RemoteListing
from channels.adapters.paging import IncompleteRead, reported_total
from channels.adapters.shopify.orders import tail

SERVICE = "Shopify"
# Operation statuses (BulkOperationStatus): still to wait for, and the end that has a result.
RUNNING = frozenset({"CREATED", "RUNNING"})
COMPLETED = "COMPLETED"

Listings = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], list[RemoteListing]]


class BulkUnavailable(Exception):
    """The bulk read cannot be used this time (refused, failed, canceled, expired, no file,
    too slow), and nothing of it was read: the paginated read takes over. The message says
    why, for the log; it never holds the result URL."""


@dataclass(slots=True)
class BulkStats:
    """What an adapter's full scans did with bulk operations: started, read to the end, and
    fallen back to the paginated query (with the last reason why)."""

    started: int = 0
    read: int = 0
    fallbacks: int = 0
    last_fallback: str = ""


@dataclass(frozen=True, slots=True)
class BulkOperation:
    """A bulk operation as polled (`client.BULK_FIELDS`). Counts are Shopify's UnsignedInt64,
    sent as strings; None when absent."""

    gid: str
    status: str
    error_code: str = ""
    object_count: int | None = None
    root_object_count: int | None = None
    file_size: int | None = None
    url: str = field(default="", repr=False)  # signed: never logged

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> "BulkOperation":
        return cls(
            gid=str(node.get("id") or ""),
            status=str(node.get("status") or ""),
            error_code=str(node.get("errorCode") or ""),
            object_count=reported_total(node.get("objectCount")),
            root_object_count=reported_total(node.get("rootObjectCount")),
            file_size=reported_total(node.get("fileSize")),
            url=str(node.get("url") or ""),
        )

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    def unusable(self) -> str:
        """Why this ended operation has no result to read ("" when it has one)."""
        if self.status == COMPLETED:
            return "" if self.url else "it completed without a result file"
        said = f" ({self.error_code})" if self.error_code else ""
        return f"it ended {self.status or 'without a status'}{said}"


@dataclass(slots=True)
class _Pending:
    node: Mapping[str, Any]
    variants: list[Mapping[str, Any]]
    expected: int | None  # variantsCount; None: not said, complete only at the end


class ProductAssembler:
    """Products with their variants from the lines of a bulk result, in whatever order the
    lines come. `add(line)` returns the products it completed."""

    def __init__(self) -> None:
        self.objects = 0  # lines read
        self.products = 0  # product lines read
        self._pending: dict[str, _Pending] = {}
        self._orphans: dict[str, list[Mapping[str, Any]]] = {}  # parent id -> its variants

    def add(self, line: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], list[Any]]]:
        self.objects += 1
        parent = line.get("__parentId")
        if parent is None:
            return self._product(line)
        pending = self._pending.get(str(parent))
        if pending is None:
            self._orphans.setdefault(str(parent), []).append(line)
            return []
        pending.variants.append(line)
        return self._if_complete(str(parent), pending)

    def rest(self) -> list[tuple[Mapping[str, Any], list[Any]]]:
        """At the end of the file: the products still short of their variant count (their
        variants changed while the operation ran), with what they have."""
        rest = [(p.node, p.variants) for p in self._pending.values()]
        self._pending.clear()
        return rest

    @property
    def orphans(self) -> int:
        """Variant lines whose product has not been read."""
        return sum(len(lines) for lines in self._orphans.values())

    def _product(self, line: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], list[Any]]]:
        self.products += 1
        gid = str(line.get("id") or "")
        count = line.get("variantsCount")
        expected = reported_total(count.get("count")) if isinstance(count, dict) else None
        pending = _Pending(line, self._orphans.pop(gid, []), expected)
        self._pending[gid] = pending
        return self._if_complete(gid, pending)

    def _if_complete(
        self, gid: str, pending: _Pending
    ) -> list[tuple[Mapping[str, Any], list[Any]]]:
        if pending.expected is None or len(pending.variants) < pending.expected:
            return []
        del self._pending[gid]
        return [(pending.node, pending.variants)]


def bulk_listing_pages(
    chunks: Iterable[bytes],
    operation: BulkOperation,
    *,
    listings: Listings,
    skip: frozenset[str] = frozenset(),
    page_products: int = 250,
) -> Iterator[list[RemoteListing]]:
    """The listings of a bulk result, `page_products` products a page, as the file streams in
    (`chunks`: its bytes). Products whose id (the gid's number) is in `skip` were read
    already and are left out. IncompleteRead, after the last page, when the file holds less
    than the operation says it wrote (see the module's docstring)."""
    assembler = ProductAssembler()
    received = _Meter(chunks)
    page: list[RemoteListing] = []
    in_page = 0
    for number, raw in enumerate(_lines(received), start=1):
        for node, variants in assembler.add(_record(raw, number)):
            if tail(node.get("id")) in skip:
                continue
            page.extend(listings(node, variants))
            in_page += 1
            if in_page >= page_products:
                yield page
                page, in_page = [], 0
    _check_whole(assembler, operation, received.bytes)
    for node, variants in assembler.rest():
        if tail(node.get("id")) not in skip:
            page.extend(listings(node, variants))
    if page:
        yield page


class _Meter:
    """The chunks of a file, counting their bytes."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.bytes += len(chunk)
            yield chunk


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The file's lines, without their newlines; blank ones left out. The last line may come
    without a newline (cut off, or written so)."""
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.strip():
                yield line
    if rest.strip():
        yield rest


def _record(raw: bytes, number: int) -> Mapping[str, Any]:
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise IncompleteRead(
            f"{SERVICE}'s bulk result has a line ({number:,}) that is not a JSON object: the "
            "file was cut short or damaged"
        )
    return record


def _check_whole(assembler: ProductAssembler, operation: BulkOperation, received: int) -> None:
    """IncompleteRead when the file holds fewer objects, products or bytes than the operation
    says it wrote, or variants of products it does not list."""
    said = [
        (assembler.objects, operation.object_count, "objects"),
        (assembler.products, operation.root_object_count, "products"),
    ]
    for read, total, noun in said:
        if total is not None and read < total:
            raise IncompleteRead(
                f"{SERVICE}'s bulk result holds {read:,} {noun} of the {total:,} the operation "
                "wrote: the file was cut short"
            )
    if operation.file_size is not None and received < operation.file_size:
        raise IncompleteRead(
            f"{SERVICE}'s bulk result ended after {received:,} of its {operation.file_size:,} bytes"
        )
    if assembler.orphans:
        raise IncompleteRead(
            f"{SERVICE}'s bulk result holds {assembler.orphans:,} variants of products it does "
            "not list: the file is incomplete"
        )
