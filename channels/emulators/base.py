"""A small framework for local marketplace HTTP servers on 127.0.0.1.

An emulator subclass keeps its shop state in memory, guarded by `emulator.lock`, and declares
what its marketplace serves. The framework gives it:

- a threaded HTTP/1.1 server (keep-alive, so clients reuse connections as with the real APIs),
  started on a free port (`port=0`) or a given one, with `.base_url`, `.start()`, `.stop()`,
  and use as a context manager;
- a route table: `routes = (Route("GET", "/products/{id:int}", "_get_product"), ...)` on the
  class, compiled once when the class is created (exact paths in a dict, patterns as regexes);
  `handle` finds the route, runs the hooks `authenticate`, `invoke` and `wrap` (or
  `wrap_error` for a `Refusal`), and answers unknown paths and methods through `not_found` and
  `method_not_allowed`. Every hook has a default; a marketplace overrides only what it does
  differently. An emulator may still override `handle` itself and ignore the table;
- a call log: how many calls each path received, and every write (non-GET) call that reached the
  emulator with its parsed body and reply, so tests can say "the channel received this update";
- fault knobs, changeable while it runs: `error_rate` (HTTP 500), `throttle_rate` (HTTP 429 with
  `Retry-After`), `retry_after` and `latency` seconds, and `max_in_flight`, the calls the
  marketplace handles at once: one more is refused unhandled with the throttle answer, as a
  marketplace refuses calls beyond its limit (`in_flight` counts the calls being handled,
  latency included, and `peak_in_flight` the most at one time), and `max_per_second`, the
  calls it handles in any one second, refused the same way beyond them with the wait until
  the oldest of them is a second old (calls refused count toward neither limit, and are
  logged as faults "in_flight" and "rate"). Faults are drawn from a seeded
  random, so a run is repeatable, and are applied before `handle`, so a faulted write changes
  nothing and its retry has exactly one effect; `error_reply` and `throttle_reply` shape those
  answers (`throttled_in_body` for a marketplace that throttles inside an HTTP 200 body too);
- a page fault for the listing list or the order list (`set_page_fault`): one page of the
  product/item list, or of the orders a time range matches, answered empty, short, or not at
  all (the connection dropped), every time or a set number of times; each emulator's list
  endpoints pass their pages through `listing_page` and `order_page`;
- `TokenStore` (access/refresh token pairs: issued, refreshed with single-use refresh tokens,
  expired, revoked, checked) and `IdSequence` (thread-safe id counters), for the subclass to
  hold; `ExpiringTokens`, mixed in where the marketplace's tokens expire, adds
  `expire_access_tokens`;
- `ShopCache` (id lists kept until the shop changes) for the list endpoints, and
  `signed_json_push` for webhooks signed with a hex HMAC in `Authorization`;
- a clock (`emulator.clock`, real time by default) the subclass uses for update times
  (`time_after` keeps an update time moving forward);
- static files (`serve_file`), e.g. product images an adapter downloads, outside the fault path;
- the test helpers every emulator offers (docs/adapters.md), declared here so a new emulator
  is told what to provide: `credentials`, `wrong_credentials`, `put_item`, `touch_item`,
  `remove_item`, `listing_quantities`, `listing_prices`, `update_calls`, `create_order`,
  `move_order`, `signed_webhook`. `listing_quantities` and `listing_prices` are built on one
  hook, `iter_listings`, and `wrong_credentials` on `secret_fields`; the base versions of the
  others and of `iter_listings`, and `wrong_credentials` without `secret_fields`, raise
  NotImplementedError.
"""

import contextlib
import email.parser
import email.policy
import hashlib
import hmac
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from channels.emulators.shop import ShopItem

logger = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Faults:
    """How often the emulator misbehaves, and how slowly it answers."""

    error_rate: float = 0.0  # fraction of calls answered with HTTP 500
    throttle_rate: float = 0.0  # fraction of calls answered as throttled (HTTP 429)
    retry_after: float = 0.05  # seconds sent in Retry-After when throttling
    latency: float = 0.0  # seconds added before every reply
    # Calls handled at once; a call beyond them is answered throttled (0: no limit).
    max_in_flight: int = 0
    # Calls handled in any one second; a call beyond them is answered throttled (0: no limit).
    max_per_second: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.throttle_rate > 1.0:
            raise ValueError("error_rate + throttle_rate cannot exceed 1")
        if self.retry_after < 0 or self.latency < 0:
            raise ValueError("retry_after and latency cannot be negative")
        if self.max_in_flight < 0 or self.max_per_second < 0:
            raise ValueError("max_in_flight and max_per_second cannot be negative (0: no limit)")


