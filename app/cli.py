"""The ``failforward`` command. Imports nothing heavy until a command runs (``--help`` is fast)."""

from __future__ import annotations

import inspect

import typer

from failforward.graph.settings import AugmentSettings, RunSettings
from failforward.tools.options import options

app = typer.Typer(
    help="Train a small student on data aimed at its own failures.",
    no_args_is_help=True,
    add_completion=False,
)


def _run(resume: str | None = None, **flat) -> None:
    import signal

    from failforward.app.runner import RunInterrupted, run_loop

    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so a local server is stopped and the
    # checkpoint of the last completed node is what --resume continues from.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        settings = RunSettings.from_options(**flat)
    except ValueError as err:
        raise _error(str(err)) from err
    if resume:
        changed = [
            o.flag
            for o in options(RunSettings)
            if o.name != "runs_dir" and flat[o.name] != o.default
        ]
        if changed:
            raise _error(
                "--resume continues a run with the settings it started with; "
                f"drop {', '.join(changed)}"
            )
    try:
        run_id = run_loop(settings, resume=resume)
    except (ValueError, FileNotFoundError, ImportError) as err:  # bad input or missing model
        raise _error(str(err)) from err
    except RunInterrupted as stop:
        _interrupted("run", stop.run_id, settings.runs_dir)
    except KeyboardInterrupt:  # before a run folder existed
        typer.secho("interrupted before the run started", fg="yellow", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"run folder: {settings.runs_dir}/{run_id}")
    folder = f" --runs-dir {settings.runs_dir}" if settings.runs_dir != "runs" else ""
    for command, what in (("report", "redraw"), ("export", "the data"), ("doctor", "check it")):
        typer.echo(f"  failforward {command} {run_id}{folder}    # {what}")


def _interrupted(command: str, run_id: str, runs_dir: str) -> None:
    """Say what an interrupted run kept and the command that continues it; exit 130."""
    folder = f" --runs-dir {runs_dir}" if runs_dir != "runs" else ""
    typer.secho(
        f"interrupted: run {run_id} keeps every node it finished and every reply it"
        f" received; continue with: failforward {command} --resume {run_id}{folder}",
        fg="yellow",
        err=True,
    )
    raise typer.Exit(130) from None


def _error(message: str, code: int = 2):
    """Every command's error line: ``error: ...`` in red on stderr, then exit ``code``."""
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _folder(run_id: str, runs_dir: str, *marks: str):
    """The folder of ``run_id`` under ``runs_dir``, or ``run_id`` itself when it is a folder
    path; it must hold one of ``marks`` (run.db, compare.json, ...). Else an error that says
    where it looked and what to pass."""
    from pathlib import Path

    for folder in (Path(runs_dir) / run_id, Path(run_id)):
        if any((folder / mark).is_file() for mark in marks):
            return folder
    others = sorted(
        p.name for p in Path(runs_dir).glob("*") if any((p / m).is_file() for m in marks)
    )
    hint = f"; runs there: {', '.join(others[-3:])}" if others else ""
    raise _error(
        f"no {' or '.join(marks)} for {run_id!r} in {Path(runs_dir) / run_id}{hint}; "
        "pass --runs-dir with the folder that holds it, or the run folder's path"
    )


def _option(name: str, annotation: type, option) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option
    )


def _resume_option(help: str) -> inspect.Parameter:
    return _option("resume", str | None, typer.Option(None, help=help))


def _settings_signature(cls, *first: inspect.Parameter, skip: tuple[str, ...] = ()):
    """Give a command ``first`` and then one ``--option`` per option of the settings class
    ``cls`` (default and help from the field that holds it, nested ones included); a yes/no
    setting is a ``--flag/--no-flag`` pair."""
    params = list(first)
    for o in options(cls):
        if o.name not in skip:
            names = f"{o.flag}/--no-{o.flag[2:]}" if isinstance(o.default, bool) else o.flag
            flag = {"metavar": ""} if isinstance(o.default, bool) else {}
            option = typer.Option(o.default, names, help=o.help, **flag)
            params.append(_option(o.name, o.annotation, option))

    def decorate(func):
        func.__signature__ = inspect.Signature(params)
        return func

    return decorate


@app.command("run")
@_settings_signature(RunSettings, _resume_option("Continue the stopped run with this id."))
def run(**flat) -> None:
    """Run the loop: evaluate → analyze → generate → critique → train, cycle after cycle."""
    _run(**flat)


_UNIFORM_CYCLES_HELP = (
    "Cycles of the uniform arm (default twice --cycles), so its curve spans what the targeted "
    "arm reaches and the data-efficiency multiplier can be read off it."
)
_UNIFORM_FROM_HELP = (
    "Take the uniform arm's runs from this earlier comparison (same settings but the targeted "
    "plan's) instead of training them again: compare a plan rule against the same baseline."
)
_SEEDS_HELP = (
    "Seeds per arm (0, 1, ...; default 3); each arm runs every seed. With --resume, a larger "
    "number adds seeds to the comparison."
)


