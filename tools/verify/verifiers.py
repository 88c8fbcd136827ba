"""Programmatic checking: the only judge of whether an answer is right (never an LLM).

A verifier is ``(answer, reference_item) -> Check``: a score in [0, 1] and a reason code. A solver
recomputes the reference answer of a candidate from its question (and its worked solution), so
that a teacher's claimed answer is checked rather than trusted; a solver that cannot raises
:class:`Unverifiable` with its own reason code.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import unicodedata
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from failforward.tools.records import Item


class Check(NamedTuple):
    """A verifier's finding: ``score`` 1.0 is right; ``reason`` says why it is what it is."""

    score: float
    reason: str  # match | mismatch | unparseable | nonfinite | sql_* ...
    detail: str = ""


class Unverifiable(Exception):
    """A solver could not recompute the answer; ``reason`` is the verdict's reason code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


Verifier = Callable[[str, Item], Check]
# (question, solution, claimed answer) -> reference answer; None when it cannot say
Solver = Callable[[str, str, str], str | None]

MAX_NUMBER_CHARS = 64  # longer "numbers" are not answers; parsing them could take unbounded work
MAX_EXPONENT = 400


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


def _ascii_digits(text: str) -> str:
    """Unicode digits (Arabic-Indic, fullwidth, ...) and minus signs as ASCII."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def parse_number(text: str) -> Fraction | None:
    """``"1,000"``, ``"1e3"``, ``"-0"``, ``"3/4"``, ``"2.50"``, ``"٣"`` as exact fractions.

    None for anything else, including NaN, infinities, and numbers too long or too large to be an
    answer (``"1e999999"`` would otherwise cost unbounded time and memory).
    """
    cleaned = _ascii_digits(text.strip()).replace(",", "").replace(" ", "").rstrip(".")
    if not cleaned or len(cleaned) > MAX_NUMBER_CHARS:
        return None
    exponent = re.search(r"[eE]([-+]?\d+)$", cleaned)
    if exponent and abs(int(exponent.group(1))) > MAX_EXPONENT:
        return None
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        try:
            value = float(cleaned)
        except (ValueError, OverflowError):
            return None
        return Fraction(value) if math.isfinite(value) else None


def numeric(answer: str, item: Item, rel_tol: float = 1e-9, abs_tol: float = 1e-9) -> Check:
    """Numbers equal within a relative/absolute tolerance (exact for integers)."""
    got, want = parse_number(answer), parse_number(item.answer)
    if want is None:
        return Check(0.0, "unparseable", f"reference {item.answer!r} is not a number")
    if got is None:
        return Check(0.0, "unparseable", f"{answer[:40]!r} is not a finite number")
    tolerance = max(Fraction(abs_tol), Fraction(rel_tol) * abs(want))
    return Check(1.0, "match") if abs(got - want) <= tolerance else Check(0.0, "mismatch")


