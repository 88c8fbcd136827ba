"""What continuous batching gains the local teacher (``--llm local``), against the same server
answering one request at a time, run side by side.

    .venv/bin/python benchmarks/local_teacher.py                  # 16 rephrase prompts, 200 tokens

Both passes start ``LocalServer`` on the packaged SmolLM2 and send the same prompts (the rephrase
pack's prompt for the first chunks of the default corpus, ``simplified`` style) through a
``ChatClient`` with a fresh run store:

1. plain: ``LocalServer(batch=1)``, one request at a time (the old default);
2. batched: ``LocalServer(batch=8)``: continuous batching, up to 8 requests in flight.

Reported per pass: seconds, completion tokens per second (as the server counted them), and the
server's peak resident memory; then batched / plain.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from failforward.agents.endpoints import ChatClient, LocalServer
from failforward.tools.augment.corpus import chunk, load_corpus
from failforward.tools.augment.pack import load_augment_pack
from failforward.tools.store import RunStore
from failforward.training.student_model import smollm2_dir


def prompts(n: int) -> list[str]:
    pack = load_augment_pack("rephrase")
    out = []
    for doc in load_corpus("stdlib-docs"):
        for piece in chunk(doc.text, pack.spec.chunk_tokens):
            out.append(
                pack.render(
                    "rephrase", style=pack.spec.styles["simplified"], chunk=piece, title=doc.doc_id
                )
            )
            if len(out) == n:
                return out
    return out


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_pass(batch: int, texts: list[str], max_tokens: int) -> dict:
    with LocalServer(smollm2_dir(), batch=batch) as server, tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "bench.db")
        client = ChatClient("teacher", server.endpoint(max_tokens=max_tokens), store)
        started = time.perf_counter()
        replies = client.complete(texts, temperature=0.0, tags=[str(i) for i in range(len(texts))])
        seconds = time.perf_counter() - started
        tokens = store.db.execute("SELECT SUM(completion_tokens) FROM llm_calls").fetchone()[0]
        rss = peak_rss_mib(server.process.pid)
        store.close()
    return {
        "seconds": seconds,
        "tokens": tokens or 0,
        "answered": sum(r is not None for r in replies),
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    texts = prompts(args.prompts)
    rows = {}
    for name, batch in (("plain", 1), ("batched", args.batch)):
        rows[name] = one_pass(batch, texts, args.max_tokens)
        r = rows[name]
        print(
            f"{name:8} batch {batch:2}: {r['answered']}/{len(texts)} answered, {r['tokens']} tokens"
            f" in {r['seconds']:.1f} s = {r['tokens'] / r['seconds']:.1f} tokens/s;"
            f" server peak RSS {r['rss']:.0f} MiB",
            flush=True,
        )
    plain, batched = rows["plain"], rows["batched"]
    ratio = (batched["tokens"] / batched["seconds"]) / (plain["tokens"] / plain["seconds"])
    print(f"batched / plain throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
