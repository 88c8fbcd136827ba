"""A multi-skill pack's skill runs through analysis and planning: failure texts name it, cells
and modes carry it, each target draws from its skill alone with that skill's knobs, a stepping
stone stays inside its skill, and the uniform arm follows the mixture's weights."""

import numpy as np
import pytest

from failforward.agents.analyst import cluster_failures, failure_text, near_success
from failforward.agents.generator import generate_procedural, quotas
from failforward.agents.planner import cell_yields, plan_targeted, plan_uniform
from failforward.tools.embed.faiss_index import Clustering
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Failure
from tests.unit.tools.test_skills import _spec, _write


@pytest.fixture
def pack(tmp_path):
    return load_pack(str(_write(tmp_path, _spec())))


def _failures(items, said="0"):
    return [
        Failure(
            question=i.question, expected=i.answer, output=said, extracted=said, metadata=i.metadata
        )
        for i in items
    ]


def _two_clusters(n_first):
    def clusterer(vectors, seed):
        labels = np.array([0] * n_first + [1] * (len(vectors) - n_first))
        return Clustering(labels, np.eye(2, vectors.shape[1], dtype=np.float32), 2, 0.5)

    return clusterer


def test_skills_run_through_clusters_and_plans(pack):
    source = pack.make_source()
    two_digit = {"skill": "products", "min_digits": 2, "max_digits": 2}
    products = source.sample(12, seed=1, overrides=two_digit)
    sums = source.sample(6, seed=2, overrides={"skill": "sums", "min_terms": 3, "max_terms": 3})
    failures = _failures(products + sums)
    assert failure_text(failures[0], []).startswith("skill products\n")

    def embed(texts):
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    clusters, _ = cluster_failures(failures, pack, embed, clusterer=_two_clusters(12))
    by_skill = {c.knob_modes["skill"]: c for c in clusters}
    assert by_skill["products"].cells[0].knobs == {"skill": "products", "num_digits": 2}
    assert by_skill["sums"].knob_modes == {"skill": "sums", "num_terms": 3}
    assert by_skill["products"].name.startswith("skill=products")

    # The probe: two-digit products half right, three-term sums never, two-term sums often.
    probe = [(i, float(k % 2)) for k, i in enumerate(source.sample(10, 3, two_digit))]
    probe += [(i, 0.0) for i in sums]
    probe += [(i, 1.0) for i in source.sample(6, 4, {"skill": "sums", "max_terms": 2})]
    clusters = near_success(clusters, probe)
    plan = plan_targeted(clusters, pack, 40, cycle=1, probe=probe)
    configs = {t.kind: t.source_config for t in plan.targets}
    assert configs["cluster"] == two_digit
    assert configs["stepping_stone"] == {"skill": "sums", "min_terms": 2, "max_terms": 2}
    cluster_target = next(t for t in plan.targets if t.kind == "cluster")
    assert cluster_target.cell == {"skill": "products", "num_digits": 2}

    drawn = generate_procedural(source, plan, run_seed=0)
    for candidate in drawn:
        target = next(t for t in plan.targets if t.target_id == candidate.lineage.target_id)
        if target.kind == "cluster":
            assert candidate.metadata["skill"] == "products"
            assert candidate.metadata["num_digits"] == 2
        elif target.kind == "stepping_stone":
            assert candidate.metadata["skill"] == "sums"
            assert candidate.metadata["num_terms"] == 2
    rows = [
        {"cycle": 1, "source": "procedural", "metadata": c.metadata, "accepted": 1} for c in drawn
    ]
    assert "skill=products,num_digits=2" in cell_yields(rows, pack.cell_of)


def test_uniform_data_follows_the_mixture_weights(pack):
    plan = plan_uniform(pack, 30, cycle=1)
    drawn = generate_procedural(pack.make_source(), plan, run_seed=0, overdraw=2)
    skills = [c.metadata["skill"] for c in drawn]
    assert skills.count("sums") == 40 and skills.count("products") == 20
    # the critic keeps the mixture's shares of the budget
    target = plan.targets[0].target_id
    assert quotas(pack.make_source(), plan) == {(target, "sums"): 20, (target, "products"): 10}
