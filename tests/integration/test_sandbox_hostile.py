"""Hostile programs against the real code sandbox (bubblewrap, seccomp, setuid, audit hook).

Each program runs twice where it matters: with the audit hook (the verdict a pack sees) and
without it (``audit_hook=False``: what the operating-system boundary holds by itself, as if the
program had defeated the hook). Either way it must leave no trace on the host.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from failforward.tools.verify.sandbox import SANDBOX_UID, isolation, run_python, self_test

THE_ISSUE_PROGRAM = """
import sys
m = sys.modules['__main__']
m._BLOCKED = ('none',); m._BANNED_MODULES = set(); m._cwd = ''
import os
print(os.listdir('/')); print(open('/etc/hostname').read())
os.fork(); os.system('echo ran > ~/outside')
answer = 'escaped'
"""

# Ways to reach the guard's state: none of them may make a forbidden call pass.
PATCHES = {
    "sys.modules": "import sys\nm = sys.modules['__main__']\nm._BLOCKED = ()\nm._cwd = '/'\n",
    "gc": "import gc\n[o for o in gc.get_objects() if callable(o)]\n",
    "frames": (
        "import sys\nf = sys._getframe()\n"
        "while f is not None:\n"
        "    f.f_globals.clear() if f.f_globals is not globals() else None\n"
        "    f = f.f_back\n"
    ),
    "traceback frames": (
        "try:\n    open('/etc/passwd')\nexcept PermissionError as e:\n    tb = e.__traceback__\n"
        "    while tb.tb_next: tb = tb.tb_next\n    tb.tb_frame.f_locals.clear()\n"
    ),
    "builtins": (
        "import builtins\nbuiltins.isinstance = lambda *a: True\n"
        "builtins.any = lambda *a: False\nbuiltins.PermissionError = ValueError\n"
        "__builtins__['str'] = bytes if isinstance(__builtins__, dict) else str\n"
    ),
    "settrace": "import sys\nsys.settrace(lambda *a: None)\n",
    "posixpath": "import posixpath, os\nposixpath.realpath = lambda p, **k: '/sandbox/x'\n",
}
FORBIDDEN_CALL = "import os\nprint(os.listdir('/'))\n"


def test_the_isolation_in_use_here():
    found = isolation()
    assert found.tool.startswith("bubblewrap") and found.seccomp
    assert all(held for _, _, held in self_test())


def test_the_program_from_the_issue_is_refused_and_leaves_nothing(tmp_path):
    home = Path.home() / "outside"
    assert run_python(THE_ISSUE_PROGRAM).reason == "forbidden"
    bare = run_python(THE_ISSUE_PROGRAM, audit_hook=False)
    assert bare.reason == "error" and "etc/hostname" in bare.detail  # no /etc in its view
    assert not home.exists()


@pytest.mark.parametrize("route", sorted(PATCHES))
def test_the_guard_cannot_be_rewritten_from_inside(route):
    result = run_python(PATCHES[route] + FORBIDDEN_CALL)
    assert result.reason == "forbidden", (route, result)
    assert "'usr'" not in result.stdout


def _status(audit_hook: bool) -> str:
    result = run_python("print(open('/proc/self/status').read())", audit_hook=audit_hook)
    return result.stdout


def test_the_program_runs_unprivileged_with_seccomp_and_no_new_privileges():
    status = dict(
        line.split(":\t", 1) for line in _status(audit_hook=False).splitlines() if ":\t" in line
    )
    assert status["Uid"].split()[0] == str(SANDBOX_UID)
    assert status["CapEff"] == "0000000000000000" and status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"


PROCESS_MAKERS = {
    "os.fork": "import os\npid = os.fork()\nanswer = pid",
    "os.system": "import os\nanswer = os.system('touch /sandbox/{m}; echo {m} > /tmp/{m}')",
    "posix_spawn": "import os\nanswer = os.posix_spawn('/bin/sh', ['sh', '-c', 'true'], {{}})",
    "_posixsubprocess": (
        "import _posixsubprocess, os\n"
        "answer = _posixsubprocess.fork_exec(['/bin/true'], [b'/bin/true'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, None, -1, None,"
        " False)"
    ),
    "subprocess": "import subprocess\nanswer = subprocess.run(['true']).returncode",
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "thread bomb": (
        "import threading, time\nfor _ in range(10000):\n"
        "    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\nanswer = 'all'"
    ),
}


@pytest.mark.parametrize("maker", sorted(PROCESS_MAKERS))
def test_no_new_process_can_be_started(maker):
    marker = f"ff-{uuid.uuid4().hex[:8]}"
    code = PROCESS_MAKERS[maker].format(m=marker)
    guarded = run_python(code, timeout=10)
    bare = run_python(code, timeout=10, audit_hook=False)
    if maker != "thread bomb":  # threads are allowed, up to the process limit
        assert guarded.reason == "forbidden", guarded
    for result in (guarded, bare):
        assert not result.ok or result.value not in ("0", "all"), (maker, result)
    assert not list(Path("/tmp").glob(f"{marker}*"))
    assert _processes_of(SANDBOX_UID) == []


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except FileNotFoundError:
                pass
    return found


def test_a_loopback_server_receives_no_connection():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    programs = [
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\nanswer = 0",
        f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\nanswer = 0",
        f"import os\nanswer = os.system('exec 3<>/dev/tcp/127.0.0.1/{port}')",
    ]
    try:
        for code in programs:
            assert run_python(code).reason == "forbidden"
            bare = run_python(code, audit_hook=False)
            assert not bare.ok or bare.value != "0", bare
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def test_secrets_of_the_host_stay_out(tmp_path, monkeypatch):
    key = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    run_db = tmp_path / "runs" / "r1" / "run.db"
    run_db.parent.mkdir(parents=True)
    with sqlite3.connect(run_db) as db:
        db.execute("CREATE TABLE meta (v TEXT)")
        db.execute("INSERT INTO meta VALUES (?)", (key,))
    planted = Path.home() / f"ff-planted-{uuid.uuid4().hex[:8]}"
    planted.write_text(key)
    reads = [
        "import os\nprint(dict(os.environ))",
        "print(open('/proc/1/environ', 'rb').read())",
        "print(open('/proc/self/environ', 'rb').read())",
        "import os\nfor p in os.listdir('/proc'):\n"
        "    try: print(open(f'/proc/{p}/environ', 'rb').read())\n    except Exception: pass",
        f"print(open({str(run_db)!r}, 'rb').read())",
        f"print(open({str(planted)!r}).read())",
        f"import os\nprint(os.listdir({str(Path.home())!r}))",
        "import os\nprint(os.listdir(os.path.expanduser('~')))",
        f"import os\nprint(os.listdir({str(tmp_path)!r}))",
        f"import os\nprint(os.listdir({os.getcwd()!r}))",
    ]
    try:
        for code in reads:
            for audit_hook in (True, False):
                result = run_python(code, audit_hook=audit_hook)
                said = result.stdout + (result.value or "")  # the detail repeats the code's paths
                assert key not in said + result.detail and planted.name not in said, result
                assert "runs" not in said.split("'") and "tests" not in said.split("'")
    finally:
        planted.unlink()


def _listing(roots: list[Path]) -> dict[str, tuple[int, int]]:
    found = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in files + dirs:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except FileNotFoundError:
                    continue
                found[path] = (info.st_size, info.st_mtime_ns)
    return found


def test_writes_land_nowhere_outside_the_throwaway_folder():
    """The program tries to write into every folder it can see. The host folders it could have
    reached are listed before and after: the trees bound into its view (``/usr``, the
    interpreter's prefix) must be unchanged, and the marker may appear nowhere, including the
    temporary folders, shared memory, home and the project."""
    marker = f"ff-{uuid.uuid4().hex[:8]}"
    everywhere = (
        "import os\nwrote = []\n"
        "for folder, dirs, files in os.walk('/'):\n"
        "    if folder.startswith(('/proc', '/sys')):\n        dirs[:] = []\n        continue\n"
        "    try:\n"
        f"        open(os.path.join(folder, {marker!r}), 'w').write('x')\n"
        "        wrote.append(folder)\n"
        "    except OSError:\n        pass\n"
        "answer = ' '.join(sorted(wrote))"
    )
    command = isolation().command
    bound = [Path(command[i + 1]) for i, arg in enumerate(command) if arg == "--ro-bind"]
    other = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path.home(), Path.cwd()]
    before = _listing(bound)
    bare = run_python(everywhere, timeout=60, audit_hook=False)
    assert bare.ok and set(bare.value.split()) == {"/sandbox", "/tmp"}, bare
    guarded = run_python(everywhere, timeout=60)
    assert guarded.ok and set(guarded.value.split()) <= {"/sandbox"}, guarded  # / unlisted
    assert run_python(f"open('/tmp/{marker}', 'w')").reason == "forbidden"
    assert _listing(bound) == before
    assert not [p for p in _listing([r for r in other if r.exists()]) if marker in p]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("x = bytearray(10**10)", "memory"),
        ("x = [0] * (10**9)", "memory"),
        ("x = []\nwhile True:\n    x.append(bytearray(10**6))", "memory"),
        ("while True: pass", "timeout"),
        ("import time\ntime.sleep(60)", "timeout"),
        ("open('big', 'w').write('x' * (50 << 20))", "error"),  # file size limit
    ],
)
def test_memory_cpu_and_disk_bombs_are_stopped(code, reason):
    for audit_hook in (True, False):
        started = time.monotonic()
        result = run_python(code, timeout=3, audit_hook=audit_hook)
        assert result.reason == reason, (code, audit_hook, result)
        assert time.monotonic() - started < 8


def test_signals_reach_nothing_outside():
    canary = subprocess.Popen(["sleep", "60"])
    try:
        programs = [
            "import os\nos.kill(os.getppid(), 9)",
            f"import os\nos.kill({os.getpid()}, 9)",
            f"import os\nos.kill({canary.pid}, 9)",
            "import os\nos.kill(-1, 9)",
        ]
        for code in programs:
            assert run_python(code).reason == "forbidden"
            run_python(code, audit_hook=False)
        assert canary.poll() is None  # and this test process is still here
    finally:
        canary.send_signal(signal.SIGKILL)
        canary.wait()


def test_legitimate_programs_still_work():
    program = """
import collections.abc, datetime, decimal, fractions, itertools, re, statistics
from collections import Counter, namedtuple
from dataclasses import dataclass

@dataclass
class Box:
    size: int

Pair = namedtuple("Pair", "a b")
total = sum(fractions.Fraction(1, n) for n in range(1, 5))
answer = [
    str(total),
    str(decimal.Decimal("1.10") + decimal.Decimal("2.20")),
    statistics.median([3, 1, 2]),
    len(list(itertools.permutations(range(4)))),
    (datetime.date(2024, 3, 1) - datetime.date(2024, 2, 1)).days,
    re.findall(r"\\d+", "a1b22"),
    isinstance({}, collections.abc.Mapping),
    Counter("aab")["a"],
    Box(3).size + Pair(1, 2).b,
]
"""
    result = run_python(program)
    assert result.ok, result
    assert result.value == "['25/12', '3.30', 2, 24, 29, ['1', '22'], True, 2, 5]"
