"""Starting and resuming runs: the run folder, the role clients, the checkpointed graph."""

from __future__ import annotations

import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

from graph.state import LoopState, RunContext, RunSettings

INITIAL_STATE: LoopState = {
    "cycle": 0,
    "adapter_dir": None,
    "plan": None,
    "accepted": 0,
    "history": [],
    "nodes_run": [],
    "stop_reason": None,
}


def new_run_id(settings: RunSettings) -> str:
    pack = Path(settings.pack).name
    return f"{pack}-{time.strftime('%Y%m%d-%H%M%S')}-s{settings.seed}"


def run_loop(settings: RunSettings | None = None, ui=None, resume: str | None = None) -> str:
    """Run (or, with ``resume=<run_id>``, continue) a loop to its end; returns the run id.

    ``settings.runs_dir`` says where run folders live; a resumed run reads its other settings
    from its own store.
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    from graph.loop import build_graph
    from graph.progress import LoopUI
    from tools.packs import load_pack
    from tools.store import RunStore

    settings = settings or RunSettings()
    ui = ui or LoopUI()
    run_id = resume or new_run_id(settings)
    run_dir = Path(settings.runs_dir) / run_id
    if resume and not (run_dir / "run.db").is_file():
        raise FileNotFoundError(f"--resume {resume}: no run folder {run_dir} with a run.db")
    if not resume:
        load_pack(settings.pack)  # a bad pack fails here, before a run folder exists
    store = RunStore(run_dir / "run.db")
    if resume:
        settings = RunSettings.from_dict(
            {**store.get_meta("settings"), "runs_dir": settings.runs_dir}
        )
    else:
        store.set_meta("settings", settings.to_dict())
    pack = load_pack(settings.pack)
    with ExitStack() as stack:
        clients = _clients(settings, store, stack, ui)
        context = RunContext(
            run_id=run_id,
            run_dir=run_dir,
            settings=settings,
            pack=pack,
            store=store,
            clients=clients,
            ui=ui,
        )
        connection = sqlite3.connect(run_dir / "checkpoints.db", check_same_thread=False)
        stack.callback(connection.close)
        app = build_graph().compile(checkpointer=SqliteSaver(connection))
        config = {
            "configurable": {"thread_id": run_id},
            "recursion_limit": 12 + 6 * settings.cycles,
        }
        snapshot = app.get_state(config)
        if resume and snapshot.values and not snapshot.next:
            ui.log(f"run {run_id} already finished ({snapshot.values.get('stop_reason')})")
            return run_id
        ui.log(
            f"run {run_id}: pack {pack.name}, student {settings.student}, llm {settings.llm}, "
            f"{settings.cycles} cycles x {settings.budget} examples -> {run_dir}"
        )
        app.invoke(None if snapshot.values else dict(INITIAL_STATE), config, context=context)
    store.close()
    return run_id


def _clients(settings: RunSettings, store, stack: ExitStack, ui) -> dict:
    """One ChatClient per role that has an endpoint (none for ``--llm none``)."""
    from agents.endpoints import (
        ROLES,
        ChatClient,
        LocalServer,
        endpoints_from_file,
        endpoints_from_flag,
    )

    if settings.llm == "local":
        from training.student_model import smollm2_dir

        ui.log("starting transformers serve on 127.0.0.1 with the packaged SmolLM2 ...")
        server = stack.enter_context(LocalServer(smollm2_dir()))
        ui.log(f"local endpoint ready at {server.base_url}")
        configs = {role: server.endpoint(max_tokens=settings.llm_max_tokens) for role in ROLES}
    else:
        configs = endpoints_from_flag(settings.llm, settings.llm_model, settings.llm_max_tokens)
    if settings.endpoints:
        configs |= endpoints_from_file(Path(settings.endpoints))
    return {role: ChatClient(role, config, store) for role, config in configs.items()}


def load_state(run_dir: Path, run_id: str) -> dict:
    """The latest checkpointed loop state of a run (empty if it never checkpointed)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from graph.loop import build_graph

    connection = sqlite3.connect(Path(run_dir) / "checkpoints.db", check_same_thread=False)
    try:
        app = build_graph().compile(checkpointer=SqliteSaver(connection))
        return dict(app.get_state({"configurable": {"thread_id": run_id}}).values)
    finally:
        connection.close()
