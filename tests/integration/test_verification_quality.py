"""Verification without a solver against a scripted critic on loopback HTTP whose teacher is wrong
on a known 20% of candidates and whose own answers are wrong a quarter of the time, half of those
the teacher's own mistake (``tests.scripted.NoisyCritic``). The rates asserted are those its
error model implies (binomial tails), with room for 100 candidates' sampling noise."""

import pytest

from tests.scripted import critique_scripted


def _rates(tmp_path, how, samples):
    rows, verdicts, calls = critique_scripted(tmp_path / how, how, samples, n=100)
    right = [v for (_, _, ok), v in zip(rows, verdicts, strict=True) if ok]
    wrong = [v for (_, _, ok), v in zip(rows, verdicts, strict=True) if not ok]
    assert len(wrong) == 20
    accepted = [v for v in verdicts if v.accepted]
    assert {v.verified_by for v in accepted} == {how}
    wrong_accepted = sum(v.accepted for v in wrong) / len(wrong)
    right_rejected = sum(not v.accepted for v in right) / len(right)
    return wrong_accepted, right_rejected, calls / len(accepted)


def test_self_consistency_of_five_rejects_the_teachers_mistakes(tmp_path):
    wrong_accepted, right_rejected, cost = _rates(tmp_path, "consistency", 5)
    # accepting a wrong claim takes 3 of 5 samples repeating it (p = 0.125 each): 1.8%
    assert wrong_accepted <= 0.10
    # rejecting a right one takes 3 of 5 samples wrong (p = 0.25 each): 10.4%
    assert right_rejected <= 0.20
    assert 5 <= cost <= 8  # five calls a candidate, over the accepted share


def test_one_sample_lets_shared_mistakes_through_and_check_lets_more(tmp_path):
    single, _, _ = _rates(tmp_path / "one", "consistency", 1)
    check, check_rejected, cost = _rates(tmp_path / "check", "check", 1)
    assert single == pytest.approx(0.125, abs=0.1)  # one sample repeating the mistake
    assert check == pytest.approx(0.30, abs=0.15)  # sycophancy 0.2 + shared mistakes
    assert check_rejected == pytest.approx(0.20, abs=0.1)
    assert cost < 2  # one check a candidate
