"""The real embedded student: converted from the packaged GGUF, answering, and trainable."""

import pytest
import torch

from failforward.agents.student import VLLMStudent, answer_items, student_messages, vllm_usable
from failforward.tools.packs.pack import load_pack
from failforward.tools.verify.verifiers import make_verifier
from failforward.training.config import TrainConfig
from failforward.training.offpolicy import dpo_rows, save_checkpoint, sft_rows, train_dpo, train_sft
from failforward.training.student_model import load_student, smollm2_dir

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

    # DPO on the student's own wrong answers, on top of the SFT adapter
    pairs = [
        {"question": a.item.question, "chosen": a.item.answer, "rejected": a.output}
        for a in attempts
        if not a.correct and a.output.strip() != a.item.answer
    ]
    assert pairs
    rows = dpo_rows(pairs, lambda q: student_messages(pack, q))
    before = {n: p.detach().clone() for n, p in trained.named_parameters() if "lora_" in n}
    trained, result = train_dpo(trained, tokenizer, rows, TrainConfig(epochs=1), tmp_path / "c1")
    assert result.steps >= 1 and list(trained.peft_config) == ["default"]
    assert any(not torch.equal(before[n], p) for n, p in trained.named_parameters() if n in before)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_runs_on_the_gpu(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = sft_rows(
        [{"question": f"{a} + 1 =", "answer": str(a + 1)} for a in range(8)],
        lambda q: [{"role": "user", "content": q}],
    )
    trained, result = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path / "c1")
    assert next(trained.parameters()).device.type == "cuda"
    assert result.steps == 1  # batch size 0 resolves to 32 on CUDA
    pairs = [{"question": r["prompt"][0]["content"], "chosen": "1", "rejected": "no"} for r in rows]
    trained, result = train_dpo(
        trained,
        tokenizer,
        dpo_rows(pairs, lambda q: [{"role": "user", "content": q}]),
        TrainConfig(epochs=1),
        tmp_path / "c1",
    )
    assert result.loss is not None and torch.cuda.max_memory_allocated() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not vllm_usable(), reason="needs CUDA and the gpu extra (vLLM)")
def test_vllm_answers_like_transformers(model_cache, tmp_path):
    """Greedy answers from vLLM (bf16) and transformers agree on most items, base and adapter."""
    base_dir = smollm2_dir()
    model, tokenizer = load_student(base_dir)
    pack = load_pack("arithmetic")
    source = pack.make_source()
    items = source.sample(32, seed=5)
    verifier = make_verifier("reasoning_gym", source)
    rows = sft_rows([i.model_dump() for i in items], lambda q: student_messages(pack, q))
    trained, _ = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path)
    adapter = save_checkpoint(trained, tokenizer, tmp_path / "student")
    engine = VLLMStudent(base_dir, lora_rank=16)
    for checkpoint in (None, adapter):
        reference, _ = load_student(base_dir, checkpoint)
        hf = answer_items(reference, tokenizer, pack, items, verifier)
        fast = answer_items(
            reference,
            tokenizer,
            pack,
            items,
            verifier,
            replies_for=lambda prompts, n, c=checkpoint: engine.generate(prompts, n, c),
        )
        agree = sum(a.extracted == b.extracted for a, b in zip(hf, fast, strict=True))
        assert agree >= 0.8 * len(items), (checkpoint, agree)


@pytest.mark.gpu
def test_ray_workers_answer_on_the_gpu_as_the_driver_does(tiny_student_dir):
    """Two student workers sharing one GPU (--ray-worker-gpus 0.5) give the replies that the
    same batches decoded here on CUDA give."""
    ray = pytest.importorskip("ray")
    from failforward.agents.student import generate
    from failforward.agents.workers import StudentWorkers

    pack = load_pack("arithmetic")
    prompts = [student_messages(pack, i.question) for i in pack.make_source().sample(64, seed=2)]
    model, tokenizer = load_student(tiny_student_dir)  # on CUDA here
    assert next(model.parameters()).is_cuda
    expected = generate(model, tokenizer, prompts, 12, batch_size=16)
    ray.init(num_cpus=4, num_gpus=1, include_dashboard=False)
    try:
        workers = StudentWorkers(tiny_student_dir, 16, workers=2, gpus=0.5)
        assert workers.replies_for(None, batch_size=16)(prompts, 12) == expected
        workers.close()
    finally:
        ray.shutdown()
