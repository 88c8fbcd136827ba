import subprocess
import sys

import pytest
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
    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200, env={"COLUMNS": "240"})
    assert result.exit_code == 0
    flags = ["--resume", *(o.flag for o in options(RunSettings))]
    for flag in flags:
        assert flag in result.output, flag
    for must in ("--pack", "--student", "--llm", "--cycles", "--budget", "--seed", "--runs-dir"):
        assert must in flags  # the minimum set stays available


def test_bad_value_is_reported():
    result = CliRunner().invoke(app, ["run", "--plan", "random"], env={"COLUMNS": "240"})
    assert result.exit_code != 0 and "Invalid value for '--plan'" in result.output
    assert "'random' is not one of 'targeted', 'uniform', 'oracle'" in result.output


def test_bad_pack_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "--pack", "nope", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "error: no pack 'nope'" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # no half-made run folder


def test_resume_refuses_new_settings(tmp_path):
    result = CliRunner().invoke(app, ["run", "--resume", "x", "--cycles", "5"])
    assert result.exit_code != 0 and "drop --cycles" in result.output


def test_compare_takes_run_options_but_plan_and_seed():
    result = CliRunner().invoke(
        app, ["compare", "--help"], terminal_width=200, env={"COLUMNS": "240"}
    )
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

    augment = (
        CliRunner()
        .invoke(app, ["augment", "--help"], terminal_width=200, env={"COLUMNS": "240"})
        .output
    )
    assert all(o.flag in augment for o in options(AugmentSettings))
    compare = (
        CliRunner()
        .invoke(app, ["compare", "--help"], terminal_width=200, env={"COLUMNS": "240"})
        .output
    )
    assert "--seeds" in compare and "--plan-weighting" in compare and "--lora-r" in compare
    assert "--plan " not in compare and "--seed " not in compare  # it runs both arms, all seeds


def test_compare_refuses_to_stop_an_arm_early(tmp_path):
    result = CliRunner().invoke(
        app, ["compare", "--on-regression", "stop", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "would end an arm before its last cycle" in result.output
    assert not list(tmp_path.iterdir())


def test_a_yes_no_option_is_a_flag_pair_and_a_finished_run_says_what_next(tmp_path, monkeypatch):
    from failforward.app import runner

    seen = {}
    monkeypatch.setattr(
        runner, "run_loop", lambda settings, resume=None: seen.setdefault("s", settings) and "r"
    )
    runner_cli = CliRunner()
    done = runner_cli.invoke(app, ["run", "--full-finetune", "--runs-dir", str(tmp_path)])
    assert seen.pop("s").train.full_finetune is True
    # a finished run says how to look at it, with the folder it is in
    assert f"failforward doctor r --runs-dir {tmp_path}" in done.output
    runner_cli.invoke(app, ["run", "--no-full-finetune", "--runs-dir", str(tmp_path)])
    assert seen.pop("s").train.full_finetune is False
    helped = runner_cli.invoke(
        app, ["run", "--help"], terminal_width=200, env={"COLUMNS": "240"}
    ).output
    (line,) = [x for x in helped.splitlines() if "--no-full-finetune" in x]
    assert "<bool>" not in line  # a flag pair takes no value


@pytest.mark.parametrize("command", ["doctor", "export", "report"])
def test_a_run_not_in_the_runs_dir_gets_a_hint(tmp_path, command):
    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-a" / "run.db").write_bytes(b"")
    result = CliRunner().invoke(app, [command, "run-b", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"for 'run-b' in {tmp_path / 'run-b'}; runs there: run-a; pass --runs-dir" in (
        " ".join(result.output.split())
    )


def test_doctor_takes_a_run_folder_path(tmp_path):
    from failforward.tools.store import RunStore

    folder = tmp_path / "elsewhere" / "run-1"
    RunStore(folder / "run.db").close()
    result = CliRunner().invoke(app, ["doctor", str(folder)])
    assert "ok  run.db: SQLite integrity" in result.output and "error:" not in result.output


def test_compare_runs_the_uniform_arm_longer():
    from failforward.app.compare import arm_cycles, run_compare
    from failforward.graph.settings import RunSettings

    shown = CliRunner().invoke(
        app, ["compare", "--help"], terminal_width=200, env={"COLUMNS": "240"}
    )
    assert "--uniform-cycles" in shown.output
    record = {"settings": {"cycles": 3}, "uniform_cycles": 6}
    assert arm_cycles(record, "uniform") == {"cycles": 6, "patience": 7}
    assert arm_cycles(record, "targeted") == {"cycles": 3, "patience": 4}
    # a comparison stored before --uniform-cycles ran both arms alike
    assert arm_cycles({"settings": {"cycles": 3}}, "uniform") == {"cycles": 3, "patience": 4}
    with pytest.raises(ValueError, match="--uniform-cycles 2: the uniform arm must run"):
        run_compare(RunSettings(cycles=3), 1, uniform_cycles=2)
