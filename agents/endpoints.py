"""One client for every OpenAI-compatible endpoint a role may use, with a per-run call cache.

A role (teacher, critic, analyst) gets an :class:`EndpointConfig`; :class:`ChatClient` sends its
prompts through langchain-openai's ``ChatOpenAI`` and stores every reply in the run store, so a
resumed run repeats no call. API keys are read from the environment variable the config names and
are never stored.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

ROLES = ("teacher", "critic", "analyst")


class EndpointConfig(BaseModel):
    """Where one role's LLM lives and how to talk to it."""

    base_url: str = Field(description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="Model name sent with each request.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable with the key.")
    concurrency: int = Field(4, gt=0, description="Requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    retries: int = Field(2, ge=0, description="Retries per request on transient errors.")
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(512, gt=0)

    def public(self) -> dict[str, Any]:
        """The config without anything secret (the key itself is never held here anyway)."""
        return self.model_dump()


class ChatClient:
    """Sends prompts for one role; replies are cached in the run store by request content.

    Example:
        >>> client = ChatClient("teacher", config, store)          # doctest: +SKIP
        >>> client.complete(["Write one sum."])                    # doctest: +SKIP
        ['3 + 4 = 7']
    """

    def __init__(self, role: str, config: EndpointConfig, store, chat_model=None):
        self.role = role
        self.config = config
        self.store = store
        self._chat_model = chat_model
        self.errors: list[str] = []  # one line per request that failed after its retries

    @property
    def chat_model(self):
        if self._chat_model is None:
            from langchain_openai import ChatOpenAI

            self._chat_model = ChatOpenAI(
                base_url=self.config.base_url,
                model=self.config.model,
                api_key=os.environ.get(self.config.api_key_env) or "not-needed",
                timeout=self.config.timeout,
                max_retries=self.config.retries,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
            )
        return self._chat_model

    def complete(
        self,
        prompts: list[str],
        system: str | None = None,
        temperature: float | None = None,
        tags: list[str] | None = None,
    ) -> list[str | None]:
        """One reply per prompt (None where the endpoint failed after its retries).

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
        if todo:
            model = self.chat_model.bind(temperature=temperature)
            results = model.batch(
                [_messages(requests[i]) for i in todo],
                config={"max_concurrency": self.config.concurrency},
                return_exceptions=True,
            )
            for i, result in zip(todo, results, strict=True):
                if isinstance(result, Exception):
                    self.errors.append(f"{type(result).__name__}: {str(result)[:200]}")
                    continue
                text = result.content if isinstance(result.content, str) else str(result.content)
                usage = dict(getattr(result, "usage_metadata", None) or {})
                self.store.save_call(
                    keys[i], self.role, self.config.model, requests[i], text, usage
                )
                replies[i] = text
        return replies


def _request(prompt: str, system: str | None, temperature: float, tag: str) -> dict[str, Any]:
    return {"system": system, "prompt": prompt, "temperature": temperature, "tag": tag}


def _messages(request: dict[str, Any]):
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = [SystemMessage(request["system"])] if request["system"] else []
    return [*messages, HumanMessage(request["prompt"])]


def endpoints_from_flag(
    llm: str, llm_model: str = "", max_tokens: int = 512
) -> dict[str, EndpointConfig]:
    """Role endpoints from ``--llm``: ``none``, one URL for all roles, or ``role=URL,...``.

    The model name comes from ``--llm-model`` (one name, or ``role=name,...``), else from the
    ``OPENAI_MODEL`` environment variable. ``local`` is handled by :class:`LocalServer`.

    Example:
        >>> sorted(endpoints_from_flag("teacher=http://h/v1", "gpt-x"))
        ['teacher']
    """
    if llm in ("none", ""):
        return {}
    if llm == "env":
        llm = os.environ.get("OPENAI_BASE_URL", "")
        if not llm:
            raise ValueError("--llm env: the OPENAI_BASE_URL environment variable is not set")
    urls = _role_values(llm, "--llm")
    models = _role_values(llm_model, "--llm-model") if llm_model else {}
    configs = {}
    for role, url in urls.items():
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--llm: {url!r} is not none, local, or an http(s) URL")
        model = models.get(role) or models.get("*") or os.environ.get("OPENAI_MODEL")
        if not model:
            raise ValueError(f"--llm-model: no model name for role {role!r} (or set OPENAI_MODEL)")
        configs[role] = EndpointConfig(base_url=url, model=model, max_tokens=max_tokens)
    return configs


def endpoints_from_file(path: Path) -> dict[str, EndpointConfig]:
    """Per-role settings from YAML; an error names the file and the field.

    Example file::

        teacher: {base_url: https://api.together.xyz/v1, model: big, api_key_env: TOGETHER_KEY,
                  concurrency: 8, timeout: 60, retries: 3, temperature: 0.9}
        analyst: {base_url: http://127.0.0.1:8000/v1, model: small}
    """
    import yaml
    from pydantic import ValidationError

    from tools.packs import first_error

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read endpoint settings: {err}") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of role -> settings")
    configs = {}
    for role, values in raw.items():
        if role not in ROLES:
            raise ValueError(f"{path}: {role}: unknown role; roles are {', '.join(ROLES)}")
        try:
            configs[role] = EndpointConfig.model_validate(values)
        except ValidationError as err:
            raise ValueError(f"{path}: {first_error(err, role)}") from err
    return configs


def _role_values(flag_value: str, flag: str) -> dict[str, str]:
    if "=" not in flag_value.split(",")[0]:
        return dict.fromkeys(ROLES if flag == "--llm" else ("*",), flag_value)
    values = {}
    for part in flag_value.split(","):
        role, _, value = part.partition("=")
        if role.strip() not in ROLES:
            raise ValueError(f"{flag}: unknown role {role.strip()!r}; roles are {', '.join(ROLES)}")
        values[role.strip()] = value.strip()
    return values


class LocalServer:
    """``transformers serve`` on a free 127.0.0.1 port for a local model folder.

    Started on ``__enter__`` (waits until ``/health`` answers), stopped on ``__exit__``, also when
    the body raises or the user presses Ctrl-C.

    Example:
        >>> with LocalServer(model_dir) as server:                  # doctest: +SKIP
        ...     config = server.endpoint()
    """

    def __init__(self, model_dir: Path, startup_timeout: float = 180.0):
        self.model_dir = str(model_dir)
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def endpoint(self, **overrides: Any) -> EndpointConfig:
        # The server runs one request at a time; retries would resend slow CPU generations.
        defaults = dict(
            base_url=self.base_url,
            model=self.model_dir,
            concurrency=1,
            retries=0,
            timeout=600.0,
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
