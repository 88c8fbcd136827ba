"""The real embedded student: converted from the packaged GGUF, answering, and trainable."""

import pytest
import torch

from agents.student import answer_items
from tools.packs import load_pack
from tools.verifiers import make_verifier
from training.config import TrainConfig
from training.offpolicy import sft_rows, train_sft
from training.student_model import load_student, smollm2_dir

pytestmark = pytest.mark.slow


def test_smollm2_converts_answers_and_trains(model_cache, tmp_path):
    base_dir = smollm2_dir()
    assert (base_dir / "model.safetensors").is_file()
    assert "quantization_config" not in (base_dir / "config.json").read_text()
    model, tokenizer = load_student(base_dir)

    pack = load_pack("arithmetic")
    source = pack.make_source()
    items = source.sample(8, seed=5)
    attempts = answer_items(model, tokenizer, pack, items, make_verifier("reasoning_gym", source))
    assert len(attempts) == 8 and all(a.output for a in attempts)

    rows = sft_rows([i.model_dump() for i in items], lambda q: [{"role": "user", "content": q}])
    trained, result = train_sft(
        model, tokenizer, rows, TrainConfig(epochs=1, batch_size=4), tmp_path / "c1"
    )
    assert result.steps == 2 and result.truncated == 0
    lora_b = [p for n, p in trained.named_parameters() if "lora_B" in n]
    assert lora_b and any(not torch.equal(p, torch.zeros_like(p)) for p in lora_b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_runs_on_the_gpu(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = sft_rows(
        [{"question": f"{a} + 1 =", "answer": str(a + 1)} for a in range(8)],
        lambda q: [{"role": "user", "content": q}],
    )
    trained, _ = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path / "c1")
    assert next(trained.parameters()).device.type == "cuda"
