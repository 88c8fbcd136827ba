"""``--executor ray`` on a real local Ray instance (started for the module): the student answers on
Ray workers and the run's results are the ones ``--executor local`` gives."""

from __future__ import annotations

import os
import signal

import pytest

from failforward.agents.student import BASE_REPLIES, generate, student_messages
from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import load_pack
from failforward.tools.store import RunStore
from failforward.training.student_model import load_student

ray = pytest.importorskip("ray")


def _results(run_dir):
    store = RunStore(run_dir / "run.db")
    rows = store.db.execute(
        "SELECT cycle, split, idx, output, score FROM attempts ORDER BY cycle, split, idx"
    ).fetchall()
    out = {
        "attempts": [tuple(r) for r in rows],
        "accepted": [(e["question"], e["answer"]) for e in store.examples(accepted=True)],
        "pairs": [(p["question"], p["chosen"], p["rejected"]) for p in store.pairs()],
        "test_acc": {c: m["test_acc"] for c, m in store.metrics().items() if "test_acc" in m},
    }
    store.close()
    return out


@pytest.mark.slow  # 48 s; real Ray stays in the fast suite through the embeddings test below
def test_one_cycle_on_ray_workers_matches_the_local_run(
    local_ray, small_pack, tmp_path, quiet_ui, tiny_student_dir
):
    runs = {}
    for executor in ("local", "ray"):
        BASE_REPLIES.clear()  # each run's cycle 0 is answered where its executor says
        settings = RunSettings.from_options(
            pack=str(small_pack),
            runs_dir=str(tmp_path / executor),
            student="tiny",
            llm="none",
            cycles=1,
            budget=16,
            objective="sft+dpo",
            executor=executor,
            ray_workers=2,
            eval_batch_size=8,
        )
        run_id = run_loop(settings, ui=quiet_ui)
        runs[executor] = _results(tmp_path / executor / run_id)
    local, remote = runs["local"], runs["ray"]
    assert len(local["attempts"]) == 2 * (40 + 60)  # probe and test, before and after training
    assert local["accepted"] and local["pairs"]
    assert remote == local


# 20 s; the one-cycle test keeps Ray workers answering in the fast suite
@pytest.mark.slow
def test_a_worker_killed_during_evaluation_changes_no_reply(local_ray, tiny_student_dir):
    from failforward.agents.workers import StudentWorkers

    pack = load_pack("arithmetic")
    items = pack.make_source().sample(48, seed=3)
    prompts = [student_messages(pack, item.question) for item in items]
    model, tokenizer = load_student(tiny_student_dir)
    expected = generate(model, tokenizer, prompts, 12, batch_size=4)

    workers = StudentWorkers(tiny_student_dir, lora_rank=16, workers=2)
    before = workers.pids()
    killed = []

    def kill_every_worker_once(_n: int) -> None:
        if not killed:  # both workers hold a batch now (12 batches for 2 workers)
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            killed.extend(before)

    replies = workers.replies_for(None, batch_size=4, on_batch=kill_every_worker_once)(prompts, 12)
    assert killed == before
    assert replies == expected
    after = workers.pids()
    workers.close()
    assert not set(after) & set(before)  # Ray started both again


def test_embeddings_on_ray_workers_are_the_ones_made_here(local_ray):
    import numpy as np

    from failforward.agents.workers import ray_embedder
    from failforward.tools.embed.embeddings import embed

    texts = [f"What is {a} + {b}?" for a in range(6) for b in range(5)]  # 30 texts, 8 blocks
    here, there = embed(texts), ray_embedder(workers=2, block=4)(texts)
    assert there.shape == here.shape == (30, 384)
    assert np.abs(there - here).max() < 1e-5
