"""Run untrusted Python (a teacher's program-of-thought) behind an operating-system boundary.

The boundary is bubblewrap (``bwrap``, the Debian ``bubblewrap`` package) around a fresh
interpreter, one process per program:

- namespaces of its own: no network (an empty network namespace), its own process table (``/proc``
  shows only the sandbox; no other process can be signalled), IPC, UTS and cgroup namespaces;
- an unprivileged user: uid/gid :data:`SANDBOX_UID`, no capabilities, ``no_new_privs``. When the
  caller is root the switch is a real ``setuid`` (util-linux ``setpriv``), so ``RLIMIT_NPROC``
  binds and files closed to other users stay closed; otherwise a user namespace maps it;
- a filesystem view that is read-only except a throwaway ``/sandbox`` (the working directory)
  and ``/tmp``, both size-limited tmpfs that vanish with the sandbox: ``/usr`` and the
  interpreter's own prefix, nothing else (no home, no project, no run folders, no ``/etc``);
- a seccomp filter (:mod:`tools.verify.seccomp`): no new processes, sockets, namespaces, mounts,
  ptrace;
- resource limits: address space, CPU seconds, file size, open files, processes;
- a wall-clock timeout that kills bubblewrap, and with it the whole sandbox (``--die-with-parent``
  and the end of its process namespace), and an environment with nothing of the caller's in it.

Inside, an audit hook is a second layer: it refuses sockets, new processes, ctypes, tracing,
``gc`` introspection and file access outside the working directory (reads of the standard library
excepted). It keeps its policy in closure cells of immutable values and calls only builtins it
captured before the program ran, so nothing the program reaches through ``sys.modules``, globals,
frames or ``__builtins__`` changes what it allows. It is no boundary on its own (Python's
documentation says so); the operating system is.

Without bubblewrap (or where the kernel refuses it namespaces) no program runs:
:func:`isolation` raises :class:`SandboxUnavailable` naming what is missing.

The program reports its answer by setting ``answer`` or, failing that, by its last printed line.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

from failforward.tools.verify import seccomp

SANDBOX_UID = 64_999  # owns nothing on the host; no passwd entry needed
WORKDIR = "/sandbox"
_TMPFS_BYTES = 16 << 20
_MAX_PROCESSES = 64  # threads count too; a fork bomb stops here if the filter is absent

_GUARD = r"""
import sys

def _install():
    import posix
    startswith, isinstance_, str_, bytes_, int_, len_, any_ = (
        str.startswith, isinstance, str, bytes, int, len, any)
    type_, tuple_, join, split, denied = type, tuple, "/".join, str.split, PermissionError
    flags_that_write = (posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_APPEND
                        | posix.O_TRUNC)
    cwd = posix.getcwd()
    readable = tuple_(p for p in sys.path if p)
    blocked = ("socket.", "subprocess.", "os.fork", "os.forkpty", "os.exec", "os.spawn",
               "os.posix_spawn", "os.system", "os.kill", "os.killpg", "os.chdir", "os.fchdir",
               "os.chroot", "os.setuid", "os.link", "os.symlink", "os.chown", "os.utime",
               "ctypes.", "pty.", "shutil.rmtree", "gc.get_", "sys.settrace", "sys.setprofile",
               "sys._current_frames", "sys.addaudithook", "signal.", "resource.setrlimit",
               "_posixsubprocess", "sys.remote_exec", "mmap.")
    banned = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "socket", "_socket", "pty",
                        "mmap", "_signal", "signal", "resource", "_tracemalloc"})
    paths = frozenset({"open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir",
                       "os.rmdir", "os.chmod", "os.truncate", "os.replace"})
    looking = frozenset({"open", "os.listdir", "os.scandir"})

    def inside(path, roots):
        if type_(path) is bytes_:
            path = path.decode("utf-8", "surrogateescape")
        if type_(path) is not str_:
            return False  # a path object could answer differently each time it is asked
        if not startswith(path, "/"):
            path = cwd + "/" + path
        parts = []
        for part in split(path, "/"):
            if part == "..":
                parts = parts[:-1]
            elif part and part != ".":
                parts.append(part)
        path = "/" + join(parts)
        for root in roots:
            if path == root or startswith(path, root + "/"):
                return True
        return False

    def hook(event, args):
        if startswith(event, blocked):
            raise denied("sandbox: " + event + " is not allowed")
        if event == "object.__setattr__" and args[1] == "__code__":
            raise denied("sandbox: replacing a function's code is not allowed")
        if event == "import" and split(args[0], ".")[0] in banned:
            raise denied("sandbox: import " + args[0] + " is not allowed")
        if event in paths and args and args[0] is not None:
            target = args[0]
            if isinstance_(target, int_):
                return
            mode = args[1] if len_(args) > 1 else None
            writing = event not in looking or (
                isinstance_(mode, str_) and any_(c in mode for c in "wax+"))
            flags = args[2] if len_(args) > 2 else 0
            writing = writing or (isinstance_(flags, int_) and flags & flags_that_write)
            if inside(target, (cwd,)) or (not writing and inside(target, readable)):
                return
            raise denied("sandbox: " + event + " outside the sandbox: " + str_(target)[:200])

    sys.addaudithook(hook)

