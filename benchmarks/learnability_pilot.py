"""A pilot per skill: how a student's accuracy on each skill rises with examples of it alone.

For each skill of a multi-skill pack, a single-skill copy of the pack (its probe and test sets
drawn with seeds of their own, the pack's + 1000, so no item of a comparison's test set is needed)
gets a uniform run with ``--train-from base``: ``--points`` cycles of ``--step`` examples, each
cycle retraining the starting student on all the examples so far, so the curve's points are
0, step, 2 step, ... examples of the skill, not a path of updates. Cycle 0 is the survey: the
student's accuracy on the skill before any training.

It writes, under ``--out`` (default ``benchmarks/results/pilot-<pack>.json``), every run's id,
curve and per-item test results (enough to recompute every figure), and prints the table in the
form of a pack's ``learnability.yaml`` with each skill's class by the rule of
``benchmarks/competent_student.md``.

    python benchmarks/learnability_pilot.py --pack benchmarks/packs/competent-candidates \\
        --student runs/<warm-up id> --step 32 --points 2 --test 80 --probe 16
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import yaml

from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import load_pack
from failforward.tools.stats.by_skill import students_in_use
from failforward.tools.store import RunStore

SEED_OFFSET = 1000  # the pilot's probe and test seeds: the pack's plus this


def single_skill_pack(pack_dir: Path, skill: str, target: Path, probe: int, test: int) -> Path:
    """A copy of the pack with ``skill`` alone and probe and test sets of the pilot's own."""
    shutil.copytree(pack_dir, target, dirs_exist_ok=True)
    spec = yaml.safe_load((pack_dir / "pack.yaml").read_text())
    spec["skills"] = [{**s, "weight": 1} for s in spec["skills"] if s["name"] == skill]
    spec["name"] = f"{spec['name']}-{skill}"
    spec["probe"] = {"size": probe, "seed": spec["probe"]["seed"] + SEED_OFFSET}
    spec["test"] = {"size": test, "seed": spec["test"]["seed"] + SEED_OFFSET}
    (target / "pack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (target / "learnability.yaml").unlink(missing_ok=True)
    return target


def pilot_skill(pack: Path, args, runs_dir: Path) -> dict:
    """One skill's run and what it measured: accuracy per point and each test item's result."""
    settings = RunSettings.from_options(
        pack=str(pack), student=args.student, plan="uniform", cycles=args.points,
        budget=args.step, objective="sft", train_from="base", on_regression="keep",
        patience=args.points + 1, seed=args.seed, runs_dir=str(runs_dir),
    )  # fmt: skip
    run_id = run_loop(settings)
    store = RunStore(runs_dir / run_id / "run.db")
    metrics = store.metrics()
    questions = [item.question for item in store.eval_items("test")]
    curve, items = {}, {}
    for cycle, in_use in students_in_use(metrics):
        examples = int(metrics[cycle].get("train_examples_total", 0)) if cycle else 0
        scores = {item.question: score for item, score in store.attempts(in_use, "test")}
        items[examples] = [int(scores[q] >= 1.0) for q in questions]
        curve[examples] = sum(items[examples]) / len(questions)
    store.close()
    return {"run_id": run_id, "curve": curve, "items": items, "questions": questions}


def trained_by_student(student: str) -> set[str]:
    """The questions a student given as a run folder was trained on, by that run or any run it
    started from: a warm-up draws its data away from its own test set, not the pilot's, so a few
    of the pilot's test items may be among them."""
    trained: set[str] = set()
    run: Path | None = Path(student)
    while run is not None and (run / "run.db").is_file():
        store = RunStore(run / "run.db")
        try:
            trained |= {example["question"] for example in store.examples(accepted=True)}
            earlier = (store.get_meta("student") or {}).get("from_run")
            run = Path(earlier) if earlier else None
        finally:
            store.close()
    return trained


def best_after(curve: dict[int, float]) -> float:
    """The curve's best point after 0 examples (its start when a run that began at its target
    accuracy has no later point)."""
    return max((a for n, a in curve.items() if n > 0), default=curve[0])


def classify(curve: dict[int, float]) -> str:
    """The rule of ``benchmarks/competent_student.md`` (``-``: in no class)."""
    start, best = curve[0], best_after(curve)
    if start >= 0.8:
        return "mastered"
    if 0.2 <= start <= 0.7 and best - start >= 0.05:
        return "in_reach"
    if start <= 0.05 and best - start < 0.05:
        return "out_of_reach"
    return "-"


def choose(found: dict[str, dict]) -> dict[str, float] | None:
    """The pack the rule of ``benchmarks/competent_student.md`` makes: skill -> weight, or None.

    Every mastered skill (together 80% of the mixture, split equally), the in-reach skills with
    the largest gain (at most three) and the out-of-reach skill with the lowest start (candidate
    order breaks ties), the rest equal; None with fewer than two mastered or two in reach."""
    by_class: dict[str, list[str]] = {}
    for name, r in found.items():
        by_class.setdefault(classify(r["curve"]), []).append(name)
    mastered, in_reach = by_class.get("mastered", []), by_class.get("in_reach", [])
    if len(mastered) < 2 or len(in_reach) < 2:
        return None

    def gain(name: str) -> float:
        return best_after(found[name]["curve"]) - found[name]["curve"][0]

    rest = sorted(in_reach, key=lambda n: -gain(n))[:3]  # sorted is stable: candidate order
    rest += sorted(by_class.get("out_of_reach", []), key=lambda n: found[n]["curve"][0])[:1]
    weights = {name: 0.8 / len(mastered) for name in mastered}
    return weights | {name: 0.2 / len(rest) for name in rest}


def table_yaml(found: dict[str, dict], student: str, command: str) -> str:
    """The pilot as a ``learnability.yaml`` (skills in no class are left out of it)."""
    skills = {
        name: {
            "status": classify(r["curve"]),
            "curve": {n: round(a, 4) for n, a in r["curve"].items()},
        }
        for name, r in found.items()
        if classify(r["curve"]) != "-"
    }
    head = (
        f"# Measured by: {command}\n# Per skill alone, from the student below (its test accuracy\n"
    )
    head += "# after n examples of the skill, each point retrained from that student).\n"
    return head + yaml.safe_dump({"student": student, "skills": skills}, sort_keys=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", required=True)
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--step", type=int, default=32, help="Examples per point.")
    parser.add_argument("--points", type=int, default=2, help="Points after 0.")
    parser.add_argument("--probe", type=int, default=16)
    parser.add_argument("--test", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skills", default="", help="Comma-separated (default: all).")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    pack = load_pack(args.pack)
    skills = [s for s in args.skills.split(",") if s] or list(pack.skills)
    runs_dir = Path(args.runs_dir)
    packs_dir = runs_dir / f"pilot-packs-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(args.out or f"benchmarks/results/pilot-{pack.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    found: dict[str, dict] = json.loads(out.read_text())["skills"] if out.is_file() else {}
    for skill in skills:
        if skill in found:  # measured before: a stopped pilot goes on where it stopped
            continue
        started = time.perf_counter()
        target = single_skill_pack(pack.directory, skill, packs_dir / skill, args.probe, args.test)
        found[skill] = pilot_skill(target, args, runs_dir)
        found[skill]["seconds"] = round(time.perf_counter() - started)
        record = {"pack": args.pack, "student": args.student, "args": vars(args), "skills": found}
        out.write_text(json.dumps(record))
        curve = ", ".join(f"{n}: {a:.0%}" for n, a in found[skill]["curve"].items())
        print(f"{skill}: {curve} -> {classify(found[skill]['curve'])}", flush=True)
    trained = trained_by_student(args.student)
    for name, result in found.items():  # JSON keys are text
        result["curve"] = {int(n): a for n, a in result["curve"].items()}
        result["items"] = {int(n): v for n, v in result["items"].items()}
        seen = {i for i, question in enumerate(result["questions"]) if question in trained}
        if seen:
            start = [x for i, x in enumerate(result["items"][0]) if i not in seen]
            print(f"{name}: {len(seen)} test items were in the student's own training data; "
                  f"without them it starts at {sum(start) / len(start):.0%}")  # fmt: skip
    chosen = choose(found)
    print("pack by the rule:", chosen or "none (fewer than two mastered or two in reach)")
    print(table_yaml(found, args.student, "python benchmarks/learnability_pilot.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in ("", None)
    )))  # fmt: skip


if __name__ == "__main__":
    main()
