"""Learning curves of a comparison's arms and the statistics over them: the data-efficiency
ratio (uniform examples needed to reach the targeted arm's final accuracy / targeted examples),
equal-example gains and their intervals.

A comparison is a folder ``<runs_dir>/<compare_id>/`` holding ``compare.json`` (settings and the
run id of every arm and seed, written before each run starts) and its reports; the runs are
ordinary run folders next to it. :mod:`tools.report.comparison` reads the curves back from
their stores; running a comparison is ``app.compare``. Nothing here reads a store.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

ARMS = ("targeted", "uniform")


@dataclass
class Curve:
    """Test accuracy after each cycle against the training examples seen so far."""

    examples: list[float]
    accuracy: list[float]


def run_curve(metrics: dict[int, dict[str, float]]) -> Curve:
    """A run's curve from its stored metrics (cycle 0 = the untrained student at 0 examples)."""
    cycles = sorted(c for c, m in metrics.items() if "test_acc" in m)
    return Curve(
        examples=[metrics[c].get("train_examples_total", 0.0) if c else 0.0 for c in cycles],
        accuracy=[metrics[c]["test_acc"] for c in cycles],
    )


def examples_to_reach(curve: Curve, target: float) -> float | None:
    """The examples at which ``curve`` first reaches ``target`` (linear between cycles), or None.

    Example:
        >>> examples_to_reach(Curve([0, 100, 200], [0.1, 0.2, 0.4]), 0.3)
        150.0
    """
    points = list(zip(curve.examples, curve.accuracy, strict=True))
    if points and points[0][1] >= target:
        return points[0][0]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if y1 >= target > y0:
            return x0 + (target - y0) / (y1 - y0) * (x1 - x0)
    return None


@dataclass
class Ratio:
    """Uniform examples to reach the targeted arm's final accuracy, over targeted examples.
    ``censored``: uniform never got there, so ``value`` (its last examples / targeted's) is a
    lower bound."""

    value: float
    censored: bool
    target_accuracy: float
    targeted_examples: float
    uniform_examples: float | None

    def text(self) -> str:
        return f"> {self.value:.2f}" if self.censored else f"{self.value:.2f}"


def efficiency_ratio(targeted: Curve, uniform: Curve) -> Ratio | None:
    """The data-efficiency ratio of one seed; None when there is nothing to reach: the targeted
    arm trained on nothing or ended no better than the untrained student."""
    final_examples, final_accuracy = targeted.examples[-1], targeted.accuracy[-1]
    if final_examples <= 0 or final_accuracy <= targeted.accuracy[0]:
        return None
    needed = examples_to_reach(uniform, final_accuracy)
    if needed is None:
        return Ratio(
            uniform.examples[-1] / final_examples, True, final_accuracy, final_examples, None
        )
    return Ratio(needed / final_examples, False, final_accuracy, final_examples, needed)


def accuracy_at(curve: Curve, examples: float) -> float | None:
    """The curve's accuracy at ``examples`` (linear between cycles); None beyond its last point.

    Example:
        >>> round(accuracy_at(Curve([0, 100, 200], [0.1, 0.2, 0.4]), 150), 3)
        0.3
    """
    points = list(zip(curve.examples, curve.accuracy, strict=True))
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 <= examples <= x1:
            return y0 if x1 == x0 else y0 + (examples - x0) / (x1 - x0) * (y1 - y0)
    return None


