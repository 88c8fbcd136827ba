"""Choose ``--anchor-share``'s default: final test accuracy and retention per share, per pack and
seed, with every other setting at its default (the regression guard rolls back).

Shares measured: 0 (no anchors), 0.5, 1 and 2 anchors per new SFT example (fewer when the
student has fewer right answers on the probe's non-guard half). Retention is the share of the
test items the untrained student answers right that the run's final student still answers right.

The rule, fixed before any of these runs: the default is the share with the highest mean final
test accuracy over seeds 0 and 1 on ``benchmarks/packs/products`` (the pack the anchors were
built for: the base student reasons in words before the number), a tie within one point going to
the smaller share. It is then checked on ``arithmetic`` (not used to choose) against share 0; if
there it is more than three points below share 0 in mean final test accuracy, the default is 0
(anchors not shown to help off the pack they were chosen on). Each finished run is recorded in
``<runs-dir>/anchor_share.json`` and not run again, so an interrupted measurement continues.

    python benchmarks/anchor_share.py --pack benchmarks/packs/products --shares 0 0.5 1 2
    python benchmarks/anchor_share.py --pack arithmetic --shares 0 <chosen>
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.stats.guard import students
from failforward.tools.store import RunStore


def run_all(args) -> dict:
    record_path = Path(args.runs_dir) / "anchor_share.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for share in args.shares:
        for seed in args.seeds:
            key = f"{Path(args.pack).name} {share:g} {seed}"
            if key in record:
                continue
            settings = RunSettings.from_options(
                pack=args.pack, seed=seed, runs_dir=args.runs_dir, anchor_share=share
            )
            record[key] = run_loop(settings)
            record_path.write_text(json.dumps(record, indent=2))
    return record


def outcome(run_dir: Path) -> dict:
    """The final student's test accuracy, its retention of the base student's right test items,
    the test accuracy per cycle and the guard's rollbacks."""
    store = RunStore(run_dir / "run.db")
    metrics = store.metrics()
    found = students(metrics)
    base = [score >= 1.0 for _, score in store.attempts(0, "test")]
    final = [score >= 1.0 for _, score in store.attempts(found.final, "test")]
    store.close()
    kept = sum(b and f for b, f in zip(base, final, strict=True))
    return {
        "final": metrics[found.final]["test_acc"],
        "retention": kept / max(1, sum(base)),
        "curve": [m["test_acc"] for _, m in sorted(metrics.items())],
        "rolled_back": [g["cycle"] for g in found.guarded if g.get("rolled_back")],
        "anchors": [int(m.get("train_anchors", 0)) for c, m in sorted(metrics.items()) if c],
    }


def table(record: dict, runs_dir: Path) -> str:
    lines = [
        "| pack | share | seed | test acc per cycle | anchors per cycle | rolled back |"
        " final | retention |",
        "|---|---:|---:|---|---|---|---:|---:|",
    ]
    by_share: dict[tuple[str, str], list[dict]] = {}
    for key, run_id in record.items():
        pack, share, seed = key.split()
        found = outcome(runs_dir / run_id)
        by_share.setdefault((pack, share), []).append(found)
        curve = " → ".join(f"{a:.1%}" for a in found["curve"])
        lines.append(
            f"| {pack} | {share} | {seed} | {curve} | {found['anchors']} |"
            f" {found['rolled_back'] or '-'} | {found['final']:.1%} | {found['retention']:.0%} |"
        )
    lines += ["", "| pack | share | mean final test acc | mean retention |", "|---|---:|---:|---:|"]
    for (pack, share), runs in by_share.items():
        final = statistics.mean(r["final"] for r in runs)
        retention = statistics.mean(r["retention"] for r in runs)
        lines.append(f"| {pack} | {share} | {final:.1%} | {retention:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="benchmarks/packs/products")
    parser.add_argument("--shares", nargs="+", type=float, default=[0.0, 0.5, 1.0, 2.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--runs-dir", default="runs/anchor_share")
    args = parser.parse_args()
    record = run_all(args)
    print(table(record, Path(args.runs_dir)))


if __name__ == "__main__":
    main()
