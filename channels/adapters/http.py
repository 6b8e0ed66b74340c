"""The one place omni builds a `requests.Session`, and the retry loop every adapter shares.

Contract:
- Every request has a (connect, read) timeout; the session refuses to send without one.
- Every request says `User-Agent: omni/1`.
- `HttpCaller.send` takes a callable that builds the request afresh for each attempt, so
  signatures that include a timestamp (Shopee, TikTok, Lazada) are recomputed on every retry.
- HTTP 429, HTTP 5xx and connection failures are retried with exponential back-off and jitter,
  honouring `Retry-After` (seconds, fractions allowed), for a bounded number of attempts. An
  adapter can add its own "throttled" signals found inside a 200 body through `classify`.
- Every attempt waits for a place in the adapter's `Gate`: at most its window of calls are in
  flight at once, the window never above the marketplace's limit; a throttled answer halves
  the window, successes grow it back one at a time (additive increase, multiplicative
  decrease). The place is held only while the request is on the wire, never during back-off;
  but a throttled answer pauses every call of the adapter for as long as it backs off.
- Calls (every attempt), retries (attempts after the first) and seconds (time in HTTP calls
  plus back-off sleeps) are added to a `CallStats` under a lock, so one adapter may call from
  several threads; seconds from parallel threads add up, so they may exceed wall time.

Nothing here ever puts a URL in a message or a log line: marketplace URLs carry tokens and
signatures in their query string.
"""

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from channels.adapters.base import AdapterError, CallStats

logger = logging.getLogger(__name__)

USER_AGENT = "omni/1"
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # connect, read (seconds)
# Pooled connections when nobody says otherwise; an adapter asks for one per call it may have
# in flight (`build_session(pool_size=...)`), so no connection is opened and thrown away.
POOL_SIZE = 16


