"""How close a role's client gets to the ideal throughput of an endpoint, whether faults lose
anything, and what the ``openai`` client costs next to the hand-written aiohttp transport it
replaced, run side by side.

    .venv/bin/python benchmarks/endpoint_throughput.py            # 10,000 calls, 64 in flight

The fake endpoint (``tests/fake_endpoint.py``) runs in its own process and answers every chat
request after a fixed latency (50 ms). With C requests in flight the ideal is C / latency calls per
second. Passes over N distinct prompts, each with a fresh server and run store:

1. baseline: a bare aiohttp loop (one session, a semaphore of C, no retries, no store);
2. aiohttp: ``ChatClient`` over the hand-written aiohttp transport it used before the ``openai``
   client (kept here, and only here, for this comparison);
3. openai: ``ChatClient`` as it ships (``AsyncOpenAI``, retries, rate limiters, the SQLite call
   cache: every reply committed as it arrives);
4. faults: the shipped client with 30% of attempts faulted (every kind in ``FAULTS``; Retry-After
   50 ms, timeouts after 1 s): replies lost must be 0, or each one counted as a failed request;
5. at a provider's limit: both transports with ``requests_per_minute`` set to each of ``--rates``
   requests per second, ``--seconds`` worth of calls each: the rate each reaches, as a fraction
   of what the limit allows.

Reported per pass: seconds, calls per second, the fraction of the ideal (of the limit for the
rate passes), and the overhead per call (seconds x C / N - latency: what a call costs beyond the
server's latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from failforward.agents.endpoints import CallFailed, ChatClient, EndpointConfig, Reply, _messages
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


class AiohttpSend:
    """The transport ``ChatClient`` had before the ``openai`` client, reduced to what the passes
    without faults use: one aiohttp session per event loop, the same request body, and the reply
    read by hand (its fault kinds are coarser than the old client's, and it ignores Retry-After:
    only the faults pass, which runs the shipped client, needs those)."""

    def __init__(self, config: EndpointConfig):
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.session = None

    async def __call__(self, request: dict) -> Reply:
        import aiohttp

        if self.session is None or self.session._loop is not asyncio.get_running_loop():
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.concurrency),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            )
        body = {
            "model": self.config.model,
            "messages": _messages(request),
            "temperature": request["temperature"],
            "max_tokens": self.config.max_tokens,
        }
        try:
            async with self.session.post(self.url, json=body) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as err:
            raise CallFailed("timeout", "no reply in time", True) from err
        except aiohttp.ClientError as err:
            raise CallFailed("connection", str(err), True) from err
        if status != 200:
            kind = "server_error" if status >= 500 else "rejected"
            raise CallFailed(kind, str(status), status == 429 or status >= 500)
        try:
            data = json.loads(raw)
            return Reply(data["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise CallFailed("bad_reply", str(err), True) from err


def client_pass(
    base_url: str,
    prompts: list[str],
    concurrency: int,
    transport: str = "openai",
    per_second: float | None = None,
) -> tuple[int, ChatClient]:
    folder = Path(tempfile.mkdtemp(prefix="failforward-bench-store-"))
    config = EndpointConfig(
        base_url=base_url,
        model="m",
        concurrency=concurrency,
        timeout=1.0,
        retries=6,
        backoff=0.05,
        requests_per_minute=per_second * 60 if per_second else None,
    )
    send = AiohttpSend(config) if transport == "aiohttp" else None
    client = ChatClient("teacher", config, RunStore(folder / "run.db"), send=send)
    replies = client.complete(prompts, tags=[f"c1-bench/{i}" for i in range(len(prompts))])
    if send is not None and send.session is not None:
        send.session.connector._close()  # its loop has ended: drop the sockets without one
    return sum(r is not None for r in replies), client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--rates", default="10,50,200", help="Provider limits, requests/second.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Calls per rate pass, in s.")
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
    for transport in ("aiohttp", "openai"):
        with Server(args.latency) as server:
            started = time.perf_counter()
            answered, client = client_pass(server.base_url, prompts, args.concurrency, transport)
            row(
                transport,
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
    print(f"\nat a provider's limit, {args.concurrency} in flight:")
    print(f"{'limit/s':>8} {'pass':<8} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'of limit':>9}")
    for rate in (float(r) for r in args.rates.split(",")):
        calls = [f"Write problem number {i}." for i in range(int(rate * args.seconds))]
        for transport in ("aiohttp", "openai"):
            with Server(args.latency) as server:
                started = time.perf_counter()
                answered, _ = client_pass(
                    server.base_url, calls, args.concurrency, transport, per_second=rate
                )
                seconds = time.perf_counter() - started
            print(
                f"{rate:>8.0f} {transport:<8} {answered:>6} {seconds:>8.2f}"
                f" {answered / seconds:>8.1f} {answered / seconds / rate:>9.2f}"
            )


if __name__ == "__main__":
    main()
