"""``failforward compare``: the same loop on both plans over several seeds.

Each arm and seed is an ordinary run folder next to the comparison's folder, which holds
``compare.json`` (settings and the run id of every arm and seed, written before each run starts);
the statistics over the finished runs are :mod:`tools.stats.curves`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from failforward.graph.settings import RunSettings
from failforward.tools.report.comparison import record_arms
from failforward.tools.stats.curves import ARMS


def new_compare_id(settings: RunSettings) -> str:
    """``compare-<pack>-<date>-<time>``, with a suffix if that folder already exists."""
    from failforward.app.runner import free_folder_name

    base = f"compare-{Path(settings.pack).name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return free_folder_name(settings.runs_dir, base)


def run_compare(
    settings: RunSettings,
    seeds: int | None,
    ui=None,
    resume: str | None = None,
    uniform_cycles: int | None = None,
    uniform_from: str | None = None,
    arms: tuple[str, ...] = ARMS,
) -> tuple[str, Path]:
    """Run (or continue) every arm and seed one after another; returns the id and its folder.

    Each run gets the same settings but its plan and seed, and patience past the last cycle, so
    every arm runs all its cycles and the curves line up. The uniform arm runs
    ``uniform_cycles`` (default twice ``settings.cycles``), so its curve spans the accuracy the
    targeted arm reaches and the multiplier can be read off it. With ``resume``, ``seeds``
    above the recorded count adds seeds to the comparison (None: the recorded ones).
    ``uniform_from`` names an earlier comparison whose uniform runs this one takes as its own
    (:func:`borrowed_uniform`): a plan rule is compared against the same baseline without
    training it again. ``arms`` adds ``oracle`` to the two (:func:`check_arms`): the positive
    control, which spends the budget by the pack's pilot learnability table and runs the
    targeted arm's cycles.
    """
    from failforward.app.runner import check_new_run, new_run_id, run_loop

    if settings.on_regression == "stop":
        raise ValueError(
            "--on-regression stop would end an arm before its last cycle and misalign the "
            "curves; compare runs every cycle: use rollback or keep"
        )
    runs_dir = Path(settings.runs_dir)
    if resume:
        folder = runs_dir / resume
        if not (folder / "compare.json").is_file():
            raise FileNotFoundError(f"--resume {resume}: no comparison {folder} with compare.json")
        record = json.loads((folder / "compare.json").read_text())
        compare_id = resume
        if seeds is not None and seeds < len(record["seeds"]):
            raise ValueError(
                f"--seeds {seeds}: comparison {resume} already has {len(record['seeds'])} "
                "seeds; --seeds can only add more"
            )
        if seeds is not None:
            record["seeds"] = list(range(seeds))
    else:
        seeds = 3 if seeds is None else seeds
        if seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {seeds}")
        uniform_cycles = 2 * settings.cycles if uniform_cycles is None else uniform_cycles
        if uniform_cycles < settings.cycles:
            raise ValueError(
                f"--uniform-cycles {uniform_cycles}: the uniform arm must run at least the "
                f"targeted arm's {settings.cycles} cycles"
            )
        arms = check_arms(arms, settings)
        check_new_run(settings, getattr(ui, "log", None))  # before the comparison's folder
        compare_id = new_compare_id(settings)
        folder = runs_dir / compare_id
        base = {**settings.to_dict(), "patience": settings.cycles + 1, "target_accuracy": 1.0}
        record = {
            "settings": base,
            "uniform_cycles": uniform_cycles,
            "seeds": list(range(seeds)),
            "arms": list(arms),
            "runs": {a: {} for a in arms},
        }
        if uniform_from:
            record["runs"]["uniform"] = borrowed_uniform(runs_dir, uniform_from, record)
            record["uniform_from"] = uniform_from
    folder.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        (folder / "compare.json").write_text(json.dumps(record, indent=2))

    save()
    for seed in record["seeds"]:
        for arm in record_arms(record):
            run_id = record["runs"][arm].get(str(seed))
            if run_id and (runs_dir / run_id / "run.db").is_file():
                # started before: finish it (a finished run returns at once)
                run_loop(RunSettings(runs_dir=str(runs_dir)), ui=ui, resume=run_id)
                continue
            options = {**record["settings"], **arm_cycles(record, arm)}
            options |= {"seed": seed, "runs_dir": str(runs_dir)}
            options |= {"plan": arm} if arm != "targeted" else {}
            run_settings = RunSettings.from_dict(options)
            run_id = run_id or new_run_id(run_settings)
            record["runs"][arm][str(seed)] = run_id
            save()
            run_loop(run_settings, ui=ui, run_id=run_id)
    return compare_id, folder


def check_arms(arms: tuple[str, ...], settings: RunSettings) -> tuple[str, ...]:
    """The comparison's arms in run order: targeted and uniform always, oracle on request (its
    pack must have a valid learnability table; the error names the file and field)."""
    unknown = sorted(set(arms) - {*ARMS, "oracle"})
    if unknown or not set(ARMS) <= set(arms):
        raise ValueError(
            f"--arms {','.join(arms)}: choose targeted and uniform, optionally oracle"
            + (f" ({', '.join(unknown)} is not an arm)" if unknown else "")
        )
    if settings.plan.mode != "targeted":
        raise ValueError(f"--plan {settings.plan.mode}: compare sets each arm's plan itself")
    if "oracle" in arms:
        from failforward.tools.packs.pack import load_pack
        from failforward.tools.stats.learnability import load_table

        load_table(load_pack(settings.pack))
    return tuple(a for a in (*ARMS, "oracle") if a in arms)


# Settings a uniform run does not read (its cycles are --uniform-cycles, its patience past them).
TARGETED_ONLY = ("explore", "cycles", "patience")
# Settings that say where a run computes, not what: the same results either way.
PLACEMENT = ("executor", "ray_address", "ray_workers", "ray_worker_gpus")


def borrowed_uniform(runs_dir: Path, other_id: str, record: dict) -> dict[str, str]:
    """The uniform runs of comparison ``other_id`` for ``record``'s seeds: every one must be there
    and finished, and ``other_id`` must have run them with ``record``'s settings apart from the
    targeted arm's (``--plan-*``, ``--explore``, ``--cycles``) and where it computed
    (``--executor``, ``--ray-*``), and the same ``--uniform-cycles``; any other difference is an
    error naming the setting (a setting an older record lacks counts as what such a run used)."""
    from failforward.app.runner import run_graph_state

    path = runs_dir / other_id / "compare.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"--uniform-from {other_id}: no comparison {path.parent} with compare.json"
        )
    other = json.loads(path.read_text())

    def shared(settings: dict) -> dict:
        stored = RunSettings.from_dict(settings).to_dict()  # what an older record left out
        return {
            k: v
            for k, v in stored.items()
            if not k.startswith("plan_") and k not in TARGETED_ONLY + PLACEMENT
        }

    ours, theirs = shared(record["settings"]), shared(other["settings"])
    different = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    # --refill only acts where a target fell short: checked per run below
    refill = "refill" in different
    different = [k for k in different if k != "refill"]
    if different:
        k = different[0]
        raise ValueError(
            f"--uniform-from {other_id}: its runs had {k} = {theirs.get(k)!r}, this comparison "
            f"{ours.get(k)!r}; only the targeted plan's settings may differ"
        )
    ran, runs = arm_cycles(other, "uniform")["cycles"], record["uniform_cycles"]
    if ran != runs:
        raise ValueError(
            f"--uniform-from {other_id}: its uniform arm ran {ran} cycles, this comparison's "
            f"runs {runs} (--uniform-cycles)"
        )
    runs = {}
    for seed in record["seeds"]:
        run_id = other["runs"]["uniform"].get(str(seed))
        if not (run_id and run_graph_state(runs_dir / run_id, run_id)["ended"]):
            raise ValueError(
                f"--uniform-from {other_id}: its uniform run for seed {seed} is "
                f"{'not finished' if run_id else 'missing'}; finish it with "
                f"`failforward compare --resume {other_id}` first"
            )
        short = _short_cycles(runs_dir / run_id) if refill else []
        if short:
            raise ValueError(
                f"--uniform-from {other_id}: its runs had refill = {theirs.get('refill')!r}, this "
                f"comparison {ours.get('refill')!r}, and its uniform run {run_id} kept fewer "
                f"examples than its budget in cycle {', '.join(map(str, short))}, where refill "
                "would have changed it"
            )
        runs[str(seed)] = run_id
    return runs


def _short_cycles(run_dir: Path) -> list[int]:
    """The cycles in which a run's critic kept fewer examples than the plan's budget."""
    from failforward.tools.store import RunStore

    store = RunStore(run_dir / "run.db")
    try:
        return [
            plan.cycle
            for plan in store.plans()
            if len(store.examples(cycle=plan.cycle, accepted=True)) < plan.budget
        ]
    finally:
        store.close()


def arm_cycles(record: dict, arm: str) -> dict:
    """The cycles (and patience past them) an arm runs; comparisons stored before
    ``--uniform-cycles`` ran both arms for the same cycles."""
    cycles = record["settings"]["cycles"]
    if arm == "uniform":
        cycles = record.get("uniform_cycles", cycles)
    return {"cycles": cycles, "patience": cycles + 1}
