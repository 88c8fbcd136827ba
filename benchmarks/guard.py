"""Test accuracy per cycle with the regression guard and self-distillation anchors (the defaults)
against the loop without them, per pack and seed.

"without" is ``--on-regression keep --anchor-share 0``: the guard only records, no anchors join
SFT, so the student is trained exactly as before the guard existed. Everything else is the
defaults (SmolLM2, sft+dpo, 3 cycles of 96 candidates, procedural teacher). Each finished run is
recorded in ``<runs-dir>/guard.json`` and not run again, so an interrupted measurement continues.

    python benchmarks/guard.py --packs arithmetic benchmarks/packs/products --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.stats.guard import students
from failforward.tools.store import RunStore

ARMS = {"without": {"on_regression": "keep", "anchor_share": 0.0}, "with": {}}


def run_all(args) -> dict:
    record_path = Path(args.runs_dir) / "guard.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for pack in args.packs:
        for seed in args.seeds:
            for arm, options in ARMS.items():
                key = f"{Path(pack).name} s{seed} {arm}"
                if key in record:
                    continue
                settings = RunSettings.from_options(
                    pack=pack, seed=seed, runs_dir=args.runs_dir, cycles=args.cycles, **options
                )
                record[key] = run_loop(settings)
                record_path.write_text(json.dumps(record, indent=2))
    return record


def table(record: dict, runs_dir: Path) -> str:
    lines = [
        "| pack | seed | arm | test acc per cycle | probe acc per cycle | guard | final / best |",
        "|---|---:|---|---|---|---|---|",
    ]
    for key, run_id in record.items():
        pack, seed, arm = key.split()
        store = RunStore(runs_dir / run_id / "run.db")
        metrics = store.metrics()
        store.close()
        tests = " → ".join(f"{m['test_acc']:.1%}" for _, m in sorted(metrics.items()))
        probes = " → ".join(f"{m['probe_acc']:.0%}" for _, m in sorted(metrics.items()))
        found = students(metrics)
        guard = ", ".join(
            f"c{g['cycle']}: -{int(g['lost'])}/+{int(g['gained'])} p={g['p']:.2g}"
            + (
                " rolled back"
                if g.get("rolled_back")
                else " regressed"
                if g.get("regressed")
                else ""
            )
            for g in found.guarded
        )
        lines.append(
            f"| {pack} | {seed[1:]} | {arm} | {tests} | {probes} | {guard or '-'} |"
            f" {found.final} / {found.best} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", nargs="+", default=["arithmetic"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--runs-dir", default="runs/guard")
    args = parser.parse_args()
    record = run_all(args)
    print(table(record, Path(args.runs_dir)))


if __name__ == "__main__":
    main()
