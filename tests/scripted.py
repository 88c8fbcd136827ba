"""Scripted endpoint replies and run-folder probes shared by the tests that run the loop as a
subprocess against a loopback endpoint."""

import hashlib
import json
import sqlite3
from pathlib import Path

from failforward.tools.store import RunStore


def arithmetic_roles(prompt: str) -> str:
    """Teacher, judge and analyst replies for the arithmetic pack, fixed by the prompt."""
    seed = int(hashlib.sha256(prompt.encode()).hexdigest()[:6], 16)
    if prompt.startswith("You write practice problems"):
        n = int(prompt.split("Write ")[1].split()[0])
        items = []
        for i in range(n):
            a, b = 100 + (seed + 37 * i) % 800, 11 + i
            items.append({"question": f"{a} + {b} - 5 =", "answer": str(a + b - 5)})
        return json.dumps(items)
    if prompt.startswith("You review"):
        verdict = "true" if seed % 4 else "false"  # a quarter rejected by the judge
        issue = "none" if seed % 4 else "content"
        return (
            '{"scores": {"correct": 5, "clear": 5, "on_task": 5}, '
            f'"pass": {verdict}, "issue": "{issue}", "reason": "r"}}'
        )
    return f'{{"name": "mode {seed % 97}", "description": "d", "hypothesis": "h"}}'


def nodes_done(run_db: Path) -> list[str]:
    if not run_db.is_file():
        return []
    try:
        connection = sqlite3.connect(f"file:{run_db}?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in connection.execute("SELECT node FROM node_runs ORDER BY id")]
        finally:
            connection.close()
    except sqlite3.OperationalError:  # the table is not there yet
        return []


def cached_prompts(run_db: Path) -> set[str]:
    store = RunStore(run_db)
    try:
        rows = store.db.execute("SELECT request FROM llm_calls").fetchall()
        return {json.loads(r["request"])["prompt"] for r in rows}
    finally:
        store.close()


def load_state(run_dir: Path, run_id: str) -> dict:
    """The latest checkpointed loop state of a run (empty if it never checkpointed)."""
    from failforward.app.runner import checkpointed_graph

    with checkpointed_graph(run_dir) as app:
        return dict(app.get_state({"configurable": {"thread_id": run_id}}).values)
