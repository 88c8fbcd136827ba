"""Named failure features: words that say *how* a student's answer was wrong.

A pack picks the ones that fit its domain (``analyst.features`` in ``pack.yaml``); the analyst
adds them to each failure's text before embedding, so failures cluster by the mistake made and not
only by the topic of the question. Each feature is ``(expected, extracted, output, question) ->
bool``. When none of a pack's specific features fires, ``near_miss`` / ``far_off`` still grade a
numeric miss.

Example:
    >>> describe("17", "-17", "-17", "8 + 9 =", ["sign_error", "carry"])
    ['sign error']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from failforward.tools.verify.verifiers import arithmetic_expression, parse_number

Feature = Callable[[str, str, str, str], bool]


def _numbers(expected: str, extracted: str) -> tuple[Fraction, Fraction] | None:
    got, want = parse_number(extracted), parse_number(expected)
    return None if got is None or want is None else (got, want)


def empty_answer(expected: str, extracted: str, output: str, question: str) -> bool:
    return not output.strip()


def format_error(expected: str, extracted: str, output: str, question: str) -> bool:
    """The student wrote something, but no answer in the pack's form could be read from it."""
    return bool(output.strip()) and not extracted.strip()


def sign_error(expected: str, extracted: str, output: str, question: str) -> bool:
    pair = _numbers(expected, extracted)
    return pair is not None and pair[1] != 0 and pair[0] == -pair[1]


def carry(expected: str, extracted: str, output: str, question: str) -> bool:
    """Off by exactly a power of ten: a dropped or extra carry or borrow."""
    pair = _numbers(expected, extracted)
    if pair is None:
        return False
    gap = abs(pair[0] - pair[1])
    return gap in {Fraction(10**i) for i in range(1, 7)}


def wrong_operation(expected: str, extracted: str, output: str, question: str) -> bool:
    """The answer to the question with one + turned into - (or the other way round)."""
    got = parse_number(extracted)
    match = re.search(r"([-\d\s+]+)=\s*\??\s*$", question.strip())
    if got is None or not match:
        return False
    expression = match.group(1)
    for m in re.finditer(r"(?<=\d)\s*([+-])\s*(?=\d)", expression):
        flipped = "-" if m.group(1) == "+" else "+"
        variant = f"{expression[: m.start(1)]}{flipped}{expression[m.end(1) :]}="
        value = arithmetic_expression(variant)
        if value is not None and parse_number(value) == got:
            return True
    return False


def copied_operand(expected: str, extracted: str, output: str, question: str) -> bool:
    """The answer is one of the numbers in the question (the student echoed instead of working)."""
    got = parse_number(extracted)
    numbers = {parse_number(n) for n in re.findall(r"\d+", question)}
    return got is not None and got in numbers and got != parse_number(expected)


FEATURES: dict[str, tuple[str, Feature]] = {
    "empty_answer": ("empty answer", empty_answer),
    "format_error": ("format error", format_error),
    "sign_error": ("sign error", sign_error),
    "carry": ("off by a carry", carry),
    "wrong_operation": ("wrong operation", wrong_operation),
    "copied_operand": ("copied an operand", copied_operand),
}
FEATURE_NAMES = tuple(FEATURES)


def describe(
    expected: str, extracted: str, output: str, question: str, features: list[str]
) -> list[str]:
    """The descriptions of every listed feature that fires, else a numeric grade of the miss."""
    found = [
        FEATURES[name][0]
        for name in features
        if FEATURES[name][1](expected, extracted, output, question)
    ]
    if found:
        return found
    pair = _numbers(expected, extracted)
    if pair is None:
        return ["wrong answer"]
    return ["near miss"] if abs(pair[0] - pair[1]) <= 10 else ["far off"]
