"""Every user-facing input the bad-input table of docs/how-to/reliability.md lists: `failforward
run` exits non-zero with a message naming the input, and leaves no run folder behind."""

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from failforward.app.cli import app
from failforward.tools.packs.pack import PACKS_DIR


def _pack(tmp_path, change) -> str:
    """A copy of the arithmetic pack with ``change(folder)`` applied."""
    folder = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "arithmetic", folder)
    change(folder)
    return str(folder)


def _edit_yaml(**fields):
    def change(folder):
        spec = yaml.safe_load((folder / "pack.yaml").read_text())
        spec.update(fields)
        (folder / "pack.yaml").write_text(yaml.safe_dump(spec))

    return change


def _write(name, text):
    return lambda folder: (folder / name).write_text(text)


CASES = {
    # name: (arguments after `run`, or a function of tmp_path giving them; what the error says)
    "zero budget": (["--budget", "0"], "--budget > 0"),
    "negative budget": (["--budget", "-4"], "--budget > 0"),
    "negative cycles": (["--cycles", "-1"], "--cycles must be >= 0"),
    "explore outside [0, 1)": (["--explore", "1.5"], "--explore: 1.5 is not in [0, 1)"),
    "unknown pack": (["--pack", "no-such-pack"], "no pack 'no-such-pack'"),
    "malformed pack YAML": (
        lambda t: ["--pack", _pack(t, _write("pack.yaml", "name: [unclosed"))],
        "pack.yaml",
    ),
    "unknown pack field": (
        lambda t: ["--pack", _pack(t, _edit_yaml(verifer="numeric"))],
        "pack.yaml: verifer: Extra inputs are not permitted",
    ),
    "wrong field type": (
        lambda t: ["--pack", _pack(t, _edit_yaml(probe={"size": "many", "seed": 1}))],
        "pack.yaml: probe.size",
    ),
    "unknown verifier": (
        lambda t: ["--pack", _pack(t, _edit_yaml(verifier="telepathy"))],
        "telepathy",
    ),
    "unknown eval source": (
        lambda t: ["--pack", _pack(t, _edit_yaml(eval_source={"kind": "ouija"}))],
        "eval_source",
    ),
    "missing template": (
        lambda t: ["--pack", _pack(t, lambda f: (f / "generator.jinja").unlink())],
        "generator.jinja",
    ),
    "unknown template variable": (
        lambda t: ["--pack", _pack(t, _write("generator.jinja", "Write {{ n }} {{ colour }}."))],
        "colour",
    ),
    "template that only fails when rendered": (
        lambda t: ["--pack", _pack(t, _write("generator.jinja", "{{ n }} of {{ target.nmae }}"))],
        "generator.jinja: templates.generator: does not render",
    ),
    "answer pattern that never matches the reference": (
        lambda t: ["--pack", _pack(t, _edit_yaml(answer={"pattern": "[a-z]+", "pick": "last"}))],
        "answer.pattern: finds nothing in the reference answer",
    ),
    "items file too short for probe and test": (
        lambda t: (
            ["--pack", _minimal(t, lambda f: _keep_lines(f / "items.jsonl", 12))]
            + ["--llm", "http://127.0.0.1:9/v1", "--llm-model", "m"]
        ),
        "test.size: probe (10) + test (20) items need more than the 12 in items.jsonl",
    ),
    "items line without an answer": (
        lambda t: (
            ["--pack", _minimal(t, _write("items.jsonl", '{"question": "How many?"}\n'))]
            + ["--llm", "http://127.0.0.1:9/v1", "--llm-model", "m"]
        ),
        "items.jsonl: line 1: answer: Field required",
    ),
    "LLM teacher with nothing to verify its answers": (
        lambda t: (
            ["--pack", _minimal(t, lambda f: None)]
            + ["--llm", "teacher=http://127.0.0.1:9/v1", "--llm-model", "m"]
        ),
        "nothing can verify the LLM teacher's answers",
    ),
    "student path that does not exist": (
        ["--student", "/no/such/model"],
        "--student '/no/such/model'",
    ),
    "endpoint URL that is not a URL": (["--llm", "localhost:8000", "--llm-model", "m"], "--llm"),
    "endpoint file URL that is not a URL": (
        lambda t: ["--endpoints", str(_endpoint_file(t, "teacher: {base_url: nowhere, model: m}"))],
        "teacher.base_url",
    ),
    "unreachable endpoint": (
        ["--llm", "http://127.0.0.1:9/v1", "--llm-model", "m"],
        "endpoint http://127.0.0.1:9/v1 is unreachable",
    ),
    "unknown run id on resume": (["--resume", "no-such-run"], "no run folder"),
    "run folder that is not writable": (
        lambda t: ["--runs-dir", str(_file(t))],
        "cannot write run folders there",
    ),
}


def _minimal(tmp_path, change) -> str:
    """A copy of docs/how-to/packs.md's minimal pack (a fixed JSONL, no solver), ``change``d."""
    folder = tmp_path / "minimal"
    shutil.copytree(PACKS_DIR.parent / "examples" / "minimal-pack", folder)
    change(folder)
    return str(folder)


def _keep_lines(path, n):
    path.write_text("\n".join(path.read_text().splitlines()[:n]) + "\n")


def _endpoint_file(tmp_path, text):
    path = tmp_path / "endpoints.yaml"
    path.write_text(text)
    return path


def _file(tmp_path):
    path = tmp_path / "a-file-not-a-folder"
    path.write_text("x")
    return path / "runs"  # a folder inside a file: nothing can make it


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_named_and_leaves_nothing(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, message = CASES[case]
    args = args(tmp_path) if callable(args) else args
    if "--runs-dir" not in args:
        args = [*args, "--runs-dir", str(tmp_path / "runs")]
    if "--resume" not in args and "--student" not in args:
        args = ["--student", "tiny", *args]  # nothing here may get as far as loading it
    result = CliRunner().invoke(app, ["run", *args])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code != 0, output
    assert message in " ".join(output.split()), output  # rich may wrap the message
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())
