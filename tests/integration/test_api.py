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
    way; opened again by id it streams on from there (no node twice) to the end."""
    settings = ff.RunSettings.from_options(
        pack=str(small_pack), student="tiny", llm="none", cycles=1, budget=8,
        runs_dir=str(tmp_path / "runs"),
    )  # fmt: skip
    seen = []
    with ff.open_run(settings, ui=quiet_ui) as run:
        assert run.input is not None and not run.finished
        for update in run.stream(stream_mode="updates"):
            seen += list(update)
            if "train_student" in update:
                break
        run_id = run.run_id
        assert run.input is None  # streaming again goes on from the checkpoint
    assert seen[-1] == "train_student" and "write_report" not in seen
    with ff.open_run(settings, resume=run_id, ui=quiet_ui) as run:
        assert run.input is None and not run.finished
        rest = [node for update in run.stream(stream_mode="updates") for node in update]
        assert run.finished and run.state["stop_reason"] == "cycles done"
    assert rest == ["evaluate_student", "write_report"]
    state = load_state(tmp_path / "runs" / run_id, run_id)
    assert state["nodes_run"] == [*seen, *rest]
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
