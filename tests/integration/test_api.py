"""The public Python API (``import failforward``): a graph script opens a run, streams its
graph with LangGraph's own ``stream``, and finds the run where the command line would leave it;
the scripts in ``examples/`` run as a user would run them, on the tiny student."""

import runpy
import sys
from pathlib import Path

import pytest

import failforward as ff
from failforward.app.runner import run_loop
from failforward.tools.store import RunStore
from tests.scripted import load_state

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_package_exports_what_a_graph_script_needs():
    assert set(ff.__all__) <= set(dir(ff))
    assert ff.run is run_loop
    assert "bootstrap" in ff.build_graph().nodes


def test_a_script_streams_a_run_and_resumes_it_where_it_stopped(
    small_pack, tmp_path, quiet_ui, tiny_student_dir
):
    """Stream one node at a time and stop after the first training: the run is left part
    way; opened again by id it streams on from there (no node twice) to the end. The nodes'
    events reach the script's own ui, and say what the store holds."""

    class Recorder(type(quiet_ui)):
        events = []

        def show(self, event):
            self.events.append(event)
            super().show(event)

    recorder = Recorder(quiet_ui.console)
    settings = ff.RunSettings.from_options(
        pack=str(small_pack), student="tiny", llm="none", cycles=1, budget=8,
        runs_dir=str(tmp_path / "runs"),
    )  # fmt: skip
    seen = []
    with ff.open_run(settings, ui=recorder) as run:
        assert run.input is not None and not run.finished
        for update in run.stream(stream_mode="updates"):
            seen += list(update)
            if "train_student" in update:
                break
        run_id = run.run_id
        assert run.input is None  # streaming again goes on from the checkpoint
    assert seen[-1] == "train_student" and "write_report" not in seen
    with ff.open_run(settings, resume=run_id, ui=recorder) as run:
        assert run.input is None and not run.finished
        rest = [node for update in run.stream(stream_mode="updates") for node in update]
        assert run.finished and run.state["stop_reason"] == "cycles done"
    assert rest == ["evaluate_student", "write_report"]
    state = load_state(tmp_path / "runs" / run_id, run_id)
    assert state["nodes_run"] == [*seen, *rest]
    store, kinds = RunStore(tmp_path / "runs" / run_id / "run.db"), {}
    for event in recorder.events:
        kinds.setdefault(type(event).__name__, []).append(event)
    rows = [e.row for e in kinds["CycleRow"]]
    assert [(r["cycle"], r["test_acc"]) for r in rows] == [
        (c, m["test_acc"]) for c, m in sorted(store.metrics().items())
    ]
    assert [e.plan for e in kinds["PlanMade"]] == store.plans()
    assert [e.by_source for e in kinds["Verdicts"]] == [store.verdicts_by_source(1)]
    bars = kinds["Progress"]
    assert {e.task for e in bars} == {e.task for e in bars if e.done}  # every bar closed
    with ff.open_run(settings, resume=run_id, ui=quiet_ui) as run:  # finished: nothing to do
        assert run.finished and list(run.stream()) == []


