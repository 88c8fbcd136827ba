"""Short, checkable worked solutions for reasoning-gym items, built from their metadata.

A student learns more from a short trace that ends in the answer than from the bare answer. For
the datasets below the item's metadata holds what a trace needs (the expression, the numbers, the
words, the animals); :func:`worked_solution` writes one step a line and returns it only when its
last value is the item's answer, so a trace never teaches a wrong step. A pack opts in with
``student.completion: solution``: the student is then trained on the trace and the answer on its
own last line (:meth:`tools.packs.pack.Pack.completion`).

Example:
    >>> print(worked_solution("chain_sum", {"expression": "57 + 87 - 70"}, "74"))
    57 + 87 = 144
    144 - 70 = 74
    >>> print(worked_solution("products", {"expression": "23 * 64"}, "1472"))
    23 * 64 = 23 * 60 + 23 * 4 = 1380 + 92 = 1472
    >>> print(worked_solution("lcm", {"numbers": [76, 70]}, "2660"))
    gcd(76, 70) = 2
    76 * 70 / 2 = 2660
    >>> worked_solution("chain_sum", {"expression": "1 + 1"}, "3")  # a wrong trace is dropped
    ''
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

_NUMBER = re.compile(r"-?\d+")


def _sums(meta: dict[str, Any]) -> list[str]:
    """Left to right over + and - (an expression with anything else gets no trace)."""
    tokens = str(meta.get("expression", "")).split()
    if len(tokens) < 3 or len(tokens) % 2 == 0 or any(t not in "+-" for t in tokens[1::2]):
        return []
    if not all(_NUMBER.fullmatch(t) for t in tokens[::2]):
        return []
    total, lines = int(tokens[0]), []
    for op, value in zip(tokens[1::2], tokens[2::2], strict=True):
        after = total + int(value) if op == "+" else total - int(value)
        lines.append(f"{total} {op} {value} = {after}")
        total = after
    return lines


def _product(a: int, b: int) -> str:
    """``a * b``, splitting the second factor into tens and ones when it has two digits."""
    if abs(b) < 10 or abs(b) >= 100 or b % 10 == 0:
        return f"{a} * {b} = {a * b}"
    tens, ones = b - b % 10, b % 10
    return f"{a} * {b} = {a} * {tens} + {a} * {ones} = {a * tens} + {a * ones} = {a * b}"


def _products(meta: dict[str, Any]) -> list[str]:
    factors = [t for t in str(meta.get("expression", "")).split() if t != "*"]
    if len(factors) < 2 or not all(_NUMBER.fullmatch(f) for f in factors):
        return []
    lines, total = [], int(factors[0])
    for factor in factors[1:]:
        lines.append(_product(total, int(factor)))
        total *= int(factor)
    return lines


def _euclid(a: int, b: int) -> list[str]:
    lines = []
    while b:
        lines.append(f"{a} = {a // b} * {b} + {a % b}")
        a, b = b, a % b
    return lines


def _numbers(meta: dict[str, Any]) -> list[int]:
    """The item's numbers when there are two or more, all positive (else none)."""
    numbers = [int(n) for n in meta.get("numbers", [])]
    return numbers if len(numbers) >= 2 and min(numbers) > 0 else []


def _gcd(meta: dict[str, Any]) -> list[str]:
    """Euclid's steps for each pair, folding left: gcd(gcd(a, b), c)."""
    numbers = _numbers(meta)
    lines, found = [], numbers[0] if numbers else 0
    for n in numbers[1:]:
        lines += [
            *_euclid(max(found, n), min(found, n)),
            f"gcd({found}, {n}) = {math.gcd(found, n)}",
        ]
        found = math.gcd(found, n)
    return lines


def _lcm(meta: dict[str, Any]) -> list[str]:
    """lcm(a, b) = a * b / gcd(a, b) for each pair, folding left."""
    numbers = _numbers(meta)
    lines, found = [], numbers[0] if numbers else 0
    for n in numbers[1:]:
        divisor = math.gcd(found, n)
        lines += [
            f"gcd({found}, {n}) = {divisor}",
            f"{found} * {n} / {divisor} = {found * n // divisor}",
        ]
        found = found * n // divisor
    return lines


def _letters(meta: dict[str, Any]) -> list[str]:
    letter, words = str(meta.get("target_letter", "")), meta.get("span") or []
    if len(letter) != 1 or not words:
        return []
    counts = [f"{word}: {str(word).lower().count(letter)}" for word in words]
    total = sum(str(word).lower().count(letter) for word in words)
    return [*counts, f"total: {total}"]


def _legs(meta: dict[str, Any]) -> list[str]:
    from reasoning_gym.arithmetic.leg_counting import ANIMALS

    animals = meta.get("animals") or {}
    if not animals or any(name not in ANIMALS for name in animals):
        return []
    lines = [
        f"{n} {name}: {n} * {ANIMALS[name]} = {n * ANIMALS[name]}" for name, n in animals.items()
    ]
    total = sum(n * ANIMALS[name] for name, n in animals.items())
    return [*lines, f"total: {total}"]


TRACES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "chain_sum": _sums,
    "products": _products,
    "gcd": _gcd,
    "lcm": _lcm,
    "letter_counting": _letters,
    "leg_counting": _legs,
}


def worked_solution(dataset: str, metadata: dict[str, Any], answer: str) -> str:
    """A short trace for the item, one step a line, or ``""`` where the dataset has no trace
    builder or the trace's last number is not ``answer``."""
    build = TRACES.get(dataset)
    lines = build(metadata) if build else []
    if not lines:
        return ""
    last = _NUMBER.findall(lines[-1])
    return "\n".join(lines) if last and last[-1] == str(answer).strip() else ""
