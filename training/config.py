"""Training settings for the student update, with CPU defaults that fit a 2-core machine."""

from __future__ import annotations

import importlib.util
import typing
from dataclasses import dataclass
from typing import Literal

from failforward.tools.options import OptionError, check_choices, option

Objective = Literal["sft", "dpo", "sft+dpo", "grpo"]
OBJECTIVES = typing.get_args(Objective)


@dataclass
class TrainConfig:
    """How the student is updated on a cycle's accepted examples (TRL, LoRA by default)."""

    objective: Objective = option(
        "sft+dpo",
        "sft: SFT on accepted examples; dpo: DPO on (verified answer, student's failing answer) "
        "pairs; sft+dpo: both, in that order; grpo: experimental, verifier-rewarded GRPO.",
    )
    learning_rate: float = option(1e-3, "Peak AdamW learning rate (SFT and GRPO).")
    dpo_learning_rate: float = option(2e-4, "Learning rate of the DPO phase.")
    dpo_beta: float = option(0.1, "DPO beta: how far the student may move from its reference.")
    dpo_nll: float = option(
        1.0,
        "Weight of an NLL term on the chosen answer added to the DPO loss (RPO-style: the chosen "
        "answers stay likely while the rejected ones are pushed down); 0: plain DPO.",
    )
    epochs: float = option(2.0, "Passes over the cycle's examples (each phase).")
    batch_size: int = option(0, "Examples per optimizer step (0: 8 on CPU, 32 on CUDA).")
    max_length: int = option(0, "Token limit per example (0: from the longest example).")
    micro_batch_tokens: int = option(
        4096,
        "Token budget of one forward pass in training: a step's examples are cut into equal "
        "micro-batches of at most this many tokens (padded to the longest example) with "
        "gradient accumulation, so a step sees the same examples in bounded memory (0: the "
        "whole step at once).",
    )
    processes: int = option(
        1,
        "Training processes: above 1, each SFT/DPO phase runs as DDP (torchrun starts them; "
        "gloo on CPU, NCCL on GPUs, one per GPU), each training an equal share of every step.",
    )
    launcher: Literal["torchrun", "ray"] = option(
        "torchrun",
        "How --train-processes start: torchrun (processes on this machine) or ray (Ray Train "
        "workers on the run's Ray cluster, on its GPUs when it has one per process; needs "
        "--executor ray).",
    )
    full_finetune: bool = option(False, "Train every weight and save full checkpoints (no LoRA).")
    lora_r: int = option(16, "LoRA rank.")
    lora_alpha: int = option(32, "LoRA scaling numerator.")
    lora_targets: str = option("all-linear", "Modules LoRA adapts ('all-linear' or a,b,c).")
    replay_mix: float = option(
        0.0, "Earlier cycles' accepted examples replayed per new example (0: off)."
    )
    replay_size: int = option(1000, "Replay buffer: the most recent earlier examples kept.")
    anchor_share: float = option(
        0.0,
        "Self-distillation anchors per new SFT example: items the student already answers "
        "right, trained on its own verified reply, so a few teacher examples in another format "
        "do not erase what works (0: off, the default: measured, they did not help; see the "
        "README).",
    )
    grpo_generations: int = option(4, "GRPO: completions sampled per prompt.")
    grpo_iterations: int = option(2, "GRPO: updates per generation batch (importance-sampled).")
    grpo_importance: Literal["token", "sequence"] = option(
        "sequence", "GRPO importance-sampling ratio level: token|sequence."
    )
    report_to: Literal["none", "tensorboard", "mlflow"] = option(
        "none", "Training dashboards: none, tensorboard or mlflow."
    )
    seed: int = option(0, "Seed for shuffling and LoRA initialisation.")

    def __post_init__(self):
        """Each error names the field it is about (the command line shows the flag)."""
        check_choices(self)
        checks = [
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("dpo_learning_rate", self.dpo_learning_rate > 0, "> 0"),
            ("dpo_beta", self.dpo_beta > 0, "> 0"),
            ("dpo_nll", self.dpo_nll >= 0, ">= 0"),
            ("epochs", self.epochs > 0, "> 0"),
            ("batch_size", self.batch_size >= 0, ">= 0 (0: auto)"),
            ("max_length", self.max_length == 0 or self.max_length >= 8, "0 (auto) or >= 8"),
            ("micro_batch_tokens", self.micro_batch_tokens >= 0, ">= 0 (0: off)"),
            ("processes", self.processes >= 1, ">= 1"),
            (
                "processes",
                self.processes == 1 or "grpo" not in self.phases,
                "1 with grpo (GRPO trains in one process)",
            ),
            (
                "launcher",
                self.launcher == "torchrun" or "grpo" not in self.phases,
                "torchrun with grpo (GRPO trains in the run's process)",
            ),
            ("lora_r", self.lora_r > 0, "> 0"),
            ("lora_alpha", self.lora_alpha > 0, "> 0"),
            ("replay_mix", self.replay_mix >= 0, ">= 0"),
            ("replay_size", self.replay_size >= 0, ">= 0"),
            ("anchor_share", self.anchor_share >= 0, ">= 0"),
            ("grpo_generations", self.grpo_generations >= 2, ">= 2"),
            ("grpo_iterations", self.grpo_iterations >= 1, ">= 1"),
        ]
        for name, ok, wanted in checks:
            if not ok:
                raise OptionError(name, f"{name} must be {wanted}, got {getattr(self, name)!r}")
        if self.report_to != "none" and importlib.util.find_spec(self.report_to) is None:
            raise OptionError(
                "report_to",
                f"report_to {self.report_to} needs its package: pip install {self.report_to}",
            )

    @property
    def phases(self) -> list[str]:
        """The trainers a cycle runs, in order."""
        return self.objective.split("+")

    def resolved_batch_size(self, cuda: bool) -> int:
        return self.batch_size or (32 if cuda else 8)
