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


@pytest.mark.parametrize("phase", ["sft", "dpo"])
def test_two_processes_train_what_one_does(tiny_student_dir, tmp_path, phase):
    rows, trained, steps_seen = _rows(phase), {}, []
    for processes in (1, 2):
        config = TrainConfig(
            objective=phase, epochs=1, batch_size=8, processes=processes, dpo_nll=0.0,
            dpo_learning_rate=1e-3,
        )  # fmt: skip
        model, tokenizer = load_student(tiny_student_dir)
        seen = []
        model, result = _train_phase(
            phase, model, tokenizer, rows, config, tmp_path / str(processes),
            lambda step, total, seen=seen: seen.append((step, total)),
        )  # fmt: skip
        lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        trained[processes] = (result, lora)
        steps_seen.append(seen)
    (one, one_weights), (two, two_weights) = trained[1], trained[2]
    assert one.steps == two.steps == 4 and steps_seen[1][-1] == (4, 4)
    one_losses = [e["loss"] for e in one.log if "loss" in e]
    two_losses = [e["loss"] for e in two.log if "loss" in e]
    assert len(one_losses) == len(two_losses) == 4
    assert all(
        abs(a - b) <= 0.02 * abs(a) + 1e-3 for a, b in zip(one_losses, two_losses, strict=True)
    )
    moved = max(p.abs().max() for n, p in one_weights.items() if "lora_B" in n)
    apart = max((one_weights[n] - two_weights[n]).abs().max() for n in one_weights)
    assert moved > 1e-3 and apart < 0.02 * moved
    assert len(two.process_peak_mb) == 2 and min(two.process_peak_mb) > 0
    assert two.process_saves == [["trained"], []]  # rank 0 alone wrote the trained student
    job = tmp_path / "2" / f"{phase}-job"
    assert not (job / "start").exists() and not (job / "trained").exists()  # loaded, removed
    assert not list((tmp_path / "2").glob("**/*.partial"))


def test_an_uneven_split_is_refused_by_name(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    config = TrainConfig(objective="sft", batch_size=9, processes=2)
    with pytest.raises(ValueError, match="--train-batch-size 9 must be a multiple of"):
        _train_phase("sft", model, tokenizer, _rows("sft"), config, tmp_path, None)


def test_grpo_on_several_processes_is_refused():
    with pytest.raises(ValueError, match="processes must be 1 with grpo"):
        TrainConfig(objective="grpo", processes=2)


def test_a_failing_rank_is_reported_with_its_own_error(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = [{"prompt": _messages("1 + 1 ="), "completion": 7}] * 8  # not a chat message list
    config = TrainConfig(objective="sft", batch_size=8, processes=2)
    with pytest.raises(RuntimeError, match="sft on 2 processes failed") as failure:
        _train_phase("sft", model, tokenizer, rows, config, tmp_path, None)
    assert "Traceback" in str(failure.value) and "_train_rank" in str(failure.value)
