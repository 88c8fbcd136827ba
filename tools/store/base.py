"""The store's ground: one SQLite file, its schema made of every table class's own, and the
tables every graph's store has (``meta``, ``node_runs``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class Store:
    """SQLite access for one run. Thread-safe enough for one process (one connection, autocommit
    per method). A subclass adds tables with its ``SCHEMA`` and, for files written before a
    column existed, a ``migrate(self)``; every class's in the method resolution order runs
    when the file opens."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS node_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cycle INTEGER NOT NULL, node TEXT NOT NULL,
    seconds REAL NOT NULL);
"""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        # WAL: each LLM reply is committed as it arrives without an fsync per call; a killed
        # process loses no committed row (only a power cut could lose the last few).
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        owners = list(reversed(type(self).__mro__))
        for owner in owners:
            if "SCHEMA" in vars(owner):
                self.db.executescript(vars(owner)["SCHEMA"])
        for owner in owners:
            if "migrate" in vars(owner):
                vars(owner)["migrate"](self)

    def close(self) -> None:
        self.db.close()

    def set_meta(self, key: str, value: Any) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def record_node(self, cycle: int, node: str, seconds: float) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO node_runs (cycle, node, seconds) VALUES (?, ?, ?)",
                (cycle, node, seconds),
            )

    def node_runs(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM node_runs ORDER BY id")]
