"""How close a role's client gets to the ideal throughput of an endpoint, and whether faults lose
anything, against a plain aiohttp loop run side by side.

    .venv/bin/python benchmarks/endpoint_throughput.py            # 10,000 calls, 64 in flight

The fake endpoint (``tests/fake_endpoint.py``) runs in its own process and answers every chat
request after a fixed latency (50 ms). With C requests in flight the ideal is C / latency calls per
second. Three passes over N distinct prompts, each with a fresh server and run store:

1. baseline: a bare aiohttp loop (one session, a semaphore of C, no retries, no store);
2. client: ``ChatClient.complete`` (retries, rate limiters, the SQLite call cache: every reply
   committed as it arrives);
3. faults: the same client with 30% of attempts faulted (every kind in ``FAULTS``; Retry-After
   50 ms, timeouts after 1 s): replies lost must be 0, or each one counted as a failed request.

Reported per pass: seconds, calls per second, the fraction of the ideal, and the overhead per call
(seconds x C / N - latency: what a call costs beyond the server's latency).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from failforward.agents.endpoints import ChatClient, EndpointConfig
from failforward.tools.store import RunStore


class Server:
    """The fake endpoint in its own interpreter (so its loop does not share our GIL)."""

    def __init__(self, latency: float, fault_rate: float = 0.0):
        self.args = ["--latency", str(latency), "--fault-rate", str(fault_rate)]
        self.args += ["--retry-after", "0.05", "--hang", "2", "--slow", "0.1", "--lifetime", "600"]

    def __enter__(self) -> Server:
        self.folder = Path(tempfile.mkdtemp(prefix="failforward-bench-"))
        port_file = self.folder / "port"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fake_endpoint",
                "--port-file",
                str(port_file),
                *self.args,
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],  # tests/ is not installed: run from the root
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the fake endpoint did not start")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{port_file.read_text()}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.summary = self.process.communicate(timeout=30)[0].strip().splitlines()[-1]


async def bare(base_url: str, prompts: list[str], concurrency: int) -> int:
    import aiohttp

    limit = asyncio.Semaphore(concurrency)
    url = base_url + "/chat/completions"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(prompt: str) -> str:
            body = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
            async with limit, session.post(url, json=body) as response:
                return (await response.json())["choices"][0]["message"]["content"]

        replies = await asyncio.gather(*(one(p) for p in prompts))
    return sum(r is not None for r in replies)


def client_pass(base_url: str, prompts: list[str], concurrency: int) -> tuple[int, ChatClient]:
    folder = Path(tempfile.mkdtemp(prefix="failforward-bench-store-"))
    config = EndpointConfig(
        base_url=base_url, model="m", concurrency=concurrency, timeout=1.0, retries=6, backoff=0.05
    )
    client = ChatClient("teacher", config, RunStore(folder / "run.db"))
    replies = client.complete(prompts, tags=[f"c1-bench/{i}" for i in range(len(prompts))])
    return sum(r is not None for r in replies), client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    args = parser.parse_args()
    prompts = [f"Write problem number {i}." for i in range(args.calls)]
    ideal = args.concurrency / args.latency
    print(
        f"{args.calls} calls, {args.concurrency} in flight, {args.latency * 1000:.0f} ms latency:"
        f" ideal {ideal:.0f} calls/s ({args.calls / ideal:.1f} s)"
    )
    print(
        f"{'pass':<10} {'seconds':>8} {'calls/s':>8} {'of ideal':>9} {'overhead/call':>14}  result"
    )

    def row(name: str, seconds: float, result: str) -> None:
        rate = args.calls / seconds
        overhead = seconds * args.concurrency / args.calls - args.latency
        print(
            f"{name:<10} {seconds:>8.2f} {rate:>8.0f} {rate / ideal:>9.2f}"
            f" {overhead * 1000:>11.2f} ms  {result}"
        )

    with Server(args.latency) as server:
        started = time.perf_counter()
        answered = asyncio.run(bare(server.base_url, prompts, args.concurrency))
        row("baseline", time.perf_counter() - started, f"{answered} answered")
    with Server(args.latency) as server:
        started = time.perf_counter()
        answered, client = client_pass(server.base_url, prompts, args.concurrency)
        row(
            "client",
            time.perf_counter() - started,
            f"{answered} answered, {len(client.errors)} failed",
        )
    with Server(args.latency, args.fault_rate) as server:
        started = time.perf_counter()
        answered, client = client_pass(server.base_url, prompts, args.concurrency)
        seconds = time.perf_counter() - started
        failed = len(client.store.call_failures())
        lost = args.calls - answered - failed
        row(
            "faults",
            seconds,
            f"{answered} answered, {failed} failed after retries, {lost} unaccounted;"
            f" {client.retried} retried attempts",
        )
    print(f"server (faults pass): {server.summary}")
    print("client saw: " + ", ".join(f"{k} {v}" for k, v in sorted(client.faults.items())))


if __name__ == "__main__":
    main()
