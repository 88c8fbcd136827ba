"""Executing untrusted SQL read-only, with a time limit, and comparing result sets.

The connection is opened read-only (``mode=ro``), an authorizer allows reading and nothing else
(no writes, no ATTACH, no PRAGMA, no schema changes), and a progress handler aborts a statement
that runs past its deadline. Only one statement is executed.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


@dataclass
class SqlResult:
    reason: str  # ok | sql_refused | sql_timeout | sql_error
    rows: list[tuple] | None
    detail: str = ""


def run_readonly(
    database: Path, sql: str, timeout: float = 2.0, max_rows: int = 10_000
) -> SqlResult:
    """Rows of ``sql`` on ``database``, or why there are none.

    Example:
        >>> run_readonly(db, "DELETE FROM trials").reason          # doctest: +SKIP
        'sql_refused'
    """
    connection = sqlite3.connect(f"file:{Path(database).resolve()}?mode=ro", uri=True)
    refused: list[str] = []

    def authorize(action, arg1, arg2, db_name, source):
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        refused.append(f"action {action} ({arg1 or ''})")
        return sqlite3.SQLITE_DENY

    deadline = time.monotonic() + timeout
    connection.set_authorizer(authorize)
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = connection.execute(sql).fetchmany(max_rows + 1)
    except sqlite3.DatabaseError as err:
        if refused:
            return SqlResult("sql_refused", None, f"not a read-only query: {refused[0]}")
        if "one statement at a time" in str(err) or "not authorized" in str(err):
            return SqlResult("sql_refused", None, str(err)[:200])
        if "interrupted" in str(err):
            return SqlResult("sql_timeout", None, f"stopped after {timeout:.1f}s")
        return SqlResult("sql_error", None, str(err)[:200])
    finally:
        connection.close()
    if len(rows) > max_rows:
        return SqlResult("sql_error", None, f"more than {max_rows} rows")
    return SqlResult("ok", rows)


def same_rows(got: list[tuple], want: list[tuple], ordered: bool = False) -> bool:
    """Result sets equal as multisets (or as sequences when order matters), floats rounded."""
    got, want = [_normal(r) for r in got], [_normal(r) for r in want]
    return got == want if ordered else Counter(got) == Counter(want)


def _normal(row: tuple) -> tuple:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in row)
