"""The public Python API (``import failforward``): a graph script opens a run, streams its
graph with LangGraph's own ``stream``, and finds the run where the command line would leave it;
the scripts in ``examples/`` run as a user would run them, on the tiny student."""

import runpy
import sys
from pathlib import Path

import failforward as ff
from failforward.app.runner import run_loop
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
