"""Run a loop from Python and print each cycle's row as LangGraph streams it.

    python examples/stream_loop.py --student tiny --cycles 1 --budget 8

``failforward.open_run`` opens the run (its folder, store, checkpointer and context); the run's
``stream`` is LangGraph's own, so any ``stream_mode`` works. Here ``updates``: one dict per node
that ran, ``{node name: what it changed}``; ``evaluate_student`` adds a row to ``history``.
"""

from __future__ import annotations

import argparse

import failforward as ff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--budget", type=int, default=32)
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
    # --8<-- [start:stream]
    with ff.open_run(settings) as run:
        for update in run.stream(stream_mode="updates"):
            for node, change in update.items():
                for row in (change or {}).get("history", []):
                    print(
                        f"{node}: cycle {row['cycle']}, test accuracy {row['test_acc']:.1%}, "
                        f"probe accuracy {row['probe_acc']:.1%}, {row['failures']} failures"
                    )
        print(f"run {run.run_id}: {run.state['stop_reason']}; report: {run.run_dir}/report.md")
    # --8<-- [end:stream]


if __name__ == "__main__":
    main()
