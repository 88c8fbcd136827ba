"""The three-arm comparison: is there headroom (the oracle against uniform), how much of it does
the plan recover (targeted against both), and what happens to what the student had mastered.

The oracle arm (``compare --arms targeted,uniform,oracle``) spends its budget by a pilot's
learnability table that no plan sees. If it does not beat uniform, the setup has no headroom for
any plan: the pack, the student or the budget must change, not the plan. Every figure is paired
(same seed, cycle and test items across arms) with a percentile bootstrap over seeds and items
drawn as :func:`tools.stats.multiplier.paired_differences` draws them (seeds stretched to a
t-interval).

Example:
    >>> import numpy as np
    >>> right = lambda *rows: np.array([rows], dtype=bool)        # one seed
    >>> u = ArmOutcomes([[0, 8]], right([0, 0, 1, 1], [0, 0, 1, 1]))
    >>> t = ArmOutcomes([[0, 8]], right([0, 0, 1, 1], [1, 0, 1, 1]))
    >>> o = ArmOutcomes([[0, 8]], right([0, 0, 1, 1], [1, 1, 1, 1]))
    >>> found = three_arms({"targeted": t, "uniform": u, "oracle": o}, reps=200)
    >>> found.all.recovered[0].share                                # 1 of the oracle's 2 items
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from failforward.tools.stats.multiplier import (
    BOOTSTRAP,
    ArmOutcomes,
    Multiplier,
    data_efficiency,
    seed_stretch,
)


@dataclass
class Gain:
    """One arm minus another (or a cycle minus cycle 0) after ``cycle``, in accuracy, with its
    95% bootstrap interval."""

    cycle: int
    difference: float
    low: float
    high: float

    def text(self) -> str:
        return (
            f"{self.difference * 100:+.1f} points ({self.low * 100:+.1f} to {self.high * 100:+.1f})"
        )


@dataclass
class Recovered:
    """The share of the oracle's gain over uniform that the plan's gain recovers after
    ``cycle``: mean (targeted - uniform) over mean (oracle - uniform), with its bootstrap
    interval; None where the oracle's gain is not above 0 (no headroom to recover)."""

    cycle: int
    share: float | None
    low: float | None
    high: float | None

    def text(self) -> str:
        if self.share is None:
            return "- (the oracle gained nothing over uniform)"
        return f"{self.share:.0%} ({self.low:.0%} to {self.high:.0%})"


@dataclass
class ThreeArms:
    """The three-arm figures on one set of test items."""

    items: int
    oracle: list[Gain]  # oracle minus uniform, per cycle
    targeted: list[Gain]  # targeted minus uniform
    recovered: list[Recovered]


