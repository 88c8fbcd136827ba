"""What the graphs' nodes say while they run, as typed events; ``app/`` decides how to show them.

A node never formats for a screen: it emits an event with its data through its context's
:class:`Events`, and one sink receives every event (the terminal's
:class:`~failforward.app.progress.LoopUI`, Studio's stream, a script's or a test's callable).
The text of a :class:`Line` is plain text (no markup): it may hold LLM output.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from failforward.tools.records import FailureCluster, GenerationPlan


@dataclass(frozen=True)
class Line:
    """A line of the run's log."""

    text: str
    level: Literal["info", "warning"] = "info"


@dataclass(frozen=True)
class Progress:
    """A bar: opened (``completed`` 0), moved, and closed (``done``), named by ``task``.

    ``parent`` is the bar open on the same thread when this one opened (a nested bar)."""

    task: int
    description: str
    completed: int
    total: int | None
    done: bool = False
    parent: int | None = None


@dataclass(frozen=True)
class CycleRow:
    """An evaluation's row (cycle, accuracies and their interval, counts, seconds), with every
    row of the run so far in ``history`` (the last is ``row``)."""

    history: tuple[dict[str, Any], ...]

    @property
    def row(self) -> dict[str, Any]:
        return self.history[-1]


@dataclass(frozen=True)
class PlanMade:
    """A cycle's clusters of probe failures and the plan written for them."""

    clusters: tuple[FailureCluster, ...]
    plan: GenerationPlan


@dataclass(frozen=True)
class Verdicts:
    """What the critic decided in a cycle: counts per candidate source and verdict, the accepted
    examples per what verified them, one example detail per rejection reason, and how many
    accepted examples filled another target's shortfall."""

    cycle: int
    by_source: dict[str, dict[str, int]]
    accepted_by: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    refilled: int = 0


Event = Line | Progress | CycleRow | PlanMade | Verdicts
Sink = Callable[[Event], None]


def print_lines(event: Event) -> None:
    """The sink with no display: log lines printed, everything else dropped."""
    if isinstance(event, Line):
        print(event.text)


class Events:
    """A node's way to speak: :meth:`log`, :meth:`warn`, :meth:`task` for a bar, or
    :meth:`emit` for any event; every event goes to ``sink``."""

    _ids = itertools.count(1)

    def __init__(self, sink: Sink | None = None):
        self.sink = sink or print_lines
        self._open = threading.local()  # the bar open on this thread, for nesting

    def emit(self, event: Event) -> None:
        self.sink(event)

    def log(self, text: str) -> None:
        self.sink(Line(text))

    def warn(self, text: str) -> None:
        self.sink(Line(text, "warning"))

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        """A bar; the body gets ``advance(n)`` and ``update(completed, total)``, which may be
        called from other threads. The bar closes when the body ends, also by an error."""
        task, parent = next(self._ids), getattr(self._open, "task", None)
        state = {"completed": 0, "total": total}
        lock = threading.Lock()

        def send(done: bool = False) -> None:
            self.sink(Progress(task, description, state["completed"], state["total"], done, parent))

        class Bar:
            @staticmethod
            def advance(n: int = 1) -> None:
                with lock:
                    state["completed"] += n
                    send()

            @staticmethod
            def update(completed: int, total: int | None = None) -> None:
                with lock:
                    state["completed"] = completed
                    if total is not None:  # None keeps the total (as rich's update does)
                        state["total"] = total
                    send()

        send()
        self._open.task = task
        try:
            yield Bar
        finally:
            self._open.task = parent
            send(done=True)
