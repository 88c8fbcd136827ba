"""One cycle's student update: the objective's phases in order, one unit per phase.

A phase builds its rows from the cycle's data, trains with its TRL trainer
(:mod:`failforward.training.offpolicy`) and says what it did. Training imports nothing above
tools, so what a phase needs from the run (the student's prompt, the reply it learns, its own
answers for DPO pairs, the verifier's reward, a progress bar) comes in :class:`CycleData` as
plain data and callables. A new objective is a phase function here, its entry in ``PHASES`` and
its name in ``TrainConfig``'s objectives; the train node does not change.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import resource
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from failforward.training import offpolicy
from failforward.training.config import TrainConfig
from failforward.training.offpolicy import PhaseResult, dpo_rows, sft_rows
from failforward.training.replay import replay_sample


@dataclass
class CycleData:
    """What one cycle's training draws on."""

    cycle: int
    examples: list[dict]  # accepted this cycle
    earlier: list[dict]  # accepted in earlier cycles, oldest first (replay draws from them)
    successes: list[dict]  # items the student answers right: question, answer, its own reply
    messages: Callable[[str], list[dict]]  # the student's chat prompt for a question
    completion: Callable[[dict], str]  # the reply the student learns for an example
    pairs: Callable[[Any, Any], list[dict]]  # DPO pairs from (model, tokenizer) as it is now
    reward: Callable[[str, dict], float]  # GRPO: a sampled reply's score for its row
    max_new_tokens: int  # GRPO: the longest completion sampled
    progress: Callable[..., AbstractContextManager]  # progress(label, total=n) -> bar.update
    log: Callable[[str], None] = print


def training_rows(accepted: list[dict], cycle: int, train_from: str) -> list[dict]:
    """The accepted examples a cycle's update trains on.

    ``previous``: the cycle's own, in stored order (the student goes on from where it is).
    ``base``: every cycle's up to this one, in :func:`canonical_order`, so the rows depend on
    the accepted set alone, not on which cycle added which example or in what order.

    Example:
        >>> ex = [{"cycle": 1, "question": "1+1", "answer": "2"},
        ...       {"cycle": 2, "question": "2+2", "answer": "4"}]
        >>> [r["answer"] for r in training_rows(ex, 2, "previous")]
        ['4']
        >>> swapped = [{**r, "cycle": 3 - r["cycle"]} for r in reversed(ex)]
        >>> def answers(rows):
        ...     return [r["answer"] for r in training_rows(rows, 2, "base")]
        >>> answers(ex) == answers(swapped) and len(answers(ex)) == 2
        True
    """
    if train_from == "previous":
        return [r for r in accepted if r["cycle"] == cycle]
    upto = [r for r in accepted if r["cycle"] <= cycle]
    return canonical_order(upto, "question", "answer", "solution", "metadata")


def canonical_order(rows: list[dict], *keys: str) -> list[dict]:
    """``rows`` sorted by a stable hash of what they teach (their ``keys``), ties by those
    values: a fixed pseudo-random order that no cycle, store id or insertion order moves, and
    in which similar questions do not bunch up.

    Example:
        >>> rows = [{"question": q, "answer": "1"} for q in "abc"]
        >>> canonical_order(rows, "question") == canonical_order(rows[::-1], "question")
        True
    """

    def key(row: dict) -> tuple[str, str]:
        values = json.dumps([row.get(k) for k in keys], sort_keys=True)
        return hashlib.sha256(values.encode()).hexdigest(), values

    return sorted(rows, key=key)


@dataclass
class PhaseOutcome:
    model: Any  # the student after the phase (LoRA-wrapped unless training it whole)
    result: PhaseResult | None  # None: the phase had nothing to train on
    metrics: dict = field(default_factory=dict)  # what the phase counted (replayed, pairs)


def sft_phase(model, tokenizer, data: CycleData, config: TrainConfig, out_dir: Path):
    """SFT on the cycle's accepted examples plus replayed earlier ones."""
    n = len(data.examples)
    replayed = replay_sample(data.earlier, n, config.replay_mix, config.replay_size, config.seed)
    anchors = anchor_sample(data.successes, n, config.anchor_share, config.seed)
    rows = sft_rows([*data.examples, *replayed], data.messages, data.completion)
    rows += sft_rows(anchors, data.messages, lambda a: a["reply"])
    label = (
        f"cycle {data.cycle}: SFT on {n} examples + {len(replayed)} replayed "
        f"+ {len(anchors)} anchors"
    )
    with _bar(data, label, rows, config) as step:
        model, result = _train_phase("sft", model, tokenizer, rows, config, out_dir, step)
    metrics = {"train_replayed": len(replayed), "train_anchors": len(anchors)}
    return PhaseOutcome(model, result, metrics)


def anchor_sample(successes: list[dict], n_new: int, share: float, seed: int) -> list[dict]:
    """``round(share * n_new)`` of the student's own right answers (fewer when it has fewer),
    drawn with ``seed``: rejection-sampled self-distillation, as in STaR.

    Example:
        >>> len(anchor_sample([{"reply": str(i)} for i in range(9)], n_new=8, share=0.5, seed=0))
        4
    """
    wanted = min(len(successes), round(share * n_new))
    return random.Random(seed).sample(successes, wanted) if wanted else []


