"""The tutorials' command blocks marked *Runs in the tests* run as written, one after another in
a fresh folder beside a copy of ``examples/``, with this checkout's ``failforward`` on the path."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def runnable_blocks(page: Path) -> list[str]:
    """The ``bash`` blocks that follow a *Runs in the tests:* line."""
    return re.findall(r"\*Runs in the tests:\*\s*```bash\n(.*?)```", page.read_text(), re.S)


def test_the_own_domain_page_marks_its_runnable_blocks():
    blocks = runnable_blocks(ROOT / "docs" / "tutorials" / "own-domain.md")
    assert len(blocks) == 2 and "--llm local" in blocks[1]


@pytest.mark.slow  # a local transformers serve answers every role's calls on the CPU
@pytest.mark.llm
def test_the_own_domain_tutorial_runs_as_written(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    said = ""
    for block in runnable_blocks(ROOT / "docs" / "tutorials" / "own-domain.md"):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3000,
        )  # fmt: skip
        said += done.stdout + done.stderr
        assert done.returncode == 0, said[-6000:]
    assert "verification: the LLM teacher's answers by consistency" in said
    (run_dir,) = (tmp_path / "runs").iterdir()
    report = (run_dir / "report.md").read_text()
    assert "## LLM calls per role" in report
    assert re.search(r"\| teacher \| [1-9]", report)  # the local server answered the teacher
