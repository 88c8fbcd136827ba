"""SFT with the loss projecting only the labelled positions against TRL's every-position
projection off CUDA, timed side by side in alternation, with the loss curves' largest difference.

    .venv/bin/python benchmarks/sft_compact.py --pack mixed --examples 74 --rounds 2

The rows are a cycle's worth of the pack's own items (answer-only completions), trained as the loop
trains them (LoRA, the default TrainConfig). Each round trains a fresh student both ways.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import failforward.training.offpolicy as offpolicy
from failforward.agents.student import student_messages
from failforward.tools.packs.pack import load_pack
from failforward.training.config import TrainConfig
from failforward.training.offpolicy import sft_rows, train_sft
from failforward.training.student_model import load_student, resolve_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="mixed")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--examples", type=int, default=74)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    pack = load_pack(args.pack)
    items = pack.make_source("train").sample(args.examples, seed=7)
    examples = [{"question": i.question, "answer": i.answer} for i in items]
    rows = sft_rows(examples, lambda q: student_messages(pack, q))
    base = resolve_student(args.student)
    scored = offpolicy.completion_tokens_scored
    seconds: dict[str, list[float]] = {"labelled": [], "every": []}
    losses: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for mode in ("every", "labelled"):
                offpolicy.completion_tokens_scored = (
                    scored if mode == "labelled" else contextlib.nullcontext
                )
                model, tokenizer = load_student(base)
                started = time.perf_counter()
                _, result = train_sft(model, tokenizer, rows, TrainConfig(), Path(out) / mode)
                seconds[mode].append(time.perf_counter() - started)
                losses[mode] = [e["loss"] for e in result.log]
    offpolicy.completion_tokens_scored = scored
    every, labelled = statistics.median(seconds["every"]), statistics.median(seconds["labelled"])
    gap = max(abs(a - b) for a, b in zip(losses["every"], losses["labelled"], strict=True))
    print(f"{len(rows)} rows, {len(losses['every'])} steps, {args.rounds} rounds")
    print(f"every position: {every:.1f} s; labelled positions: {labelled:.1f} s")
    print(f"ratio (labelled / every): {labelled / every:.2f}; largest loss difference {gap:.1e}")


if __name__ == "__main__":
    main()
