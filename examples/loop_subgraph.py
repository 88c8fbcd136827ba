"""The loop as one node of a larger LangGraph graph: improve the student, then a release gate.

    python examples/loop_subgraph.py --student tiny --cycles 1 --budget 8 --min-gain 0.0

The parent graph has the loop's state keys and one of its own (``release``); its ``improve``
node is the compiled loop (``ff.build_graph().compile()``: the parent's checkpointer and run
context reach it), and ``gate`` reads what the loop left (``history``, ``checkpoint``) to release
the student only if held-out accuracy rose by at least ``--min-gain``. ``open_run(build=...)``
runs the parent in the run's folder with its checkpointer (the loop's own checkpoints are kept
there too, under the ``improve`` task). Streaming with ``subgraphs=True`` shows each node with
the graph it ran in. A stream left early finishes the loop's task first (it is one task of the
parent); resumed, the run goes on to the gate.
"""

from __future__ import annotations

import argparse

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

import failforward as ff


# --8<-- [start:pipeline]
class PipelineState(ff.LoopState, total=False):
    release: str | None  # the checkpoint the gate released, or None


def pipeline(min_gain: float):
    def gate(state: PipelineState, runtime: Runtime[ff.RunContext]) -> dict:
        first, last = state["history"][0], state["history"][-1]
        gain = last["test_acc"] - first["test_acc"]
        released = state.get("checkpoint") if gain >= min_gain else None
        return {"release": released}

    def build() -> StateGraph:
        graph = StateGraph(PipelineState, context_schema=ff.RunContext)
        graph.add_node("improve", ff.build_graph().compile())
        graph.add_node("gate", gate)
        graph.add_edge(START, "improve")
        graph.add_edge("improve", "gate")
        graph.add_edge("gate", END)
        return graph

    return build


# --8<-- [end:pipeline]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--min-gain", type=float, default=0.02, help="Accuracy, 0.02 = 2 points.")
    args = parser.parse_args()
    settings = ff.RunSettings.from_options(
        pack=args.pack,
        student=args.student,
        cycles=args.cycles,
        budget=args.budget,
        runs_dir=args.runs_dir,
        llm="none",
    )
    # --8<-- [start:wire]
    with ff.open_run(settings, build=pipeline(args.min_gain)) as run:
        for namespace, update in run.stream(stream_mode="updates", subgraphs=True):
            where = "loop" if namespace else "pipeline"
            print(f"{where}: {', '.join(update)}")
        release = run.state.get("release")
    # --8<-- [end:wire]
    print(f"run {run.run_id}: " + (f"released {release}" if release else "not released"))


if __name__ == "__main__":
    main()
