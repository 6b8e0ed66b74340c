"""The django-q2 worker cluster, run so that SIGTERM or Ctrl-C stops it within seconds.

django-q2's `qcluster` stops from inside its signal handler: the handler sets a
`multiprocessing.Event` and joins the cluster's guard process (`Sentinel`). Setting that event
waits until every process asleep on it has woken, so when SIGTERM reaches every process at once
(systemd's default) the guard, killed asleep on the event, never wakes and the handler waits
for good; a second signal during the first handler blocks on the event's lock, held by the
frame it interrupted (django-q2 issue 346). The stop hangs until SIGKILL, and the tasks die
with it.

`cluster_run` keeps django-q2's guard and its orderly stop (the pusher stops taking tasks, the
workers finish what they took, the monitor saves and acknowledges their results) and changes
who acts on a signal:

- the main process's handler only notes the signal; its main loop asks the guard to stop;
- the guard and every process it starts run in a process group of their own and ignore
  SIGTERM and SIGINT, so neither a signal to every process nor a terminal's Ctrl-C cuts a task
  short: only the main process decides;
- the start and stop flags are shared bytes, not Events: setting one never waits on anyone;
- `grace` seconds after the stop was asked for, the main process kills the cluster's process
  group, so a stop never takes much longer than that. A task cut short this way is delivered again
  by the ORM broker once its `retry` lock lapses; the Redis broker removed it when the pusher
  took it, so it is gone, and the schedules (flush of due pushes, overlapping order downloads)
  redo its work.

`WorkerProcess` starts `manage.py worker` as a child process, for tests and benchmarks.
"""

import contextlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django import db
from django.conf import settings

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 6.0  # running tasks get this long to finish; with exiting, a stop takes < 10 s
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# SIGTTOU too: the cluster's group is not the terminal's foreground group, and with `stty
# tostop` a background group that writes its log to the terminal would be stopped.
CLUSTER_IGNORES = (signal.SIGTERM, signal.SIGINT, signal.SIGTTOU)
POLL_SECONDS = 0.1
FORK = multiprocessing.get_context("fork")  # as django-q2 starts its processes on POSIX


class _Flag:
    """A flag shared with forked processes, without a lock: set, cleared and read at once."""

    def __init__(self) -> None:
        self._value = FORK.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def clear(self) -> None:
        self._value.value = 0

    def is_set(self) -> bool:
        return self._value.value == 1

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the flag was set within `timeout` seconds; checks every POLL_SECONDS."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True


