import numpy as np
import pytest

from agents.analyst import (
    allocate,
    cluster_failures,
    failure_features,
    name_from_metadata,
    plan_targeted,
    plan_uniform,
    source_overrides,
)
from agents.schemas import Failure, FailureCluster
from tools.packs import load_pack


@pytest.fixture(scope="module")
def pack():
    return load_pack("arithmetic")


def _failure(terms, digits, extracted="5", expected="7"):
    return Failure(
        question=f"{terms} terms {digits} digits =",
        expected=expected,
        output=extracted,
        extracted=extracted,
        metadata={"num_terms": terms, "num_digits": digits},
    )


@pytest.mark.parametrize(
    ("weights", "budget"), [([5, 3, 2], 7), ([1, 1, 1], 10), ([9, 1], 1), ([3], 96)]
)
def test_allocate_sums_to_budget_and_follows_weights(weights, budget):
    shares = allocate(weights, budget)
    assert sum(shares) == budget
    exact = [budget * w / sum(weights) for w in weights]
    assert all(abs(share - x) < 1 for share, x in zip(shares, exact, strict=True))


def test_allocate_edge_cases():
    assert allocate([5, 3, 2], 7) == [4, 2, 1]
    assert allocate([0, 0], 5) == [0, 0]
    assert allocate([], 5) == []


def test_failure_features():
    assert failure_features(_failure(2, 1, extracted="")) == ["no answer"]
    assert failure_features(_failure(2, 1, extracted="-7")) == ["sign error"]
    assert failure_features(_failure(2, 1, extracted="5")) == ["near miss"]
    assert failure_features(_failure(2, 1, extracted="500")) == ["far off"]


def test_cluster_failures_recovers_groups_and_knobs(pack):
    failures = [_failure(2, 1) for _ in range(6)] + [_failure(3, 2, extracted="") for _ in range(4)]

    def embedder(texts):  # two well separated directions, one per group
        return np.array(
            [[1.0, 0.0] if "2 terms" in t else [0.0, 1.0] for t in texts], dtype=np.float32
        )

    def clusterer(vectors, k, seed):
        return (vectors[:, 1] > 0.5).astype(int)

    clusters, labels = cluster_failures(failures, pack, embedder, clusterer, k=2)
    assert labels == [0] * 6 + [1] * 4
    assert [c.size for c in clusters] == [6, 4]
    assert clusters[0].knobs == {"num_terms": (2, 2), "num_digits": (1, 1)}
    assert clusters[1].name == "num_terms=3, num_digits=2: no answer"


def test_plan_targeted_budget_and_knob_ranges(pack):
    clusters = [
        FailureCluster(
            cluster_id=0, name="a", size=30, knobs={"num_terms": (3, 3), "num_digits": (2, 2)}
        ),
        FailureCluster(cluster_id=1, name="b", size=10, knobs={"num_terms": (2, 9)}),
    ]
    plan = plan_targeted(clusters, pack, budget=40, cycle=2)
    assert plan.budget == 40 and [t.budget for t in plan.targets] == [30, 10]
    assert plan.targets[0].source_config == {
        "min_terms": 3,
        "max_terms": 3,
        "min_digits": 2,
        "max_digits": 2,
    }
    assert plan.targets[1].source_config == {
        "min_terms": 2,
        "max_terms": 6,
    }  # clamped to the ceiling
    assert plan.targets[0].target_id == "c2-k0" and plan.targets[0].cluster_id == 0


def test_source_overrides_respect_floor(pack):
    assert source_overrides({"num_terms": (1, 1)}, pack) == {"min_terms": 2, "max_terms": 2}


def test_plan_uniform(pack):
    plan = plan_uniform(pack, budget=50, cycle=1)
    assert plan.mode == "uniform" and plan.budget == 50 and plan.targets[0].source_config == {}


def test_repeated_names_are_told_apart(pack):
    failures = [_failure(2, 1) for _ in range(4)]
    clusters, _ = cluster_failures(
        failures,
        pack,
        lambda texts: np.zeros((len(texts), 2), dtype=np.float32),
        lambda vectors, k, seed: np.array([0, 0, 1, 1]),
        k=2,
    )
    assert [c.name for c in clusters] == [
        "num_terms=2, num_digits=1: near miss",
        "num_terms=2, num_digits=1: near miss (2)",
    ]


def test_name_from_metadata_without_knobs():
    assert name_from_metadata([_failure(2, 1, extracted="")], []) == "no answer"
