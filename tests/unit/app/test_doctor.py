"""``failforward doctor``'s checks, each on a small hand-built run folder damaged one way."""

import sqlite3

import pytest
import torch
from safetensors.torch import save_file

from failforward.app.doctor import check_run
from failforward.tools.records import Candidate, Item, Lineage, Verdict
from failforward.tools.store import RunStore


def _candidate(i: int) -> Candidate:
    lineage = Lineage(cycle=1, target_id="c1-k0", source="procedural")
    return Candidate(question=f"{i} + 1 =", answer=str(i + 1), lineage=lineage)


@pytest.fixture
def run_dir(tmp_path):
    """A run that evaluated cycle 0, accepted 3 of 4 candidates in cycle 1 and trained on them."""
    folder = tmp_path / "run-1"
    store = RunStore(folder / "run.db")
    store.set_meta("settings", {"pack": "arithmetic"})
    store.set_meta("pack_dir", "/packs/arithmetic")
    store.set_meta("pack_fingerprint", "abc")
    store.save_eval_items("probe", [Item(question="1 + 2 =", answer="3")])
    store.save_eval_items("test", [Item(question="2 + 2 =", answer="4")])
    store.save_metrics(0, {"test_acc": 0.0, "probe_acc": 0.0})
    for split in ("probe", "test"):
        store.db.execute("INSERT INTO attempts VALUES (0, ?, 0, 'x', 'x', 0.0)", (split,))
    store.db.commit()
    verdicts = [
        Verdict(accepted=i < 3, reason="accepted" if i < 3 else "duplicate", step="dedupe")
        for i in range(4)
    ]
    store.save_examples(1, [_candidate(i) for i in range(4)], verdicts)
    store.save_metrics(1, {"train_examples": 3, "train_examples_total": 3, "train_steps": 2})
    request = {"prompt": "q"}
    store.save_call(store.call_key("teacher", "m", request), "teacher", "m", request, "r")
    store.close()
    weights = folder / "checkpoints" / "cycle-1" / "student"
    weights.mkdir(parents=True)
    save_file({"w": torch.zeros(64, 64)}, weights / "adapter_model.safetensors")
    return folder


def _sql(run_dir, statement):
    connection = sqlite3.connect(run_dir / "run.db")
    connection.execute(statement)
    connection.commit()
    connection.close()


def test_a_sound_run_passes(run_dir):
    passed, problems = check_run(run_dir)
    assert problems == [] and "examples stored once" in passed and "student checkpoints" in passed


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (
            "UPDATE metrics SET value=5 WHERE cycle=1 AND name='train_examples'",
            "trained on 5",
        ),
        ("UPDATE examples SET question = '9 + 9 =' WHERE id = 1", "content_hash does not match"),
        ("UPDATE examples SET reason = 'pending', accepted = 0 WHERE id = 4", "never critiqued"),
        ("UPDATE llm_calls SET response = 'x', key = 'forged'", "not their request's"),
        ("DELETE FROM attempts WHERE split = 'test'", "cycle 0 test has 0 answers for 1 items"),
        ("DELETE FROM meta WHERE key = 'pack_fingerprint'", "pack_fingerprint is missing"),
        ("UPDATE eval_items SET question = '1 + 2 =' WHERE split = 'test'", "in both probe"),
    ],
)
def test_each_kind_of_damage_is_named(run_dir, damage, found):
    _sql(run_dir, damage)
    _, problems = check_run(run_dir)
    assert any(found in p for p in problems), problems


def test_cut_off_weights_are_found(run_dir):
    path = run_dir / "checkpoints" / "cycle-1" / "student" / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    assert any("cut off" in p for p in check_run(run_dir)[1])


def test_missing_weights_are_found(run_dir):
    (run_dir / "checkpoints" / "cycle-1" / "student" / "adapter_model.safetensors").unlink()
    assert any("holds no weights" in p for p in check_run(run_dir)[1])


def test_a_corrupt_database_is_named(run_dir):
    data = bytearray((run_dir / "run.db").read_bytes())
    data[100:4000] = b"\xff" * 3900
    (run_dir / "run.db").write_bytes(bytes(data))
    _, problems = check_run(run_dir)
    assert problems and problems[0].startswith("run.db:")


def test_an_accepted_example_cannot_be_stored_twice(run_dir):
    store = RunStore(run_dir / "run.db")
    again = [Verdict(accepted=True, reason="accepted", step="dedupe")]
    with pytest.raises(sqlite3.IntegrityError):
        store.save_examples(2, [_candidate(0)], again)  # cycle 1 accepted "0 + 1 =" already
    assert len(store.examples(accepted=True)) == 3


def test_a_run_a_node_error_stopped_is_not_sound(run_dir):
    store = RunStore(run_dir / "run.db")
    store.set_meta("failure", {"node": "critique_examples", "cycle": 1, "error": "boom"})
    store.close()
    _, problems = check_run(run_dir)
    assert problems == [
        "run failed in critique_examples (cycle 1): boom; once the cause is fixed, "
        "`failforward run --resume run-1` continues it"
    ]
