"""What every marketplace adapter shares, written once: the adapter kit.

A marketplace package (`channels/adapters/<kind>/`) has the same four files:

- `credentials.py`: a `Credentials` subclass naming the fields the channel stores;
- `client.py`: a `Client` subclass that signs and sends calls, and knows the marketplace's
  "token expired" answer and token endpoint (the one-refresh-then-retry logic is here, once);
- `orders.py`: the marketplace's order statuses mapped to `OrderState` (`STATUS_TABLE`) and its
  order payloads turned into `RemoteOrder`s;
- `adapter.py`: a `BaseAdapter` subclass mapping payloads to and from omni's dataclasses.

`BaseAdapter` owns construction from a channel's settings (the marketplace's own client settings
passed through), credentials validation, `close`, the calls in flight (one `http.Gate` for all
the adapter's threads, as wide as the marketplace allows: `Limits.max_in_flight` or the
channel's own setting), the worker pool for concurrent detail fetches and the read-ahead of
listing scans (`readahead.ReadAhead`), pushing quantities and prices in batches within `Limits`
with per-listing skip-and-continue, cutting an order range into the windows a marketplace
allows (`order_pages` reads one) and asking for named orders `order_ids_per_call` at a time
(`orders_by_number`). A subclass overrides only its marketplace's hooks, as healthchecks'
transports and django-q2's brokers do. Small conversions (money, times, headers, push bodies)
are in `convert.py`, the checks every upload gets before it is sent in `uploads.py`.
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from re import Pattern
from typing import Any, ClassVar, Generic, Self, TypeVar

import requests
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from channels.adapters.base import (
    AdapterError,
    CallStats,
    CredentialsError,
    CredentialsSaver,
    Limits,
    OrderNumbersMalformed,
    OrderState,
    PriceUpdate,
    PushResult,
    QuantityUpdate,
    RemoteListing,
    RemoteOrder,
    SharedCredentials,
    WebhookEvent,
)
from channels.adapters.convert import unix_range
from channels.adapters.http import (
    POOL_SIZE,
    Gate,
    HttpCaller,
    RetryAdvice,
    RetryPolicy,
    build_session,
)
from channels.adapters.readahead import ReadAhead

T = TypeVar("T")
R = TypeVar("R")
Update = QuantityUpdate | PriceUpdate
DAY = 86_400  # seconds
PoolMap = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


# -- credentials --------------------------------------------------------------------------------


class Credentials(BaseModel):
    """A channel's keys and tokens for one marketplace; subclasses declare the fields.

    Secrets are `SecretStr`, so they print as `**********` in repr, logs and admin widgets;
    `as_dict()` is the one way to get them back in clear, for storage. Unknown keys are refused,
    so a misspelt key fails when the channel is saved, not at 3 a.m. Text is trimmed: keys
    pasted from a marketplace's console often come with a trailing space or newline.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def as_dict(self) -> dict[str, Any]:
        """Every field in clear, in the shape this model validates: what the channel stores."""
        return {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self
        }

    @classmethod
    def replacing(
        cls, stored: Mapping[str, Any], new: dict[str, Any], *, now: int
    ) -> dict[str, Any]:
        """The credentials to store when staff replace `stored` with `new` (both validated
        dicts; `now` in Unix seconds): `new`, unless the marketplace needs something of the
        old ones for a while (Shopify's webhook secret)."""
        return new

    def with_tokens(self, **tokens: Any) -> Self:
        """A copy holding newly issued tokens (secret fields are wrapped as secrets)."""
        update = {
            name: SecretStr(value) if isinstance(getattr(self, name), SecretStr) else value
            for name, value in tokens.items()
        }
        return self.model_copy(update=update)


C = TypeVar("C", bound=Credentials)


