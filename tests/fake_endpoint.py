"""A scripted OpenAI-compatible endpoint on 127.0.0.1 that can misbehave on purpose.

For tests and benchmarks of the endpoint path: real HTTP/1.1 (keep-alive, one asyncio loop), a
fixed latency per reply, and a share of requests answered with a fault instead (see ``FAULTS``).
Whether a request faults depends on its content and attempt number, not on arrival order, so a
concurrent run faults the same requests every time. The server is loopback only and bounded: it
stops by itself after ``max_requests`` requests or ``lifetime`` seconds, and when its ``with`` block
ends.

Example:
    >>> with FakeEndpoint(lambda prompt: "3 + 4 = 7", fault_rate=0.3) as server:  # doctest: +SKIP
    ...     ChatClient("teacher", EndpointConfig(base_url=server.base_url, model="m"), store)

Run it on its own (the benchmark does, so the server has its own interpreter)::

    python -m tests.fake_endpoint --latency 0.05 --fault-rate 0.3 --port-file port.txt
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

FAULTS = (
    "rate_limit",  # 429, no Retry-After
    "rate_limit_retry_after",  # 429 with Retry-After (and retry-after-ms)
    "server_error",  # 500
    "unavailable",  # 503
    "reset",  # the connection is dropped without a reply
    "timeout",  # no reply until the client gives up (held at most ``hang`` seconds)
    "slow",  # a valid reply after ``slow`` seconds
    "truncated",  # the reply body stops half way
    "malformed",  # 200 with a body that is not JSON
    "empty_choices",  # 200 with "choices": []
    "wrong_schema",  # 200 with JSON that is not a chat completion
)


class FakeEndpoint:
    """``with FakeEndpoint(script) as server: ... server.base_url ...``.

    ``script(prompt)`` gives the reply to a request's last message. ``requests`` keeps every
    chat request's last message, ``headers`` its HTTP headers (lower-case names), ``faults`` counts
    the faults served by kind. Token usage is counted in words unless ``usage`` fixes it as
    ``(prompt_tokens, completion_tokens)``.

    Faults: each attempt at a prompt (the n-th time that prompt arrives) faults with probability
    ``fault_rate``, decided by a hash of ``seed``, the prompt and n; the fault's kind is drawn the
    same way from ``faults``. ``fail_first=k`` instead faults every prompt's first k attempts.
    With ``api_key``, a request without that bearer key gets 401 (also ``GET /v1/models``).
    """

    def __init__(
        self,
        script: Callable[[str], str] = lambda prompt: "ok",
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        fail_first: int = 0,
        seed: int = 0,
        usage: tuple[int, int] | None = None,
        retry_after: float = 1.0,
        slow: float = 0.5,
        hang: float = 30.0,
        max_requests: int = 1_000_000,
        lifetime: float = 900.0,
        port: int = 0,
        api_key: str | None = None,
    ):
        unknown = sorted(set(faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULTS)}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, got {fault_rate}")
        self.script = script
        self.latency = latency
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(faults)
        self.fail_first = fail_first
        self.seed = seed
        self.usage = usage
        self.retry_after = retry_after
        self.slow = slow
        self.hang = hang
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.port = port
        self.api_key = api_key  # when set, requests without "Bearer <api_key>" get a 401
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.faults: Counter[str] = Counter()
        self.served = 0  # requests answered with a valid completion
        self._attempts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> FakeEndpoint:
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake endpoint did not start within 10 s")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(10)

    def stop(self) -> None:
        """Stop serving (safe from any thread, and more than once)."""
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    async def serve(self, on_ready: Callable[[int], None] | None = None) -> None:
        """Serve until stopped, ``max_requests`` is reached or ``lifetime`` runs out."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if on_ready:
            on_ready(self.port)
        self._ready.set()
        try:
            await asyncio.wait_for(self._stopped.wait(), self.lifetime)
        except TimeoutError:
            pass
        finally:
            self._server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            await self._server.wait_closed()

    # -- HTTP -----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._connections.add(writer)
        try:
            while not self._stopped.is_set():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                method, path, headers = _parse_head(head)
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._respond(method, path, headers, body, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _respond(self, method, path, headers, body, writer) -> bool:
        """Answer one request; False when the connection must close."""
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            await _send(writer, 401, {"error": {"message": "invalid api key", "type": "auth"}})
            return True
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await _send(
                writer, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]}
            )
            return True
        if method == "GET" and path.rstrip("/").endswith("/health"):
            await _send(writer, 200, {"status": "ok"})
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await _send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        if len(self.requests) >= self.max_requests:
            self.stop()
            return False
        request = json.loads(body)
        prompt = str(request["messages"][-1]["content"])
        self.requests.append(prompt)
        self.headers.append(headers)
        self._attempts[prompt] += 1
        kind = self._fault_for(prompt, self._attempts[prompt])
        if kind:
            self.faults[kind] += 1
            return await self._fault(kind, request, prompt, writer)
        if self.latency:
            await asyncio.sleep(self.latency)
        await _send(writer, 200, self._completion(request, prompt))
        self.served += 1
        return True

    def _fault_for(self, prompt: str, attempt: int) -> str | None:
        if self.fail_first:
            if attempt > self.fail_first:
                return None
            draw = _unit(self.seed, prompt, attempt, "kind")
            return self.fault_kinds[int(draw * len(self.fault_kinds))]
        if not self.fault_rate or _unit(self.seed, prompt, attempt, "fault") >= self.fault_rate:
            return None
        return self.fault_kinds[
            int(_unit(self.seed, prompt, attempt, "kind") * len(self.fault_kinds))
        ]

    async def _fault(self, kind: str, request: dict, prompt: str, writer) -> bool:
        error = {"error": {"message": f"injected fault: {kind}", "type": kind}}
        if kind == "rate_limit":
            await _send(writer, 429, error)
        elif kind == "rate_limit_retry_after":
            extra = {
                "Retry-After": str(math.ceil(self.retry_after)),
                "retry-after-ms": str(int(self.retry_after * 1000)),
            }
            await _send(writer, 429, error, extra)
        elif kind == "server_error":
            await _send(writer, 500, error)
        elif kind == "unavailable":
            await _send(writer, 503, error)
        elif kind == "reset":
            writer.transport.abort()
            return False
        elif kind == "timeout":
            try:
                await asyncio.wait_for(self._stopped.wait(), self.hang)
            except TimeoutError:
                pass
            writer.transport.abort()
            return False
        elif kind == "slow":
            await asyncio.sleep(self.slow)
            await _send(writer, 200, self._completion(request, prompt))
            self.served += 1
        elif kind == "truncated":
            payload = json.dumps(self._completion(request, prompt)).encode()
            writer.write(_head(200, len(payload)) + payload[: len(payload) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        elif kind == "malformed":
            await _send(writer, 200, b'{"id": "x", "choices": [{"message": ')
        elif kind == "empty_choices":
            await _send(writer, 200, {**self._completion(request, prompt), "choices": []})
        elif kind == "wrong_schema":
            await _send(writer, 200, {"result": self.script(prompt), "status": "done"})
        return True

    def _completion(self, request: dict, prompt: str) -> dict:
        reply = self.script(prompt)
        tokens = self.usage or (len(prompt.split()), len(reply.split()))
        return {
            "id": f"fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": tokens[0],
                "completion_tokens": tokens[1],
                "total_tokens": sum(tokens),
            },
        }


def _unit(seed: int, prompt: str, attempt: int, what: str) -> float:
    """A number in [0, 1) fixed by its arguments."""
    digest = hashlib.blake2b(f"{seed}\0{what}\0{attempt}\0{prompt}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


_REASONS = {
    200: "OK",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _head(status: int, length: int, extra: dict[str, str] | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(writer, status: int, body: dict | bytes, extra: dict[str, str] | None = None):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    writer.write(_head(status, len(payload), extra) + payload)
    await writer.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per valid reply")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated kinds")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--hang", type=float, default=30.0)
    parser.add_argument("--slow", type=float, default=0.5)
    parser.add_argument("--reply", default="3 + 4 = 7", help="the reply to every prompt")
    parser.add_argument("--lifetime", type=float, default=900.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = FakeEndpoint(
        lambda prompt: args.reply,
        latency=args.latency,
        fault_rate=args.fault_rate,
        faults=tuple(k for k in args.faults.split(",") if k),
        retry_after=args.retry_after,
        hang=args.hang,
        slow=args.slow,
        seed=args.seed,
        max_requests=args.max_requests,
        lifetime=args.lifetime,
        port=args.port,
    )

    def ready(port: int) -> None:
        if args.port_file:
            tmp = args.port_file.with_suffix(".tmp")
            tmp.write_text(str(port))
            tmp.replace(args.port_file)
        print(f"fake endpoint on http://127.0.0.1:{port}/v1", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: server.stop())  # `kill` ends it with its summary
    try:
        asyncio.run(server.serve(ready))
    except KeyboardInterrupt:
        pass
    print(f"served {server.served}, faults {dict(server.faults)}", flush=True)


if __name__ == "__main__":
    main()
