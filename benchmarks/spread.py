"""The seed spread of a paired difference between two arms, and its parts, from compact records.

For each record (written by ``compare_items.py --out``): per seed, the difference between two
arms' accuracy after one cycle on the test items of the skills not mastered (or on all of them);
its standard deviation over seeds; and that variance in two parts, the items' (the mean over
seeds of the sampling variance of a paired mean over the items, var(item differences) / items)
and what is left, the seeds' own (data and training seed together). With two records it prints
the ratio of their spreads (``benchmarks/competent_train_from.md`` chooses by it).

    python benchmarks/spread.py benchmarks/results/competent-headroom.json \
        benchmarks/results/competent-train-from.json --cycle 2
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compare_items import outcomes_of  # noqa: E402

CYCLE = 2


@dataclass
class Spread:
    """One record's per-seed differences (points) and the parts of their variance."""

    name: str
    items: int
    per_seed: list[float]
    total: float  # variance over seeds of the per-seed difference, points squared
    item_part: float  # the mean per-seed sampling variance over items

    @property
    def sd(self) -> float:
        return float(np.sqrt(self.total))

    @property
    def seed_part(self) -> float:
        return max(0.0, self.total - self.item_part)

    def text(self) -> str:
        seeds = ", ".join(f"{d:+.1f}" for d in self.per_seed)
        return (
            f"{self.name}: {len(self.per_seed)} seeds, {self.items} items; per seed {seeds}; "
            f"mean {np.mean(self.per_seed):+.1f}, sd {self.sd:.1f} points; variance "
            f"{self.total:.1f} = items {self.item_part:.1f} + seeds {self.seed_part:.1f}"
        )


def spread(record: dict, name: str, arms=("oracle", "uniform"), cycle=CYCLE, focus=True) -> Spread:
    """The spread of ``arms[0] - arms[1]`` after ``cycle`` (on the skills not mastered when
    ``focus`` and the record names mastered ones)."""
    keep = np.ones(len(record["skills"]), dtype=bool)
    if focus and record["mastered"]:
        keep = np.array([s not in record["mastered"] for s in record["skills"]])
    outcomes = outcomes_of(record, keep)
    first, second = (outcomes[arm].correct[:, cycle].astype(float) for arm in arms)
    diffs = 100 * (first - second)  # (seeds, items), points
    per_seed = diffs.mean(axis=1)
    item_part = float((diffs.var(axis=1, ddof=1) / diffs.shape[1]).mean())
    total = float(per_seed.var(ddof=1)) if len(per_seed) > 1 else float("nan")
    return Spread(name, int(keep.sum()), per_seed.round(2).tolist(), total, item_part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=Path, nargs="+", help="compare_items.py JSON records")
    parser.add_argument("--cycle", type=int, default=CYCLE)
    parser.add_argument("--arms", default="oracle,uniform", help="first,second: first - second")
    parser.add_argument("--all-items", action="store_true", help="every test item, not the focus")
    args = parser.parse_args()
    arms = tuple(args.arms.split(","))
    found = [
        spread(json.loads(p.read_text()), p.stem, arms, args.cycle, not args.all_items)
        for p in args.records
    ]
    for s in found:
        print(s.text())
    for s in found[1:]:
        print(f"sd of {s.name} / sd of {found[0].name}: {s.sd / found[0].sd:.2f}")


if __name__ == "__main__":
    main()
