import pytest
import torch

from training.config import TrainConfig
from training.offpolicy import fit_max_length, sft_rows, train_sft
from training.student_model import load_student


def _rows(n=16):
    examples = [{"question": f"{a} + {a} =", "answer": str(2 * a)} for a in range(n)]
    return sft_rows(examples, lambda q: [{"role": "user", "content": q}])


def test_sft_rows_are_prompt_completion_chats():
    row = _rows(1)[0]
    assert row["prompt"] == [{"role": "user", "content": "0 + 0 ="}]
    assert row["completion"] == [{"role": "assistant", "content": "0"}]


def test_max_length_from_data_and_truncation_counted(tiny_student_dir):
    _, tokenizer = load_student(tiny_student_dir)
    rows = _rows()
    limit, truncated = fit_max_length(tokenizer, rows, TrainConfig())
    assert truncated == 0 and limit > 20
    _, cut = fit_max_length(tokenizer, rows, TrainConfig(max_length=limit - 1))
    assert cut >= 1


def test_lora_sft_changes_adapter_not_base(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained, result = train_sft(
        model, tokenizer, _rows(), TrainConfig(epochs=1, batch_size=4), tmp_path / "cycle-1"
    )
    assert result.steps == 4 and result.truncated == 0
    assert (result.adapter_dir / "adapter_config.json").is_file()
    lora_b = {n: p for n, p in trained.named_parameters() if "lora_B" in n}
    assert lora_b and all(not torch.equal(p, torch.zeros_like(p)) for p in lora_b.values())
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(base_before[name], trained.get_base_model().get_parameter(name))


def test_training_continues_from_a_saved_adapter(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    _, first = train_sft(model, tokenizer, _rows(8), TrainConfig(epochs=1), tmp_path / "c1")
    reloaded, _ = load_student(tiny_student_dir, first.adapter_dir)
    before = {n: p.detach().clone() for n, p in reloaded.named_parameters() if "lora_B" in n}
    trained, _ = train_sft(reloaded, tokenizer, _rows(8), TrainConfig(epochs=1), tmp_path / "c2")
    after = dict(trained.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)


@pytest.mark.parametrize("bad", [{"learning_rate": 0}, {"batch_size": 0}, {"max_length": 4}])
def test_config_checks(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)
