"""Executing untrusted SQL read-only, bounded in size, memory and time; comparing result sets.

A query never runs in the caller's process. It goes to a worker, a separate bare interpreter
(``-I -S``: the standard library only) started once and reused, whose address space is limited
to :data:`WORKER_MEMORY_MB`. In the worker:

- the connection is opened read-only (``mode=ro``) and an authorizer allows reading and nothing
  else (no writes, no ATTACH, no PRAGMA, no schema changes); one statement only;
- SQLite's own limits keep every value small: no string or blob over :data:`MAX_VALUE_BYTES`
  (``randomblob``, ``zeroblob``, ``printf`` widths, ``replace`` and ``group_concat`` growth stop
  with "string or blob too big"), no statement text over 100,000 bytes;
- a progress handler interrupts a statement past its deadline between SQLite steps, and a
  statement that finishes past it is answered ``sql_timeout`` all the same.

One long function call could still outrun the progress handler; the caller waits for the reply
at most the deadline plus :data:`GRACE_SECONDS`, then kills the worker (the next query starts a
fresh one) and answers ``sql_timeout``. A worker that dies (memory) answers ``sql_error``.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import select
import signal
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from failforward.tools.verify.sandbox import base_interpreter

MAX_VALUE_BYTES = 1_000_000
WORKER_MEMORY_MB = 512
GRACE_SECONDS = 1.0

_WORKER = r"""
import json, sqlite3, sys, time

ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
           getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
LIMITS = {sqlite3.SQLITE_LIMIT_LENGTH: int(sys.argv[1]), sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,
          sqlite3.SQLITE_LIMIT_ATTACHED: 0}

def value(v):
    return {"blob": v.hex()} if isinstance(v, bytes) else v

def run(request):
    connection = sqlite3.connect("file:" + request["database"] + "?mode=ro", uri=True)
    for limit, size in LIMITS.items():
        connection.setlimit(limit, size)
    refused = []

    def authorize(action, arg1, arg2, db_name, source):
        if action in ALLOWED:
            return sqlite3.SQLITE_OK
        refused.append(f"action {action} ({arg1 or ''})")
        return sqlite3.SQLITE_DENY

    deadline = time.monotonic() + request["timeout"]
    connection.set_authorizer(authorize)
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = connection.execute(request["sql"]).fetchmany(request["max_rows"] + 1)
    except sqlite3.DatabaseError as err:
        text = str(err)
        if refused:
            return {"reason": "sql_refused", "detail": "not a read-only query: " + refused[0]}
        if "one statement at a time" in text or "not authorized" in text:
            return {"reason": "sql_refused", "detail": text[:200]}
        if "interrupted" in text:
            return {"reason": "sql_timeout", "detail": f"stopped after {request['timeout']:.1f}s"}
        return {"reason": "sql_error", "detail": text[:200]}
    except (MemoryError, OverflowError, ValueError) as err:
        return {"reason": "sql_error", "detail": (type(err).__name__ + ": " + str(err))[:200]}
    finally:
        connection.close()
    if time.monotonic() > deadline:  # one long function call the progress handler never saw
        return {"reason": "sql_timeout", "detail": f"finished after {request['timeout']:.1f}s"}
    return {"reason": "ok", "rows": [[value(v) for v in row] for row in rows]}

for line in sys.stdin:
    reply = run(json.loads(line))
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


@dataclass
class SqlResult:
    reason: str  # ok | sql_refused | sql_timeout | sql_error
    rows: list[tuple] | None
    detail: str = ""


class _Worker:
    """The query process: started on first use, replaced after it is killed or dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._pid_of_owner = 0

    def ask(self, request: dict, wait: float) -> dict | None:
        """The worker's reply, or ``None`` if none came within ``wait`` seconds (it is killed)."""
        with self._lock:
            process = self._running()
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                ready, _, _ = select.select([process.stdout], [], [], wait)
                line = process.stdout.readline() if ready else ""
            except (BrokenPipeError, OSError):
                line = ""
            if line:
                return json.loads(line)
            self.stop()
            return {"died": True} if ready else None

    def _running(self) -> subprocess.Popen:
        alive = self._process is not None and self._process.poll() is None
        if not alive or self._pid_of_owner != os.getpid():
            self._process = subprocess.Popen(
                [base_interpreter(), "-I", "-S", "-c", _WORKER, str(MAX_VALUE_BYTES)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={},
                preexec_fn=_limit_memory,
                text=True,
            )
            self._pid_of_owner = os.getpid()
        return self._process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and self._pid_of_owner == os.getpid():
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                stream.close()


def _limit_memory() -> None:  # runs in the worker between fork and exec
    size = WORKER_MEMORY_MB << 20
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the run, which stops the worker


_worker = _Worker()
atexit.register(_worker.stop)


def run_readonly(
    database: Path, sql: str, timeout: float = 2.0, max_rows: int = 10_000
) -> SqlResult:
    """Rows of ``sql`` on ``database``, or why there are none.

    Example:
        >>> run_readonly(db, "DELETE FROM trials").reason          # doctest: +SKIP
        'sql_refused'
    """
    request = {
        "database": str(Path(database).resolve()),
        "sql": sql,
        "timeout": timeout,
        "max_rows": max_rows,
    }
    reply = _worker.ask(request, timeout + GRACE_SECONDS)
    if reply is None:
        return SqlResult("sql_timeout", None, f"killed after {timeout + GRACE_SECONDS:.1f}s")
    if reply.get("died"):
        return SqlResult("sql_error", None, "the query's process died (out of memory?)")
    if reply["reason"] != "ok":
        return SqlResult(reply["reason"], None, reply["detail"])
    rows = [tuple(_value(v) for v in row) for row in reply["rows"]]
    if len(rows) > max_rows:
        return SqlResult("sql_error", None, f"more than {max_rows} rows")
    return SqlResult("ok", rows)


def _value(v):
    return bytes.fromhex(v["blob"]) if isinstance(v, dict) else v


def same_rows(got: list[tuple], want: list[tuple], ordered: bool = False) -> bool:
    """Result sets equal as multisets (or as sequences when order matters), floats rounded."""
    got, want = [_normal(r) for r in got], [_normal(r) for r in want]
    return got == want if ordered else Counter(got) == Counter(want)


def _normal(row: tuple) -> tuple:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in row)
