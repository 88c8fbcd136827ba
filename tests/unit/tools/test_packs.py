import shutil

import pytest
import yaml

from failforward.tools.packs.pack import PACKS_DIR, PackError, load_pack


@pytest.fixture
def pack_copy(tmp_path):
    target = tmp_path / "mypack"
    shutil.copytree(PACKS_DIR / "arithmetic", target)
    return target


def _edit(pack_dir, **changes):
    spec = yaml.safe_load((pack_dir / "pack.yaml").read_text())
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    (pack_dir / "pack.yaml").write_text(yaml.safe_dump(spec))


def test_arithmetic_pack_loads_and_renders():
    pack = load_pack("arithmetic")
    assert pack.spec.eval_source.dataset == "chain_sum"
    assert pack.render("student", question="1 + 2 =") == "1 + 2 ="
    assert {"student", "generator", "critic", "analyst"} <= set(pack.templates)


def test_bad_field_names_file_and_field(pack_copy):
    _edit(pack_copy, probe__size=0)
    with pytest.raises(PackError) as err:
        load_pack(str(pack_copy))
    assert str(pack_copy / "pack.yaml") in str(err.value)
    assert "probe.size" in str(err.value)


def test_unknown_verifier_is_named(pack_copy):
    _edit(pack_copy, verifier="telepathy")
    with pytest.raises(PackError, match=r"pack\.yaml: verifier: .*telepathy"):
        load_pack(str(pack_copy))


def test_unknown_field_is_rejected(pack_copy):
    _edit(pack_copy, probe__sise=10)
    with pytest.raises(PackError, match=r"probe\.sise"):
        load_pack(str(pack_copy))


def test_template_with_unknown_variable_names_file_and_role(pack_copy):
    (pack_copy / "generator.jinja").write_text("Write {{ n }} items about {{ topic }}")
    with pytest.raises(PackError) as err:
        load_pack(str(pack_copy))
    assert "generator.jinja" in str(err.value)
    assert "templates.generator" in str(err.value) and "topic" in str(err.value)


def test_missing_required_template(pack_copy):
    (pack_copy / "student.jinja").unlink()
    with pytest.raises(PackError, match=r"student\.jinja: templates\.student: .*missing"):
        load_pack(str(pack_copy))


def test_template_syntax_error_names_line(pack_copy):
    (pack_copy / "critic.jinja").write_text("ok\n{% if %}")
    with pytest.raises(PackError, match=r"critic\.jinja: line 2"):
        load_pack(str(pack_copy))


def test_unknown_pack_lists_known():
    with pytest.raises(PackError, match="arithmetic"):
        load_pack("no-such-pack")


def test_invalid_yaml(pack_copy):
    (pack_copy / "pack.yaml").write_text("name: [unclosed")
    with pytest.raises(PackError, match="not valid YAML"):
        load_pack(str(pack_copy))


def test_a_pack_can_teach_the_worked_solution_then_the_answer(pack_copy):
    from failforward.tools.packs.check import validate_pack
    from failforward.tools.verify.verifiers import extract_answer

    solution, answer = "12 + 7 is 19, and 19 - 3 is 16.", "16"
    assert load_pack(str(pack_copy)).completion("12 + 7 - 3 =", solution, answer) == "16"
    spec = yaml.safe_load((pack_copy / "pack.yaml").read_text())
    spec["student"]["completion"] = "solution"
    (pack_copy / "pack.yaml").write_text(yaml.safe_dump(spec))
    pack = load_pack(str(pack_copy))
    taught = pack.completion("12 + 7 - 3 =", solution, answer)
    assert taught == f"{solution}\n16"
    assert extract_answer(taught, pack.spec.answer.pattern, pack.spec.answer.pick) == "16"
    assert pack.completion("2 + 2 =", "", "4") == "4"  # no solution: the answer alone
    validate_pack(str(pack_copy))  # the reply it teaches still reads back as the answer
