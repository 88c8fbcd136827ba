"""The off-policy student update with TRL: SFT, DPO, SFT then DPO, or (experimental) GRPO.

SFT learns from teacher-written, critic-accepted examples; DPO from pairs whose chosen side is a
verified answer and whose rejected side is the student's own earlier failing output. Both are data
from another policy than the one being updated: off-policy. GRPO is the on-policy exception,
kept experimental: it samples the student and rewards it with the pack's verifier.

Every trainer works on the same model object (LoRA-wrapped once, or trained whole), and
:func:`save_checkpoint` writes what evaluation and ``--resume`` load.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from failforward.training.config import TrainConfig

OnStep = Callable[[int, int], None]


@dataclass
class PhaseResult:
    """One trainer's run in a cycle: what it saw, how long it took, and its step log."""

    phase: str  # sft | dpo | grpo
    rows: int
    steps: int
    loss: float | None
    seconds: float
    tokens: int
    max_length: int
    truncated: int
    log: list[dict] = field(default_factory=list)  # one entry per logged step
    micro_batch: int = 0  # rows per forward pass (the step's batch cut by the token budget)
    accumulation: int = 1  # forward passes per optimizer step
    processes: int = 1  # DDP processes, each training micro_batch x accumulation rows a step
    process_peak_mb: list[float] = field(default_factory=list)  # each DDP process's peak RSS
    process_saves: list[list[str]] = field(default_factory=list)  # what each process wrote


# -- rows ------------------------------------------------------------------------------------
def sft_rows(
    examples: list[dict],
    messages_for: Callable[[str], list[dict]],
    completion_for: Callable[[dict], str] | None = None,
) -> list[dict]:
    """TRL prompt-completion rows in chat form: the student's prompt, then the reply to learn
    (``completion_for(example)``, e.g. the pack's completion template; default the answer)."""
    return [
        {
            "prompt": messages_for(ex["question"]),
            "completion": [
                {
                    "role": "assistant",
                    "content": completion_for(ex) if completion_for else ex["answer"],
                }
            ],
        }
        for ex in examples
    ]


def preference_pairs(
    examples: list[dict], attempts: list, completion_for: Callable[[dict], str] | None = None
) -> list[dict]:
    """DPO pairs from accepted examples and the student's attempts at the same questions.

    chosen = the reply the student should give (``completion_for(example)``; default the
    verified answer); rejected = the student's failing output. Items the student already gets
    right, or whose output equals the chosen text, make no pair.

    Args:
        examples: accepted example rows (store dicts with id, question, answer, source, cycle).
        attempts: the student's ``StudentAttempt`` per example, in the same order.
    """
    pairs = []
    for ex, attempt in zip(examples, attempts, strict=True):
        chosen = (completion_for(ex) if completion_for else ex["answer"]).strip()
        rejected = attempt.output.strip()
        if attempt.correct or chosen == rejected:
            continue
        pairs.append(
            {
                "example_id": ex["id"],
                "question": ex["question"],
                "chosen": chosen,
                "rejected": rejected,
                "lineage": {
                    "chosen": {"source": ex["source"], "example_cycle": ex["cycle"]},
                    "rejected": {"source": "student", "extracted": attempt.extracted},
                },
            }
        )
    return pairs


