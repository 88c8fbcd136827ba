import pytest

from failforward.training.config import TrainConfig
from failforward.training.replay import replay_sample

BUFFER = [{"id": i} for i in range(100)]


@pytest.mark.parametrize(("mix", "n_new", "wanted"), [(0.0, 50, 0), (0.5, 50, 25), (1.0, 40, 40)])
def test_replay_follows_the_mix_ratio(mix, n_new, wanted):
    sample = replay_sample(BUFFER, n_new, mix, size=1000, seed=0)
    assert len(sample) == wanted and len({e["id"] for e in sample}) == wanted


def test_replay_draws_only_from_the_most_recent_buffer_and_is_deterministic():
    sample = replay_sample(BUFFER, 40, 2.0, size=30, seed=3)
    assert len(sample) == 30 and {e["id"] for e in sample} == set(range(70, 100))
    assert replay_sample(BUFFER, 10, 1.0, 50, seed=1) == replay_sample(BUFFER, 10, 1.0, 50, seed=1)
    assert replay_sample([], 10, 1.0, 50, seed=1) == []
    assert replay_sample(BUFFER, 10, 1.0, 0, seed=1) == []


def test_replay_settings_are_checked():
    with pytest.raises(ValueError, match="replay"):
        TrainConfig(replay_mix=-0.1)
