"""The loop's typed state (checkpointed) and its run context (fixed settings and live resources).

State stays small and JSON-plain: bulky data (eval sets, failures, examples) lives in the run
store and the state holds references, so checkpoints stay cheap and resumes exact.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from failforward.agents.student import Student
from failforward.graph.settings import RunSettings


class LoopState(TypedDict, total=False):
    cycle: int  # training cycles completed so far
    checkpoint: str | None  # the student's latest checkpoint: LoRA adapter or whole model
    adapter_dir: str | None  # the same, as runs started before full fine-tuning stored it
    plan: dict[str, Any] | None  # GenerationPlan of the cycle in progress
    history: Annotated[list[dict[str, Any]], operator.add]  # one row per evaluation
    nodes_run: Annotated[list[str], operator.add]  # node names, in order, for audits and tests
    stop_reason: str | None
    # The regression guard: the evaluation whose student is in use (the one training started
    # from), the checkpoint training replaced, and the learning-rate factor after rollbacks.
    kept_cycle: int
    trained: bool  # the last train_student changed the student
    previous_checkpoint: str | None
    lr_scale: float


@dataclass
class RunContext:
    """What every node needs and nothing checkpoints: settings, the pack, the store, resources.

    The student (:class:`~failforward.agents.student.Student`) is made here once per process and
    loads its model on first use.
    """

    run_id: str
    run_dir: Path
    settings: RunSettings
    pack: Any  # tools.packs.pack.Pack
    store: Any  # tools.store.RunStore
    clients: dict[str, Any] = field(default_factory=dict)  # role -> agents.endpoints.ChatClient
    ui: Any = None  # app.progress.Progress-like reporter
    cache: dict[str, Any] = field(default_factory=dict)
    student: Student | None = None

    def __post_init__(self):
        if self.student is None:
            s = self.settings
            log = self.ui.log if self.ui is not None else print
            workers = functools.partial(_ray_workers, s, log) if s.executor == "ray" else None
            self.student = Student(s.student, s.eval_engine, s.train.lora_r, log, workers)


def _ray_workers(settings: RunSettings, log, student: Student):
    """The student's Ray workers as ``--executor ray`` and ``--ray-*`` ask for them."""
    from failforward.agents.workers import StudentWorkers

    return StudentWorkers(
        student.base_dir(),
        settings.train.lora_r,
        settings.ray_workers,
        settings.ray_address,
        gpus=settings.ray_worker_gpus,
        log=log,
    )