def dpo_rows(pairs: list[dict], messages_for: Callable[[str], list[dict]]) -> list[dict]:
    """TRL conversational preference rows."""
    return [
        {
            "prompt": messages_for(p["question"]),
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in pairs
    ]


def fit_max_length(tokenizer, rows: list[dict], config: TrainConfig) -> tuple[int, int, int]:
    """The token limit to train with, how many rows it would cut (never silently), and the
    rows' total tokens. Preference rows count their longer side."""
    lengths = []
    for r in rows:
        sides = [r["completion"]] if "completion" in r else [r["chosen"], r["rejected"]]
        lengths.append(
            max(
                len(tokenizer.apply_chat_template(r["prompt"] + side, return_dict=False))
                for side in sides
            )
        )
    longest = max(lengths, default=8)
    limit = config.max_length or longest
    return limit, sum(n > limit for n in lengths), sum(min(n, limit) for n in lengths)


# -- the model -------------------------------------------------------------------------------
def prepare_student(model, config: TrainConfig):
    """The model the trainers update: LoRA-wrapped once (a loaded adapter stays), or whole."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if config.full_finetune:
        if isinstance(model, PeftModel):
            raise ValueError("full_finetune: the student was trained with LoRA; keep LoRA")
        model.requires_grad_(True)
        return model
    if isinstance(model, PeftModel):
        return model
    import torch

    torch.manual_seed(config.seed)  # the adapter's initial weights follow the run's seed
    targets = config.lora_targets
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
        target_modules=targets if targets == "all-linear" else targets.split(","),
    )
    return get_peft_model(model, lora)


def save_checkpoint(model, tokenizer, target: Path) -> Path:
    """Write the adapter (LoRA) or the whole model and tokenizer into ``target`` atomically:
    a crash mid-save leaves the previous checkpoint, never half of this one."""
    import shutil

    from peft import PeftModel

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if isinstance(model, PeftModel):
        model.save_pretrained(partial, selected_adapters=["default"])
    else:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


# -- trainers --------------------------------------------------------------------------------
def _quiet() -> None:
    import datasets

    datasets.disable_progress_bars()
    # transformers 5 deprecates a name TRL still calls; the warning says nothing to our users.
    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )


@contextlib.contextmanager
def completion_tokens_scored() -> Iterator[None]:
    """The trainers' losses score only the positions that carry a label, on every device.

    TRL's fused loss projects every position of the batch onto the vocabulary unless the device
    runs Triton (CUDA, XPU); elsewhere it keeps the shapes fixed so that Neuron need not
    recompile, and masks the prompt and padding afterwards. On CPU that is most of a step: a
    completion is a few tokens of a 40-70-token row, and the projection onto SmolLM2's 49k-word
    vocabulary was 43% of the step's time. The loss and its gradient are the same (the masked
    positions add zero), to float rounding (``benchmarks/sft_compact.py`` has the ratio and the
    loss difference). Where TRL no longer has the switch, nothing changes.
    """
    from trl.trainer import utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        yield
        return
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original


def micro_batches(batch: int, row_tokens: int, budget: int) -> tuple[int, int]:
    """``(rows per forward pass, passes per step)``: a step of ``batch`` rows of up to
    ``row_tokens`` tokens each, cut into equal micro-batches of at most ``budget`` tokens (at
    least one row each), so that the two multiply to ``batch`` and the optimizer step sees the
    same examples. ``budget`` 0: the whole step in one pass.

    >>> micro_batches(8, 590, 4096)
    (4, 2)
    >>> micro_batches(8, 60, 4096)
    (8, 1)
    >>> micro_batches(6, 1000, 2500)
    (2, 3)
    """
    if not budget or batch * row_tokens <= budget:
        return batch, 1
    fits = max(1, budget // max(row_tokens, 1))
    size = max(d for d in range(1, min(fits, batch) + 1) if batch % d == 0)
    return size, batch // size


def _common_args(config: TrainConfig, output_dir: Path, row_tokens: int = 0) -> dict:
    """The trainers' shared arguments; ``row_tokens`` (a row's most tokens, both sides of a
    preference pair together) sizes the micro-batches within ``micro_batch_tokens``."""
    import torch

    cuda = torch.cuda.is_available()
    per_pass, passes = micro_batches(
        config.resolved_batch_size(cuda), row_tokens, config.micro_batch_tokens
    )
    return dict(
        output_dir=str(output_dir / "trainer"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=per_pass,
        gradient_accumulation_steps=passes,
        # A cycle is only a few steps: warm-up would spend the first ones at learning rate 0.
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to=config.report_to,
        seed=config.seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        activation_checkpointing=False,  # small models: recomputation costs more than it saves
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def _train(
    trainer,
    phase: str,
    rows: int,
    on_step: OnStep | None,
    max_length: int = 0,
    truncated: int = 0,
    tokens: int | None = None,
) -> PhaseResult:
    """Train with a step log (every logged value, seconds since start) and progress calls.

    ``tokens``: the tokens trained on; None takes the trainer's own count (``num_tokens``).
    """
    from transformers import PrinterCallback, TrainerCallback

    log: list[dict] = []
    started = time.perf_counter()

    class Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "train_runtime" not in logs:
                log.append(
                    {
                        "step": state.global_step,
                        **{k: v for k, v in logs.items() if isinstance(v, int | float)},
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                )

        def on_step_end(self, args, state, control, **kwargs):
            if on_step:
                on_step(state.global_step, state.max_steps)

    trainer.remove_callback(PrinterCallback)  # our own progress bar reports the steps
    trainer.add_callback(Recorder())
    with completion_tokens_scored():
        trainer.train()
    losses = [e["loss"] for e in log if "loss" in e]
    if tokens is None:
        tokens = int(max((e.get("num_tokens", 0) for e in log), default=0))
    return PhaseResult(
        phase=phase,
        rows=rows,
        steps=trainer.state.global_step,
        loss=losses[-1] if losses else None,
        seconds=time.perf_counter() - started,
        tokens=tokens,
        max_length=max_length,
        truncated=truncated,
        log=log,
        micro_batch=trainer.args.per_device_train_batch_size,
        accumulation=trainer.args.gradient_accumulation_steps,
    )


def train_sft(
    model, tokenizer, rows: list[dict], config: TrainConfig, output_dir: Path, on_step=None
):
    """SFT on prompt-completion ``rows`` (loss on the completion only). Returns the trained
    model (LoRA-wrapped unless ``full_finetune``) and a :class:`PhaseResult`."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    _quiet()
    model = prepare_student(model, config)
    max_length, truncated, tokens = fit_max_length(tokenizer, rows, config)
    args = SFTConfig(
        **_common_args(config, output_dir, max_length),
        learning_rate=config.learning_rate,
        max_length=max_length,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    epoch_tokens = round(tokens * config.epochs)
    result = _train(trainer, "sft", len(rows), on_step, max_length, truncated, epoch_tokens)
    return trainer.model, result


def train_dpo(
    model, tokenizer, rows: list[dict], config: TrainConfig, output_dir: Path, on_step=None
):
    """DPO on conversational preference ``rows``. The reference is the student as it enters
    this phase: a frozen copy of the LoRA adapter (TRL's ``ref`` adapter, removed afterwards)
    or, when training whole, an explicit frozen copy of the model (the packaged student cannot
    be reloaded by name)."""
    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer

    _quiet()
    model = prepare_student(model, config)
    reference = None
    if not isinstance(model, PeftModel):
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    max_length, truncated, tokens = fit_max_length(tokenizer, rows, config)
    args = DPOConfig(
        **_common_args(config, output_dir, 2 * max_length),  # chosen and rejected
        learning_rate=config.dpo_learning_rate,
        beta=config.dpo_beta,
        max_length=max_length,
        **(
            {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, config.dpo_nll]}
            if config.dpo_nll
            else {}
        ),
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    epoch_tokens = round(tokens * config.epochs)
    result = _train(trainer, "dpo", len(rows), on_step, max_length, truncated, epoch_tokens)
    trained = trainer.model
    if isinstance(trained, PeftModel) and "ref" in trained.peft_config:
        trained.delete_adapter("ref")
        trained.set_adapter("default")
    return trained, result


def train_grpo(
    model,
    tokenizer,
    rows: list[dict],
    reward: Callable[[str, dict], float],
    config: TrainConfig,
    output_dir: Path,
    max_new_tokens: int,
    on_step=None,
):
    """Experimental: GRPO on ``rows`` ({"prompt": messages, "answer": str, "question": str}),
    rewarded by ``reward(completion_text, row)``. Each generation batch is reused for
    ``grpo_iterations`` updates, with TRL's clipped importance-sampling ratio at the configured
    level (token or sequence)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    _quiet()
    model = prepare_student(model, config)
    common = _common_args(config, output_dir)
    n = config.grpo_generations
    # A step trains on whole groups: round the batch up to a multiple of the group size.
    common["per_device_train_batch_size"] = -(-common["per_device_train_batch_size"] // n) * n
    args = GRPOConfig(
        **common,
        learning_rate=config.learning_rate,
        num_generations=n,
        num_iterations=config.grpo_iterations,
        importance_sampling_level=config.grpo_importance,
        # Sequence-level ratios with the per-sequence loss are GSPO; token level keeps TRL's loss.
        **({"loss_type": "grpo"} if config.grpo_importance == "sequence" else {}),
        max_completion_length=max_new_tokens,
        temperature=1.0,
        beta=0.0,
        log_completions=False,
    )

    def verifier_reward(prompts, completions, **columns):
        scores = []
        for i, completion in enumerate(completions):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            row = {k: v[i] for k, v in columns.items() if isinstance(v, list)}
            scores.append(float(reward(text, row)))
        return scores

    verifier_reward.__name__ = "verifier"
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[verifier_reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    return trainer.model, _train(trainer, "grpo", len(rows), on_step)
