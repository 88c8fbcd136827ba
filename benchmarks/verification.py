"""Verification without a solver, measured: how often each strategy accepts a wrong claim and
rejects a right one, and what it costs in calls, against a scripted critic with known error rates
on a real loopback HTTP endpoint.

The scripted critic (``tests.scripted.NoisyCritic``): the teacher's claim is wrong on 20% of the
candidates; each of the critic's own answers is wrong with probability 0.25, and on a question the
teacher got wrong half of the critic's mistakes are the teacher's mistake (a shared
misconception); in a check it takes the claim for its own answer 20% of the time. The candidates go
through the critic exactly as in a run (``critique`` with the minimal pack, ``critic.verify`` and
``critic.samples`` set per row).

    python benchmarks/verification.py --n 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not installed
from tests.scripted import critique_scripted  # noqa: E402

ROWS = [
    ("consistency", 1),
    ("consistency", 3),
    ("consistency", 5),
    ("consistency", 7),
    ("check", 1),
]


def measure(how: str, samples: int, n: int, folder: Path, **noise) -> dict:
    """Run ``n`` candidates through the critic with ``critic.verify: how``; rates and cost."""
    rows, verdicts, calls = critique_scripted(folder / f"{how}-{samples}", how, samples, n, **noise)
    right = [v for (_, _, ok), v in zip(rows, verdicts, strict=True) if ok]
    wrong = [v for (_, _, ok), v in zip(rows, verdicts, strict=True) if not ok]
    accepted = sum(v.accepted for v in verdicts)
    return {
        "wrong_accepted": sum(v.accepted for v in wrong) / len(wrong),
        "right_rejected": sum(not v.accepted for v in right) / len(right),
        "precision": sum(v.accepted for v in right) / max(1, accepted),
        "recall": sum(v.accepted for v in right) / len(right),
        "calls_per_accepted": calls / max(1, accepted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    print(
        "| strategy | k | wrong accepted | right rejected | precision | recall | calls/accepted |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for how, samples in ROWS:
            m = measure(how, samples, args.n, Path(folder))
            print(
                f"| {how} | {samples} | {m['wrong_accepted']:.1%} | {m['right_rejected']:.1%} |"
                f" {m['precision']:.1%} | {m['recall']:.1%} | {m['calls_per_accepted']:.2f} |"
            )


if __name__ == "__main__":
    main()
