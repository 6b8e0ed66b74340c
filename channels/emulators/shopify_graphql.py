"""The GraphQL subset the Shopify emulator speaks, and what Shopify charges for it.

- `parse(source)`: one operation (query or mutation) of a document: fields, aliases, arguments,
  variables, inline fragments, directives; no named fragments. `check_variables` says every
  variable used is declared and every required one given; `resolve` fills them in.
- `select(obj, selection, variables)`: executes a selection against plain dicts whose lazy
  fields are callables `(args, directives) -> value`; the reply holds exactly the fields asked
  for, and a field the object does not have is an error, as an unknown field is on Shopify.
- `query_cost`: Shopify's calculated query cost: scalars and enums 0, objects 1, connections
  2 + first × the node's cost, `nodes(ids:)` one node per id, mutations 10; requested (from
  the arguments) or actual (from what came back). Over MAX_QUERY_COST a query is refused.
- `CostBucket`: the leaky bucket that charges it, and the `extensions.cost` figures every
  reply carries.
- `bulk_plan`: the connections of a bulk query (`bulkOperationRunQuery`), refused as Shopify
  refuses them (no connection, more than one top-level field, more than five connections,
  nested deeper than two); each connection's own fields and the connections inside it, as
  the JSONL result lays them out.

Every failure is a `GraphQLError`, one entry of a reply's top-level `errors`. Nothing here
knows Shopify's schema: the emulator (`channels.emulators.shopify`) supplies the objects.
"""

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_QUERY_COST = 1000
MUTATION_COST = 10


# -- a GraphQL subset: parsing ---------------------------------------------------------------------


