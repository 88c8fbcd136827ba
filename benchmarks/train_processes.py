"""SFT on one process against DDP on two (``--train-processes 2``, gloo on this CPU), launched by
torchrun and by Ray Train (``--train-launcher ray``, a local Ray instance), same rows and batch:
seconds, peak resident memory per process, and how far the losses are apart.

    .venv/bin/python benchmarks/train_processes.py --pack mixed --rows 96

Each setting runs in a fresh process (peak memory is per process); the two-process settings
report each rank's peak (the launching process holds the model too and is reported apart). The
Ray setting's seconds leave out starting the Ray instance, which is reported beside them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ((1, "torchrun"), (2, "torchrun"), (2, "ray"))


def one(processes: int, launcher: str, pack_name: str, rows: int, student: str) -> dict:
    from failforward.agents.student import student_messages
    from failforward.tools.packs.pack import load_pack
    from failforward.training.config import TrainConfig
    from failforward.training.offpolicy import sft_rows
    from failforward.training.phases import _train_phase
    from failforward.training.student_model import load_student, resolve_student

    pack = load_pack(pack_name)
    items = pack.make_source("train").sample(rows, seed=5)
    examples = [{"question": i.question, "answer": i.answer} for i in items]
    data = sft_rows(examples, lambda q: student_messages(pack, q))
    config = TrainConfig(objective="sft", epochs=1, processes=processes, launcher=launcher)
    model, tokenizer = load_student(resolve_student(student))
    ray_start = 0.0
    if launcher == "ray":
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=processes, include_dashboard=False, logging_level="WARNING")
        ray_start = time.perf_counter() - started
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        _, result = _train_phase("sft", model, tokenizer, data, config, Path(out), None)
    return {
        "processes": processes,
        "launcher": launcher,
        "seconds": round(time.perf_counter() - started, 1),
        "ray_start_s": round(ray_start, 1),
        "steps": result.steps,
        "losses": [round(e["loss"], 4) for e in result.log if "loss" in e],
        "peak_mb": [round(x) for x in result.process_peak_mb]
        or [round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)],
        "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="mixed")
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--launcher", default="torchrun", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.launcher, args.pack, args.rows, args.student)))
        return
    results = []
    for processes, launcher in SETTINGS:
        command = [sys.executable, __file__, "--one", str(processes), "--launcher", launcher]
        command += ["--pack", args.pack]
        out = subprocess.run(
            [*command, "--rows", str(args.rows), "--student", args.student],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    single = results[0]
    print(f"pack {args.pack}, {args.rows} rows, student {args.student}, batch 8, one epoch")
    for r in results:
        gap = max(abs(a - b) for a, b in zip(r["losses"], single["losses"], strict=True))
        speed = single["seconds"] / r["seconds"]
        ray = f" (+ {r['ray_start_s']} s starting Ray)" if r["launcher"] == "ray" else ""
        print(
            f"{r['processes']} process(es), {r['launcher']}: {r['seconds']} s{ray}"
            f" ({speed:.2f}x one process's speed)"
            f", {r['steps']} steps, peak per process {r['peak_mb']} MB,"
            f" launching process {r['driver_peak_mb']} MB, losses within {gap:.4f}"
        )


if __name__ == "__main__":
    main()
