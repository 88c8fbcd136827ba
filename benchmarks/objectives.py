"""Training objectives side by side: the same run (pack, student, seed, budget, cycles) once per
``--objective``, then test accuracy, training seconds and peak memory per cycle from the stores.

    .venv/bin/python benchmarks/objectives.py               # sft vs sft+dpo, SmolLM2, 3 cycles
    .venv/bin/python benchmarks/objectives.py --objectives sft dpo --student tiny --cycles 1
    .venv/bin/python benchmarks/objectives.py --runs runs/<id-a> runs/<id-b>   # tables only

Runs go one after another (the machine has 2 cores), with patience high enough that every arm runs
all its cycles. The last column pair is each arm's training seconds against the first arm's, per
cycle: the cost ratio of the extra phases on the same machine, same data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.store import RunStore


def run_arms(args, ui=None) -> list[Path]:
    dirs = []
    for objective in args.objectives:
        settings = RunSettings.from_options(
            pack=args.pack,
            student=args.student,
            cycles=args.cycles,
            budget=args.budget,
            seed=args.seed,
            objective=objective,
            patience=args.cycles + 1,
            runs_dir=args.runs_dir,
        )
        dirs.append(Path(args.runs_dir) / run_loop(settings, ui=ui))
    return dirs


def table(run_dirs: list[Path]) -> str:
    arms = []
    for run_dir in run_dirs:
        store = RunStore(run_dir / "run.db")
        arms.append((store.get_meta("settings")["objective"], store.metrics()))
    base = arms[0][1]
    head = "cycle | " + " | ".join(
        f"{name}: test acc, train s, peak RSS MB, train s vs {arms[0][0]}" for name, _ in arms
    )
    lines = [head]
    for cycle in sorted(base):
        cells = []
        for _, metrics in arms:
            m = metrics.get(cycle, {})
            seconds = m.get("train_seconds")
            ratio = (
                f"{seconds / base[cycle]['train_seconds']:.2f}x"
                if seconds and base[cycle].get("train_seconds")
                else "-"
            )
            cells.append(
                f"{m.get('test_acc', float('nan')):.1%}, "
                f"{seconds if seconds is not None else 0:.1f}, "
                f"{m.get('peak_rss_mb', 0):.0f}, {ratio}"
            )
        lines.append(f"{cycle} | " + " | ".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", nargs="+", default=["sft", "sft+dpo"])
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--budget", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--runs", nargs="+", type=Path, help="tabulate these run folders only")
    args = parser.parse_args()
    print(table(args.runs or run_arms(args)))


if __name__ == "__main__":
    main()
