"""Studio for real: ``langgraph dev`` (the in-memory LangGraph server, which refuses blocking
calls in its event loop) serves ``langgraph.json``'s graph, and a one-cycle tiny loop with every
role on a loopback endpoint runs through ``langgraph_sdk``, its progress streamed as custom
events."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from failforward.tools.store import RunStore
from tests.fake_endpoint import FakeEndpoint
from tests.scripted import arithmetic_roles, studio_input

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``langgraph dev`` on a free loopback port, from a folder of its own (its state goes
    there), serving the project's graph; stopped with its process group."""
    if not LANGGRAPH.is_file():
        pytest.fail("langgraph-cli is missing: pip install -e '.[dev]'")
    folder = tmp_path_factory.mktemp("studio")
    config = json.loads((ROOT / "langgraph.json").read_text())
    file, name = config["graphs"]["failforward"].split(":")
    config = {"dependencies": [str(ROOT)], "graphs": {"failforward": f"{ROOT / file}:{name}"}}
    (folder / "langgraph.json").write_text(json.dumps(config))
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--port", str(port)],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "LANGGRAPH_NO_BROWSER": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not start:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _stream(url: str, settings: dict) -> list:
    from langgraph_sdk import get_client

    async def run() -> list:
        client = get_client(url=url)
        parts = []
        stream = client.runs.stream(
            None, "failforward", input={"settings": settings}, stream_mode=["custom", "values"]
        )
        async for part in stream:
            parts.append(part)
        return parts

    return asyncio.run(run())


def test_a_loop_with_endpoints_runs_under_langgraph_dev_and_streams_progress(
    server, small_pack, tmp_path
):
    with FakeEndpoint(arithmetic_roles) as endpoint:
        settings = studio_input(
            small_pack, tmp_path / "runs", llm=endpoint.base_url, llm_model="scripted"
        )
        parts = _stream(server, settings)
        asked = len(endpoint.requests)
    errors = [p.data for p in parts if p.event == "error"]
    assert not errors
    final = [p.data for p in parts if p.event == "values"][-1]
    assert final["stop_reason"] == "cycles done" and final["cycle"] == 1
    run_dir = Path(final["run_dir"])
    store = RunStore(run_dir / "run.db")
    calls = store.db.execute("SELECT role, COUNT(*) FROM llm_calls GROUP BY role").fetchall()
    assert {role for role, _ in calls} >= {"teacher", "analyst"} and asked > 0
    assert store.examples(cycle=1, accepted=True)
    assert (run_dir / "report.md").is_file()
    custom = [p.data for p in parts if p.event == "custom"]
    progress = [e for e in custom if e["kind"] == "progress"]
    assert any(e["task"] == "cycle 0: evaluate test" and e["completed"] == e["total"]
               for e in progress)  # fmt: skip
    assert [e["row"]["cycle"] for e in custom if e["kind"] == "cycle"] == [0, 1]
    assert any(e["kind"] == "log" and "critic" in e["message"] for e in custom)
    (plan,) = [e for e in custom if e["kind"] == "plan"]  # one cycle: one plan, as stored
    assert plan["plan"] == store.plans()[0].model_dump(mode="json")
    (verdicts,) = [e for e in custom if e["kind"] == "verdicts"]
    assert verdicts["by_source"] == store.verdicts_by_source(1)


def test_a_wrong_setting_is_named_in_the_error(server, tmp_path):
    parts = _stream(server, {"cycles": "two", "runs_dir": str(tmp_path / "runs")})
    (error,) = [p.data for p in parts if p.event == "error"]
    assert error["message"] == "settings: --cycles: expected an integer, got 'two'"
    assert not (tmp_path / "runs").exists()
