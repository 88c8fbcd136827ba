"""``failforward packs validate``: every shipped pack passes; a broken copy names file and field."""

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from failforward.app.cli import app
from failforward.tools.packs.check import list_packs, validate_pack
from failforward.tools.packs.pack import PACKS_DIR, PackError

SHIPPED = sorted(p.parent.name for p in PACKS_DIR.glob("*/pack.yaml"))
BENCHMARK_PACKS = sorted(
    p.parent for p in (PACKS_DIR.parent / "benchmarks" / "packs").glob("*/pack.yaml")
)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_pack_validates(name):
    lines = validate_pack(name)
    assert any("student.jinja: rendered" in line for line in lines)
    assert any("reference answer verifies" in line for line in lines)


@pytest.mark.parametrize("folder", BENCHMARK_PACKS, ids=lambda folder: folder.name)
def test_every_benchmark_pack_validates(folder):
    lines = validate_pack(str(folder))
    assert any("student.jinja: rendered" in line for line in lines)
    assert any("reference answer verifies" in line for line in lines)


def _copy(tmp_path, name="sql"):
    folder = tmp_path / name
    shutil.copytree(PACKS_DIR / name, folder)
    return folder


def _edit(folder, change):
    path = folder / "pack.yaml"
    spec = yaml.safe_load(path.read_text())
    change(spec)
    path.write_text(yaml.safe_dump(spec))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["answer"].update(pattern=r"\d{9}"),
            r"pack.yaml: answer.pattern: finds nothing",
        ),
        (
            lambda s: s["knobs"].update(
                tables={"min_param": "a", "max_param": "b", "floor": 0, "ceiling": 1}
            ),
            r"pack.yaml: knobs.tables: ",
        ),
        (lambda s: s["test"].update(size=400), r"pack.yaml: test.size: probe \(60\) \+ test"),
        (lambda s: s["train_source"].update(path="missing.yaml"), r"train_source.path: no such"),
        (lambda s: s.update(verifier="numeric"), r"pack.yaml: verifier: the item.s own answer"),
    ],
)
def test_a_broken_pack_is_named_by_file_and_field(tmp_path, change, message):
    folder = _copy(tmp_path)
    _edit(folder, change)
    with pytest.raises(PackError, match=message):
        validate_pack(str(folder))


def test_the_readme_minimal_pack_validates_and_says_it_needs_an_endpoint(tmp_path):
    example = PACKS_DIR.parent / "examples" / "minimal-pack"
    lines = validate_pack(str(example))
    assert any(line.startswith("note: no procedural source") for line in lines)
    copy = tmp_path / "minimal"
    shutil.copytree(example, copy)
    _edit(copy, lambda s: s.update(generator={"mode": "procedural"}))
    with pytest.raises(PackError, match=r"pack.yaml: generator.mode: 'procedural' needs a source"):
        validate_pack(str(copy))


def test_validate_says_what_verifies_the_teachers_answers_under_the_endpoints(tmp_path):
    example = str(PACKS_DIR.parent / "examples" / "minimal-pack")
    every_role = validate_pack(example, {"teacher", "critic", "analyst"})
    assert (
        "verification: the LLM teacher's answers by consistency (5 independent answers, "
        "60% must agree)" in every_role
    )
    assert not any(line.startswith("note: ") for line in every_role)
    teacher_only = validate_pack(example, {"teacher"})
    assert "verification: nothing can verify the LLM teacher's answers" in teacher_only
    assert any(line.startswith("note: nothing can verify") for line in teacher_only)
    assert "verification: critic.solver arithmetic_expression recomputes each answer" in (
        validate_pack("arithmetic", {"teacher"})
    )
    no_solver = _copy(tmp_path, "arithmetic")
    _edit(no_solver, lambda s: s["critic"].pop("solver"))
    assert any("procedural source's own answers" in x for x in validate_pack(str(no_solver)))


def test_cli_validate_takes_the_run_endpoints():
    example = str(PACKS_DIR.parent / "examples" / "minimal-pack")
    result = CliRunner().invoke(
        app, ["packs", "validate", example, "--llm", "teacher=http://127.0.0.1:9/v1"]
    )
    assert result.exit_code == 0 and "note: nothing can verify" in result.output
    result = CliRunner().invoke(app, ["packs", "validate", example, "--llm", "http://h:1/v1"])
    assert "by consistency" in result.output and "note:" not in result.output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "How many?", "answer": 4', r"items.jsonl: line 3: not valid JSON"),
        ('{"question": "How many?"}', r"items.jsonl: line 3: answer: Field required"),
        ('{"question": ["a"], "answer": "4"}', r"items.jsonl: line 3: question: Input should"),
        ("[1, 2]", r"items.jsonl: line 3: expected an object"),
    ],
)
def test_a_bad_items_line_is_named_by_file_line_and_field(tmp_path, line, message):
    copy = tmp_path / "minimal"
    shutil.copytree(PACKS_DIR.parent / "examples" / "minimal-pack", copy)
    items = (copy / "items.jsonl").read_text().splitlines()
    items[2] = line
    (copy / "items.jsonl").write_text("\n".join(items) + "\n")
    with pytest.raises(PackError, match=message):
        validate_pack(str(copy))


def test_a_numeric_answer_in_an_items_file_is_read_as_text(tmp_path):
    from failforward.tools.packs.sources import JsonlSource

    path = tmp_path / "items.jsonl"
    path.write_text('{"question": "How many?", "answer": 60}\n')
    assert JsonlSource(path).items[0].answer == "60"


def test_a_template_that_does_not_render_is_named(tmp_path):
    folder = _copy(tmp_path, "arithmetic")
    path = folder / "generator.jinja"
    path.write_text(path.read_text() + "{{ target.colour }}\n")
    with pytest.raises(PackError, match=r"generator.jinja: templates.generator: does not render"):
        validate_pack(str(folder))


def test_cli_lists_and_validates(tmp_path, monkeypatch):
    broken = _copy(tmp_path, "arithmetic")
    (broken / "student.jinja").unlink()
    monkeypatch.setenv("FAILFORWARD_PACKS", str(tmp_path))
    assert [name for name, _, _ in list_packs()] == ["arithmetic", *SHIPPED]
    runner = CliRunner()
    listed = runner.invoke(app, ["packs", "list"])
    assert (
        listed.exit_code == 0 and "invalid: " in listed.output and "student.jinja" in listed.output
    )
    good = runner.invoke(app, ["packs", "validate", "sql"])
    assert good.exit_code == 0 and good.output.strip().endswith("sql: valid")
    bad = runner.invoke(app, ["packs", "validate", str(broken)])
    assert bad.exit_code == 2 and "templates.student: template file is missing" in bad.output


def test_a_completion_that_does_not_read_back_as_the_answer_is_named(tmp_path):
    folder = _copy(tmp_path, "gsm")
    (folder / "completion.jinja").write_text("{{ solution | prose }}\nSo the answer is 1.\n")
    with pytest.raises(PackError, match=r"completion.jinja: templates.completion: .* reads back"):
        validate_pack(str(folder))
