"""What the isolation costs: programs and SQL queries per second, side by side in one run.

    .venv/bin/python benchmarks/sandbox_speed.py            # 100 programs, 2,000 queries, 3 rounds

Programs: the same small program-of-thought (``answer = <expression>``) through
:func:`tools.verify.sandbox.run_python` (bubblewrap, seccomp, setuid, audit hook) and, as the
floor any process-per-program design pays, through a bare ``python -I -S`` subprocess with no
isolation (this script's own trusted program; nothing untrusted runs bare). Queries: a gold query of
the sql pack through :func:`tools.verify.sqlcheck.run_readonly` (the worker process) and through an
in-process read-only ``sqlite3`` connection, as the verifier ran them before the worker. Rounds
alternate the two sides so machine noise falls on both; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from failforward.tools.verify.sandbox import base_interpreter, isolation, run_python
from failforward.tools.verify.sqlcheck import run_readonly

PROGRAM = "answer = 12 * (7 + 5) - 3"
DATABASE = Path(__file__).resolve().parents[1] / "prompts" / "sql" / "clinical.db"
QUERY = (
    "SELECT s.city, COUNT(*) FROM sites s JOIN trial_sites ts ON ts.site_id = s.site_id "
    "GROUP BY s.city ORDER BY s.city"
)


def bare_program() -> None:
    subprocess.run(
        [base_interpreter(), "-I", "-S", "-c", "exec(input())"],
        input=PROGRAM,
        text=True,
        capture_output=True,
        check=True,
        env={},
    )


def in_process_query() -> None:
    connection = sqlite3.connect(f"file:{DATABASE}?mode=ro", uri=True)
    try:
        connection.execute(QUERY).fetchall()
    finally:
        connection.close()


def rate(action, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        action()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(isolation().tool, "| seccomp", "on" if isolation().seccomp else "off")
    assert run_python(PROGRAM).value == "141"
    assert run_readonly(DATABASE, QUERY).reason == "ok", run_readonly(DATABASE, QUERY)
    sides = {
        "programs, sandboxed": lambda: run_python(PROGRAM),
        "programs, bare subprocess": bare_program,
        "queries, worker process": lambda: run_readonly(DATABASE, QUERY),
        "queries, in-process": in_process_query,
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, action in sides.items():
            rates[name].append(rate(action, args.programs if "program" in name else args.queries))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"{name:<28}{value:>9.0f}/s  (rounds: {', '.join(f'{v:.0f}' for v in rates[name])})")
    programs = medians["programs, sandboxed"] / medians["programs, bare subprocess"]
    queries = medians["queries, worker process"] / medians["queries, in-process"]
    print(f"sandboxed / bare programs: {programs:.2f}x; worker / in-process SQL: {queries:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