def dpo_phase(model, tokenizer, data: CycleData, config: TrainConfig, out_dir: Path):
    """DPO on pairs from the student as it is now (after SFT in sft+dpo): its own mistakes."""
    pairs = data.pairs(model, tokenizer)
    if not pairs:
        data.log(f"  cycle {data.cycle}: the student got every new item right; no DPO pairs")
        return PhaseOutcome(model, None, {"dpo_pairs": 0})
    rows = dpo_rows(pairs, data.messages)
    with _bar(data, f"cycle {data.cycle}: DPO on {len(rows)} pairs", rows, config) as step:
        model, result = _train_phase("dpo", model, tokenizer, rows, config, out_dir, step)
    return PhaseOutcome(model, result, {"dpo_pairs": len(pairs)})


def grpo_phase(model, tokenizer, data: CycleData, config: TrainConfig, out_dir: Path):
    """Experimental GRPO on the accepted examples' questions, rewarded by the pack's verifier."""
    rows = [
        {
            "prompt": data.messages(e["question"]),
            "question": e["question"],
            "answer": e["answer"],
            "metadata": json.dumps(e["metadata"]),
        }
        for e in data.examples
    ]
    label = f"cycle {data.cycle}: GRPO (experimental) on {len(rows)} prompts"
    with _bar(data, label, rows, config, config.grpo_generations) as step:
        model, result = offpolicy.train_grpo(
            model, tokenizer, rows, data.reward, config, out_dir, data.max_new_tokens, step
        )
    return PhaseOutcome(model, result)


PHASES = {"sft": sft_phase, "dpo": dpo_phase, "grpo": grpo_phase}


@dataclass
class CycleTraining:
    model: Any  # the trained student (unchanged when no phase trained)
    phases: list[PhaseResult]  # the phases that trained, in order
    metrics: dict  # per phase (sft_rows, dpo_steps, ...) and for the cycle (train_steps, ...)


def train_cycle(model, tokenizer, data: CycleData, config: TrainConfig, out_dir: Path):
    """Run the objective's phases in order on one model; a :class:`CycleTraining`."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    phases, metrics = [], {}
    for name in config.phases:
        outcome = PHASES[name](model, tokenizer, data, config, out_dir)
        model, result = outcome.model, outcome.result
        metrics |= outcome.metrics
        if result is None:
            continue
        phases.append(result)
        metrics |= phase_metrics(result)
        if result.accumulation > 1:
            rows = result.micro_batch * result.accumulation * result.processes
            data.log(
                f"  cycle {data.cycle}: {result.phase} steps of {rows} rows"
                f" in {result.accumulation} passes of {result.micro_batch}"
                f"{f' on each of {result.processes} processes' if result.processes > 1 else ''}"
                f" (--micro-batch-tokens {config.micro_batch_tokens})"
            )
        if result.truncated:
            data.log(
                f"  cycle {data.cycle}: {result.truncated} {result.phase} rows cut at "
                f"--max-length {result.max_length}; raise it or set 0 to fit the data"
            )
    if phases:
        metrics |= _cycle_metrics(phases)
    return CycleTraining(model, phases, metrics)


def phase_metrics(result: PhaseResult) -> dict:
    """A training phase's rows, steps, seconds, tokens and (when logged) final loss."""
    metrics = {
        f"{result.phase}_rows": result.rows,
        f"{result.phase}_steps": result.steps,
        f"{result.phase}_seconds": result.seconds,
        f"{result.phase}_tokens": result.tokens,
        f"{result.phase}_accumulation": result.accumulation,
    }
    if result.process_peak_mb:
        metrics[f"{result.phase}_process_peak_mb"] = max(result.process_peak_mb)
    if result.loss is not None:  # no logged loss is not a loss of 0
        metrics[f"{result.phase}_loss"] = result.loss
    return metrics


def _cycle_metrics(phases: list[PhaseResult]) -> dict:
    import torch

    metrics = {
        "train_steps": sum(r.steps for r in phases),
        "train_seconds": sum(r.seconds for r in phases),
        "train_truncated": sum(r.truncated for r in phases),
        # Linux reports the process's peak resident memory in KiB.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if torch.cuda.is_available():
        metrics["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    losses = [r.loss for r in phases if r.loss is not None]
    if losses:
        metrics["train_loss"] = losses[-1]
    return metrics


def _train_phase(phase: str, model, tokenizer, rows, config: TrainConfig, out_dir: Path, step):
    """SFT or DPO in this process, or on ``config.processes`` processes (DDP; with
    ``--train-launcher ray`` on Ray Train workers, even for one)."""
    if config.processes > 1 or config.launcher == "ray":
        from failforward.training.distributed import run_phase

        return run_phase(phase, model, tokenizer, rows, config, out_dir, step)
    train = offpolicy.train_sft if phase == "sft" else offpolicy.train_dpo
    return train(model, tokenizer, rows, config, out_dir, step)


@contextmanager
def _bar(data: CycleData, label: str, rows: list, config: TrainConfig, per_row: int = 1):
    """A progress bar sized from the data; yields the trainer's ``on_step`` callback."""
    import torch

    batch = config.resolved_batch_size(torch.cuda.is_available())
    steps = math.ceil(len(rows) * per_row / batch) * math.ceil(config.epochs)
    with data.progress(label, total=steps) as bar:
        yield lambda step, total_steps: bar.update(step, total_steps)
