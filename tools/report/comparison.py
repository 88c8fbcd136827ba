"""A comparison's folder read back: its record, each arm's curves and item-level outcomes from
the run stores (the statistics over them are :mod:`tools.stats`)."""

from __future__ import annotations

import json
from pathlib import Path

from failforward.tools.stats.curves import ARMS, Curve, run_curve


def record_arms(record: dict) -> tuple[str, ...]:
    """The arms a comparison record ran (records from before ``--arms`` ran the two)."""
    return tuple(record.get("arms", ARMS))


def load_compare(folder: Path) -> tuple[dict, dict[str, list[Curve]], dict[str, list[str]]]:
    """The record, each arm's curves (seeds in order) and run ids, from the run stores."""
    from failforward.tools.store import RunStore

    record = json.loads((folder / "compare.json").read_text())
    curves: dict[str, list[Curve]] = {}
    run_ids: dict[str, list[str]] = {}
    for arm in record_arms(record):
        curves[arm], run_ids[arm] = [], []
        for seed in record["seeds"]:
            run_id = record["runs"][arm].get(str(seed))
            db = folder.parent / str(run_id) / "run.db"
            if not run_id or not db.is_file():
                raise FileNotFoundError(
                    f"{folder.name}: the {arm} run of seed {seed} is missing; continue with "
                    f"failforward compare --resume {folder.name}"
                )
            store = RunStore(db)
            curves[arm].append(run_curve(store.metrics()))
            store.close()
            run_ids[arm].append(run_id)
    return record, curves, run_ids


def load_outcomes(folder: Path, run_ids: dict[str, list[str]]) -> dict:
    """Each arm's item-level test results (:class:`tools.stats.multiplier.ArmOutcomes`), seeds in
    order, cycles up to the shortest run of the arm. A cycle the guard rolled back counts the
    kept student's answers, as its accuracy does. Every run must have the same test items."""
    import numpy as np

    from failforward.tools.stats.by_skill import students_in_use
    from failforward.tools.stats.multiplier import ArmOutcomes
    from failforward.tools.store import RunStore

    questions: list[str] | None = None
    skill_of: dict[str, str] = {}
    arms = {}
    for arm in run_ids:
        examples, correct, spent = [], [], []
        for run_id in run_ids[arm]:
            store = RunStore(folder.parent / run_id / "run.db")
            metrics = store.metrics()
            items = store.eval_items("test")
            order = [item.question for item in items]
            questions = questions or order
            if sorted(order) != sorted(questions):
                store.close()
                raise ValueError(f"{run_id}: its test items are not the comparison's")
            skill_of |= {i.question: i.metadata["skill"] for i in items if "skill" in i.metadata}
            ex, right = [], []
            for cycle, in_use in students_in_use(metrics):
                scores = {i.question: s for i, s in store.attempts(in_use, "test")}
                right.append([scores[q] >= 1.0 for q in questions])
                ex.append(metrics[cycle].get("train_examples_total", 0.0) if cycle else 0.0)
            spent.append(_skill_examples(store.examples(accepted=True), len(ex)))
            store.close()
            examples.append(ex)
            correct.append(right)
        cycles = min(len(ex) for ex in examples)
        skills = [skill_of[q] for q in questions] if skill_of else None
        by_skill = {
            skill: np.array(
                [[seed.get(skill, [0] * cycles)[c] for c in range(cycles)] for seed in spent]
            )
            for skill in dict.fromkeys(skills or [])
        }
        arms[arm] = ArmOutcomes(
            np.array([ex[:cycles] for ex in examples]),
            np.array([r[:cycles] for r in correct]),
            skills,
            by_skill or None,
        )
    return arms


def _skill_examples(rows: list[dict], cycles: int) -> dict[str, list[int]]:
    """Accepted examples per skill and cycle (index = cycle; 0 at cycle 0)."""
    out: dict[str, list[int]] = {}
    for row in rows:
        skill = row["metadata"].get("skill")
        if skill is not None and row["cycle"] < cycles:
            out.setdefault(skill, [0] * cycles)[row["cycle"]] += 1
    return out
