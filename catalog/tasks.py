"""django-q2 entry points of the catalog: take ids, call one service, report a line."""

from catalog.imports import import_run_execute


def import_run(run_id: int) -> str:
    run = import_run_execute(run_id=run_id)
    if run is None:
        return f"import {run_id}: no such run"
    summary = run.summary
    return (
        f"import {run_id} {run.status}: rows={summary.get('rows', 0)} "
        f"created={summary.get('created', 0)} updated={summary.get('updated', 0)} "
        f"bad={run.errors_total}"
    )
