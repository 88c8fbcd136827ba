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
    for room in set(TOOLS_ROOMS) - {"tools", "tools.records", "tools.options", "tools.store"}:
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
