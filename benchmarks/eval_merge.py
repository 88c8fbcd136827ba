"""Does merging a LoRA checkpoint into its base speed up evaluation, and does it change replies?

Answers the same items with a run's LoRA checkpoint twice over, alternating: as the adapter
model evaluation uses today (PEFT's extra matmuls on every linear layer) and merged into a copy
of the base (``merge_and_unload``), in ``--rounds`` alternating rounds, and prints each round's
seconds, the median ratio and how many greedy replies differ.

    python benchmarks/eval_merge.py runs/<run id> --cycle 1 --items 160
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from failforward.agents.student import generate, student_messages
from failforward.tools.guard import student_checkpoint
from failforward.tools.packs import load_pack
from failforward.tools.store import RunStore
from failforward.training.student_model import load_student, run_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--cycle", type=int, default=1)
    parser.add_argument("--items", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    store = RunStore(args.run / "run.db")
    settings = store.get_meta("settings")
    pack = load_pack(store.get_meta("pack_dir") or settings["pack"])
    items = [*store.eval_items("probe"), *store.eval_items("test")][: args.items]
    prompts = [student_messages(pack, item.question) for item in items]
    tokens = pack.spec.student.max_new_tokens
    base = run_start(args.run).path
    adapter_model, tokenizer = load_student(base, student_checkpoint(args.run, args.cycle))
    merged, _ = load_student(base, student_checkpoint(args.run, args.cycle))
    merged = merged.merge_and_unload()
    seconds: dict[str, list[float]] = {"adapter": [], "merged": []}
    replies = {}
    for _ in range(args.rounds):
        for name, model in (("adapter", adapter_model), ("merged", merged)):
            started = time.perf_counter()
            replies[name] = generate(model, tokenizer, prompts, tokens, args.batch_size)
            seconds[name].append(time.perf_counter() - started)
    for name, values in seconds.items():
        print(f"{name}: " + ", ".join(f"{v:.1f} s" for v in values))
    pairs = zip(seconds["adapter"], seconds["merged"], strict=True)
    ratio = statistics.median(a / m for a, m in pairs)
    differ = sum(a != m for a, m in zip(replies["adapter"], replies["merged"], strict=True))
    print(f"adapter / merged, median of {args.rounds} paired rounds: {ratio:.2f}x")
    print(f"replies that differ: {differ} of {len(items)}")


if __name__ == "__main__":
    main()
