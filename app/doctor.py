"""``failforward doctor <run_id>``: check that a run folder is whole and self-consistent.

Each check returns problems as sentences naming what is wrong and where; an empty list means the
run is sound (a finished run, or one stopped by a kill or Ctrl-C that ``--resume`` can continue).
A run a node's error stopped is not sound: the error is named, with how to continue.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from failforward.tools.stats.guard import Students, student_checkpoint, students
from failforward.tools.store import RunStore, content_hash


def check_run(run_dir: Path) -> tuple[list[str], list[str]]:
    """``(checks passed, problems)`` for the run in ``run_dir``."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.db").is_file():
        return [], [f"{run_dir}: no run.db (not a run folder)"]
    problems: list[str] = []
    passed: list[str] = []
    for name in ("run.db", "checkpoints.db"):
        if name == "checkpoints.db" and not (run_dir / name).exists():
            continue  # stopped before its first node finished: a resume starts afresh
        found = _integrity(run_dir / name)
        (problems.extend(found) if found else passed.append(f"{name}: SQLite integrity"))
    if problems:
        return passed, problems  # the rest reads the databases
    from failforward.app.runner import run_graph_state

    store = RunStore(run_dir / "run.db")
    try:
        state = run_graph_state(run_dir, run_dir.name)
        run_students = students(store.metrics())
        checks: list[tuple[str, Callable[[], list[str]]]] = [
            ("run metadata", lambda: _meta(store)),
            ("no node failed", lambda: _failure(store, run_dir.name)),
            ("evaluation sets", lambda: _eval_sets(store)),
            ("evaluations complete", lambda: _attempts(store)),
            ("examples stored once", lambda: _examples(store)),
            ("training counts", lambda: _training(store)),
            ("student checkpoints", lambda: _checkpoints(run_dir, store, state)),
            ("LLM call cache", lambda: _calls(store)),
            ("graph state", lambda: _state(run_dir, store, state)),
            (_guard_summary(run_students), lambda: _guard(run_dir, run_students, state)),
        ]
        for name, check in checks:
            found = check()
            (problems.extend(found) if found else passed.append(name))
    finally:
        store.close()
    return passed, problems


def _failure(store: RunStore, run_id: str) -> list[str]:
    """A node that raised and was not run through since: the run did not finish by itself."""
    failure = store.get_meta("failure")
    if not failure:
        return []
    return [
        f"run failed in {failure['node']} (cycle {failure['cycle']}): {failure['error'][:300]};"
        f" once the cause is fixed, `failforward run --resume {run_id}` continues it"
    ]


def _integrity(path: Path) -> list[str]:
    if not path.is_file():
        return [f"{path.name}: missing"]
    try:
        rows = _integrity_rows(f"file:{path}?mode=ro")
    except sqlite3.OperationalError as err:
        if "readonly" not in str(err):
            return [f"{path.name}: not a readable SQLite database ({err})"]
        # A killed writer's WAL must be recovered before it can be read, which a read-only
        # connection may not do; a read-write one does, as the resume would.
        try:
            rows = _integrity_rows(f"file:{path}")
        except sqlite3.DatabaseError as again:
            return [f"{path.name}: not a readable SQLite database ({again})"]
    except sqlite3.DatabaseError as err:
        return [f"{path.name}: not a readable SQLite database ({err})"]
    return [] if rows == ["ok"] else [f"{path.name}: integrity check says {'; '.join(rows[:5])}"]


def _integrity_rows(uri: str) -> list[str]:
    connection = sqlite3.connect(uri, uri=True)
    try:
        return [r[0] for r in connection.execute("PRAGMA integrity_check")]
    finally:
        connection.close()


def _meta(store: RunStore) -> list[str]:
    missing = [k for k in ("settings", "pack_dir", "pack_fingerprint") if not store.get_meta(k)]
    return [f"run.db meta: {k} is missing (the run cannot be resumed)" for k in missing]


def _eval_sets(store: RunStore) -> list[str]:
    probe, test = store.eval_items("probe"), store.eval_items("test")
    if not probe and not test:
        return []  # stopped before bootstrap finished: the resume draws them
    problems = [
        f"eval_items: the {s} set is empty" for s, i in (("probe", probe), ("test", test)) if not i
    ]
    shared = {i.question for i in probe} & {i.question for i in test}
    if shared:
        problems.append(f"eval_items: {len(shared)} questions in both probe and test")
    return problems


def _attempts(store: RunStore) -> list[str]:
    problems = []
    sizes = {s: len(store.eval_items(s)) for s in ("probe", "test")}
    for cycle, values in store.metrics().items():
        if "test_acc" not in values:
            continue
        for split, size in sizes.items():
            n = len(store.attempts(cycle, split))
            if n != size:
                problems.append(f"attempts: cycle {cycle} {split} has {n} answers for {size} items")
    return problems


