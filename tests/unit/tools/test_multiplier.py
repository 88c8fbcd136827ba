"""The data-efficiency multiplier: a monotone fit of the uniform arm inverted at the targeted
arm's accuracy, with a bootstrap interval over seeds and test items that covers the truth."""

import math

import numpy as np
import pytest

from failforward.tools.report.report import multiplier_lines
from failforward.tools.stats.multiplier import (
    ArmOutcomes,
    data_efficiency,
    examples_for,
    monotone_fit,
    paired_differences,
    seeds_for,
    seeds_needed,
)


def ability(examples):
    """Logit accuracy, linear in log examples: the shape SmolLM2's curves have here."""
    return -1.6 + 0.55 * np.log1p(np.asarray(examples, dtype=float) / 30.0)


def simulate(rng, multiplier=2.0, seeds=4, items=300, sigma=0.3, targeted=3, uniform=6):
    """Two arms on one test set: items of spread difficulty, each run's student off the curve by
    a seed effect (``sigma`` in logits), each answer a coin flip of its probability. Targeted
    examples teach what ``multiplier`` times as many uniform ones do, so the truth is known."""
    difficulty = rng.normal(0.0, 1.0, items)

    def examples(cycles, per_cycle):
        steps = [[per_cycle * c + rng.integers(-8, 8) for c in range(1, cycles + 1)]]
        return np.array([[0, *steps[0]] for _ in range(seeds)], dtype=float)

    def answers(shown, scale):
        logit = ability(shown * scale) + rng.normal(0.0, sigma, shown.shape)
        chance = 1 / (1 + np.exp(-(logit[:, :, None] - difficulty)))
        return rng.random(chance.shape) < chance

    t_ex, u_ex = examples(targeted, 90), examples(uniform, 96)
    t, u = answers(t_ex, multiplier), answers(u_ex, 1.0)
    u[:, 0] = t[:, 0] = t[0, 0]  # one untrained student, evaluated once
    return ArmOutcomes(t_ex, t), ArmOutcomes(u_ex, u)


def test_monotone_fit_pools_a_dip():
    fitted = monotone_fit(np.log1p([0, 100, 200, 400]), np.array([0.1, 0.3, 0.25, 0.5]))
    assert fitted == pytest.approx([0.1, 0.275, 0.275, 0.5])


def test_examples_for_reads_the_fit_in_log_examples():
    x = np.log1p([0.0, 99.0, 9999.0])
    fitted = np.array([0.1, 0.2, 0.4])
    assert examples_for(x, fitted, 0.05) == 0.0  # the untrained student is already there
    assert examples_for(x, fitted, 0.3) == pytest.approx(999.0)  # halfway in log(1 + n)
    assert math.isinf(examples_for(x, fitted, 0.41))


def test_recovers_a_known_multiplier_from_clean_curves():
    # many items and no seed effect: what is left is the fit's own error
    t, u = simulate(np.random.default_rng(0), multiplier=2.0, items=20000, sigma=0.0)
    for found in data_efficiency(t, u, reps=50):
        assert found.value == pytest.approx(2.0, rel=0.10)
        assert found.low <= 2.0 <= found.high


@pytest.mark.slow  # 17 s; test_recovers_a_known_multiplier_from_clean_curves checks the fit
def test_the_interval_covers_the_true_multiplier():
    rng = np.random.default_rng(7)
    covered = {1: 0, 2: 0, 3: 0}
    repetitions = 100
    for r in range(repetitions):
        t, u = simulate(rng)
        for found in data_efficiency(t, u, reps=200, seed=r):
            covered[found.cycle] += found.low <= 2.0 <= found.high
    assert all(count / repetitions >= 0.90 for count in covered.values()), covered


def test_beyond_the_uniform_curve_the_multiplier_is_censored():
    # uniform never gets past 20%; targeted reaches 40%
    shape = (2, 3, 10)
    t, u = np.zeros(shape, bool), np.zeros(shape, bool)
    t[:, 1, :3] = t[:, 2, :4] = True
    u[:, 1, :1] = u[:, 2, :2] = True
    examples = np.array([[0, 100, 200]] * 2, dtype=float)
    found = data_efficiency(ArmOutcomes(examples, t), ArmOutcomes(examples, u), reps=100)
    assert all(m.censored for m in found)
    assert found[1].bound == pytest.approx(1.0) and found[1].text().startswith("> 1.00x")
    assert math.isinf(found[1].high) and "to > 1.00" in found[1].text()


def test_a_uniform_curve_that_does_not_rise_leaves_the_multiplier_undefined():
    # uniform falls 40% -> 30% -> 20% with data; targeted holds 40%: no uniform budget matches it,
    # and "> 1.00x" would read as a win
    shape = (2, 3, 10)
    t, u = np.zeros(shape, bool), np.zeros(shape, bool)
    t[:, :, :4] = True
    u[:, 0, :4] = u[:, 1, :3] = u[:, 2, :2] = True
    examples = np.array([[0, 100, 200]] * 2, dtype=float)
    found = data_efficiency(ArmOutcomes(examples, t), ArmOutcomes(examples, u), reps=50)
    assert all(m.flat and not m.excludes_one for m in found)
    assert found[1].text().startswith("undefined")
    lines = "\n".join(multiplier_lines(found))
    assert "not decided: the uniform arm's examples did not raise its accuracy" in lines


