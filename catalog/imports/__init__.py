"""CSV imports: products with their variants, and inventory levels.

Both imports read a text stream (an upload, a file on disk, a StringIO), so the admin, the
management commands, the benchmark and the tests share one code path. Both check every row
before writing anything and report bad rows by their line in the file. By default a file with a
bad row writes nothing; with `partial=True` the good rows are written and the bad ones reported.
A row that csv cannot read (a quote never closed) refuses the whole file even then, because the
rows after it may belong to it; reading goes on from its next line, so the refusal still lists
every other bad row.

Writes are in bulk: a fixed number of queries per few thousand rows, never one per row. On
PostgreSQL new rows go in through COPY and updates through a temporary table (omni.bulk),
because Django's bulk_create/bulk_update spend most of their time preparing each value in
Python.

The modules: `reading` reads the file and parses its cells, `catalog` is the catalog import,
`stock` the stock import, `runs` runs an import uploaded in the admin on a worker, recording
its progress and outcome in an ImportRun. The names the rest of omni uses are imported here.
"""

from catalog.imports.catalog import CATALOG_COLUMNS, catalog_csv_import
from catalog.imports.reading import (
    Column,
    ImportFileError,
    ImportResult,
    ProgressCallback,
    RowError,
    text_stream,
)
from catalog.imports.runs import (
    ERRORS_KEPT,
    import_file_check,
    import_run_execute,
    import_run_request,
    import_runs_abandon_stale,
    upload_text,
)
from catalog.imports.stock import STOCK_COLUMNS, stock_csv_import

__all__ = [
    "CATALOG_COLUMNS",
    "ERRORS_KEPT",
    "STOCK_COLUMNS",
    "Column",
    "ImportFileError",
    "ImportResult",
    "ProgressCallback",
    "RowError",
    "catalog_csv_import",
    "import_file_check",
    "import_run_execute",
    "import_run_request",
    "import_runs_abandon_stale",
    "stock_csv_import",
    "text_stream",
    "upload_text",
]
