from fractions import Fraction

import pytest

from agents.schemas import Item
from tools.sources import ReasoningGymSource
from tools.verifiers import (
    arithmetic_expression,
    exact,
    extract_answer,
    make_verifier,
    numeric,
    parse_number,
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
    assert numeric("1,000", item) == 1.0 and numeric("999", item) == 0.0
    assert exact(" Paris ", Item(question="q", answer="paris")) == 1.0


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
    assert verify(item.answer, item) == 1.0
    assert verify(str(int(item.answer) + 1), item) == 0.0


def test_unknown_verifier():
    with pytest.raises(ValueError, match="unknown verifier"):
        make_verifier("vibes")
