"""Print the DATABASE_URL the test suite should use, and say on stderr which one it is.

DATABASE_URL when set; otherwise PostgreSQL on 127.0.0.1:5432 when it answers; otherwise SQLite.
"""

import os
import sys

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/test"


def choose() -> tuple[str, str]:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], "DATABASE_URL from the environment"
    try:
        import psycopg

        psycopg.connect(
            LOCAL_POSTGRES.replace("postgres://", "postgresql://"), connect_timeout=2
        ).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no local PostgreSQL"
        return (
            "sqlite:///var/test.sqlite3",
            f"SQLite (no PostgreSQL on 127.0.0.1:5432: {type(exc).__name__})",
        )
    return LOCAL_POSTGRES, "PostgreSQL on 127.0.0.1:5432"


if __name__ == "__main__":
    url, why = choose()
    scheme = url.split(":", 1)[0]
    sys.stderr.write(f"Tests use {scheme}: {why}\n")
    sys.stdout.write(url)
