from fractions import Fraction

import pytest

from failforward.tools.packs.sources import ReasoningGymSource
from failforward.tools.records import Item
from failforward.tools.verify.verifiers import (
    Unverifiable,
    arithmetic_expression,
    exact,
    extract_answer,
    make_solver,
    make_verifier,
    numeric,
    parse_number,
    python_program,
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("The final answer is 17.", "17"),
        ("-4", "-4"),
        ("3 + 4 is 7", "7"),
        ("I do not know", ""),
        ("", ""),
    ],
)
def test_extract_last_integer(reply, expected):
    assert extract_answer(reply, r"-?\d+") == expected


def test_extract_first():
    assert extract_answer("12 then 13", r"-?\d+", pick="first") == "12"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,000", 1000), ("1e3", 1000), ("-0", 0), ("3/4", Fraction(3, 4)), ("2.50", Fraction(5, 2))],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_parse_number_rejects_words():
    assert parse_number("seven") is None


def test_numeric_and_exact():
    item = Item(question="q", answer="1000")
    assert numeric("1,000", item).score == 1.0 and numeric("999", item).reason == "mismatch"
    assert exact(" Paris ", Item(question="q", answer="paris")).score == 1.0


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("State the final answer to the following arithmetic problem: 98 + 93 - 77 =", "114"),
        ("What is 5 - 9 =", "-4"),
        ("Compute (2 + 3) * 4 =", "20"),
        ("1 / 4 + 1 / 4 =", "1/2"),
    ],
)
def test_arithmetic_solver(question, answer):
    assert arithmetic_expression(question) == answer


@pytest.mark.parametrize(
    "question", ["What is the capital of France?", "__import__('os') =", "1 / 0 ="]
)
def test_arithmetic_solver_refuses(question):
    assert arithmetic_expression(question) is None


def test_reasoning_gym_verifier_uses_dataset_scorer():
    source = ReasoningGymSource("chain_sum", {"min_terms": 2, "max_terms": 2})
    item = source.sample(1, seed=3)[0]
    verify = make_verifier("reasoning_gym", source)
    assert verify(item.answer, item) == (1.0, "match", "")
    assert verify(str(int(item.answer) + 1), item).reason == "mismatch"


def test_unknown_verifier():
    with pytest.raises(ValueError, match="unknown verifier"):
        make_verifier("vibes")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("nan", "unparseable"),
        ("NaN", "unparseable"),
        ("inf", "unparseable"),
        ("-Infinity", "unparseable"),
        ("1e999999999", "unparseable"),  # would be a 10**999999999 Fraction: refused, not computed
        ("9" * 5000, "unparseable"),
        ("", "unparseable"),
        ("12abc", "unparseable"),
        ("13", "mismatch"),
    ],
)
def test_numeric_hostile_answers_are_handled(answer, reason):
    check = numeric(answer, Item(question="q", answer="12"))
    assert (check.score, check.reason) == (0.0, reason)


@pytest.mark.parametrize("answer", ["١٢", "１２", "12.0", "1.2e1", "24/2", "\u221212"])
def test_numeric_unicode_and_forms(answer):
    want = "-12" if answer.startswith("\u2212") else "12"
    assert numeric(answer, Item(question="q", answer=want)).score == 1.0


def test_numeric_tolerance():
    item = Item(question="q", answer="0.3")
    assert numeric("0.30000000001", item).score == 1.0
    assert numeric("0.3001", item).score == 0.0
    assert numeric("0.3001", item, rel_tol=1e-2).score == 1.0
    assert make_verifier("numeric", options={"rel_tol": 1e-2})("0.3001", item).score == 1.0


def test_python_program_solver():
    assert python_program("q", "```python\nanswer = sum(range(5))\n```") == "10"
    with pytest.raises(Unverifiable) as err:
        python_program("q", "while True: pass")
    assert err.value.reason == "sandbox_timeout"
    with pytest.raises(Unverifiable, match="no_program"):
        python_program("q", "")


def test_sql_solver_accepts_a_query_that_runs_and_names_every_other_outcome():
    from failforward.tools.packs.pack import PACKS_DIR

    solve = make_solver("sql_query", {"database": "clinical.db", "timeout": 0.5}, PACKS_DIR / "sql")
    good = "SELECT code FROM trials WHERE phase = 1"
    assert solve("Which trials are phase 1?", "", good) == good
    assert solve("q", "", "") is None
    outcomes = {
        "DROP TABLE trials": "sql_refused",
        "SELECT 1; DELETE FROM trials": "sql_refused",
        "ATTACH DATABASE 'x.db' AS x": "sql_refused",
        "PRAGMA table_info(trials)": "sql_refused",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n": (
            "sql_timeout"
        ),
        "SELECT * FROM no_such_table": "sql_error",
        "SELECT code FROM trials WHERE phase = 9": "sql_empty",
    }
    for sql, reason in outcomes.items():
        with pytest.raises(Unverifiable) as err:
            solve("q", "", sql)
        assert err.value.reason == reason, sql
    with pytest.raises(ValueError, match="verifier_options.database"):
        make_solver("sql_query")
