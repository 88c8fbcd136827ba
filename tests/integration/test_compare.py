"""``failforward compare`` for real on the tiny student: both arms per seed on the same test set,
a report drawn from the stores, and a comparison that resumes where it stopped."""

import io
import json
from pathlib import Path

import pytest
import yaml

from failforward.app.compare import run_compare
from failforward.graph.settings import RunSettings
from failforward.tools.report.comparison import load_compare
from failforward.tools.report.report import write_compare_report
from failforward.tools.store import RunStore


def test_compare_runs_both_arms_per_seed_and_resumes(small_pack, tmp_path, quiet_ui, monkeypatch):
    import failforward.app.runner as runner

    real_run, calls, power = runner.run_loop, [], ["on"]

    def counted(settings=None, ui=None, resume=None, run_id=None):
        calls.append(resume or f"new {settings.plan.mode} s{settings.seed} {run_id}")
        if len(calls) == 3 and power == ["on"]:
            power[0] = "cut"
            raise KeyboardInterrupt("power cut")
        return real_run(settings, ui=ui, resume=resume, run_id=run_id)

    monkeypatch.setattr(runner, "run_loop", counted)
    spec = yaml.safe_load((small_pack / "pack.yaml").read_text())
    spec["probe"]["size"], spec["test"]["size"] = 16, 24  # six runs: what they share is tested
    (small_pack / "pack.yaml").write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    settings = RunSettings(
        pack=str(small_pack), student="tiny", cycles=1, budget=8, runs_dir=str(runs), patience=1
    )
    with pytest.raises(KeyboardInterrupt):
        run_compare(settings, seeds=2, ui=quiet_ui)
    (folder,) = runs.glob("compare-*")
    record = json.loads((folder / "compare.json").read_text())
    assert record["settings"]["patience"] == 2  # every arm runs all its cycles
    first = dict(record["runs"]["targeted"]), dict(record["runs"]["uniform"])

    calls.clear()
    compare_id, _ = run_compare(
        RunSettings(runs_dir=str(runs)), None, ui=quiet_ui, resume=folder.name
    )
    assert compare_id == folder.name
    record = json.loads((folder / "compare.json").read_text())
    t, u = record["runs"]["targeted"], record["runs"]["uniform"]
    # seed 0's finished runs are only looked at; seed 1 targeted keeps the id it was given
    assert calls == [t["0"], u["0"], f"new targeted s1 {t['1']}", f"new uniform s1 {u['1']}"]
    assert t["0"] == first[0]["0"] and t["1"] == first[0]["1"]

    stores = {
        (arm, seed): RunStore(runs / record["runs"][arm][seed] / "run.db")
        for arm in ("targeted", "uniform")
        for seed in ("0", "1")
    }
    tests = {key: [i.question for i in s.eval_items("test")] for key, s in stores.items()}
    assert len({tuple(v) for v in tests.values()}) == 1  # one test set for every run
    assert record["uniform_cycles"] == 2  # twice the targeted arm's, by default
    for (arm, seed), store in stores.items():
        s = store.get_meta("settings")
        cycles = {"targeted": 1, "uniform": 2}[arm]
        assert (s["plan"], s["seed"], s["cycles"], s["budget"]) == (arm, int(seed), cycles, 8)
        assert s["patience"] == cycles + 1
        assert sorted(store.metrics()) == list(range(cycles + 1))

    path, _ = write_compare_report(folder)
    report = path.read_text()
    assert all(run_id in report for arm in record["runs"].values() for run_id in arm.values())
    # the cycle-1 row holds each arm's mean examples and accuracy over the seeds, from the stores
    cells = []
    for arm in ("targeted", "uniform"):
        m = [stores[(arm, seed)].metrics()[1] for seed in ("0", "1")]
        examples = sum(x["train_examples_total"] for x in m) / 2
        cells.append(f"{examples:.0f} | {sum(x['test_acc'] for x in m) / 2:.1%}")
    curves = report.split("## Test accuracy against training examples")[1]
    row = next(line for line in curves.splitlines() if line.startswith("| 1 | "))
    assert row.startswith(f"| 1 | {cells[0]} (") and f" | {cells[1]} (" in row
    assert "data-efficiency ratio" in report
    # the report leads with the multiplier read off the uniform arm's (longer) curve
    headline = next(line for line in report.splitlines() if line.startswith("**"))
    assert headline.startswith("**Data-efficiency multiplier after targeted cycle 1: ")
    assert "| 2 | - | - | " in curves  # uniform's extra cycle, which targeted did not run
    assert "## Paired comparison after the same cycle" in report
    assert "Seeds needed: after cycle 1 the 2 seeds' paired differences" in report
    page = (folder / "report.html").read_text()
    assert page.count("<svg") == 1 and "Targeted vs uniform" in page

    # More seeds later: only the new seed's runs are made; the rest are looked at.
    calls.clear()
    with pytest.raises(ValueError, match="already has 2 seeds"):
        run_compare(RunSettings(runs_dir=str(runs)), 1, ui=quiet_ui, resume=folder.name)
    run_compare(RunSettings(runs_dir=str(runs)), 3, ui=quiet_ui, resume=folder.name)
    record = json.loads((folder / "compare.json").read_text())
    t, u = record["runs"]["targeted"], record["runs"]["uniform"]
    assert record["seeds"] == [0, 1, 2] and t["0"] == first[0]["0"]
    assert calls[:4] == [t["0"], u["0"], t["1"], u["1"]]
    assert calls[4:] == [f"new targeted s2 {t['2']}", f"new uniform s2 {u['2']}"]
    assert [len(c) for c in load_compare(folder)[1].values()] == [3, 3]


