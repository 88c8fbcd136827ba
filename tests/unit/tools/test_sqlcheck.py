import resource
import sqlite3
import time
from pathlib import Path

import pytest

from failforward.tools.records import Item
from failforward.tools.verify.sqlcheck import run_readonly, same_rows
from failforward.tools.verify.verifiers import sql_verifier


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "trials.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trials (id INTEGER, phase TEXT, enrolled INTEGER)")
        db.executemany(
            "INSERT INTO trials VALUES (?, ?, ?)",
            [(1, "I", 20), (2, "II", 150), (3, "II", 90), (4, "III", None)],
        )
    return path


def test_right_and_wrong_answers(database):
    verify = sql_verifier(database)
    gold = Item(
        question="How many phase II trials?",
        answer="SELECT COUNT(*) FROM trials WHERE phase = 'II'",
    )
    assert verify("SELECT count(id) FROM trials WHERE phase='II'", gold).score == 1.0
    assert verify("SELECT COUNT(*) FROM trials", gold).reason == "mismatch"
    assert verify("SELEC nonsense", gold).reason == "sql_error"


def test_order_matters_only_when_asked(database):
    verify = sql_verifier(database)
    unordered = Item(question="q", answer="SELECT id FROM trials ORDER BY id")
    ordered = Item(
        question="q", answer="SELECT id FROM trials ORDER BY id", metadata={"ordered": True}
    )
    answer = "SELECT id FROM trials ORDER BY id DESC"
    assert verify(answer, unordered).score == 1.0
    assert verify(answer, ordered).reason == "mismatch"


def test_nulls_compare_equal(database):
    gold = Item(question="q", answer="SELECT enrolled FROM trials WHERE id = 4")
    assert (
        sql_verifier(database)("SELECT enrolled FROM trials WHERE phase = 'III'", gold).score == 1.0
    )


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM trials",
        "UPDATE trials SET enrolled = 0",
        "INSERT INTO trials VALUES (9, 'IV', 1)",
        "DROP TABLE trials",
        "CREATE TABLE x (a)",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA writable_schema = 1",
        "SELECT 1; DELETE FROM trials",
    ],
)
def test_writes_and_attaches_are_refused_and_change_nothing(database, sql):
    assert run_readonly(database, sql).reason == "sql_refused"
    assert run_readonly(database, "SELECT COUNT(*) FROM trials").rows == [(4,)]


def test_long_queries_are_stopped(database):
    endless = (
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT COUNT(*) FROM r"
    )
    assert run_readonly(database, endless, timeout=0.5).reason == "sql_timeout"


def test_same_rows_rounds_floats():
    assert same_rows([(0.1 + 0.2,)], [(0.3,)])
    assert not same_rows([(1,), (1,)], [(1,)])


BOMBS = {
    "randomblob": "SELECT length(randomblob(900000000))",
    "printf width": "SELECT length(printf('%.*c', 1000000000, 'x'))",
    "zeroblob": "SELECT length(zeroblob(2000000000))",
    "replace amplification": (
        "SELECT length(replace(replace(replace(replace(hex(randomblob(5000)), 'A', "
        "hex(randomblob(50))), 'B', hex(randomblob(50))), 'C', hex(randomblob(50))), 'D', "
        "hex(randomblob(50))))"
    ),
    "group_concat over a long CTE": (
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r LIMIT 100000000) "
        "SELECT length(group_concat(hex(randomblob(64)))) FROM r"
    ),
    "two long calls in one step": (
        "SELECT length(printf('%.*c', 1000000000, 'x')) + length(printf('%.*c', 1000000000, 'x'))"
        " + length(printf('%.*c', 1000000000, 'x'))"
    ),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_single_call_bombs_are_refused_or_stopped_in_time(database, name):
    from failforward.tools.verify import sqlcheck

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = run_readonly(database, BOMBS[name], timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.reason in ("sql_error", "sql_timeout"), result
    assert elapsed < 0.5 + sqlcheck.GRACE_SECONDS + 0.5
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 50 << 10  # the query's memory is never the verifying process's
    worker = sqlcheck._worker._process
    if worker is not None:  # still alive: its peak stays under its address-space limit
        peak = next(
            line
            for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines()
            if line.startswith("VmHWM")
        )
        assert int(peak.split()[1]) < sqlcheck.WORKER_MEMORY_MB << 10
    assert run_readonly(database, "SELECT COUNT(*) FROM trials").rows == [(4,)]


def test_a_call_past_the_deadline_is_killed_and_the_next_query_gets_a_new_worker(database):
    from failforward.tools.verify import sqlcheck

    run_readonly(database, "SELECT 1")
    first = sqlcheck._worker._process.pid
    result = run_readonly(database, BOMBS["two long calls in one step"], timeout=0.2)
    assert result.reason == "sql_timeout" and "killed" in result.detail
    assert run_readonly(database, "SELECT id FROM trials WHERE id = 1").rows == [(1,)]
    assert sqlcheck._worker._process.pid != first


def test_values_of_every_type_come_back_as_sqlite_gave_them(database):
    rows = run_readonly(database, "SELECT x'00ff', 1.5, NULL, 'a', 7, 1e999").rows
    assert rows == [(b"\x00\xff", 1.5, None, "a", 7, float("inf"))]