def exact(answer: str, item: Item) -> Check:
    """Case- and whitespace-insensitive string match (after Unicode normalisation)."""

    def norm(s: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", s).split()).lower()

    return Check(1.0, "match") if norm(answer) == norm(item.answer) else Check(0.0, "mismatch")


def reasoning_gym_verifier(source) -> Verifier:
    def verify(answer: str, item: Item) -> Check:
        score = source.score(answer, item)
        return Check(score, "match" if score >= 1.0 else "mismatch")

    return verify


def sql_verifier(database: Path, timeout: float = 2.0) -> Verifier:
    """Run the answer SQL and the reference SQL read-only; compare their result sets.

    Order matters only when the item's metadata says ``ordered: true``.
    """
    from failforward.tools.verify.sqlcheck import run_readonly, same_rows

    def verify(answer: str, item: Item) -> Check:
        want = run_readonly(database, item.answer, timeout)
        if want.rows is None:
            return Check(0.0, "unparseable", f"reference SQL failed: {want.detail}")
        got = run_readonly(database, answer, timeout)
        if got.rows is None:
            return Check(0.0, got.reason, got.detail)
        if same_rows(got.rows, want.rows, ordered=bool(item.metadata.get("ordered"))):
            return Check(1.0, "match")
        return Check(0.0, "mismatch", f"{len(got.rows)} rows, expected {len(want.rows)}")

    return verify


def skill_verifier(by_skill: dict[str, Verifier]) -> Verifier:
    """Checks each item with the verifier of its skill (``metadata.skill``); an item of no known
    skill is unparseable, not silently right or wrong."""

    def verify(answer: str, item: Item) -> Check:
        skill = item.metadata.get("skill")
        if skill not in by_skill:
            return Check(0.0, "unparseable", f"the item's skill {skill!r} is not in the pack")
        return by_skill[skill](answer, item)

    return verify


def make_verifier(
    name: str, source=None, options: dict[str, Any] | None = None, base: Path | None = None
) -> Verifier:
    """The verifier called ``name``. ``options`` come from the pack (paths relative to ``base``)."""
    if name not in VERIFIERS:
        raise ValueError(f"unknown verifier {name!r}; choose one of {', '.join(VERIFIER_NAMES)}")
    return VERIFIERS[name](source, options or {}, base)


def _reasoning_gym(source, options: dict[str, Any], base: Path | None) -> Verifier:
    if source is None or not hasattr(source, "score"):
        raise ValueError("verifier 'reasoning_gym' needs a reasoning-gym eval source")
    return reasoning_gym_verifier(source)


def _numeric(source, options: dict[str, Any], base: Path | None) -> Verifier:
    tolerances = {k: float(options[k]) for k in ("rel_tol", "abs_tol") if k in options}
    return lambda answer, item: numeric(answer, item, **tolerances)


def _sql(source, options: dict[str, Any], base: Path | None) -> Verifier:
    return sql_verifier(*_sql_options("verifier 'sql'", options, base))


# A pack's ``verifier`` names one of these: (eval source, verifier_options, pack folder) -> Verifier
VERIFIERS: dict[str, Callable[[Any, dict[str, Any], Path | None], Verifier]] = {
    "reasoning_gym": _reasoning_gym,
    "numeric": _numeric,
    "exact": lambda source, options, base: exact,
    "sql": _sql,
}
VERIFIER_NAMES = tuple(VERIFIERS)


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def arithmetic_expression(question: str, solution: str = "", answer: str = "") -> str | None:
    """Recompute the answer of ``"... : 12 + 7 - 3 ="``-style questions, or None if not one.

    Only numbers, + - * / and parentheses are evaluated (an AST walk, never ``eval``).

    Example:
        >>> arithmetic_expression("State the final answer: 98 + 93 - 77 =")
        '114'
    """
    match = re.search(r"([-\d\s+*/().]+)=\s*\??\s*$", question.strip())
    if not match or not re.search(r"\d", match.group(1)) or len(match.group(1)) > 500:
        return None
    try:
        value = _evaluate(ast.parse(match.group(1).strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
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


def python_program(question: str, solution: str, answer: str = "") -> str | None:
    """Run the candidate's worked solution as a Python program in the sandbox; its answer.

    Raises :class:`Unverifiable` with ``sandbox_<reason>`` when the program is stopped (timeout,
    memory, forbidden operation, error) so the verdict says which.
    """
    from failforward.tools.verify.sandbox import run_python

    program = _code_block(solution)
    if not program.strip():
        raise Unverifiable("no_program", "the solution holds no Python program")
    if "```" not in solution and not _is_python(program):
        return None  # a worked solution in prose: nothing to run (a source's answer stands)
    result = run_python(program)
    if not result.ok:
        raise Unverifiable(f"sandbox_{result.reason}", result.detail)
    return result.value


def _is_python(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _code_block(text: str) -> str:
    fenced = re.search(r"```(?:python)?\n(.*?)```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


def sql_query(database: Path, timeout: float = 2.0) -> Solver:
    """A solver for text-to-SQL: the claimed query is its own reference once it runs read-only
    and returns rows (whether it answers the question is the judge's call). A query that is
    refused (writes, ATTACH, PRAGMA, several statements), times out, fails or returns nothing
    raises :class:`Unverifiable` with ``sql_refused|sql_timeout|sql_error|sql_empty``.
    """
    from failforward.tools.verify.sqlcheck import run_readonly

    def solve(question: str, solution: str, answer: str) -> str | None:
        if not answer.strip():
            return None
        result = run_readonly(database, answer, timeout)
        if result.rows is None:
            raise Unverifiable(result.reason, result.detail)
        if not result.rows:
            raise Unverifiable("sql_empty", "the query returns no rows; the question implies some")
        return answer

    return solve


def make_solver(
    name: str | None, options: dict[str, Any] | None = None, base: Path | None = None
) -> Solver | None:
    """The solver called ``name``; ``options`` are the pack's ``verifier_options`` (paths
    relative to ``base``), which the SQL solver shares with the SQL verifier."""
    if name is None:
        return None
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVER_NAMES)}")
    return SOLVERS[name](options or {}, base)


def _sandboxed_program(options: dict[str, Any], base: Path | None) -> Solver:
    from failforward.tools.verify.sandbox import isolation

    isolation()  # no OS isolation here: the pack is refused, its programs never run bare
    return python_program


# A pack's ``critic.solver`` names one of these: (verifier_options, pack folder) -> Solver
SOLVERS: dict[str, Callable[[dict[str, Any], Path | None], Solver]] = {
    "arithmetic_expression": lambda options, base: arithmetic_expression,
    "python_program": _sandboxed_program,
    "sql_query": lambda options, base: sql_query(
        *_sql_options("solver 'sql_query'", options, base)
    ),
}
SOLVER_NAMES = tuple(SOLVERS)


def _sql_options(who: str, options: dict[str, Any], base: Path | None) -> tuple[Path, float]:
    """The database (relative to ``base``) and timeout in a pack's ``verifier_options``."""
    if "database" not in options:
        raise ValueError(f"{who} needs verifier_options.database")
    return Path(base or ".") / options["database"], options.get("timeout", 2.0)
