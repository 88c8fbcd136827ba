import random

import numpy as np
import pytest

from failforward.agents.analyst import (
    cluster_failures,
    ctfidf_keywords,
    failure_features,
    name_from_metadata,
    name_with_llm,
    near_success,
    parse_cluster_name,
    track_clusters,
)
from failforward.agents.endpoints import ChatClient, EndpointConfig
from failforward.tools.embed.faiss_index import Clustering
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Failure, FailureCluster, Item
from failforward.tools.store import RunStore
from tests.fakes import FakeSend


@pytest.fixture(scope="module")
def pack():
    return load_pack("arithmetic")


def _failure(terms, digits, extracted="5", expected="7", question=None):
    return Failure(
        question=question or f"{terms} terms {digits} digits =",
        expected=expected,
        output=extracted,
        extracted=extracted,
        metadata={"num_terms": terms, "num_digits": digits},
    )


def _fixed(labels, k=2):
    def clusterer(vectors, seed):
        centroids = np.eye(k, vectors.shape[1], dtype=np.float32)
        return Clustering(np.array(labels), centroids, k, 0.5)

    return clusterer


def _unit(texts):
    return np.ones((len(texts), 4), dtype=np.float32) / 2


def test_failure_features_use_the_packs_list(pack):
    features = pack.spec.analyst.features
    q = "State the final answer: 23 - 60 + 7 ="  # -30
    assert failure_features(_failure(2, 1, "", question=q), features) == ["empty answer"]
    no_number = _failure(2, 1, "", question=q).model_copy(update={"output": "Sure!"})
    assert failure_features(no_number, features) == ["format error"]
    assert failure_features(_failure(2, 1, "30", "-30", q), features) == ["sign error"]
    assert failure_features(_failure(2, 1, "-20", "-30", q), features) == ["off by a carry"]
    assert failure_features(_failure(2, 1, "-44", "-30", q), features) == ["wrong operation"]
    assert failure_features(_failure(2, 1, "60", "-30", q), features) == ["copied an operand"]
    assert failure_features(_failure(2, 1, "-28", "-30", q), features) == ["near miss"]
    assert failure_features(_failure(2, 1, "500", "-30", q), features) == ["far off"]
    assert failure_features(_failure(2, 1, "30", "-30", q), []) == ["far off"]  # feature off


def test_planted_failure_modes_are_recovered(pack):
    """Carry, sign and format errors on real chain sums, embedded with the real MiniLM."""
    from sklearn.metrics import adjusted_rand_score

    from failforward.tools.embed.embeddings import embed

    rng = random.Random(0)
    failures, truth = [], []
    for i, item in enumerate(pack.make_source().sample(90, seed=3)):
        want, mode = int(item.answer), i % 3
        if mode == 0:
            output = str(want + rng.choice([10, -10, 100]))
        elif mode == 1:
            output = str(-want if want else 5)
        else:
            output = rng.choice(["The answer is", "I think it's", "Let me compute", "Sure!"])
        failures.append(
            Failure(
                question=item.question,
                expected=item.answer,
                output=output,
                extracted="" if mode == 2 else output,
                metadata=item.metadata,
            )
        )
        truth.append(mode)
    clusters, labels = cluster_failures(failures, pack, embed, seed=0)
    assert adjusted_rand_score(truth, labels) >= 0.8
    names = " | ".join(c.name for c in clusters)
    assert "off by a carry" in names and "sign error" in names and "format error" in names
    again, labels_again = cluster_failures(failures, pack, embed, seed=0)
    assert labels_again == labels and [c.name for c in again] == [c.name for c in clusters]


def test_clusters_carry_knobs_modes_centroids_and_outliers(pack):
    failures = [_failure(2, 1) for _ in range(6)] + [_failure(3, 2, "") for _ in range(4)]
    failures.append(_failure(4, 3, "9"))
    clusters, labels = cluster_failures(
        failures, pack, _unit, clusterer=_fixed([0] * 6 + [1] * 4 + [-1])
    )
    assert [c.cluster_id for c in clusters] == [0, 1, -1] and clusters[-1].outlier
    assert clusters[0].knobs == {"num_terms": (2, 2), "num_digits": (1, 1)}
    assert clusters[1].knob_modes == {"num_terms": 3, "num_digits": 2}
    assert clusters[1].name == "num_terms=3, num_digits=2: empty answer"
    assert clusters[0].centroid == [1.0, 0.0, 0.0, 0.0] and clusters[2].centroid == []


def test_clusters_count_their_failures_per_knob_cell(pack):
    failures = [_failure(3, 2)] * 2 + [_failure(2, 1)] * 3 + [_failure(2, 2), _failure(3, 1)]
    failures.append(
        Failure(question="q", expected="1", output="", extracted="", metadata={"num_terms": 2})
    )
    (cluster,), _ = cluster_failures(failures, pack, _unit, clusterer=_fixed([0] * 8, k=1))
    assert [(c.knobs, c.failures) for c in cluster.cells] == [
        ({"num_terms": 2, "num_digits": 1}, 3),
        ({"num_terms": 3, "num_digits": 2}, 2),
        ({"num_terms": 2, "num_digits": 2}, 1),
        ({"num_terms": 3, "num_digits": 1}, 1),
    ]  # the failure without a digit count is in no cell
    assert cluster.knobs == {"num_terms": (2, 3), "num_digits": (1, 2)}