_install()
del _install
"""
_RUNNER = r"""
def _main():
    # Everything the verdict needs is bound before the program runs: it may rebind builtins,
    # sys.stderr or this module's globals, and still cannot change what is reported for it.
    import sys
    denied, memory, exit_ = PermissionError, MemoryError, SystemExit
    str_, repr_, exec_ = str, repr, exec
    write, flush = sys.stderr.write, sys.stdout.flush
    program = {"__name__": "__sandbox__"}
    try:
        exec_(compile(sys.stdin.read(), "<program>", "exec"), program)
    except memory:
        flush()
        write("\nSANDBOX-MEMORY\n")
        raise exit_(3)
    except denied as err:
        flush()
        write("\nSANDBOX-FORBIDDEN " + str_(err) + "\n")
        raise exit_(4)
    if "answer" in program:
        flush()
        write("\nSANDBOX-ANSWER " + repr_(str_(program["answer"])) + "\n")

_main()
"""
_BOOTSTRAP = _GUARD + _RUNNER


class SandboxUnavailable(RuntimeError):
    """No operating-system isolation here; untrusted programs are refused, never run bare."""


@dataclass(frozen=True)
class Isolation:
    """The isolation :func:`run_python` uses on this machine."""

    tool: str  # e.g. "bubblewrap 0.8.0"
    user: str  # how the unprivileged user is made
    seccomp_filter: bytes | None  # the compiled filter bwrap loads; None off x86_64
    command: tuple[str, ...]  # bwrap and its options, up to the program

    @property
    def seccomp(self) -> bool:
        return self.seccomp_filter is not None

    def describe(self) -> list[str]:
        """One line per layer, for ``failforward sandbox-check``."""
        return [
            f"tool: {self.tool}",
            "namespaces: network (empty), pid, ipc, uts, cgroup; mount (read-only view)",
            f"user: uid/gid {SANDBOX_UID}, no capabilities, no_new_privs ({self.user})",
            f"filesystem: /usr and the interpreter's prefix read-only; {WORKDIR} and /tmp "
            f"writable tmpfs of {_TMPFS_BYTES >> 20} MiB each, gone when the program ends",
            "seccomp: "
            + (
                f"on ({len(seccomp.DENIED_X86_64) + 2} system calls refused)"
                if self.seccomp
                else "off (no filter table for this architecture)"
            ),
            "audit hook: on (second layer, inside the interpreter)",
        ]


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


@functools.cache
def isolation() -> Isolation:
    """The isolation in use, checked once per process by running a trivial program in it.

    Raises:
        SandboxUnavailable: bubblewrap is missing or cannot create its namespaces here.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "the code sandbox needs bubblewrap (bwrap), which is not installed; install it "
            "(Debian/Ubuntu: apt-get install bubblewrap; `make test` and `make demo` do this as "
            "root). Packs whose solver is python_program are refused until then."
        )
    root = os.geteuid() == 0
    setpriv = shutil.which("setpriv") if root else None
    if root and setpriv is None:
        raise SandboxUnavailable(
            "running as root, the sandbox drops to an unprivileged user with setpriv "
            "(util-linux), which is not installed"
        )
    found = Isolation(
        tool=_version(bwrap),
        user="setuid by setpriv" if root else "user namespace",
        seccomp_filter=seccomp.program(),
        command=tuple(_bwrap_command(bwrap, setpriv)),
    )
    probe = _run(found, "import os\nanswer = os.getuid()", 10.0, 256, 4_000, _BOOTSTRAP)
    if probe.value != str(SANDBOX_UID):
        raise SandboxUnavailable(
            f"bubblewrap is installed but could not start a sandbox here ({probe.reason}: "
            f"{probe.detail or probe.stdout[-300:]}); the kernel may forbid namespaces. "
            "Packs whose solver is python_program are refused."
        )
    return found


