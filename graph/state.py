"""The loop's typed state (checkpointed) and its run context (fixed settings and live resources).

State stays small and JSON-plain: bulky data (eval sets, failures, examples) lives in the run
store and the state holds references, so checkpoints stay cheap and resumes exact.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from failforward.agents.endpoints import Roles
from failforward.agents.student import Student
from failforward.graph.events import Events
from failforward.graph.executor import Here, executor_for
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import Pack
from failforward.tools.packs.sources import Source
from failforward.tools.store import RunStore


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

    ``events`` is how a node speaks (:mod:`failforward.graph.events`; by default its log lines
    are printed), ``executor`` where the heavy work goes (:mod:`failforward.graph.executor`,
    made from ``--executor``). The student (:class:`~failforward.agents.student.Student`) is
    made here once per process and loads its model on first use.
    """

    run_id: str
    run_dir: Path
    settings: RunSettings
    pack: Pack
    store: RunStore
    clients: Roles = field(default_factory=Roles)
    events: Events = field(default_factory=Events)
    student: Student | None = None
    executor: Here | None = None
    _sources: dict[str, Source] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.executor is None:
            self.executor = executor_for(self.settings, self.events.log)
        if self.student is None:
            s, workers = self.settings, self.executor.student_workers
            self.student = Student(
                s.student, s.eval_engine, s.train.lora_r, self.events.log, workers
            )

    def source(self, role: Literal["eval", "train"] = "eval") -> Source:
        """The pack's eval source, or (``train``) the one the procedural teacher draws from;
        made once per run."""
        if role not in self._sources:
            self._sources[role] = self.pack.make_source(role)
        return self._sources[role]
