"""The docs: the site builds strictly (a broken link or a missing page fails it), the README stays
short, and every ``failforward`` command line written in the README or the docs names a command
and options that exist, so a renamed flag breaks the build here."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from failforward.app.cli import command_paths

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _commands() -> dict[str, set[str]]:
    """Each command path (``run``, ``packs validate``) and its option flags."""
    return {
        path: {f for p in cmd.params for f in [*p.opts, *p.secondary_opts] if f.startswith("-")}
        | {"--help"}
        for path, cmd in command_paths().items()
    }


def command_lines(text: str) -> list[str]:
    """The ``failforward ...`` lines of the text's code blocks (continuations joined)."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            if re.match(r"(\.venv/bin/)?failforward\s", line):
                lines.append(line)
    return lines


def bad_flags(line: str, commands: dict[str, set[str]]) -> list[str]:
    """What in one command line does not exist: an unknown command, or options it lacks."""
    words = shlex.split(line.split(" #")[0].replace("[", " ").replace("]", " ").replace("|", " "))
    words = words[1:]
    path = ""
    while (
        words
        and not words[0].startswith("-")
        and f"{path} {words[0]}".strip()
        in {p.rsplit(" ", n)[0] for p in commands for n in range(p.count(" ") + 1)}
    ):
        path = f"{path} {words.pop(0)}".strip()
    if path not in commands:
        return [f"no command {path or words[:1]!r}"]
    flags = [w.split("=")[0] for w in words if w.startswith("--")]
    return [f"{path}: {f}" for f in flags if f not in commands[path]]


def test_every_command_line_in_the_docs_exists():
    commands = _commands()
    wrong = [
        f"{page.relative_to(ROOT)}: {line} -> {problem}"
        for page in PAGES
        for line in command_lines(page.read_text())
        for problem in bad_flags(line, commands)
    ]
    assert not wrong, "\n".join(wrong)
    assert len([1 for page in PAGES for _ in command_lines(page.read_text())]) > 30


def test_the_check_catches_a_renamed_flag_and_an_unknown_command():
    commands = _commands()
    assert bad_flags("failforward run --pack x --cycels 3", commands) == ["run: --cycels"]
    assert bad_flags("failforward packs validate prompts/sql", commands) == []
    assert bad_flags("failforward runn --pack x", commands) == ["no command ['runn']"]
    text = "```bash\nfailforward compare --seeds 3 \\\n    --no-such-flag 1\n```\n"
    assert bad_flags(command_lines(text)[0], commands) == ["compare: --no-such-flag"]


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_site_builds_strictly(tmp_path):
    """mkdocs build --strict: a link to a missing page or anchor is an error; the generated
    reference pages (command line, pack schema, Python API) are built too."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "--train-from" in cli and "failforward compare" in cli
    assert "strata" in (tmp_path / "site" / "reference" / "pack-schema" / "index.html").read_text()
    assert "Open a new run" in (tmp_path / "site" / "reference" / "api" / "index.html").read_text()


@pytest.mark.slow  # the mechanism under test_the_site_builds_strictly; a second whole build
def test_a_broken_link_fails_the_build(tmp_path):
    """Planted broken links (to a missing page, to a missing heading) fail the strict build, and
    its output names both."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    for folder in ("api", "agents", "app", "graph", "tools", "training", "benchmarks", "examples"):
        (copy / folder).symlink_to(ROOT / folder)
    index = copy / "docs" / "index.md"
    planted = "See [this](concepts/nowhere.md) and [that](how-to/packs.md#no-such-heading)."
    index.write_text(index.read_text() + f"\n{planted}\n")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=copy, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "concepts/nowhere.md" in said and "no-such-heading" in said


def python_snippets() -> list[str]:
    """The distinct ``python`` code blocks of the README and the docs."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
            if block not in found:
                found.append(block)
    return found


@pytest.mark.parametrize("snippet", python_snippets(), ids=lambda s: s.splitlines()[0][:30])
def test_the_python_snippets_run_as_written(
    snippet, small_pack, tmp_path, monkeypatch, capsys, tiny_student_dir
):
    """Each Python snippet, run as a user would paste it (in an empty folder), ends with a run
    folder and its report. The snippets name the tiny student; the only change made here is
    the arithmetic pack's smaller copy (40 probe and 60 test items), so it takes seconds."""
    assert 'student="tiny"' in snippet and 'pack="arithmetic"' in snippet
    quick = snippet.replace('pack="arithmetic"', f"pack={str(small_pack)!r}")
    monkeypatch.chdir(tmp_path)
    exec(compile(quick, "snippet", "exec"), {"__name__": "__main__"})
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "report.md").is_file() and "write_report" in capsys.readouterr().out


def test_each_included_example_part_exists_in_its_file():
    """A page shows parts of ``examples/`` with ``--8<-- "file:part"``; a part renamed or gone
    from its file would be shown empty, so each must be there, between its start and end."""
    included = [
        (page, found)
        for page in PAGES
        for found in re.findall(r'--8<-- "([^"]+)"', page.read_text())
    ]
    assert included
    for page, found in included:
        path, _, part = found.partition(":")
        text = (ROOT / path).read_text()
        start, end = f"# --8<-- [start:{part}]", f"# --8<-- [end:{part}]"
        assert start in text and end in text, f"{page.name}: {found}: no part {part!r}"
        body = text.split(start, 1)[1].split(end, 1)[0]
        assert body.strip(), f"{page.name}: {found}: the part is empty"
