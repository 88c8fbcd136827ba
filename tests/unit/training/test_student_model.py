"""What a ``--student`` value resolves to, and the errors a bad one gives (no model is loaded)."""

import json
from contextlib import closing

import pytest

from failforward.tools.store import RunStore
from failforward.training.student_model import resolve_student, student_source


def test_a_folder_with_no_model_adapter_or_run_is_refused_by_name(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"--student '.*empty': .*empty holds no config.json"):
        resolve_student(str(empty))
    with pytest.raises(ValueError, match=r"--student '.*nowhere': .*nowhere is missing; expected"):
        resolve_student(str(tmp_path / "nowhere"))


def test_an_adapter_outside_a_run_needs_a_base_it_can_find(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "gone"}))
    with pytest.raises(ValueError, match=r"adapter in .*adapter .*base_model_name_or_path"):
        resolve_student(str(adapter))


def test_a_run_that_trained_nothing_gives_the_student_it_started_from(tmp_path, tiny_student_dir):
    """Cycle 0 of a run is its own starting student, its stored setting resolved afresh."""
    run = tmp_path / "run"
    with closing(RunStore(run / "run.db")) as store:
        store.set_meta("settings", {"student": str(tiny_student_dir)})
        store.save_metrics(0, {"test_acc": 0.0})
        store.save_metrics(1, {"test_acc": 0.0})  # a cycle that did not train keeps cycle 0
    source = student_source(str(run))
    assert source.path == tiny_student_dir.resolve()
    assert source.record() == {
        "spec": str(run),
        "path": str(tiny_student_dir.resolve()),
        "from_run": str(run.resolve()),
        "cycle": 0,
        "checkpoint": None,
    }