def equal_example_gains(targeted: list[Curve], uniform: list[Curve]) -> list[dict]:
    """Per targeted cycle (after the first): targeted accuracy minus uniform's at the same
    number of examples, paired by seed; mean and 95% interval over the seeds where uniform's
    curve reaches that many examples. Unlike the ratio, which reads one point (the final
    accuracy), this reads the whole curve."""
    rows = []
    for i in range(1, min(len(c.accuracy) for c in targeted)):
        diffs, examples = [], []
        for t, u in zip(targeted, uniform, strict=True):
            at = accuracy_at(u, t.examples[i])
            if at is not None:
                diffs.append(t.accuracy[i] - at)
                examples.append(t.examples[i])
        if diffs:
            gain, low, high = mean_interval(diffs)
            rows.append(
                {
                    "cycle": i,
                    "examples": statistics.fmean(examples),
                    "gain": gain,
                    "low": low,
                    "high": high,
                    "seeds": len(diffs),
                }
            )
    return rows


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval (the mean itself when there is one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    from scipy.stats import t

    half = t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def arm_table(curves: list[Curve]) -> list[dict]:
    """Per cycle over seeds: mean examples, mean accuracy and its 95% interval."""
    rows = []
    for i in range(min(len(c.accuracy) for c in curves)):
        acc, low, high = mean_interval([c.accuracy[i] for c in curves])
        rows.append(
            {
                "cycle": i,
                "examples": statistics.fmean(c.examples[i] for c in curves),
                "accuracy": acc,
                "low": low,
                "high": high,
            }
        )
    return rows


def summarize(
    curves: dict[str, list[Curve]], outcomes: dict | None = None, mastered: set[str] | None = None
) -> dict:
    """Every arm's mean curve, the first-crossing ratio per seed and over seeds, and, given
    each arm's item-level ``outcomes`` (:func:`tools.report.comparison.load_outcomes`), the
    data-efficiency multiplier per targeted cycle, the paired comparison after equal cycles and the
    seeds that comparison would need to tell a given difference from 0
    (:mod:`tools.stats.multiplier`); with an oracle arm, the three-arm comparison
    (:func:`tools.stats.headroom.three_arms`), on the skills not in ``mastered`` too."""
    ratios = [
        efficiency_ratio(t, u) for t, u in zip(curves["targeted"], curves["uniform"], strict=True)
    ]
    known = [r for r in ratios if r is not None]
    summary: dict = {
        "arms": {arm: arm_table(arm_curves) for arm, arm_curves in curves.items()},
        "ratios": ratios,
        "gains": equal_example_gains(curves["targeted"], curves["uniform"]),
    }
    if outcomes is not None and outcomes["targeted"].cycles > 1:
        from failforward.tools.stats.multiplier import (
            data_efficiency,
            paired_differences,
            seeds_needed,
        )

        summary["multipliers"] = data_efficiency(outcomes["targeted"], outcomes["uniform"])
        summary["paired"] = paired_differences(outcomes["targeted"], outcomes["uniform"])
        summary["seeds_needed"] = seeds_needed(outcomes["targeted"], outcomes["uniform"])
        if "oracle" in outcomes:
            from failforward.tools.stats.headroom import three_arms

            summary["three_arms"] = three_arms(outcomes, mastered)
    if outcomes is not None:
        from failforward.tools.stats.multiplier import skill_curves

        found = {arm: skill_curves(outcomes[arm]) for arm in outcomes}
        if any(found.values()):
            summary["skills"] = found
    if known:
        mean, low, high = mean_interval([r.value for r in known])
        summary |= {
            "ratio": mean,
            "ratio_low": max(0.0, low),  # a ratio of examples is never negative
            "ratio_high": high,
            "censored": sum(r.censored for r in known),
            "seeds": len(known),
        }
    return summary


def ratio_sentence(summary: dict) -> str:
    """The headline, honest about seeds where uniform never caught up."""
    if "ratio" not in summary:
        return (
            "no data-efficiency ratio: in no seed did the targeted arm end above the untrained "
            "student's accuracy, so there is no accuracy for uniform to reach"
        )
    text = (
        f"data-efficiency ratio {summary['ratio']:.2f} "
        f"(95% interval {summary['ratio_low']:.2f}-{summary['ratio_high']:.2f}, "
        f"{summary['seeds']} seeds)"
    )
    skipped = len(summary["ratios"]) - summary["seeds"]
    if skipped:
        text += f"; {skipped} seeds left out: targeted ended no better than untrained"
    if summary["censored"]:
        text = (
            f"data-efficiency ratio > {summary['ratio']:.2f}: in {summary['censored']} of "
            f"{summary['seeds']} seeds uniform never reached targeted's final accuracy, so those "
            "seeds count their last uniform examples and the mean is a lower bound "
            f"(95% interval of that bound {summary['ratio_low']:.2f}-{summary['ratio_high']:.2f})"
        )
    return text