def credentials_error(service: str, exc: ValidationError) -> CredentialsError:
    """A CredentialsError listing what is wrong with each field, never the field's value
    (pydantic's own messages would quote the submitted secrets back)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error.get("loc", ())) or "credentials"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return CredentialsError(
        f"The {service} credentials are incomplete or wrong ({'; '.join(problems)})",
        code="invalid_credentials",
    )


# -- the client: signing lives in subclasses, token refresh here ----------------------------------


class Client(Generic[C]):
    """Calls one marketplace for one shop. Thread-safe: a token refresh happens once for all
    threads that met the expired token.

    A subclass signs and sends its calls through `self._caller`, reading `self._credentials`
    afresh on every attempt (a refresh may have replaced them). Where the marketplace issues
    refresh tokens it implements `exchange_refresh_token` and wraps its calls in
    `with_refresh`; the rest (once per stale token, persisting before use, and once between
    processes when `on_credentials_changed` is `SharedCredentials`) is done here.
    `service` is the marketplace's name in messages, the adapter's (TikTok Shop's client serves
    Tokopedia under that name).
    """

    service: str

    def __init__(
        self,
        *,
        base_url: str,
        credentials: C,
        caller: HttpCaller,
        service: str,
        on_credentials_changed: CredentialsSaver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._caller = caller
        self._on_credentials_changed = on_credentials_changed
        self._clock = clock
        self._refresh_lock = threading.Lock()

    @staticmethod
    def classify_reply(response: requests.Response) -> RetryAdvice | None:
        """Retry advice for an answer that is throttled or failed inside a 200 body; None
        leaves the answer to `HttpCaller`'s defaults (429, 5xx)."""
        return None

    @property
    def credentials(self) -> C:
        return self._credentials

    # -- one refresh, then the call again ------------------------------------------------------

    def with_refresh(self, send: Callable[[dict[str, str]], T], expired: Callable[[T], bool]) -> T:
        """`send(used)` once; when a refresh token is known and the answer says the access
        token expired (`expired`, asked only then), refresh once (for every thread that used
        the same stale token) and send again. `send` records the access token it signed with
        in `used`."""
        used: dict[str, str] = {}
        answer = send(used)
        if self.can_refresh() and expired(answer):
            self.refresh_once(used["access_token"])
            answer = send(used)
        return answer

    def can_refresh(self) -> bool:
        refresh_token = getattr(self._credentials, "refresh_token", None)
        return bool(refresh_token and refresh_token.get_secret_value())

    def refresh_once(self, stale_access_token: str) -> None:
        with self._refresh_lock:
            # Another thread may have refreshed while this one waited for the lock.
            if self.access_token() == stale_access_token:
                self.refresh_access_token()

    def access_token(self, credentials: C | None = None) -> str:
        """The access token of `credentials` (None: of those in use)."""
        chosen = self._credentials if credentials is None else credentials
        return chosen.access_token.get_secret_value()  # type: ignore[attr-defined]

    def refresh_access_token(self) -> C:
        """Trade the refresh token for new tokens and persist them through the callback.

        The callback runs before the new tokens are used, so a crash afterwards cannot lose
        the single-use refresh token the marketplace has just replaced. `SharedCredentials`
        (a channel's row) stay locked for the whole exchange, so the workers of every process
        using the channel refresh once: one that finds the stale token already replaced there
        adopts the stored tokens without calling the marketplace. Its cost: other refreshes of
        the channel wait for the token endpoint's answer.
        """
        if not self.can_refresh():
            raise self.no_refresh_token()
        saver = self._on_credentials_changed
        if isinstance(saver, SharedCredentials):
            stale = self.access_token()
            stored = saver.refresh(lambda stored: self._renewed(stored, stale))
            renewed = self._validated(stored)
        else:
            renewed = self.exchange_refresh_token(self._credentials)
            if saver is not None:
                saver(renewed.as_dict())
        self._credentials = renewed
        return renewed

    def _renewed(self, stored: dict[str, Any], stale_access_token: str) -> dict[str, Any] | None:
        """New tokens for the stored credentials, or None when their access token is no longer
        the stale one: another process refreshed while this one waited for the lock."""
        current = self._validated(stored)
        if self.access_token(current) != stale_access_token:
            return None
        return self.exchange_refresh_token(current).as_dict()

    def _validated(self, stored: Mapping[str, Any]) -> C:
        try:
            return type(self._credentials).model_validate(dict(stored))
        except ValidationError as exc:
            raise credentials_error(self.service, exc) from None

    def exchange_refresh_token(self, current: C) -> C:
        """Call the marketplace's token endpoint (never retried after a lost reply: a refresh
        token works once); `current.with_tokens(...)`. CredentialsError when refused."""
        raise NotImplementedError(f"{self.service} issues no refresh tokens")

    def no_refresh_token(self) -> CredentialsError:
        return CredentialsError(
            f"{self.service} refused the access token and the channel has no refresh token: "
            f"reconnect the shop in {self.service} to issue new tokens",
            code="auth",
        )


