"""``failforward augment``: open or resume an augmentation run and drive its graph
(:mod:`graph.augment`) to the end."""

from __future__ import annotations

import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

from failforward.app.runner import RunInterrupted
from failforward.graph.augment import (
    AugmentContext,
    AugmentSettings,
    build_augment_graph,
)
from failforward.graph.state import RunSettings
from failforward.tools.augment_store import AugmentStore
from failforward.tools.corpus import DEFAULT_CORPUS, load_corpus


def run_augment(settings: AugmentSettings, ui=None, resume: str | None = None) -> tuple[str, Path]:
    """Run (or resume) an augmentation; returns the run id and folder."""
    from failforward.agents.endpoints import check_endpoints
    from failforward.app.progress import LoopUI
    from failforward.app.runner import (
        check_runs_dir,
        free_folder_name,
        remote_endpoints,
        role_clients,
    )
    from failforward.tools.augment_pack import load_augment_pack
    from langgraph.checkpoint.sqlite import SqliteSaver

    ui = ui or LoopUI()
    if resume:
        run_id, run_dir = resume, Path(settings.runs_dir) / resume
        if not (run_dir / "augment.db").is_file():
            raise FileNotFoundError(f"--resume {resume}: no augmentation folder {run_dir}")
    else:
        settings.check()
        load_corpus(settings.corpus)  # a bad corpus fails before a folder exists
    with ExitStack() as stack:
        if resume:
            store = AugmentStore(run_dir / "augment.db")
            stack.callback(store.close)
            settings = AugmentSettings.from_dict(
                {**store.get_meta("settings"), "runs_dir": settings.runs_dir}
            )
        pack = load_augment_pack(settings.pack)
        roles = RunSettings(
            llm=settings.llm, llm_model=settings.llm_model, endpoints=settings.endpoints,
            llm_max_tokens=pack.spec.max_tokens,
        )  # fmt: skip
        remote = remote_endpoints(roles)
        check_endpoints(remote)
        if not resume:
            if "teacher" not in remote and settings.llm != "local":
                raise ValueError(
                    "augment needs a teacher endpoint: --llm local, --llm <url> or --endpoints FILE"
                )
            check_runs_dir(settings.runs_dir)
            corpus_name = (
                Path(settings.corpus).stem if settings.corpus != DEFAULT_CORPUS else settings.corpus
            )
            run_id = free_folder_name(
                settings.runs_dir, f"augment-{corpus_name}-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            run_dir = Path(settings.runs_dir) / run_id
            store = AugmentStore(run_dir / "augment.db")
            stack.callback(store.close)
            store.set_meta("settings", settings.to_dict())
        clients = role_clients(roles, store, stack, ui)
        store.set_meta("endpoints", {role: c.config.public() for role, c in clients.items()})
        connection = sqlite3.connect(run_dir / "checkpoints.db", check_same_thread=False)
        stack.callback(connection.close)
        app = build_augment_graph().compile(checkpointer=SqliteSaver(connection))
        config = {"configurable": {"thread_id": run_id}}
        snapshot = app.get_state(config)
        if resume and snapshot.values and not snapshot.next:
            ui.log(f"augmentation {run_id} already finished")
            return run_id, run_dir
        context = AugmentContext(
            run_id,
            run_dir,
            settings,
            pack,
            store,
            clients.get("teacher"),
            clients.get("critic"),
            ui,
        )
        ui.log(f"augmentation {run_id}: {settings.corpus}, mode {settings.mode} -> {run_dir}")
        try:
            start = None if snapshot.values else {"mode": settings.mode, "nodes_run": []}
            app.invoke(start, config, context=context)
        except KeyboardInterrupt as stop:
            raise RunInterrupted(run_id) from stop
    return run_id, run_dir
