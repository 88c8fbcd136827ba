"""How fast can the student answer a run's items, and do its answers change?

Answers the same probe and test items at a run's checkpoint in ``--rounds`` alternating rounds,
in any of these ways (``--ways``): ``adapter``, the LoRA adapter model through
:func:`agents.student.generate` (batches of ``--batch-size`` sorted by prompt length);
``merged``, the adapter merged into the weights (``merge_and_unload``) as evaluation does;
``generate``, the merged model through ``model.generate`` (every row of a batch decoded until
its longest reply ends, as evaluation did before :func:`agents.student.greedy_tokens`);
``continuous``, transformers' continuous batching (``generate_batch``: a finished reply leaves
the batch and the next prompt takes its place). Prints each way's seconds per round, the median
ratio to the first way's, how many replies differ from the first way's and each way's accuracy.

    python benchmarks/eval_speed.py runs/<run id> --cycle 1 --items 160

Measured on the stage-2 competent student (``runs/competent-warmup-2-...``, 160 probe and test
items of traced replies, up to 64 tokens, 2 CPU cores), all through ``model.generate``: the
adapter model 65.8 s and 64.2 s, merged 55.9 s and 56.8 s (1.15x, the same 160 replies),
continuous batching 112.8 s (0.47x against merged, the same replies; 116.7 s with 128 slots):
on CPU, continuous batching is slower, so evaluation merges and keeps its length-sorted batches.

Then, with a finished reply leaving the batch (:func:`agents.student.greedy_tokens`), on a
cycle-2 student of the competent pack (``runs/competent-20261206-212809-s0``, its first 128
probe and test items, one round, while a comparison trained beside it, so the seconds are long
and only their ratios mean anything; measured with a one-off script making the same calls as
``--ways generate,merged`` here, at batch 32 and 128): ``model.generate`` 221.7 s at batch 32
and 260.5 s at 128; greedy_tokens 184.6 s at 32 (1.20x) and 154.1 s at 128 (1.44x against
generate at 32); every reply the same
(``tests/unit/agents/test_student.py`` checks it token for token). Most replies are short (a
median 11 tokens of at most 64) while a batch's longest runs to about 50.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from failforward.agents.student import generate, prompt_batches, student_messages
from failforward.tools.packs.pack import load_pack
from failforward.tools.stats.guard import student_checkpoint
from failforward.tools.store import RunStore
from failforward.tools.verify.verifiers import extract_answer
from failforward.training.student_model import load_student, run_start

WHOLE = {"do_sample": False}  # through model.generate: every row until the batch's longest ends


def continuous(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, slots: int):
    """Greedy replies through transformers' continuous batching, in the prompts' order."""
    from transformers import GenerationConfig

    texts, _ = prompt_batches(tokenizer, prompts, len(prompts))  # rendered as evaluation does
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_batch_tokens=slots * 64,
    )
    out = model.generate_batch(inputs=ids, generation_config=config, warmup=False)
    by_id = sorted(out.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[-1]))
    return [
        tokenizer.decode(result.generated_tokens, skip_special_tokens=True).strip()
        for _, result in by_id
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--cycle", type=int, default=1)
    parser.add_argument("--items", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ways", default="generate,merged,continuous")
    args = parser.parse_args()
    store = RunStore(args.run / "run.db")
    settings = store.get_meta("settings")
    pack = load_pack(store.get_meta("pack_dir") or settings["pack"])
    verifier = pack.make_verifier(pack.make_source("eval"))
    items = [*store.eval_items("probe"), *store.eval_items("test")][: args.items]
    prompts = [student_messages(pack, item.question) for item in items]
    tokens = pack.spec.student.max_new_tokens
    base = run_start(args.run).path
    checkpoint = student_checkpoint(args.run, args.cycle)
    adapter_model, tokenizer = load_student(base, checkpoint)
    merged, _ = load_student(base, checkpoint)
    merged = merged.merge_and_unload()
    size = args.batch_size
    ways = {
        "adapter": lambda: generate(adapter_model, tokenizer, prompts, tokens, size),
        "merged": lambda: generate(merged, tokenizer, prompts, tokens, size),
        "generate": lambda: generate(merged, tokenizer, prompts, tokens, size, None, WHOLE),
        "continuous": lambda: continuous(merged, tokenizer, prompts, tokens, size),
    }
    ways = {name: ways[name] for name in args.ways.split(",")}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    replies: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name, answer in ways.items():
            started = time.perf_counter()
            replies[name] = answer()
            seconds[name].append(time.perf_counter() - started)
    first = next(iter(ways))
    for name in ways:
        right = 0
        for item, reply in zip(items, replies[name], strict=True):
            extracted = extract_answer(reply, pack.spec.answer.pattern, pack.spec.answer.pick)
            right += bool(extracted) and verifier(extracted, item).score >= 1.0
        pairs = zip(seconds[first], seconds[name], strict=True)
        ratio = statistics.median(a / b for a, b in pairs)
        differ = sum(a != b for a, b in zip(replies[first], replies[name], strict=True))
        print(
            f"{name}: " + ", ".join(f"{v:.1f} s" for v in seconds[name])
            + f"; {first} / {name} {ratio:.2f}x (median of {args.rounds} paired rounds); "
            f"{differ} of {len(items)} replies differ from {first}'s; "
            f"accuracy {right / len(items):.1%}"
        )  # fmt: skip


if __name__ == "__main__":
    main()
