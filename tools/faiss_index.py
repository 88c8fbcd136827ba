"""Clustering with FAISS k-means; k is chosen from the number of points."""

from __future__ import annotations

import math

import numpy as np


def choose_k(n_points: int, min_cluster_size: int = 5, max_k: int = 6) -> int:
    """A k that gives clusters of at least ``min_cluster_size`` points on average.

    Example:
        >>> choose_k(3), choose_k(40), choose_k(500)
        (1, 4, 6)
    """
    if n_points < 2 * min_cluster_size:
        return 1
    return max(1, min(max_k, n_points // min_cluster_size, round(math.sqrt(n_points / 2.5))))


def kmeans(vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 25) -> np.ndarray:
    """Cluster label per row (spherical k-means on unit vectors, deterministic for a seed)."""
    import faiss

    n = len(vectors)
    if k <= 1 or n <= k:
        return np.zeros(n, dtype=np.int64)
    km = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        verbose=False,
        nredo=5,  # keep the best of several starts: one bad start can merge two real modes
        min_points_per_centroid=1,  # failures are few by nature; FAISS would warn on every run
    )
    km.train(np.ascontiguousarray(vectors, dtype=np.float32))
    _, labels = km.index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return _relabel_by_size(labels.ravel())


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size, so ids read the same run to run."""
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping[x] for x in labels], dtype=np.int64)
