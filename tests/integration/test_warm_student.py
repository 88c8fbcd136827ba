"""A warmed student: a new run starts from the student an earlier run trained (``--student`` a
run folder or a checkpoint), a LoRA checkpoint merged onto its base once, exactly."""

import shutil
from contextlib import closing

import pytest
import torch
import yaml
from rich.console import Console

from failforward.app.progress import LoopUI
from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import PACKS_DIR
from failforward.tools.stats.guard import kept_students, student_checkpoint
from failforward.tools.store import RunStore
from failforward.training.student_model import cache_root, load_student, resolve_student


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("pack") / "small-arithmetic"
    shutil.copytree(PACKS_DIR / "arithmetic", target)
    spec = yaml.safe_load((target / "pack.yaml").read_text())
    spec["probe"]["size"], spec["test"]["size"] = 40, 60
    spec["student"]["max_new_tokens"] = 8  # the untrained student rambles to the limit
    (target / "pack.yaml").write_text(yaml.safe_dump(spec))
    return target


def _run(pack_dir, runs_dir, student, cycles):
    settings = RunSettings.from_options(
        pack=str(pack_dir), runs_dir=str(runs_dir), student=student, llm="none", budget=16,
        cycles=cycles, objective="sft",
    )  # fmt: skip
    return runs_dir / run_loop(settings, ui=LoopUI(Console(quiet=True)))


@pytest.fixture(scope="module")
def warm_run(pack_dir, tmp_path_factory, tiny_student_dir):
    """One cycle on the tiny student (LoRA, SFT only, for speed): the warmed student's run."""
    run_dir = _run(pack_dir, tmp_path_factory.mktemp("runs"), "tiny", cycles=1)
    with closing(RunStore(run_dir / "run.db")) as store:
        metrics = store.metrics()
    assert kept_students(metrics)[1] == 1  # the guard kept cycle 1's student
    return run_dir, metrics


def _logits(model, tokenizer):
    batch = tokenizer(["<|im_start|>user\n12 + 7 =<|im_end|>\n"], return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits


def test_a_run_folder_gives_its_kept_student_merged_exactly(warm_run, tiny_student_dir):
    run_dir, _ = warm_run
    checkpoint = student_checkpoint(run_dir, 1)
    merged_dir = resolve_student(str(run_dir))
    assert merged_dir.parent == cache_root() / "students" and (merged_dir / "config.json").is_file()
    assert resolve_student(str(checkpoint)) == merged_dir  # the checkpoint itself: same merge
    merged, tokenizer = load_student(merged_dir)
    base, _ = load_student(tiny_student_dir)
    assert not hasattr(merged, "peft_config")  # a whole model, no adapter left on it
    changed = [
        name
        for name, weight in merged.named_parameters()
        if not torch.equal(weight, base.get_parameter(name))
    ]
    assert changed  # LoRA's update is in the weights
    adapted, _ = load_student(tiny_student_dir, checkpoint)
    assert torch.allclose(_logits(merged, tokenizer), _logits(adapted, tokenizer), atol=1e-5)
    assert not torch.allclose(_logits(merged, tokenizer), _logits(base, tokenizer), atol=1e-3)


def _replies(store: RunStore, cycle: int) -> list[str]:
    rows = store.db.execute(
        "SELECT output FROM attempts WHERE cycle = ? AND split = 'test' ORDER BY idx", (cycle,)
    )
    return [r["output"] for r in rows]


def test_a_run_started_from_a_run_records_it_and_starts_where_it_ended(warm_run, pack_dir):
    first_dir, first = warm_run
    second_dir = _run(pack_dir, first_dir.parent, str(first_dir), cycles=0)
    with closing(RunStore(second_dir / "run.db")) as store:
        recorded = store.get_meta("student")
        assert store.get_meta("settings")["student"] == str(first_dir)  # the setting as given
        items, replies = store.eval_items("test"), _replies(store, 0)
        test_acc = store.metrics()[0]["test_acc"]
    with closing(RunStore(first_dir / "run.db")) as earlier:
        assert items == earlier.eval_items("test")
        assert replies == _replies(earlier, 1) != _replies(earlier, 0)  # the trained student's
    assert recorded == {
        "spec": str(first_dir),
        "path": str(resolve_student(str(first_dir))),
        "from_run": str(first_dir.resolve()),
        "cycle": 1,
        "checkpoint": str(student_checkpoint(first_dir.resolve(), 1)),
    }
    assert test_acc == first[1]["test_acc"]  # the same student on the same test set
    # a run that trained nothing ends with the student it started from
    assert resolve_student(str(second_dir)) == resolve_student(str(first_dir))


def test_a_student_folder_given_relative_is_stored_absolute(warm_run, pack_dir, monkeypatch):
    """A resume may start from another working directory: the run stores where its student is."""
    first_dir, _ = warm_run
    monkeypatch.chdir(first_dir.parent)
    second_dir = _run(pack_dir, first_dir.parent, first_dir.name, cycles=0)
    with closing(RunStore(second_dir / "run.db")) as store:
        assert store.get_meta("settings")["student"] == str(first_dir.resolve())
        assert store.get_meta("student")["from_run"] == str(first_dir.resolve())
