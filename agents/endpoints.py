"""One client for every model a role may use, with a per-run call cache.

A role (teacher, critic, analyst) gets an :class:`EndpointConfig`; :class:`ChatClient` sends its
prompts through the ``openai`` client (``AsyncOpenAI`` at the config's ``base_url``,
``concurrency`` requests in flight) or through any LangChain chat model (``chat_model=``), retries
transient faults with capped exponential backoff and jitter (honouring ``Retry-After``), keeps to
the role's request and token rates, and stores every reply in the run store the moment it
arrives, so a resumed run, even after a kill, repeats no completed call. API keys are read from
the environment variable the config names (or a key file) and are never stored.

The retries are this module's, not the SDK's (``max_retries=0``): the SDK retries only what an
HTTP status or a dropped connection says (a 200 whose body is not a chat completion is not
retried), its delays are fixed (0.5 s doubling to 8 s), and its attempts are invisible to the
fault counts the report shows.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import email.utils
import functools
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from failforward.tools.store import CallTables

ROLES = ("teacher", "critic", "analyst")


@dataclass(frozen=True)
class Roles:
    """A run's role clients: a role with no endpoint (or chat model) is None."""

    teacher: ChatClient | None = None
    critic: ChatClient | None = None
    analyst: ChatClient | None = None


