"""Accuracy per skill: a multi-skill pack's evaluations broken down by each item's skill, with
95% Wilson intervals (a skill has a fraction of the set's items, so its interval is wider)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from failforward.tools.records import Item


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy ``p`` over ``n`` items."""
    if n == 0:
        return 0.0, 0.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class SkillScore:
    correct: int
    n: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.accuracy, self.n)

    def text(self) -> str:
        low, high = self.interval
        return f"{self.accuracy:.0%} [{low:.0%}, {high:.0%}] of {self.n}"


def skill_accuracy(scored: list[tuple[Item, float]]) -> dict[str, SkillScore]:
    """Per skill (``metadata.skill``, in order of first appearance), how many of its items the
    student got right; {} when the items carry no skill (a single-source pack)."""
    counts: dict[str, list[int]] = {}
    for item, score in scored:
        skill = item.metadata.get("skill")
        if skill is not None:
            counts.setdefault(str(skill), []).append(int(score >= 1.0))
    return {skill: SkillScore(sum(v), len(v)) for skill, v in counts.items()}


def students_in_use(metrics: dict[int, dict[str, float]]) -> list[tuple[int, int]]:
    """``(cycle, in_use)`` for each evaluated cycle: the cycle whose student's answers count
    then. A cycle the guard rolled back counts the kept student's, as its accuracy does."""
    out, in_use = [], 0
    for cycle in sorted(c for c, m in metrics.items() if "test_acc" in m):
        if cycle == 0 or not metrics[cycle].get("guard_rolled_back"):
            in_use = cycle
        out.append((cycle, in_use))
    return out


def skill_curves(store, split: str = "test") -> dict[int, dict[str, SkillScore]]:
    """Per evaluated cycle, the accuracy per skill on ``split`` ({} per cycle without skills)."""
    return {
        cycle: skill_accuracy(store.attempts(in_use, split))
        for cycle, in_use in students_in_use(store.metrics())
    }
