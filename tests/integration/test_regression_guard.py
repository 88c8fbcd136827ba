"""The regression guard and self-distillation anchors on a student that is right on a known
subset: it answers "0" to everything, so it gets every "a - a =" item of the eval set right and
every other one wrong. The teacher's items (chain sums, answers rarely 0) train it towards other
numbers: without anchors that loses the subset, the guard sees it on its half of the probe set
and rolls the cycle back; with anchors (its own right answers on the other half) it keeps it."""

import json
import shutil

import pytest
import yaml

from failforward.app.doctor import check_run
from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import PACKS_DIR, load_pack
from failforward.tools.stats.guard import guard_item, students
from failforward.tools.store import RunStore
from tests.scripted import load_state

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def zero_pack(tmp_path_factory):
    """The arithmetic pack's teacher and critic; an eval file half of "a - a =" (answer 0)."""
    target = tmp_path_factory.mktemp("zero") / "pack"
    shutil.copytree(PACKS_DIR / "arithmetic", target)
    spec = yaml.safe_load((target / "pack.yaml").read_text())
    knobs = lambda a: {"num_terms": 2, "num_digits": len(str(a))}  # noqa: E731  (as the pack's)
    items = [
        {"question": f"{a} - {a} =", "answer": "0", "metadata": knobs(a)} for a in range(1, 121)
    ]
    items += [
        {"question": f"{a} + {a + 1} =", "answer": str(2 * a + 1), "metadata": knobs(a)}
        for a in range(1, 121)
    ]
    (target / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    spec["train_source"] = spec["eval_source"]
    spec["eval_source"] = {"kind": "jsonl", "path": "items.jsonl"}
    spec["probe"]["size"], spec["test"]["size"] = 40, 60
    spec["verifier"] = "numeric"
    (target / "pack.yaml").write_text(yaml.safe_dump(spec))
    return target


@pytest.fixture(scope="module")
def zero_student(zero_pack, tiny_student_dir, tmp_path_factory):
    """The tiny student trained to answer "0" to any question."""
    from failforward.agents.student import student_messages
    from failforward.training.config import TrainConfig
    from failforward.training.offpolicy import save_checkpoint, sft_rows, train_sft
    from failforward.training.student_model import load_student

    pack = load_pack(str(zero_pack))
    questions = [f"{a} * {b} =" for a in range(8) for b in range(4)]
    rows = sft_rows(
        [{"question": q, "answer": "0"} for q in questions], lambda q: student_messages(pack, q)
    )
    model, tokenizer = load_student(tiny_student_dir)
    config = TrainConfig(epochs=4, full_finetune=True, learning_rate=2e-3, batch_size=8)
    out = tmp_path_factory.mktemp("zero-student")
    model, _ = train_sft(model, tokenizer, rows, config, out / "train")
    return save_checkpoint(model, tokenizer, out / "student")


def _settings(pack, student, tmp_path, **extra):
    options = dict(student=str(student), cycles=1, budget=16, objective="sft", epochs=3)
    # 1e-3 left "0" the argmax at about 7% (flattened, not flipped) with transformers 5.24 and
    # TRL 1.16; 2e-3 flips it with a margin (the subset goes from 11 right to 0).
    options |= dict(full_finetune=True, learning_rate=2e-3, runs_dir=str(tmp_path / "runs"))
    return RunSettings.from_options(pack=str(pack), **{**options, **extra})


def _subset_right(store: RunStore, cycle: int) -> int:
    """Guard-half probe items with answer 0 the student got right at ``cycle``."""
    attempts = store.attempts(cycle, "probe")
    return sum(
        score >= 1.0
        for i, (item, score) in enumerate(attempts)
        if guard_item(i) and item.answer == "0"
    )


def test_anchors_keep_what_the_guard_sees_lost_without_them(
    zero_pack, zero_student, tmp_path, quiet_ui
):
    plain = run_loop(
        _settings(zero_pack, zero_student, tmp_path, anchor_share=0.0, on_regression="keep"),
        ui=quiet_ui,
    )
    store = RunStore(tmp_path / "runs" / plain / "run.db")
    before, after = _subset_right(store, 0), _subset_right(store, 1)
    assert before >= 5 and after < before / 2  # the subset is lost
    m = store.metrics()[1]
    assert m["guard_regressed"] == 1 and m["guard_rolled_back"] == 0  # seen, kept as asked
    assert m["train_anchors"] == 0

    anchored = run_loop(
        _settings(zero_pack, zero_student, tmp_path, anchor_share=1.0, on_regression="keep"),
        ui=quiet_ui,
    )
    store = RunStore(tmp_path / "runs" / anchored / "run.db")
    m = store.metrics()[1]
    assert m["train_anchors"] > 0 and m["guard_regressed"] == 0
    assert _subset_right(store, 1) == _subset_right(store, 0)  # the subset stays right


def test_rollback_halves_the_next_learning_rate_and_survives_a_kill(
    zero_pack, zero_student, tmp_path, quiet_ui, monkeypatch
):
    import failforward.training.offpolicy as offpolicy

    real_train, calls = offpolicy.train_sft, []

    def crash_in_cycle_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("power cut")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(offpolicy, "train_sft", crash_in_cycle_two)
    settings = _settings(zero_pack, zero_student, tmp_path, cycles=2, anchor_share=0.0)
    with pytest.raises(KeyboardInterrupt):
        run_loop(settings, ui=quiet_ui)
    run_id = next((tmp_path / "runs").iterdir()).name
    run_dir = tmp_path / "runs" / run_id
    state = load_state(run_dir, run_id)
    assert state["kept_cycle"] == 0 and state["checkpoint"] is None  # cycle 1 rolled back
    assert state["lr_scale"] == 0.5

    monkeypatch.setattr(offpolicy, "train_sft", real_train)
    run_loop(RunSettings(runs_dir=str(tmp_path / "runs")), ui=quiet_ui, resume=run_id)
    store = RunStore(run_dir / "run.db")
    metrics = store.metrics()
    assert metrics[1]["guard_rolled_back"] == 1
    # The cycle ends with the kept student: its accuracy is what the curves and the stop rule see.
    assert metrics[1]["test_acc"] == metrics[0]["test_acc"]
    assert metrics[1]["discarded_probe_acc"] < metrics[1]["probe_acc"]
    lr = {c: max(e["learning_rate"] for e in store.train_log(c)["sft"]) for c in (1, 2)}
    assert lr[2] == pytest.approx(lr[1] / 2, rel=0.05)  # the next cycle's settings changed
    state = load_state(run_dir, run_id)
    found = students(metrics)
    assert state["checkpoint"] == (
        str(found.checkpoint(run_dir, found.final)) if found.final else None
    )
    report = (run_dir / "report.md").read_text()
    assert "## Regression guard" in report and "rolled back" in report
    passed, problems = check_run(run_dir)
    assert not problems and any(
        p.startswith("regression guard:") and "cycle 1 rolled back" in p for p in passed
    )
