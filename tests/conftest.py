"""Shared fixtures. The network is blocked (loopback aside) and model caches live in a temp dir."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
        return _real_connect(self, address)
    raise RuntimeError(f"tests may not reach the network (tried {address!r})")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """A private FAILFORWARD_CACHE for the session (the tiny student is built here)."""
    path = tmp_path_factory.mktemp("ff-cache")
    os.environ["FAILFORWARD_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_student_dir(model_cache) -> Path:
    from failforward.training.student_model import build_tiny_student

    return build_tiny_student(model_cache / "tiny-student")


@pytest.fixture
def small_pack(tmp_path) -> Path:
    """The arithmetic pack with small probe/test sets, as a folder (exercises path packs)."""
    from failforward.tools.packs.pack import PACKS_DIR

    target = tmp_path / "small-arithmetic"
    shutil.copytree(PACKS_DIR / "arithmetic", target)
    spec = yaml.safe_load((target / "pack.yaml").read_text())
    spec["probe"]["size"], spec["test"]["size"] = 40, 60
    (target / "pack.yaml").write_text(yaml.safe_dump(spec))
    return target


@pytest.fixture
def quiet_ui():
    from rich.console import Console

    from failforward.app.progress import LoopUI

    return LoopUI(Console(quiet=True))


@pytest.fixture
def crash_pack(tmp_path):
    """The arithmetic pack, small, one teacher request per plan target (so every prompt in a
    one-cycle run is distinct and a re-sent call is visible at the server)."""
    from failforward.tools.packs.pack import PACKS_DIR

    target = tmp_path / "crash-arithmetic"
    shutil.copytree(PACKS_DIR / "arithmetic", target)
    spec = yaml.safe_load((target / "pack.yaml").read_text())
    spec["probe"]["size"], spec["test"]["size"] = 40, 60
    spec["generator"]["per_call"] = 64
    (target / "pack.yaml").write_text(yaml.safe_dump(spec))
    return target