_ARMS_HELP = (
    "The arms, comma-separated: targeted and uniform, and oracle for the positive control (the "
    "budget by the pack's pilot learnability table, learnability.yaml, which no plan sees)."
)


@app.command("compare")
@_settings_signature(
    RunSettings,
    _resume_option("Continue the stopped comparison with this id."),
    _option("seeds", int | None, typer.Option(None, help=_SEEDS_HELP, show_default=False)),
    _option(
        "uniform_cycles",
        int | None,
        typer.Option(None, help=_UNIFORM_CYCLES_HELP, show_default=False),
    ),
    _option(
        "uniform_from",
        str | None,
        typer.Option(None, help=_UNIFORM_FROM_HELP, show_default=False),
    ),
    _option("arms", str, typer.Option("targeted,uniform", help=_ARMS_HELP)),
    skip=("plan", "seed"),  # every arm, every seed
)
def compare(
    seeds: int | None = None,
    uniform_cycles: int | None = None,
    uniform_from: str | None = None,
    arms: str = "targeted,uniform",
    resume: str | None = None,
    **flat,
) -> None:
    """Targeted vs uniform plan over several seeds, one run after another; reports the
    data-efficiency ratio."""
    import signal
    import sys

    from failforward.app.compare import run_compare
    from failforward.tools.report.report import seeds_needed_sentence, write_compare_report
    from failforward.tools.stats.curves import ratio_sentence

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        settings = RunSettings.from_options(**flat)
        _, folder = run_compare(
            settings,
            seeds,
            resume=resume,
            uniform_cycles=uniform_cycles,
            uniform_from=uniform_from,
            arms=tuple(a.strip() for a in arms.split(",") if a.strip()),
        )
        path, summary = write_compare_report(folder)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise _error(str(err)) from err
    except KeyboardInterrupt:
        typer.secho("interrupted: continue with --resume <compare_id>", fg="yellow", err=True)
        raise typer.Exit(130) from None
    if summary.get("multipliers"):
        last = summary["multipliers"][-1]
        typer.echo(f"data-efficiency multiplier after targeted cycle {last.cycle}: {last.text()}")
    typer.echo(f"first-crossing {ratio_sentence(summary)}")
    if summary.get("seeds_needed"):
        typer.echo(f"seeds needed: {seeds_needed_sentence(summary['seeds_needed'])}")
    typer.echo(f"comparison folder: {folder}; report: {path}")


@app.command("report")
def report(
    run_id: str = typer.Argument(..., help="A run id or a comparison id."),
    runs_dir: str = typer.Option("runs", help="Folder holding run folders."),
):
    """Redraw report.md for a run or a comparison from what is stored."""

    from failforward.tools.report.report import write_compare_report, write_report
    from failforward.tools.store import RunStore

    folder = _folder(run_id, runs_dir, "run.db", "compare.json")
    if (folder / "compare.json").is_file():
        try:
            typer.echo(write_compare_report(folder)[0])
        except FileNotFoundError as err:
            raise _error(str(err)) from err
        return
    typer.echo(write_report(RunStore(folder / "run.db"), folder, folder.name))


@app.command("export")
def export(
    run_id: str = typer.Argument(..., help="The run whose data to export."),
    format: str = typer.Option("jsonl", "--format", help="jsonl, parquet, or hf (DatasetDict)."),
    out: str = typer.Option("", help="Output folder (default: <run folder>/export)."),
    rejected: bool = typer.Option(False, help="Also export rejected candidates, with verdicts."),
    runs_dir: str = typer.Option("runs", help="Folder holding run folders."),
):
    """Export accepted examples (with lineage and verdicts) and DPO pairs."""
    from pathlib import Path

    from failforward.app.export import export_run

    folder = _folder(run_id, runs_dir, "run.db")
    try:
        target = export_run(folder, format, Path(out) if out else None, rejected)
    except (ValueError, FileNotFoundError) as err:
        raise _error(str(err)) from err
    typer.echo(f"exported to {target}")


@app.command("augment")
@_settings_signature(
    AugmentSettings, _resume_option("Continue the stopped augmentation with this id.")
)
def augment(resume: str | None = None, **flat) -> None:
    """Turn a corpus into more pretraining text: teacher rewrites per style, kept when faithful,
    assembled as rephrases, megadocs (stitch) or rationale-stretched documents."""
    import signal

    from failforward.app.augment import run_augment
    from failforward.app.runner import RunInterrupted
    from failforward.tools.packs.pack import PackError

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        settings = AugmentSettings.from_options(**flat)
        run_id, folder = run_augment(settings, resume=resume)
    except (ValueError, FileNotFoundError, PackError) as err:
        raise _error(str(err)) from err
    except RunInterrupted as stop:
        _interrupted("augment", stop.run_id, settings.runs_dir)
    typer.echo(f"augmentation folder: {folder}")