def test_names_pick_discriminative_values_and_stay_distinct(pack):
    everyone = [_failure(2, 1, "9")] * 6 + [_failure(2, 2, "9")] * 3 + [_failure(3, 2, "9")] * 3
    assert name_from_metadata(everyone[6:], everyone, pack).startswith("num_terms=3, num_digits=2")
    same = [_failure(2, 1) for _ in range(4)]
    clusters, _ = cluster_failures(same, pack, _unit, clusterer=_fixed([0, 0, 1, 1]))
    assert [c.name for c in clusters] == [
        "num_terms=2, num_digits=1: near miss",
        "num_terms=2, num_digits=1: near miss (2)",
    ]


def test_ctfidf_finds_what_sets_a_cluster_apart():
    texts = ["sum carry carry", "sum carry", "sum sign", "sum sign sign"]
    keywords = ctfidf_keywords(texts, [0, 0, 1, 1], top=1)
    assert keywords == {0: ["carry"], 1: ["sign"]}


def test_llm_names_with_fallback_that_says_why(pack, tmp_path):
    failures = [_failure(2, 1) for _ in range(3)] + [_failure(3, 2) for _ in range(3)]
    clusters, labels = cluster_failures(failures, pack, _unit, clusterer=_fixed([0, 0, 0, 1, 1, 1]))

    def script(prompt):
        if "2 terms" in prompt:
            return '{"name": "Carry slips", "description": "d", "hypothesis": "no carrying"}'
        return '{"label": "missing name"}'

    fake = FakeSend(script=script)
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m")
    client = ChatClient("analyst", config, RunStore(tmp_path / "run.db"), send=fake)
    named = name_with_llm(client, pack, clusters, failures, labels, cycle=1)
    assert named[0].name == "Carry slips" and named[0].hypothesis == "no carrying"
    assert named[0].name_source == "analyst"
    assert named[1].name == clusters[1].name  # the metadata name is kept
    assert named[1].name_source == "metadata (name: Field required)"
    with pytest.raises(ValueError, match="no JSON object"):
        parse_cluster_name("Carry slips")


def test_near_success_reads_the_clusters_knob_cell():
    cluster = FailureCluster(cluster_id=0, name="a", size=3, knob_modes={"num_terms": 3})
    probe = [Item(question=str(i), answer="1", metadata={"num_terms": 2 + i % 2}) for i in range(8)]
    scores = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]  # odd i (3 terms): 1 of 4 right
    pairs = list(zip(probe, scores, strict=True))
    assert near_success([cluster], pairs)[0].success == 0.25
    no_knobs = FailureCluster(cluster_id=1, name="b", size=3)
    assert near_success([no_knobs], pairs)[0].success == 5 / 8  # overall accuracy


def _c(cluster_id, size, centroid, **extra):
    return FailureCluster(
        cluster_id=cluster_id, name=f"k{cluster_id}", size=size, centroid=centroid, **extra
    )


def test_tracking_matches_moved_clusters_and_reports_new_and_vanished():
    previous = [
        _c(0, 20, [1.0, 0.0, 0.0], mode_id="m1.0", flat_cycles=1),
        _c(1, 10, [0.0, 1.0, 0.0], mode_id="m1.1"),
    ]
    a = np.array([0.98, 0.05, 0.0])
    current = [
        _c(0, 9, [0.0, 0.0, 1.0]),  # a new mode
        _c(1, 19, (a / np.linalg.norm(a)).tolist()),  # the old #0, moved slightly
    ]
    tracked, links = track_clusters(current, previous, targeted={0, 1}, cycle=2)
    assert tracked[0].status == "new" and tracked[0].mode_id == "m2.0"
    moved = tracked[1]
    assert (moved.previous_id, moved.mode_id, moved.status) == (0, "m1.0", "stable")
    assert moved.flat_cycles == 2  # targeted again and did not shrink
    assert {(link["previous_id"], link["status"]) for link in links} == {
        (None, "new"),
        (0, "stable"),
        (1, "vanished"),
    }


def test_tracking_status_grew_and_shrank_resets_flat():
    previous = [_c(0, 10, [1.0, 0.0], mode_id="m1.0", flat_cycles=3)]
    shrank, _ = track_clusters([_c(0, 5, [1.0, 0.0])], previous, {0}, cycle=2)
    grew, _ = track_clusters([_c(0, 15, [1.0, 0.0])], previous, set(), cycle=2)
    assert (shrank[0].status, shrank[0].flat_cycles) == ("shrank", 0)
    assert (grew[0].status, grew[0].flat_cycles) == ("grew", 0)  # not targeted