def run_python(
    code: str,
    timeout: float = 5.0,
    memory_mb: int = 512,
    max_output: int = 64_000,
    audit_hook: bool = True,
) -> SandboxResult:
    """Run ``code`` in the sandbox and return its answer or the reason it has none.

    ``audit_hook=False`` leaves out the in-interpreter layer (tests use it to show that the
    operating-system boundary holds by itself).

    Raises:
        SandboxUnavailable: there is no isolation to run it in.

    Example:
        >>> run_python("answer = 6 * 7").value
        '42'
        >>> run_python("import socket").reason
        'forbidden'
    """
    bootstrap = _BOOTSTRAP if audit_hook else _RUNNER
    return _run(isolation(), code, timeout, memory_mb, max_output, bootstrap)


def self_test() -> list[tuple[str, str, bool]]:
    """Probes run with the audit hook left out, so each verdict is the OS boundary's own:
    ``(what was tried, what happened, whether the boundary held)``."""
    import socket
    import tempfile

    secret_dir = tempfile.mkdtemp(prefix="ff-sandbox-check-")
    secret = os.path.join(secret_dir, "secret.txt")
    with open(secret, "w") as handle:
        handle.write("not for the sandbox")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    probes = [
        ("user", "import os\nanswer = os.getuid()", lambda r: r.value == str(SANDBOX_UID)),
        ("new process", "import os\nos.fork()\nanswer = 'forked'", lambda r: not r.ok),
        (
            "loopback connection",
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\nanswer = 'in'",
            lambda r: not r.ok and not _accepted(listener),
        ),
        ("read a host file", f"answer = open({secret!r}).read()", lambda r: not r.ok),
        (
            "write outside its folder",
            "open('/usr/ff-probe', 'w')\nanswer = 'w'",
            lambda r: not r.ok,
        ),
        (
            "caller's environment",
            "import os\nanswer = ' '.join(sorted(os.environ))",
            lambda r: r.ok and set(r.value.split()) <= {"LANG", "PWD"},
        ),
    ]
    results = []
    try:
        for name, code, held in probes:
            result = run_python(code, timeout=5, audit_hook=False)
            said = result.value if result.ok else f"{result.reason} ({result.detail})"
            results.append((name, said[:120], bool(held(result))))
    finally:
        listener.close()
        shutil.rmtree(secret_dir, ignore_errors=True)
    return results