def test_arms_on_different_test_sets_are_refused():
    t = ArmOutcomes(np.zeros((2, 2)), np.zeros((2, 2, 5), bool))
    u = ArmOutcomes(np.zeros((2, 2)), np.zeros((2, 2, 6), bool))
    with pytest.raises(ValueError, match="share seeds and test items"):
        data_efficiency(t, u)


def test_paired_difference_counts_the_items_each_arm_alone_got():
    examples = np.array([[0, 50]], dtype=float)
    t = np.zeros((1, 2, 40), bool)
    u = np.zeros((1, 2, 40), bool)
    t[0, 1, :12] = True  # targeted alone right on 10, uniform alone on none, 2 both
    u[0, 1, 10:12] = True
    (row,) = paired_differences(ArmOutcomes(examples, t), ArmOutcomes(examples, u), reps=200)
    assert (row.targeted_only, row.uniform_only) == (10, 0)
    assert row.difference == pytest.approx(0.25)
    assert row.p_value == pytest.approx(2 * 0.5**10)
    assert row.low > 0


def test_skill_curves_split_accuracy_and_spending_by_skill():
    """Skill a is always right, b right only after cycle 1 in every seed; the arm trained only
    on b, so a shows 0 examples (a skill absent from the arm's data) and b its 10 per cycle."""
    from failforward.tools.stats.multiplier import skill_curves

    seeds, items = 3, 40
    correct = np.zeros((seeds, 2, items), dtype=bool)
    correct[:, :, :20] = True
    correct[:, 1, 20:] = True
    arm = ArmOutcomes(
        np.array([[0, 10]] * seeds),
        correct,
        skills=["a"] * 20 + ["b"] * 20,
        skill_examples={"b": np.array([[0, 10]] * seeds)},
    )
    found = skill_curves(arm, reps=200)
    assert [c.accuracy for c in found["a"]] == [1.0, 1.0]
    assert [c.accuracy for c in found["b"]] == [0.0, 1.0]
    assert [c.examples for c in found["a"]] == [0, 0] and found["b"][1].examples == 10
    assert skill_curves(ArmOutcomes(np.array([[0, 1]]), np.ones((1, 2, 3)))) == {}


def test_seeds_for_gives_the_power_it_promises():
    """At the seeds it names, a t-interval over seeds' differences (true mean 2 points, spread 5)
    excludes 0 about 80% of the time; at half as many, clearly less often."""
    from scipy.stats import t

    rng = np.random.default_rng(3)
    n = seeds_for(0.02, 0.05)

    def power(seeds, reps=4000):
        d = rng.normal(0.02, 0.05, (reps, seeds))
        half = t.ppf(0.975, seeds - 1) * d.std(axis=1, ddof=1) / math.sqrt(seeds)
        return float((d.mean(axis=1) - half > 0).mean())

    assert 0.77 <= power(n) <= 0.85
    assert power(n // 2) < 0.60
    assert seeds_for(0.05, 0.05) < n / 4 + 2  # 2.5x the effect: about a sixth of the seeds


def test_seeds_needed_separates_the_seeds_spread_from_the_items():
    """Per-seed differences of 0, +4, -4, +8 points on items that favour neither arm: the seed
    spread is theirs and the items add next to nothing. The same runs with a fifth of the items
    favouring targeted in every seed leave an item part that more seeds cannot remove."""
    seeds, items = 4, 200
    examples = np.array([[0, 50]] * seeds, dtype=float)
    t = np.zeros((seeds, 2, items), bool)
    u = np.zeros((seeds, 2, items), bool)
    rng = np.random.default_rng(0)
    for s, extra in enumerate([0, 8, -8, 16]):  # items only targeted gets, net of uniform's
        picks = rng.permutation(items)
        both = picks[:40]
        t[s, 1, both] = u[s, 1, both] = True
        lead = t if extra > 0 else u
        lead[s, 1, picks[40 : 40 + abs(extra)]] = True
    found = seeds_needed(ArmOutcomes(examples, t), ArmOutcomes(examples, u))
    per_seed = np.array([0, 8, -8, 16]) / items
    assert found.cycle == 1 and found.observed_seeds == 4
    assert found.seed_spread == pytest.approx(per_seed.std(ddof=1))
    assert found.item_spread < 0.004
    assert found.seeds[0.02] == seeds_for(0.02, found.seed_spread, found.item_spread)

    # the same items favour targeted in every seed: an item effect
    t2 = t.copy()
    t2[:, 1, :40] = True
    u2 = u.copy()
    u2[:, 1, :40] = False
    fixed = seeds_needed(ArmOutcomes(examples, t2), ArmOutcomes(examples, u2))
    assert fixed.item_spread > 0.01
    assert fixed.seeds[0.02] > found.seeds[0.02]
    assert seeds_needed(ArmOutcomes(examples[:1], t[:1]), ArmOutcomes(examples[:1], u[:1])) is None
