"""Imports uploaded in the admin, run by a worker (django-q2) rather than inside the upload
request: the upload is checked for what can be told at once, kept in an ImportRun, and imported
by `import_run_execute`, which records the import's progress in the run while it goes and its
outcome when it ends.
"""

import io
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import IO, Any

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.exceptions import CatalogError
from catalog.imports.catalog import CATALOG_COLUMNS, catalog_csv_import
from catalog.imports.reading import (
    NOT_TEXT,
    ImportFileError,
    ImportResult,
    RowError,
    not_utf8,
    read_header,
    text_stream,
)
from catalog.imports.stock import STOCK_ALIASES, STOCK_COLUMNS, stock_csv_import, stock_outlets
from catalog.models import ImportRun, Outlet
from omni.actors import Actor
from omni.leases import beating

logger = logging.getLogger(__name__)

Kind, Status, Stage = ImportRun.Kind, ImportRun.Status, ImportRun.Stage

# Bad rows kept in a run (and shown on its page); the rest are counted. A file with more needs
# fixing at the source.
ERRORS_KEPT = 500

# The import's progress is written to its run at most this often, from a thread with its own
# connection (see _Recorder); when it has not moved, the time alone every HEARTBEAT_SECONDS.
PROGRESS_SECONDS = 0.5
HEARTBEAT_SECONDS = 10.0
# A running import silent for RUNNING_STALE has lost its worker. A queued one is given
# QUEUED_STALE, since a busy worker may take a while to reach it.
RUNNING_STALE = timedelta(minutes=3)
QUEUED_STALE = timedelta(minutes=15)
OPEN = [Status.QUEUED, Status.RUNNING]


# --- the upload ------------------------------------------------------------------------------


def upload_text(binary: IO[bytes]) -> str:
    """The uploaded file as text: UTF-8, with or without a BOM.

    Raises ImportFileError, with the imports' own words, for a file that is not UTF-8 or
    holds binary data (a NUL character, which PostgreSQL cannot store in a text column).
    Cost: the file is read whole, and held twice (bytes and text) while it is decoded.
    """
    data = binary.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise not_utf8(f" on line {line}", exc) from None
    if "\0" in text:
        raise ImportFileError(NOT_TEXT)
    return text


def import_file_check(*, kind: str, text: str, outlet: Outlet | None = None) -> None:
    """Refuse at once what the import would refuse before reading any row: an empty file,
    a header naming unknown or repeated columns or lacking a required one, and for stock
    levels an outlet chosen while the file also has an outlet column (or neither).

    Raises ImportFileError (or UnknownOutlet) with the message the import gives.
    """
    stream = io.StringIO(text, newline="")
    if kind == Kind.CATALOG:
        read_header(stream, columns=CATALOG_COLUMNS, aliases={})
        return
    columns = read_header(stream, columns=STOCK_COLUMNS, aliases=STOCK_ALIASES)
    stock_outlets(outlet.code if outlet else None, columns)


def import_run_request(
    *,
    kind: str,
    file_name: str,
    text: str,
    partial: bool,
    dry_run: bool,
    outlet: Outlet | None = None,
    requested_by: Any = None,
) -> ImportRun:
    """Record a queued import of `text` and enqueue it once the transaction commits."""
    run = ImportRun.objects.create(
        kind=kind,
        file_name=file_name[:255],
        text=text,
        partial=partial,
        dry_run=dry_run,
        outlet=outlet if kind == Kind.STOCK else None,
        requested_by=requested_by,
    )
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from django_q.tasks import async_task

    async_task("catalog.tasks.import_run", run_id, group="imports", task_name=f"import-{run_id}")


# --- the run ---------------------------------------------------------------------------------


