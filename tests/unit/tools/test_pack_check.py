"""``failforward packs validate``: every shipped pack passes; a broken copy names file and field."""

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from failforward.app.cli import app
from failforward.tools.pack_check import list_packs, validate_pack
from failforward.tools.packs import PACKS_DIR, PackError

SHIPPED = sorted(p.parent.name for p in PACKS_DIR.glob("*/pack.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_pack_validates(name):
    lines = validate_pack(name)
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