@pytest.mark.slow  # 26-38 s; a multi-skill cycle's report per skill stays in test_packs_loop
def test_a_multi_skill_comparison_reports_each_skill_per_arm(tmp_path, quiet_ui):
    """Two skills (2:1), one seed: the compare report breaks accuracy and examples trained down
    by skill for both arms, and the uniform arm's examples follow the mixture's weights."""
    from tests.unit.tools.test_skills import _spec, _write

    spec = _spec()
    spec["student"]["max_new_tokens"] = 8
    pack = _write(tmp_path, spec)
    runs = tmp_path / "runs"
    settings = RunSettings.from_options(
        pack=str(pack), student="tiny", cycles=1, budget=12, runs_dir=str(runs), objective="sft"
    )
    run_compare(settings, seeds=1, ui=quiet_ui)
    (folder,) = runs.glob("compare-*")
    path, summary = write_compare_report(folder)
    uniform = summary["skills"]["uniform"]
    assert set(uniform) == {"sums", "products"} and len(uniform["sums"]) == 3
    assert uniform["sums"][1].examples > uniform["products"][1].examples > 0
    assert all(0 <= c.low <= c.accuracy <= c.high <= 1 for rows in uniform.values() for c in rows)
    section = path.read_text().split("## Per skill: examples trained and test accuracy")[1]
    assert "| sums | targeted | " in section and "| products | uniform | " in section

    # A plan rule against the same baseline: the uniform runs are taken over, not trained again.
    from rich.console import Console

    from failforward.app.progress import LoopUI

    log = io.StringIO()
    ui = LoopUI(Console(file=log, width=200))
    progress = RunSettings.from_options(
        pack=str(pack), student="tiny", cycles=2, budget=12, runs_dir=str(runs), objective="sft",
        plan_weighting="progress",
    )  # fmt: skip
    before = {p.name for p in runs.iterdir()}
    with pytest.raises(
        ValueError, match="^--uniform-from .*: its runs had budget = 12, this comparison 16;"
    ):
        run_compare(
            RunSettings.from_options(**{**progress.to_dict(), "budget": 16}), seeds=1, ui=ui,
            uniform_from=folder.name,
        )  # fmt: skip
    with pytest.raises(ValueError, match="its uniform arm ran 2 cycles, this comparison's runs 4"):
        run_compare(progress, seeds=1, ui=ui, uniform_cycles=4, uniform_from=folder.name)
    with pytest.raises(ValueError, match="its uniform run for seed 1 is missing"):
        run_compare(progress, seeds=2, ui=ui, uniform_cycles=2, uniform_from=folder.name)
    assert {p.name for p in runs.iterdir()} == before  # refused before any folder
    second_id, second = run_compare(
        progress, seeds=1, ui=ui, uniform_cycles=2, uniform_from=folder.name
    )
    record = json.loads((second / "compare.json").read_text())
    first = json.loads((folder / "compare.json").read_text())
    assert record["runs"]["uniform"] == first["runs"]["uniform"]
    assert record["uniform_from"] == folder.name
    made = {p.name for p in runs.iterdir()} - before
    assert made == {second_id, record["runs"]["targeted"]["0"]}  # one new run: targeted
    targeted = RunStore(runs / record["runs"]["targeted"]["0"] / "run.db")
    assert targeted.get_meta("settings")["plan_weighting"] == "progress"
    assert sorted(targeted.metrics()) == [0, 1, 2]
    assert "learning progress (probe items gained per example): " in log.getvalue()
    assert write_compare_report(second)[1]["skills"]["uniform"] == summary["skills"]["uniform"]

    # --no-refill may borrow the uniform runs while they kept every cycle's whole budget (refill
    # changed nothing there); once one fell short, it may not.
    no_refill = RunSettings.from_options(**{**progress.to_dict(), "refill": False})
    third = run_compare(no_refill, seeds=1, ui=ui, uniform_cycles=2, uniform_from=folder.name)[1]
    assert (
        json.loads((third / "compare.json").read_text())["runs"]["uniform"]
        == record["runs"]["uniform"]
    )
    uniform = RunStore(runs / first["runs"]["uniform"]["0"] / "run.db")
    uniform.db.execute("UPDATE examples SET accepted = 0 WHERE cycle = 2 AND accepted = 1")
    uniform.db.commit()
    with pytest.raises(
        ValueError,
        match=r"its runs had refill = True, this comparison False, and "
        r"its uniform run .* kept fewer examples than its budget in cycle 2,",
    ):
        run_compare(no_refill, seeds=1, ui=ui, uniform_cycles=2, uniform_from=folder.name)


