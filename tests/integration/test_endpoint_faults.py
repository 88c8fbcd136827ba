"""The endpoint path against a real loopback server that misbehaves on purpose: every fault kind
alone, 30% of calls faulted, endpoints that cannot work at start, and a whole run under faults."""

import json
import re
import time

import pytest

from failforward.agents.endpoints import ChatClient, EndpointConfig, check_endpoints
from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.store import RunStore
from tests.fake_endpoint import FAULTS, FakeEndpoint
from tests.scripted import arithmetic_roles

# What the client calls each injected fault (None: not a fault to the client).
SEEN_AS = {
    "rate_limit": "rate_limited",
    "rate_limit_retry_after": "rate_limited",
    "server_error": "server_error",
    "unavailable": "server_error",
    "reset": "connection",
    "timeout": "timeout",
    "slow": None,
    "truncated": "connection",
    "malformed": "malformed",
    "empty_choices": "bad_reply",
    "wrong_schema": "bad_reply",
}


def _echo(prompt: str) -> str:
    return f"reply to {prompt}"


def _config(server, **extra):
    options = dict(model="m", timeout=1.0, retries=3, backoff=0.01, concurrency=8)
    return EndpointConfig(base_url=server.base_url, **{**options, **extra})


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_kind_is_survived(fault, tmp_path):
    options = dict(fail_first=1, faults=(fault,), retry_after=0.3, hang=5.0, slow=0.2)
    with FakeEndpoint(_echo, **options) as server:
        client = ChatClient("teacher", _config(server), RunStore(tmp_path / "run.db"))
        started = time.monotonic()
        assert client.complete(["q1", "q2"]) == ["reply to q1", "reply to q2"]
        elapsed = time.monotonic() - started
    assert server.faults == {fault: 2} and not client.errors
    if SEEN_AS[fault] is None:  # slow but inside the timeout: one attempt each
        assert len(server.requests) == 2 and client.retried == 0
    else:
        assert client.faults == {SEEN_AS[fault]: 2} and client.retried == 2
        assert len(server.requests) == 4
    if fault == "rate_limit_retry_after":
        assert elapsed >= 0.3  # waited as asked, not the 10 ms backoff
    if fault == "timeout":
        assert elapsed < 4.0  # gave up at the 1 s timeout, not the server's 5 s hang


def test_thirty_percent_faults_lose_nothing(tmp_path):
    prompts = [f"question {i}" for i in range(300)]
    options = dict(fault_rate=0.3, retry_after=0.05, hang=3.0, slow=0.05, seed=7)
    with FakeEndpoint(_echo, **options) as server:
        store = RunStore(tmp_path / "run.db")
        client = ChatClient("teacher", _config(server, retries=6, concurrency=32), store)
        replies = client.complete(prompts)
    faulted = sum(server.faults.values())
    assert 0.2 <= faulted / len(server.requests) <= 0.4
    assert set(server.faults) == set(FAULTS)  # every kind came up
    answered = [r for r in replies if r is not None]
    assert all(r == _echo(p) for p, r in zip(prompts, replies, strict=True) if r is not None)
    # Whatever did not come back is accounted for, one failure row per lost request.
    assert len(answered) + len(store.call_failures()) == len(prompts)
    assert len(client.errors) == len(store.call_failures())
    assert len(answered) >= 295 and store.token_usage()["teacher"]["calls"] == len(answered)
    # A second pass (a resumed run) sends only what had failed.
    with FakeEndpoint(_echo) as again:
        retry = ChatClient("teacher", _config(again), store)
        assert retry.complete(prompts) == [_echo(p) for p in prompts]
    assert len(again.requests) == len(prompts) - len(answered)


def test_an_unreachable_endpoint_is_named_before_any_work(tmp_path):
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ValueError, match=r"critic endpoint http://127.0.0.1:9/v1 is unreachable"):
        check_endpoints({"critic": config}, timeout=2)


def test_a_rejected_key_is_named_by_its_source_never_by_value(monkeypatch):
    monkeypatch.setenv("TEAM_KEY", "sk-wrong-123")
    with FakeEndpoint(api_key="sk-right-456") as server:
        config = EndpointConfig(base_url=server.base_url, model="m", api_key_env="TEAM_KEY")
        with pytest.raises(
            ValueError, match=r"teacher endpoint .* rejects the API key from \$TEAM_KEY"
        ) as err:
            check_endpoints({"teacher": config})
        assert "sk-wrong-123" not in str(err.value) and "sk-right-456" not in str(err.value)
        monkeypatch.setenv("TEAM_KEY", "sk-right-456")
        check_endpoints({"teacher": config})  # the right key passes


def test_a_run_with_an_unusable_endpoint_makes_no_folder(small_pack, tmp_path, quiet_ui):
    settings = RunSettings.from_options(
        pack=str(small_pack),
        student="tiny",
        llm="teacher=http://127.0.0.1:9/v1",
        llm_model="m",
        runs_dir=str(tmp_path / "runs"),
    )
    with pytest.raises(ValueError, match="teacher endpoint http://127.0.0.1:9/v1 is unreachable"):
        run_loop(settings, ui=quiet_ui)
    assert not (tmp_path / "runs").exists()


def test_a_run_with_thirty_percent_of_calls_faulted_completes(small_pack, tmp_path, quiet_ui):
    endpoints = tmp_path / "endpoints.yaml"
    options = dict(fault_rate=0.3, retry_after=0.05, hang=2.0, slow=0.05, seed=3)
    with FakeEndpoint(arithmetic_roles, **options) as server:
        role = {"base_url": server.base_url, "model": "m", "timeout": 1.0, "backoff": 0.01}
        endpoints.write_text(json.dumps({r: role for r in ("teacher", "critic", "analyst")}))
        settings = RunSettings.from_options(
            pack=str(small_pack),
            student="tiny",
            endpoints=str(endpoints),
            cycles=1,
            budget=16,
            objective="sft",
            runs_dir=str(tmp_path / "runs"),
        )
        run_id = run_loop(settings, ui=quiet_ui)
    run_dir = tmp_path / "runs" / run_id
    store = RunStore(run_dir / "run.db")
    assert sum(server.faults.values()) > 0
    usage = store.token_usage()
    assert {"teacher", "critic", "analyst"} <= set(usage)
    assert store.metrics()[1]["train_examples"] > 0
    report = (run_dir / "report.md").read_text()
    assert "## LLM calls per role" in report
    retried = store.call_faults()
    assert sum(sum(f["retried"].values()) for f in retried.values()) > 0
    assert re.search(r"\| [1-9]\d* \((?:[a-z_]+ \d+(?:, )?)+\) \|", report)  # retried, by kind
    failed = {f["role"] for f in store.call_failures()}
    for role in failed:  # anything lost after retries is in the report, by role
        assert re.search(rf"\| {role} \|.*\| [1-9]\d* \|", report)
