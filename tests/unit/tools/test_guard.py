import random
from pathlib import Path

import pytest

from failforward.tools.stats.guard import binomial_tail, guard_item, paired_drop, students


def test_only_discordant_items_count_and_the_test_is_exact():
    drop = paired_drop([True, True, True, False, False], [False, False, True, False, True])
    assert (drop.lost, drop.gained, drop.items) == (2, 1, 5)
    assert drop.p_value == pytest.approx(binomial_tail(2, 3)) == pytest.approx(0.5)
    assert not drop.regressed
    assert binomial_tail(0, 0) == 1.0 and binomial_tail(10, 10) == pytest.approx(2**-10)
    with pytest.raises(ValueError, match="differ in length"):
        paired_drop([True], [True, False])


def test_a_real_drop_is_caught_and_a_gain_never_is():
    before = [True] * 30 + [False] * 20
    assert paired_drop(before, [False] * 8 + [True] * 22 + [False] * 20).regressed  # 8 lost, 0 won
    assert not paired_drop(before, [True] * 50).regressed  # 20 gained


@pytest.mark.parametrize("items", [20, 50, 150])
def test_false_alarms_on_an_unchanged_student_stay_under_five_percent(items):
    """Two evaluations of the same student (each item right with its own probability, sampled
    independently twice, as a sampled decoder or another seed would) are not a regression."""
    rng = random.Random(items)
    alarms, trials = 0, 2000
    for _ in range(trials):
        p = [rng.random() for _ in range(items)]
        before = [rng.random() < q for q in p]
        after = [rng.random() < q for q in p]
        alarms += paired_drop(before, after).regressed
    assert alarms / trials < 0.05


def test_students_follow_the_guards_decisions():
    metrics = {
        0: {"probe_acc": 0.4},
        1: {"probe_acc": 0.6, "train_steps": 4, "guard_lost": 0, "guard_rolled_back": 0},
        2: {"probe_acc": 0.2, "train_steps": 4, "guard_lost": 9, "guard_rolled_back": 1},
        3: {"probe_acc": 0.5, "train_examples": 0},  # the critic accepted nothing: no training
    }
    found = students(metrics)
    assert (found.final, found.best) == (1, 1)
    assert [g["cycle"] for g in found.guarded] == [1, 2] and found.guarded[1]["rolled_back"] == 1
    assert found.checkpoint(Path("/r"), 0) is None
    assert [i for i in range(6) if guard_item(i)] == [0, 2, 4]
