"""The critic's verification with ``--executor ray`` (1 and 2 workers on a local Ray instance)
against ``--executor local``, on the same candidates, and whether the verdicts agree.

    .venv/bin/python benchmarks/ray_critic.py --pack sql --candidates 384

Candidates are the pack's procedural draws (for sql each query runs read-only in the SQL
worker, one per Ray worker process). Ray's start and a warm-up call are timed apart.
"""

from __future__ import annotations

import argparse
import functools
import time

from failforward.agents.critic import verify
from failforward.agents.workers import ray_map
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Candidate, Lineage
from failforward.tools.verify.verifiers import extract_answer, make_solver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="sql")
    parser.add_argument("--candidates", type=int, default=384)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import ray

    pack = load_pack(args.pack)
    source = pack.make_source("train")
    lineage = Lineage(cycle=1, target_id="bench", source="procedural")
    candidates = [
        Candidate(question=i.question, solution=i.solution, answer=i.answer,
                  metadata=i.metadata, lineage=lineage)
        for i in source.sample(args.candidates, seed=9)
    ]  # fmt: skip
    spec = pack.spec
    solver = make_solver(spec.critic.solver, spec.verifier_options, pack.directory)
    check = functools.partial(
        verify,
        verifier=pack.make_verifier(source),
        solver=solver,
        extract=lambda text: extract_answer(text, spec.answer.pattern, spec.answer.pick),
    )
    started = time.perf_counter()
    expected = [check(c) for c in candidates]
    rows = [("local", time.perf_counter() - started, "-", len(candidates))]

    started = time.perf_counter()
    ray.init(num_cpus=max(args.workers), include_dashboard=False, logging_level="WARNING")
    ray_start = time.perf_counter() - started
    for n in args.workers:
        started = time.perf_counter()
        ray_map(check, candidates[: 4 * n], workers=n)  # workers import the code
        warm = time.perf_counter() - started
        started = time.perf_counter()
        verdicts = ray_map(check, candidates, workers=n)
        same = sum(a == b for a, b in zip(verdicts, expected, strict=True))
        rows.append((f"ray, {n} worker(s)", time.perf_counter() - started, f"{warm:.1f}", same))
    ray.shutdown()

    local = rows[0][1]
    accepted = sum(v.accepted for v in expected)
    print(f"pack {args.pack}, {args.candidates} candidates ({accepted} verified)")
    print(f"Ray start: {ray_start:.1f} s")
    print(f"{'executor':<18} {'cand/s':>8} {'vs local':>9} {'warm-up s':>10} {'same verdicts':>14}")
    for name, seconds, warm, same in rows:
        print(
            f"{name:<18} {len(candidates) / seconds:>8.1f} {local / seconds:>8.2f}x"
            f" {warm:>10} {same:>7}/{len(candidates)}"
        )


if __name__ == "__main__":
    main()
