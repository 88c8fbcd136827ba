"""A comparison's compact results, and its three-arm figures recomputed from them.

Run folders do not outlive a session; this keeps what every statistic of a comparison needs: per
arm, seed and cycle the examples trained so far, those of each skill trained in the cycle, and
whether each test item was answered right; each test item's skill, whether the starting student's
own runs had trained on it, and the seconds each node took. ``--out`` writes them as JSON (well
under a megabyte); ``--from`` reads such a file back and prints the three-arm figures
(:func:`tools.stats.headroom.three_arms`) on all test items and on the items no earlier run of the
student trained on, and the compare report's per-skill table, without training again.

    python benchmarks/compare_items.py runs/compare-<id> --out benchmarks/results/<name>.json
    python benchmarks/compare_items.py --from benchmarks/results/<name>.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from failforward.tools.report.comparison import load_outcomes, record_arms
from failforward.tools.report.report import mastered_skills, skills_table
from failforward.tools.stats.headroom import three_arms
from failforward.tools.stats.multiplier import ArmOutcomes, skill_curves
from failforward.tools.store import RunStore

sys.path.insert(0, str(Path(__file__).parent))
from learnability_pilot import trained_by_student  # noqa: E402


def dump(folder: Path, seeds: int | None = None) -> dict:
    """The comparison in ``folder`` as a compact record (see the module's docstring); with
    ``seeds``, its first ``seeds`` seeds only (a comparison stopped before its last seed)."""
    record = json.loads((folder / "compare.json").read_text())
    record["seeds"] = record["seeds"][:seeds] if seeds else record["seeds"]
    run_ids = {
        arm: [record["runs"][arm][str(s)] for s in record["seeds"]] for arm in record_arms(record)
    }
    outcomes = load_outcomes(folder, run_ids)
    store = RunStore(folder.parent / next(iter(run_ids.values()))[0] / "run.db")  # its order
    questions = [item.question for item in store.eval_items("test")]
    store.close()
    trained = trained_by_student(record["settings"]["student"])
    seconds: dict[str, dict] = {}
    for ids in run_ids.values():
        for run_id in ids:
            store = RunStore(folder.parent / run_id / "run.db")
            by_node: dict[str, float] = defaultdict(float)
            for row in store.node_runs():
                by_node[f"{row['cycle']}:{row['node']}"] += row["seconds"]
            store.close()
            seconds[run_id] = {k: round(v, 1) for k, v in by_node.items()}
    return {
        "compare_id": folder.name,
        "settings": record["settings"],
        "seeds": record["seeds"],
        "run_ids": run_ids,
        "mastered": sorted(mastered_skills(record) or []),
        "skills": outcomes["uniform"].skills,
        "trained_before": "".join("1" if q in trained else "0" for q in questions),
        "arms": {
            arm: {
                "examples": o.examples.tolist(),
                "correct": [
                    ["".join("1" if x else "0" for x in cycle) for cycle in seed]
                    for seed in o.correct
                ],
                "skill_examples": {k: v.tolist() for k, v in (o.skill_examples or {}).items()},
            }
            for arm, o in outcomes.items()
        },
        "seconds": seconds,
    }


def outcomes_of(record: dict, keep: np.ndarray) -> dict[str, ArmOutcomes]:
    """The record's arms as :class:`ArmOutcomes`, on the test items ``keep`` marks."""
    skills = [s for s, k in zip(record["skills"], keep, strict=True) if k]
    return {
        arm: ArmOutcomes(
            np.array(data["examples"]),
            np.array([[[c == "1" for c in cycle] for cycle in seed] for seed in data["correct"]])[
                :, :, keep
            ],
            skills,
            {k: np.array(v) for k, v in data.get("skill_examples", {}).items()} or None,
        )
        for arm, data in record["arms"].items()
    }


def figures(record: dict) -> str:
    """The three-arm figures on every test item and on those no earlier run trained on."""
    lines = []
    fresh = np.array([c == "0" for c in record["trained_before"]])
    everything = np.ones_like(fresh)
    mastered = set(record["mastered"]) or None
    for title, keep in (("all test items", everything), ("items not trained on before", fresh)):
        found = three_arms(outcomes_of(record, keep), mastered)
        lines.append(f"## {title} ({int(keep.sum())})")
        for name, part in (("all", found.all), ("not mastered", found.focus)):
            if part is None:
                continue
            lines.append(f"{name} ({part.items} items):")
            for o, t, r in zip(part.oracle, part.targeted, part.recovered, strict=True):
                lines.append(
                    f"  cycle {o.cycle}: oracle - uniform {o.text()}; targeted - uniform "
                    f"{t.text()}; recovered {r.text()}"
                )
        for m in found.focus_multiplier or []:
            lines.append(f"not mastered, targeted's multiplier after cycle {m.cycle}: {m.text()}")
        mastered_label = f"mastered ({', '.join(found.mastered or [])})"
        for label, per_arm in (("not mastered", found.focus_changes),
                               (mastered_label, found.mastered_falls)):  # fmt: skip
            for arm, gains in (per_arm or {}).items():
                changes = "; ".join(f"cycle {g.cycle} {g.text()}" for g in gains)
                lines.append(f"{label}, {arm} since cycle 0: {changes}")
    for arm, data in record["arms"].items():
        per_seed = [
            " ".join(f"{cycle.count('1') / len(cycle):.1%}" for cycle in seed)
            for seed in data["correct"]
        ]
        lines.append(f"{arm} test accuracy per cycle, by seed: " + " | ".join(per_seed))
    if all("skill_examples" in data for data in record["arms"].values()):  # older records lack it
        per_skill = {arm: skill_curves(o) for arm, o in outcomes_of(record, everything).items()}
        if any(per_skill.values()):  # as the compare report shows it
            lines += skills_table(per_skill)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", help="A comparison's folder.")
    parser.add_argument("--out", type=Path, help="Write the compact record here (JSON).")
    parser.add_argument("--from", dest="source", type=Path, help="Read a record written before.")
    parser.add_argument("--seeds", type=int, help="Keep the first N seeds (a stopped comparison).")
    args = parser.parse_args()
    if (args.folder is None) == (args.source is None):
        parser.error("give a comparison's folder or --from a record, one of them")
    if args.source:
        record = json.loads(args.source.read_text())
    else:
        record = dump(args.folder, args.seeds)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record))
            print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    print(figures(record))


if __name__ == "__main__":
    main()