# How a marketplace answers a throttled call: HTTP 429 with Retry-After ("http"), an error
# inside an HTTP 200 body ("body"), or either, drawn call by call ("mixed").
ThrottleStyle = Literal["http", "body", "mixed"]
PageFaultKind = Literal["empty", "short", "drop"]
PagedList = Literal["listings", "orders"]


@dataclass(slots=True)
class PageFault:
    """One page of a list misbehaving, as marketplaces sometimes do mid-catalog.

    "empty": the page comes back with no entries; "short": with the first half of them (none
    of a one-entry page). Either way the paging signals (has-next flag, next offset or cursor,
    totals) stay those of the whole page, as when the marketplace loses entries from one
    answer. "drop": the server closes the connection without answering. `times` is how many
    requests for the page misbehave (None: every one, so retries fail too).
    """

    kind: PageFaultKind
    page: int  # 1 for the first page
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("empty", "short", "drop"):
            raise ValueError(f"unknown page fault {self.kind!r}: empty, short or drop")
        if self.page < 1 or (self.times is not None and self.times < 1):
            raise ValueError("page and times start at 1")


class HangUp(Exception):
    """Raised while handling a call to close the connection without answering it."""


@dataclass(frozen=True, slots=True)
class FormField:
    """One part of a multipart/form-data body."""

    name: str
    value: bytes
    filename: str | None = None
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class Request:
    """An incoming call, as the emulator sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON; ValueError if it is not JSON."""
        return json.loads(self.body or b"null")

    def json_object(self, not_json: Exception, not_object: Exception) -> dict[str, Any]:
        """The body as a JSON object. Raises the marketplace's own refusals: `not_json` when
        the body is not JSON (an empty body is JSON null), `not_object` when it is JSON but
        not an object."""
        try:
            body = self.json()
        except ValueError:
            raise not_json from None
        if not isinstance(body, dict):
            raise not_object
        return body

    def form(self) -> dict[str, FormField]:
        """The body's multipart/form-data fields by name; ValueError if it is not multipart."""
        if self.content_type != "multipart/form-data":
            raise ValueError("not a multipart/form-data body")
        header = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + self.body)
        fields: dict[str, FormField] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            fields[name] = FormField(
                name=name,
                value=payload if isinstance(payload, bytes) else b"",
                filename=part.get_filename(),
                content_type=part.get_content_type(),
            )
        return fields

    def parsed_body(self) -> Any:
        """JSON, form fields (files as their size) or raw bytes: what the call log keeps."""
        if not self.body:
            return None
        if self.content_type == "multipart/form-data":
            return {
                name: (f"<{len(part.value)} bytes>" if part.filename else part.value.decode())
                for name, part in self.form().items()
            }
        try:
            return self.json()
        except ValueError:
            return self.body


@dataclass(frozen=True, slots=True)
class Reply:
    """What the emulator answers."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(
        cls, data: Any, *, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
    ) -> "Reply":
        body = json.dumps(data, separators=(",", ":"), default=_json_default).encode()
        return cls(status, body, (("Content-Type", "application/json"), *headers))

    @classmethod
    def text(
        cls, text: str, *, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
    ) -> "Reply":
        return cls(status, text.encode(), (("Content-Type", "text/plain; charset=utf-8"), *headers))

    def parsed(self) -> Any:
        """The body as JSON when it is JSON, else as text."""
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace")


def _json_default(value: Any) -> Any:
    # Decimal prices and the like: JSON numbers, as marketplaces send them.
    return float(value)


@dataclass(frozen=True, slots=True)
class WriteCall:
    """A write call that reached the emulator (faulted calls never do)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    reply: Any
    at: float


