"""``--train-launcher ray``: a phase on Ray Train workers (a ``TorchTrainer`` over gloo on a real
local Ray instance, started here) trains what one process does, and a failing rank's own error
comes back to the run."""

from __future__ import annotations

import pytest

from failforward.training.config import TrainConfig
from failforward.training.phases import _train_phase
from failforward.training.student_model import load_student
from tests.integration.test_train_processes import _messages, _rows

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _train(tiny_student_dir, out_dir, **config):
    model, tokenizer = load_student(tiny_student_dir)
    config = TrainConfig(objective="sft", epochs=1, batch_size=8, **config)
    seen: list[tuple[int, int]] = []
    model, result = _train_phase(
        "sft", model, tokenizer, _rows("sft"), config, out_dir, lambda *step: seen.append(step)
    )
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    return result, lora, seen


def test_two_ray_train_workers_train_what_one_process_does(local_ray, tiny_student_dir, tmp_path):
    one, one_weights, _ = _train(tiny_student_dir, tmp_path / "one")
    two, two_weights, seen = _train(tiny_student_dir, tmp_path / "ray", processes=2, launcher="ray")
    assert one.steps == two.steps == 4 and seen[-1] == (4, 4)  # rank 0's steps reached us
    one_losses = [e["loss"] for e in one.log if "loss" in e]
    two_losses = [e["loss"] for e in two.log if "loss" in e]
    assert len(one_losses) == len(two_losses) == 4
    assert all(
        abs(a - b) <= 0.02 * abs(a) + 1e-3 for a, b in zip(one_losses, two_losses, strict=True)
    )
    moved = max(p.abs().max() for n, p in one_weights.items() if "lora_B" in n)
    apart = max((one_weights[n] - two_weights[n]).abs().max() for n in one_weights)
    assert moved > 1e-3 and apart < 0.02 * moved
    assert two.processes == 2 and two.process_saves == [["trained"], []]
    assert len(two.process_peak_mb) == 2 and min(two.process_peak_mb) > 0
    job = tmp_path / "ray" / "sft-job"
    assert not (job / "start").exists() and not (job / "trained").exists()  # loaded, removed
    assert {p.name for p in job.glob("rank-*.log")} == {"rank-0.log", "rank-1.log"}  # not ours


def test_a_failing_ray_rank_is_reported_with_its_own_error(local_ray, tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = [{"prompt": _messages("1 + 1 ="), "completion": 7}] * 8  # not a chat message list
    config = TrainConfig(objective="sft", batch_size=8, processes=2, launcher="ray")
    with pytest.raises(RuntimeError, match="sft on 2 processes failed") as failure:
        _train_phase("sft", model, tokenizer, rows, config, tmp_path, None)
    assert "Traceback" in str(failure.value) and "_train_rank" in str(failure.value)
