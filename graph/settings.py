"""What fixes a run and an augmentation: the settings stored with each, and the options of
``failforward run``, ``compare`` and ``augment`` (generated from these fields and the settings
they nest; see :mod:`failforward.tools.options`). Light to import: ``--help`` reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from failforward.agents.endpoint_settings import EndpointSettings, endpoint_options
from failforward.agents.planner import PlanRule
from failforward.tools.augment.assemble import Mode
from failforward.tools.augment.corpus import DEFAULT_CORPUS
from failforward.tools.options import StoredSettings, check_choices, nested, option
from failforward.training.config import TrainConfig

# PlanRule's fields as options: --plan (its mode), --plan-weighting, --explore, --plan-<knob>.
_PLAN_OPTIONS = {"mode": "plan", "explore": "explore"} | {
    name: f"plan_{name}"
    for name in ("weighting", "ready_at", "hopeless_below", "hopeless_weight", "shrink_bonus")
    + ("flat_after", "flat_decay", "capacity", "mastered_at", "replay", "prior", "samples")
    + ("temperature",)
}


@dataclass
class RunSettings(StoredSettings):
    """Everything that fixes a run. Stored with the run (flat: one key per option), so
    ``--resume`` needs only the id.

    The command line's ``run`` options are generated from these fields and the nested ones:
    ``endpoints`` (EndpointSettings), ``plan`` (PlanRule) and ``train`` (TrainConfig, whose seed
    is ``seed`` + the cycle, or ``seed`` alone with ``--train-from base``).
    """

    pack: str = option(
        "arithmetic", "Prompt pack: a name under prompts/ or a folder with pack.yaml."
    )
    student: str = option(
        "smollm2",
        "Student model: smollm2, tiny, a saved model folder, a LoRA checkpoint or an earlier "
        "run's folder (the student it ended with: a warmed student).",
    )
    endpoints: EndpointSettings = endpoint_options()
    cycles: int = option(3, "Training cycles to run.")
    budget: int = option(
        96,
        "Examples per cycle: what the teacher is asked for and the most the critic keeps.",
    )
    overdraw: int = option(
        2,
        "Candidates the procedural teacher draws per example of the budget, so draws the "
        "critic rejects are replaced (1: draw exactly the budget).",
    )
    refill: bool = option(
        True,
        "When a target's candidates fall short of its budget (the critic rejected too many), "
        "keep other targets' surplus candidates instead, in proportion to their budgets, so a "
        "cycle trains on its whole budget (procedural teacher, --overdraw > 1).",
    )
    plan: PlanRule = nested(PlanRule, rename=_PLAN_OPTIONS)
    seed: int = option(0, "Seed for generation, clustering and training.")
    train_seed: int = option(
        -1,
        "Seed for training alone (-1: the run's seed). Runs that share a seed and differ here "
        "draw the same data and train on it differently, which separates the training seed's "
        "part of a result's spread from the data's.",
    )
    target_accuracy: float = option(1.0, "Stop once test accuracy reaches this.")
    patience: int = option(2, "Stop after this many cycles without a test-accuracy gain.")
    eval_batch_size: int = option(32, "Items per batch when the student answers.")
    eval_engine: Literal["auto", "transformers", "vllm"] = option(
        "auto",
        "How the student answers: auto (vLLM on CUDA with the gpu extra, else transformers), "
        "transformers, or vllm.",
    )
    executor: Literal["local", "ray"] = option(
        "local",
        "Where the student answers: local (this process) or ray (Ray workers that load it "
        "once; training stays in this process unless --train-launcher ray).",
    )
    ray_address: str = option(
        "", "Ray cluster to join with --executor ray (empty: start a Ray instance here)."
    )
    ray_workers: int = option(2, "Student workers with --executor ray.")
    ray_worker_gpus: float = option(
        0.0,
        "GPUs each student worker asks Ray for with --executor ray (0: it answers on CPU; "
        "fractions share a GPU, e.g. 0.5 for two workers on one).",
    )
    runs_dir: str = option("runs", "Folder that holds one sub-folder per run.")
    on_regression: Literal["rollback", "keep", "stop"] = option(
        "rollback",
        "When a cycle's training makes the student worse on the probe set beyond noise: "
        "rollback (keep the previous student and halve the learning rates from then on), keep "
        "(record it only) or stop (roll back and end the run).",
    )
    guard_alpha: float = option(
        0.05, "The regression guard's significance level (one-sided exact McNemar test)."
    )
    train_from: Literal["previous", "base"] = option(
        "previous",
        "Where each cycle's update starts: previous (the student in use, trained on the "
        "cycle's accepted examples plus any --replay-mix) or base (the --student model with a "
        "fresh LoRA adapter, retrained on every example accepted so far in a canonical order "
        "with one seed, so a cycle's student depends on the accepted set, not on which cycle "
        "added what; what still depends on the path: the learning rates the guard halves after "
        "a rollback and, with a dpo objective, the rejected sides of earlier cycles' pairs, "
        "earlier students' answers). base refuses --replay-mix and --anchor-share.",
    )
    train: TrainConfig = nested(
        TrainConfig,
        rename={
            "batch_size": "train_batch_size",
            "processes": "train_processes",
            "launcher": "train_launcher",
        },
        hide=("seed",),
    )

    def __post_init__(self):
        check_choices(self)
        if self.cycles < 0 or self.budget <= 0:
            raise ValueError("--cycles must be >= 0 and --budget > 0")
        if self.train_seed < -1:
            raise ValueError(f"--train-seed must be >= 0, or -1 for --seed; got {self.train_seed}")
        if self.overdraw < 1:
            raise ValueError(f"--overdraw must be >= 1, got {self.overdraw}")
        if self.patience < 1 or self.eval_batch_size < 1 or self.endpoints.max_tokens < 1:
            raise ValueError("--patience, --eval-batch-size and --llm-max-tokens must be >= 1")
        if self.ray_workers < 1:
            raise ValueError(f"--ray-workers must be >= 1, got {self.ray_workers}")
        if self.ray_worker_gpus < 0:
            raise ValueError(f"--ray-worker-gpus must be >= 0, got {self.ray_worker_gpus}")
        if self.train.launcher == "ray" and self.executor != "ray":
            raise ValueError(
                "--train-launcher ray trains on the run's Ray cluster: add --executor ray"
            )
        if not 0.0 < self.target_accuracy <= 1.0:
            raise ValueError(f"--target-accuracy must be in (0, 1], got {self.target_accuracy}")
        if not 0.0 < self.guard_alpha < 1.0:
            raise ValueError(f"--guard-alpha must be in (0, 1), got {self.guard_alpha}")
        self._check_train_from()

    def _check_train_from(self) -> None:
        """``--train-from`` is a choice, and base's path independence rules out the two ways
        a cycle's data would depend on earlier cycles' students."""
        if self.train_from == "base" and self.train.replay_mix > 0:
            raise ValueError(
                "--train-from base retrains on every accepted example already, so there is "
                f"nothing to replay: drop --replay-mix (got {self.train.replay_mix})"
            )
        if self.train_from == "base" and self.train.anchor_share > 0:
            raise ValueError(
                "--anchor-share draws anchors from the kept student's probe successes, which "
                "depend on the path: use it with --train-from previous, not base"
            )

    @classmethod
    def from_dict(cls, data: dict):
        """Stored settings; a run stored before the regression guard, the anchors, cell
        capacity, training micro-batches, over-drawing, refill and ``--train-from`` existed
        resumes as it started (no rollback, no anchors, no capacity caps, whole batches, the
        budget drawn exactly, no refill, training on from the previous student)."""
        before = {
            "on_regression": "keep",
            "anchor_share": 0.0,
            "plan_capacity": False,
            "micro_batch_tokens": 0,
            "executor": "local",
            "overdraw": 1,
            "refill": False,
            "train_from": "previous",
        }
        return super().from_dict({**before, **data})

    def train_config(self, cycle: int, lr_scale: float = 1.0) -> TrainConfig:
        """The training settings for one cycle: a fresh seed per cycle, or with ``--train-from
        base`` one seed, so the retrained student does not depend on the cycle (``--train-seed``
        in place of ``--seed`` when given); learning rates scaled by ``lr_scale``, which the
        regression guard halves after each rollback."""
        return dataclasses.replace(
            self.train,
            seed=(self.seed if self.train_seed < 0 else self.train_seed)
            + (cycle if self.train_from == "previous" else 0),
            learning_rate=self.train.learning_rate * lr_scale,
            dpo_learning_rate=self.train.dpo_learning_rate * lr_scale,
        )


@dataclass
class AugmentSettings(StoredSettings):
    """Everything that fixes an augmentation run (stored with it; ``--resume`` needs the id).

    The command line's ``augment`` options are generated from these fields."""

    corpus: str = option(
        DEFAULT_CORPUS, "JSONL/Parquet with a text field, a folder of .txt/.md, or stdlib-docs."
    )
    pack: str = option("rephrase", "Augmentation pack: a name under prompts/ or a folder.")
    mode: Mode = option("stitch", "rephrase, stitch (megadocs) or stretch (rationales).")
    styles: str = option("", "Comma-separated styles (default: all in the pack).")
    k: int = option(1, "Rewrites per chunk and style.")
    docs: int = option(0, "Documents to use, in a seeded order (0: all).")
    heldout: float = option(0.2, "Share of documents held out (never rewritten).")
    real_share: float = option(0.5, "Real share of the output corpus's tokens.")
    seed: int = option(0, "Seed for the document order and the mix.")
    endpoints: EndpointSettings = endpoint_options(
        max_tokens=0, help={"max_tokens": "Reply token limit per LLM call (0: the pack's)."}
    )
    runs_dir: str = option("runs", "Folder holding run folders.")
    format: Literal["jsonl", "parquet"] = option("jsonl", "Output corpus file: jsonl or parquet.")

    def __post_init__(self) -> None:
        check_choices(self)

    def check(self) -> None:
        if self.k < 1 or self.docs < 0:
            raise ValueError("--k must be >= 1 and --docs >= 0")
        if not 0.0 <= self.heldout < 1.0:
            raise ValueError(f"--heldout {self.heldout}: must be in [0, 1)")
        if not 0.0 < self.real_share <= 1.0:
            raise ValueError(f"--real-share {self.real_share}: must be in (0, 1]")
