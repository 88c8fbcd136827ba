"""Choose the `mixed` pack's skills by measuring the base student on each candidate skill.

Every skill of ``benchmarks/packs/mixed-candidates`` gets its share of the candidates' test set
(100 items each), answered by the untrained SmolLM2 with the pack's prompt, and scored by the
skill's verifier, as a run's cycle-0 evaluation would (the same code path: ``Student.answer``).

The rule, fixed before the survey ran: a skill is **solved** at >= 50% base accuracy, at the
**frontier** at 10-50%, and **out of reach** below 5% (5-10% is in no class). `mixed` takes the two
solved skills with the highest accuracy, the four frontier skills closest to 25%, and the two
out-of-reach skills with the lowest accuracy (ties: candidate order), with equal weights; a class
with too few members is filled with the unclassed skills nearest to it. Two candidates that are
the same dataset are not both taken (the later one is skipped).

    python benchmarks/skill_survey.py [--student smollm2] [--pack benchmarks/packs/mixed-candidates]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from failforward.agents.student import Student
from failforward.tools.packs.pack import load_pack
from failforward.tools.stats.by_skill import SkillScore, skill_accuracy

CLASSES = {"solved": (0.5, 1.01), "frontier": (0.10, 0.5), "out of reach": (0.0, 0.05)}
TAKE = {"solved": 2, "frontier": 4, "out of reach": 2}


def survey(pack_path: str, student_spec: str) -> dict[str, SkillScore]:
    pack = load_pack(pack_path)
    source = pack.make_source()
    _, test = pack.draw_sets(source)
    student = Student(student_spec, engine="transformers")
    attempts = student.answer(None, pack, test, pack.make_verifier(source), batch_size=32)
    return skill_accuracy([(a.item, a.score) for a in attempts])


def classify(accuracy: float) -> str:
    for name, (low, high) in CLASSES.items():
        if low <= accuracy < high:
            return name
    return "-"


def choose(scores: dict[str, SkillScore], datasets: dict[str, str]) -> dict[str, list[str]]:
    """The rule above: which skills each class contributes (``datasets``: each skill's dataset,
    in the candidates' order, which breaks ties)."""
    order = [s for s in datasets if s in scores]
    key = {
        "solved": lambda s: (-scores[s].accuracy, order.index(s)),
        "frontier": lambda s: (abs(scores[s].accuracy - 0.25), order.index(s)),
        "out of reach": lambda s: (scores[s].accuracy, order.index(s)),
    }
    centre = {"solved": 0.5, "frontier": 0.25, "out of reach": 0.05}
    taken: dict[str, list[str]] = {}
    used: set[str] = set()
    for name, count in TAKE.items():
        members = sorted([s for s in order if classify(scores[s].accuracy) == name], key=key[name])
        spare = sorted(
            [s for s in order if classify(scores[s].accuracy) == "-"],
            key=lambda s: (abs(scores[s].accuracy - centre[name]), order.index(s)),
        )
        taken[name] = []
        for skill in [*members, *spare]:
            if len(taken[name]) == count:
                break
            if datasets[skill] in used:
                continue
            taken[name].append(skill)
            used.add(datasets[skill])
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="benchmarks/packs/mixed-candidates")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--out", default="runs/skill_survey.json")
    args = parser.parse_args()
    scores = survey(args.pack, args.student)
    pack = load_pack(args.pack)
    datasets = {s.name: s.source.dataset or s.source.path for s in pack.spec.skills}
    configs = {s.name: s.source.config for s in pack.spec.skills}
    taken = choose(scores, datasets)
    chosen = {s: c for c, skills in taken.items() for s in skills}
    print("| skill | dataset | config | base accuracy (95% interval, items) | class | in mixed |")
    print("|---|---|---|---|---|---|")
    for skill in datasets:
        score = scores[skill]
        config = ", ".join(f"{k} {v}" for k, v in configs[skill].items()) or "default"
        print(
            f"| {skill} | {datasets[skill]} | {config} | {score.text()} | "
            f"{classify(score.accuracy)} | {chosen.get(skill, '-')} |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    record = {s: {"correct": v.correct, "n": v.n} for s, v in scores.items()}
    Path(args.out).write_text(json.dumps({"scores": record, "taken": taken}, indent=2))


if __name__ == "__main__":
    main()
