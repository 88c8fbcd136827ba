"""Where a comparison's time goes: seconds per node (and per node and cycle) summed over its runs,
read from the run stores, so two comparisons (before and after a speed change) can be set side by
side as ratios.

    python benchmarks/compare_profile.py runs/compare-<id> [runs/compare-<other id>]

With two folders it prints each node's seconds in both and their ratio (second / first).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from failforward.tools.store import RunStore


def node_seconds(folder: Path) -> dict[str, float]:
    """Seconds per node over every run of the comparison (evaluate_student split into cycle 0,
    which both arms and every seed share, and the later cycles)."""
    record = json.loads((folder / "compare.json").read_text())
    totals: dict[str, float] = defaultdict(float)
    for runs in record["runs"].values():
        for run_id in runs.values():
            store = RunStore(folder.parent / run_id / "run.db")
            for row in store.node_runs():
                node = row["node"]
                if node == "evaluate_student":
                    node += " (cycle 0)" if row["cycle"] == 0 else " (later)"
                totals[node] += row["seconds"]
            store.close()
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    found = [node_seconds(f) for f in args.folders[:2]]
    nodes = sorted({n for f in found for n in f}, key=lambda n: -found[0].get(n, 0))
    header = " | ".join(f.name for f in args.folders[:2])
    print(f"| node | {header} |" + (" ratio |" if len(found) == 2 else ""))
    print("|---|" + "---:|" * len(found) + ("---:|" if len(found) == 2 else ""))
    for node in [*nodes, "total"]:
        values = [sum(f.values()) if node == "total" else f.get(node, 0.0) for f in found]
        ratio = f" {values[1] / values[0]:.2f} |" if len(found) == 2 and values[0] else ""
        print(f"| {node} | " + " | ".join(f"{v:.0f}" for v in values) + " |" + ratio)


if __name__ == "__main__":
    main()