# -- replies: the JSON a marketplace answered ----------------------------------------------------


def reply_json(response: requests.Response, *, service: str, endpoint: str) -> Any:
    """The JSON a marketplace answered, numbers with decimals as Decimal. AdapterError (code
    `http_<status>`) when the body is not JSON: retryable on HTTP 200 (a glitch), 429 and 5xx."""
    status = response.status_code
    try:
        return response.json(parse_float=Decimal)
    except ValueError:
        raise AdapterError(
            f"{service} answered {endpoint} with HTTP {status} and no JSON body",
            retryable=status in (200, 429) or status >= 500,
            code=f"http_{status}",
        ) from None


def reply_object(
    response: requests.Response,
    *,
    service: str,
    endpoint: str,
    names_error: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """The JSON object a marketplace answered, for marketplaces that put their own error in the
    body whatever the HTTP status. AdapterError (code `http_<status>`, retryable on 429 and
    5xx) when it is not JSON (`reply_json`), not an object, or a failed HTTP status comes with
    a body that names no error (`names_error` says whether it does)."""
    payload = reply_json(response, service=service, endpoint=endpoint)
    status = response.status_code
    retryable = status == 429 or status >= 500
    if not isinstance(payload, dict):
        raise AdapterError(
            f"{service} answered {endpoint} with JSON that is not an object (HTTP {status})",
            retryable=retryable,
            code=f"http_{status}",
        )
    if status != 200 and not names_error(payload):
        raise AdapterError(
            f"{service} answered {endpoint} with HTTP {status}",
            retryable=retryable,
            code=f"http_{status}",
        )
    return payload


# -- pushing in batches -------------------------------------------------------------------------


@dataclass(slots=True)
class PushRow:
    """One listing's update inside a batch. `key` is the id the marketplace's answer names the
    listing by (a model id, a SKU id, a variant gid); `indexes` are the positions in the caller's
    list it answers for (an update listed twice is sent once, its last value winning)."""

    key: str
    update: Update
    indexes: list[int] = field(default_factory=list)
    target: Any = None  # what the marketplace needs beside the key, from `resolve`


@dataclass(slots=True)
class PushBatch:
    group: str  # the item when the call holds one item's rows only by design, else ""
    rows: list[PushRow]


class Unpushable(Exception):
    """Raised by a `resolve` hook: this update cannot be sent (bad ids, unknown listing); the
    message is its failed result's error. The other updates go on."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


Resolve = Callable[[Update], tuple[str, str, Any]]  # -> (group, key, target)
# -> {key: the marketplace's reason, or an AdapterError/Unpushable saying whether trying again
# may help}; the key "" fails the whole call
Send = Callable[[PushBatch], Mapping[str, "str | AdapterError | Unpushable"]]


def push_in_batches(
    updates: Sequence[Update],
    *,
    per_call: int,
    one_item: bool,
    resolve: Resolve,
    send: Send,
    calls: PoolMap | None = None,
    serial_items: bool = False,
) -> list[PushResult]:
    """One result per update, in order, after as few calls as `per_call` allows; the calls
    made through `calls` (a pool's map: several at once; one after another without it).

    `resolve(update)` says where an update goes (`Unpushable` for one that cannot be sent; an
    AdapterError from a lookup fails that update alone). Rows are grouped by item when the
    marketplace takes one item per call, in first-seen order, and cut to `per_call`.
    With `serial_items` (a marketplace refusing two calls that edit one item at once, as
    Lazada does with 4147), calls may still mix items, but calls of one item are sent one
    after another, in waves, never two of them at once (`_packed`: each item whole in one call
    where that costs no more calls, else full calls in two waves).
    `send(batch)` makes one call and names the refused rows by key with the marketplace's
    reason; an error under the key "" fails every row of the call. A call that fails fails
    only its own rows; a CredentialsError stops everything, as no further call can succeed.
    """
    results: dict[int, PushResult] = {}
    groups: dict[str, dict[str, PushRow]] = {}
    for index, update in enumerate(updates):
        try:
            group, key, target = resolve(update)
        except CredentialsError:
            raise
        except (Unpushable, AdapterError) as exc:
            results[index] = _failed(update, str(exc), exc.retryable)
            continue
        rows = groups.setdefault(group if one_item or serial_items else "", {})
        row = rows.get(key)
        if row is None:
            rows[key] = row = PushRow(key, update)
        row.update, row.target = update, target
        row.indexes.append(index)
    if serial_items and not one_item:
        waves = _packed(groups, per_call)
    else:
        cut = [_cut(group, list(rows.values()), per_call) for group, rows in groups.items()]
        # One item's calls in successive waves when its edits must not overlap.
        waves = _waves(cut) if serial_items else [[batch for item in cut for batch in item]]

    def call(batch: PushBatch) -> Mapping[str, Any] | AdapterError:
        try:
            return send(batch)
        except AdapterError as exc:  # CredentialsError among them: raised below, once
            return exc

    answered: list[tuple[PushBatch, Mapping[str, Any] | AdapterError]] = []
    for wave in waves:
        outcomes = (calls or serial_map)(call, wave)
        for outcome in outcomes:
            if isinstance(outcome, CredentialsError):
                raise outcome
        answered.extend(zip(wave, outcomes, strict=True))
    for batch, refused in answered:
        if isinstance(refused, AdapterError):
            for row in batch.rows:
                _answer(results, row, str(refused), refused.retryable)
            continue
        everyone = refused.get("", "")
        for row in batch.rows:
            reason = refused.get(row.key) or everyone
            if isinstance(reason, str):
                _answer(results, row, reason, False)
            else:
                _answer(results, row, str(reason), reason.retryable)
    return [results[index] for index in range(len(updates))]


def _cut(group: str, rows: list[PushRow], per_call: int) -> list[PushBatch]:
    """One item's rows (or everything, under the group "") in calls of `per_call`."""
    return [
        PushBatch(group, rows[start : start + per_call]) for start in range(0, len(rows), per_call)
    ]


def _waves(items: Iterable[list[PushBatch]]) -> list[list[PushBatch]]:
    """Calls grouped so that no wave holds two calls of one item: an item's n-th call goes in
    the n-th wave, which starts once the wave before it has been answered."""
    waves: list[list[PushBatch]] = []
    for item in items:
        for depth, batch in enumerate(item):
            if depth == len(waves):
                waves.append([])
            waves[depth].append(batch)
    return waves


def _packed(groups: Mapping[str, Mapping[str, PushRow]], per_call: int) -> list[list[PushBatch]]:
    """Calls that may mix items, in waves that never send two calls of one item at once: the
    plan with the fewer calls (what the marketplace counts), then the fewer waves (round
    trips), of `_whole_items` and `_in_order`."""
    plans = (_whole_items(groups, per_call), _in_order(groups, per_call))
    return min(plans, key=lambda waves: (sum(len(wave) for wave in waves), len(waves)))


def _in_order(groups: Mapping[str, Mapping[str, PushRow]], per_call: int) -> list[list[PushBatch]]:
    """Every call full but the last (the fewest calls), an item's rows next to each other; a
    call goes in the first wave holding no other call of its items. An item cut between two
    calls puts them in two waves, so this takes two waves where `_whole_items` takes one."""
    rows = [(group, row) for group, item in groups.items() for row in item.values()]
    waves: list[list[PushBatch]] = []
    waves_of: dict[str, set[int]] = {}  # the waves each item has a call in
    for start in range(0, len(rows), per_call):
        call = rows[start : start + per_call]
        items = {group for group, _ in call}
        taken = set().union(*(waves_of.get(group, set()) for group in items))
        wave = next(number for number in range(len(waves) + 1) if number not in taken)
        if wave == len(waves):
            waves.append([])
        waves[wave].append(PushBatch("", [row for _, row in call]))
        for group in items:
            waves_of.setdefault(group, set()).add(wave)
    return waves


def _whole_items(
    groups: Mapping[str, Mapping[str, PushRow]], per_call: int
) -> list[list[PushBatch]]:
    """Whole items packed into shared calls, in waves (see `_waves`).

    An item that fits in one call goes, all its rows together, into the open call with the
    least room that holds it (best fit: as few calls as rows ÷ `per_call` when items are small
    beside a call, up to twice as many when each takes just over half of one); a bigger item
    is cut into calls of its own, sent in waves.
    """
    shared: list[PushBatch] = []
    by_room: dict[int, list[PushBatch]] = {}  # open shared calls by the rows they still take
    big: list[list[PushBatch]] = []
    for group, rows in groups.items():
        ordered = list(rows.values())
        if len(ordered) > per_call:
            big.append(_cut(group, ordered, per_call))
            continue
        room = next((r for r in range(len(ordered), per_call) if by_room.get(r)), None)
        if room is None:
            batch, room = PushBatch("", []), per_call
            shared.append(batch)
        else:
            batch = by_room[room].pop()
        batch.rows.extend(ordered)
        if room > len(ordered):
            by_room.setdefault(room - len(ordered), []).append(batch)
    waves = _waves(big)
    if shared:
        if waves:
            waves[0][:0] = shared
        else:
            waves.append(shared)
    return waves


def _answer(results: dict[int, PushResult], row: PushRow, error: str, retryable: bool) -> None:
    for index in row.indexes:
        results[index] = _failed(row.update, error, retryable)


def _failed(update: Update, error: str, retryable: bool) -> PushResult:
    return PushResult(
        update.item_id, update.variant_id, ok=not error, error=error, retryable=retryable
    )


# -- the adapter --------------------------------------------------------------------------------


K = TypeVar("K", bound=Client[Any])


class BaseAdapter(Generic[C, K]):
    """omni's Adapter for one shop of one marketplace (the protocol is `base.Adapter`), typed by
    its credentials model `C` and its client `K`.

    `credentials` is a mapping validated by `credentials_model` (or an instance of it);
    `on_credentials_changed` receives the whole credentials dict after a token refresh;
    `retry` tunes back-off; `max_in_flight` is how many calls the adapter may have in flight at
    once (None: `limits.max_in_flight`, the marketplace's default; 1 reads one call at a time;
    `workers` is its older name); `max_per_second`, the calls a second the app may make, where
    the shop knows its quota (None: no spacing). Every call waits for a place in `gate`, which
    narrows and pauses when the marketplace throttles. `client_options` go to the marketplace's
    client as they are (Lazada's `auth_url`, TikTok's `auth_base_url`). `stats` counts every
    HTTP call this adapter makes.
    """

    kind: ClassVar[str]
    service: ClassVar[str]  # the marketplace's name in messages
    limits: ClassVar[Limits]
    STATUS_TABLE: ClassVar[Mapping[str, OrderState]]
    credentials_model: ClassVar[type[Credentials]]
    client_class: type[K]  # a class attribute; a ClassVar cannot hold a type variable
    # What the marketplace's order numbers look like, in full and in words (`get_orders`).
    order_number_pattern: ClassVar[Pattern[str]]
    order_number_form: ClassVar[str]
    # Rounds of `max_in_flight` pages a listing read may run ahead (`read_ahead`). A page of
    # many calls (a list, then its details) keeps the gate busy for several round trips, so one
    # round is enough; a page that is one call (Lazada) is read in one round trip, and only
    # several rounds ahead keep the gate busy while the scan writes a batch of listings.
    page_rounds_ahead: ClassVar[int] = 1
    _client: K

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Mapping[str, Any] | C,
        on_credentials_changed: CredentialsSaver | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        max_in_flight: int | None = None,
        max_per_second: int | None = None,
        workers: int | None = None,
        clock: Callable[[], float] = time.time,
        **client_options: Any,
    ) -> None:
        self.stats = CallStats()
        self.gate = Gate(
            max(1, max_in_flight or workers or self.limits.max_in_flight),
            per_second=max_per_second,
        )
        if session is None:
            session = build_session(pool_size=max(POOL_SIZE, self.gate.limit))
        self._caller = HttpCaller(
            stats=self.stats,
            service=self.service,
            session=session,
            policy=retry,
            classify=self.client_class.classify_reply,
            gate=self.gate,
        )
        self._client = self.client_class(
            base_url=base_url,
            credentials=self.validated(credentials),
            caller=self._caller,
            service=self.service,
            on_credentials_changed=on_credentials_changed,
            clock=clock,
            **client_options,
        )
        self._clock = clock
        self._chain_lock = threading.Lock()

    @classmethod
    def validated(cls, credentials: Mapping[str, Any] | C) -> C:
        """`credentials` as the model; CredentialsError naming the wrong fields, never values."""
        if isinstance(credentials, cls.credentials_model):
            return credentials  # type: ignore[return-value]
        try:
            return cls.credentials_model.model_validate(dict(credentials))  # type: ignore[return-value]
        except ValidationError as exc:
            raise credentials_error(cls.service, exc) from None

    @property
    def credentials(self) -> C:
        """The credentials in use, tokens included once refreshed."""
        return self._client.credentials  # type: ignore[no-any-return]

    def close(self) -> None:
        """Release pooled connections (those of a session passed in, too)."""
        self._caller.session.close()

    def confirm_listings(self, item_ids: Sequence[str]) -> list[RemoteListing] | None:
        """None: a list read by a cursor or a snapshot, which a deletion does not shift. A
        marketplace whose list it can shift (offsets, page numbers) overrides this to ask for
        the items one by one (`base.Adapter.confirm_listings`)."""
        return None

    @property
    def max_in_flight(self) -> int:
        """The most calls this adapter has in flight at once (its gate's limit)."""
        return self.gate.limit

    @contextmanager
    def pool(self) -> Iterator[PoolMap]:
        """A `map(fn, args) -> list` running up to `max_in_flight` calls at once, results in
        order; the plain loop when that is 1, or for a single call (most real-time pushes), which
        then starts no thread. Threads share the adapter's session, gate and `stats`; a map
        called from several threads shares the pool's threads."""
        if self.max_in_flight == 1:
            yield serial_map
            return
        executor: ThreadPoolExecutor | None = None
        lock = threading.Lock()

        def calls(fn: Callable[[T], R], args: Sequence[T]) -> list[R]:
            nonlocal executor
            if len(args) < 2:
                return serial_map(fn, args)
            with lock:
                if executor is None:
                    name = f"{self.kind}-detail"
                    executor = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix=name)
            return list(executor.map(fn, args))

        try:
            yield calls
        finally:
            if executor is not None:
                executor.shutdown()

    def read_ahead(
        self, walk: Callable[[ReadAhead[R]], Iterable[T]], read: Callable[[T], R]
    ) -> Iterator[R]:
        """`read(page)` for every page `walk` yields, several pages at once and the walk
        ahead of them, results in the walk's order (`readahead.ReadAhead`). At most
        `page_rounds_ahead` × `max_in_flight` + 2 pages are under way."""
        name = f"{self.kind}-page"
        most = self.page_rounds_ahead * self.max_in_flight + 2
        return iter(ReadAhead(walk, read, most=most, name=name))

    @contextmanager
    def read_back(self, created: str) -> Iterator[None]:
        """Around the calls that follow a create (reading the new product's listings, setting
        it up further): a failure there is not a failed create. The product exists on the
        marketplace, so the error says so, and is not retryable: an upload tried again would
        create it twice. A scan of the channel brings its listings. Refused credentials stay
        what they are."""
        try:
            yield
        except CredentialsError:
            raise
        except AdapterError as exc:
            raise AdapterError(
                f"{self.service} created {created}, but reading it back failed: {exc} A scan "
                "of the channel brings its listings; do not upload it again.",
                retryable=False,
                code=exc.code,
            ) from exc

    def chained(self, depth: int) -> None:
        """Record that a read made `depth` calls one after another, each needing the one
        before's answer (`CallStats.chain` keeps the longest)."""
        with self._chain_lock:
            self.stats.chain = max(self.stats.chain, depth)

    def push(
        self,
        updates: Sequence[Update],
        *,
        per_call: int,
        resolve: Resolve,
        send: Send,
        one_item: bool | None = None,
    ) -> list[PushResult]:
        """`push_in_batches` within this marketplace's `Limits` (`one_item` overrides
        `Limits.one_item_per_update` for a call that may mix items); quantities checked first."""
        for update in updates:
            if isinstance(update, QuantityUpdate) and update.quantity < 0:
                raise ValueError(f"negative quantity for {update.item_id}/{update.variant_id}")
        with self.pool() as calls:
            return push_in_batches(
                updates,
                per_call=per_call,
                one_item=self.limits.one_item_per_update if one_item is None else one_item,
                resolve=resolve,
                send=send,
                calls=calls,
                serial_items=self.limits.serial_item_edits,
            )

    # -- orders: the range cut into windows, named orders in chunks ----------------------------

    def iter_orders(
        self, *, updated_from: datetime, updated_to: datetime
    ) -> Iterator[list[RemoteOrder]]:
        """Orders updated in [updated_from, updated_to), a page at a time (`order_pages`).

        Whole seconds: the start is rounded down and the end up, so an order updated in either
        edge second is not missed. The range is cut into windows of at most
        `limits.order_window_days` (None: one window), as a marketplace that refuses wider
        ones needs; an empty range asks nothing.
        """
        start, end = unix_range(updated_from, updated_to)
        if end <= start:
            return
        days = self.limits.order_window_days
        width = end - start if days is None else days * DAY
        for low in range(start, end, width):
            yield from self.order_pages(low, min(low + width, end))

    def order_pages(self, start: int, end: int) -> Iterator[list[RemoteOrder]]:
        """Orders updated from Unix second `start` up to, not including, `end` (a window within
        the marketplace's limit, never empty), a page at a time, with their lines."""
        raise NotImplementedError(f"{self.service} reads orders its own way")

    def get_orders(self, order_numbers: Sequence[str]) -> list[RemoteOrder]:
        """The named orders (Manual Download Order), asked for `limits.order_ids_per_call`
        numbers at a time (`orders_by_number`), chunk after chunk in the order given; numbers
        the marketplace does not know are left out. OrderNumbersMalformed, before any call, as
        `wanted_order_numbers` says."""
        found: list[RemoteOrder] = []
        wanted = self.wanted_order_numbers(order_numbers)
        for chunk in chunks(wanted, self.limits.order_ids_per_call):
            found.extend(self.orders_by_number(chunk))
        return found

    def orders_by_number(self, numbers: Sequence[str]) -> list[RemoteOrder]:
        """The orders of at most `limits.order_ids_per_call` well-formed, distinct numbers."""
        raise NotImplementedError(f"{self.service} reads named orders its own way")

    def owns_push(self, event: WebhookEvent) -> bool:
        """Every push is the channel's own unless the marketplace's adapter says otherwise."""
        return True

    def wanted_order_numbers(self, order_numbers: Sequence[str]) -> list[str]:
        """The numbers to ask for: each as `clean_order_number` makes it, blanks left out, each
        once, in the order given. OrderNumbersMalformed for any that no order of this
        marketplace can have (`order_number_pattern`)."""
        cleaned = (self.clean_order_number(number) for number in order_numbers)
        wanted = list(dict.fromkeys(number for number in cleaned if number))
        self.check_order_numbers(wanted)
        return wanted

    @staticmethod
    def clean_order_number(number: str) -> str:
        """An order number as typed, made ready to ask for: trimmed."""
        return number.strip()

    def check_order_numbers(self, numbers: Sequence[str]) -> None:
        """OrderNumbersMalformed for the numbers `order_number_pattern` does not match in full."""
        OrderNumbersMalformed.check(
            numbers, self.order_number_pattern, service=self.service, form=self.order_number_form
        )


def serial_map(fn: Callable[[T], R], args: Sequence[T]) -> list[R]:
    return [fn(arg) for arg in args]


def chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`values` cut into consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
