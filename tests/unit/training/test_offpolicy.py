"""The TRL trainers on the tiny from-scratch student: every objective changes the weights it
should, checkpoints reload, and a few hundred steps teach a simple task."""

import contextlib
import random

import pytest
import torch

from failforward.agents.student import generate
from failforward.tools.records import Item, StudentAttempt
from failforward.training.config import TrainConfig
from failforward.training.offpolicy import (
    dpo_rows,
    fit_max_length,
    preference_pairs,
    save_checkpoint,
    sft_rows,
    train_dpo,
    train_grpo,
    train_sft,
)
from failforward.training.student_model import load_student


def _messages(question):
    return [{"role": "user", "content": question}]


def _rows(n=16):
    examples = [{"question": f"{a} + {a} =", "answer": str(2 * a)} for a in range(n)]
    return sft_rows(examples, _messages)


def _pairs(n=16):
    return [
        {"question": f"{a} + {a} =", "chosen": str(2 * a), "rejected": f"I think {a}"}
        for a in range(n)
    ]


def _sequence_logp(model, tokenizer, question, reply):
    """log p(reply | question) under ``model``, summed over the reply's tokens."""
    prompt = tokenizer.apply_chat_template(
        _messages(question), add_generation_prompt=True, return_dict=False
    )
    full = tokenizer.apply_chat_template(
        [*_messages(question), {"role": "assistant", "content": reply}], return_dict=False
    )
    ids = torch.tensor([full])
    model.eval()
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1]
    logps = torch.log_softmax(logits.float(), -1).gather(1, ids[0, 1:, None])[:, 0]
    return logps[len(prompt) - 1 : len(full) - 1].sum().item()


def test_sft_rows_are_prompt_completion_chats():
    row = _rows(1)[0]
    assert row["prompt"] == [{"role": "user", "content": "0 + 0 ="}]
    assert row["completion"] == [{"role": "assistant", "content": "0"}]


def test_max_length_from_data_and_truncation_counted(tiny_student_dir):
    _, tokenizer = load_student(tiny_student_dir)
    rows = _rows()
    limit, truncated, tokens = fit_max_length(tokenizer, rows, TrainConfig())
    assert truncated == 0 and limit > 20 and tokens > 16 * 20
    _, cut, _ = fit_max_length(tokenizer, rows, TrainConfig(max_length=limit - 1))
    assert cut >= 1
    # Preference rows count their longer side: the rejected reply here.
    pair_limit, _, _ = fit_max_length(tokenizer, dpo_rows(_pairs(), _messages), TrainConfig())
    assert pair_limit > limit


