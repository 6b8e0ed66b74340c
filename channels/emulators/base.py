"""A small framework for local marketplace HTTP servers on 127.0.0.1.

An emulator subclass implements `handle(request) -> Reply` and keeps its shop state in memory,
guarded by `emulator.lock`. The framework gives it:

- a threaded HTTP/1.1 server (keep-alive, so clients reuse connections as with the real APIs),
  started on a free port (`port=0`) or a given one, with `.base_url`, `.start()`, `.stop()`,
  and use as a context manager;
- a call log: how many calls each path received, and every write (non-GET) call that reached the
  emulator with its parsed body and reply, so tests can say "the channel received this update";
- fault knobs, changeable while it runs: `error_rate` (HTTP 500), `throttle_rate` (HTTP 429 with
  `Retry-After`), `retry_after` and `latency` seconds. Faults are drawn from a seeded random, so a
  run is repeatable, and are applied before `handle`, so a faulted write changes nothing and its
  retry has exactly one effect;
- a page fault for the listing list (`set_page_fault`): one page of the product/item list
  answered empty, short, or not at all (the connection dropped), every time or a set number
  of times; each emulator's list endpoint passes its page through `listing_page`;
- a clock (`emulator.clock`, real time by default) the subclass uses for update times;
- static files (`serve_file`), e.g. product images an adapter downloads, outside the fault path.
"""

import abc
import contextlib
import email.parser
import email.policy
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Faults:
    """How often the emulator misbehaves, and how slowly it answers."""

    error_rate: float = 0.0  # fraction of calls answered with HTTP 500
    throttle_rate: float = 0.0  # fraction of calls answered as throttled (HTTP 429)
    retry_after: float = 0.05  # seconds sent in Retry-After when throttling
    latency: float = 0.0  # seconds added before every reply

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.throttle_rate > 1.0:
            raise ValueError("error_rate + throttle_rate cannot exceed 1")
        if self.retry_after < 0 or self.latency < 0:
            raise ValueError("retry_after and latency cannot be negative")


PageFaultKind = Literal["empty", "short", "drop"]


@dataclass(slots=True)
class PageFault:
    """One page of the listing list misbehaving, as marketplaces sometimes do mid-catalog.

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


class Emulator(abc.ABC):
    """Base class of every marketplace emulator. Subclasses implement `handle`."""

    name: ClassVar[str] = "marketplace"

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
        self._page_fault: PageFault | None = None
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

    def set_page_fault(
        self, kind: PageFaultKind | None, *, page: int = 1, times: int | None = None
    ) -> None:
        """Make page `page` (1 = first) of the listing list misbehave (see PageFault), every
        time it is asked for or only the first `times` times; `kind=None` clears it."""
        fault = None if kind is None else PageFault(kind, page, times)
        with self._fault_lock:
            self._page_fault = fault

    def listing_page(self, page: int, entries: list[T]) -> list[T]:
        """The entries to answer page `page` of the listing list with, under the page fault.

        For the list endpoints: call it with the whole page once its paging signals are worked
        out. Raises HangUp for a dropped connection.
        """
        with self._fault_lock:
            fault = self._page_fault
            if fault is None or fault.page != page:
                return entries
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._page_fault = None
        self.log._faulted(f"page_{fault.kind}")
        if fault.kind == "drop":
            raise HangUp(f"page {page} dropped")
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

    # -- for subclasses --------------------------------------------------------------------

    @abc.abstractmethod
    def handle(self, request: Request) -> Reply:
        """Answer one call that survived fault injection. Runs on a server thread."""

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

    # -- dispatch --------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        """Static file, or fault, or `handle`; logs the call. Called by the server threads."""
        static = self._files.get(request.path)
        if static is not None and request.method == "GET":
            return Reply(200, static[0], (("Content-Type", static[1]),))
        self.log._received(request.path)
        faults = self._faults
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
