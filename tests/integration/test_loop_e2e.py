"""The whole loop, for real (LangGraph, FAISS, TRL, SQLite), on the tiny from-scratch student."""

import re

import pytest
import torch

from failforward.agents.critic import REFILLED
from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.sources import normalize
from failforward.tools.store import RunStore
from failforward.training.student_model import load_student
from tests.scripted import load_state

LOOP = [
    "evaluate_student",
    "analyze_failures",
    "generate_examples",
    "critique_examples",
    "train_student",
]


def _settings(pack_dir, tmp_path, **extra):
    defaults = dict(student="tiny", llm="none", cycles=2, budget=16)
    return RunSettings.from_options(
        pack=str(pack_dir), runs_dir=str(tmp_path / "runs"), **{**defaults, **extra}
    )


def _logits(model, tokenizer):
    batch = tokenizer(["<|im_start|>user\n12 + 7 =<|im_end|>\n"], return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits


def test_two_cycles_end_to_end(small_pack, tmp_path, quiet_ui, tiny_student_dir):
    settings = _settings(small_pack, tmp_path)
    run_id = run_loop(settings, ui=quiet_ui)
    run_dir = tmp_path / "runs" / run_id

    state = load_state(run_dir, run_id)
    assert state["nodes_run"] == ["bootstrap", *LOOP, *LOOP, "evaluate_student", "write_report"]
    assert state["cycle"] == 2 and state["stop_reason"] == "cycles done"
    assert [row["cycle"] for row in state["history"]] == [0, 1, 2]

    store = RunStore(run_dir / "run.db")
    examples = store.examples()
    assert {e["cycle"] for e in examples} == {1, 2} and len(examples) == 2 * 16 * 2  # --overdraw 2
    plan_targets = {t.target_id: t for plan in store.plans() for t in plan.targets}
    # the budget buys accepted examples: a target keeps at most its budget of what the critic
    # passed first; draws past it are surplus, and only once the budget is met. Refill (on by
    # default) gives a short target's place to other targets' surplus, so a cycle keeps its
    # whole budget while surplus is left
    refilled = 0
    for plan in store.plans():
        rows = [e for e in examples if e["cycle"] == plan.cycle]
        short = 0
        for target in plan.targets:
            mine = sorted(
                (e for e in rows if e["target_id"] == target.target_id), key=lambda e: e["id"]
            )
            own = [e["accepted"] and REFILLED not in e["detail"] for e in mine]
            surplus = [n for n, e in enumerate(mine) if e["reason"] == "surplus"]
            assert sum(own) <= target.budget
            assert not surplus or sum(own[: surplus[0]]) == target.budget
            short += target.budget - sum(own)
        moved = sum(e["accepted"] and REFILLED in e["detail"] for e in rows)
        assert moved <= short and sum(e["accepted"] for e in rows) <= plan.budget
        assert moved == short or not any(e["reason"] == "surplus" for e in rows)
        refilled += moved
    assert any(e["reason"] == "surplus" for e in examples) and refilled > 0
    for e in examples:
        assert e["lineage"]["source"] == "procedural" and e["reason"] != "pending"
        assert (
            e["target_id"] in plan_targets
            and e["cluster_id"] == plan_targets[e["target_id"]].cluster_id
        )
    accepted = {normalize(e["question"]) for e in store.examples(accepted=True)}
    test_set = {normalize(i.question) for i in store.eval_items("test")}
    assert accepted and not accepted & test_set
    assert len(store.clusters(1)) >= 1
    cluster_ids = {c.cluster_id for c in store.clusters(1)}
    assert (
        store.failure_clusters(0)
        and set(store.failure_clusters(0)) <= cluster_ids
        and store.metrics()[2]["train_examples_total"] == len(store.examples(accepted=True))
    )
    # the plan keeps its exploration floor; cycle 2's clusters are tracked against cycle 1's
    for plan in store.plans():
        assert sum(t.budget for t in plan.targets if t.kind == "explore") == round(16 * 0.1)
    links = store.cluster_links(2)
    cycle1 = {c.cluster_id for c in store.clusters(1) if not c.outlier}
    assert {link["previous_id"] for link in links if link["previous_id"] is not None} == cycle1
    assert all(c.mode_id for c in store.clusters(2) if not c.outlier)

    # the default objective, sft+dpo: both phases logged, pairs from the student's own failures
    for cycle in (1, 2):
        accepted = {e["id"]: e for e in store.examples(cycle=cycle, accepted=True)}
        pairs = store.pairs(cycle)
        assert pairs and store.metrics()[cycle]["dpo_pairs"] == len(pairs)
        for pair in pairs:
            assert pair["chosen"] != pair["rejected"]
            assert pair["chosen"] == accepted[pair["example_id"]]["answer"]
            assert pair["lineage"]["rejected"]["source"] == "student"
        log = store.train_log(cycle)
        assert list(log) == ["sft", "dpo"] and all(e["loss"] >= 0 for e in log["sft"])
        assert store.metrics()[cycle]["peak_rss_mb"] > 100

    base, tokenizer = load_student(tiny_student_dir)
    trained, _ = load_student(tiny_student_dir, run_dir / "checkpoints" / "cycle-2" / "student")
    assert not torch.allclose(_logits(base, tokenizer), _logits(trained, tokenizer))
    report = (run_dir / "report.md").read_text()
    assert "Test accuracy per cycle" in report and "cycles done" in report
    assert "| cluster | failures | near-item acc |" in report and "| explore |" in report
    assert "## Training" in report and "| 2 | sft |" in report and "| 2 | dpo |" in report
    page = (run_dir / "report.html").read_text()
    assert page.count("<svg") == 4 and "Failure modes over cycles" in page
    metrics = store.metrics()
    for cycle in (0, 1, 2):  # the page's accuracy table holds the stored numbers
        assert f'<td class="num">{metrics[cycle]["test_acc"]:.1%}</td>' in page
    # self-contained: nothing loaded from elsewhere (SVG namespace URIs are names, not loads)
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|file:|//)""", page)
    assert "<script" not in page and "<link" not in page and "<img" not in page


@pytest.mark.slow  # 18 s; replay's mixing is unit-tested in training/test_replay.py
def test_replay_mixes_earlier_cycles_into_training(small_pack, tmp_path, quiet_ui):
    run_id = run_loop(_settings(small_pack, tmp_path, replay_mix=0.5), ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    metrics = store.metrics()
    first = len(store.examples(cycle=1, accepted=True))
    second = len(store.examples(cycle=2, accepted=True))
    assert metrics[1]["train_replayed"] == 0  # nothing earlier to replay
    assert metrics[2]["train_replayed"] == min(first, round(0.5 * second)) > 0
    assert metrics[2]["train_examples_total"] == first + second  # replays are not new examples


def test_crash_then_resume_loses_and_repeats_nothing(small_pack, tmp_path, quiet_ui, monkeypatch):
    import failforward.agents.student
    import failforward.training.offpolicy as offpolicy
    import failforward.training.student_model

    real_train, calls = offpolicy.train_dpo, []

    def crash_on_second_cycle(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # cycle 2: pairs sampled and SFT done, DPO cut off
            raise KeyboardInterrupt("power cut")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(offpolicy, "train_dpo", crash_on_second_cycle)
    settings = _settings(small_pack, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_loop(settings, ui=quiet_ui)
    run_id = next((tmp_path / "runs").iterdir()).name
    before = RunStore(tmp_path / "runs" / run_id / "run.db")
    cycle_two = [e["question"] for e in before.examples(cycle=2)]
    pairs_two = before.pairs(2)
    assert pairs_two

    monkeypatch.setattr(offpolicy, "train_dpo", real_train)
    loaded, answered = [], []
    real_load, real_answer = (
        failforward.training.student_model.load_student,
        failforward.agents.student.answer_items,
    )

    def spy_load(base_dir, checkpoint=None):
        loaded.append(checkpoint)
        return real_load(base_dir, checkpoint)

    def spy_answer(model, tokenizer, pack, items, *args, **kwargs):
        answered.append(len(items))
        return real_answer(model, tokenizer, pack, items, *args, **kwargs)

    monkeypatch.setattr(failforward.training.student_model, "load_student", spy_load)
    monkeypatch.setattr(failforward.agents.student, "answer_items", spy_answer)
    resumed = run_loop(RunSettings(runs_dir=str(tmp_path / "runs")), ui=quiet_ui, resume=run_id)
    assert resumed == run_id
    # Cycle 2 trains on from cycle 1's checkpoint, and only the final evaluation asks the
    # student anything (probe and test): the stored pairs are not sampled again.
    assert [str(c) for c in loaded] == [
        str(tmp_path / "runs" / run_id / "checkpoints" / "cycle-1" / "student")
    ]
    assert answered == [40, 60]
    state = load_state(tmp_path / "runs" / run_id, run_id)
    # Nothing before the crash ran again: one bootstrap, one generation per cycle.
    assert state["nodes_run"] == ["bootstrap", *LOOP, *LOOP, "evaluate_student", "write_report"]
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    assert [e["question"] for e in store.examples(cycle=2)] == cycle_two
    assert len(cycle_two) == 16 * 2
    assert store.pairs(2) == pairs_two
    assert state["checkpoint"].endswith("cycle-2/student")
    assert list(store.train_log(2)) == ["sft", "dpo"]


@pytest.mark.parametrize(
    "objective, full",
    [
        ("sft", False),
        ("dpo", True),
        # 26 s; GRPO's update from a verifier's reward stays in the fast unit suite
        pytest.param("grpo", False, marks=pytest.mark.slow),
    ],
    ids=str,
)
def test_each_objective_trains_a_cycle(small_pack, tmp_path, quiet_ui, objective, full):
    settings = _settings(small_pack, tmp_path, cycles=1, objective=objective, full_finetune=full)
    run_id = run_loop(settings, ui=quiet_ui)
    run_dir = tmp_path / "runs" / run_id
    store = RunStore(run_dir / "run.db")
    metrics = store.metrics()[1]
    assert list(store.train_log(1)) == [objective]
    assert metrics[f"{objective}_steps"] >= 1 and metrics["train_seconds"] > 0
    assert bool(store.pairs(1)) == (objective == "dpo")
    saved = run_dir / "checkpoints" / "cycle-1" / "student"
    assert (saved / ("config.json" if full else "adapter_config.json")).is_file()
    assert load_state(run_dir, run_id)["checkpoint"] == str(saved)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_vllm_evaluation_without_cuda_is_refused_before_a_run_folder_exists(tmp_path, quiet_ui):
    settings = RunSettings(student="tiny", eval_engine="vllm", runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match="--eval-engine vllm needs CUDA"):
        run_loop(settings, ui=quiet_ui)
    assert not (tmp_path / "runs").exists()


def test_a_fixed_file_pack_without_a_teacher_endpoint_is_refused_before_a_folder(
    tmp_path, quiet_ui
):
    from failforward.tools.packs.pack import PACKS_DIR

    example = PACKS_DIR.parent / "examples" / "minimal-pack"
    with pytest.raises(ValueError, match="has no procedural source .* --llm local"):
        run_loop(RunSettings(pack=str(example), runs_dir=str(tmp_path)), ui=quiet_ui)
    assert not any(tmp_path.iterdir())


def test_resume_of_unknown_run_is_an_error(tmp_path, quiet_ui):
    with pytest.raises(FileNotFoundError, match="no-such-run"):
        run_loop(RunSettings(runs_dir=str(tmp_path)), ui=quiet_ui, resume="no-such-run")


def test_resume_refuses_a_pack_changed_since_the_start(small_pack, tmp_path, quiet_ui):
    runs = tmp_path / "runs"
    run_id = run_loop(_settings(small_pack, tmp_path, cycles=0), ui=quiet_ui)
    assert load_state(runs / run_id, run_id)["stop_reason"] == "cycles done"
    assert run_loop(RunSettings(runs_dir=str(runs)), ui=quiet_ui, resume=run_id) == run_id
    (small_pack / "student.jinja").write_text("Q: {{ question }}")
    with pytest.raises(ValueError, match="changed since the run started"):
        run_loop(RunSettings(runs_dir=str(runs)), ui=quiet_ui, resume=run_id)


def test_two_runs_in_the_same_second_get_their_own_folders(small_pack, tmp_path, quiet_ui):
    settings = _settings(small_pack, tmp_path, cycles=0)
    first, second = run_loop(settings, ui=quiet_ui), run_loop(settings, ui=quiet_ui)
    assert first != second
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_a_node_error_is_named_by_doctor_until_a_resume_runs_through(
    small_pack, tmp_path, quiet_ui, monkeypatch
):
    from failforward.agents import critic
    from failforward.app.doctor import check_run

    real = critic.critique

    def broken(*args, **kwargs):
        raise RuntimeError("the critic fell over")

    monkeypatch.setattr(critic, "critique", broken)
    settings = _settings(small_pack, tmp_path, cycles=1, budget=8, objective="sft")
    with pytest.raises(RuntimeError, match="fell over"):
        run_loop(settings, ui=quiet_ui, run_id="broken")
    run_dir = tmp_path / "runs" / "broken"
    _, problems = check_run(run_dir)
    assert problems == [
        "run failed in critique_examples (cycle 1): RuntimeError('the critic fell over'); once "
        "the cause is fixed, `failforward run --resume broken` continues it"
    ]
    monkeypatch.setattr(critic, "critique", real)
    run_loop(RunSettings(runs_dir=str(tmp_path / "runs")), ui=quiet_ui, resume="broken")
    passed, problems = check_run(run_dir)
    assert problems == [] and "no node failed" in passed


def test_a_run_folder_appears_only_once_its_store_can_resume_it(small_pack, tmp_path, quiet_ui):
    from failforward.app.runner import create_run_folder
    from failforward.tools.packs.pack import load_pack

    settings = _settings(small_pack, tmp_path, cycles=0)
    pack = load_pack(str(small_pack))
    (tmp_path / "runs").mkdir()
    stale = tmp_path / "runs" / ".r1.partial"  # what a kill during creation leaves
    stale.mkdir()
    (stale / "run.db").write_bytes(b"half")
    folder = create_run_folder(settings, "r1", pack)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["r1"]
    store = RunStore(folder / "run.db")
    assert store.get_meta("settings")["pack"] == str(small_pack) and store.get_meta("pack_dir")
    store.close()
    run_loop(RunSettings(runs_dir=str(tmp_path / "runs")), ui=quiet_ui, resume="r1")