def import_run_execute(*, run_id: int) -> ImportRun | None:
    """Run a queued import to the end and record its outcome; the file's text is cleared.

    A run that is no longer queued (a task delivered twice, a run found abandoned) is left
    as it is: one upload, one import. Whatever happens, the run ends succeeded or failed: an
    unexpected error fails it with that error (the imports write in one transaction, so
    nothing of it was written). None if the run no longer exists.
    """
    now = timezone.now()
    claimed = ImportRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, progress_at=now
    )
    run = ImportRun.objects.select_related("outlet", "requested_by").filter(pk=run_id).first()
    if not claimed or run is None:
        return run
    recorder = _Recorder(run_id)
    try:
        with beating(recorder.beat, every=PROGRESS_SECONDS):
            result = _import(run, recorder)
    except ImportFileError as exc:
        return _finish(run, None, error=str(exc), errors=exc.errors)
    except CatalogError as exc:
        return _finish(run, None, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a run must never stay "running"
        logger.exception("import run %s failed", run_id)
        return _finish(
            run,
            None,
            error=f"The import stopped on an unexpected error ({type(exc).__name__}: {exc}). "
            "It writes all or nothing, so nothing was written. Try again; if it happens again, "
            "tell an administrator.",
        )
    return _finish(run, result)


def _import(run: ImportRun, recorder: "_Recorder") -> ImportResult:
    # Read through a bytes buffer, decoded as it goes: a StringIO would hold the file as four
    # bytes a character. The text itself is let go of: the file is held once.
    data, run.text = run.text.encode("utf-8"), ""
    stream = text_stream(io.BytesIO(data))
    if run.kind == Kind.CATALOG:
        return catalog_csv_import(
            stream=stream, partial=run.partial, dry_run=run.dry_run, on_progress=recorder
        )
    return stock_csv_import(
        stream=stream,
        outlet_code=run.outlet.code if run.outlet else None,
        reference=run.file_name,
        actor=Actor.of_user(run.requested_by),
        partial=run.partial,
        dry_run=run.dry_run,
        on_progress=recorder,
    )


def refused(result: ImportResult, *, partial: bool) -> bool:
    """True when bad rows kept the file (or, in a dry run, would keep it) from being written:
    some bad row without `partial`, or every row bad (as the import commands judge it)."""
    if not result.errors:
        return False
    return not partial or len(result.errors) == result.rows


def _finish(
    run: ImportRun,
    result: ImportResult | None,
    *,
    error: str = "",
    errors: Sequence[RowError] = (),
) -> ImportRun:
    """Record the outcome, whatever the run's status now: the import's own account is the
    truth, even over a run shown as abandoned meanwhile."""
    bad = list(result.errors if result is not None else errors)
    failed = result is None or refused(result, partial=run.partial)
    values: dict[str, Any] = {
        "status": Status.FAILED if failed else Status.SUCCEEDED,
        "finished_at": timezone.now(),
        "progress_at": timezone.now(),
        "stage": "",
        "text": "",
        "summary": _summary(result) if result is not None else {},
        "errors": [list(row) for row in bad[:ERRORS_KEPT]],
        "errors_total": len(bad),
        "error": error,
    }
    if result is not None:
        values["rows_total"] = values["rows_done"] = result.rows
    ImportRun.objects.filter(pk=run.pk).update(**values)
    for name, value in values.items():
        setattr(run, name, value)
    return run


def _summary(result: ImportResult) -> dict[str, Any]:
    return {
        "rows": result.rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "written": result.written,
        "dry_run": result.dry_run,
        "other": dict(result.other),
    }


class _Recorder:
    """The import's progress callback, and the heartbeat that writes it to the run.

    The import calls it once per chunk of rows; `beat`, called every PROGRESS_SECONDS by
    omni.leases.beating from a thread with its own database connection, writes the latest
    state if it moved (one UPDATE), or the time alone every HEARTBEAT_SECONDS. Its own
    connection, because the import writes in one transaction: what it wrote on the import's
    connection would be seen by no one before the commit. Rows are the file's rows in every
    stage: the writing stage's units (products, variants, images) are scaled to them.
    """

    def __init__(self, run_id: int) -> None:
        self.run = ImportRun.objects.filter(pk=run_id, status=Status.RUNNING)
        self.rows: int | None = None  # the file's rows, once read
        self.state: tuple[str, int, int | None, datetime | None] = ("", 0, None, None)
        self.written: tuple[str, int, int | None, datetime | None] | None = None
        self.written_at = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        rows_total: int | None = None
        if stage == Stage.CHECKING:
            self.rows = rows_total = total
        elif stage == Stage.WRITING:
            rows_total = self.rows
            done = round(done / total * (self.rows or 0)) if total else (self.rows or 0)
        started = self.state[3] if stage == self.state[0] else timezone.now()
        self.state = (stage, done, rows_total, started)

    def beat(self) -> bool:
        """Write the progress if it moved; False once the run is no longer running."""
        state = self.state
        if state == self.written and time.monotonic() - self.written_at < HEARTBEAT_SECONDS:
            return True
        stage, done, total, started = state
        try:
            updated = self.run.update(
                stage=stage,
                rows_done=done,
                rows_total=total,
                stage_started_at=started,
                progress_at=timezone.now(),
            )
        except DatabaseError:  # SQLite: the import's transaction holds the file; next beat
            logger.debug("import progress not written", exc_info=True)
            return True
        self.written, self.written_at = state, time.monotonic()
        return bool(updated)


# --- runs that lost their worker -------------------------------------------------------------


def import_runs_abandon_stale(*, pks: Sequence[int] | None = None) -> int:
    """Mark failed the runs that have lost their worker: running with no sign of life for
    RUNNING_STALE, or queued and never started for QUEUED_STALE. Their text is cleared.
    Called when runs are shown. Two UPDATEs; `pks` narrows them to these runs.
    """
    now = timezone.now()
    runs = ImportRun.objects.filter(status__in=OPEN)
    if pks is not None:
        runs = runs.filter(pk__in=list(pks))
    silent = Q(progress_at__lt=now - RUNNING_STALE) | Q(
        progress_at__isnull=True, started_at__lt=now - RUNNING_STALE
    )
    abandoned = runs.filter(silent, status=Status.RUNNING).update(
        status=Status.FAILED,
        finished_at=now,
        stage="",
        text="",
        error="Abandoned: its worker stopped answering in the middle of the import (was the "
        "worker stopped, or did the import take longer than a task may?). The import writes "
        "all or nothing: upload the file again.",
    )
    return abandoned + runs.filter(status=Status.QUEUED, created_at__lt=now - QUEUED_STALE).update(
        status=Status.FAILED,
        finished_at=now,
        text="",
        error="Abandoned: no worker started it (is the worker running?). Nothing was written; "
        "upload the file again.",
    )