class EndpointConfig(BaseModel):
    """Where one role's LLM lives and how to talk to it."""

    base_url: str = Field(description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="Model name sent with each request.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable with the key.")
    api_key_file: str | None = Field(
        None, description="File holding the key (read at each start; used when set)."
    )
    concurrency: int = Field(4, gt=0, description="Requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    retries: int = Field(3, ge=0, description="Retries per request on transient errors.")
    backoff: float = Field(0.5, ge=0, description="First retry's delay in seconds (doubles).")
    max_backoff: float = Field(60.0, ge=0, description="Longest wait before a retry, seconds.")
    requests_per_minute: float | None = Field(None, gt=0, description="Request rate limit.")
    tokens_per_minute: float | None = Field(
        None, gt=0, description="Token rate limit (prompt estimate + max_tokens, then actual)."
    )
    prompt_price: float | None = Field(None, ge=0, description="Price per 1M prompt tokens.")
    completion_price: float | None = Field(
        None, ge=0, description="Price per 1M completion tokens."
    )
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(512, gt=0)

    @field_validator("base_url")
    @classmethod
    def _is_url(cls, value: str) -> str:
        from urllib.parse import urlparse

        parts = urlparse(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    def public(self) -> dict[str, Any]:
        """The config without anything secret (the key itself is never held here anyway)."""
        return self.model_dump()

    def api_key(self) -> str | None:
        """The key from ``api_key_file`` when set, else from the ``api_key_env`` variable."""
        if self.api_key_file:
            try:
                return Path(self.api_key_file).expanduser().read_text().strip() or None
            except OSError as err:
                raise ValueError(
                    f"api_key_file {self.api_key_file}: cannot read it: {err}"
                ) from err
        return os.environ.get(self.api_key_env) or None


class CallFailed(Exception):
    """One attempt at a request failed. ``kind`` says how (``FAULT_KINDS``), ``retryable``
    whether another attempt may succeed, ``retry_after`` what the server asked us to wait."""

    def __init__(self, kind: str, detail: str, retryable: bool, retry_after: float | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


FAULT_KINDS = (
    "rate_limited",  # 429
    "server_error",  # 5xx, 408
    "connection",  # refused, reset, closed mid-reply
    "timeout",  # no complete reply within the config's timeout
    "malformed",  # a reply body that is not JSON
    "bad_reply",  # JSON, but no choices[0].message.content string
    "auth",  # 401/403: the key is missing or rejected (not retried)
    "rejected",  # another 4xx (not retried)
    "model_error",  # a LangChain chat model raised
)


@dataclass
class Reply:
    text: str
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens


Send = Callable[[dict[str, Any]], Awaitable[Reply]]


class ChatClient:
    """Sends prompts for one role; replies are cached in the run store by request content.

    ``errors`` has one line per request that failed after its retries; ``faults`` counts every
    failed attempt by kind (``retried`` those that were tried again). ``chat_model`` sends the
    prompts to a LangChain ``BaseChatModel`` instead of ``config.base_url`` (see
    :func:`chat_model_send`). ``send`` replaces the call in unit tests (an async function of the
    request dict returning a :class:`Reply`); ``sleep`` replaces the wait between retries.

    Example:
        >>> client = ChatClient("teacher", config, store)          # doctest: +SKIP
        >>> client.complete(["Write one sum."])                    # doctest: +SKIP
        ['3 + 4 = 7']
    """

    def __init__(
        self,
        role: str,
        config: EndpointConfig,
        store: CallTables,
        send: Send | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        chat_model: Any = None,
    ):
        self.role = role
        self.config = config
        self.store = store
        self.transport = send  # None: the openai client at config.base_url
        if chat_model is not None:
            self.transport = chat_model_send(chat_model)
        self._sleep = sleep
        self.errors: list[str] = []
        self.faults: Counter[str] = Counter()
        self.retried = 0
        self.sent = 0  # attempts that reached the transport
        self.cached = 0  # requests answered from the run's call cache
        self._requests = RateLimiter(config.requests_per_minute)
        self._tokens = RateLimiter(config.tokens_per_minute)
        self._writer: concurrent.futures.Executor | None = None  # see _send_all

    def complete(
        self,
        prompts: list[str],
        system: str | None = None,
        temperature: float | None = None,
        tags: list[str] | None = None,
        advance: Callable[[int], None] | None = None,
    ) -> list[str | None]:
        """One reply per prompt (None where the endpoint failed after its retries).

        ``advance(n)`` is called as requests finish (the cached ones at once), for a progress bar.

        ``tags`` name what each request is for (e.g. ``c2-k0/1``: cycle 2, cluster 0, call 1).
        They are part of the cache key but never sent, so two requests with the same prompt for
        different purposes get separate replies, and a resumed run finds exactly its own.
        """
        temperature = self.config.temperature if temperature is None else temperature
        tags = tags or [""] * len(prompts)
        requests = [_request(p, system, temperature, t) for p, t in zip(prompts, tags, strict=True)]
        keys = [self.store.call_key(self.role, self.config.model, r) for r in requests]
        replies = [self.store.cached_call(k) for k in keys]
        todo = [i for i, reply in enumerate(replies) if reply is None]
        self.cached += len(requests) - len(todo)
        if advance and len(requests) > len(todo):
            advance(len(requests) - len(todo))
        if todo:
            jobs = [(keys[i], requests[i]) for i in todo]
            results = _run(self._send_all(jobs, advance))
            for i, text in zip(todo, results, strict=True):
                replies[i] = text
        return replies

    async def _send_all(
        self, jobs: list[tuple[str, dict]], advance: Callable[[int], None] | None = None
    ) -> list[str | None]:
        limit = asyncio.Semaphore(self.config.concurrency)
        client = None
        send = self.transport
        if send is None:
            client = openai_client(self.config)
            send = openai_send(client, self.config)

        async def one(key: str, request: dict) -> str | None:
            async with limit:
                reply = await self._call(send, request)
            if advance:
                advance(1)
            if reply is None:
                return None
            # Saved the moment it arrives: a kill after this line never pays for it again.
            await self._write(
                self.store.save_call,
                key, self.role, self.config.model, request, reply.text, reply.usage,
            )  # fmt: skip
            return reply.text

        # The store's SQLite writes run on one thread of their own, in arrival order: never
        # in the event loop (a server such as `langgraph dev` refuses blocking calls there).
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        try:
            return await asyncio.gather(*(one(k, r) for k, r in jobs))
        finally:
            self._writer.shutdown(wait=True)
            self._writer = None
            if client is not None:
                await client.close()

    async def _write(self, method: Callable, *args) -> None:
        """Call a store method on the writer thread and wait for it."""
        if self._writer is None:
            return method(*args)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, functools.partial(method, *args))

    async def _call(self, send: Send, request: dict) -> Reply | None:
        """One request with its retries; None (and a line in ``errors``) when it fails."""
        estimate = _token_estimate(request, self.config.max_tokens)
        for attempt in range(self.config.retries + 1):
            await self._requests.acquire(1)
            await self._tokens.acquire(estimate)
            self.sent += 1
            try:
                reply = await send(request)
            except CallFailed as err:
                self.faults[err.kind] += 1
                self._tokens.refund(estimate)  # a failed attempt used (almost) no tokens
                final = not err.retryable or attempt == self.config.retries
                await self._write(
                    self.store.save_call_fault, self.role, request, err.kind, str(err), final
                )
                if final:
                    self.errors.append(f"{err} (after {attempt + 1} attempts)")
                    return None
                self.retried += 1
                await self._sleep(retry_delay(attempt, self.config, err.retry_after))
                continue
            used = reply.usage.get("input_tokens", 0) + reply.usage.get("output_tokens", 0)
            if used:
                self._tokens.refund(estimate - used)
            return reply
        return None


def retry_delay(
    attempt: int, config: EndpointConfig, retry_after: float | None = None, rng=random
) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's ``Retry-After`` when it gave
    one (plus up to 10% jitter), else ``backoff * 2**attempt`` with "equal jitter" (between half
    and all of it); never more than ``max_backoff``.

    Example:
        >>> config = EndpointConfig(base_url="http://h/v1", model="m", backoff=1.0)
        >>> 2.0 <= retry_delay(2, config) <= 4.0
        True
    """
    if retry_after is not None:
        return min(config.max_backoff, retry_after * (1 + 0.1 * rng.random()))
    ceiling = min(config.max_backoff, config.backoff * 2**attempt)
    return ceiling * (0.5 + 0.5 * rng.random())


class RateLimiter:
    """A token bucket for ``per_minute`` units (requests or tokens); ``None`` never waits.

    It holds at most one second of units; an acquisition waits until the bucket has
    ``min(cost, capacity)`` and may then take it below zero, so a cost larger than a second's
    worth still goes through, and the debt slows what follows.
    """

    def __init__(self, per_minute: float | None, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0 if per_minute else None
        self.capacity = max(1.0, self.rate or 0.0)
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, cost: float) -> None:
        if self.rate is None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # first come, first served
            need = min(cost, self.capacity)
            self._refill()
            while self.level < need:
                await asyncio.sleep((need - self.level) / self.rate)
                self._refill()
            self.level -= cost

    def refund(self, amount: float) -> None:
        if self.rate is not None:
            self.level = min(self.capacity, self.level + amount)


def _token_estimate(request: dict, max_tokens: int) -> int:
    chars = len(request["prompt"]) + len(request["system"] or "")
    return chars // 4 + max_tokens


def openai_client(config: EndpointConfig):
    """An ``AsyncOpenAI`` for one role: its URL, key and timeout, no retries of its own (this
    module's loop retries, see the module's docstring), on the SDK's aiohttp transport
    (``openai[aiohttp]``, the SDK's faster one). ``concurrency`` bounds what is in flight."""
    import openai

    return openai.AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key() or "none",  # a local server wants no key; the SDK wants one
        timeout=config.timeout,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=config.timeout),
    )


def openai_send(client, config: EndpointConfig) -> Send:
    """One attempt at a chat completion through the ``openai`` client; each fault the SDK raises
    (or a 200 reply that is not a chat completion) becomes a :class:`CallFailed` of its kind."""
    import openai

    async def send(request: dict) -> Reply:
        try:
            completion = await client.chat.completions.create(
                model=config.model,
                messages=_messages(request),
                temperature=request["temperature"],
                max_tokens=config.max_tokens,
            )
        except openai.APIConnectionError as err:  # APITimeoutError too
            raise _connection_fault(err, config.timeout) from err
        except openai.APIStatusError as err:
            raise _status_fault(err) from err
        except ValueError as err:  # the SDK's json.loads of a body that is not JSON
            raise CallFailed("malformed", f"reply is not JSON: {err}", True) from err
        return completion_reply(completion)

    return send


def _connection_fault(err: Exception, timeout: float) -> CallFailed:
    """A timeout only when the cause is one: the SDK's aiohttp transport reports a refused or
    dropped connection as ``APITimeoutError`` (it maps every aiohttp connection error to a
    connect timeout), so the type alone would call those timeouts."""
    causes = []
    while err is not None and len(causes) < 10:
        causes.append(err)
        err = err.__cause__ or err.__context__
    if any(isinstance(cause, TimeoutError) for cause in causes):
        return CallFailed("timeout", f"no reply within {timeout:g}s", True)
    root = causes[-1]
    return CallFailed("connection", f"{type(root).__name__}: {root}", True)


def _status_fault(err) -> CallFailed:
    status = err.status_code
    detail = f"HTTP {status}: {err.response.text[:200]}"
    retry_after = _retry_after(err.response.headers)
    if status == 429:
        return CallFailed("rate_limited", detail, True, retry_after)
    if status >= 500 or status == 408:
        return CallFailed("server_error", detail, True, retry_after)
    if status in (401, 403):
        return CallFailed("auth", detail, False)
    return CallFailed("rejected", detail, False)


def completion_reply(completion) -> Reply:
    """The text and token usage of what ``chat.completions.create`` returned, or a
    :class:`CallFailed` (``bad_reply``) when it is not a chat completion with a text message."""
    choices = getattr(completion, "choices", None)
    if not choices:
        shape = "no choices" if isinstance(choices, list) else type(completion).__name__
        raise CallFailed("bad_reply", f"no choices[0].message.content ({shape})", True)
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str):
        raise CallFailed("bad_reply", f"message content is {type(text).__name__}", True)
    usage = getattr(completion, "usage", None)
    return Reply(
        text,
        {
            "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        },
    )


def chat_model_config(model, **settings: Any) -> EndpointConfig:
    """The role settings of a LangChain chat model: its model name (from ``model_name`` or
    ``model``, else its class) in the call cache's key, ``base_url`` ``langchain:<class>``
    (nothing is sent there), and the defaults or ``settings`` for concurrency, retries, rates."""
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    kind = type(model).__name__
    config = EndpointConfig(base_url="http://unused", model=str(name or kind), **settings)
    # Not an http(s) URL, so set past the validator: the settings are checked, the URL is a label.
    return config.model_copy(update={"base_url": f"langchain:{kind}"})


def chat_model_send(model) -> Send:
    """One attempt at a reply from a LangChain chat model (any ``BaseChatModel``, e.g. from
    ``init_chat_model``): its ``ainvoke`` with the system and user messages.

    Token usage comes from the reply's ``usage_metadata``. The request's temperature is applied
    to a copy of the model when the model has a ``temperature`` field; otherwise the model's own
    settings hold. An exception from the model is a retryable ``model_error`` fault (a model with
    retries of its own, such as ``ChatOpenAI(max_retries=...)``, tries first).
    """
    variants: dict[float, Any] = {}

    def at(temperature: float):
        if "temperature" not in getattr(type(model), "model_fields", {}):
            return model
        if temperature not in variants:
            variants[temperature] = model.model_copy(update={"temperature": temperature})
        return variants[temperature]

    async def send(request: dict) -> Reply:
        try:
            message = await at(request["temperature"]).ainvoke(_messages(request))
        except Exception as err:  # noqa: BLE001 - any model's failure is a fault of the call
            raise CallFailed("model_error", f"{type(err).__name__}: {err}", True) from err
        text = message.content if isinstance(message.content, str) else message.text
        usage = getattr(message, "usage_metadata", None) or {}
        tokens = {k: int(usage.get(k) or 0) for k in ("input_tokens", "output_tokens")}
        return Reply(text, tokens)

    return send


def _retry_after(headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _run(coroutine):
    """Run a coroutine to its end from sync code, also where a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _request(prompt: str, system: str | None, temperature: float, tag: str) -> dict[str, Any]:
    return {"system": system, "prompt": prompt, "temperature": temperature, "tag": tag}


def _messages(request: dict[str, Any]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": request["system"]}] if request["system"] else []
    return [*messages, {"role": "user", "content": request["prompt"]}]


def check_endpoints(configs: dict[str, EndpointConfig], timeout: float = 10.0) -> None:
    """Fail before any work when a role's endpoint is unreachable or rejects its key.

    One ``models.list()`` (``GET {base_url}/models``) per distinct URL and key; the error names
    the role, the URL and where the key came from, never the key. Any other answer (a server
    without ``/models`` says 404) counts as reachable.
    """
    import openai

    seen: set[tuple[str, str | None]] = set()
    for role, config in configs.items():
        key = config.api_key()
        if (config.base_url, key) in seen:
            continue
        seen.add((config.base_url, key))
        client = openai.OpenAI(
            base_url=config.base_url, api_key=key or "none", timeout=timeout, max_retries=0
        )
        source = f"file {config.api_key_file}" if config.api_key_file else f"${config.api_key_env}"
        try:
            client.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            state = "rejects the API key from" if key else "needs an API key; none in"
            raise ValueError(
                f"{role} endpoint {config.base_url} {state} {source} (HTTP {err.status_code})"
            ) from None
        except openai.APIConnectionError as err:
            reason = err.__cause__ or err
            raise ValueError(
                f"{role} endpoint {config.base_url} is unreachable: {reason}"
            ) from None
        except openai.APIStatusError:
            pass  # reachable, and the key was not refused
        finally:
            client.close()


KV_BLOCK_TOKENS = 64  # tokens per page of the local server's KV cache


class LocalServer:
    """``transformers serve`` on a free 127.0.0.1 port for a local model folder.

    Started on ``__enter__`` (waits until ``/health`` answers), stopped on ``__exit__``, also when
    the body raises or the user presses Ctrl-C. With ``batch`` > 1 the server runs continuous
    batching and the endpoint sends up to ``batch`` requests at once (the README has the measured
    speed-up, ``benchmarks/local_teacher.py``). Its paged KV cache holds ``batch`` requests of
    ``context`` tokens (prompt and reply); left to itself transformers sizes that cache from the
    machine's memory.

    Example:
        >>> with LocalServer(model_dir) as server:                  # doctest: +SKIP
        ...     config = server.endpoint()
    """

    def __init__(
        self, model_dir: Path, startup_timeout: float = 180.0, batch: int = 8, context: int = 2048
    ):
        self.model_dir = str(model_dir)
        self.startup_timeout = startup_timeout
        self.batch = batch
        self.context = context
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def endpoint(self, **overrides: Any) -> EndpointConfig:
        # Retries would resend slow CPU generations.
        defaults = dict(
            base_url=self.base_url,
            model=self.model_dir,
            concurrency=self.batch,
            retries=0,
            timeout=1800.0,  # a reply waits its turn in the batch on a slow CPU
            max_tokens=256,
        )
        return EndpointConfig(**{**defaults, **overrides})

    def __enter__(self) -> LocalServer:
        self.port = _free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="failforward-serve-", suffix=".log")[1])
        command = [
            sys.executable,
            "-m",
            "transformers.cli.transformers",
            "serve",
            self.model_dir,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
        ]
        if self.batch > 1:
            blocks = -(-self.batch * self.context // KV_BLOCK_TOKENS)
            command += ["--continuous-batching", "--cb-block-size", str(KV_BLOCK_TOKENS)]
            command += ["--cb-num-blocks", str(blocks), "--cb-max-batch-tokens", "1024"]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
        # Same process group as us, so a Ctrl-C or a group kill reaches the server too; atexit
        # covers a plain interpreter exit that skips __exit__.
        atexit.register(self.__exit__, None, None, None)
        try:
            self._wait_healthy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text()[-2000:]
                raise RuntimeError(
                    f"transformers serve exited with {self.process.returncode}:\n{tail}"
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise TimeoutError(
            f"transformers serve not healthy after {self.startup_timeout:.0f}s ({health})"
        )

    def __exit__(self, *exc) -> None:
        atexit.unregister(self.__exit__)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
