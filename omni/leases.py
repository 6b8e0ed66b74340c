"""Short leases kept alive by a heartbeat: one holder of a row's work at a time, and a holder
that dies (SIGKILL, power loss) gives the work up within `Lease.seconds`, not minutes.

A lease is two columns on the row it guards: the time it lapses and the holder's token. Taking
it is one conditional UPDATE (free or lapsed); renewing and releasing are UPDATEs conditional on
the token, so a holder whose lease lapsed can never renew or release its successor's. While the
holder works, a daemon thread renews the lease every `seconds / 3` on its own connection.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, connections
from django.db.models import Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # settings.OMNI_LEASE_SECONDS overrides it (tests use a shorter one)


class Lease:
    """The lease on one row: `rows` is a queryset that selects exactly that row.

    `until` and `token` name the row's lapse-time and holder-token fields.
    """

    def __init__(
        self,
        rows: QuerySet,
        *,
        until: str = "locked_until",
        token: str = "lease_token",
        seconds: float | None = None,
    ) -> None:
        self.rows = rows
        self.until = until
        self.token_field = token
        self.seconds = seconds or getattr(settings, "OMNI_LEASE_SECONDS", LEASE_SECONDS)
        self.token = ""

    def take(self, **also: Any) -> bool:
        """Take the lease if it is free or lapsed; `also` is written in the same UPDATE."""
        now = timezone.now()
        free = Q(**{f"{self.until}__isnull": True}) | Q(**{f"{self.until}__lt": now})
        token = uuid.uuid4().hex
        taken = self.rows.filter(free).update(
            **{self.until: self._lapse(now), self.token_field: token}, **also
        )
        self.token = token if taken else ""
        return bool(taken)

    def renew(self) -> bool:
        """Push the lapse time on; False if the lease is no longer ours (it lapsed and was
        taken by another holder), in which case the holder must stop."""
        if not self.token:
            return False
        mine = self.rows.filter(**{self.token_field: self.token})
        return bool(mine.update(**{self.until: self._lapse(timezone.now())}))

    def release(self, **also: Any) -> bool:
        """Give the lease up (if still ours); `also` is written in the same UPDATE."""
        if not self.token:
            return False
        mine = self.rows.filter(**{self.token_field: self.token})
        released = mine.update(**{self.until: None, self.token_field: ""}, **also)
        self.token = ""
        return bool(released)

    def holder_lapses_at(self) -> datetime | None:
        return self.rows.values_list(self.until, flat=True).first()

    def take_when_free(self, *, poll: float = 0.5, **also: Any) -> bool:
        """Take the lease, waiting if a holder has it, but only for a holder that looks dead.

        A live holder renews within `seconds / 3`: seeing the lapse time move on, we give up at
        once (False) and leave the work to it. A dead holder's lease lapses within `seconds`,
        and is then taken. So a call waits at most one heartbeat for a live holder and at most
        `seconds` for a dead one.
        """
        seen = self.holder_lapses_at()
        deadline = time.monotonic() + self.seconds + 1
        while True:
            if self.take(**also):
                return True
            now = self.holder_lapses_at()
            if now is None and not self.rows.exists():
                return False  # no such row (deleted meanwhile): nothing to wait for
            if seen is not None and now is not None and now > seen:
                return False  # renewed: the holder is alive
            if time.monotonic() >= deadline:
                return False
            seen = seen or now
            time.sleep(poll)

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew the lease from a daemon thread every `seconds / 3` while the block runs
        (until it is found no longer ours)."""
        with beating(self.renew, every=self.seconds / 3):
            yield

    def _lapse(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


@contextmanager
def beating(beat: Callable[[], bool], *, every: float) -> Iterator[None]:
    """Call `beat` every `every` seconds from a daemon thread while the block runs, until it
    returns False; the thread has its own database connection.

    Not inside a transaction: the caller's own writes would then hold the rows that `beat`
    updates locked until it commits, and the thread would wait on them.
    """
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(beat, every, stop), name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every * 3)


def _beat(beat: Callable[[], bool], every: float, stop: threading.Event) -> None:
    try:
        while not stop.wait(every):
            if not beat():
                return
    except Exception:  # noqa: BLE001 - the holder's own checks notice a lapsed lease
        logger.warning("heartbeat failed", exc_info=True)
    finally:
        connections.close_all()  # this thread's connections only
