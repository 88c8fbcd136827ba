"""The endpoint path for real: `transformers serve` on loopback with the tiny student as the LLM.

The tiny model writes nonsense, which is the point: the client, the call cache, token accounting
and the parsers must cope with whatever a real server sends back.
"""

import pytest

from failforward.agents.endpoints import ChatClient, LocalServer
from failforward.agents.generator import generate_llm
from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import GenerationPlan, PlanTarget
from failforward.tools.store import RunStore

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def server(tiny_student_dir):
    with LocalServer(tiny_student_dir) as running:
        yield running
    assert running.process.poll() is not None  # stopped on exit


def test_client_round_trip_usage_and_cache(server, tmp_path):
    store = RunStore(tmp_path / "run.db")
    client = ChatClient("teacher", server.endpoint(max_tokens=16), store)
    replies = client.complete(["Write one sum.", "Write two sums."], system="Be brief.")
    assert all(isinstance(r, str) for r in replies)
    usage = store.token_usage()["teacher"]
    assert usage["calls"] == 2 and usage["prompt"] > 0 and usage["completion"] > 0

    offline = ChatClient("teacher", server.endpoint(base_url="http://127.0.0.1:9/v1"), store)
    assert offline.complete(["Write one sum.", "Write two sums."], system="Be brief.") == replies


def test_the_server_batches_requests_in_a_bounded_cache(server, tmp_path):
    """Continuous batching: 16 prompts, 8 in flight, every one answered; the paged KV cache is
    sized for 8 requests of 2,048 tokens, not from the machine's memory (left to size itself,
    transformers took 14 GiB on this 24 GiB machine)."""
    store = RunStore(tmp_path / "run.db")
    config = server.endpoint(max_tokens=24)
    assert config.concurrency == 8
    done = []
    client = ChatClient("teacher", config, store)
    replies = client.complete([f"Write sum number {i}." for i in range(16)], advance=done.append)
    assert all(isinstance(r, str) for r in replies) and not client.errors
    assert sum(done) == 16  # the progress callback counted every reply
    status = open(f"/proc/{server.process.pid}/status").read()
    peak_kib = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1])
    assert peak_kib < 4 * 1024 * 1024, f"server peak RSS {peak_kib / 1024**2:.1f} GiB"


def test_teacher_through_real_endpoint(server, tmp_path):
    pack = load_pack("arithmetic")
    client = ChatClient("teacher", server.endpoint(max_tokens=24), RunStore(tmp_path / "run.db"))
    plan = GenerationPlan(
        cycle=1,
        mode="targeted",
        targets=[
            PlanTarget(target_id="t", name="x", description="d", budget=8, exemplars=["1 + 2 ="])
        ],
    )
    candidates = generate_llm(client, pack, plan)  # nonsense replies parse to nothing, not a crash
    assert len(candidates) <= plan.budget
    assert client.store.token_usage()["teacher"]["calls"] == 2 and not client.errors


def test_judge_through_real_endpoint(server, tmp_path):
    from failforward.agents.critic import CriticLLM, Screen, critique
    from failforward.tools.records import Candidate, Lineage
    from failforward.tools.verify.verifiers import arithmetic_expression, numeric

    pack = load_pack("arithmetic")
    store = RunStore(tmp_path / "run.db")
    client = ChatClient("critic", server.endpoint(max_tokens=32), store)
    lineage = Lineage(cycle=1, target_id="t", source="llm")
    candidates = [
        Candidate(question=q, answer=a, lineage=lineage)
        for q, a in [("1 + 2 =", "3"), ("5 - 7 =", "-2"), ("4 + 4 =", "9")]
    ]
    _, verdicts = critique(
        candidates, numeric, arithmetic_expression, Screen([], []), llm=CriticLLM(client, pack, 1)
    )
    # The tiny model never writes the JSON verdict: each verified item is asked, repaired twice,
    # then rejected as judge_unparseable; the wrong one never reaches the judge.
    assert [v.reason for v in verdicts] == [
        "judge_unparseable",
        "judge_unparseable",
        "wrong_answer",
    ]
    assert "after 3 request(s)" in verdicts[0].detail
    assert store.token_usage()["critic"]["calls"] == 6 and not client.errors


