"""The data-efficiency arithmetic of ``failforward compare``."""

import pytest

from failforward.tools.stats.curves import (
    Curve,
    efficiency_ratio,
    examples_to_reach,
    mean_interval,
    ratio_sentence,
    run_curve,
    summarize,
)


def test_curve_from_metrics_starts_at_zero_examples():
    metrics = {
        0: {"test_acc": 0.1, "train_examples_total": 0},
        1: {"test_acc": 0.2, "train_examples_total": 70},
        2: {"test_acc": 0.3, "train_examples_total": 150},
    }
    assert run_curve(metrics) == Curve([0.0, 70.0, 150.0], [0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    "target, expected",
    [(0.1, 0.0), (0.15, 50.0), (0.3, 150.0), (0.4, 200.0), (0.41, None)],
)
def test_examples_to_reach_interpolates_the_first_crossing(target, expected):
    curve = Curve([0, 100, 200, 300], [0.1, 0.2, 0.4, 0.35])
    found = examples_to_reach(curve, target)
    assert found == (expected if expected is None else pytest.approx(expected))


def test_a_curve_that_dips_counts_its_first_crossing():
    assert examples_to_reach(Curve([0, 100, 200, 300], [0.1, 0.3, 0.2, 0.3]), 0.3) == 100


def test_ratio_when_uniform_catches_up():
    ratio = efficiency_ratio(
        Curve([0, 100, 200], [0.1, 0.2, 0.3]),
        Curve([0, 100, 200, 300, 400], [0.1, 0.15, 0.2, 0.25, 0.35]),
    )
    assert not ratio.censored and ratio.uniform_examples == pytest.approx(350)
    assert ratio.value == pytest.approx(1.75) and ratio.text() == "1.75"


def test_ratio_when_uniform_never_gets_there_is_a_lower_bound():
    ratio = efficiency_ratio(Curve([0, 100], [0.1, 0.3]), Curve([0, 90, 180], [0.1, 0.2, 0.25]))
    assert ratio.censored and ratio.value == pytest.approx(1.8) and ratio.text() == "> 1.80"


def test_no_ratio_without_a_gain_or_examples():
    assert efficiency_ratio(Curve([0, 100], [0.2, 0.2]), Curve([0, 100], [0.2, 0.3])) is None
    assert efficiency_ratio(Curve([0, 0], [0.1, 0.3]), Curve([0, 100], [0.1, 0.3])) is None


def test_mean_interval_is_a_t_interval():
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.303; sd = 1; half = 4.303 / sqrt(3)
    assert mean == 2.0 and high - mean == pytest.approx(4.303 / 3**0.5, rel=1e-3)
    assert mean_interval([1.5]) == (1.5, 1.5, 1.5)


def test_summary_over_seeds_and_its_sentence():
    targeted = [
        Curve([0, 100], [0.1, 0.3]),
        Curve([0, 100], [0.1, 0.3]),
        Curve([0, 100], [0.1, 0.1]),
    ]
    uniform = [
        Curve([0, 100, 200], [0.1, 0.2, 0.3]),
        Curve([0, 100], [0.1, 0.2]),
        Curve([0, 100], [0.1, 0.2]),
    ]
    summary = summarize({"targeted": targeted, "uniform": uniform})
    assert [r and r.value for r in summary["ratios"]] == [2.0, 1.0, None]
    assert summary["seeds"] == 2 and summary["censored"] == 1 and summary["ratio"] == 1.5
    assert summary["ratio_low"] == 0.0  # t(0.975, 1) * 0.707 / 1.414 > 1.5: clipped at 0
    sentence = ratio_sentence(summary)
    assert sentence.startswith("data-efficiency ratio > 1.50: in 1 of 2 seeds uniform never")
    assert summary["arms"]["targeted"][1]["accuracy"] == pytest.approx(0.7 / 3)


def test_gain_at_equal_examples_reads_uniform_where_targeted_stood():
    from failforward.tools.stats.curves import accuracy_at, equal_example_gains

    uniform = [Curve([0, 100, 200], [0.1, 0.2, 0.3]), Curve([0, 100, 200], [0.1, 0.3, 0.3])]
    targeted = [Curve([0, 50, 150], [0.1, 0.25, 0.3]), Curve([0, 50, 250], [0.1, 0.3, 0.5])]
    assert accuracy_at(uniform[0], 150) == pytest.approx(0.25)
    assert accuracy_at(uniform[0], 250) is None
    gains = equal_example_gains(targeted, uniform)
    # cycle 1 at 50 examples: 0.25 - 0.15 and 0.3 - 0.2; cycle 2: 0.3 - 0.25, seed 1 beyond uniform
    assert [g["seeds"] for g in gains] == [2, 1]
    assert gains[0]["gain"] == pytest.approx(0.1) and gains[1]["gain"] == pytest.approx(0.05)
    assert gains[0]["examples"] == 50
