"""The regression guard's test: did training make the student worse, beyond noise?

The student before and after a cycle's training answer the same items: the guard's half of the
probe set (no agent trains on those, and they are not the test set). Only the discordant items
carry evidence: ``lost`` (right before, wrong after) and ``gained`` (wrong before, right after).
Under "no change" each discordant item is as likely lost as gained, so the one-sided exact
McNemar test asks how likely at least ``lost`` of ``lost + gained`` fair coin flips are; a
p-value under ``alpha`` is a regression. Being exact and one-sided, it raises a false alarm on an
unchanged student at most ``alpha`` of the time, however few items disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


def guard_item(index: int) -> bool:
    """Whether the probe item at ``index`` is held out for the guard (every other one). The
    others may serve as self-distillation anchors, so the guard never measures on an item the
    student was trained on."""
    return index % 2 == 0


@dataclass(frozen=True)
class PairedDrop:
    """The paired comparison of two evaluations of the same items."""

    lost: int  # right before, wrong after
    gained: int  # wrong before, right after
    items: int
    p_value: float  # one-sided exact McNemar: P(at least `lost` of the discordant are losses)
    alpha: float

    @property
    def regressed(self) -> bool:
        return self.lost > self.gained and self.p_value < self.alpha

    def text(self) -> str:
        return (
            f"{self.lost} of {self.items} items lost, {self.gained} gained "
            f"(one-sided exact McNemar p = {self.p_value:.3g})"
        )


def paired_drop(before: list[bool], after: list[bool], alpha: float = 0.05) -> PairedDrop:
    """Compare two evaluations item by item (the same items, in the same order).

    Example:
        >>> drop = paired_drop([True] * 10 + [False] * 10, [False] * 8 + [True] * 2 + [False] * 10)
        >>> (drop.lost, drop.gained, drop.regressed)
        (8, 0, True)
        >>> paired_drop([True] * 10 + [False] * 10, [False] * 8 + [True] * 12).regressed
        False
    """
    if len(before) != len(after):
        raise ValueError(f"paired evaluations differ in length: {len(before)} vs {len(after)}")
    lost = sum(b and not a for b, a in zip(before, after, strict=True))
    gained = sum(a and not b for b, a in zip(before, after, strict=True))
    return PairedDrop(lost, gained, len(before), binomial_tail(lost, lost + gained), alpha)


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2) (1.0 when ``n`` is 0)."""
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


@dataclass(frozen=True)
class Students:
    """Which student a run ended with and which was best, read from its metrics."""

    final: int  # the evaluation whose student the run ends with (0: the untrained student)
    best: int  # the evaluation with the highest probe accuracy
    guarded: list[dict]  # per trained cycle: the guard's comparison and decision

    def checkpoint(self, run_dir: Path, cycle: int) -> Path | None:
        """Cycle ``cycle``'s student checkpoint (None: the base model)."""
        return student_checkpoint(run_dir, cycle) if cycle else None


def student_checkpoint(run_dir: Path, cycle: int) -> Path:
    """Where a run keeps the student cycle ``cycle`` trained (LoRA adapter or whole model)."""
    return run_dir / "checkpoints" / f"cycle-{cycle}" / "student"


def kept_students(metrics: dict[int, dict[str, float]]) -> dict[int, int]:
    """Per cycle (from ``RunStore.metrics``), the cycle whose student is in use after it (0: the
    base model). A cycle's student replaces the one in use when the cycle trained
    (``train_steps``) and the guard did not roll it back.

    Example:
        >>> kept_students({0: {}, 1: {"train_steps": 2}, 2: {"train_steps": 2,
        ...                "guard_rolled_back": 1.0}, 3: {}})
        {0: 0, 1: 1, 2: 1, 3: 1}
    """
    kept, out = 0, {}
    for cycle, m in sorted(metrics.items()):
        if cycle and m.get("train_steps") and not m.get("guard_rolled_back"):
            kept = cycle
        out[cycle] = kept
    return out


def students(metrics: dict[int, dict[str, float]]) -> Students:
    """The final and best students of a run and its guard's decisions (from ``RunStore.metrics``;
    which student is in use after each cycle: :func:`kept_students`)."""
    guarded = [
        {"cycle": cycle, **{k[6:]: v for k, v in m.items() if k.startswith("guard_")}}
        for cycle, m in sorted(metrics.items())
        if cycle and m.get("train_steps") and "guard_lost" in m
    ]
    kept = kept_students(metrics)
    final = kept[max(kept)] if kept else 0
    probe = {
        c: m["probe_acc"]
        for c, m in metrics.items()
        if "probe_acc" in m and not m.get("guard_rolled_back")
    }
    best = max(sorted(probe), key=lambda c: probe[c], default=0)
    if probe.get(final, -1) >= probe.get(best, 0):
        best = final  # on a tie, the student the run ends with
    return Students(final, best, guarded)
