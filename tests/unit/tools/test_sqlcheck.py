import sqlite3

import pytest

from agents.schemas import Item
from tools.sqlcheck import run_readonly, same_rows
from tools.verifiers import sql_verifier


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
