"""Imports point down the layers (docs/architecture.md), and no module imports itself back.

    api       the public Python API (the package failforward itself)
    app       command line, run sessions, compare, doctor, export, studio
    graph     state, nodes, graph assembly
    agents    the LLM roles, student answering, endpoint clients
    training  TRL objectives, student loading and checkpoints
    tools     leaf utilities and the shared record types

Every import counts, at module level or inside a function: a deferred import is still an arrow.
The folders install as ``failforward.<folder>``; an import of a bare ``tools`` (or any layer's
name) would find nothing once installed, so it is refused too.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["tools", "training", "agents", "graph", "app", "api"]  # bottom to top
ALLOWED = {
    "tools": {"tools"},
    "training": {"training", "tools"},
    "agents": {"agents", "training", "tools"},
    "graph": {"graph", "agents", "training", "tools"},
    "app": {"app", "graph", "agents", "training", "tools"},
    "api": {"api", "app", "graph", "agents", "training", "tools"},
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, without the namespace
    (``from failforward.tools.report import plots`` -> ``tools.report.plots``); a bare
    ``tools.report.plots`` comes back as ``bare:tools.report.plots``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            head, _, rest = name.partition(".")
            if head == "failforward" and rest.split(".")[0] in LAYERS:
                found.add(rest)
            elif head == "failforward":  # the package itself, or a name it exports
                found.add("api")
            elif head in LAYERS:
                found.add(f"bare:{name}")
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))]
    modules = {_module(p): p for p in files}
    return {
        name: {m for m in _imports(path) if m in modules or m.startswith("bare:")}
        for name, path in modules.items()
    }


def test_every_import_points_down_the_layers():
    upward = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in sorted(targets)
        if target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    ]
    assert not upward


def test_every_import_names_the_namespace():
    files = [p for layer in ["tests", "benchmarks", *LAYERS] for p in (ROOT / layer).rglob("*.py")]
    bare = [f"{p.relative_to(ROOT)}: {m[5:]}" for p in files for m in _imports(p) if "bare:" in m]
    assert not bare


# The rooms of tools/ (each one's docstring states its rule) and what each may import of tools.
TOOLS_ROOMS = {
    "tools": set(),  # tools/__init__.py
    "tools.records": set(),
    "tools.options": set(),
    "tools.store": {"tools.records"},
    "tools.verify": {"tools.records"},
    "tools.embed": {"tools.records", "tools.verify"},
    "tools.packs": {"tools.records", "tools.verify", "tools.embed"},
    "tools.stats": {"tools.records", "tools.packs"},
    "tools.augment": {"tools.records", "tools.store", "tools.packs"},
    "tools.report": {
        "tools.records",
        "tools.store",
        "tools.verify",
        "tools.embed",
        "tools.packs",
        "tools.stats",
        "tools.augment",
    },  # fmt: skip
}


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_each_room_of_tools_imports_only_what_its_rule_allows():
    graph = _graph()
    rooms = {_room(m) for m in graph if m.startswith("tools")}
    assert rooms == set(TOOLS_ROOMS), "a room or top-level file of tools/ has no rule here"
    for room in set(TOOLS_ROOMS) - {"tools", "tools.records", "tools.options"}:
        doc = ast.get_docstring(
            ast.parse((ROOT / room.replace(".", "/") / "__init__.py").read_text())
        )
        assert doc and "Rule:" in doc, f"{room}: its docstring states no rule"
    broken = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith("tools")
        for target in sorted(targets)
        if target.startswith("tools")
        and _room(target) != _room(module)
        and _room(target) not in TOOLS_ROOMS[_room(module)]
    ]
    assert not broken


def test_tools_has_at_most_ten_files_at_its_top():
    assert len(list((ROOT / "tools").glob("*.py"))) <= 10


def test_no_import_cycles():
    graph = {m: {t for t in ts if not t.startswith("bare:")} for m, ts in _graph().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles


@pytest.mark.parametrize(
    ("source", "arrow"),
    [
        ("from failforward.graph.loop import build_graph\n", "graph.loop"),
        ("def f():\n    from failforward.app import runner\n", "app.runner"),
        ("import failforward.agents.critic as c\n", "agents.critic"),
        ("from tools.store import RunStore\n", "bare:tools.store"),
        ("from failforward import open_run\n", "api"),
    ],
)
def test_the_check_sees_module_level_deferred_and_aliased_imports(tmp_path, source, arrow):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert arrow in _imports(path)


BELOW_APP = ["tools", "training", "agents", "graph"]
MARKUP = re.compile(r"\[/?(bold|dim|italic|red|green|yellow|blue|cyan|magenta)\b[^\]]*\]|\[/\]")


def test_nothing_below_app_formats_for_a_screen():
    """Nodes emit events (graph/events.py) and app/ shows them: no rich, and no markup in a
    string, below app/."""
    found = []
    for path in (p for layer in BELOW_APP for p in sorted((ROOT / layer).rglob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                found += [
                    f"{path.relative_to(ROOT)} imports {n}"
                    for n in names
                    if n and n.split(".")[0] == "rich"
                ]
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and MARKUP.search(node.value)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} markup {node.value!r}")
    assert not found


def test_the_markup_check_sees_a_style_tag(tmp_path):
    assert MARKUP.search("  [yellow]warning[/]: x") and MARKUP.search("[/]")
    assert not MARKUP.search("[link](docs/x.md) and [1, 2]")


def test_the_executor_is_chosen_in_one_place():
    """Only graph/executor.py branches on ``--executor`` (graph/settings.py validates it)."""
    readers = []
    for path in (p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            parts = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            if any(isinstance(n, ast.Attribute) and n.attr == "executor" for n in parts) and any(
                isinstance(n, ast.Constant) and isinstance(n.value, str) for n in parts
            ):  # a test of the setting's value: settings.executor == "ray"
                readers.append(str(path.relative_to(ROOT)))
    assert set(readers) <= {"graph/executor.py", "graph/settings.py"}, readers
    assert "graph/executor.py" in readers


def test_the_run_context_holds_no_any():
    from dataclasses import fields
    from typing import get_type_hints

    from failforward.graph.augment import AugmentContext
    from failforward.graph.state import RunContext

    for context in (RunContext, AugmentContext):
        hints = get_type_hints(context)
        loose = [f.name for f in fields(context) if "Any" in str(hints[f.name])]
        assert not loose, f"{context.__name__}: {loose}"


def test_an_option_is_declared_one_way():
    """Settings fields are ``option(default, help)`` or ``nested(...)`` (tools/options.py), never
    a hand-made ``field(metadata={"help": ...})``."""
    by_hand = []
    for path in (p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))):
        if path == ROOT / "tools" / "options.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "field":
                meta = [k.value for k in node.keywords if k.arg == "metadata"]
                if (
                    meta
                    and isinstance(meta[0], ast.Dict)
                    and any(isinstance(k, ast.Constant) and k.value == "help" for k in meta[0].keys)
                ):
                    by_hand.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not by_hand