def _examples(store: RunStore) -> list[str]:
    problems = []
    rows = store.examples()
    wrong = [
        r["id"]
        for r in rows
        if r["content_hash"] and r["content_hash"] != content_hash(r["question"], r["answer"])
    ]
    if wrong:
        problems.append(
            f"examples: {len(wrong)} rows whose content_hash does not match (ids {wrong[:5]})"
        )
    counts = Counter(content_hash(r["question"], r["answer"]) for r in rows if r["accepted"])
    twice = [h for h, n in counts.items() if n > 1]
    if twice:
        problems.append(f"examples: {len(twice)} accepted examples stored more than once")
    trained = {c for c, m in store.metrics().items() if "train_examples" in m}
    pending = Counter(
        r["cycle"] for r in rows if r["reason"] == "pending" and r["cycle"] in trained
    )
    for cycle, n in sorted(pending.items()):
        problems.append(f"examples: cycle {cycle} trained with {n} candidates never critiqued")
    ids = {r["id"] for r in rows}
    orphans = [p for p in store.pairs() if p["example_id"] not in ids]
    if orphans:
        problems.append(f"pairs: {len(orphans)} DPO pairs point at examples that are gone")
    return problems


def _training(store: RunStore) -> list[str]:
    problems, total = [], 0
    for cycle, values in sorted(store.metrics().items()):
        if "train_examples" not in values:
            continue
        accepted = len(store.examples(cycle=cycle, accepted=True))
        if int(values["train_examples"]) != accepted:
            problems.append(
                f"metrics: cycle {cycle} trained on {int(values['train_examples'])} examples,"
                f" the store has {accepted} accepted"
            )
        total += accepted
        if int(values.get("train_examples_total", total)) != total:
            problems.append(
                f"metrics: cycle {cycle} train_examples_total is"
                f" {int(values['train_examples_total'])}, the accepted examples add up to {total}"
            )
    return problems


def _checkpoints(run_dir: Path, store: RunStore, state: dict) -> list[str]:
    problems = []
    for cycle, values in sorted(store.metrics().items()):
        if not values.get("train_steps"):
            continue
        folder = student_checkpoint(run_dir, cycle)
        weights = list(folder.glob("*.safetensors")) if folder.is_dir() else []
        if not weights:
            problems.append(f"checkpoints: cycle {cycle} trained but {folder} holds no weights")
        for path in weights:
            problems += _safetensors(path)
    latest = state["values"].get("checkpoint")
    if latest and not Path(latest).is_dir():
        problems.append(f"checkpoints: the graph state's student checkpoint {latest} is missing")
    return problems


def _safetensors(path: Path) -> list[str]:
    """The file's header parses and its tensors fit in the file (no half-written weights)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
        if 8 + size + end > path.stat().st_size:
            return [f"checkpoints: {path} is shorter than its header says (cut off)"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [f"checkpoints: {path} is not a readable safetensors file ({err})"]
    return []


def _calls(store: RunStore) -> list[str]:
    rows = store.db.execute("SELECT key, role, model, request FROM llm_calls").fetchall()
    wrong = [
        r["key"][:12]
        for r in rows
        if store.call_key(r["role"], r["model"], json.loads(r["request"])) != r["key"]
    ]
    return (
        [f"llm_calls: {len(wrong)} cached replies under a key that is not their request's"]
        if wrong
        else []
    )


def _state(run_dir: Path, store: RunStore, state: dict) -> list[str]:
    values = state["values"]
    if not values:
        return []  # never checkpointed: a resume starts from the beginning
    problems = []
    cycle = values.get("cycle", 0)
    evaluated = [c for c, m in store.metrics().items() if "test_acc" in m]
    if evaluated and max(evaluated) > cycle:
        problems.append(
            f"graph state: at cycle {cycle} but the store has evaluations of cycle {max(evaluated)}"
        )
    if state["ended"] and not (run_dir / "report.md").is_file():
        problems.append("graph state: the run finished but report.md is missing")
    return problems


def _guard_summary(found: Students) -> str:
    """The regression guard's decisions, as the check's name."""
    rolled = [g for g in found.guarded if g.get("rolled_back")]
    detail = ", ".join(
        f"cycle {g['cycle']} rolled back ({int(g['lost'])} lost, {int(g['gained'])} gained)"
        for g in rolled
    )
    return f"regression guard: {len(found.guarded)} cycle(s) compared" + (
        f"; {detail}" if detail else ""
    )


def _guard(run_dir: Path, found: Students, state: dict) -> list[str]:
    """A finished run's student is the one the guard kept."""
    values = state["values"]
    if not values or not state["ended"] or "kept_cycle" not in values:
        return []
    expected = found.checkpoint(run_dir, found.final)
    latest = values.get("checkpoint")
    if (Path(latest).resolve() if latest else None) != (expected.resolve() if expected else None):
        ended, kept = latest or "the base model", expected or "the base model"
        return [f"regression guard: the run ends at {ended}, not the kept student {kept}"]
    return []