def _draws(diffs: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``diffs[k, s, c, i]``: k paired differences per seed, cycle and item. Returns their means
    over seeds and items (k, c) and ``reps`` bootstrap resamples of them (reps, k, c), the same
    seeds and items drawn for every k."""
    n_seeds, n_items = diffs.shape[1], diffs.shape[3]
    per_seed = diffs.mean(axis=3)
    point = per_seed.mean(axis=1)
    stretch, rng, out = seed_stretch(n_seeds), np.random.default_rng(seed), []
    for _ in range(reps):
        s, i = rng.integers(0, n_seeds, n_seeds), rng.integers(0, n_items, n_items)
        resampled = diffs[:, :, :, i].mean(axis=3)
        centre = resampled.mean(axis=1)
        out.append(centre + stretch * (resampled[:, s].mean(axis=1) - centre))
    return point, np.array(out)


def _compare(outcomes: dict[str, ArmOutcomes], items: np.ndarray, reps: int, seed: int):
    cycles = min(a.cycles for a in outcomes.values())
    u = outcomes["uniform"].correct[:, :cycles, items].astype(float)
    diffs = np.stack(
        [
            outcomes[arm].correct[:, :cycles, items].astype(float) - u
            for arm in ("oracle", "targeted")
        ]
    )[:, :, 1:]
    point, draws = _draws(diffs, reps, seed)
    low, high = np.quantile(draws, [0.025, 0.975], axis=0)
    gains = [
        [
            Gain(c + 1, float(point[k, c]), float(low[k, c]), float(high[k, c]))
            for c in range(cycles - 1)
        ]
        for k in range(2)
    ]
    recovered = []
    for c in range(cycles - 1):
        if point[0, c] <= 0:
            recovered.append(Recovered(c + 1, None, None, None))
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(draws[:, 0, c] > 0, draws[:, 1, c] / draws[:, 0, c], -np.inf)
        r_low, r_high = np.quantile(ratios, [0.025, 0.975], method="inverted_cdf")
        recovered.append(
            Recovered(c + 1, float(point[1, c] / point[0, c]), float(r_low), float(r_high))
        )
    return ThreeArms(int(len(items)), gains[0], gains[1], recovered)


def falls(arm: ArmOutcomes, items: np.ndarray, reps: int = BOOTSTRAP, seed: int = 0) -> list[Gain]:
    """The arm's accuracy on ``items`` after each cycle minus its cycle-0 accuracy (the guard on
    mastered skills: a fall is a negative difference)."""
    right = arm.correct[:, :, items].astype(float)
    diffs = (right[:, 1:] - right[:, :1])[None]
    point, draws = _draws(diffs, reps, seed)
    low, high = np.quantile(draws, [0.025, 0.975], axis=0)
    return [
        Gain(c + 1, float(point[0, c]), float(low[0, c]), float(high[0, c]))
        for c in range(point.shape[1])
    ]


@dataclass
class Headroom:
    """The three-arm comparison on every test item (``all``), on the items of skills not
    mastered (``focus``, with a pack table), and each arm's change on the mastered ones."""

    all: ThreeArms
    focus: ThreeArms | None = None
    mastered: list[str] | None = None
    mastered_falls: dict[str, list[Gain]] | None = None
    # each arm's change since cycle 0 on the focus items: a gain over uniform can be learning
    # or uniform's loss, and only this tells them apart
    focus_changes: dict[str, list[Gain]] | None = None
    # targeted's data-efficiency multiplier against uniform's curve on the focus items
    focus_multiplier: list[Multiplier] | None = None


def three_arms(
    outcomes: dict[str, ArmOutcomes],
    mastered: set[str] | None = None,
    reps: int = BOOTSTRAP,
    seed: int = 0,
) -> Headroom:
    """Oracle and targeted against uniform and the share recovered, on all items and (given the
    ``mastered`` skills and per-item skills) on the rest, with targeted's data-efficiency
    multiplier there (uniform's curve needs more cycles than targeted's for it to be more than
    a bound); each arm's change since cycle 0 on both."""
    every = np.arange(outcomes["uniform"].correct.shape[2])
    found = Headroom(_compare(outcomes, every, reps, seed))
    skills = outcomes["uniform"].skills
    if not mastered or not skills:
        return found
    is_mastered = np.array([s in mastered for s in skills])
    if is_mastered.all() or not is_mastered.any():
        return found
    found.focus = _compare(outcomes, np.flatnonzero(~is_mastered), reps, seed)
    found.mastered = sorted(mastered & set(skills))
    found.mastered_falls = {
        arm: falls(o, np.flatnonzero(is_mastered), reps, seed) for arm, o in outcomes.items()
    }
    focus = np.flatnonzero(~is_mastered)
    found.focus_changes = {arm: falls(o, focus, reps, seed) for arm, o in outcomes.items()}
    found.focus_multiplier = data_efficiency(
        *(only_items(outcomes[arm], focus) for arm in ("targeted", "uniform")), reps, seed
    )
    return found


def only_items(arm: ArmOutcomes, items: np.ndarray) -> ArmOutcomes:
    """The arm's outcomes on ``items`` alone."""
    skills = [arm.skills[i] for i in items] if arm.skills else None
    return ArmOutcomes(arm.examples, arm.correct[:, :, items], skills, arm.skill_examples)
