"""A person reviews each cycle's accepted examples before the student trains on them.

    python examples/review.py --student tiny --cycles 1 --budget 8

A node after the critic calls LangGraph's ``interrupt`` with the cycle's accepted examples; the
run stops there, checkpointed in its folder. The script shows them, asks which to drop, and
answers with ``run.answer(...)`` (``Command(resume=...)``); the node runs again, receives the
answer and drops those examples before training. ``--drop-every N`` answers without asking (drop
every N-th example), as a test does; a stopped review can also be answered later, from another
process: ``open_run(resume=<run id>)``, then ``run.answer(...)``.
"""

from __future__ import annotations

import argparse
import functools

from langgraph.types import interrupt

import failforward as ff


# --8<-- [start:review]
def review(state: dict, runtime) -> dict:
    """Stop for a person's verdict on the cycle's accepted examples; drop the ids they name."""
    store, cycle = runtime.context.store, state["plan"]["cycle"]
    shown = [
        {"id": e["id"], "question": e["question"], "answer": e["answer"]}
        for e in store.examples(cycle, accepted=True)
    ]
    verdict = interrupt({"cycle": cycle, "accepted": shown})
    dropped = store.drop_examples(list(verdict.get("drop", [])), "dropped by review")
    print(f"cycle {cycle}: review dropped {dropped} of {len(shown)} accepted examples")
    return {}


# --8<-- [end:review]


def ask(pending: dict, drop_every: int | None) -> dict:
    """The reviewer's answer: every N-th example dropped, or the ids typed in."""
    rows = pending["accepted"]
    if drop_every:
        return {"drop": [row["id"] for row in rows[::drop_every]]}
    for row in rows:
        print(f"  [{row['id']}] {row['question'][:70]} -> {row['answer']}")
    typed = input(f"cycle {pending['cycle']}: ids to drop (comma-separated, empty: none): ")
    return {"drop": [int(x) for x in typed.replace(",", " ").split()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--drop-every", type=int, default=None)
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
    build = functools.partial(ff.build_graph, after={"critique_examples": review})
    with ff.open_run(settings, build=build) as run:
        while True:
            for _ in run.stream(stream_mode="updates"):
                pass
            if not run.interrupts:  # the run ended
                break
            (pending,) = run.interrupts
            run.answer(ask(pending.value, args.drop_every))
        # --8<-- [end:wire]
        print(f"run {run.run_id}: {run.state['stop_reason']}")


if __name__ == "__main__":
    main()
