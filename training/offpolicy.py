"""The off-policy student update: TRL SFT with LoRA on teacher-written, critic-accepted examples.

The examples come from the teacher (a different policy than the student being updated), which is
what makes the update off-policy. The adapter is saved after every cycle so evaluation and resume
load exactly what was trained.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.config import TrainConfig


@dataclass
class TrainResult:
    steps: int
    loss: float | None
    seconds: float
    max_length: int
    truncated: int
    adapter_dir: Path


def sft_rows(examples: list[dict], messages_for: Callable[[str], list[dict]]) -> list[dict]:
    """TRL prompt-completion rows in chat form: the student's prompt, then the verified answer."""
    return [
        {
            "prompt": messages_for(ex["question"]),
            "completion": [{"role": "assistant", "content": ex["answer"]}],
        }
        for ex in examples
    ]


def fit_max_length(tokenizer, rows: list[dict], config: TrainConfig) -> tuple[int, int]:
    """The token limit to train with and how many rows it would cut (never silently)."""
    lengths = [
        len(tokenizer.apply_chat_template(r["prompt"] + r["completion"], return_dict=False))
        for r in rows
    ]
    longest = max(lengths, default=8)
    limit = config.max_length or longest
    return limit, sum(n > limit for n in lengths)


def train_sft(
    model,
    tokenizer,
    rows: list[dict],
    config: TrainConfig,
    output_dir: Path,
    on_step: Callable[[int, int], None] | None = None,
):
    """Train ``model`` (LoRA is added on first use) on ``rows``; returns the model and a result."""
    import datasets
    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()
    # transformers 5 deprecates a name TRL still calls; the warning says nothing to our users.
    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )
    started = time.perf_counter()
    max_length, truncated = fit_max_length(tokenizer, rows, config)
    cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(output_dir / "trainer"),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        max_length=max_length,
        completion_only_loss=True,
        # A cycle is only a few steps: warm-up would spend the first ones at learning rate 0.
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        activation_checkpointing=False,  # tiny models: recomputation costs more than it saves
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    peft_config = None
    if not isinstance(model, PeftModel):
        targets = config.lora_targets
        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=targets if targets == "all-linear" else targets.split(","),
        )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_step_callback(TrainerCallback, on_step)] if on_step else None,
    )
    trainer.remove_callback(PrinterCallback)  # our own progress bar reports the steps
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    adapter_dir = output_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    result = TrainResult(
        steps=trainer.state.global_step,
        loss=losses[-1] if losses else None,
        seconds=time.perf_counter() - started,
        max_length=max_length,
        truncated=truncated,
        adapter_dir=adapter_dir,
    )
    return trainer.model, result


def _step_callback(base: type, on_step: Callable[[int, int], None]):
    """A transformers callback reporting (step, total) after every optimizer step."""

    class StepCallback(base):
        def on_step_end(self, args, state, control, **kwargs):
            on_step(state.global_step, state.max_steps)

    return StepCallback()