@dataclass(slots=True)
class CallLog:
    """Calls received per path (faulted ones included), faults per kind, and writes."""

    counts: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    writes: list[WriteCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts[path]

    def writes_to(self, path: str) -> list[WriteCall]:
        with self._lock:
            return [call for call in self.writes if call.path == path]

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()
            self.faults.clear()
            self.writes.clear()

    def _received(self, path: str) -> None:
        with self._lock:
            self.counts[path] += 1

    def _faulted(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def _wrote(self, call: WriteCall) -> None:
        with self._lock:
            self.writes.append(call)


# -- routes ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint of a marketplace: an HTTP method, a path and the emulator method answering it.

    `path` is literal apart from `{name}` (one path segment, or part of one: any characters
    but "/") and `{name:int}` (digits); their values reach the handler as keyword arguments,
    as strings. `auth` and `envelope` are the marketplace's own words for how the route is
    authenticated ("shop", "public", a permission, ...) and how its answer is wrapped ("flat",
    ...); the base passes the route to `authenticate`, `wrap` and `invoke` and reads neither.
    `locked` runs the handler under `emulator.lock`; False for a handler that takes the lock
    itself around only the part that touches the shop.
    """

    method: str
    path: str
    handler: str  # the name of the emulator method
    auth: str = ""
    envelope: str = ""
    locked: bool = True


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What the route table says about a call's method and path."""

    route: Route | None  # None: the path is served, not with this method
    params: dict[str, str]  # the path parameters
    allowed: tuple[str, ...]  # the methods the path is served with


_PARAMETER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_CONVERTERS = {"": "[^/]+", "int": r"\d+"}


class Router:
    """An emulator class's routes, compiled once.

    Exact paths are one dict lookup; patterns are tried in the order declared, and the first
    whose path matches decides which methods the path has. An exact path wins over a pattern
    that would match it too (`/products/batch` over `/products/{id}`).
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        patterns: dict[str, dict[str, Route]] = {}
        for route in routes:
            if route.method != route.method.upper():
                raise ValueError(f"{route.path}: write the method in capitals, not {route.method}")
            table = patterns if _PARAMETER.search(route.path) else self._exact
            methods = table.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"two routes for {route.method} {route.path}")
            methods[route.method] = route
        self._patterns = [
            (_compile(path), methods, tuple(methods)) for path, methods in patterns.items()
        ]
        self._allowed = {path: tuple(methods) for path, methods in self._exact.items()}

    def __iter__(self) -> Iterator[Route]:
        for methods in self._exact.values():
            yield from methods.values()
        for _, methods, _ in self._patterns:
            yield from methods.values()

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route for `method` and `path`; None when no route has this path."""
        methods = self._exact.get(path)
        if methods is not None:
            return RouteMatch(methods.get(method), {}, self._allowed[path])
        for pattern, methods, allowed in self._patterns:
            found = pattern.fullmatch(path)
            if found is not None:
                return RouteMatch(methods.get(method), found.groupdict(), allowed)
        return None


def _compile(path: str) -> re.Pattern[str]:
    parts, position = [], 0
    for found in _PARAMETER.finditer(path):
        name, converter = found.group(1), found.group(2) or ""
        if converter not in _CONVERTERS:
            raise ValueError(f"{path}: unknown parameter type {converter!r} (known: int)")
        parts.append(re.escape(path[position : found.start()]))
        parts.append(f"(?P<{name}>{_CONVERTERS[converter]})")
        position = found.end()
    parts.append(re.escape(path[position:]))
    return re.compile("".join(parts))


class Refusal(Exception):
    """A call the marketplace refuses, raised from a hook or a handler.

    `handle` catches it and answers with `wrap_error(refusal)`. Each marketplace subclasses it
    with the fields of its own error body (an error code, a request id, ...).
    """

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- tokens and ids --------------------------------------------------------------------------------

TokenKind = Literal["access", "refresh"]
TokenState = Literal["valid", "expired", "unknown"]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str


class TokenStore:
    """Access and refresh tokens as a marketplace's OAuth server keeps them. Thread-safe.

    A first pair is issued at once (`current`). `refresh(token)` trades a valid refresh token
    for a new pair and refuses it from then on (single use); the access token it was issued
    with stays valid until it expires (`old_access_grace` None), or at most `old_access_grace`
    more seconds (0: refused at once). `new_token(kind)` makes a token's text, e.g. from the
    emulator's seeded random: the access token is made before the refresh token, always.
    Expiry times are wall-clock (`clock`, time.time), as the real servers check them, whatever
    clock the emulator keeps for update times. `refresh_ttl` None: refresh tokens never expire.
    """

    def __init__(
        self,
        new_token: Callable[[TokenKind], str],
        *,
        access_ttl: float,
        refresh_ttl: float | None = None,
        old_access_grace: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._new_token = new_token
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.old_access_grace = old_access_grace
        self._clock = clock
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # token -> expiry
        self._refresh: dict[str, float] = {}  # token -> expiry (inf: never)
        self._issued_with: dict[str, str] = {}  # refresh token -> the access token of its pair
        with self._lock:
            self._current = self._issue()

    @property
    def current(self) -> TokenPair:
        """The pair issued last: what `credentials` hands an adapter."""
        with self._lock:
            return self._current

    def issue(self) -> TokenPair:
        """A new pair (as an authorization grant gives), which becomes `current`."""
        with self._lock:
            self._current = self._issue()
            return self._current

    def refresh(self, refresh_token: str) -> TokenPair | None:
        """A new pair for a valid refresh token, which is refused from now on; None when it
        is not valid (`refresh_state` says whether it expired or was never issued)."""
        with self._lock:
            if self._state(self._refresh, refresh_token) != "valid":
                return None
            del self._refresh[refresh_token]
            old = self._issued_with.pop(refresh_token, "")
            if self.old_access_grace is not None and old in self._access:
                grace_until = self._clock() + self.old_access_grace
                self._access[old] = min(self._access[old], grace_until)
            self._current = self._issue()
            return self._current

    def valid(self, access_token: str) -> bool:
        """Whether an access token is issued and not expired."""
        return self.access_state(access_token) == "valid"

    def access_state(self, access_token: str) -> TokenState:
        with self._lock:
            return self._state(self._access, access_token)

    def refresh_state(self, refresh_token: str) -> TokenState:
        with self._lock:
            return self._state(self._refresh, refresh_token)

    def expires_at(self, token: str) -> float | None:
        """When an access or refresh token expires (Unix seconds; inf: never); None if unknown."""
        with self._lock:
            return self._access.get(token, self._refresh.get(token))

    def expire_access(self) -> None:
        """Expire every access token issued so far, as if their lifetime had passed."""
        with self._lock:
            self._access = dict.fromkeys(self._access, 0.0)

    def revoke(self, token: str) -> None:
        """Forget an access or refresh token: from now on it is unknown."""
        with self._lock:
            self._access.pop(token, None)
            self._refresh.pop(token, None)
            self._issued_with.pop(token, None)

    def _issue(self) -> TokenPair:
        now = self._clock()
        pair = TokenPair(self._new_token("access"), self._new_token("refresh"))
        self._access[pair.access] = now + self.access_ttl
        self._refresh[pair.refresh] = (
            math.inf if self.refresh_ttl is None else now + self.refresh_ttl
        )
        self._issued_with[pair.refresh] = pair.access
        return pair

    def _state(self, tokens: dict[str, float], token: str) -> TokenState:
        expires_at = tokens.get(token)
        if expires_at is None:
            return "unknown"
        return "valid" if expires_at > self._clock() else "expired"


class IdSequence:
    """Ids handed out one after another from `first`, as a marketplace's database hands them
    out. Thread-safe, so it may be used outside the emulator's lock."""

    __slots__ = ("_lock", "_next")

    def __init__(self, first: int = 1) -> None:
        self._next = first
        self._lock = threading.Lock()

    def next(self) -> int:
        """The next id; never the same twice."""
        with self._lock:
            value = self._next
            self._next += 1
            return value

    def peek(self) -> int:
        """The id `next()` will hand out, without taking it."""
        with self._lock:
            return self._next


class ExpiringTokens:
    """Mixed in (before `Emulator`) by an emulator whose marketplace's access tokens expire;
    it keeps them in a `TokenStore` as `self.tokens`. An emulator without it has no
    `expire_access_tokens`: its keys never expire."""

    tokens: TokenStore

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far invalid, as if its lifetime (the
        marketplace's ACCESS_TOKEN_TTL) had passed."""
        self.tokens.expire_access()


# -- shop state ------------------------------------------------------------------------------------


class ShopCache(Generic[K, T]):
    """Values worked out from the shop's state, kept until it changes: the list endpoints keep
    their matching ids here, so a scan's pages are slices of one list instead of a pass over
    every item per page.

    `get(key, version, compute)` answers what `compute()` gave for `key` while `version` (a
    counter the emulator bumps on every change that matters) is the one it was computed at.
    Past `limit` keys, every entry is forgotten at once. Guarded by the emulator's lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: dict[K, tuple[int, T]] = {}

    def get(self, key: K, version: int, compute: Callable[[], T]) -> T:
        cached = self._entries.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        value = compute()
        if len(self._entries) > self.limit:
            self._entries.clear()
        self._entries[key] = (version, value)
        return value


class Listing(NamedTuple):
    """One listing as the shared test helpers report it: ids as `RemoteListing` carries them
    (variant "" for an item without variants), its stock as the stock read endpoints show it,
    and its price."""

    item_id: str
    variant_id: str
    quantity: int
    price: Decimal


# -- webhooks and secrets --------------------------------------------------------------------------


def signed_json_push(
    payload: Any, *, secret: str, signed_prefix: bytes
) -> tuple[dict[str, str], bytes]:
    """`(headers, body)` of a push signed the way Shopee, Lazada and TikTok sign theirs: the
    payload as compact JSON, and `Authorization` the hex HMAC-SHA256, keyed with `secret`, of
    `signed_prefix` followed by the body."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), signed_prefix + body, hashlib.sha256).hexdigest()
    return {"Authorization": signature, "Content-Type": "application/json"}, body


def _zeroed(secret: str) -> str:
    # The same shape, not the same secret: the hex digits after any prefix all zeros.
    return re.sub(r"[0-9a-f]+$", lambda found: "0" * len(found.group()), secret)


class Emulator:
    """Base class of every marketplace emulator.

    A subclass declares `routes` and the handlers they name, overrides the hooks its
    marketplace needs (see "routing" below) and provides the test helpers of docs/adapters.md
    (see "what every emulator offers"). A tiny emulator may override `handle` instead.

        class AcmeFault(Refusal): ...  # carries Acme's error code

        class AcmeEmulator(Emulator):
            name = "acme"
            routes = (
                Route("GET", "/v1/items", "_list_items"),
                Route("POST", "/v1/items/{id:int}/stock", "_set_stock"),
                Route("POST", "/v1/token", "_refresh", auth="public"),
            )

            def authenticate(self, request, route):
                if route.auth != "public" and not self.tokens.valid(request.param("token") or ""):
                    raise AcmeFault("invalid token", status=401)
                return None

            def wrap(self, payload, route):
                return Reply.json({"code": 0, "data": payload})

            def _set_stock(self, request, id):  # runs under self.lock
                ...

    Handlers run on server threads; state lives in memory under `self.lock`.
    """

    name: ClassVar[str] = "marketplace"
    routes: ClassVar[Sequence[Route]] = ()
    router: ClassVar[Router] = Router(())
    # The credentials `wrong_credentials` gets wrong: the key, signing secret or token.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.router = Router(cls.routes)
        for route in cls.router:
            if not callable(getattr(cls, route.handler, None)):
                raise TypeError(f"{cls.__name__} has no handler {route.handler} for {route.path}")

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.lock = threading.RLock()  # guards the subclass's shop state
        self.log = CallLog()
        self.clock = clock
        self._faults = faults or Faults()
        self._fault_random = random.Random(seed)
        self._fault_lock = threading.Lock()
        self._page_faults: dict[PagedList, PageFault] = {}
        self._in_flight = 0
        self._peak_in_flight = 0
        self._last_second: deque[float] = deque()  # when the calls of the last second came
        self._files: dict[str, tuple[bytes, str]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} emulator is already running")
        self._server = _Server((self.host, self.requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.name}-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- knobs -----------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, **changes: float) -> None:
        """Change fault knobs while running, e.g. `set_faults(error_rate=0.1, latency=0.02)`."""
        self._faults = replace(self._faults, **changes)

    @property
    def in_flight(self) -> int:
        """Calls being handled right now (waiting out the latency included)."""
        with self._fault_lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most calls handled at one time since the emulator started; calls refused for
        being beyond `max_in_flight` never count."""
        with self._fault_lock:
            return self._peak_in_flight

    def set_page_fault(
        self,
        kind: PageFaultKind | None,
        *,
        page: int = 1,
        times: int | None = None,
        of: PagedList = "listings",
    ) -> None:
        """Make page `page` (1 = first) of the listing list, or of the order list (`of`),
        misbehave (see PageFault), every time it is asked for or only the first `times`
        times; `kind=None` clears it. Faults of the order list are logged as "orders_page_..."."""
        if of not in ("listings", "orders"):
            raise ValueError(f"unknown list {of!r}: listings or orders")
        with self._fault_lock:
            if kind is None:
                self._page_faults.pop(of, None)
            else:
                self._page_faults[of] = PageFault(kind, page, times)

    def listing_page(self, page: int, entries: list[T]) -> list[T]:
        """The entries to answer page `page` of the listing list with, under the page fault.

        For the list endpoints: call it with the whole page once its paging signals are worked
        out. Raises HangUp for a dropped connection.
        """
        return self._faulted_page("listings", page, entries)

    def order_page(self, page: int, entries: list[T]) -> list[T]:
        """`listing_page` for the order list's endpoint."""
        return self._faulted_page("orders", page, entries)

    def _faulted_page(self, of: PagedList, page: int, entries: list[T]) -> list[T]:
        with self._fault_lock:
            fault = self._page_faults.get(of)
            if fault is None or fault.page != page:
                return entries
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    del self._page_faults[of]
        self.log._faulted(f"{'orders_' if of == 'orders' else ''}page_{fault.kind}")
        if fault.kind == "drop":
            raise HangUp(f"page {page} of the {of} dropped")
        if fault.kind == "short":
            return entries[: len(entries) // 2]
        return []

    def serve_file(self, path: str, content: bytes, content_type: str) -> str:
        """Serve `content` at `path` (no faults, not logged); the file's URL."""
        self._files[path] = (content, content_type)
        return self.base_url + path

    def now(self) -> float:
        """The emulator's time, for update times."""
        return self.clock()

    def time_after(self, previous: int) -> int:
        """The emulator's time in whole seconds, strictly later than `previous`: an update
        time moves forward even when the clock has not moved a whole second since."""
        return max(int(self.now()), previous + 1)

    # -- what every emulator offers (docs/adapters.md) --------------------------------------
    # The contract suite (tests/channels/test_contract.py) drives every marketplace through
    # these helpers. Ids are strings, as RemoteListing carries them (str() of what put_item
    # returns); an item without variants has variant id "". Each emulator provides its own,
    # except `listing_quantities` and `listing_prices` (from its `iter_listings`) and
    # `wrong_credentials` (from its `secret_fields`).

    @property
    def credentials(self) -> dict[str, Any]:
        """A dict `build_adapter(kind, credentials=...)` accepts: the current keys and tokens."""
        raise NotImplementedError(f"{type(self).__name__} does not offer credentials")

    def wrong_credentials(self) -> dict[str, Any]:
        """`credentials` with the secret (key, signing secret or token) wrong: each of
        `secret_fields` the same shape, its hex digits after any prefix all zeros."""
        if not self.secret_fields:
            raise NotImplementedError(f"{type(self).__name__} does not offer wrong_credentials")
        credentials = self.credentials
        wrong = {name: _zeroed(str(credentials[name])) for name in self.secret_fields}
        return {**credentials, **wrong}

    def put_item(self, shop_item: ShopItem) -> str | int:
        """Add a generated or hand-made item with its variants; its item id."""
        raise NotImplementedError(f"{type(self).__name__} does not offer put_item")

    def touch_item(self, item_id: str, *, name: str) -> None:
        """Rename an item as the seller would; its update time moves."""
        raise NotImplementedError(f"{type(self).__name__} does not offer touch_item")

    def remove_item(self, item_id: str) -> None:
        """Delete an item as the seller would (the marketplace's own kind of deletion)."""
        raise NotImplementedError(f"{type(self).__name__} does not offer remove_item")

    def iter_listings(self) -> Iterator[Listing]:
        """Every listing not deleted, in the shop's order: the one hook behind
        `listing_quantities` and `listing_prices`. Called under `self.lock`."""
        raise NotImplementedError(f"{type(self).__name__} does not offer iter_listings")

    def listing_quantities(self) -> dict[tuple[str, str], int]:
        """`{(item_id, variant_id): stock}` of every listing not deleted, as the stock read
        endpoints show it."""
        with self.lock:
            return {
                (listing.item_id, listing.variant_id): listing.quantity
                for listing in self.iter_listings()
            }

    def listing_prices(self) -> dict[tuple[str, str], Decimal]:
        """`{(item_id, variant_id): price}` of every listing not deleted."""
        with self.lock:
            return {
                (listing.item_id, listing.variant_id): listing.price
                for listing in self.iter_listings()
            }

    def update_calls(self, what: str) -> int:
        """How many stock (`"stock"`) or price (`"price"`) update calls succeeded."""
        raise NotImplementedError(f"{type(self).__name__} does not offer update_calls")

    def create_order(self, lines: Sequence[tuple[str, str, int]], *, state: str) -> str:
        """An order of `[(item_id, variant_id, qty)]` in the status standing for omni's order
        `state`; its order number. Its units come off the listings' stock as the marketplace
        takes them (docs/adapters.md; `OrderStock` remembers what each order took)."""
        raise NotImplementedError(f"{type(self).__name__} does not offer create_order")

    def move_order(self, order_number: str, state: str) -> None:
        """Move an order to the status standing for `state`; its update time moves.
        Cancelling puts its units back, once."""
        raise NotImplementedError(f"{type(self).__name__} does not offer move_order")

    def signed_webhook(self, order_number: str, url: str) -> tuple[dict[str, str], bytes]:
        """`(headers, body)` of an order-status push for the order as it stands, signed as the
        marketplace signs it, as it would be delivered to `url`."""
        raise NotImplementedError(f"{type(self).__name__} does not offer signed_webhook")

    # -- routing ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer one call that survived fault injection. Runs on a server thread.

        Finds the call's route (`not_found` and `method_not_allowed` answer when there is
        none), lets `authenticate` refuse it, runs its handler through `invoke` and puts a
        payload the handler returns into the marketplace's envelope with `wrap`; a Reply the
        handler returns goes out as it is. A `Refusal` raised by any of these is answered with
        `wrap_error`. One dict lookup for an exact path, one regex per pattern tried otherwise.
        """
        try:
            found = self.router.match(request.method, self.route_path(request))
            if found is None:
                return self.not_found(request)
            route = found.route
            if route is None:
                return self.method_not_allowed(request, found.allowed)
            refused = self.authenticate(request, route)
            if refused is not None:
                return refused
            result = self.invoke(route, request, found.params)
            return result if isinstance(result, Reply) else self.wrap(result, route)
        except Refusal as refusal:
            return self.wrap_error(refusal)

    def route_path(self, request: Request) -> str:
        """The path looked up in the route table; override to drop a prefix the marketplace
        ignores (e.g. Lazada's `/rest`) or a trailing slash."""
        return request.path

    def authenticate(self, request: Request, route: Route) -> Reply | None:
        """Check the call's credentials (signature, token, timestamp, ...) as `route.auth`
        asks, before its handler runs. None lets it through; return a Reply, or raise the
        marketplace's Refusal, to refuse it. The default lets everything through."""
        return None

    def invoke(self, route: Route, request: Request, params: dict[str, str]) -> Any:
        """Run the route's handler: `handler(request, **path_params)`, under `self.lock`
        unless `route.locked` is False. Override to hand handlers what they take instead
        (parsed query or body, ...). Returns a Reply, or a payload for `wrap`."""
        handler = getattr(self, route.handler)
        if not route.locked:
            return handler(request, **params)
        with self.lock:
            return handler(request, **params)

    def wrap(self, payload: Any, route: Route) -> Reply:
        """A handler's payload in the marketplace's success envelope (`route.envelope` may say
        which). The default answers it as JSON, HTTP 200."""
        return Reply.json(payload)

    def wrap_error(self, refusal: Refusal) -> Reply:
        """A refused call in the marketplace's error envelope. The default answers
        `{"error": message}` with the refusal's status."""
        return Reply.json({"error": refusal.message}, status=refusal.status)

    def not_found(self, request: Request) -> Reply:
        """The answer to a path no route has, as the marketplace gives it."""
        return Reply.text("Not Found", status=404)

    def method_not_allowed(self, request: Request, allowed: tuple[str, ...]) -> Reply:
        """The answer to a served path called with another method than `allowed`."""
        return Reply.text(
            "Method Not Allowed", status=405, headers=(("Allow", ", ".join(allowed)),)
        )

    # -- faults ----------------------------------------------------------------------------

    def throttle_reply(self, request: Request, retry_after: float) -> Reply:
        """The answer to a throttled call; marketplaces override it to add their error body."""
        return Reply.text(
            "Too Many Requests", status=429, headers=(("Retry-After", f"{retry_after:g}"),)
        )

    def error_reply(self, request: Request) -> Reply:
        """The answer to a call drawn for a server error."""
        return Reply.text("Internal Server Error", status=500)

    def random_fault(self) -> float:
        """A draw from the seeded fault random, for subclasses that vary their fault replies."""
        with self._fault_lock:
            return self._fault_random.random()

    def throttled_in_body(self, style: ThrottleStyle) -> bool:
        """Whether to answer a throttled call inside an HTTP 200 body rather than with HTTP
        429, as `style` says; "mixed" draws from the seeded fault random (half and half)."""
        return style == "body" or (style == "mixed" and self.random_fault() < 0.5)

    # -- dispatch --------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        """Static file, or fault, or `handle`; logs the call. Called by the server threads."""
        static = self._files.get(request.path)
        if static is not None and request.method == "GET":
            return Reply(200, static[0], (("Content-Type", static[1]),))
        self.log._received(request.path)
        faults = self._faults
        refused, retry_after = self._admitted(faults)
        if refused:
            # Beyond the marketplace's limit: refused without being handled; the refusal still
            # takes the round trip's latency.
            self.log._faulted(refused)
            if faults.latency:
                time.sleep(faults.latency)
            return self.throttle_reply(request, retry_after)
        try:
            return self._handled(request, faults)
        finally:
            with self._fault_lock:
                self._in_flight -= 1

    def _admitted(self, faults: Faults) -> tuple[str, float]:
        """Count the call in, unless `max_in_flight` calls are in flight already or
        `max_per_second` came in the last second: then ("in_flight" or "rate", the Retry-After
        to answer with)."""
        with self._fault_lock:
            if faults.max_in_flight and self._in_flight >= faults.max_in_flight:
                return "in_flight", faults.retry_after
            if faults.max_per_second:
                now = time.monotonic()
                last = self._last_second
                while last and last[0] <= now - 1.0:
                    last.popleft()
                if len(last) >= faults.max_per_second:
                    return "rate", math.ceil((last[0] + 1.0 - now) * 100) / 100
                last.append(now)
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            return "", 0.0

    def _handled(self, request: Request, faults: Faults) -> Reply:
        # The latency is spent inside the count, so calls overlap as on a real server.
        if faults.latency:
            time.sleep(faults.latency)
        fault = self._draw_fault(faults)
        if fault == "error":
            self.log._faulted("error")
            return self.error_reply(request)
        if fault == "throttle":
            self.log._faulted("throttle")
            return self.throttle_reply(request, faults.retry_after)
        reply = self.handle(request)
        if request.method != "GET":
            self.log._wrote(self._write_call(request, reply))
        return reply

    def _draw_fault(self, faults: Faults) -> str | None:
        if not faults.error_rate and not faults.throttle_rate:
            return None
        draw = self.random_fault()
        if draw < faults.error_rate:
            return "error"
        if draw < faults.error_rate + faults.throttle_rate:
            return "throttle"
        return None

    def _write_call(self, request: Request, reply: Reply) -> WriteCall:
        try:
            body = request.parsed_body()
        except ValueError:
            body = request.body
        return WriteCall(
            method=request.method,
            path=request.path,
            query=request.query,
            body=body,
            status=reply.status,
            reply=reply.parsed(),
            at=self.now(),
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs behind their load balancers
    server: "_Server"
    timeout = 30  # an idle kept-alive connection is dropped after this many seconds

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every reply on a kept-alive connection waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.emulator.respond(request)
        except HangUp:
            self.close_connection = True
            return
        except Exception:
            logger.exception(
                "%s emulator failed on %s %s", self.server.emulator.name, self.command, parts.path
            )
            reply = Reply.text("emulator error", status=500)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the call log records traffic; a line per request would drown test output.
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections waiting to be accepted: an adapter opening a dozen at once must not have its
    # connects dropped (and retried a second later) by a backlog of socketserver's default 5.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up kept-alive connections, so a stopped emulator really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
