"""The sandbox against each kind of hostile program a model might write."""

import os

import pytest

from failforward.tools.verify.sandbox import run_python


def test_answer_variable_and_printed_line():
    assert run_python("answer = 6 * 7").value == "42"
    assert run_python("import math\nprint('work')\nprint(math.factorial(5))").value == "120"


def test_files_inside_the_working_directory_are_fine():
    result = run_python("open('scratch.txt', 'w').write('x')\nanswer = open('scratch.txt').read()")
    assert result.ok and result.value == "x"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("while True: pass", "timeout"),
        ("import time\ntime.sleep(60)", "timeout"),
        ("x = bytearray(10**10)", "memory"),
        ("x = [0] * (10**9)", "memory"),
        (f"print(open({os.path.abspath(__file__)!r}).read())", "forbidden"),
        ("print(open('/etc/passwd').read())", "forbidden"),
        ("import os\nprint(os.listdir('/'))", "forbidden"),
        ("import socket", "forbidden"),
        ("__import__('so' + 'cket')", "forbidden"),
        ("import os\nos.fork()", "forbidden"),
        ("import os\nos.system('true')", "forbidden"),
        ("import subprocess\nsubprocess.run(['true'])", "forbidden"),
        ("import ctypes", "forbidden"),
        ("import os\nos.kill(1, 9)", "forbidden"),
        ("answer = (", "error"),
        ("1 / 0", "error"),
        ("x = 1", "empty"),
    ],
)
def test_hostile_and_broken_programs_are_stopped(code, reason):
    result = run_python(code, timeout=2)
    assert result.reason == reason and result.value is None


def test_writes_outside_are_refused_and_nothing_lands(tmp_path):
    target = tmp_path / "pwned"
    result = run_python(f"open({str(target)!r}, 'w').write('x')")
    assert result.reason == "forbidden" and not target.exists()


def test_no_project_packages_inside():
    assert run_python("import torch").reason == "error"  # site-packages are not on the path


def test_without_bubblewrap_programs_are_refused_never_run_bare(monkeypatch):
    from failforward.app.runner import check_sandbox
    from failforward.tools.packs.pack import load_pack
    from failforward.tools.verify.sandbox import SandboxUnavailable, isolation
    from failforward.tools.verify.verifiers import make_solver

    isolation.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            run_python("answer = 1")
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            make_solver("python_program")
        with pytest.raises(ValueError, match="pack 'gsm' .critic.solver: python_program.: "):
            check_sandbox(load_pack("gsm"))
        check_sandbox(load_pack("arithmetic"))  # a pack without programs is not held up
    finally:
        monkeypatch.undo()
        isolation.cache_clear()
    assert run_python("answer = 1").value == "1"