def test_lora_sft_changes_adapter_not_base(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained, result = train_sft(
        model, tokenizer, _rows(), TrainConfig(epochs=1, batch_size=4), tmp_path
    )
    assert result.phase == "sft" and result.steps == 4 and result.truncated == 0
    assert [e["step"] for e in result.log] == [1, 2, 3, 4]
    assert all("loss" in e and "learning_rate" in e and e["seconds"] > 0 for e in result.log)
    saved = save_checkpoint(trained, tokenizer, tmp_path / "student")
    assert (saved / "adapter_config.json").is_file() and not (saved / "config.json").exists()
    lora_b = {n: p for n, p in trained.named_parameters() if "lora_B" in n}
    assert lora_b and all(not torch.equal(p, torch.zeros_like(p)) for p in lora_b.values())
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(base_before[name], trained.get_base_model().get_parameter(name))


def test_training_continues_from_a_saved_adapter(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    first, _ = train_sft(model, tokenizer, _rows(8), TrainConfig(epochs=1), tmp_path / "c1")
    saved = save_checkpoint(first, tokenizer, tmp_path / "c1" / "student")
    reloaded, _ = load_student(tiny_student_dir, saved)
    before = {n: p.detach().clone() for n, p in reloaded.named_parameters() if "lora_B" in n}
    trained, _ = train_sft(reloaded, tokenizer, _rows(8), TrainConfig(epochs=1), tmp_path / "c2")
    after = dict(trained.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_full_finetune_trains_every_weight_and_saves_the_whole_model(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = TrainConfig(epochs=1, batch_size=4, full_finetune=True, learning_rate=1e-3)
    trained, _ = train_sft(model, tokenizer, _rows(), config, tmp_path)
    changed = [n for n, p in trained.named_parameters() if not torch.equal(before[n], p)]
    assert len(changed) == len(before)
    saved = save_checkpoint(trained, tokenizer, tmp_path / "student")
    reloaded, _ = load_student(tiny_student_dir, saved)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(reloaded.get_parameter(name), trained.get_parameter(name))


def test_preference_pairs_keep_only_failures_with_lineage():
    examples = [
        {"id": 7, "question": "2 + 2 =", "answer": "4", "source": "procedural", "cycle": 1},
        {"id": 8, "question": "3 + 3 =", "answer": "6", "source": "llm", "cycle": 1},
        {"id": 9, "question": "5 - 1 =", "answer": "4", "source": "llm", "cycle": 1},
    ]

    def attempt(ex, output, score):
        item = Item(question=ex["question"], answer=ex["answer"])
        return StudentAttempt(item=item, output=output, extracted=output[-1:], score=score)

    attempts = [
        attempt(examples[0], "5", 0.0),
        attempt(examples[1], "6", 1.0),  # right: no pair
        attempt(examples[2], " 4 ", 0.0),  # same text as the answer: no pair
    ]
    pairs = preference_pairs(examples, attempts)
    assert pairs == [
        {
            "example_id": 7,
            "question": "2 + 2 =",
            "chosen": "4",
            "rejected": "5",
            "lineage": {
                "chosen": {"source": "procedural", "example_cycle": 1},
                "rejected": {"source": "student", "extracted": "5"},
            },
        }
    ]


@pytest.mark.parametrize("full", [False, True], ids=["lora", "full"])
def test_dpo_moves_the_student_toward_chosen(tiny_student_dir, tmp_path, full):
    model, tokenizer = load_student(tiny_student_dir)
    pairs = _pairs()

    def chosen(m):
        return sum(_sequence_logp(m, tokenizer, p["question"], p["chosen"]) for p in pairs)

    def margin(m):
        return chosen(m) - sum(
            _sequence_logp(m, tokenizer, p["question"], p["rejected"]) for p in pairs
        )

    before_margin, before_chosen = margin(model), chosen(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = TrainConfig(epochs=2, batch_size=4, full_finetune=full, dpo_learning_rate=1e-3)
    trained, result = train_dpo(model, tokenizer, dpo_rows(pairs, _messages), config, tmp_path)
    assert result.phase == "dpo" and result.steps == 8 and result.loss is not None
    assert any("rewards/margins" in e for e in result.log)
    if full:
        changed = [n for n, p in trained.named_parameters() if not torch.equal(before[n], p)]
        assert changed
    else:
        assert list(trained.peft_config) == ["default"]  # TRL's reference copy is gone
        assert any(
            not torch.equal(p, torch.zeros_like(p))
            for n, p in trained.named_parameters()
            if "lora_B" in n
        )
    assert margin(trained) > before_margin + 1.0
    assert chosen(trained) > before_chosen  # the NLL term (--dpo-nll 1) keeps chosen likely


def test_dpo_after_sft_on_the_same_adapter(tiny_student_dir, tmp_path):
    """sft+dpo: DPO's reference is the post-SFT adapter, and a second cycle works again."""
    model, tokenizer = load_student(tiny_student_dir)
    config = TrainConfig(epochs=1, batch_size=8)
    for cycle in (1, 2):
        model, _ = train_sft(model, tokenizer, _rows(8), config, tmp_path / str(cycle))
        after_sft = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        model, result = train_dpo(
            model, tokenizer, dpo_rows(_pairs(8), _messages), config, tmp_path / str(cycle)
        )
        assert result.steps == 1 and list(model.peft_config) == ["default"]
        # The first DPO step starts at the reference (the post-SFT adapter): zero implicit rewards.
        first = result.log[0]
        assert first["rewards/chosen"] == pytest.approx(0, abs=1e-4)
        assert first["rewards/rejected"] == pytest.approx(0, abs=1e-4)
        assert any(
            not torch.equal(after_sft[n], p) for n, p in model.named_parameters() if n in after_sft
        )


def test_grpo_updates_from_a_verifier_style_reward(tiny_student_dir, tmp_path):
    model, tokenizer = load_student(tiny_student_dir)
    rows = [
        {"prompt": _messages(f"{a} + {a} ="), "question": f"{a} + {a} =", "answer": str(2 * a)}
        for a in range(8)
    ]
    seen = []

    def digits_reward(text, row):
        seen.append(row["answer"])
        return sum(c.isdigit() for c in text) / max(1, len(text))

    model = _lora(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    config = TrainConfig(objective="grpo", epochs=1, batch_size=8, grpo_iterations=2)
    trained, result = train_grpo(model, tokenizer, rows, digits_reward, config, tmp_path, 6)
    assert result.phase == "grpo" and result.steps > 0
    assert set(seen) <= {r["answer"] for r in rows} and seen
    assert any("reward" in e for e in result.log)
    assert any(not torch.equal(before[n], p) for n, p in trained.named_parameters() if n in before)


def _norm(tensors) -> float:
    """The Euclidean norm of several tensors taken as one vector."""
    return float(torch.linalg.vector_norm(torch.cat([t.flatten() for t in tensors])))


def _lora(model):
    from failforward.training.offpolicy import prepare_student

    return prepare_student(model, TrainConfig())


@pytest.mark.slow  # 60 s; test_lora_sft_changes_adapter_not_base trains in the fast suite
def test_a_few_hundred_steps_teach_the_tiny_student_a_procedural_task(tiny_student_dir, tmp_path):
    """Last digit of a number: the untrained student gets none of the held-out items; 300 steps of
    SFT get most of them (measured 100% of 120)."""
    rng = random.Random(0)
    numbers = rng.sample(range(100, 100_000), 600)
    data = [{"question": f"Last digit of {n}?", "answer": str(n % 10)} for n in numbers]
    train, held_out = data[:480], data[480:]
    model, tokenizer = load_student(tiny_student_dir)

    def accuracy(m):
        replies = generate(m, tokenizer, [_messages(d["question"]) for d in held_out], 4, 64)
        return sum(r == d["answer"] for r, d in zip(replies, held_out, strict=True)) / len(held_out)

    untrained = accuracy(model)
    config = TrainConfig(objective="sft", epochs=10, batch_size=16, full_finetune=True)
    trained, result = train_sft(model, tokenizer, sft_rows(train, _messages), config, tmp_path)
    assert result.steps == 300
    assert accuracy(trained) >= untrained + 0.6


@pytest.mark.parametrize(
    "bad",
    [
        {"learning_rate": 0},
        {"batch_size": -1},
        {"max_length": 4},
        {"objective": "ppo"},
        {"grpo_generations": 1},
        {"report_to": "wandb"},
    ],
)
def test_config_checks_name_the_field(bad):
    (name,) = bad
    with pytest.raises(ValueError, match=f"^{name} must be"):
        TrainConfig(**bad)


def test_a_dashboard_without_its_package_is_refused_up_front(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install tensorboard"):
        TrainConfig(report_to="tensorboard")


@pytest.mark.parametrize("train", [train_sft, train_dpo])
def test_the_loss_projects_only_labelled_positions_with_the_same_loss(
    train, tiny_student_dir, tmp_path, monkeypatch
):
    """TRL's fused loss gets the labelled positions alone (not every position of the padded
    batch, as TRL does off CUDA), and the loss curve is the one the full projection gives."""
    import trl.trainer.utils as trl_utils

    import failforward.training.offpolicy as offpolicy

    rows = _rows() if train is train_sft else dpo_rows(_pairs(), _messages)
    real_apply, seen = trl_utils._ChunkedLogProbFunction.apply, []

    def counting(hidden, *args):
        seen.append(hidden.shape[0])
        return real_apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    config = TrainConfig(epochs=1, batch_size=4, seed=3)
    losses, scored_rows = {}, {}
    for scored in ("labelled", "every"):
        if scored == "every":
            monkeypatch.setattr(offpolicy, "completion_tokens_scored", contextlib.nullcontext)
        seen.clear()
        model, tokenizer = load_student(tiny_student_dir)
        _, result = train(model, tokenizer, rows, config, tmp_path / scored)
        losses[scored], scored_rows[scored] = [e["loss"] for e in result.log], sum(seen)
    assert scored_rows["labelled"] < scored_rows["every"] / 2  # prompts and padding dominate
    assert losses["labelled"] == pytest.approx(losses["every"], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("phase", ["sft", "dpo"])
def test_a_token_budget_cuts_steps_into_passes_that_train_the_same(
    tiny_student_dir, tmp_path, phase
):
    """A step of 8 rows in 4 passes of 2 (gradient accumulation, a budget of two rows' tokens)
    trains the weights one pass of 8 does: the same rows per step, the loss normalized over the
    whole step. DPO without its NLL term (``dpo_nll`` 0): TRL averages that term's tokens per
    pass, so with it the cut step weights it by pass."""
    rows = _rows(16) if phase == "sft" else dpo_rows(_pairs(16), _messages)
    train = train_sft if phase == "sft" else train_dpo
    tokenizer = load_student(tiny_student_dir)[1]
    longest = fit_max_length(tokenizer, rows, TrainConfig())[0]
    row_tokens = longest * (2 if phase == "dpo" else 1)  # a pair's chosen and rejected
    trained = []
    for budget in (0, 2 * row_tokens):
        config = TrainConfig(
            objective=phase, epochs=1, batch_size=8, micro_batch_tokens=budget,
            dpo_learning_rate=1e-3, dpo_nll=0.0,
        )  # fmt: skip
        model, result = train(*load_student(tiny_student_dir), rows, config, tmp_path / str(budget))
        lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        trained.append((result, lora))
    (whole, after_whole), (cut, after_cut) = trained
    assert (whole.micro_batch, whole.accumulation, whole.steps) == (8, 1, 2)
    assert (cut.micro_batch, cut.accumulation, cut.steps) == (2, 4, 2)
    # Whole tensors, not single weights: Adam moves a weight whose gradient is near zero by
    # about the learning rate either way, so one weight can differ by a few percent of the
    # largest step while the update as a whole agrees to 1e-4 or better.
    moved = _norm(p for n, p in after_whole.items() if "lora_B" in n)  # lora_B starts at 0
    apart = _norm(after_whole[n] - after_cut[n] for n in after_whole)
    assert moved > 1e-2 and apart < 1e-3 * moved