class TimeoutSession(requests.Session):
    """A session that cannot send without a timeout: a missing one gets `DEFAULT_TIMEOUT`.

    What the environment says of a host (proxies, no_proxy, a CA bundle) is read at its first
    call and kept: requests would read it again on every call, a third of a push's own time.
    """

    def __init__(self, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._environment: dict[Any, dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[override]
        key = (urlsplit(url)[:2], tuple(sorted((proxies or {}).items())), stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def request(self, method: str | bytes, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, **kwargs)


def build_session(
    *, timeout: tuple[float, float] = DEFAULT_TIMEOUT, pool_size: int = POOL_SIZE
) -> requests.Session:
    """A new session with omni's User-Agent, a mandatory timeout and a pool of `pool_size`
    connections per host, for as many threads.

    urllib3's own retries stay off: retrying is `HttpCaller`'s job, where it can re-sign.
    """
    session = TimeoutSession(timeout=timeout)
    session.headers["User-Agent"] = USER_AGENT
    pooled = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
    session.mount("https://", pooled)
    session.mount("http://", pooled)
    return session


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One attempt at a call, as built (and signed) just before it is sent."""

    method: str
    url: str
    params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None

    @property
    def label(self) -> str:
        """`METHOD /path` with no host and no query: safe to log and to show to staff."""
        return f"{self.method} {urlsplit(self.url).path}"


@dataclass(frozen=True, slots=True)
class RetryAdvice:
    """Why a reply may be retried.

    `unprocessed` means the server certainly did not act on the request (it was throttled,
    or refused before the application ran), so even a call that is not idempotent may be sent
    again. `throttled` means the marketplace said "too many calls" (HTTP 429 or its own
    throttle code): the adapter's `Gate` then halves its window.
    """

    reason: str
    retry_after: float | None = None
    unprocessed: bool = False
    throttled: bool = False


Classifier = Callable[[requests.Response], RetryAdvice | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `attempts` in all (first try included), sleeps capped at `max_delay`.

    A server asking for a longer wait than `longest_wait` (its Retry-After, or what its reply
    otherwise says) ends the retries at once: sent sooner, the call would only be refused again,
    a call spent against the app's quota. Tests shrink `max_delay` to keep sleeps short; the
    waits a marketplace asks for still decide against `longest_wait`.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    longest_wait: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.longest_wait) < 0:
            raise ValueError("RetryPolicy delays cannot be negative")

    def delay(self, attempt: int, advice_after: float | None, rng: random.Random) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based).

        A server's `Retry-After` wins over our own schedule; either way the sleep is capped.
        Our schedule is exponential with "equal jitter" (half fixed, half random), so clients
        that failed together do not come back together and never retry instantly.
        """
        if advice_after is not None:
            return min(max(advice_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + rng.random() * ceiling / 2


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header: a number (fractions allowed) or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def default_classifier(response: requests.Response) -> RetryAdvice | None:
    """HTTP 429 (throttled, so unprocessed) and 5xx (may have been processed) are retryable."""
    status = response.status_code
    if status == 429:
        after = parse_retry_after(response.headers.get("Retry-After"))
        return RetryAdvice("HTTP 429", retry_after=after, unprocessed=True, throttled=True)
    if status >= 500:
        return RetryAdvice(
            f"HTTP {status}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    return None


class Gate:
    """How many calls one adapter may have in flight: at most `window`, never above `limit`
    (the marketplace's limit). Thread-safe: every thread of the adapter waits here.

    Additive increase, multiplicative decrease, as TCP shares a link: a throttled answer
    halves the window (at least 1), and every `window` successes in a row grow it by one, up to
    `limit`. A burst of calls sent before the window was halved are answered "throttled"
    together; they halve it once, not once each (`Ticket.era` says which window a call was
    sent under). The window starts at the limit: the limit is what the marketplace allows,
    and the decrease is for a marketplace that allows less than it says (or than it was told).
    `peak` is the most calls ever in flight at once and `narrowest` the smallest window, for
    tests and benchmarks.

    A throttled answer also pauses the whole adapter: no call starts before the wait it came
    with has passed (`pause`). "Too many calls" is said of the app or the shop, not of one
    call: a marketplace limiting calls per second refuses every call until its second is out
    (Lazada's 901 says "retry next second"; Shopify's bucket refills at its restore rate), so
    the other threads' calls would be refused too, each a wasted call that counts against the
    app (Lazada bans an app that keeps calling, AppApiCallLimit).

    With `per_second` (the app's quota of calls a second, where the shop knows it), calls
    also start at least 1/`per_second` apart, so that quota is never exceeded rather than
    found by being throttled.
    """

    def __init__(self, limit: int, *, per_second: float | None = None) -> None:
        if limit < 1:
            raise ValueError("a gate's limit must be at least 1")
        if per_second is not None and per_second <= 0:
            raise ValueError("a gate's calls per second must be above 0")
        self.limit = limit
        self._spacing = 1.0 / per_second if per_second else 0.0
        self.window = limit
        self.in_flight = 0
        self.peak = 0
        self.narrowest = limit
        self._era = 0  # bumped at every decrease
        self._successes = 0
        self._resume_at = 0.0  # time.monotonic() before which no call starts
        self._next_start = 0.0  # the same, for the spacing `per_second` asks for
        self._changed = threading.Condition()

    @contextmanager
    def place(self) -> Iterator["Ticket"]:
        """Wait until no pause is on, the spacing since the last call's start has passed and
        fewer than `window` calls are in flight; hold a place while inside."""
        with self._changed:
            while True:
                now = time.monotonic()
                wait = max(self._resume_at, self._next_start) - now
                if wait > 0:
                    self._changed.wait(wait)
                elif self.in_flight >= self.window:
                    self._changed.wait()
                else:
                    break
            self._next_start = now + self._spacing
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            ticket = Ticket(self._era)
        try:
            yield ticket
        finally:
            with self._changed:
                self.in_flight -= 1
                # One waiter: woken during a pause, it takes this place once the pause is over.
                self._changed.notify()

    def throttled(self, ticket: "Ticket", *, pause: float = 0.0) -> None:
        """The call holding `ticket` was throttled: no call starts for `pause` seconds (the
        wait the marketplace asked for, or the caller's back-off), and the window halves,
        once per burst."""
        with self._changed:
            if pause > 0:
                self._resume_at = max(self._resume_at, time.monotonic() + pause)
            if ticket.era != self._era:
                return  # sent under a wider window that was halved already
            self.window = max(1, self.window // 2)
            self.narrowest = min(self.narrowest, self.window)
            self._era += 1
            self._successes = 0

    def succeeded(self) -> None:
        """A call was answered without throttling: one more success towards a wider window."""
        with self._changed:
            if self.window >= self.limit:
                return
            self._successes += 1
            if self._successes >= self.window:
                self.window += 1
                self._successes = 0
                self._changed.notify()


@dataclass(frozen=True, slots=True)
class Ticket:
    """A call's place in a `Gate`: the window it was sent under."""

    era: int


# Requests that no retry can fix: a malformed URL or header.
UNSENDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection failed before any byte of the request left this machine."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class HttpCaller:
    """Sends requests through one session with retries, recording into a shared `CallStats`.

    Thread-safe: several threads may call `send` at once on one instance. With a `gate`, every
    attempt waits for a place in it and tells it how the call went (None: no limit here).
    """

    def __init__(
        self,
        *,
        stats: CallStats,
        service: str,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        classify: Classifier = default_classifier,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.stats = stats
        self.service = service  # e.g. "Shopee": the name staff see in error messages
        self.session = session if session is not None else build_session()
        self.policy = policy or RetryPolicy()
        self.classify = classify
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.gate = gate

    def send(
        self, build: Callable[[], OutgoingRequest], *, idempotent: bool = True
    ) -> requests.Response:
        """Send `build()`, retrying as the policy allows; the final reply, good or bad.

        Replies are returned as they are, even a last 429 or 500 once attempts run out, or
        once the server asks for a wait longer than the policy's `longest_wait`: the adapter
        turns them into its own `AdapterError`. A connection failure on the last attempt
        raises `AdapterError(retryable=True)`.

        With `idempotent=False` (e.g. creating an item) only replies the server certainly did
        not act on (throttling) and connections that never opened are retried; anything else
        is returned or raised at once, so nothing is created twice.
        """
        attempt = 0
        while True:
            attempt += 1
            request = build()
            try:
                response, ticket = self._gated(request)
            except UNSENDABLE as exc:
                raise AdapterError(
                    f"{self.service} {request.label}: cannot be sent ({type(exc).__name__})",
                    retryable=False,
                    code="invalid_request",
                ) from None
            except requests.RequestException as exc:
                if not self._may_retry(attempt, idempotent or _never_sent(exc)):
                    raise self._connection_error(request, exc, idempotent=idempotent) from None
                self._back_off(request, attempt, type(exc).__name__, self._delay(attempt, None))
                continue
            advice = self.classify(response)
            delay = 0.0 if advice is None else self._delay(attempt, advice.retry_after)
            self._tell_gate(advice, ticket, delay)
            if advice is None or not self._may_retry(attempt, idempotent or advice.unprocessed):
                return response
            if advice.retry_after is not None and advice.retry_after > self.policy.longest_wait:
                return response  # the caller's run is tried again later (RetryPolicy)
            response.close()
            self._back_off(request, attempt, advice.reason, delay)

    def _gated(self, request: OutgoingRequest) -> tuple[requests.Response, Ticket | None]:
        if self.gate is None:
            return self._timed(request), None
        with self.gate.place() as ticket:
            return self._timed(request), ticket

    def _tell_gate(self, advice: RetryAdvice | None, ticket: Ticket | None, delay: float) -> None:
        """A throttle pauses every call of the adapter for as long as this one backs off."""
        if self.gate is None or ticket is None:
            return
        if advice is None:
            self.gate.succeeded()
        elif advice.throttled:
            self.gate.throttled(ticket, pause=delay)

    def _timed(self, request: OutgoingRequest) -> requests.Response:
        started = time.monotonic()
        try:
            return self.session.request(
                request.method,
                request.url,
                params=request.params,
                json=request.json,
                data=request.data,
                files=request.files,
            )
        finally:
            self._record(calls=1, seconds=time.monotonic() - started)

    def _may_retry(self, attempt: int, safe_to_resend: bool) -> bool:
        return safe_to_resend and attempt < self.policy.attempts

    def _delay(self, attempt: int, after: float | None) -> float:
        return self.policy.delay(attempt, after, self._rng)

    def _back_off(self, request: OutgoingRequest, attempt: int, reason: str, delay: float) -> None:
        logger.info(
            "%s %s: %s, retry %d in %.2fs", self.service, request.label, reason, attempt, delay
        )
        self._sleep(delay)
        self._record(retries=1, seconds=delay)

    def _record(self, *, calls: int = 0, retries: int = 0, seconds: float = 0.0) -> None:
        with self._lock:
            self.stats.calls += calls
            self.stats.retries += retries
            self.stats.seconds += seconds

    def _connection_error(
        self, request: OutgoingRequest, exc: requests.RequestException, *, idempotent: bool
    ) -> AdapterError:
        # str(exc) would quote the full URL, token and signature included: name the host only.
        host = urlsplit(request.url).netloc
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        message = f"{self.service} {request.label}: the connection to {host} {kind}"
        if idempotent or _never_sent(exc):
            return AdapterError(message, retryable=True, code="connection")
        # A create that may have reached the server must not be repeated blindly.
        message += "; the change may or may not have been made, check before trying again"
        return AdapterError(message, retryable=False, code="connection")


@dataclass(frozen=True, slots=True)
class DownloadedImage:
    filename: str
    content: bytes
    content_type: str


def download_image(caller: "HttpCaller", url: str) -> DownloadedImage:
    """Fetch a product image a marketplace must receive as bytes (it cannot fetch our URLs).

    AdapterError (retryable on 5xx) when the URL does not answer with an image.
    """
    response = caller.send(lambda: OutgoingRequest("GET", url))
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if response.status_code != 200 or not content_type.startswith("image/"):
        raise AdapterError(
            f"Could not download the image {url} (HTTP {response.status_code}, "
            f"{content_type or 'no content type'})",
            retryable=response.status_code >= 500,
            code="image",
        )
    filename = urlsplit(url).path.rsplit("/", 1)[-1] or "image"
    return DownloadedImage(filename, response.content, content_type)
