"""A cycle's phases on the tiny student: each objective's unit trains in order on one model,
counts what it used, and a phase with nothing to train on leaves the student as it was."""

from contextlib import contextmanager

import torch

from failforward.training.config import TrainConfig
from failforward.training.phases import PHASES, CycleData, train_cycle, training_rows
from failforward.training.student_model import load_student


class _Bar:
    def __init__(self):
        self.updates = []

    def update(self, step, total):
        self.updates.append((step, total))


def _data(pairs, logs, bars, n=8):
    @contextmanager
    def progress(label, total):
        bar = _Bar()
        bars.append((label, total, bar))
        yield bar

    examples = [{"question": f"{a} + {a} =", "answer": str(2 * a), "cycle": 2} for a in range(n)]
    earlier = [{"question": f"{a} - 1 =", "answer": str(a - 1), "cycle": 1} for a in range(20)]
    return CycleData(
        cycle=2,
        examples=examples,
        earlier=earlier,
        messages=lambda q: [{"role": "user", "content": q}],
        completion=lambda ex: ex["answer"],
        pairs=lambda model, tokenizer: pairs,
        successes=[],
        reward=lambda text, row: 0.0,
        max_new_tokens=4,
        progress=progress,
        log=logs.append,
    )


def test_sft_then_dpo_train_one_model_in_order(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    pairs = [{"question": "1 + 1 =", "chosen": "2", "rejected": "11"}] * 4
    logs, bars = [], []
    config = TrainConfig(objective="sft+dpo", epochs=1, batch_size=4, replay_mix=0.5)
    trained = train_cycle(model, tokenizer, _data(pairs, logs, bars), config, tmp_path)
    assert [r.phase for r in trained.phases] == ["sft", "dpo"]
    m = trained.metrics
    assert (m["train_replayed"], m["sft_rows"], m["dpo_pairs"], m["dpo_rows"]) == (4, 12, 4, 4)
    assert m["train_steps"] == m["sft_steps"] + m["dpo_steps"] == 3 + 1
    assert [(label.split(":")[1].split()[0], total) for label, total, _ in bars] == [
        ("SFT", 3),
        ("DPO", 1),
    ]
    assert bars[0][2].updates[-1] == (3, 3)  # the trainer moved the bar to its last step
    lora_b = [p for n, p in trained.model.named_parameters() if "lora_B" in n]
    assert lora_b and any(not torch.equal(p, torch.zeros_like(p)) for p in lora_b)


def test_dpo_without_pairs_trains_nothing(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logs, bars = [], []
    config = TrainConfig(objective="dpo", epochs=1)
    trained = train_cycle(model, tokenizer, _data([], logs, bars), config, tmp_path)
    assert trained.phases == [] and trained.metrics == {"dpo_pairs": 0} and not bars
    assert logs == ["  cycle 2: the student got every new item right; no DPO pairs"]
    assert all(torch.equal(before[n], p) for n, p in trained.model.named_parameters())


def test_every_objective_has_its_phases():
    from failforward.training.config import OBJECTIVES

    for objective in OBJECTIVES:
        assert all(phase in PHASES for phase in TrainConfig(objective=objective).phases)


def _accepted(partition: dict[int, list[int]]) -> list[dict]:
    """Store-like accepted rows: example ``a`` accepted in the cycle ``partition`` puts it in,
    with store ids in insertion order."""
    rows = [
        {"question": f"{a} * 3 =", "answer": str(3 * a), "solution": "", "metadata": {"a": a}}
        | {"cycle": cycle}
        for cycle, picks in sorted(partition.items())
        for a in picks
    ]
    return [row | {"id": i} for i, row in enumerate(rows, 1)]


def test_base_rows_are_the_accepted_set_in_one_order_whatever_the_cycles():
    def taught(rows, cycle):
        return [(r["question"], r["answer"]) for r in training_rows(rows, cycle, "base")]

    two = _accepted({1: [0, 1, 2, 3], 2: [4, 5, 6, 7, 8]})
    three = _accepted({1: [8, 6], 2: [5, 0, 3, 7], 3: [2, 1, 4]})
    assert taught(two, 2) == taught(three, 3) and len(taught(two, 2)) == 9
    assert taught(three[::-1], 3) == taught(three, 3)  # nor the store's order
    assert {q for q, _ in taught(three, 2)} == {f"{a} * 3 =" for a in (8, 6, 5, 0, 3, 7)}


def test_previous_rows_are_the_cycles_own_in_stored_order():
    rows = _accepted({1: [8, 6], 2: [5, 0, 3, 7], 3: [2, 1, 4]})
    assert [r["id"] for r in training_rows(rows, 2, "previous")] == [3, 4, 5, 6]
    assert training_rows(rows, 4, "previous") == []
