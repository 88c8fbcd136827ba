"""How fast the analyst clusters and embeds, against plain baselines run side by side.

    .venv/bin/python benchmarks/analyst_speed.py                # 100,000 points, 10,000 texts

1. Clustering: 100,000 synthetic 384-d unit vectors drawn around 6 planted centres, clustered
   with k chosen by silhouette (``tools.embed.faiss_index.cluster``, k tried 2..8). Reports
   seconds, the k found and the adjusted Rand index against the planted labels, next to a single
   FAISS k-means at the true k (the floor any k search pays on top of).
2. Embedding: 10,000 failure texts built by the analyst (``failure_text``) embedded with
   ``tools.embed.embeddings.embed`` vs a plain sentence-transformers ``encode`` of the same texts
   on the same model in the same process; the ratio is the analyst's overhead (1.0 = none).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np

from failforward.agents.analyst import failure_text
from failforward.tools.embed.embeddings import _model, embed
from failforward.tools.embed.faiss_index import cluster, kmeans_fit
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Failure


def planted(n: int, k: int, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    truth = rng.integers(0, k, size=n)
    points = centres[truth] + 0.6 * rng.normal(size=(n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), truth


def failure_texts(n: int, seed: int = 0) -> list[str]:
    pack = load_pack("arithmetic")
    rng = random.Random(seed)
    texts = []
    for item in pack.make_source().sample(n, seed=seed):
        said = str(int(item.answer) + rng.choice([-10, -1, 1, 10, 100]))
        failure = Failure(
            question=item.question,
            expected=item.answer,
            output=said,
            extracted=said,
            metadata=item.metadata,
        )
        texts.append(failure_text(failure, pack.spec.analyst.features))
    return texts


def main() -> None:
    from sklearn.metrics import adjusted_rand_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=6)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    points, truth = planted(args.points, args.planted)
    search, single = [], []
    for _ in range(args.rounds):  # alternate so machine drift hits both alike
        started = time.perf_counter()
        result = cluster(points, min_size=3, max_k=8, seed=0)
        search.append(time.perf_counter() - started)
        started = time.perf_counter()
        kmeans_fit(points, args.planted, seed=0)
        single.append(time.perf_counter() - started)
    ari = adjusted_rand_score(truth, result.labels)
    print(
        f"cluster {args.points:,} x 384: {statistics.median(search):.2f}s median of "
        f"{args.rounds} (k chosen {result.k} of 2..8, planted {args.planted}, ARI {ari:.3f}); "
        f"one k-means at k={args.planted}: {statistics.median(single):.2f}s "
        f"(k search costs {statistics.median(search) / statistics.median(single):.1f}x)"
    )

    texts = failure_texts(args.texts)
    embed(texts[:64])  # load the model once, outside the clock
    model = _model()
    ours, plain = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        embed(texts)
        ours.append(len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        plain.append(len(texts) / (time.perf_counter() - started))
    print(
        f"embed {len(texts):,} failure texts: {statistics.median(ours):.0f} texts/s vs plain "
        f"encode {statistics.median(plain):.0f} texts/s (overhead ratio "
        f"{statistics.median(plain) / statistics.median(ours):.2f})"
    )


if __name__ == "__main__":
    main()