class StopRequest:
    """A signal handler that only notes the first signal; the main loop acts on it."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum


def cluster_run(
    *, grace: float = STOP_GRACE_SECONDS, on_running: Callable[[str], None] | None = None
) -> int:
    """Run a worker cluster until SIGTERM or SIGINT, then stop it within `grace` seconds.

    Returns the exit status: 0 when the cluster stopped by itself, 1 when it had to be killed
    at the end of the grace period or its guard died. `on_running(name)` is called once the
    cluster runs. Costs the main process a wake-up every POLL_SECONDS.
    """
    from django_q.humanhash import humanize

    request = StopRequest()
    for signum in STOP_SIGNALS:
        signal.signal(signum, request)
    stop, started = _Flag(), _Flag()
    cluster_id = uuid.uuid4()
    name = humanize(cluster_id.hex)
    db.connections.close_all()  # the guard must not share this process's connections
    guard = FORK.Process(
        target=_guard, args=(stop, started, cluster_id, os.getpid()), name=f"guard-{name}"
    )
    guard.start()
    _give_own_group(guard.pid)
    _wait_for_stop(guard, request, started, lambda: on_running(name) if on_running else None)
    if not request.signum:
        logger.error("Worker cluster %s: its guard died (exit code %s).", name, guard.exitcode)
        _kill_group(guard.pid)
        return 1
    return _stop(guard, stop, name=name, grace=grace, signum=request.signum)


def _wait_for_stop(guard, request: StopRequest, started: _Flag, announce: Callable) -> None:
    announced = False
    while not request.signum and guard.is_alive():
        if not announced and started.is_set():
            announce()
            announced = True
        guard.join(POLL_SECONDS)


def _stop(guard, stop: _Flag, *, name: str, grace: float, signum: int) -> int:
    logger.info(
        "Worker cluster %s stopping on %s: running tasks have %s s to finish.",
        name,
        signal.Signals(signum).name,
        f"{grace:g}",
    )
    stop.set()
    guard.join(grace)
    if guard.exitcode is None:
        logger.warning(
            "Worker cluster %s still busy after %s s: killed. The tasks it was running are "
            "delivered again after the broker's retry time (ORM broker) or lost (Redis).",
            name,
            f"{grace:g}",
        )
        _kill_group(guard.pid)
        guard.join()
        return 1
    _kill_group(guard.pid)  # a worker left behind by a guard that stopped
    if guard.exitcode:
        logger.error("Worker cluster %s: its guard failed (exit code %s).", name, guard.exitcode)
        return 1
    logger.info("Worker cluster %s stopped.", name)
    return 0


def _guard(stop: _Flag, started: _Flag, cluster_id: uuid.UUID, parent_pid: int) -> None:
    """The cluster's guard process: django-q2's Sentinel, deaf to stop signals."""
    from django_q.cluster import Sentinel

    _give_own_group(0)
    _ignore_stop_signals()
    sentinel = Sentinel(stop, started, cluster_id, start=False)  # sets SIGTERM back to default
    _ignore_stop_signals()  # inherited by every process it starts
    threading.Thread(
        target=_stop_when_orphaned, args=(parent_pid, stop), name="orphan-watch", daemon=True
    ).start()
    sentinel.start()


def _ignore_stop_signals() -> None:
    for signum in CLUSTER_IGNORES:
        signal.signal(signum, signal.SIG_IGN)


def _stop_when_orphaned(parent_pid: int, stop: _Flag) -> None:
    """Stop the cluster if the main process dies without asking (SIGKILL, a crash)."""
    while os.getppid() == parent_pid and not stop.is_set():
        time.sleep(1.0)
    if not stop.is_set():
        logger.warning("The worker's main process is gone: stopping the cluster.")
        stop.set()


def _give_own_group(pid: int) -> None:
    """Make `pid` (0: this process) lead a new process group. Called by both parent and
    child, so the group exists whichever runs first."""
    with contextlib.suppress(OSError):  # already done by the other side, or the child is gone
        os.setpgid(pid, 0)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):  # nothing left in it
        os.killpg(pgid, signal.SIGKILL)


# --- starting a worker as a child process (tests, benchmarks) -----------------------------

MANAGE = Path(settings.BASE_DIR) / "manage.py"
RUNNING = "Worker cluster running"


class WorkerProcess:
    """`manage.py worker` in a session of its own, as a service manager starts it; its output
    goes to the file `log`. `env` is added to this process's environment (DATABASE_URL,
    REDIS_URL, Q_WORKERS, ...); settings are omni.settings whatever this process uses.
    """

    def __init__(
        self, *, log: Path, env: Mapping[str, str] | None = None, grace: float | None = None
    ) -> None:
        command = [sys.executable, str(MANAGE), "worker"]
        if grace is not None:
            command += ["--grace", str(grace)]
        self.log = Path(log)
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "omni.settings"}
        environment.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
                command,
                cwd=MANAGE.parent,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_running(self, *, timeout: float) -> None:
        """Wait until the cluster runs; RuntimeError with the log's end if it does not."""
        deadline = time.monotonic() + timeout
        while RUNNING not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                state = f"exit code {self.process.returncode}" if self.process.returncode else ""
                raise RuntimeError(
                    f"worker {self.pid} not running after {timeout:g} s {state}\n"
                    f"{self.output()[-3000:]}"
                )
            time.sleep(POLL_SECONDS)

    def pids(self) -> list[int]:
        """Every live process of the worker (its session): the main process, the guard,
        pusher, monitor and workers. Reads /proc, so Linux only; elsewhere the main process."""
        if not Path("/proc").is_dir():
            return [self.pid] if self.process.poll() is None else []
        return session_pids(self.pid)

    def signal(self, signum: int, *, to: str = "process") -> None:
        """`to` "process": the main process; "group": its process group (`kill -TERM -PID`);
        "all": every process of the worker, as systemd stops a service by default."""
        if to == "process":
            os.kill(self.pid, signum)
        elif to == "group":
            os.killpg(self.pid, signum)
        else:
            for pid in self.pids():
                _kill_quietly(pid, signum)

    def wait_gone(self, *, timeout: float) -> float | None:
        """Seconds until every process of the worker has ended, or None after `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None and not self.pids():
                return time.monotonic() - start
            time.sleep(POLL_SECONDS / 2)
        return None

    def stop(self, *, timeout: float = 30.0) -> float | None:
        """SIGTERM, and SIGKILL for whatever is left after `timeout`; the seconds the clean
        stop took, or None if it had to be killed."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        took = self.wait_gone(timeout=timeout)
        if took is None:
            self.kill()
        return took

    def kill(self) -> None:
        """SIGKILL every process of the worker at once, as a power cut would stop it."""
        self.signal(signal.SIGKILL, to="all")
        self.process.wait()


def session_pids(session_id: int) -> list[int]:
    """Live (not zombie) processes of a session, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (command) "
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            found.append(int(entry.name))
    return found


def _kill_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def database_url(alias: str = "default") -> str:
    """The URL of the PostgreSQL database this process uses now (during tests, the test
    database), for a child process's DATABASE_URL."""
    conf = db.connections[alias].settings_dict
    if conf["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError(f"child processes share only a server database, not {conf['ENGINE']}")
    user = quote(conf["USER"], safe="") + (
        f":{quote(conf['PASSWORD'], safe='')}" if conf["PASSWORD"] else ""
    )
    return f"postgres://{user}@{conf['HOST']}:{conf['PORT'] or 5432}/{conf['NAME']}"
