"""Programmatic scoring: the only judge of whether an answer is right (never an LLM).

A verifier is ``(answer, reference_item) -> score in [0, 1]``. A solver recomputes the reference
answer of a question a teacher wrote, so that an LLM's claimed answer can be checked rather than
trusted.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from fractions import Fraction

from agents.schemas import Item

Verifier = Callable[[str, Item], float]
Solver = Callable[[str], str | None]

VERIFIER_NAMES = ("reasoning_gym", "numeric", "exact")
SOLVER_NAMES = ("arithmetic_expression",)


def extract_answer(text: str, pattern: str, pick: str = "last") -> str:
    """The part of a student reply that is its answer: the first/last match of ``pattern``.

    Example:
        >>> extract_answer("The answer to 4 - 1 is 3.", r"-?\\d+")
        '3'
    """
    matches = re.findall(pattern, text)
    if not matches:
        return ""
    match = matches[-1] if pick == "last" else matches[0]
    return (match if isinstance(match, str) else next(m for m in match if m)).strip()


def parse_number(text: str) -> Fraction | None:
    """``"1,000"``, ``"1e3"``, ``"-0"``, ``"3/4"`` and ``"2.50"`` as exact fractions; else None."""
    cleaned = text.strip().replace(",", "").replace(" ", "").rstrip(".")
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        try:
            return Fraction(float(cleaned))
        except (ValueError, OverflowError):
            return None


def numeric(answer: str, item: Item) -> float:
    got, want = parse_number(answer), parse_number(item.answer)
    return float(got is not None and want is not None and got == want)


def exact(answer: str, item: Item) -> float:
    return float(" ".join(answer.split()).lower() == " ".join(item.answer.split()).lower())


def make_verifier(name: str, source=None) -> Verifier:
    """The verifier called ``name``; ``reasoning_gym`` scores with the source's own scorer."""
    if name == "reasoning_gym":
        if source is None or not hasattr(source, "score"):
            raise ValueError("verifier 'reasoning_gym' needs a reasoning-gym eval source")
        return source.score
    if name == "numeric":
        return numeric
    if name == "exact":
        return exact
    raise ValueError(f"unknown verifier {name!r}; choose one of {', '.join(VERIFIER_NAMES)}")


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def arithmetic_expression(question: str) -> str | None:
    """Recompute the answer of ``"... : 12 + 7 - 3 ="``-style questions, or None if not one.

    Only numbers, + - * / and parentheses are evaluated (an AST walk, never ``eval``).

    Example:
        >>> arithmetic_expression("State the final answer: 98 + 93 - 77 =")
        '114'
    """
    match = re.search(r"([-\d\s+*/().]+)=\s*\??\s*$", question.strip())
    if not match or not re.search(r"\d", match.group(1)):
        return None
    try:
        value = _evaluate(ast.parse(match.group(1).strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None
    return str(value.numerator) if value.denominator == 1 else str(value)


def _evaluate(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"not plain arithmetic: {ast.dump(node)[:60]}")


def make_solver(name: str | None) -> Solver | None:
    if name is None:
        return None
    if name == "arithmetic_expression":
        return arithmetic_expression
    raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVER_NAMES)}")
