"""Where a run folder's checkpointed graph stands: a kill before the first node's checkpoint is
not a finished run, and driving the session on runs the graph from there."""

from contextlib import ExitStack
from typing import TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from failforward.app import runner
from failforward.app.runner import open_session


class _State(TypedDict):
    x: int


def _build() -> StateGraph:
    graph = StateGraph(_State)
    graph.add_node("step", lambda state: {"x": state["x"] + 1})
    graph.add_edge(START, "step")
    graph.add_edge("step", END)
    return graph


class _KilledAfterInput(SqliteSaver):
    """Stores the input's checkpoint, then dies as a SIGKILL would before the next one."""

    def put(self, config, checkpoint, metadata, new_versions):
        if metadata.get("step", -1) >= 0:
            raise KeyboardInterrupt
        return super().put(config, checkpoint, metadata, new_versions)


@pytest.fixture
def killed_after_input(tmp_path, monkeypatch):
    saver = runner._checkpointer

    def killing(stack, run_dir):
        return _KilledAfterInput(saver(stack, run_dir).conn)

    monkeypatch.setattr(runner, "_checkpointer", killing)
    with ExitStack() as stack, pytest.raises(KeyboardInterrupt):
        open_session(stack, _build, tmp_path, "r").graph.invoke(
            {"x": 1}, {"configurable": {"thread_id": "r"}}
        )
    monkeypatch.setattr(runner, "_checkpointer", saver)
    return tmp_path


def test_a_run_killed_after_its_input_checkpoint_has_not_finished(killed_after_input):
    with ExitStack() as stack:
        session = open_session(stack, _build, killed_after_input, "r")
        assert session.snapshot.values == {"x": 1} and not session.snapshot.next
        assert not session.finished
        session.run({"x": 1}, context=None)
    with ExitStack() as stack:
        session = open_session(stack, _build, killed_after_input, "r")
        assert session.finished and session.snapshot.values == {"x": 2}


def test_a_fresh_folder_has_not_finished(tmp_path):
    with ExitStack() as stack:
        assert not open_session(stack, _build, tmp_path, "r").finished
