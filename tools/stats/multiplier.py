"""The data-efficiency multiplier of a comparison and the paired item-level comparison beside it.

The multiplier after targeted cycle ``c``: fit the uniform arm's test accuracy against
``log(1 + cumulative examples)`` with a monotone (isotonic) fit of its mean curve over seeds,
read off how many uniform examples that fit needs to reach the targeted arm's mean accuracy
after ``c``, and divide by the targeted arm's mean examples then. Above 1, targeted data teaches
more per example. Where the targeted accuracy is above everything the uniform fit reaches, the
multiplier is censored: at least the uniform arm's last examples over targeted's ("> x"). Where
the uniform fit does not rise at all (its data left the student where it was, or lower), no number
of uniform examples matches any accuracy above its start and the multiplier is undefined: the
arms are then compared by their paired differences, not by a ratio of examples.

Its 95% interval is a percentile bootstrap over seeds and test items together: a resample draws
seeds with replacement (a seed's targeted and uniform runs as a pair) and test items with
replacement, and the same items serve every run and cycle, since both arms are scored on the same
test set (the items' shared difficulty then cancels between the arms instead of adding noise). A
resample whose multiplier is censored counts as +inf, so an open upper end shows as "> x".

Example:
    >>> fit = monotone_fit(np.log1p([0, 100, 200, 400]), np.array([0.1, 0.3, 0.25, 0.5]))
    >>> [round(float(y), 3) for y in fit]
    [0.1, 0.275, 0.275, 0.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 2000


@dataclass
class ArmOutcomes:
    """One arm's item-level test results over seeds: ``examples[s, c]``, the training examples
    seed ``s``'s run had seen after cycle ``c`` (0 at cycle 0), and ``correct[s, c, i]``, whether
    its student then answered test item ``i`` right (the kept student's, after a rollback)."""

    examples: np.ndarray  # (seeds, cycles)
    correct: np.ndarray  # (seeds, cycles, items) bool
    skills: list[str] | None = None  # each test item's skill (multi-skill packs)
    # skill -> (seeds, cycles): examples of that skill trained in each cycle (0 at cycle 0)
    skill_examples: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.examples = np.asarray(self.examples, dtype=float)
        self.correct = np.asarray(self.correct, dtype=bool)
        if self.correct.shape[:2] != self.examples.shape:
            raise ValueError(
                f"examples {self.examples.shape} and correct {self.correct.shape} disagree on "
                "seeds x cycles"
            )

    @property
    def cycles(self) -> int:
        return self.examples.shape[1]

    def accuracy(self, seeds: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Accuracy per (resampled) seed and cycle over the (resampled) items."""
        return self.correct[seeds][:, :, items].mean(axis=2)


def monotone_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The non-decreasing least-squares fit of ``y`` in the order of ``x`` (pool adjacent
    violators), one fitted value per point."""
    order = np.argsort(x, kind="stable")
    blocks: list[list[float]] = []  # [sum, count]
    for value in np.asarray(y, dtype=float)[order]:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = np.concatenate([np.full(int(n), s / n) for s, n in blocks])
    out = np.empty_like(fitted)
    out[order] = fitted
    return out


def examples_for(x: np.ndarray, fitted: np.ndarray, target: float) -> float:
    """The examples at which the monotone fit (``fitted`` over ``x = log1p(examples)``, linear
    between points) first reaches ``target``: 0 when its start does, inf when it never does."""
    if target <= fitted[0]:
        return float(math.expm1(x[0]))
    above = np.nonzero(fitted >= target)[0]
    if not len(above):
        return math.inf
    k = above[0]
    x0, x1, y0, y1 = x[k - 1], x[k], fitted[k - 1], fitted[k]
    return float(math.expm1(x0 + (target - y0) / (y1 - y0) * (x1 - x0)))


def seed_stretch(n: int) -> float:
    """``sqrt(n / (n - 1)) * t(0.975, n - 1) / z(0.975)``: 1.87 for 4 seeds, 1.25 for 10."""
    if n < 2:
        return 1.0
    from scipy.stats import norm, t

    return math.sqrt(n / (n - 1)) * float(t.ppf(0.975, n - 1) / norm.ppf(0.975))


def multipliers(
    targeted: ArmOutcomes, uniform: ArmOutcomes, seeds: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per targeted cycle 1.. on one (re)sample: the multiplier (inf where censored, nan where
    the targeted arm trained on nothing) and targeted's mean accuracy after the cycle; and the
    uniform arm's monotone fit the multipliers were read off, one value per uniform cycle.

    With few seeds, a resample of them varies less than seeds do: by ``(n - 1) / n`` in
    variance, and a mean over ``n`` seeds is spread as Student's t with ``n - 1`` degrees of
    freedom, not as a normal (4 seeds: 3.18 standard errors to a 95% end, not 1.96). So each
    resampled seed's accuracy is moved away from the mean of all seeds on the same items by
    :func:`seed_stretch`, which makes the interval of a mean over seeds the t-interval.
    """
    stretch = seed_stretch(len(seeds))
    every = np.arange(targeted.examples.shape[0])

    def mean_accuracy(arm: ArmOutcomes) -> np.ndarray:
        centre = arm.accuracy(every, items).mean(axis=0)
        return centre + stretch * (arm.accuracy(seeds, items).mean(axis=0) - centre)

    u_acc, t_acc = mean_accuracy(uniform), mean_accuracy(targeted)
    u_x = np.log1p(uniform.examples[seeds]).mean(axis=0)
    fitted = monotone_fit(u_x, u_acc)
    t_examples = targeted.examples[seeds].mean(axis=0)
    values = np.array(
        [
            examples_for(u_x, fitted, t_acc[c]) / t_examples[c] if t_examples[c] > 0 else math.nan
            for c in range(1, targeted.cycles)
        ]
    )
    return values, t_acc[1:], fitted


@dataclass
class Multiplier:
    """The multiplier after one targeted cycle, with its 95% bootstrap interval."""

    cycle: int
    targeted_examples: float
    targeted_accuracy: float
    value: float  # inf when censored
    bound: float  # the uniform arm's last examples over targeted's: the censored lower bound
    low: float
    high: float  # inf when over 2.5% of the resamples are censored
    flat: bool = False  # the uniform fit does not rise: the multiplier is undefined

    @property
    def censored(self) -> bool:
        return math.isinf(self.value)

    def text(self) -> str:
        """``1.83x (95% interval 1.21-2.90)``, ``> 2.10x (…)``; an open end as ``> x``."""
        if self.flat:
            return "undefined (uniform's accuracy does not rise with its examples)"
        value = f"> {self.bound:.2f}x" if self.censored else f"{self.value:.2f}x"
        high = f"> {self.bound:.2f}" if math.isinf(self.high) else f"{self.high:.2f}"
        low = f"> {self.bound:.2f}" if math.isinf(self.low) else f"{self.low:.2f}"
        return f"{value} (95% interval {low} to {high})"

    @property
    def excludes_one(self) -> bool:
        return not self.flat and (self.low > 1.0 or self.high < 1.0)


def data_efficiency(
    targeted: ArmOutcomes, uniform: ArmOutcomes, reps: int = BOOTSTRAP, seed: int = 0
) -> list[Multiplier]:
    """The multiplier after each targeted cycle, with its bootstrap interval over seeds and
    test items (``reps`` resamples, drawn from ``seed``)."""
    _check_pair(targeted, uniform)
    n_seeds, n_items = targeted.correct.shape[0], targeted.correct.shape[2]
    every_seed, every_item = np.arange(n_seeds), np.arange(n_items)
    point, accuracy, fit = multipliers(targeted, uniform, every_seed, every_item)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            multipliers(
                targeted,
                uniform,
                rng.integers(0, n_seeds, n_seeds),
                rng.integers(0, n_items, n_items),
            )[0]
            for _ in range(reps)
        ]
    )
    low, high = np.nanquantile(draws, [0.025, 0.975], axis=0, method="inverted_cdf")
    t_examples = targeted.examples.mean(axis=0)
    last_uniform = math.expm1(np.log1p(uniform.examples).mean(axis=0)[-1])
    return [
        Multiplier(
            cycle=c + 1,
            targeted_examples=float(t_examples[c + 1]),
            targeted_accuracy=float(accuracy[c]),
            value=float(point[c]),
            bound=last_uniform / float(t_examples[c + 1]),
            low=float(low[c]),
            high=float(high[c]),
            flat=bool(fit[-1] <= fit[0]),
        )
        for c in range(len(point))
    ]


def _check_pair(targeted: ArmOutcomes, uniform: ArmOutcomes) -> None:
    t, u = targeted.correct.shape, uniform.correct.shape
    if t[0] != u[0] or t[2] != u[2]:
        raise ValueError(
            f"the arms must share seeds and test items: targeted has {t[0]} seeds x {t[2]} "
            f"items, uniform {u[0]} x {u[2]}"
        )
    if targeted.cycles < 2:
        raise ValueError("the targeted arm has no trained cycle to compare")


@dataclass
class PairedDifference:
    """Targeted minus uniform after the same cycle (the same budget, same seed, same test items):
    the accuracy difference with its bootstrap interval and an exact McNemar test over the
    seed-item pairs that differ (two-sided)."""

    cycle: int
    targeted_examples: float
    uniform_examples: float
    difference: float
    low: float
    high: float
    targeted_only: int  # seed-item pairs only targeted got right
    uniform_only: int
    p_value: float


def paired_differences(
    targeted: ArmOutcomes, uniform: ArmOutcomes, reps: int = BOOTSTRAP, seed: int = 0
) -> list[PairedDifference]:
    """One row per cycle both arms ran (after the first), resampled as :func:`data_efficiency`
    (seeds stretched as :func:`multipliers` does). The McNemar test pools the seeds' pairs."""
    from scipy.stats import binomtest

    _check_pair(targeted, uniform)
    cycles = min(targeted.cycles, uniform.cycles)
    t, u = targeted.correct[:, 1:cycles], uniform.correct[:, 1:cycles]
    n_seeds, n_items = t.shape[0], t.shape[2]
    diff = (t.astype(float) - u).mean(axis=(0, 2))
    rng = np.random.default_rng(seed)
    stretch, draws = seed_stretch(n_seeds), []
    for _ in range(reps):
        s, i = rng.integers(0, n_seeds, n_seeds), rng.integers(0, n_items, n_items)
        per_seed = (t[:, :, i].astype(float) - u[:, :, i]).mean(axis=2)
        centre = per_seed.mean(axis=0)
        draws.append(centre + stretch * (per_seed[s].mean(axis=0) - centre))
    low, high = np.quantile(np.array(draws), [0.025, 0.975], axis=0)
    rows = []
    for c in range(cycles - 1):
        b = int((t[:, c] & ~u[:, c]).sum())
        d = int((~t[:, c] & u[:, c]).sum())
        p = binomtest(b, b + d, 0.5).pvalue if b + d else 1.0
        rows.append(
            PairedDifference(
                cycle=c + 1,
                targeted_examples=float(targeted.examples[:, c + 1].mean()),
                uniform_examples=float(uniform.examples[:, c + 1].mean()),
                difference=float(diff[c]),
                low=float(low[c]),
                high=float(high[c]),
                targeted_only=b,
                uniform_only=d,
                p_value=float(p),
            )
        )
    return rows


@dataclass
class SeedsNeeded:
    """How many seeds the paired difference after ``cycle`` needs to be told from 0.

    The difference's variance over a resample of seeds and items (as the report's interval
    draws them) has two parts: ``seed_spread``, the standard deviation over seeds of each seed's
    targeted-minus-uniform accuracy (shrinks as 1/n with n seeds), and ``item_spread``, the
    standard error that the test items' own difficulty leaves in the mean over seeds (fixed for a
    test set of this size, however many seeds). ``seeds[effect]`` is the seeds per arm at which a
    true difference of ``effect`` (accuracy, 0.02 for 2 points) has a 95% interval excluding 0
    with 80% power, or ``SEED_CAP`` when more seeds cannot get there: the test set is too small."""

    cycle: int
    observed_seeds: int
    seed_spread: float
    item_spread: float
    seeds: dict[float, int]


SEED_CAP = 10_000  # "more seeds than any" in the report: unreachable with this test set


def seeds_for(
    effect: float,
    seed_spread: float,
    item_spread: float = 0.0,
    power: float = 0.8,
    alpha: float = 0.05,
) -> int:
    """The fewest seeds ``n`` with ``effect / se(n) >= t(1 - alpha/2, n - 1) + t(power, n - 1)``,
    ``se(n)² = seed_spread² / n + item_spread²``: a t-test's power on the per-seed differences
    with the test items' share of the noise added.

    >>> seeds_for(0.02, 0.05)
    52
    >>> seeds_for(0.02, 0.05, item_spread=0.005)
    101
    >>> seeds_for(0.02, 0.05, item_spread=0.01) == SEED_CAP  # the items alone leave too much
    True
    """
    from scipy.stats import t

    if effect <= 0:
        raise ValueError(f"effect must be positive, got {effect}")
    n = np.arange(2, SEED_CAP)
    se = np.sqrt(seed_spread**2 / n + item_spread**2)
    with np.errstate(divide="ignore"):
        enough = effect / se >= t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)
    return int(n[enough.argmax()]) if enough.any() else SEED_CAP


def seeds_needed(
    targeted: ArmOutcomes, uniform: ArmOutcomes, effects: tuple[float, ...] = (0.02, 0.05)
) -> SeedsNeeded | None:
    """Seeds needed at the spread this comparison showed after the last cycle both arms ran;
    None with fewer than 2 seeds (no spread to read).

    The items' share: per item, the seeds' differences vary around the item's mean (their
    variance over seeds, averaged over items, is the seed-by-item part, which more seeds
    average away); what the items' means vary beyond that part is the items' own, fixed part."""
    _check_pair(targeted, uniform)
    cycle = min(targeted.cycles, uniform.cycles) - 1
    diff = targeted.correct[:, cycle].astype(float) - uniform.correct[:, cycle].astype(float)
    n_seeds, n_items = diff.shape
    if n_seeds < 2:
        return None
    seed_spread = float(diff.mean(axis=1).std(ddof=1))
    interaction = float(diff.var(axis=0, ddof=1).mean())
    item_part = max(0.0, float(diff.mean(axis=0).var(ddof=1)) - interaction / n_seeds)
    item_spread = math.sqrt(item_part / n_items)
    return SeedsNeeded(
        cycle=cycle,
        observed_seeds=n_seeds,
        seed_spread=seed_spread,
        item_spread=item_spread,
        seeds={e: seeds_for(e, seed_spread, item_spread) for e in effects},
    )


@dataclass
class SkillCell:
    """One arm's result on one skill after one cycle: the mean over seeds of its accuracy on the
    skill's test items (95% bootstrap interval over seeds and those items), and the examples of
    the skill it trained on in that cycle (mean over seeds)."""

    accuracy: float
    low: float
    high: float
    examples: float


def skill_curves(arm: ArmOutcomes, reps: int = BOOTSTRAP, seed: int = 0) -> dict[str, list]:
    """Per skill, one :class:`SkillCell` per cycle ({} when the items carry no skill). Seeds are
    stretched as :func:`multipliers` does; a skill the arm never trained on shows 0 examples."""
    if not arm.skills:
        return {}
    rng = np.random.default_rng(seed)
    n_seeds = arm.correct.shape[0]
    stretch, every = seed_stretch(n_seeds), np.arange(n_seeds)
    out = {}
    for skill in dict.fromkeys(arm.skills):
        items = np.array([i for i, s in enumerate(arm.skills) if s == skill])
        mean = arm.accuracy(every, items).mean(axis=0)
        draws = []
        for _ in range(reps):
            i = items[rng.integers(0, len(items), len(items))]
            centre = arm.accuracy(every, i).mean(axis=0)
            resampled = arm.accuracy(rng.integers(0, n_seeds, n_seeds), i).mean(axis=0)
            draws.append(centre + stretch * (resampled - centre))
        low, high = np.quantile(np.array(draws), [0.025, 0.975], axis=0)
        spent = (arm.skill_examples or {}).get(skill)
        spent = np.zeros(arm.examples.shape) if spent is None else spent
        out[skill] = [
            SkillCell(
                float(mean[c]),
                float(max(0.0, low[c])),
                float(min(1.0, high[c])),
                float(spent[:, c].mean()),
            )
            for c in range(arm.cycles)
        ]
    return out
