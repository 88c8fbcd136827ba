"""Student evaluation throughput by batch size, as ratios against batch size 1 run side by side.

    .venv/bin/python benchmarks/eval_batch_size.py --student smollm2 --items 64

Timings on a shared machine are noisy, so each setting is timed in alternation over several rounds
and the report gives the median items/s and its ratio to the batch-1 baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time

from failforward.agents.student import answer_items
from failforward.tools.packs.pack import load_pack
from failforward.tools.packs.sources import ReasoningGymSource
from failforward.tools.verify.verifiers import make_verifier
from failforward.training.student_model import load_student, resolve_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,8,16,32")
    args = parser.parse_args()

    pack = load_pack("arithmetic")
    source = pack.make_source()
    assert isinstance(source, ReasoningGymSource)
    items = source.sample(args.items, seed=12345)
    verifier = make_verifier(pack.spec.verifier, source)
    model, tokenizer = load_student(resolve_student(args.student))
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    rates: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(args.rounds):
        for size in sizes:  # alternate settings within a round so drift hits all alike
            started = time.perf_counter()
            answer_items(model, tokenizer, pack, items, verifier, batch_size=size)
            rates[size].append(args.items / (time.perf_counter() - started))
    baseline = statistics.median(rates[sizes[0]])
    print(f"student {args.student}, {args.items} items, {args.rounds} rounds")
    print(f"{'batch':>6} {'items/s':>9} {'vs batch ' + str(sizes[0]):>12}")
    for size in sizes:
        median = statistics.median(rates[size])
        print(f"{size:>6} {median:>9.1f} {median / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
