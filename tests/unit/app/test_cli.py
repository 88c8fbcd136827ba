import subprocess
import sys

from typer.testing import CliRunner

from failforward.app.cli import app
from failforward.graph.settings import RunSettings
from failforward.tools.options import options


def test_help_does_not_import_torch():
    code = (
        "import sys; from failforward.app.cli import app; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_run_options_come_from_settings():
    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    flags = ["--resume", *(o.flag for o in options(RunSettings))]
    for flag in flags:
        assert flag in result.output, flag
    for must in ("--pack", "--student", "--llm", "--cycles", "--budget", "--seed", "--runs-dir"):
        assert must in flags  # the minimum set stays available


def test_bad_value_is_reported():
    result = CliRunner().invoke(app, ["run", "--plan", "random"])
    assert result.exit_code != 0 and "targeted or uniform" in result.output


def test_bad_pack_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "--pack", "nope", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "error: no pack 'nope'" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # no half-made run folder


def test_resume_refuses_new_settings(tmp_path):
    result = CliRunner().invoke(app, ["run", "--resume", "x", "--cycles", "5"])
    assert result.exit_code != 0 and "drop --cycles" in result.output


def test_compare_takes_run_options_but_plan_and_seed():
    result = CliRunner().invoke(app, ["compare", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--seeds" in result.output and "--cycles" in result.output
    assert "--plan " not in result.output and "--seed " not in result.output


def test_report_of_a_missing_comparison_run_names_the_fix(tmp_path):
    folder = tmp_path / "compare-x"
    folder.mkdir()
    (folder / "compare.json").write_text(
        '{"settings": {}, "seeds": [0], "runs": {"targeted": {}, "uniform": {}}}'
    )
    result = CliRunner().invoke(app, ["report", "compare-x", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "failforward compare --resume compare-x" in result.output


def test_augment_and_compare_options_come_from_their_settings():
    from failforward.graph.settings import AugmentSettings

    augment = CliRunner().invoke(app, ["augment", "--help"], terminal_width=200).output
    assert all(o.flag in augment for o in options(AugmentSettings))
    compare = CliRunner().invoke(app, ["compare", "--help"], terminal_width=200).output
    assert "--seeds" in compare and "--plan-weighting" in compare and "--lora-r" in compare
    assert "--plan " not in compare and "--seed " not in compare  # it runs both arms, all seeds


def test_compare_refuses_to_stop_an_arm_early(tmp_path):
    result = CliRunner().invoke(
        app, ["compare", "--on-regression", "stop", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "would end an arm before its last cycle" in result.output
    assert not list(tmp_path.iterdir())
