"""The run's Student: one load per checkpoint, a trained model kept without reloading it, and
answers from the engine the run chose."""

import pytest

import failforward.training.student_model as student_model
from failforward.agents.student import Student
from failforward.tools.packs.pack import load_pack
from failforward.tools.verify.verifiers import make_verifier
from failforward.training.config import TrainConfig
from failforward.training.offpolicy import sft_rows, train_sft


@pytest.fixture
def loads(monkeypatch):
    calls, real = [], student_model.load_student

    def spy(base_dir, checkpoint=None):
        calls.append(checkpoint)
        return real(base_dir, checkpoint)

    monkeypatch.setattr(student_model, "load_student", spy)
    return calls


def test_loads_once_per_checkpoint_and_keeps_what_it_saved(tiny_student_dir, tmp_path, loads):
    student = Student(str(tiny_student_dir), engine="transformers", log=lambda _: None)
    model, tokenizer = student.at(None)
    assert student.at(None)[0] is model and loads == [None]
    example = {"question": "1 + 1 =", "answer": "2"}
    rows = sft_rows([example], lambda q: [{"role": "user", "content": q}])
    trained, _ = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path)
    checkpoint = student.save(trained, tokenizer, tmp_path / "student")
    assert student.at(checkpoint)[0] is trained and loads == [None]  # not loaded again
    fresh = Student(str(tiny_student_dir), engine="transformers")
    fresh.at(checkpoint)
    assert loads == [None, tmp_path / "student"]  # a resumed run loads the checkpoint


def test_answers_score_every_item(tiny_student_dir):
    pack = load_pack("arithmetic")
    source = pack.make_source()
    items = source.sample(4, seed=1)
    student = Student(str(tiny_student_dir), engine="auto")  # no CUDA here: transformers
    attempts = student.answer(None, pack, items, make_verifier("reasoning_gym", source))
    assert [a.item for a in attempts] == items
    assert all(a.score in (0.0, 1.0) for a in attempts)


def test_the_untrained_students_replies_are_reused_within_the_process(
    tiny_student_dir, tmp_path, monkeypatch
):
    """The runs of a comparison share cycle 0: a second Student on the same base model answers
    the same items without generating, with the same replies, scored afresh; a trained
    checkpoint's replies are never reused."""
    import failforward.agents.student as student_module

    pack = load_pack("arithmetic")
    source = pack.make_source()
    items = source.sample(6, seed=11)
    verifier = make_verifier("reasoning_gym", source)
    monkeypatch.setattr(student_module, "BASE_REPLIES", {})
    calls, real = [], student_module.generate

    def counted(*args, **kwargs):
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(student_module, "generate", counted)
    first = Student(str(tiny_student_dir), engine="transformers").answer(
        None, pack, items, verifier
    )
    seen = []
    again = Student(str(tiny_student_dir), engine="transformers").answer(
        None, pack, items, verifier, on_batch=seen.append
    )
    assert calls == [6] and seen == [6]
    assert [a.model_dump() for a in again] == [a.model_dump() for a in first]
    wrong = lambda answer, item: type(verifier(answer, item))(0.0, "mismatch")  # noqa: E731
    assert all(
        a.score == 0
        for a in Student(str(tiny_student_dir), engine="transformers").answer(
            None, pack, items, wrong
        )
    )

    student = Student(str(tiny_student_dir), engine="transformers", log=lambda _: None)
    model, tokenizer = student.at(None)
    rows = sft_rows(
        [{"question": "1 + 1 =", "answer": "2"}], lambda q: [{"role": "user", "content": q}]
    )
    trained, _ = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path)
    checkpoint = student.save(trained, tokenizer, tmp_path / "student")
    student.answer(checkpoint, pack, items, verifier)
    student.answer(checkpoint, pack, items, verifier)
    assert calls == [6, 6, 6]


