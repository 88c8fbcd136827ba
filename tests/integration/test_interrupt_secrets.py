"""Ctrl-C stops a real run cleanly and says how to resume; an API key planted in the environment
and in a key file reaches the endpoint and nothing the run writes (store, checkpoints, logs,
reports, exports)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from failforward.app.cli import app
from failforward.app.doctor import check_run
from tests.fake_endpoint import FakeEndpoint
from tests.scripted import arithmetic_roles, cached_prompts, nodes_done

KEY = "sk-planted-7f3a9c1e5b2d4806"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "failforward.app.cli", *args]


def _judged(run_db: Path) -> bool:
    """Whether a judge reply is stored yet (read-only: the run is writing)."""
    import sqlite3

    try:
        connection = sqlite3.connect(f"file:{run_db}?mode=ro", uri=True, timeout=5)
        try:
            return bool(
                connection.execute("SELECT 1 FROM llm_calls WHERE role = 'critic'").fetchone()
            )
        finally:
            connection.close()
    except sqlite3.OperationalError:
        return False


def test_ctrl_c_then_resume_and_the_key_is_nowhere(
    crash_pack, tmp_path, tiny_student_dir, monkeypatch
):
    runs, log = tmp_path / "runs", tmp_path / "console.log"
    key_file = tmp_path / "critic.key"
    key_file.write_text(KEY + "\n")
    endpoints = tmp_path / "endpoints.yaml"
    env = {**os.environ, "FF_PLANTED_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    with FakeEndpoint(arithmetic_roles, latency=0.2, api_key=KEY) as server:
        role = {"base_url": server.base_url, "model": "m", "concurrency": 1}
        endpoints.write_text(
            yaml.safe_dump(
                {
                    "teacher": {**role, "api_key_env": "FF_PLANTED_KEY"},
                    "analyst": {**role, "api_key_env": "FF_PLANTED_KEY"},
                    "critic": {**role, "api_key_file": str(key_file)},
                }
            )
        )
        command = _cli(
            "run", "--pack", str(crash_pack), "--student", "tiny", "--endpoints",
            str(endpoints), "--cycles", "1", "--budget", "24", "--runs-dir", str(runs),
        )  # fmt: skip
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                # A shell without job control starts background jobs with SIGINT ignored, and
                # the child would inherit that; Ctrl-C reaches a foreground run.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
            deadline = time.monotonic() + 300
            # the runs folder may exist a moment before the run's own folder does
            while not (dbs := list(runs.glob("*/run.db"))) or "generate_examples" not in (
                nodes_done(dbs[0])
            ):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
            while not _judged(next(runs.iterdir()) / "run.db"):  # the critic is judging,
                assert process.poll() is None and time.monotonic() < deadline  # one at a time
                time.sleep(0.02)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 130
        run_dir = next(runs.iterdir())
        said = " ".join(log.read_text().split())
        assert f"failforward run --resume {run_dir.name} --runs-dir {runs}" in said
        assert "critique_examples" not in nodes_done(run_dir / "run.db")
        cached = cached_prompts(run_dir / "run.db")
        assert any(p.startswith("You review") for p in cached)  # judged before the stop: kept
        assert not check_run(run_dir)[1]

        sent_from = len(server.requests)
        with log.open("a") as out:
            resumed = subprocess.run(
                _cli("run", "--resume", run_dir.name, "--runs-dir", str(runs)),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        assert resumed.returncode == 0, log.read_text()[-3000:]
        assert not cached & set(server.requests[sent_from:])  # nothing judged is asked again
        assert all(h["authorization"] == f"Bearer {KEY}" for h in server.headers)

    # Exports and the report read only the store: in this process (the key still in the
    # environment), through the same command line.
    monkeypatch.setenv("FF_PLANTED_KEY", KEY)
    for args in [
        *(["export", run_dir.name, "--format", f, "--out", str(tmp_path / f"export-{f}")]
          for f in ("jsonl", "parquet", "hf")),
        ["report", run_dir.name],
    ]:  # fmt: skip
        done = CliRunner().invoke(app, [*args, "--runs-dir", str(runs)])
        assert done.exit_code == 0, done.output[-2000:]
        with log.open("a") as out:
            out.write(done.output)

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != key_file]
    # Every kind of artifact is there to be searched: stores, weights, reports, exports.
    assert {".db", ".safetensors", ".md", ".html", ".jsonl", ".parquet", ".arrow"} <= {
        p.suffix for p in files
    }
    holding = [str(p.relative_to(tmp_path)) for p in files if KEY.encode() in p.read_bytes()]
    assert holding == [], holding
    assert KEY[:12] not in Path(log).read_text()