class GraphQLError(Exception):
    """One entry of a reply's top-level `errors`."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def as_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.code:
            error["extensions"] = {"code": self.code}
        return error


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(slots=True)
class Field:
    name: str
    alias: str | None
    args: dict[str, Any]
    directives: dict[str, dict[str, Any]]
    selection: list["Field | InlineFragment"] | None

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(slots=True)
class InlineFragment:
    type_name: str
    selection: list["Field | InlineFragment"]


@dataclass(slots=True)
class Operation:
    kind: str  # "query" | "mutation"
    name: str
    variables: dict[str, bool]  # declared variable -> non-null
    selection: list[Field | InlineFragment]


_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$():=@\[\]{}])
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)


def parse(source: str) -> Operation:
    """One operation (query or mutation) of a GraphQL document; GraphQLError on bad syntax."""
    return _Parser(source).operation()


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(source):
            match = _TOKEN.match(source, position)
            if match is None:
                raise GraphQLError(f'Parse error on "{source[position]}" at {position}')
            if match.lastgroup != "skip":
                self.tokens.append((str(match.lastgroup), match.group()))
            position = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None, *, kind: str | None = None) -> str:
        token_kind, text = self.peek()
        if (value is not None and text != value) or (kind is not None and token_kind != kind):
            wanted = value or kind
            raise GraphQLError(f'Parse error on "{text or "end of document"}", expected {wanted}')
        self.index += 1
        return text

    def at(self, value: str) -> bool:
        return self.peek()[1] == value and self.peek()[0] != "string"

    def operation(self) -> Operation:
        kind, name, variables = "query", "", {}
        if not self.at("{"):
            kind = self.take(kind="name")
            if kind not in ("query", "mutation"):
                raise GraphQLError(f'Parse error on "{kind}": only queries and mutations')
            if self.peek()[0] == "name":
                name = self.take()
            if self.at("("):
                variables = self.variable_definitions()
            self.directives()
        selection = self.selection_set()
        if self.peek()[0] != "eof":
            raise GraphQLError("Parse error: one operation per document, no fragment definitions")
        return Operation(kind, name, variables, selection)

    def variable_definitions(self) -> dict[str, bool]:
        definitions: dict[str, bool] = {}
        self.take("(")
        while not self.at(")"):
            self.take("$")
            name = self.take(kind="name")
            self.take(":")
            definitions[name] = self.type_reference()
            if self.at("="):
                self.take("=")
                self.value()
        self.take(")")
        return definitions

    def type_reference(self) -> bool:
        if self.at("["):
            self.take("[")
            self.type_reference()
            self.take("]")
        else:
            self.take(kind="name")
        if self.at("!"):
            self.take("!")
            return True
        return False

    def selection_set(self) -> list[Field | InlineFragment]:
        self.take("{")
        items: list[Field | InlineFragment] = []
        while not self.at("}"):
            items.append(self.selection())
        self.take("}")
        if not items:
            raise GraphQLError("Parse error: empty selection")
        return items

    def selection(self) -> Field | InlineFragment:
        if self.peek()[0] == "spread":
            self.take()
            if self.peek()[1] != "on":
                raise GraphQLError("Parse error: named fragments are not supported here")
            self.take("on")
            type_name = self.take(kind="name")
            self.directives()
            return InlineFragment(type_name, self.selection_set())
        name, alias = self.take(kind="name"), None
        if self.at(":"):
            self.take(":")
            alias, name = name, self.take(kind="name")
        args = self.arguments() if self.at("(") else {}
        directives = self.directives()
        selection = self.selection_set() if self.at("{") else None
        return Field(name, alias, args, directives, selection)

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        self.take("(")
        while not self.at(")"):
            name = self.take(kind="name")
            self.take(":")
            args[name] = self.value()
        self.take(")")
        return args

    def directives(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        while self.at("@"):
            self.take("@")
            name = self.take(kind="name")
            found[name] = self.arguments() if self.at("(") else {}
        return found

    def value(self) -> Any:
        kind, text = self.peek()
        if kind == "punct" and text == "$":
            self.take()
            return Var(self.take(kind="name"))
        if kind == "number":
            self.take()
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "string":
            self.take()
            return json.loads(text)
        if text == "[":
            self.take()
            items = []
            while not self.at("]"):
                items.append(self.value())
            self.take("]")
            return items
        if text == "{":
            self.take()
            fields = {}
            while not self.at("}"):
                key = self.take(kind="name")
                self.take(":")
                fields[key] = self.value()
            self.take("}")
            return fields
        if kind == "name":
            self.take()
            return {"true": True, "false": False, "null": None}.get(text, text)
        raise GraphQLError(f'Parse error on "{text or "end of document"}"')


def resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    """An argument value with its variables filled in."""
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, list):
        return [resolve(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, variables) for key, item in value.items()}
    return value


def check_variables(operation: Operation, variables: Mapping[str, Any]) -> None:
    """Every variable used is declared, and every required one is given."""
    for name in sorted(_used_variables(operation.selection)):
        if name not in operation.variables:
            raise GraphQLError(
                f"Variable ${name} is used by {operation.name or 'anonymous'} but not declared",
                code="variableNotDefined",
            )
    for name, required in operation.variables.items():
        if required and variables.get(name) is None:
            raise GraphQLError(
                f"Variable ${name} of a non-null type was provided invalid value (Expected value "
                "to not be null)",
                code="INVALID_VARIABLE",
            )


def _used_variables(selection: Iterable[Field | InlineFragment]) -> set[str]:
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, Var):
            found.add(value.name)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    for item in selection:
        if isinstance(item, Field):
            collect(item.args)
            collect(item.directives)
        if item.selection:
            found |= _used_variables(item.selection)
    return found


# -- a GraphQL subset: cost ------------------------------------------------------------------------


def query_cost(operation: Operation, variables: Mapping[str, Any], data: Any = None) -> int:
    """Requested cost (`data` None: from `first` and `ids`), or actual cost of `data` (from
    what came back). Scalars 0, objects 1, connections 2 + nodes × node cost, mutations 10."""
    if operation.kind == "mutation":
        return MUTATION_COST
    return _cost(operation.selection, variables, data, requested=data is None)


def _cost(
    selection: list[Field | InlineFragment],
    variables: Mapping[str, Any],
    data: Any,
    *,
    requested: bool,
) -> int:
    total, fragments = 0, [0]
    for item in selection:
        if isinstance(item, InlineFragment):
            fragments.append(_cost(item.selection, variables, data, requested=requested))
            continue
        if item.selection is None:
            continue
        value = None if requested else (data or {}).get(item.key)
        if not requested and value is None:
            continue
        args = resolve(item.args, variables)
        count = args.get("first", args.get("last"))
        ids = args.get("ids") if isinstance(args.get("ids"), list) else None
        node_selection = _node_selection(item.selection)
        if node_selection is not None:  # a connection
            if requested:
                per_node = 1 + _cost(node_selection, variables, None, requested=True)
                total += 2 + int(count or 0) * per_node
            else:
                nodes = value.get("nodes") or [e.get("node") for e in value.get("edges") or []]
                total += 2 + sum(
                    1 + _cost(node_selection, variables, n, requested=False) for n in nodes if n
                )
        elif requested:
            many = len(ids) if ids is not None else (int(count) if count is not None else 1)
            total += many * (1 + _cost(item.selection, variables, None, requested=True))
        else:
            values = value if isinstance(value, list) else [value]
            total += sum(
                1 + _cost(item.selection, variables, v, requested=False) for v in values if v
            )
    return total + max(fragments)


def _node_selection(
    selection: list[Field | InlineFragment],
) -> list[Field | InlineFragment] | None:
    """The node selection of a connection field (`nodes {…}` or `edges { node {…} }`)."""
    for item in selection:
        if isinstance(item, Field) and item.name == "nodes" and item.selection:
            return item.selection
        if isinstance(item, Field) and item.name == "edges" and item.selection:
            for inner in item.selection:
                if isinstance(inner, Field) and inner.name == "node" and inner.selection:
                    return inner.selection
    return None


# -- a GraphQL subset: bulk queries ----------------------------------------------------------------

MAX_BULK_CONNECTIONS = 5
MAX_BULK_DEPTH = 2


@dataclass(slots=True)
class BulkConnection:
    """One connection of a bulk query. `fields` is what each of its nodes shows on its own JSONL
    line (nested connections taken out: their nodes get lines of their own, with
    `__parentId`); `nested` are the connections inside it."""

    field: Field
    fields: list[Field | InlineFragment]
    nested: list["BulkConnection"]


def bulk_plan(operation: Operation) -> BulkConnection:
    """The connections of a bulk query, as Shopify checks them: a query (not a mutation) of
    one top-level connection field, at most five connections, nested at most two deep.
    GraphQLError (its message for the mutation's `userErrors`) otherwise."""
    if operation.kind != "query":
        raise GraphQLError("Bulk queries cannot contain mutations.")
    fields = [item for item in operation.selection if isinstance(item, Field)]
    if len(fields) != 1 or len(operation.selection) != 1:
        raise GraphQLError("Bulk queries must contain exactly one top-level field.")
    root = _bulk_connection(fields[0], depth=1)
    if root is None:
        raise GraphQLError("Bulk queries must contain at least one connection.")
    if _count_connections(root) > MAX_BULK_CONNECTIONS:
        raise GraphQLError(
            f"Bulk queries cannot contain more than {MAX_BULK_CONNECTIONS} connections."
        )
    return root


def _bulk_connection(item: Field, *, depth: int) -> BulkConnection | None:
    node_selection = _node_selection(item.selection or [])
    if node_selection is None:
        return None
    if depth > MAX_BULK_DEPTH:
        raise GraphQLError(
            f"Bulk queries cannot contain connections with a nesting depth greater than "
            f"{MAX_BULK_DEPTH}."
        )
    own: list[Field | InlineFragment] = []
    nested: list[BulkConnection] = []
    for child in node_selection:
        inner = _bulk_connection(child, depth=depth + 1) if isinstance(child, Field) else None
        if inner is None:
            own.append(child)
        else:
            nested.append(inner)
    return BulkConnection(item, own, nested)


def _count_connections(connection: BulkConnection) -> int:
    return 1 + sum(_count_connections(inner) for inner in connection.nested)


# -- a GraphQL subset: execution -------------------------------------------------------------------


def select(
    obj: Mapping[str, Any],
    selection: list[Field | InlineFragment],
    variables: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields of `obj` that `selection` asks for; lazy fields (callables) are called
    with their arguments and directives."""
    out: dict[str, Any] = {}
    for item in selection:
        if isinstance(item, InlineFragment):
            if obj.get("__typename") == item.type_name:
                out.update(select(obj, item.selection, variables))
            continue
        if item.name == "__typename":
            out[item.key] = obj.get("__typename")
            continue
        if item.name not in obj:
            raise GraphQLError(
                f"Field '{item.name}' doesn't exist on type '{obj.get('__typename')}'",
                code="undefinedField",
            )
        value = obj[item.name]
        if callable(value):
            value = value(resolve(item.args, variables), resolve(item.directives, variables))
        out[item.key] = _complete(value, item, variables)
    return out


def _complete(value: Any, item: Field, variables: Mapping[str, Any]) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_complete(v, item, variables) for v in value]
    if item.selection is None:
        if isinstance(value, dict):
            raise GraphQLError(
                f"Field must have selections (field '{item.name}' returns "
                f"{value.get('__typename')} but has no selections)",
                code="selectionMismatch",
            )
        return value
    if not isinstance(value, dict):
        raise GraphQLError(
            f"Selections can't be made on scalars (field '{item.name}')",
            code="selectionMismatch",
        )
    return select(value, item.selection, variables)


# -- the leaky bucket ------------------------------------------------------------------------------


class CostBucket:
    """Shopify's leaky bucket: `size` points, refilled at `restore_rate` points per second.

    A query is charged its requested cost up front (`charge`) and refunded down to its actual
    cost afterwards (`refund`). Not thread-safe: the emulator calls it under its lock.
    """

    def __init__(self, size: float, restore_rate: float) -> None:
        self.size = float(size)
        self.restore_rate = float(restore_rate)
        self.level = self.size
        self._at = time.monotonic()

    def charge(self, points: int) -> bool:
        """Take `points` from the refilled bucket; False (nothing taken) when it holds fewer."""
        self._refill()
        if points > self.level:
            return False
        self.level -= points
        return True

    def refund(self, points: float) -> None:
        """Give back `points` (negative: take more), never above the bucket's size."""
        self.level = min(self.size, self.level + points)

    def spend(self, points: float) -> None:
        """Another caller of the same app and shop takes `points`, down to empty."""
        self._refill()
        self.level = max(0.0, self.level - points)

    def extension(
        self, requested: int, actual: int | None, *, available: float | None = None
    ) -> dict[str, Any]:
        """A reply's `extensions.cost`; `available` overrides what the bucket holds."""
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.size,
                "currentlyAvailable": int(self.level if available is None else available),
                "restoreRate": self.restore_rate,
            },
        }

    def _refill(self) -> None:
        now = time.monotonic()
        elapsed, self._at = now - self._at, now
        self.level = min(self.size, self.level + elapsed * self.restore_rate)
