"""A paged read that runs ahead of its reader, within the calls a marketplace allows.

A listing scan is a walk over a marketplace's list pages (offsets, page numbers or a cursor)
and, for each page, detail reads (base info, variations, SKU names). Read one after another,
every call waits for the one before it, so a scan takes calls × latency. `ReadAhead` keeps the
adapter's `Gate` full instead, three ways:

- the walk runs in its own thread, so the next list page is asked for while this page's
  details are read and while the reader (the scan, writing to the database) handles the page
  before;
- each page's details are read by a task of their own, several pages at once;
- where pages do not depend on one another once the first is read (a total count, a number
  of pages), a `reader` fetches the pages the walk will ask for next before it asks, as far as
  the read-ahead allows.

Order and completeness are kept: the walk is the marketplace's own sequential walk, with its
`PageTally` checks, run unchanged in the walk thread; it just gets pages sooner. The reader
receives the pages' results in the walk's order, and an error (a `PageTally` refusal, a failed
call) after every page before it, as a plain loop would have raised it.

How far ahead: the pages begun and not yet taken by the reader (fetched ahead of the walk, or
handed to a task) are at most as many as the reader has taken so far, at least one and at most
`most`. So the first page is read alone, the next while the reader holds the first, and the
read-ahead doubles from there: a reader that stops after a page or two has cost few calls, and
the first pages show the shop as it is when the reader asks for them.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

K = TypeVar("K")
P = TypeVar("P")
T = TypeVar("T")
R = TypeVar("R")


class _Stopped(Exception):
    """The reader went away: the walk ends quietly."""


_END: Any = object()


class ReadAhead(Generic[R]):
    """One paged read running ahead of its reader; see the module's docstring.

    `walk(self)` is the marketplace's walk: it fetches list pages (through `reader(...)` for
    pages it can plan, or directly for a cursor) and yields what each page's task needs;
    `read(page)` is that task, run on a pool thread (detail calls go to the adapter's own
    pool). Iterating yields `read`'s results in the walk's order.
    """

    def __init__(
        self,
        walk: Callable[["ReadAhead[R]"], Iterable[T]],
        read: Callable[[T], R],
        *,
        most: int,
        name: str,
    ) -> None:
        self._walk = walk
        self._read = read
        self._most = max(1, most)
        self._changed = threading.Condition(threading.RLock())
        self._results: deque[Future[R]] = deque()
        self._submitted = 0  # pages handed to a task
        self._taken = 0  # results the reader has taken
        self._ahead = 0  # list pages fetched ahead of the walk, not yet asked for
        self._walk_done = False
        self._walk_error: BaseException | None = None
        self._stopped = False
        # At most `most` page tasks and `most` list pages ahead at a time.
        self._threads = ThreadPoolExecutor(2 * self._most, thread_name_prefix=name)
        self._walker = threading.Thread(name=f"{name}-walk", daemon=True)  # started by __iter__
        self._walk_steps: Iterator[Any] = iter(())

    # -- for the walk ----------------------------------------------------------------------

    def reader(
        self, fetch: Callable[[K], P], plan: Callable[[K, P], Iterable[K]] | None = None
    ) -> Callable[[K], P]:
        """`fetch` for the walk, fetching ahead: after every page, `plan(key, page)` names
        the keys the walk will ask for next, in order, as far as it can tell (e.g. every
        further offset up to the total the page reports); the nearest are fetched as the
        read-ahead allows. Pages fetched ahead for keys a new plan no longer names are
        forgotten (the walk stepped back, or the list shrank); a key asked for that was not
        fetched ahead is fetched then."""
        return _Reader(self, fetch, plan)

    def call(self, fetch: Callable[[], P]) -> P:
        """One list call the walk cannot plan (a cursor's next page, a probe of a window), made
        when the pages handed to tasks and not yet taken leave room for another. Pages fetched
        ahead do not count here: they were fetched on a guess, and the walk needs this one
        first (were it to wait for them, a plan's later keys could hold every place while the
        walk waits for a nearer one)."""
        self._wait_room()
        return fetch()

    # -- for the reader --------------------------------------------------------------------

    def __iter__(self) -> Iterator[R]:
        walk = self._walk_steps = iter(self._walk(self))
        try:
            # The walk's first page is read here, on the reader's own thread: a token the first
            # call finds expired is refreshed (and saved, through the reader's database
            # connection) before any other thread calls.
            first = next(walk, _END)
            if first is not _END:
                self._submit(first)
                self._walker = threading.Thread(
                    target=self._run_walk, args=(walk,), name=self._walker.name, daemon=True
                )
                self._walker.start()
            else:
                self._walk_done = True
            while True:
                future = self._next_result()
                if future is None:
                    return
                yield future.result()
        finally:
            self._stop()

    # -- inside ----------------------------------------------------------------------------

    def _allowance(self) -> int:
        return max(1, min(self._most, self._taken))

    def _has_room(self) -> bool:
        return (self._submitted - self._taken) + self._ahead < self._allowance()

    def _wait_room(self) -> None:
        with self._changed:
            while not self._stopped and self._submitted - self._taken >= self._allowance():
                self._changed.wait()
            if self._stopped:
                raise _Stopped

    def _notify(self, _future: Future[Any] | None = None) -> None:
        with self._changed:
            self._changed.notify_all()

    def _run_walk(self, walk: Iterator[T]) -> None:
        try:
            for page in walk:
                self._submit(page)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the reader, after the pages before it
            self._walk_error = exc
        finally:
            with self._changed:
                self._walk_done = True
                self._changed.notify_all()

    def _submit(self, page: T) -> None:
        with self._changed:
            while not self._stopped and self._submitted - self._taken >= self._allowance():
                self._changed.wait()
            if self._stopped:
                raise _Stopped
            future = self._threads.submit(self._read, page)
            self._results.append(future)
            self._submitted += 1
        future.add_done_callback(self._notify)

    def _next_result(self) -> Future[R] | None:
        """The next page's finished task, in order; None at the end; the walk's error once
        every page before it was taken."""
        with self._changed:
            while not self._results and not self._walk_done:
                self._changed.wait()
            if not self._results:
                if self._walk_error is not None:
                    raise self._walk_error
                return None
            future = self._results[0]
            while not future.done():
                self._changed.wait()
            self._results.popleft()
            self._taken += 1
            self._changed.notify_all()
            return future

    def _stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
            for future in self._results:
                future.cancel()
        if self._walker.is_alive():
            self._walker.join()
        close = getattr(self._walk_steps, "close", None)
        if close is not None:
            close()  # a walk stopped between pages runs its `finally` blocks now
        self._threads.shutdown(wait=True, cancel_futures=True)


class _Reader(Generic[K, P]):
    """`ReadAhead.reader`: a fetch function that fetches the planned keys ahead."""

    def __init__(
        self,
        ahead: ReadAhead[Any],
        fetch: Callable[[K], P],
        plan: Callable[[K, P], Iterable[K]] | None,
    ) -> None:
        self._owner = ahead
        self._fetch = fetch
        self._plan = plan
        self._planned: deque[K] = deque()  # keys the walk will ask for next, not started yet
        self._started: dict[K, Future[P]] = {}  # fetched ahead, not asked for yet

    def __call__(self, key: K) -> P:
        owner = self._owner
        with owner._changed:
            future = self._started.pop(key, None)
            if future is not None:
                owner._ahead -= 1
                self._wait(future)
        page = future.result() if future is not None else owner.call(lambda: self._fetch(key))
        self._replan(list(self._plan(key, page)) if self._plan is not None else [])
        return page

    def _replan(self, keys: list[K]) -> None:
        """Follow the new plan: keep what was fetched ahead for keys still in it, forget the
        rest, start the nearest keys as room allows."""
        owner = self._owner
        wanted = set(keys)
        with owner._changed:
            for key in [key for key in self._started if key not in wanted]:
                self._started.pop(key).cancel()  # one already running finishes unused
                owner._ahead -= 1
            self._planned = deque(key for key in keys if key not in self._started)
            owner._changed.notify_all()
        self._start_more()

    def _wait(self, future: Future[P]) -> None:
        """Wait for `future` (under the owner's lock), starting planned pages as room opens."""
        owner = self._owner
        while not future.done():
            if owner._stopped:
                raise _Stopped
            self._start_more()
            if not future.done():
                owner._changed.wait()

    def _start_more(self) -> None:
        owner = self._owner
        with owner._changed:
            while self._planned and not owner._stopped and owner._has_room():
                key = self._planned.popleft()
                owner._ahead += 1
                future = owner._threads.submit(self._fetch, key)
                self._started[key] = future
                future.add_done_callback(owner._notify)