def test_sampled_success_rates_are_shares_of_k_seeded_replies(tiny_student_dir):
    """k replies per item at a temperature, the same for the same seed; each item's rate is the
    share of its k replies the verifier scores right (here: any reply with a digit)."""
    from types import SimpleNamespace

    from failforward.agents.student import sample_replies

    pack = load_pack("arithmetic")
    items = pack.make_source().sample(6, seed=2)
    student = Student(str(tiny_student_dir), engine="transformers", log=lambda _: None)
    model, tokenizer = student.at(None)
    prompts = [[{"role": "user", "content": i.question}] for i in items]
    first = sample_replies(model, tokenizer, prompts, 6, k=4, temperature=1.5, seed=3)
    assert [len(r) for r in first] == [4] * 6
    assert sample_replies(model, tokenizer, prompts, 6, k=4, temperature=1.5, seed=3) == first
    assert sample_replies(model, tokenizer, prompts, 6, k=4, temperature=1.5, seed=4) != first
    assert any(len(set(replies)) > 1 for replies in first)  # sampled, not greedy

    def digits_count(extracted, item):  # a stand-in verifier: any number counts as right
        return SimpleNamespace(score=1.0)

    rates = student.success_rates(None, pack, items, digits_count, 4, 1.5, seed=3)
    assert all(r in (0.0, 0.25, 0.5, 0.75, 1.0) for r in rates)
    assert rates == student.success_rates(None, pack, items, digits_count, 4, 1.5, seed=3)


def test_an_adapter_answers_merged_with_the_same_replies_and_trains_on_unmerged(
    tiny_student_dir, tmp_path
):
    """Evaluation merges a LoRA checkpoint into a copy (faster, the same greedy replies); the
    adapter model training goes on from keeps its adapter, unmerged, and its weights."""
    import torch

    from failforward.agents.student import generate, student_messages

    student = Student(str(tiny_student_dir), engine="transformers", log=lambda _: None)
    model, tokenizer = student.at(None)
    rows = sft_rows(
        [{"question": f"{a} + 1 =", "answer": str(a + 1)} for a in range(8)],
        lambda q: [{"role": "user", "content": q}],
    )
    trained, _ = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path / "train")
    checkpoint = student.save(trained, tokenizer, tmp_path / "student")
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    merged, _ = student.answering(checkpoint)
    assert not hasattr(merged, "peft_config") and hasattr(trained, "peft_config")
    assert student.answering(checkpoint)[0] is merged  # made once per checkpoint
    assert student.at(checkpoint)[0] is trained
    after = trained.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    pack = load_pack("arithmetic")
    source = pack.make_source()
    items = source.sample(6, seed=3)
    prompts = [student_messages(pack, item.question) for item in items]
    unmerged = generate(trained, tokenizer, prompts, pack.spec.student.max_new_tokens)
    attempts = student.answer(checkpoint, pack, items, make_verifier("reasoning_gym", source))
    assert [a.output for a in attempts] == unmerged


@pytest.mark.parametrize("student", ["tiny", pytest.param("smollm2", marks=pytest.mark.slow)])
def test_greedy_replies_match_generate_and_finished_ones_leave_the_batch(
    student, tiny_student_dir, monkeypatch
):
    """The evaluation's greedy decoding gives ``model.generate``'s replies token for token, on
    prompts of different lengths (left padding) whose replies end at different steps, one
    stopped by the token limit; the batch shrinks as replies end."""
    import torch
    from transformers import DynamicCache

    from failforward.agents.student import decode_batch, prompt_batches, student_messages
    from failforward.training.student_model import load_student, resolve_student

    model, tokenizer = load_student(
        tiny_student_dir if student == "tiny" else resolve_student("smollm2")
    )
    pack = load_pack("arithmetic")
    questions = ["1 + 1 =", "What is 12 times 7? Answer with the number only.", "Say hi.", "3-2"]
    texts, _ = prompt_batches(tokenizer, [student_messages(pack, q) for q in questions], 8)
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(
            **batch, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    expected = [
        r.strip() for r in tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], True)
    ]
    sizes, select = [], DynamicCache.batch_select_indices
    monkeypatch.setattr(
        DynamicCache,
        "batch_select_indices",
        lambda self, keep: (sizes.append(len(keep)), select(self, keep))[1],
    )
    assert decode_batch(model, tokenizer, texts, 24) == expected
    if student == "smollm2":  # its replies end at different steps; the tiny one's need not
        assert sizes and sizes == sorted(sizes, reverse=True) and sizes[-1] < len(texts)