@app.command("augment-eval")
def augment_eval_command(
    run_id: str = typer.Argument(..., help="An augmentation run (failforward augment)."),
    student: str = typer.Option(
        "tiny", help="Student model: smollm2, tiny, or a saved model folder."
    ),
    tokens: int = typer.Option(40_000, help="Training tokens per arm."),
    block: int = typer.Option(128, help="Tokens per training block."),
    lr: float = typer.Option(5e-4, help="Learning rate (whole-model AdamW)."),
    seed: int = typer.Option(0, help="Seed for the data order and the mixes."),
    runs_dir: str = typer.Option("runs", help="Folder holding run folders."),
):
    """Continued pretraining on equal token budgets of real-only, real+rephrases and
    real+megadocs text; held-out loss per arm and the implied data efficiency."""

    from failforward.app.augment_eval import augment_eval

    folder = _folder(run_id, runs_dir, "augment.db")
    try:
        augment_eval(folder, student, tokens, block, lr, seed)
    except (ValueError, FileNotFoundError) as err:
        raise _error(str(err)) from err
    typer.echo((folder / "augment_eval.md").read_text())


@app.command("doctor")
def doctor(
    run_id: str = typer.Argument(..., help="The run to check."),
    runs_dir: str = typer.Option("runs", help="Folder holding run folders."),
):
    """Check a run folder: databases intact, examples stored once, counts and checkpoints
    consistent, cached calls under their own keys. Exits 1 when something is wrong."""

    from failforward.app.doctor import check_run

    folder = _folder(run_id, runs_dir, "run.db")
    passed, problems = check_run(folder)
    for name in passed:
        typer.echo(f"ok  {name}")
    for problem in problems:
        typer.secho(f"bad {problem}", fg="red")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{folder.name}: sound ({len(passed)} checks)")


@app.command("sandbox-check")
def sandbox_check():
    """Say which isolation runs untrusted programs here, and try it: a program that reaches for
    the network, a new process, files outside its folder and the caller's environment. Exits 1
    when there is no isolation (packs whose solver is python_program are then refused)."""
    from failforward.tools.verify.sandbox import SandboxUnavailable, isolation, self_test

    try:
        found = isolation()
    except SandboxUnavailable as err:
        raise _error(str(err), code=1) from err
    for line in found.describe():
        typer.echo(line)
    problems = 0
    for name, verdict, held in self_test():
        problems += not held
        typer.echo(f"{'ok ' if held else 'BAD'} {name}: {verdict}")
    if problems:
        raise typer.Exit(1)


packs_app = typer.Typer(help="List and check prompt packs.", no_args_is_help=True)
app.add_typer(packs_app, name="packs")


@packs_app.command("list")
def packs_list():
    """Packs under prompts/ and $FAILFORWARD_PACKS, with their descriptions."""
    from failforward.tools.packs.check import list_packs

    for name, folder, about in list_packs():
        typer.echo(f"{name:<16} {about}  ({folder})")


@packs_app.command("validate")
def packs_validate(
    pack: str = typer.Argument(..., help="A pack folder or name."),
    llm: str = typer.Option(
        "none", help="The role endpoints a run would have (as run's --llm): what verifies then."
    ),
    endpoints: str = typer.Option("", help="As run's --endpoints (the roles it names count)."),
):
    """Load a pack and run one eval item through its sources, verifier, solver and templates,
    the checks `run` makes before it starts; say what will verify the teacher's candidates."""
    from failforward.agents.endpoint_settings import EndpointSettings
    from failforward.tools.packs.check import validate_pack
    from failforward.tools.packs.pack import PackError

    try:
        roles = EndpointSettings(llm=llm, file=endpoints).roles()
        lines = validate_pack(pack, roles)
    except (PackError, ValueError) as err:
        raise _error(str(err)) from err
    for line in lines:
        typer.echo(line if line.startswith("note: ") else f"ok  {line}")
    typer.echo(f"{pack}: valid")


def command_paths() -> dict:
    """Every command of ``failforward`` by its path (``run``, ``packs validate``), as the click
    command Typer builds: what the docs' generated reference and their flag check read."""
    found: dict = {}

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "list_commands"):  # a group: its commands in turn
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), f"{path} {name}".strip())
        else:
            found[path] = cmd

    walk(typer.main.get_command(app), "")
    return found


if __name__ == "__main__":
    app()
