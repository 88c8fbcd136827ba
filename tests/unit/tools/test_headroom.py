"""The three-arm figures: headroom, the share recovered, and the mastered skills' fall."""

import numpy as np
import pytest

from failforward.tools.report.report import headroom_lines
from failforward.tools.stats.headroom import three_arms
from failforward.tools.stats.multiplier import ArmOutcomes

SKILLS = ["easy"] * 10 + ["hard"] * 10


def _arm(seed_rows):
    """seed_rows[s][c]: (easy items right, hard items right) after cycle c, for seed s."""
    correct = [
        [[i < easy for i in range(10)] + [i < hard for i in range(10)] for easy, hard in cycles]
        for cycles in seed_rows
    ]
    examples = [[8 * c for c in range(len(cycles))] for cycles in seed_rows]
    return ArmOutcomes(np.array(examples), np.array(correct), SKILLS)


def _outcomes(uniform_hard, targeted_hard, oracle_hard, easy_after=(10, 10, 10)):
    u, t, o = (
        [[(10, 2), (easy_after[k], h)] for h in hard]
        for k, hard in enumerate((uniform_hard, targeted_hard, oracle_hard))
    )
    return {"targeted": _arm(t), "uniform": _arm(u), "oracle": _arm(o)}


def test_the_plan_recovers_its_share_of_the_oracle_gain_on_the_skills_not_mastered():
    outcomes = _outcomes([3, 3, 3, 3], [5, 4, 5, 6], [7, 7, 7, 7])
    found = three_arms(outcomes, {"easy"}, reps=500)
    focus = found.focus
    assert focus.items == 10
    assert focus.oracle[0].difference == pytest.approx(0.4)
    assert focus.targeted[0].difference == pytest.approx(0.2)
    assert focus.recovered[0].share == pytest.approx(0.5)
    assert focus.oracle[0].low > 0 and focus.recovered[0].low < 0.5 < focus.recovered[0].high
    # on every item the same gains are diluted by the mastered half
    assert found.all.oracle[0].difference == pytest.approx(0.2)
    assert found.mastered == ["easy"]


def test_the_multiplier_on_the_skills_not_mastered_reads_uniforms_longer_curve():
    """uniform gets 2 of 10 hard items more per cycle (3 cycles); targeted reaches uniform's
    cycle-2 accuracy after one cycle: 2x as efficient there, whatever the mastered items do."""
    uniform = _arm([[(10, 2), (10, 4), (10, 6), (10, 8)]] * 4)
    targeted = _arm([[(10, 2), (6, 6)]] * 4)
    oracle = _arm([[(10, 2), (10, 8)]] * 4)
    found = three_arms({"targeted": targeted, "uniform": uniform, "oracle": oracle}, {"easy"}, 50)
    (multiplier,) = found.focus_multiplier
    assert multiplier.cycle == 1 and multiplier.value == pytest.approx(2.0)
    assert multiplier.excludes_one
    lines = "\n".join(headroom_lines(found))
    assert "multiplier on the skills not mastered" in lines and "cycle 1 2.00x" in lines


def test_no_headroom_leaves_the_share_undefined():
    found = three_arms(_outcomes([3, 4, 3, 4], [4, 3, 4, 3], [3, 3, 4, 4]), {"easy"}, reps=200)
    assert found.focus.oracle[0].difference == pytest.approx(0.0)
    assert found.focus.recovered[0].share is None
    assert "gained nothing" in found.focus.recovered[0].text()


def test_a_fall_on_the_mastered_skills_shows_per_arm():
    outcomes = _outcomes([3] * 4, [5] * 4, [7] * 4, easy_after=(10, 6, 10))
    falls = three_arms(outcomes, {"easy"}, reps=200).mastered_falls
    assert falls["targeted"][0].difference == pytest.approx(-0.4)
    assert falls["targeted"][0].high < 0  # four of ten items fell in every seed
    assert falls["uniform"][0].difference == 0 and falls["oracle"][0].difference == 0


def test_a_lead_over_a_falling_uniform_shows_as_no_learning_on_the_skills_not_mastered():
    """hard items start at 5 of 10: uniform loses 3, targeted and the oracle keep 5; both lead
    uniform by 3 items, and only the per-arm change shows that neither learned anything"""
    held, lost = _arm([[(10, 5), (10, 5)]] * 4), _arm([[(10, 5), (10, 2)]] * 4)
    found = three_arms({"targeted": held, "uniform": lost, "oracle": held}, {"easy"}, reps=200)
    assert found.focus.oracle[0].difference == pytest.approx(0.3)
    changes = found.focus_changes
    assert changes["uniform"][0].difference == pytest.approx(-0.3)
    assert changes["targeted"][0].difference == 0 and changes["oracle"][0].difference == 0
    lines = "\n".join(headroom_lines(found))
    assert "Change on the skills not mastered since cycle 0" in lines
    assert "| uniform | -30.0 points" in lines


def test_without_skills_or_mastered_ones_only_all_items_are_compared():
    outcomes = _outcomes([3] * 2, [5] * 2, [7] * 2)
    assert three_arms(outcomes, None, reps=50).focus is None
    assert three_arms(outcomes, {"nothing"}, reps=50).focus is None
