"""Pages the docs site generates when it builds (``mkdocs.yml``'s ``hooks``), so they cannot fall
behind the code: the command line reference from the Typer app, the pack schema from its pydantic
models, and the benchmark write-ups from ``benchmarks/``, where they are committed next to their
scripts and results."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "app", "graph", "tools", "training")  # failforward.<folder>


def package_tree(where: Path) -> Path:
    """``where/failforward``, laid out as the package installs (``api/`` is ``failforward``
    itself, each folder a subpackage), made of links into the repository: mkdocstrings reads
    the source through it (griffe finds packages by their folders, and the repository's
    folders are mapped by ``pyproject.toml``'s ``package-dir``). Returns ``where``."""
    tree = where / "failforward"
    tree.mkdir(parents=True, exist_ok=True)
    for link, target in [("__init__.py", "api/__init__.py"), *((p, p) for p in PACKAGES)]:
        path = tree / link
        if not path.is_symlink():
            path.symlink_to(ROOT / target)
    return where


package_tree(ROOT / ".docs-build")  # before mkdocstrings collects (mkdocs.yml: paths)
WRITE_UPS = {
    "results/targeted-vs-uniform.md": "benchmarks/targeted_vs_uniform.md",
    "results/competent-student.md": "benchmarks/competent_student.md",
    "results/competent-headroom.md": "benchmarks/competent_headroom.md",
    "results/competent-train-from.md": "benchmarks/competent_train_from.md",
    "results/competent-decisive.md": "benchmarks/competent_decisive.md",
}


def on_files(files, config):
    for uri, source in WRITE_UPS.items():
        files.append(File.generated(config, uri, content=(ROOT / source).read_text()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    files.append(File.generated(config, "reference/pack-schema.md", content=pack_reference()))
    return files


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def cli_reference() -> str:
    """Every command and option of ``failforward``, read from the Typer app."""
    from failforward.app.cli import command_paths

    lines = [
        "# Command line reference",
        "",
        "Generated from the command line itself when the site builds: every command and option,",
        "with its default. `failforward <command> --help` prints the same.",
    ]
    for path, cmd in command_paths().items():
        params = [p for p in cmd.params if p.name != "help"]
        args = " ".join(p.name.upper() for p in params if p.param_type_name == "argument")
        first = " ".join((cmd.help or "").split()).split(". ")[0].rstrip(".")
        lines.extend(["", f"## `failforward {path}`", "", f"{first}.", ""])
        if args:
            lines.extend([f"Arguments: `{args}`", ""])
        options = [p for p in params if p.param_type_name == "option"]
        if options:
            lines.extend(["| option | default | what it does |", "|---|---|---|"])
        for p in options:
            flags = ", ".join(f"`{flag}`" for flag in [*p.opts, *p.secondary_opts])
            default = "" if p.default in (None, "") else f"`{_cell(p.default)}`"
            lines.append(f"| {flags} | {default} | {_cell(p.help or '')} |")
    return "\n".join(lines) + "\n"


def pack_reference() -> str:
    """Every field of ``pack.yaml``, read from the pydantic models that validate it."""
    from pydantic import BaseModel

    from failforward.tools.packs.pack import PackSpec

    lines = [
        "# Pack schema reference",
        "",
        "Generated from the pydantic models that validate `pack.yaml` when the site builds. A",
        "field of another model links to that model's table. Unknown fields are errors.",
    ]
    seen: set[type] = set()
    queue: list[type] = [PackSpec]
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines.extend(["", f"## {model.__name__}", "", "| field | type | default | meaning |"])
        lines.append("|---|---|---|---|")
        for name, info in model.model_fields.items():
            kind = info.annotation
            nested = [
                t
                for t in (kind, *getattr(kind, "__args__", ()))
                for t in (t, *getattr(t, "__args__", ()))
                if isinstance(t, type) and issubclass(t, BaseModel)
            ]
            queue.extend(nested)
            shown = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
            default = (
                "required"
                if info.is_required()
                else f"`{_cell(info.get_default(call_default_factory=True))}`"
            )
            lines.append(
                f"| `{name}` | {_cell(shown)} | {default} | {_cell(info.description or '')} |"
            )
    return "\n".join(lines) + "\n"
