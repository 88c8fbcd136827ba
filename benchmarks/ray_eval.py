"""Evaluation throughput with ``--executor ray`` (1 and 2 student workers on a local Ray
instance) against ``--executor local``, on the same items, and whether the replies agree.

    .venv/bin/python benchmarks/ray_eval.py --pack mixed --items 160

Each setting answers the items once after a warm-up call (the workers load the model then;
that and Ray's start are reported apart). On a 2-core machine expect no gain: local decoding
already uses both cores, and each worker gets one.
"""

from __future__ import annotations

import argparse
import time

from failforward.agents.student import generate, student_messages
from failforward.agents.workers import StudentWorkers
from failforward.tools.packs.pack import load_pack
from failforward.training.student_model import load_student, resolve_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="mixed")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--items", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import ray

    pack = load_pack(args.pack)
    prompts = [
        student_messages(pack, i.question)
        for i in pack.make_source().sample(args.items, seed=12345)
    ]
    limit = pack.spec.student.max_new_tokens
    base = resolve_student(args.student)

    model, tokenizer = load_student(base)
    started = time.perf_counter()
    expected = generate(model, tokenizer, prompts, limit, args.batch_size)
    rows = [("local", time.perf_counter() - started, "-", len(prompts))]
    del model

    started = time.perf_counter()
    ray.init(num_cpus=max(args.workers), include_dashboard=False, logging_level="WARNING")
    ray_start = time.perf_counter() - started
    for n in args.workers:
        started = time.perf_counter()
        workers = StudentWorkers(base, 16, workers=n, log=lambda _: None)
        workers.replies_for(None, args.batch_size)(prompts[: args.batch_size * n], 1)  # load
        warm = time.perf_counter() - started
        started = time.perf_counter()
        replies = workers.replies_for(None, args.batch_size)(prompts, limit)
        rows.append(
            (
                f"ray, {n} worker(s)",
                time.perf_counter() - started,
                f"{warm:.1f}",
                sum(a == b for a, b in zip(replies, expected, strict=True)),
            )
        )
        workers.close()
    ray.shutdown()

    local = rows[0][1]
    print(f"pack {args.pack}, student {args.student}, {args.items} items, batch {args.batch_size}")
    print(f"Ray start: {ray_start:.1f} s")
    print(f"{'executor':<18} {'items/s':>8} {'vs local':>9} {'warm-up s':>10} {'same replies':>13}")
    for name, seconds, warm, same in rows:
        print(
            f"{name:<18} {args.items / seconds:>8.2f} {local / seconds:>8.2f}x {warm:>10}"
            f" {same:>6}/{len(prompts)}"
        )


if __name__ == "__main__":
    main()
