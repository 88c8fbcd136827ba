"""Which endpoint each LLM role uses: the ``--llm``, ``--llm-model``, ``--llm-max-tokens`` and
``--endpoints`` options, shared by ``run``, ``compare`` and ``augment``.

``--llm`` names one endpoint for every role or ``role=URL,...``; ``--endpoints`` is a YAML file
of full per-role settings (:class:`~failforward.agents.endpoints.EndpointConfig`) that overrides
``--llm`` for the roles it names. ``local`` starts ``transformers serve`` (the application layer
does that: it owns the process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failforward.agents.endpoints import ROLES, EndpointConfig
from failforward.tools.options import OptionError, nested, option


@dataclass
class EndpointSettings:
    """The role endpoints of a run (flat options: ``llm``, ``llm_model``, ``llm_max_tokens``,
    ``endpoints``)."""

    llm: str = option(
        "none",
        "Role endpoints: none (tool-only), local (transformers serve), env (OPENAI_BASE_URL), "
        "a URL for every role, or role=URL,...",
    )
    model: str = option("", "Model name for --llm <url> (default: the OPENAI_MODEL env var).")
    max_tokens: int = option(512, "Reply token limit for every LLM call.")
    file: str = option(
        "", "YAML file of per-role endpoint settings (overrides --llm for the roles it names)."
    )

    def __post_init__(self):
        if self.max_tokens < 0:  # 0: the command's default (augment: the pack's limit)
            raise OptionError("max_tokens", f"must be >= 0, got {self.max_tokens}")

    @property
    def local(self) -> bool:
        return self.llm == "local"

    @property
    def any(self) -> bool:
        """Whether any role has an endpoint."""
        return self.llm != "none" or bool(self.file)

    def roles(self) -> set[str]:
        """The roles that will have an endpoint (read from the options alone, so it works
        before any endpoint is contacted or any model name is known)."""
        roles = set()
        if self.llm in ("local", "env"):
            roles = set(ROLES)
        elif self.llm not in ("none", ""):
            roles = set(_role_values(self.llm, "--llm"))
        if self.file:
            roles |= set(endpoints_from_file(Path(self.file)))
        return roles

    def remote(self) -> dict[str, EndpointConfig]:
        """The role endpoints named here that this process does not start itself."""
        configs = {}
        if not self.local:
            configs = endpoints_from_flag(self.llm, self.model, self.max_tokens)
        if self.file:
            configs |= endpoints_from_file(Path(self.file))
        return configs


def endpoint_options(**defaults: Any) -> Any:
    """The field that holds a command's :class:`EndpointSettings`, under their flat names."""
    rename = {"model": "llm_model", "max_tokens": "llm_max_tokens", "file": "endpoints"}
    return nested(EndpointSettings, rename=rename, **defaults)


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

    from failforward.tools.packs.pack import first_error

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
