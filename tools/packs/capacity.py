"""How many new examples a cell can still give: its capacity, estimated by drawing from it.

A small cell (one-digit products: 100 distinct problems) is soon used up: most of what it gives is
a test item, a guard item or an example already accepted, and the critic rejects those. The
planner asks each target's cell, before spending on it, how many of a draw of ``2 x`` the budget
it might get would be new: distinct look-alike keys (the question's numbers and the answer, which
is how the critic tells a reworded item from a new one, or the normalized text) not in the taken
set. That count is the most the cell can absorb this cycle; the planner moves the rest elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from failforward.tools.embed.similarity import answer_key, number_signature
from failforward.tools.packs.sources import normalize
from failforward.tools.records import Item

Capacity = Callable[[dict[str, Any], int], int]  # (source overrides, budget asked) -> absorbable


def lookalike_keys(question: str, answer: str | None) -> tuple[tuple, tuple]:
    """The two keys under which a candidate counts as a repeat: its normalized text, and its
    numbers with its answer (the critic's near-match needs both to be equal); the second is
    empty for a question without numbers."""
    numbers = number_signature(question)
    return ("text", normalize(question)), (
        ("numbers", numbers, answer_key(answer)) if numbers else ()
    )


def taken_keys(items: Iterable[Item | dict]) -> set[tuple]:
    """Every look-alike key of ``items`` (eval items, or stored example rows)."""
    keys: set[tuple] = set()
    for item in items:
        question = item["question"] if isinstance(item, dict) else item.question
        answer = item["answer"] if isinstance(item, dict) else item.answer
        keys.update(k for k in lookalike_keys(question, answer) if k)
    return keys


def estimate(source, overrides: dict[str, Any], budget: int, taken: set[tuple], seed: int) -> int:
    """Of ``2 x budget`` items drawn from the cell (at least 16), how many are new: not taken,
    and not a repeat of an earlier draw. At least ``budget`` means the cell is not the limit."""
    fresh, seen = 0, set()
    for item in source.sample(max(2 * budget, 16), seed=seed, overrides=overrides):
        keys = {k for k in lookalike_keys(item.question, item.answer) if k}
        if keys & taken or keys & seen:
            continue
        seen |= keys
        fresh += 1
    return fresh


def capacity_of(source, taken: set[tuple], seed: int) -> Capacity:
    """The planner's capacity function over one source and taken set (memoised per cell)."""
    cache: dict[tuple, int] = {}

    def capacity(overrides: dict[str, Any], budget: int) -> int:
        key = (tuple(sorted(overrides.items())), budget)
        if key not in cache:
            cache[key] = estimate(source, overrides, budget, taken, seed)
        return cache[key]

    return capacity
