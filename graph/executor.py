"""Where a run's heavy work goes: here, or (``--executor ray``) to Ray workers.

This is the one place that reads ``--executor``: :func:`executor_for` makes the run's executor
once (``RunContext.executor``) and the nodes ask it, never the setting. On Ray the student answers
through :class:`~failforward.agents.workers.StudentWorkers`, large embedding batches and the
critic's verification go to Ray tasks, and ``--train-launcher ray`` joins the same cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from failforward.graph.settings import RunSettings

if TYPE_CHECKING:
    from failforward.agents.student import Student
    from failforward.agents.workers import StudentWorkers

Log = Callable[[str], None]


class Here:
    """Everything in this process."""

    name = "local"
    answers_elsewhere = False  # the student answers in this process
    student_workers: Callable[[Student], StudentWorkers] | None = None  # none: no workers

    def check(self) -> None:
        """Nothing to check: this process can do it all."""

    def embedder(self, embed: Callable) -> Callable:
        return embed

    def map_over(self) -> Callable | None:
        """How the critic maps verification over candidates (None: a loop here)."""
        return None

    def join(self) -> None:
        """Nothing to join."""


class OnRay(Here):
    """The student's answers, large embedding batches and verification on Ray workers."""

    name = "ray"
    answers_elsewhere = True  # the workers answer: a student in memory is written for them

    def __init__(self, settings: RunSettings, log: Log):
        self.settings, self.log = settings, log

    def check(self) -> None:
        """Ray is installed, and the evaluation engine is one the workers run."""
        from failforward.agents.workers import ray_installed

        if not ray_installed():
            raise ValueError("--executor ray needs Ray: pip install '.[ray]'")
        if self.settings.eval_engine == "vllm":
            raise ValueError(
                "--executor ray answers with transformers on its workers; "
                "--eval-engine vllm answers in this process: choose one"
            )

    def student_workers(self, student: Student) -> StudentWorkers:
        from failforward.agents.workers import StudentWorkers

        s = self.settings
        return StudentWorkers(
            student.base_dir(),
            s.train.lora_r,
            s.ray_workers,
            s.ray_address,
            gpus=s.ray_worker_gpus,
            log=self.log,
        )

    def embedder(self, embed: Callable) -> Callable:
        """The same model on Ray workers, for large batches (small ones stay here)."""
        from failforward.agents.workers import ray_embedder

        return ray_embedder(self.settings.ray_address, self.settings.ray_workers, log=self.log)

    def map_over(self) -> Callable[[Callable, list], list[Any]]:
        from failforward.agents.workers import ray_map

        s = self.settings
        return lambda fn, items: ray_map(fn, items, s.ray_address, s.ray_workers, self.log)

    def join(self) -> None:
        """Join the run's cluster (``--train-launcher ray`` trains on it; a resumed run that
        starts at training has not joined it yet)."""
        from failforward.agents.workers import connect

        connect(self.settings.ray_address, self.settings.ray_workers, log=self.log)


def executor_for(settings: RunSettings, log: Log) -> Here:
    """The run's executor, as ``--executor`` says."""
    return OnRay(settings, log) if settings.executor == "ray" else Here()
