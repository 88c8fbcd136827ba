"""benchmarks/spread.py: the seed spread of a paired difference and its item and seed parts."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "spread.py"


@pytest.fixture(scope="module")
def spread():
    spec = importlib.util.spec_from_file_location("spread", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["spread"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def _record(oracle_hard: list[int], uniform_hard: list[int]) -> dict:
    """10 mastered items (all right) and 10 hard ones, of which the first k are right."""

    def seed(k: int) -> list[str]:
        return ["1" * 10 + "0" * 10, "1" * 10 + "1" * k + "0" * (10 - k)]

    return {
        "skills": ["easy"] * 10 + ["hard"] * 10,
        "mastered": ["easy"],
        "arms": {
            arm: {"correct": [seed(k) for k in hard], "examples": [[0, 8]] * len(hard)}
            for arm, hard in (("oracle", oracle_hard), ("uniform", uniform_hard))
        },
    }


def test_the_difference_is_read_on_the_items_not_mastered_per_seed(spread):
    found = spread.spread(_record([6, 4, 5], [2, 2, 2]), "x", cycle=1)
    assert found.items == 10 and found.per_seed == [40.0, 20.0, 30.0]
    assert found.total == pytest.approx(100.0)
    # per seed, the items' differences are 0/1: variance p(1-p) * n/(n-1) / n, in points^2
    expected = np.mean([100**2 * p * (1 - p) / 9 for p in (0.4, 0.2, 0.3)])
    assert found.item_part == pytest.approx(expected)
    assert found.seed_part == pytest.approx(max(0.0, 100.0 - expected))
    everything = spread.spread(_record([6, 4, 5], [2, 2, 2]), "x", cycle=1, focus=False)
    assert everything.items == 20 and everything.per_seed == [20.0, 10.0, 15.0]


def test_seeds_that_agree_leave_no_seed_part(spread):
    found = spread.spread(_record([5, 5, 5, 5], [2, 2, 2, 2]), "x", cycle=1)
    assert found.total == 0 and found.seed_part == 0 and found.item_part > 0
