import numpy as np

from tools.faiss_index import choose_k, kmeans


def _blobs(seed=0, per=30, k=3, dim=32):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    points = np.concatenate([c + 0.05 * rng.normal(size=(per, dim)) for c in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), np.repeat(np.arange(k), per)


def test_kmeans_recovers_known_clusters():
    points, truth = _blobs()
    labels = kmeans(points, 3, seed=0)
    # Same partition up to renaming: every true cluster maps to exactly one label.
    pairs = set(zip(truth, labels, strict=True))
    assert len(pairs) == 3 and len({label for _, label in pairs}) == 3


def test_kmeans_is_deterministic_and_sorted_by_size():
    points, _ = _blobs(per=20)
    extra, _ = _blobs(seed=1, per=10, k=1)
    data = np.concatenate([points, extra])
    first, second = kmeans(data, 4, seed=7), kmeans(data, 4, seed=7)
    assert (first == second).all()
    sizes = np.bincount(first)
    assert list(sizes) == sorted(sizes, reverse=True)


def test_choose_k_bounds():
    assert choose_k(0) == 1 and choose_k(9) == 1
    assert 1 < choose_k(60) <= 6
    assert choose_k(10_000) == 6
