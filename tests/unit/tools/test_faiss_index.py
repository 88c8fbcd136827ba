import numpy as np

from failforward.tools.embed.faiss_index import (
    OUTLIER,
    cluster,
    kmeans_fit,
    match_centroids,
    silhouette,
)


def kmeans(vectors, k, seed=0):
    return kmeans_fit(vectors, k, seed)[0]


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


def test_cluster_chooses_k_by_silhouette_and_sets_tiny_clusters_aside():
    points, truth = _blobs(per=25, k=4)
    stray, _ = _blobs(seed=9, per=2, k=1)  # two points of a fifth mode: below min_size
    result = cluster(np.concatenate([points, stray]), min_size=3, max_k=8, seed=0)
    assert result.k == 5 and result.silhouette > 0.5
    assert list(result.labels[-2:]) == [OUTLIER, OUTLIER]
    pairs = set(zip(truth, result.labels[:-2], strict=True))
    assert len(pairs) == 4 and len({label for _, label in pairs}) == 4
    assert result.centroids.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0, rtol=1e-5)


def test_cluster_keeps_one_cluster_for_structureless_or_few_points():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(60, 32)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    assert cluster(noise, min_size=3, seed=0).k == 1
    few, _ = _blobs(per=2, k=2)
    assert cluster(few, min_size=3).k == 1  # 4 points cannot make two clusters of 3


def test_silhouette_prefers_the_true_partition():
    points, truth = _blobs()
    shuffled = np.random.default_rng(0).permutation(truth)
    assert silhouette(points, truth) > 0.8 > 0.1 > silhouette(points, shuffled)


def test_match_centroids_is_one_to_one_above_threshold():
    points, _ = _blobs(k=3)
    centres = np.stack([points[i * 30 : (i + 1) * 30].mean(axis=0) for i in range(3)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    moved = centres[[2, 0]] + 0.02  # two of the three, slightly moved, in another order
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    assert [(i, j) for i, j, _ in match_centroids(moved, centres, 0.9)] == [(0, 2), (1, 0)]
    assert match_centroids(-moved, centres, 0.9) == []
