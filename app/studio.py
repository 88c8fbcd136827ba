"""The loop graph for LangGraph Studio and ``langgraph dev`` (``langgraph.json`` names ``graph``).

A Studio run cannot pass the loop's run context (an open store, a loaded pack, endpoint clients),
so its input says what to run instead, with any ``failforward run`` option::

    {"settings": {"pack": "sql", "student": "tiny", "cycles": 1, "budget": 16}}

The first node makes the run folder as ``failforward run`` does and puts its id in the state;
every loop node then gets the run's context, built once per process from that folder. The run is
an ordinary run folder: ``failforward report`` and ``failforward run --resume`` work on it.
"""

import dataclasses
import time
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from failforward.app.progress import LoopUI, plan_lines, verdict_lines
from failforward.graph.events import CycleRow, Event, Events, Line, PlanMade, Progress, Verdicts
from failforward.graph.loop import build_graph
from failforward.graph.settings import RunSettings
from failforward.graph.state import LoopState, RunContext
from failforward.tools.options import options as all_options


# No ``from __future__ import annotations`` here: LangGraph reads this TypedDict's hints at run
# time, and ``langgraph dev`` loads this file by path, outside any package.
class StudioState(LoopState, total=False):
    settings: dict[str, Any]  # `failforward run` options; the rest keep their defaults
    run_id: str
    run_dir: str


class StudioUI(LoopUI):
    """The nodes' events as custom stream events (``stream_mode="custom"``), and on the server's
    console as in a terminal: ``{"kind": "log", "message", "level"}``, ``{"kind": "progress",
    "task", "completed", "total"}`` (at most every half second per bar, and when it ends),
    ``{"kind": "cycle", "row"}`` (the cycle table's newest row), ``{"kind": "plan", "plan",
    "clusters"}`` and ``{"kind": "verdicts", ...}`` (each also as its log lines)."""

    def __init__(self, console=None):
        super().__init__(console)
        self._sent: dict[int, dict] = {}  # an open bar's writer, when it was last sent and what

    @staticmethod
    def _writer():
        from langgraph.config import get_stream_writer

        try:
            return get_stream_writer()
        except RuntimeError:  # not inside a run (or on another thread): nothing to stream to
            return lambda event: None

    def log(self, message: str) -> None:
        super().log(message)
        self._writer()({"kind": "log", "message": message, "level": "info"})

    def show(self, event: Event) -> None:
        super().show(event)
        if isinstance(event, Progress):
            self._progress(event)
            return
        write = self._writer()
        if isinstance(event, Line):
            write({"kind": "log", "message": event.text, "level": event.level})
        elif isinstance(event, CycleRow):
            write({"kind": "cycle", "row": event.row})
        elif isinstance(event, PlanMade):
            clusters = [c.model_dump(mode="json") for c in event.clusters]
            write(
                {"kind": "plan", "plan": event.plan.model_dump(mode="json"), "clusters": clusters}
            )
            for line in plan_lines(event):
                write({"kind": "log", "message": line, "level": "info"})
        elif isinstance(event, Verdicts):
            write({"kind": "verdicts", **dataclasses.asdict(event)})
            for line in verdict_lines(event):
                write({"kind": "log", "message": line, "level": "info"})

    def _progress(self, event: Progress) -> None:
        # the writer is taken when the bar opens: it may move on another thread
        sent = self._sent.setdefault(event.task, {"write": self._writer(), "at": 0.0, "last": None})
        now, shown = time.monotonic(), (event.completed, event.total)
        if shown != sent["last"] and (
            event.done or event.completed == 0 or now - sent["at"] >= 0.5
        ):
            sent["at"], sent["last"] = now, shown
            sent["write"]({"kind": "progress", "task": event.description,
                           "completed": event.completed, "total": event.total})  # fmt: skip
        if event.done:
            del self._sent[event.task]


_CONTEXTS: dict[str, RunContext] = {}
_RESOURCES = ExitStack()  # endpoint clients (and a local server) live as long as the process


def start_run(state: StudioState) -> dict:
    """Validate the input's settings, make the run folder and record the run."""
    from failforward.app.runner import INITIAL_STATE, check_new_run, create_run_folder, new_run_id

    options = dict(state.get("settings") or {})
    unknown = sorted(set(options) - {o.name for o in all_options(RunSettings)})
    if unknown:
        raise ValueError(f"settings: unknown option(s) {unknown}; see failforward run --help")
    try:
        settings = RunSettings.from_options(**options)
    except ValueError as err:  # it names the option: say where it came from
        raise ValueError(f"settings: {err}") from None
    # the checks of `failforward run` (and `packs validate`), before a folder exists
    pack = check_new_run(settings, StudioUI().log)
    run_id = new_run_id(settings)
    run_dir = create_run_folder(settings, run_id, pack).resolve()
    return {**INITIAL_STATE, "run_id": run_id, "run_dir": str(run_dir)}


def run_context(run_dir: str) -> RunContext:
    """The run's context, made once per process from its folder (as a resume makes it)."""
    if run_dir not in _CONTEXTS:
        from failforward.app.runner import connect_roles
        from failforward.tools.packs.pack import load_pack
        from failforward.tools.store import RunStore

        folder = Path(run_dir)
        store = _RESOURCES.enter_context(closing(RunStore(folder / "run.db")))
        settings = RunSettings.from_dict(store.get_meta("settings"))
        ui = StudioUI()
        _CONTEXTS[run_dir] = RunContext(
            run_id=folder.name,
            run_dir=folder,
            settings=settings,
            pack=load_pack(store.get_meta("pack_dir")),
            store=store,
            clients=connect_roles(settings.endpoints, store, _RESOURCES, ui),
            events=Events(ui.show),
        )
    return _CONTEXTS[run_dir]


def _with_run_context(node):
    """``node`` as Studio runs it: the same function, given the run's context."""

    def studio_node(state: StudioState, runtime: Runtime) -> dict:
        context = run_context(state["run_dir"])
        update = node(state, dataclasses.replace(runtime, context=context))
        if node.__name__ == "write_report":  # the run is over: its Ray workers go
            context.student.close()
        return update

    studio_node.__name__ = node.__name__
    studio_node.__doc__ = node.__doc__
    return studio_node


# Studio's default step limit (25) would stop a loop of more than 4 cycles; the loop ends itself.
graph = (
    build_graph(StudioState, None, wrap=_with_run_context, first=start_run)
    .compile()
    .with_config(recursion_limit=10_000)
)
