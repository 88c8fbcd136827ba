"""Peak memory of one SFT or DPO phase on the sql pack's long rows, with and without the
training token budget (``--micro-batch-tokens``), each setting in a fresh process (peak resident
memory is per process), and the losses, which must agree (same rows per step; DPO's NLL term is
averaged per pass, so there they may differ a little).

    .venv/bin/python benchmarks/micro_batch_memory.py --rows 32 --budgets 0 4096 2048
    .venv/bin/python benchmarks/micro_batch_memory.py --phase dpo --rows 32 --budgets 0 4096

DPO pairs: chosen = an item's query, rejected = the next item's (a wrong query of like length).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def one(budget: int, rows: int, student: str, phase: str = "sft") -> dict:
    """Train once in this process and report what it measured."""
    from failforward.agents.student import student_messages
    from failforward.tools.packs.pack import load_pack
    from failforward.training.config import TrainConfig
    from failforward.training.offpolicy import dpo_rows, sft_rows, train_dpo, train_sft
    from failforward.training.student_model import load_student, resolve_student

    pack = load_pack("sql")
    items = pack.make_source().sample(rows, seed=5)
    examples = [
        {"question": i.question, "answer": i.answer, "solution": i.solution or ""} for i in items
    ]

    def messages(question: str) -> list[dict]:
        return student_messages(pack, question)

    def completion(e: dict) -> str:
        return pack.completion(e["question"], e["solution"], e["answer"])

    if phase == "sft":
        data = sft_rows(examples, messages, completion)
    else:
        pairs = [
            {"question": e["question"], "chosen": completion(e), "rejected": completion(other)}
            for e, other in zip(examples, examples[1:] + examples[:1], strict=True)
        ]
        data = dpo_rows(pairs, messages)
    config = TrainConfig(objective=phase, epochs=1, micro_batch_tokens=budget)
    model, tokenizer = load_student(resolve_student(student))
    train = train_sft if phase == "sft" else train_dpo
    with tempfile.TemporaryDirectory() as out:
        _, result = train(model, tokenizer, data, config, Path(out))
    losses = [e["loss"] for e in result.log if "loss" in e]
    return {
        "budget": budget,
        "longest_row_tokens": result.max_length,
        "rows_per_pass": result.micro_batch,
        "passes_per_step": result.accumulation,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "losses": [round(x, 4) for x in losses],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--budgets", type=int, nargs="+", default=[0, 4096, 2048])
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--phase", choices=("sft", "dpo"), default="sft")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.rows, args.student, args.phase)))
        return
    results = []
    for budget in args.budgets:
        command = [sys.executable, __file__, "--one", str(budget), "--rows", str(args.rows)]
        out = subprocess.run(
            [*command, "--student", args.student, "--phase", args.phase],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = results[0]
    print(f"sql pack, {args.phase}, {args.rows} rows, student {args.student}, batch 8, one epoch")
    for r in results:
        gap = max(abs(a - b) for a, b in zip(r["losses"], base["losses"], strict=True))
        print(
            f"budget {r['budget']:>5}: {r['rows_per_pass']} rows x {r['passes_per_step']} passes"
            f" (longest row {r['longest_row_tokens']} tokens), peak {r['peak_rss_gib']} GiB,"
            f" {r['seconds']} s, {r['steps']} steps, losses within {gap:.4f} of budget"
            f" {base['budget']}'s"
        )


if __name__ == "__main__":
    main()
