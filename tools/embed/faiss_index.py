"""Clustering with FAISS k-means: k chosen by silhouette, tiny clusters set aside as outliers.

Everything is deterministic for a seed. Vectors are unit-normalised embeddings (cosine geometry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUTLIER = -1
SILHOUETTE_SAMPLE = 2000  # points the silhouette is computed on (it is quadratic)
MIN_SILHOUETTE = 0.15  # below this no split beats "one cluster" (random points score ~0.1)
NEAR_BEST = 0.95  # the largest k scoring within this fraction of the best silhouette wins


@dataclass
class Clustering:
    """Labels (``OUTLIER`` for points in too-small clusters), centroids by label, and why."""

    labels: np.ndarray
    centroids: np.ndarray  # row i is the unit centroid of label i
    k: int
    silhouette: float


def kmeans_fit(
    vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit centroids of spherical k-means (relabelled by decreasing size)."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if k <= 1 or len(x) <= k:
        return np.zeros(len(x), dtype=np.int64), _centroids(x, np.zeros(len(x), dtype=np.int64), 1)
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        verbose=False,
        nredo=5,  # keep the best of several starts: one bad start can merge two real modes
        min_points_per_centroid=1,  # failures are few by nature; FAISS would warn on every run
    )
    km.train(x)
    _, labels = km.index.search(x, 1)
    labels = _relabel_by_size(labels.ravel())
    return labels, _centroids(x, labels, int(labels.max()) + 1)


def silhouette(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with cosine distance (points alone in their cluster count 0)."""
    k = int(labels.max()) + 1
    if k < 2:
        return 0.0
    distance = 1.0 - vectors @ vectors.T
    onehot = np.eye(k, dtype=np.float32)[labels]
    counts = onehot.sum(axis=0)
    sums = distance @ onehot  # per point: total distance to each cluster
    own = counts[labels]
    a = sums[np.arange(len(labels)), labels] / np.maximum(own - 1, 1)
    others = np.where(onehot > 0, np.inf, sums / np.maximum(counts, 1))
    b = others.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def cluster(vectors: np.ndarray, min_size: int = 3, max_k: int = 8, seed: int = 0) -> Clustering:
    """Choose k in ``2..max_k`` (bounded by ``len(vectors) // min_size``) by silhouette on a
    sample (see :func:`_choose_k`), fit it on every point, and label clusters smaller than
    ``min_size`` as outliers.

    Example:
        >>> result = cluster(vectors, min_size=3, max_k=8)          # doctest: +SKIP
        >>> result.k, result.labels[:5]                              # doctest: +SKIP
        (3, array([0, 2, 0, 1, -1]))
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    best_k, best_score = _choose_k(x, min(max_k, len(x) // max(min_size, 1)), seed)
    labels, _ = kmeans_fit(x, best_k, seed)
    sizes = np.bincount(labels)
    keep = [c for c in range(len(sizes)) if sizes[c] >= min_size]
    mapping = {old: new for new, old in enumerate(keep)}  # keep is already by decreasing size
    labels = np.array([mapping.get(int(c), OUTLIER) for c in labels], dtype=np.int64)
    return Clustering(labels, _centroids(x, labels, len(keep)), best_k, best_score)


def _choose_k(x: np.ndarray, upper: int, seed: int) -> tuple[int, float]:
    """k by silhouette on a sample. Silhouette leans to k=2 (two planted failure modes merged
    often score a hair higher than three clean ones), and a merge costs more than a split when
    planning (two modes share one budget), so the largest k near the best score wins."""
    if upper < 2:
        return 1, 0.0
    rng = np.random.default_rng(seed)
    if len(x) > SILHOUETTE_SAMPLE:
        x = x[rng.choice(len(x), SILHOUETTE_SAMPLE, replace=False)]
    scores = {k: silhouette(x, kmeans_fit(x, k, seed)[0]) for k in range(2, upper + 1)}
    best = max(scores.values())
    if best < MIN_SILHOUETTE:
        return 1, best
    k = max(k for k, score in scores.items() if score >= NEAR_BEST * best)
    return k, scores[k]


def _centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    centroids = np.zeros((k, x.shape[1]), dtype=np.float32)
    for c in range(k):
        members = x[labels == c]
        if len(members):
            mean = members.mean(axis=0)
            centroids[c] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return centroids


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size, so ids read the same run to run."""
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping[x] for x in labels], dtype=np.int64)


def match_centroids(
    current: np.ndarray, previous: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """One-to-one ``(current, previous, cosine)`` pairs maximising total similarity, keeping
    only pairs at or above ``threshold``."""
    if len(current) == 0 or len(previous) == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    similarity = current @ previous.T
    rows, cols = linear_sum_assignment(-similarity)
    return [
        (int(r), int(c), float(similarity[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if similarity[r, c] >= threshold
    ]
