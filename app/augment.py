"""``failforward augment``: open or resume an augmentation run and drive its graph
(:mod:`graph.augment`) to the end."""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from pathlib import Path

from failforward.agents.endpoint_settings import EndpointSettings
from failforward.agents.endpoints import check_endpoints
from failforward.app.runner import (
    check_runs_dir,
    connect_roles,
    free_folder_name,
    open_session,
    resume_folder,
)
from failforward.graph.augment import AugmentContext, build_augment_graph
from failforward.graph.events import Events
from failforward.graph.settings import AugmentSettings
from failforward.tools.augment.corpus import DEFAULT_CORPUS, load_corpus
from failforward.tools.augment.pack import load_augment_pack
from failforward.tools.augment.store import AugmentStore


def run_augment(settings: AugmentSettings, ui=None, resume: str | None = None) -> tuple[str, Path]:
    """Run (or resume) an augmentation; returns the run id and folder."""
    from failforward.app.progress import LoopUI

    ui = ui or LoopUI()
    if resume:
        folder = resume_folder(settings.runs_dir, resume, "augment.db", "augmentation folder")
        run_id, run_dir = resume, folder
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
        roles = _role_settings(settings, pack, new=not resume)
        if not resume:
            run_id = _new_augment_id(settings)
            run_dir = Path(settings.runs_dir) / run_id
            store = AugmentStore(run_dir / "augment.db")
            stack.callback(store.close)
            store.set_meta("settings", settings.to_dict())
        session = open_session(stack, build_augment_graph, run_dir, run_id)
        if resume and session.finished:
            ui.log(f"augmentation {run_id} already finished")
            return run_id, run_dir
        clients = connect_roles(roles, store, stack, ui)
        teacher, critic = clients.teacher, clients.critic
        context = AugmentContext(
            run_id, run_dir, settings, pack, store, teacher, critic, Events(ui.show)
        )
        ui.log(f"augmentation {run_id}: {settings.corpus}, mode {settings.mode} -> {run_dir}")
        session.run({"mode": settings.mode, "nodes_run": []}, context)
    return run_id, run_dir


def _role_settings(settings: AugmentSettings, pack, new: bool) -> EndpointSettings:
    """The endpoint settings of an augmentation (replies up to the pack's limit unless
    ``--llm-max-tokens`` says otherwise), its endpoints checked (a new one needs a teacher)."""
    roles = settings.endpoints
    roles = dataclasses.replace(roles, max_tokens=roles.max_tokens or pack.spec.max_tokens)
    remote = roles.remote()
    check_endpoints(remote)
    if new and "teacher" not in remote and not roles.local:
        raise ValueError(
            "augment needs a teacher endpoint: --llm local, --llm <url> or --endpoints FILE"
        )
    return roles


def _new_augment_id(settings: AugmentSettings) -> str:
    """``augment-<corpus>-<date>-<time>``, in a runs folder checked to be writable."""
    check_runs_dir(settings.runs_dir)
    corpus = Path(settings.corpus).stem if settings.corpus != DEFAULT_CORPUS else settings.corpus
    return free_folder_name(settings.runs_dir, f"augment-{corpus}-{time.strftime('%Y%m%d-%H%M%S')}")
