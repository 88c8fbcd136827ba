"""``--train-launcher ray``: a phase on Ray Train workers (a ``TorchTrainer`` over gloo on a real
local Ray instance, started for the module) trains what one process does, and a failing rank's
own error comes back to the run."""

from __future__ import annotations

import pytest

from failforward.training.config import TrainConfig
from failforward.training.phases import _train_phase
from failforward.training.student_model import load_student
from tests.integration.test_train_processes import _messages, assert_trained_alike, train

pytest.importorskip("ray")


@pytest.mark.slow  # 41 s; several training processes stay in the fast suite (test_train_processes)
def test_two_ray_train_workers_train_what_one_process_does(local_ray, tiny_student_dir, tmp_path):
    one, one_weights, _ = train(tiny_student_dir, tmp_path / "one", "sft")
    two, two_weights, seen = train(
        tiny_student_dir, tmp_path / "ray", "sft", processes=2, launcher="ray"
    )
    job = tmp_path / "ray" / "sft-job"
    assert_trained_alike(one, one_weights, two, two_weights, seen, job)
    assert {p.name for p in job.glob("rank-*.log")} == {"rank-0.log", "rank-1.log"}  # not ours


# 22 s; the two-worker training test keeps Ray Train in the fast suite
@pytest.mark.slow
def test_a_failing_ray_rank_is_reported_with_its_own_error(local_ray, tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = [{"prompt": _messages("1 + 1 ="), "completion": 7}] * 8  # not a chat message list
    config = TrainConfig(objective="sft", batch_size=8, processes=2, launcher="ray")
    with pytest.raises(RuntimeError, match="sft on 2 processes failed") as failure:
        _train_phase("sft", model, tokenizer, rows, config, tmp_path, None)
    assert "Traceback" in str(failure.value) and "_train_rank" in str(failure.value)
