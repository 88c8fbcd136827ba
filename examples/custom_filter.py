"""Add a node of your own to the loop: a filter after the critic, without editing the package.

    python examples/custom_filter.py --student tiny --cycles 1 --budget 8 --longest 69

``build_graph(after={"critique_examples": node})`` runs ``node`` between the critic and training.
A node takes ``(state, runtime)`` like the loop's own: ``runtime.context`` is the run's context
(its store, pack, settings). This one drops the cycle's accepted examples whose question is
longer than ``--longest`` characters; the store keeps them, rejected with the filter's reason.
"""

from __future__ import annotations

import argparse
import functools

import failforward as ff


# --8<-- [start:filter]
def drop_long_questions(state: dict, runtime, longest: int) -> dict:
    """The cycle's accepted examples with a question over ``longest`` characters, dropped."""
    store, cycle = runtime.context.store, state["plan"]["cycle"]  # the cycle being trained
    long = [e["id"] for e in store.examples(cycle, accepted=True) if len(e["question"]) > longest]
    dropped = store.drop_examples(long, f"filter: question over {longest} characters")
    print(f"cycle {cycle}: dropped {dropped} accepted examples with long questions")
    return {}


# --8<-- [end:filter]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--longest", type=int, default=69)
    parser.add_argument("--runs-dir", default="runs")
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
    node = functools.partial(drop_long_questions, longest=args.longest)
    node.__name__ = "drop_long_questions"  # the node's name in the graph
    build = functools.partial(ff.build_graph, after={"critique_examples": node})
    with ff.open_run(settings, build=build) as run:
        state = run.invoke()
    # --8<-- [end:wire]
    print(f"run {run.run_id}: {state['stop_reason']}; nodes {state['nodes_run'][:7]} ...")


if __name__ == "__main__":
    main()
