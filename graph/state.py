"""The loop's typed state (checkpointed) and its run context (fixed settings and live resources).

State stays small and JSON-plain: bulky data (eval sets, failures, examples) lives in the run
store and the state holds references, so checkpoints stay cheap and resumes exact.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, TypedDict

from failforward.agents.planner import PlanRule
from failforward.training.config import TrainConfig

_TRAIN_HELP = TrainConfig.help()
_PLAN_HELP = PlanRule.help()


class LoopState(TypedDict, total=False):
    cycle: int  # training cycles completed so far
    checkpoint: str | None  # the student's latest checkpoint: LoRA adapter or whole model
    adapter_dir: str | None  # the same, as runs started before full fine-tuning stored it
    plan: dict[str, Any] | None  # GenerationPlan of the cycle in progress
    history: Annotated[list[dict[str, Any]], operator.add]  # one row per evaluation
    nodes_run: Annotated[list[str], operator.add]  # node names, in order, for audits and tests
    stop_reason: str | None


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


# RunSettings names for TrainConfig fields whose own name would be ambiguous on the command line.
_TRAIN_RENAMED = {"batch_size": "train_batch_size"}


def _train(name: str) -> Any:
    return _opt(getattr(TrainConfig, name), _TRAIN_HELP[name], train=name)


class StoredSettings:
    """For a settings dataclass stored with its run: to and from a plain dict (keys a newer or
    older version does not know are dropped)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunSettings(StoredSettings):
    """Everything that fixes a run. Stored with the run, so ``--resume`` needs only the id.

    The CLI's ``run`` options are generated from these fields.
    """

    pack: str = _opt("arithmetic", "Prompt pack: a name under prompts/ or a folder with pack.yaml.")
    student: str = _opt("smollm2", "Student model: smollm2, tiny, or a saved model folder.")
    llm: str = _opt(
        "none",
        "Role endpoints: none (tool-only), local (transformers serve), env (OPENAI_BASE_URL), "
        "a URL for every role, or role=URL,...",
    )
    llm_model: str = _opt("", "Model name for --llm <url> (default: the OPENAI_MODEL env var).")
    llm_max_tokens: int = _opt(512, "Reply token limit for every LLM call.")
    endpoints: str = _opt(
        "", "YAML file of per-role endpoint settings (overrides --llm for the roles it names)."
    )
    cycles: int = _opt(3, "Training cycles to run.")
    budget: int = _opt(96, "Candidate examples the teacher writes per cycle.")
    plan: str = _opt("targeted", "targeted (the analyst's plan) or uniform (the baseline).")
    plan_weighting: str = _opt(PlanRule.weighting, _PLAN_HELP["weighting"])
    explore: float = _opt(PlanRule.explore, _PLAN_HELP["explore"])
    seed: int = _opt(0, "Seed for generation, clustering and training.")
    target_accuracy: float = _opt(1.0, "Stop once test accuracy reaches this.")
    patience: int = _opt(2, "Stop after this many cycles without a test-accuracy gain.")
    eval_batch_size: int = _opt(32, "Items per batch when the student answers.")
    eval_engine: str = _opt(
        "auto",
        "How the student answers: auto (vLLM on CUDA with the gpu extra, else transformers), "
        "transformers, or vllm.",
    )
    runs_dir: str = _opt("runs", "Folder that holds one sub-folder per run.")
    # Training options: defaults, help and checks all come from TrainConfig.
    objective: str = _train("objective")
    learning_rate: float = _train("learning_rate")
    dpo_learning_rate: float = _train("dpo_learning_rate")
    dpo_beta: float = _train("dpo_beta")
    dpo_nll: float = _train("dpo_nll")
    epochs: float = _train("epochs")
    train_batch_size: int = _train("batch_size")
    max_length: int = _train("max_length")
    full_finetune: bool = _train("full_finetune")
    lora_r: int = _train("lora_r")
    lora_alpha: int = _train("lora_alpha")
    lora_targets: str = _train("lora_targets")
    replay_mix: float = _train("replay_mix")
    replay_size: int = _train("replay_size")
    grpo_generations: int = _train("grpo_generations")
    grpo_iterations: int = _train("grpo_iterations")
    grpo_importance: str = _train("grpo_importance")
    report_to: str = _train("report_to")

    def __post_init__(self):
        if self.cycles < 0 or self.budget <= 0:
            raise ValueError("--cycles must be >= 0 and --budget > 0")
        if self.patience < 1 or self.eval_batch_size < 1 or self.llm_max_tokens < 1:
            raise ValueError("--patience, --eval-batch-size and --llm-max-tokens must be >= 1")
        self.train_config(cycle=0)  # raises on a bad training option
        if self.eval_engine not in ("auto", "transformers", "vllm"):
            raise ValueError(
                f"--eval-engine must be auto, transformers or vllm, got {self.eval_engine!r}"
            )
        if self.plan not in ("targeted", "uniform"):
            raise ValueError(f"--plan must be targeted or uniform, got {self.plan!r}")
        self.plan_rule()  # raises on a bad planning option
        if not 0.0 < self.target_accuracy <= 1.0:
            raise ValueError(f"--target-accuracy must be in (0, 1], got {self.target_accuracy}")

    def train_config(self, cycle: int) -> TrainConfig:
        """The training settings for one cycle (a fresh seed per cycle)."""
        options = {
            f.metadata["train"]: getattr(self, f.name)
            for f in fields(self)
            if "train" in f.metadata
        }
        try:
            return TrainConfig(**options, seed=self.seed + cycle)
        except ValueError as err:
            name = str(err).split()[0]
            flag = _TRAIN_RENAMED.get(name, name).replace("_", "-")
            raise ValueError(f"--{flag}: {err}") from err

    def plan_rule(self) -> PlanRule:
        try:
            return PlanRule(weighting=self.plan_weighting, explore=self.explore)
        except ValueError as err:
            raise ValueError(f"--plan-{err}".replace("--plan-explore", "--explore")) from err


@dataclass
class RunContext:
    """What every node needs and nothing checkpoints: settings, the pack, the store, resources.

    Models are loaded lazily and kept here, so the loop loads each once per process.
    """

    run_id: str
    run_dir: Path
    settings: RunSettings
    pack: Any  # tools.packs.Pack
    store: Any  # tools.store.RunStore
    clients: dict[str, Any] = field(default_factory=dict)  # role -> agents.endpoints.ChatClient
    ui: Any = None  # app.progress.Progress-like reporter
    cache: dict[str, Any] = field(default_factory=dict)