def test_the_stream_example_prints_each_cycles_row(
    small_pack, tmp_path, monkeypatch, capsys, tiny_student_dir
):
    argv = ["stream_loop.py", "--pack", str(small_pack), "--student", "tiny", "--cycles", "1"]
    argv += ["--budget", "8", "--runs-dir", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / "stream_loop.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "evaluate_student: cycle 0, test accuracy" in out
    assert "evaluate_student: cycle 1, test accuracy" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert f"run {run_dir.name}: cycles done" in out and (run_dir / "report.md").is_file()


def _example(name: str, small_pack, tmp_path, monkeypatch, *extra: str) -> Path:
    """Run ``examples/<name>`` as ``python examples/<name> ...`` would; returns its run folder."""
    argv = [name, "--pack", str(small_pack), "--student", "tiny", "--cycles", "1", "--budget"]
    monkeypatch.setattr(sys, "argv", [*argv, "8", "--runs-dir", str(tmp_path / "runs"), *extra])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_a_filter_node_of_a_script_drops_examples_before_training(
    small_pack, tmp_path, monkeypatch, capsys, tiny_student_dir
):
    """examples/custom_filter.py: its node runs between the critic and training, is recorded
    like the loop's own, and what it drops is rejected with its reason and not trained on."""
    run_dir = _example("custom_filter.py", small_pack, tmp_path, monkeypatch, "--longest", "69")
    store = RunStore(run_dir / "run.db")
    dropped = [e for e in store.examples(1) if e["reason"].startswith("filter: question over")]
    kept = store.examples(1, accepted=True)
    assert dropped and all(len(e["question"]) > 69 for e in dropped)
    assert kept and all(len(e["question"]) <= 69 for e in kept)
    state = load_state(run_dir, run_dir.name)
    at = state["nodes_run"].index("drop_long_questions")
    assert state["nodes_run"][at - 1 : at + 2] == [
        "critique_examples", "drop_long_questions", "train_student",
    ]  # fmt: skip
    assert store.metrics()[1]["train_examples"] == len(kept)
    assert f"dropped {len(dropped)} accepted examples" in capsys.readouterr().out


def test_a_review_interrupts_before_training_and_its_answer_drops_examples(
    small_pack, tmp_path, monkeypatch, capsys, tiny_student_dir
):
    """examples/review.py: the run stops at the review with the cycle's accepted examples; the
    answer (every second one dropped) resumes it from its checkpoint, and training sees the
    rest. The interrupt is not recorded as a failure."""
    run_dir = _example("review.py", small_pack, tmp_path, monkeypatch, "--drop-every", "2")
    store = RunStore(run_dir / "run.db")
    dropped = [e for e in store.examples(1) if e["reason"] == "dropped by review"]
    kept = store.examples(1, accepted=True)
    assert len(dropped) == (len(dropped) + len(kept) + 1) // 2 and kept
    assert [e["id"] for e in sorted(dropped + kept, key=lambda e: e["id"])][::2] == [
        e["id"] for e in dropped
    ]
    state = load_state(run_dir, run_dir.name)
    assert state["stop_reason"] == "cycles done" and state["nodes_run"].count("review") == 1
    assert store.metrics()[1]["train_examples"] == len(kept)
    assert store.get_meta("failure") is None
    assert f"review dropped {len(dropped)} of" in capsys.readouterr().out


def test_a_langchain_chat_model_is_the_teacher_critic_and_analyst(
    small_pack, tmp_path, monkeypatch, capsys, tiny_student_dir
):
    """examples/chat_model_teacher.py: init_chat_model's ChatOpenAI, pointed at a loopback
    endpoint, plays all three roles; its calls are cached and counted like an endpoint's, and a
    resume that does not give the same roles a model is refused by name."""
    from tests.fake_endpoint import FakeEndpoint
    from tests.scripted import arithmetic_roles

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeEndpoint(arithmetic_roles, fault_rate=0.2, faults=("server_error",)) as server:
        run_dir = _example(
            "chat_model_teacher.py", small_pack, tmp_path, monkeypatch,
            "--model", "openai:scripted", "--base-url", server.base_url,
            "--roles", "teacher,critic,analyst", "--requests-per-second", "50",
        )  # fmt: skip
    store = RunStore(run_dir / "run.db")
    usage = store.token_usage()
    assert {"teacher", "critic", "analyst"} <= set(usage)
    assert sum(u["calls"] for u in usage.values()) <= len(server.requests)
    assert server.faults and not store.call_failures()  # ChatOpenAI's retries, then ours
    assert store.metrics()[1]["train_examples"] > 0
    assert store.get_meta("endpoints")["teacher"]["model"] == "scripted"
    out = capsys.readouterr().out
    assert f"teacher: {usage['teacher']['calls']} calls" in out
    settings = ff.RunSettings.from_options(runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match=r"gave LangChain chat models to analyst, critic, teacher"):
        with ff.open_run(settings, resume=run_dir.name):
            pass


def test_the_loop_runs_as_a_subgraph_and_a_gate_reads_what_it_left(
    small_pack, tmp_path, monkeypatch, capsys, tiny_student_dir
):
    """examples/loop_subgraph.py: the parent graph's ``improve`` node is the whole loop (its
    nodes stream from inside it), then the parent's gate releases the checkpoint the loop left
    (a gain of at least -1 always holds) into the parent's own state key."""
    run_dir = _example("loop_subgraph.py", small_pack, tmp_path, monkeypatch, "--min-gain", "-1")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "loop: bootstrap" in lines and "loop: train_student" in lines
    assert lines.index("loop: write_report") < lines.index("pipeline: improve")
    assert lines.index("pipeline: improve") < lines.index("pipeline: gate")
    store = RunStore(run_dir / "run.db")
    assert store.metrics()[1]["train_examples"] > 0
    released = out.strip().splitlines()[-1].split("released ")[1]
    assert (Path(released) / "adapter_config.json").is_file() or Path(released).is_dir()
    assert Path(released).resolve().is_relative_to(run_dir.resolve())


def test_a_pipeline_left_inside_the_loop_resumes_with_no_node_twice(small_pack, tmp_path, quiet_ui):
    """A stream of the parent graph left inside the loop: LangGraph finishes the loop's task
    (one task of the parent) and saves its writes; the run is not taken for finished, and
    resumed it applies them and runs the gate, every loop node having run once."""
    pipeline = runpy.run_path(str(EXAMPLES / "loop_subgraph.py"))["pipeline"]
    settings = ff.RunSettings.from_options(
        pack=str(small_pack), student="tiny", llm="none", cycles=1, budget=8,
        runs_dir=str(tmp_path / "runs"),
    )  # fmt: skip
    with ff.open_run(settings, build=pipeline(-1.0), ui=quiet_ui) as run:
        for _, update in run.stream(stream_mode="updates", subgraphs=True):
            if "analyze_failures" in update:
                break
        assert not run.finished
    with ff.open_run(settings, resume=run.run_id, build=pipeline(-1.0), ui=quiet_ui) as again:
        updates = again.stream(stream_mode="updates", subgraphs=True)
        rest = [node for _, update in updates for node in update if node != "__metadata__"]
        assert again.finished and again.state["release"]
        nodes_run = again.state["nodes_run"]
    assert rest == ["improve", "gate"]
    assert nodes_run == [
        "bootstrap", "evaluate_student", "analyze_failures", "generate_examples",
        "critique_examples", "train_student", "evaluate_student", "write_report",
    ]  # fmt: skip


def test_a_model_that_is_not_a_chat_model_is_named_with_its_role():
    with pytest.raises(ValueError, match=r"models: teacher: str is not a LangChain chat model"):
        with ff.open_run(ff.RunSettings(), models={"teacher": "gpt-4o"}):
            pass
    with pytest.raises(ValueError, match=r"models: unknown role 'judge'"):
        with ff.open_run(ff.RunSettings(), models={"judge": object()}):
            pass


def test_a_node_added_or_replaced_where_the_loop_has_none_is_an_error_naming_it():
    def mine(state, runtime):
        return {}

    with pytest.raises(ValueError, match=r"no node \['critic'\]"):
        ff.build_graph(after={"critic": mine})
    with pytest.raises(ValueError, match="evaluate_student is followed by a routing decision"):
        ff.build_graph(after={"evaluate_student": mine})
    graph = ff.build_graph(replace={"analyze_failures": mine}, after={"train_student": mine})
    assert ("train_student", "mine") in graph.edges and ("mine", "evaluate_student") in graph.edges
    assert graph.nodes["analyze_failures"].runnable.func.__wrapped__ is mine  # timed, then ours