def _accepted(listener) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def _run(
    found: Isolation, code: str, timeout: float, memory_mb: int, max_output: int, bootstrap: str
) -> SandboxResult:
    cpu = max(1, int(timeout) + 1)

    def limit() -> None:  # runs in the child between fork and exec (of bwrap)
        os.setsid()
        for name, value in (
            (resource.RLIMIT_AS, memory_mb << 20),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, 1 << 20),
            (resource.RLIMIT_NOFILE, 64),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, _MAX_PROCESSES),
        ):
            resource.setrlimit(name, (value, value))

    read_end = None
    command = list(found.command)
    if found.seccomp_filter is not None:
        read_end, write_end = os.pipe()
        os.write(write_end, found.seccomp_filter)  # a few hundred bytes: fits the pipe's buffer
        os.close(write_end)
        command[1:1] = ["--seccomp", str(read_end)]
    command += [base_interpreter(), "-I", "-S", "-c", bootstrap]
    try:
        process = subprocess.Popen(
            command,
            env={"LANG": "C.UTF-8"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limit,
            pass_fds=() if read_end is None else (read_end,),
            text=True,
            errors="replace",
        )
    finally:
        if read_end is not None:
            os.close(read_end)
    try:
        stdout, stderr = process.communicate(code, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return SandboxResult("timeout", None, "", f"killed after {timeout:.0f}s wall clock")
    return _interpret(process.returncode, stdout[:max_output], stderr[-max_output:])


def _bwrap_command(bwrap: str, setpriv: str | None) -> list[str]:
    """bubblewrap's options, up to where the interpreter's command line starts."""
    command = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    command += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    command += ["--setenv", "LANG", "C.UTF-8", "--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{top}"
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    for path in _interpreter_dirs():
        command += ["--ro-bind", path, path]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--perms", "0777", "--size", str(_TMPFS_BYTES), "--tmpfs", WORKDIR]
    command += ["--perms", "1777", "--size", str(_TMPFS_BYTES), "--tmpfs", "/tmp"]
    command += ["--chdir", WORKDIR]
    uid = str(SANDBOX_UID)
    if setpriv is None:  # not root: a user namespace makes the sandbox's user
        return command + ["--unshare-user", "--uid", uid, "--gid", uid, "--cap-drop", "ALL", "--"]
    return command + [
        "--",
        setpriv,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ]


def _interpreter_dirs() -> list[str]:
    """The interpreter's prefix (and its binary's folder if elsewhere), outside /usr."""
    dirs = []
    for path in (sys.base_prefix, os.path.dirname(base_interpreter())):
        path = os.path.realpath(path)
        covered = any(path == d or path.startswith(d + "/") for d in ["/usr", *dirs])
        if not covered:
            dirs.append(path)
    return dirs


def base_interpreter() -> str:
    """The interpreter under the virtualenv, if any: a venv's python would add the project's
    site-packages back (the SQL worker runs on it too)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "bubblewrap"
    return out.stdout.strip() or "bubblewrap"


def _interpret(returncode: int, stdout: str, stderr: str) -> SandboxResult:
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "SANDBOX-FORBIDDEN" in stderr:
        detail = stderr.split("SANDBOX-FORBIDDEN", 1)[1].strip().splitlines()[0]
        return SandboxResult("forbidden", None, stdout, detail)
    if "SANDBOX-MEMORY" in stderr or "MemoryError" in tail:
        return SandboxResult("memory", None, stdout, "memory limit reached")
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU, 128 + 9):
        return SandboxResult("timeout", None, stdout, "CPU limit reached")
    if returncode != 0:
        return SandboxResult("error", None, stdout, tail[:300])
    if "SANDBOX-ANSWER" in stderr:
        raw = stderr.rsplit("SANDBOX-ANSWER", 1)[1].strip().splitlines()[0]
        return SandboxResult("ok", _literal(raw), stdout)
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return SandboxResult("empty", None, stdout, "the program set no answer and printed nothing")
    return SandboxResult("ok", lines[-1].strip(), stdout)


def _literal(raw: str) -> str:
    """The answer line's string literal (written with repr: json is not imported inside)."""
    import ast

    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    return value if isinstance(value, str) else str(value)
