"""``--train-processes 2``: SFT and DPO as DDP over gloo on this CPU, launched by accelerate, on
the tiny student; the same steps, losses and weights as one process with the same batch."""

from __future__ import annotations

import pytest

from failforward.training.config import TrainConfig
from failforward.training.offpolicy import dpo_rows, sft_rows
from failforward.training.phases import _train_phase
from failforward.training.student_model import load_student


def _messages(question):
    return [{"role": "user", "content": question}]


def _rows(phase: str) -> list[dict]:
    if phase == "sft":
        examples = [{"question": f"{a} + {a} =", "answer": str(2 * a)} for a in range(32)]
        return sft_rows(examples, _messages)
    pairs = [
        {"question": f"{a} + {a} =", "chosen": str(2 * a), "rejected": f"I think {a}"}
        for a in range(32)
    ]
    return dpo_rows(pairs, _messages)


def train(tiny_student_dir, out_dir, phase: str, **config):
    """One phase on the tiny student: its result, LoRA weights after, and the steps reported."""
    config = TrainConfig(
        objective=phase, epochs=1, batch_size=8, dpo_nll=0.0, dpo_learning_rate=1e-3, **config
    )
    model, tokenizer = load_student(tiny_student_dir)
    seen: list[tuple[int, int]] = []
    model, result = _train_phase(
        phase, model, tokenizer, _rows(phase), config, out_dir, lambda *step: seen.append(step)
    )
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    return result, lora, seen


def assert_trained_alike(one, one_weights, two, two_weights, seen, job) -> None:
    """Two ranks trained what one process did (``seen``: the two-rank run's reported steps);
    rank 0 alone wrote the student, which the caller loaded from ``job`` and removed."""
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
    assert two.processes == 2 and len(two.process_peak_mb) == 2 and min(two.process_peak_mb) > 0
    assert two.process_saves == [["trained"], []]  # rank 0 alone wrote the trained student
    assert not (job / "start").exists() and not (job / "trained").exists()  # loaded, removed


# dpo: 17 s, in the slow suite; sft keeps two-process training in the fast one
@pytest.mark.parametrize("phase", ["sft", pytest.param("dpo", marks=pytest.mark.slow)])
def test_two_processes_train_what_one_does(tiny_student_dir, tmp_path, phase):
    one, one_weights, _ = train(tiny_student_dir, tmp_path / "1", phase)
    two, two_weights, seen = train(tiny_student_dir, tmp_path / "2", phase, processes=2)
    assert_trained_alike(one, one_weights, two, two_weights, seen, tmp_path / "2" / f"{phase}-job")
    assert not list((tmp_path / "2").glob("**/*.partial"))


def test_an_uneven_split_is_refused_by_name(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    config = TrainConfig(objective="sft", batch_size=9, processes=2)
    with pytest.raises(ValueError, match="--train-batch-size 9 must be a multiple of"):
        _train_phase("sft", model, tokenizer, _rows("sft"), config, tmp_path, None)


def test_grpo_on_several_processes_is_refused():
    with pytest.raises(ValueError, match="processes must be 1 with grpo"):
        TrainConfig(objective="grpo", processes=2)


# 12 s; two processes training stay in the fast suite
@pytest.mark.slow
def test_a_failing_rank_is_reported_with_its_own_error(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = [{"prompt": _messages("1 + 1 ="), "completion": 7}] * 8  # not a chat message list
    config = TrainConfig(objective="sft", batch_size=8, processes=2)
    with pytest.raises(RuntimeError, match="sft on 2 processes failed") as failure:
        _train_phase("sft", model, tokenizer, rows, config, tmp_path, None)
    assert "Traceback" in str(failure.value) and "_train_rank" in str(failure.value)
