"""Starting and resuming runs: the run folder, the role clients, the checkpointed graph.

A run session is the same for every command that drives a graph (``run``, each run of
``compare``, ``augment``) and for a graph script (:func:`open_run`, exported as
``failforward.open_run``): check what can be checked before a folder exists, open or create the
folder's store, open the graph with the folder's SQLite checkpointer (:func:`open_session`), stop
there if a resumed run had already finished, connect the role endpoints (:func:`connect_roles`),
then drive the graph from where it stopped (:meth:`Run.stream`, :meth:`Run.invoke`), Ctrl-C
becoming :class:`RunInterrupted`, which names the run to resume.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failforward.agents.endpoint_settings import EndpointSettings
from failforward.agents.endpoints import Roles, check_endpoints
from failforward.graph.events import Events
from failforward.graph.executor import executor_for
from failforward.graph.settings import RunSettings
from failforward.graph.state import LoopState, RunContext

INITIAL_STATE: LoopState = {
    "cycle": 0,
    "checkpoint": None,
    "plan": None,
    "history": [],
    "nodes_run": [],
    "stop_reason": None,
}


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run; ``run_id`` is what ``--resume`` takes."""

    def __init__(self, run_id: str):
        super().__init__(run_id)
        self.run_id = run_id


def free_folder_name(runs_dir: str | Path, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first name with no folder in ``runs_dir``."""
    name, n = base, 1
    while (Path(runs_dir) / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def new_run_id(settings: RunSettings) -> str:
    """``<pack>-<date>-<time>-s<seed>``, with a suffix if that folder already exists."""
    base = f"{Path(settings.pack).name}-{time.strftime('%Y%m%d-%H%M%S')}-s{settings.seed}"
    return free_folder_name(settings.runs_dir, base)


@dataclass
class Session:
    """An opened run folder's checkpointed graph: where the run stands, and driving it on."""

    run_id: str
    graph: Any  # the compiled graph, checkpointed in the folder
    config: dict
    snapshot: Any  # the checkpointed state when the session opened

    @property
    def finished(self) -> bool:
        return graph_ended(self.snapshot)

    def run(self, start: dict, context) -> None:
        """Drive the graph to its end from where it stopped (``start`` for a new run)."""
        try:
            self.graph.invoke(None if self.snapshot.values else start, self.config, context=context)
        except KeyboardInterrupt as stop:
            raise RunInterrupted(self.run_id) from stop


def graph_ended(snapshot) -> bool:
    """Whether a checkpointed graph ran to its end. Only a graph past its input (step >= 0) can
    have: a kill before the first node's checkpoint leaves the input's, with no next node recorded
    yet (``invoke(None)`` still runs it from there). Nor has one with a task whose writes are
    saved but not yet applied (a parent graph left while its loop subgraph ran: ``next`` is
    empty then, ``tasks`` is not)."""
    step = (snapshot.metadata or {}).get("step", -1)
    return bool(snapshot.values) and not snapshot.next and not snapshot.tasks and step >= 0


def open_session(
    stack: ExitStack,
    build: Callable[[], Any],
    run_dir: Path,
    run_id: str,
    recursion_limit: int | None = None,
) -> Session:
    """The graph ``build()`` makes, compiled with ``run_dir/checkpoints.db`` (closed with
    ``stack``), and the run's checkpointed state."""
    graph = build().compile(checkpointer=_checkpointer(stack, run_dir))
    config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
    if recursion_limit is not None:
        config["recursion_limit"] = recursion_limit
    return Session(run_id, graph, config, graph.get_state(config))


def _checkpointer(stack: ExitStack, run_dir: Path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    connection = sqlite3.connect(Path(run_dir) / "checkpoints.db", check_same_thread=False)
    stack.callback(connection.close)
    return SqliteSaver(connection)


def run_graph_state(run_dir: Path, run_id: str) -> dict:
    """A run folder's checkpointed graph state: ``{"values", "ended"}`` (:func:`graph_ended`;
    a folder without checkpoints has no values and has not ended)."""
    if not (Path(run_dir) / "checkpoints.db").exists():
        return {"values": {}, "ended": False}
    with checkpointed_graph(run_dir) as app:
        snapshot = app.get_state({"configurable": {"thread_id": run_id}})
        return {"values": dict(snapshot.values), "ended": graph_ended(snapshot)}


@contextmanager
def checkpointed_graph(run_dir: Path) -> Iterator:
    """The compiled loop with the run's SQLite checkpointer (closed on exit)."""
    from failforward.graph.loop import build_graph

    with ExitStack() as stack:
        yield build_graph().compile(checkpointer=_checkpointer(stack, run_dir))


@dataclass
class Run:
    """An opened run, ready to drive: its compiled, checkpointed graph (``graph``), the config
    and context every call of it needs, and the input that starts or continues it (``input``:
    the initial state for a new run, ``None`` for one that stopped part way). Drive it with
    :meth:`stream` (LangGraph's own ``stream``) or :meth:`invoke`."""

    run_id: str
    run_dir: Path
    graph: Any
    config: dict
    context: RunContext | None  # None when the run had already finished
    input: dict | None
    finished: bool

    def stream(self, **options) -> Iterator:
        """``graph.stream`` from where the run stands, with its config and context (``options``
        such as ``stream_mode`` and ``subgraphs`` pass through); a finished run yields
        nothing. Ctrl-C raises :class:`RunInterrupted`."""
        if self.finished:
            return
        try:
            yield from self.graph.stream(self.input, self.config, context=self.context, **options)
        except KeyboardInterrupt as stop:
            raise RunInterrupted(self.run_id) from stop
        finally:  # a stream left early goes on from its checkpoint next time, never anew
            self.input = None
            self.finished = graph_ended(self.graph.get_state(self.config))

    def answer(self, value: Any) -> None:
        """Answer the ``interrupt`` the run stopped at: the next :meth:`stream` resumes it with
        ``Command(resume=value)``, which the interrupting node receives."""
        from langgraph.types import Command

        self.input, self.finished = Command(resume=value), False

    @property
    def interrupts(self) -> list:
        """The interrupts the run is stopped at (each with the ``value`` its node raised)."""
        return list(self.graph.get_state(self.config).interrupts)

    def invoke(self) -> dict:
        """Drive the run to its end (or to an ``interrupt``); returns the graph's state."""
        for _ in self.stream(stream_mode="values"):
            pass
        return self.state

    @property
    def state(self) -> dict:
        """The run's checkpointed graph state now."""
        return dict(self.graph.get_state(self.config).values)


@contextmanager
def open_run(
    settings: RunSettings | None = None,
    *,
    resume: str | None = None,
    run_id: str | None = None,
    ui=None,
    build: Callable[[], Any] | None = None,
    models: dict[str, Any] | None = None,
) -> Iterator[Run]:
    """Open a new run (``settings``) or a stopped one (``resume=<run id>``, found in
    ``settings.runs_dir``) for driving: the folder, its store, the graph compiled with the
    folder's SQLite checkpointer, the role clients and the context; all closed on exit.

    ``build`` makes the (uncompiled) graph, by default :func:`graph.loop.build_graph`: a script
    passes its own to add or replace nodes. ``run_id`` names a new run's folder (default: from
    the pack, time and seed). ``models`` gives roles a LangChain chat model (``{"teacher":
    init_chat_model(...)}``; it overrides the settings' endpoint for that role), with the same
    call cache, token accounting and retries; a resumed run needs the same roles given again. A
    resumed run reads its other settings, and the pack folder it started with, from its own
    store, and refuses a pack that changed. ``ui`` shows the nodes' typed events
    (:mod:`failforward.graph.events`) through its ``show``: a
    :class:`~failforward.app.progress.LoopUI` by default (a subclass may send them elsewhere).
    """
    from failforward.app.progress import LoopUI
    from failforward.graph.loop import build_graph
    from failforward.tools.store import RunStore

    settings = settings or RunSettings()
    ui = ui or LoopUI()
    models = check_models(models or {})
    if resume:
        run_id, run_dir = resume, resume_folder(settings.runs_dir, resume, "run.db", "run folder")
    else:
        pack = check_new_run(settings, ui.log, set(models))  # bad input fails before a folder
        run_id = run_id or new_run_id(settings)
        run_dir = create_run_folder(settings, run_id, pack)
    with ExitStack() as stack:
        store = RunStore(run_dir / "run.db")
        stack.callback(store.close)
        if resume:
            settings, pack = _resumed_run(store, run_id, settings.runs_dir, set(models))
        session = open_session(
            stack, build or build_graph, run_dir, run_id, 12 + 6 * settings.cycles
        )
        start = None if session.snapshot.values else dict(INITIAL_STATE)
        if resume and session.finished:
            yield Run(run_id, run_dir, session.graph, session.config, None, None, True)
            return
        clients = connect_roles(settings.endpoints, store, stack, ui, models)
        context = RunContext(run_id, run_dir, settings, pack, store, clients, Events(ui.show))
        stack.callback(context.student.close)  # Ray workers, where there are any
        size = f"{settings.cycles} cycles x {settings.budget} examples"
        ui.log(
            f"run {run_id}: pack {pack.name}, student {settings.student}, "
            f"llm {settings.endpoints.llm}, {size} -> {run_dir}"
        )
        yield Run(run_id, run_dir, session.graph, session.config, context, start, False)


def run_loop(
    settings: RunSettings | None = None,
    ui=None,
    resume: str | None = None,
    run_id: str | None = None,
) -> str:
    """Run (or, with ``resume=<run_id>``, continue) a loop to its end; returns the run id
    (:func:`open_run`, then :meth:`Run.invoke`)."""
    from failforward.app.progress import LoopUI

    ui = ui or LoopUI()
    with open_run(settings, resume=resume, run_id=run_id, ui=ui) as run:
        if run.finished:
            ui.log(f"run {run.run_id} already finished ({run.state.get('stop_reason')})")
        else:
            run.invoke()
    return run.run_id


def resume_folder(runs_dir: str, run_id: str, database: str, kind: str) -> Path:
    """The folder of a run to resume; a missing one (or one without its database) is an error
    that names it."""
    run_dir = Path(runs_dir) / run_id
    if not (run_dir / database).is_file():
        raise FileNotFoundError(f"--resume {run_id}: no {kind} {run_dir} with {database}")
    return run_dir


def check_new_run(settings: RunSettings, log=None, model_roles: set[str] = frozenset()):
    """The pack of a run about to start, once everything checkable before its folder is fine
    (``run``, ``compare`` and Studio's first node share these checks, and they include every
    check of ``packs validate``); ``log`` gets the checks' notes. ``model_roles`` are the roles
    a script gives a LangChain chat model."""
    from failforward.tools.packs.check import NEEDS_TEACHER, NOTHING_VERIFIES, check_pack

    check_engine(settings)
    checked = check_pack(settings.pack, settings.endpoints.roles() | set(model_roles))
    pack = checked.pack
    if NEEDS_TEACHER in checked.notes:  # it could only hand back the eval file's own items
        raise ValueError(f"pack {pack.name!r} has {NEEDS_TEACHER}")
    if NOTHING_VERIFIES in checked.notes:
        raise ValueError(f"pack {pack.name!r}: {NOTHING_VERIFIES}")
    for note in checked.notes:
        (log or print)(f"note: {note}")
    check_sandbox(pack)
    check_endpoints(settings.endpoints.remote())  # an endpoint that cannot work fails here too
    check_student(settings.student)
    check_runs_dir(settings.runs_dir)
    return pack


def _resumed_run(
    store, run_id: str, runs_dir: str, model_roles: set[str] = frozenset()
) -> tuple[RunSettings, Any]:
    """A stopped run's own settings and pack, refused if the pack changed since it started or
    its chat-model roles are not the ones given now."""
    from failforward.tools.packs.pack import load_pack

    settings = RunSettings.from_dict({**store.get_meta("settings"), "runs_dir": runs_dir})
    had = set(store.get_meta("chat_model_roles") or [])
    if had != set(model_roles):
        raise ValueError(
            f"--resume {run_id}: the run gave LangChain chat models to "
            f"{', '.join(sorted(had)) or 'no role'}; open_run(..., models=) now gives them to "
            f"{', '.join(sorted(model_roles)) or 'no role'}: give the same roles again"
        )
    check_endpoints(settings.endpoints.remote())
    pack = load_pack(store.get_meta("pack_dir"))
    if pack.fingerprint() != store.get_meta("pack_fingerprint"):
        raise ValueError(
            f"--resume {run_id}: the pack in {pack.directory} changed since the run "
            "started; restore it or start a new run"
        )
    check_sandbox(pack)
    return settings, pack


def connect_roles(
    endpoints: EndpointSettings, store, stack: ExitStack, ui, models: dict | None = None
) -> Roles:
    """The role clients (:func:`role_clients`, and a LangChain chat model's for each role in
    ``models``), their public settings recorded in the store."""
    from failforward.agents.endpoints import ChatClient, chat_model_config

    clients = role_clients(endpoints, store, stack, ui)
    for role, model in (models or {}).items():
        clients[role] = ChatClient(role, chat_model_config(model), store, chat_model=model)
    store.set_meta("endpoints", {role: c.config.public() for role, c in clients.items()})
    store.set_meta("chat_model_roles", sorted(models or {}))
    return Roles(**clients)


def check_models(models: dict[str, Any]) -> dict[str, Any]:
    """``open_run``'s ``models``: known roles, each a LangChain chat model (its ``ainvoke``)."""
    from failforward.agents.endpoints import ROLES

    for role, model in models.items():
        if role not in ROLES:
            raise ValueError(f"models: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if not callable(getattr(model, "ainvoke", None)):
            raise ValueError(
                f"models: {role}: {type(model).__name__} is not a LangChain chat model "
                "(no ainvoke); pass a BaseChatModel, e.g. from init_chat_model"
            )
    return models


def check_engine(settings: RunSettings) -> None:
    """``--eval-engine vllm`` only where vLLM can run; the executor's own checks (``--executor
    ray`` only with Ray)."""
    executor_for(settings, print).check()
    if settings.eval_engine == "vllm":
        from failforward.agents.student import vllm_usable

        if not vllm_usable():
            raise ValueError(
                "--eval-engine vllm needs CUDA and the gpu extra: pip install '.[gpu]'"
            )


def check_sandbox(pack) -> None:
    """Refuse a pack whose solver runs programs where no OS isolation is to be had."""
    if pack.spec.critic.solver != "python_program":
        return
    from failforward.tools.verify.sandbox import SandboxUnavailable, isolation

    try:
        isolation()
    except SandboxUnavailable as err:
        raise ValueError(f"pack {pack.name!r} (critic.solver: python_program): {err}") from err


def check_student(student: str) -> None:
    """A student other than smollm2 and tiny (built on demand) must resolve now: a model folder,
    a LoRA checkpoint (merged onto its base here, once) or an earlier run's folder."""
    from failforward.training.student_model import BUILT_IN, resolve_student

    if student not in BUILT_IN:
        resolve_student(student)


def check_runs_dir(runs_dir: str | Path) -> None:
    """Fail before the run folder is made when ``runs_dir`` cannot hold one."""
    import tempfile

    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=runs_dir):
            pass
    except OSError as err:
        raise ValueError(
            f"--runs-dir {runs_dir}: cannot write run folders there ({err.strerror or err})"
        ) from None


def create_run_folder(settings: RunSettings, run_id: str, pack) -> Path:
    """The new run's folder, holding a store that records what a resume needs. It is made as a
    hidden ``.<run_id>.partial`` folder and renamed into place once that is written, so a kill at
    any moment leaves either no run folder or one that ``--resume`` can continue."""
    from failforward.tools.store import RunStore

    staging = Path(settings.runs_dir) / f".{run_id}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # a kill's leftover from an earlier attempt
    store = RunStore(staging / "run.db")
    try:
        record_new_run(store, settings, pack)
    finally:
        store.close()  # the last connection folds its WAL back into run.db
    run_dir = Path(settings.runs_dir) / run_id
    staging.rename(run_dir)
    return run_dir


def record_new_run(store, settings: RunSettings, pack) -> None:
    """Store what a resume needs: the settings, the pack's folder and its fingerprint; and the
    student the run starts from (meta ``student``: the setting, the model folder it resolved to,
    and for an earlier run's student, that run, cycle and checkpoint)."""
    from failforward.training.student_model import BUILT_IN, student_record

    if settings.endpoints.file:  # a resume may start from another working directory
        settings.endpoints.file = str(Path(settings.endpoints.file).resolve())
    if settings.student not in BUILT_IN:  # likewise a student given as a folder
        settings.student = str(Path(settings.student).resolve())
    store.set_meta("settings", settings.to_dict())
    store.set_meta("pack_dir", str(pack.directory.resolve()))
    store.set_meta("pack_fingerprint", pack.fingerprint())
    store.set_meta("student", student_record(settings.student))


def role_clients(endpoints: EndpointSettings, store, stack: ExitStack, ui) -> dict:
    """One ChatClient per role that has an endpoint (none for ``--llm none``)."""
    from failforward.agents.endpoints import ROLES, ChatClient, LocalServer

    configs = {}
    if endpoints.local:
        from failforward.training.student_model import smollm2_dir

        ui.log("starting transformers serve on 127.0.0.1 with the packaged SmolLM2 ...")
        server = stack.enter_context(LocalServer(smollm2_dir()))
        ui.log(f"local endpoint ready at {server.base_url}")
        configs = {role: server.endpoint(max_tokens=endpoints.max_tokens) for role in ROLES}
    configs |= endpoints.remote()
    return {role: ChatClient(role, config, store) for role, config in configs.items()}
