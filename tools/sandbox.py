"""Run untrusted Python (a teacher's program-of-thought) in a locked-down subprocess.

Layers, each catching what the others might miss:
- a fresh isolated interpreter (``-I -S``: no site-packages, no user paths, no env variables);
- resource limits: address space, CPU seconds, file size, open files;
- a wall-clock timeout that kills the whole process group;
- a throwaway working directory, deleted afterwards;
- an audit hook, installed before the untrusted code runs and impossible to remove, that refuses
  sockets, new processes (fork, exec, spawn, subprocess, os.system), signals to other processes,
  ctypes and file access outside the working directory (reads of the standard library excepted).

The program reports its answer by setting ``answer`` or, failing that, by its last printed line.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

_BOOTSTRAP = r"""
import json, os, sys
_code = sys.stdin.read()
_cwd = os.path.realpath(os.getcwd())
_stdlib = tuple(os.path.realpath(p) for p in sys.path if p and os.path.isdir(p))
_realpath, _fspath, _isinstance, _str = os.path.realpath, os.fspath, isinstance, str
_BLOCKED = ("socket.", "subprocess.", "os.fork", "os.forkpty", "os.exec", "os.spawn",
            "os.posix_spawn", "os.system", "os.kill", "os.killpg", "ctypes.", "pty.",
            "os.setuid", "os.chroot", "shutil.rmtree", "os.link", "os.symlink")
_BANNED_MODULES = {"ctypes", "_ctypes", "_posixsubprocess", "socket", "_socket", "pty"}

def _hook(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] in _BANNED_MODULES:
        raise PermissionError(f"sandbox: import {args[0]} is not allowed")
    if event in ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir",
                 "os.rmdir", "os.chmod", "os.truncate") and args and args[0] is not None:
        target = args[0]
        if _isinstance(target, int):
            return
        path = _realpath(_fspath(target) if not _isinstance(target, (bytes, _str)) else target)
        path = path.decode() if _isinstance(path, bytes) else path
        writing = event != "open" or (len(args) > 1 and _isinstance(args[1], _str)
                                       and any(c in args[1] for c in "wax+"))
        if path == _cwd or path.startswith(_cwd + os.sep):
            return
        reading = not writing and event in ("open", "os.listdir", "os.scandir")
        if reading and path.startswith(_stdlib):
            return
        raise PermissionError(f"sandbox: {event} outside the sandbox: {path}")

sys.addaudithook(_hook)
_globals = {"__name__": "__sandbox__"}
try:
    exec(compile(_code, "<program>", "exec"), _globals)
except MemoryError:
    sys.stdout.flush()
    os.write(2, b"\nSANDBOX-MEMORY\n")
    raise SystemExit(3)
except PermissionError as err:
    sys.stdout.flush()
    os.write(2, ("\nSANDBOX-FORBIDDEN " + str(err) + "\n").encode())
    raise SystemExit(4)
if "answer" in _globals:
    sys.stdout.flush()
    os.write(2, ("\nSANDBOX-ANSWER " + json.dumps(str(_globals["answer"])) + "\n").encode())
"""


@dataclass
class SandboxResult:
    """What a program did: ``reason`` is ``ok`` or why it was stopped."""

    reason: str  # ok | timeout | memory | forbidden | error | empty
    value: str | None
    stdout: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def run_python(
    code: str, timeout: float = 5.0, memory_mb: int = 512, max_output: int = 64_000
) -> SandboxResult:
    """Run ``code`` in the sandbox and return its answer or the reason it has none.

    Example:
        >>> run_python("answer = 6 * 7").value
        '42'
        >>> run_python("import socket").reason
        'forbidden'
    """
    workdir = tempfile.mkdtemp(prefix="ff-sandbox-")
    cpu = max(1, int(timeout) + 1)

    def limit() -> None:  # runs in the child between fork and exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    try:
        process = subprocess.Popen(
            [_interpreter(), "-I", "-S", "-c", _BOOTSTRAP],
            cwd=workdir,
            env={},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limit,
            text=True,
        )
        try:
            stdout, stderr = process.communicate(code, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return SandboxResult("timeout", None, "", f"killed after {timeout:.0f}s wall clock")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _interpret(process.returncode, stdout[:max_output], stderr[-max_output:])


def _interpreter() -> str:
    # The base interpreter: a venv's python would add the project's site-packages back.
    return getattr(sys, "_base_executable", None) or sys.executable


def _interpret(returncode: int, stdout: str, stderr: str) -> SandboxResult:
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "SANDBOX-FORBIDDEN" in stderr:
        detail = stderr.split("SANDBOX-FORBIDDEN", 1)[1].strip().splitlines()[0]
        return SandboxResult("forbidden", None, stdout, detail)
    if "SANDBOX-MEMORY" in stderr or "MemoryError" in tail:
        return SandboxResult("memory", None, stdout, "memory limit reached")
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return SandboxResult("timeout", None, stdout, "CPU limit reached")
    if returncode != 0:
        return SandboxResult("error", None, stdout, tail[:300])
    if "SANDBOX-ANSWER" in stderr:
        raw = stderr.rsplit("SANDBOX-ANSWER", 1)[1].strip().splitlines()[0]
        return SandboxResult("ok", json.loads(raw), stdout)
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return SandboxResult("empty", None, stdout, "the program set no answer and printed nothing")
    return SandboxResult("ok", lines[-1].strip(), stdout)