def test_loop_with_url_endpoints(server, small_pack, tmp_path, quiet_ui):
    settings = RunSettings.from_options(
        pack=str(small_pack),
        student="tiny",
        llm=server.base_url,
        llm_model=server.model_dir,
        llm_max_tokens=24,
        cycles=1,
        budget=4,
        runs_dir=str(tmp_path / "runs"),
    )
    run_id = run_loop(settings, ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    usage, plan = store.token_usage(), store.plans()[0]
    assert usage["teacher"]["calls"] == len(plan.targets)  # one call per target at this budget
    named = [c for c in store.clusters(1) if not c.outlier]
    assert usage["analyst"]["calls"] == len(named)  # one naming call per cluster
    assert "LLM tokens per role" in (tmp_path / "runs" / run_id / "report.md").read_text()


def test_loop_with_a_critic_endpoint_only(server, small_pack, tmp_path, quiet_ui):
    settings = RunSettings.from_options(
        pack=str(small_pack),
        student="tiny",
        llm=f"critic={server.base_url}",
        llm_model=server.model_dir,
        llm_max_tokens=16,
        cycles=1,
        budget=4,
        runs_dir=str(tmp_path / "runs"),
    )
    run_id = run_loop(settings, ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    rows = store.examples(cycle=1)
    judged = [r for r in rows if r["step"] == "judge"]
    # procedural teacher; every verified candidate went to the judge, whose nonsense is rejected
    assert {r["source"] for r in rows} == {"procedural"} and judged
    assert {r["reason"] for r in judged} == {"judge_unparseable"}
    assert all(r["scores"]["verify"] == 1.0 for r in judged)
    assert store.token_usage()["critic"]["calls"] == 3 * len(judged)
    assert store.metrics()[1]["train_examples"] == 0
    report = (tmp_path / "runs" / run_id / "report.md").read_text()
    assert "| source | accepted | rejected |" in report and "judge_unparseable" in report


def test_server_failure_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="transformers serve exited"):
        with LocalServer(tmp_path / "not-a-model", startup_timeout=60):
            pass


@pytest.mark.slow  # 21 s; augment runs on a loopback endpoint in test_augment_graph
def test_augment_through_a_real_server(server, tmp_path, quiet_ui):
    """The augmentation graph against `transformers serve`: the tiny model's rewrites are
    nonsense, and the critic must sort every one of them without crashing."""
    import shutil

    import yaml

    from failforward.app.augment import run_augment
    from failforward.graph.settings import AugmentSettings
    from failforward.tools.augment.store import AugmentStore
    from failforward.tools.packs.pack import PACKS_DIR

    pack = tmp_path / "rephrase"
    shutil.copytree(PACKS_DIR / "rephrase", pack)
    spec = yaml.safe_load((pack / "augment.yaml").read_text())
    spec["max_tokens"], spec["chunk_tokens"] = 24, 120
    (pack / "augment.yaml").write_text(yaml.safe_dump(spec))
    settings = AugmentSettings.from_options(
        pack=str(pack),
        docs=3,
        heldout=0.34,
        styles="simplified",
        mode="rephrase",
        llm=server.base_url,
        llm_model=server.model_dir,
        runs_dir=str(tmp_path / "runs"),
    )
    _, folder = run_augment(settings, ui=quiet_ui)
    store = AugmentStore(folder / "augment.db")
    rewrites = store.rewrites()
    assert rewrites and all(r.reason != "pending" for r in rewrites)
    chunks = len(store.chunks())
    assert store.token_usage()["teacher"]["calls"] >= chunks  # one rewrite per chunk, + refines
    assert (folder / "corpus.jsonl").is_file() and (folder / "report.md").is_file()