# 39 s; the oracle's table is unit-tested (test_learnability, test_headroom), compare's arms
# and resume stay in the fast suite
@pytest.mark.slow
def test_an_oracle_arm_follows_its_pilot_table_and_the_report_shows_three_arms(tmp_path, quiet_ui):
    """The positive control for real: a third arm whose plan spends the budget by the pack's
    planted learnability table (all on products, then sums once products' curve is flat), run
    next to both arms on every seed; the report compares the three, on the skills the table
    does not mark mastered too."""
    from tests.unit.tools.test_skills import _spec, _write

    spec = _spec()
    spec["student"]["max_new_tokens"] = 8
    pack = _write(tmp_path, spec)
    (pack / "learnability.yaml").write_text(
        "student: tiny\n"
        "skills:\n"
        "  sums: {status: mastered, curve: {0: 0.9, 64: 0.95}}\n"
        "  products: {status: in_reach, curve: {0: 0.1, 12: 0.5, 24: 0.5}}\n"
    )
    runs = tmp_path / "runs"
    settings = RunSettings.from_options(
        pack=str(pack), student="tiny", cycles=2, budget=12, runs_dir=str(runs), objective="sft"
    )
    with pytest.raises(ValueError, match="--arms targeted,oracle: choose targeted and uniform"):
        run_compare(settings, seeds=1, ui=quiet_ui, arms=("targeted", "oracle"))
    _, folder = run_compare(
        settings, seeds=1, ui=quiet_ui, uniform_cycles=2, arms=("oracle", "uniform", "targeted")
    )
    record = json.loads((folder / "compare.json").read_text())
    assert record["arms"] == ["targeted", "uniform", "oracle"]
    store = RunStore(runs / record["runs"]["oracle"]["0"] / "run.db")
    assert store.get_meta("settings")["plan"] == "oracle"
    first, second = ({t.cell["skill"]: t.budget for t in p.targets} for p in store.plans())
    assert first == {"products": 12}  # products' curve is the steeper for its test share
    # then what products was given is what the critic accepted: past its curve's end, sums'
    # slope is all that is left
    products = sum(e["metadata"]["skill"] == "products" for e in store.examples(accepted=True)
                   if e["cycle"] == 1)  # fmt: skip
    assert second == ({"sums": 12} if products >= 12 else {"products": 12 - products,
                      "sums": products})  # fmt: skip
    assert {plan.mode for plan in store.plans()} == {"oracle"}
    path, summary = write_compare_report(folder)
    found = summary["three_arms"]
    assert found.mastered == ["sums"] and found.focus is not None
    assert [g.cycle for g in found.focus.oracle] == [1, 2]
    assert set(found.mastered_falls) == {"targeted", "uniform", "oracle"}
    report = path.read_text()
    section = report.split("## Three arms: headroom and the share the plan recovers")[1]
    assert "On the skills not mastered (" in section and "| oracle | " in section
    assert "| cycle | targeted examples | targeted test acc | uniform examples" in report
    assert "oracle examples | oracle test acc |" in report
    # the compact record a session commits gives the report's figures back without the runs
    import importlib.util

    import numpy as np

    from failforward.tools.stats.headroom import three_arms

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_items.py"
    module_spec = importlib.util.spec_from_file_location("compare_items", script)
    compare_items = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(compare_items)
    kept = json.loads(json.dumps(compare_items.dump(folder)))
    assert kept["mastered"] == ["sums"] and len(kept["trained_before"]) == len(kept["skills"])
    assert {key.split(":")[1] for key in kept["seconds"][record["runs"]["oracle"]["0"]]} >= {
        "evaluate_student", "train_student"}  # fmt: skip
    every = np.ones(len(kept["skills"]), bool)
    again = three_arms(compare_items.outcomes_of(kept, every), set(kept["mastered"]))
    assert again.focus.oracle == found.focus.oracle and again.all.targeted == found.all.targeted
    printed = compare_items.figures(kept)
    assert "not mastered (" in printed
    # and the report's per-skill table, examples of each skill included, comes back the same
    assert "## Per skill" in printed and printed.split("## Per skill")[1] in report


def test_a_learnability_plan_runs_the_loop_and_shows_each_cells_success(tmp_path, quiet_ui):
    """--plan-weighting learnability through the real graph, its success sampled (2 replies per
    probe item): its plan carries each target's shrunk success, and the run's report shows it."""
    from tests.unit.tools.test_skills import _spec, _write

    spec = _spec()
    spec["student"]["max_new_tokens"] = 8
    pack = _write(tmp_path, spec)
    settings = RunSettings.from_options(
        pack=str(pack), student="tiny", cycles=1, budget=10, runs_dir=str(tmp_path / "runs"),
        objective="sft", plan_weighting="learnability", plan_replay=0.2, plan_samples=2,
    )  # fmt: skip
    from failforward.app.runner import run_loop

    run_id = run_loop(settings, ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    (plan,) = store.plans()
    assert plan.budget == 10 and {t.kind for t in plan.targets} <= {
        "frontier", "stepping_stone", "replay", "explore"
    }  # fmt: skip
    aimed = [t for t in plan.targets if t.kind != "explore"]
    assert all(t.success is not None for t in aimed)
    report = (tmp_path / "runs" / run_id / "report.md").read_text()
    assert "| target | kind | failures | error share | p | weight |" in report
