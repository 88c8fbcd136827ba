"""``langgraph.json``'s graph: it imports the way ``langgraph dev`` loads it, compiles, and runs
the loop for real from a Studio-style input that names the pack."""

import importlib.util
import json
from pathlib import Path

import pytest
from langgraph.pregel import Pregel

from failforward.tools.store import RunStore
from tests.scripted import studio_input

ROOT = Path(__file__).resolve().parents[2]


def _load_graph():
    spec = json.loads((ROOT / "langgraph.json").read_text())
    file, name = spec["graphs"]["failforward"].split(":")
    module_spec = importlib.util.spec_from_file_location("studio_graph", ROOT / file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


def test_the_studio_graph_runs_the_loop_from_its_input(small_pack, tmp_path):
    graph = _load_graph()
    assert isinstance(graph, Pregel)
    assert {"start_run", "bootstrap", "train_student", "write_report"} <= set(
        graph.get_graph().nodes
    )
    settings = studio_input(small_pack, tmp_path / "runs")
    final = graph.invoke({"settings": settings})
    assert final["stop_reason"] == "cycles done" and final["cycle"] == 1
    run_dir = Path(final["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "report.md").is_file()
    store = RunStore(run_dir / "run.db")
    assert sorted(store.metrics()) == [0, 1]
    assert store.get_meta("settings")["pack"] == str(small_pack)
    assert final["nodes_run"][:2] == ["bootstrap", "evaluate_student"]

    with pytest.raises(ValueError, match=r"settings: unknown option\(s\) \['colour'\]"):
        graph.invoke({"settings": {**settings, "colour": "red"}})
