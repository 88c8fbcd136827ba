"""Training settings for the student update, with CPU defaults that fit a 2-core machine."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class TrainConfig:
    """How the student is updated on a cycle's accepted examples (TRL SFT with LoRA)."""

    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the cycle's examples."})
    batch_size: int = field(default=8, metadata={"help": "Examples per optimizer step."})
    max_length: int | None = field(
        default=None,
        metadata={"help": "Token limit per example; None sets it from the longest example."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_targets: str = field(
        default="all-linear", metadata={"help": "Modules LoRA adapts ('all-linear' or a,b,c)."}
    )
    replay_mix: float = field(
        default=0.0,
        metadata={"help": "Earlier cycles' accepted examples replayed per new example (0: off)."},
    )
    replay_size: int = field(
        default=1000, metadata={"help": "Replay buffer: the most recent earlier examples kept."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for shuffling and LoRA initialisation."})

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.epochs <= 0 or self.batch_size <= 0:
            raise ValueError("epochs and batch_size must be > 0")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError(f"max_length must be >= 8 tokens, got {self.max_length}")
        if self.lora_r <= 0:
            raise ValueError(f"lora_r must be > 0, got {self.lora_r}")
        if self.replay_mix < 0 or self.replay_size < 0:
            raise ValueError("replay_mix and replay_size must be >= 0")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}
