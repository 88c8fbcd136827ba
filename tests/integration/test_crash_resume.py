"""Kill a real ``failforward run`` with SIGKILL inside each node, resume it each time, and check
that the result is the uninterrupted run's: nothing lost, nothing stored twice, no completed LLM
call sent again, training restarted from the last saved checkpoint, a sound store."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from failforward.app.doctor import check_run
from failforward.tools.store import RunStore
from tests.fake_endpoint import FakeEndpoint
from tests.scripted import arithmetic_roles, cached_prompts, nodes_done

# One cycle's nodes in the order they run; each is killed once, somewhere inside.
ORDER = [
    "bootstrap",
    "evaluate_student",
    "analyze_failures",
    "generate_examples",
    "critique_examples",
    "train_student",
    "evaluate_student",
    "write_report",
]


def _command(pack: Path, runs: Path, endpoints: Path) -> list[str]:
    return [
        sys.executable, "-m", "failforward.app.cli", "run", "--pack", str(pack),
        "--student", "tiny", "--endpoints", str(endpoints), "--cycles", "1", "--budget", "24",
        "--objective", "sft+dpo", "--runs-dir", str(runs),
    ]  # fmt: skip


def _resume(run_id: str, runs: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "failforward.app.cli",
        "run",
        "--resume",
        run_id,
        "--runs-dir",
        str(runs),
    ]


def _start(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    return subprocess.Popen(command, stdout=log.open("a"), stderr=subprocess.STDOUT, env=env)


def _weights(run_dir: Path) -> bytes:
    folder = run_dir / "checkpoints" / "cycle-1" / "student"
    return b"".join(p.read_bytes() for p in sorted(folder.glob("*.safetensors")))


# 90 s; test_loop_e2e's crash-then-resume keeps a crash and resume in the fast suite
@pytest.mark.slow
def test_sigkill_inside_every_node_then_resume(crash_pack, tmp_path, tiny_student_dir):
    endpoints = tmp_path / "endpoints.yaml"
    log = tmp_path / "runs.log"
    rng = random.Random(int(os.environ.get("FAILFORWARD_KILL_SEED", "0")))
    with FakeEndpoint(arithmetic_roles, latency=0.1) as server:
        role = {"base_url": server.base_url, "model": "m", "concurrency": 2, "timeout": 30}
        endpoints.write_text(yaml.safe_dump({r: role for r in ("teacher", "critic", "analyst")}))

        # The uninterrupted run: what the killed one must end up as, and how long each node takes.
        reference_runs = tmp_path / "reference"
        done = subprocess.run(
            _command(crash_pack, reference_runs, endpoints), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        reference = next(reference_runs.iterdir())
        ref_store = RunStore(reference / "run.db")
        seconds = [r["seconds"] for r in ref_store.node_runs()]
        assert [r["node"] for r in ref_store.node_runs()] == ORDER
        reference_requests = len(server.requests)

        runs = tmp_path / "runs"
        process = _start(_command(crash_pack, runs, endpoints), log)
        started = len(server.requests)  # where the running process's requests begin
        cached_at_start: list[set[str]] = [set()]  # per process: prompts cached when it started
        sent_by: list[list[str]] = []  # per process: the prompts it sent
        landed: list[str] = []
        run_db = None
        for position, node in enumerate(ORDER):
            # Wait for the node before it to finish (the first: for the run folder to appear).
            deadline = time.monotonic() + 300
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"timed out waiting for {node}"
                # a run folder appears whole (made hidden, renamed once its store is recorded)
                folders = (
                    [f for f in runs.iterdir() if not f.name.startswith(".")]
                    if (runs.is_dir())
                    else []
                )
                run_db = folders[0] / "run.db" if folders else None
                if run_db and len(nodes_done(run_db)) >= position:
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.1, 0.8) * seconds[position])
            process.send_signal(signal.SIGKILL)
            process.wait()
            sent_by.append(server.requests[started:])
            completed = nodes_done(run_db)
            landed.append(ORDER[len(completed)] if len(completed) < len(ORDER) else "after the end")
            # A killed run's store is sound as it stands, and resumes.
            _, problems = check_run(run_db.parent)
            assert not problems, (node, problems)
            cached_at_start.append(cached_prompts(run_db))
            process = _start(_resume(run_db.parent.name, runs), log)
            started = len(server.requests)
        assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
        sent_by.append(server.requests[started:])

    run_dir = run_db.parent
    print(f"kills landed in: {', '.join(landed)}; requests: {len(server.requests)}")
    # The kills landed inside the nodes they aimed at (a node shorter than the wait for its
    # predecessor's record may be caught just after: then the next node was hit instead).
    assert sum(a == b for a, b in zip(landed, ORDER, strict=True)) >= 5, landed
    # No completed call was sent again: every process sent only prompts not cached at its start.
    for cached, sent in zip(cached_at_start, sent_by, strict=True):
        assert not cached & set(sent), sorted(cached & set(sent))[:3]
    # In all: the uninterrupted run's requests, plus at most those in flight at each kill.
    resent = len(server.requests) - 2 * reference_requests
    assert 0 <= resent <= 2 * len(ORDER), resent
    store, ref = RunStore(run_dir / "run.db"), RunStore(reference / "run.db")
    accepted = sorted((r["question"], r["answer"]) for r in store.examples(accepted=True))
    assert accepted == sorted((r["question"], r["answer"]) for r in ref.examples(accepted=True))
    assert len(accepted) == len(set(accepted)) > 0
    assert store.pairs(1) and [p["chosen"] for p in store.pairs(1)] == [
        p["chosen"] for p in ref.pairs(1)
    ]
    # Training restarted from the last saved checkpoint (the base model) and so ended where the
    # uninterrupted run did, weight for weight; and evaluated the same.
    assert _weights(run_dir) == _weights(reference)
    assert store.metrics()[1]["test_acc"] == ref.metrics()[1]["test_acc"]
    passed, problems = check_run(run_dir)
    assert not problems and len(passed) == 12  # eleven before, and "no node failed"
    assert any(p.startswith("regression guard: 1 cycle(s) compared") for p in passed)
    assert (run_dir / "report.md").is_file()
