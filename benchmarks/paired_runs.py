"""Two runs scored on the same test items: their accuracy difference at one cycle, paired by item.

For two runs of packs that draw the same test set (e.g. a pack and its answer-only twin), it
reads each run's per-item test scores at ``--cycle`` (that cycle's evaluation, whatever the guard
kept), and prints the difference (first run minus second) overall and per skill, with a 95%
bootstrap interval over items and the exact McNemar p. One training seed per run: the interval
is over test items only. It writes the per-item results (``--out``) so every figure can be
recomputed without training again.

    python benchmarks/paired_runs.py runs/<traced id> runs/<answer-only id> --cycle 2 \\
        --out benchmarks/results/traces-vs-answer.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from failforward.tools.store import RunStore

REPS = 10_000


def scores(run_dir: Path, cycle: int) -> tuple[list[str], list[str], list[int]]:
    """The run's test questions, their skills and right (1) or wrong (0) at ``cycle``."""
    store = RunStore(run_dir / "run.db")
    try:
        attempts = store.attempts(cycle, "test")
    finally:
        store.close()
    if not attempts:
        raise SystemExit(f"{run_dir}: no test evaluation at cycle {cycle}")
    questions = [item.question for item, _ in attempts]
    skills = [str(item.metadata.get("skill", "")) for item, _ in attempts]
    return questions, skills, [int(score >= 1.0) for _, score in attempts]


def paired(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict:
    """Mean of a - b with a 95% bootstrap interval over items and McNemar's exact p."""
    diff = a.astype(float) - b
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, len(diff), (REPS, len(diff)))].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {
        "items": len(diff), "first": float(a.mean()), "second": float(b.mean()),
        "difference": float(diff.mean()), "low": float(low), "high": float(high),
        "first_only": only_a, "second_only": only_b, "p_value": float(p),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--cycle", type=int, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    q1, skills, first = scores(args.first, args.cycle)
    q2, _, second = scores(args.second, args.cycle)
    if q1 != q2:
        raise SystemExit("the two runs were not scored on the same test items")
    a, b, s = np.array(first), np.array(second), np.array(skills)
    rows = {"all": paired(a, b)} | {k: paired(a[s == k], b[s == k]) for k in sorted(set(skills))}
    print(f"first: {args.first.name}, second: {args.second.name}, cycle {args.cycle}")
    print("| skill | items | first | second | first - second [95%] | only first / only second |")
    print("|---|---:|---:|---:|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['items']} | {r['first']:.1%} | {r['second']:.1%} | "
            f"{r['difference']:+.1%} [{r['low']:+.1%}, {r['high']:+.1%}] | "
            f"{r['first_only']} / {r['second_only']} (p {r['p_value']:.2g}) |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "first": args.first.name, "second": args.second.name, "cycle": args.cycle,
            "questions": q1, "skills": skills, "first_correct": first, "second_correct": second,
            "summary": rows,
        }  # fmt: skip
        args.out.write_text(json.dumps(record))


if __name__ == "__main__":
    main()
