"""The evaluation tables: the probe and test items, the student's attempts at each evaluation, and
the metrics of each cycle."""

from __future__ import annotations

import json

from failforward.tools.records import Item
from failforward.tools.store.base import Store


class EvalTables(Store):
    """The probe and test sets, every evaluation's attempts, and per-cycle metrics."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_items (
    split TEXT NOT NULL, idx INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    metadata TEXT NOT NULL, PRIMARY KEY (split, idx));
CREATE TABLE IF NOT EXISTS attempts (
    cycle INTEGER NOT NULL, split TEXT NOT NULL, idx INTEGER NOT NULL, output TEXT NOT NULL,
    extracted TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (cycle, split, idx));
CREATE TABLE IF NOT EXISTS metrics (
    cycle INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (cycle, name));
"""

    def save_eval_items(self, split: str, items: list[Item]) -> None:
        with self.db:
            self.db.execute("DELETE FROM eval_items WHERE split = ?", (split,))
            self.db.executemany(
                "INSERT INTO eval_items VALUES (?, ?, ?, ?, ?)",
                [
                    (split, i, it.question, it.answer, json.dumps(it.metadata))
                    for i, it in enumerate(items)
                ],
            )

    def eval_items(self, split: str) -> list[Item]:
        rows = self.db.execute(
            "SELECT * FROM eval_items WHERE split = ? ORDER BY idx", (split,)
        ).fetchall()
        return [
            Item(question=r["question"], answer=r["answer"], metadata=json.loads(r["metadata"]))
            for r in rows
        ]

    def save_attempts(self, cycle: int, split: str, attempts: list) -> None:
        with self.db:
            self.db.execute("DELETE FROM attempts WHERE cycle = ? AND split = ?", (cycle, split))
            self.db.executemany(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?)",
                [(cycle, split, i, a.output, a.extracted, a.score) for i, a in enumerate(attempts)],
            )

    def attempts(self, cycle: int, split: str) -> list[tuple[Item, float]]:
        """The split's items with the student's score on each at ``cycle``'s evaluation."""
        items = self.eval_items(split)
        rows = self.db.execute(
            "SELECT idx, score FROM attempts WHERE cycle = ? AND split = ? ORDER BY idx",
            (cycle, split),
        )
        return [(items[r["idx"]], r["score"]) for r in rows]

    def successes(self, cycle: int, split: str) -> list[dict]:
        """The split's items the student answered right at ``cycle``'s evaluation, with its own
        reply: ``{"idx", "question", "answer", "reply"}``."""
        items = self.eval_items(split)
        rows = self.db.execute(
            "SELECT idx, output FROM attempts WHERE cycle = ? AND split = ? AND score >= 1.0 "
            "ORDER BY idx",
            (cycle, split),
        )
        return [
            {"idx": r["idx"], "question": items[r["idx"]].question,
             "answer": items[r["idx"]].answer, "reply": r["output"]}
            for r in rows
        ]  # fmt: skip

    def save_metrics(self, cycle: int, values: dict[str, float]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)",
                [(cycle, k, float(v)) for k, v in values.items()],
            )

    def metrics(self) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = {}
        for r in self.db.execute("SELECT * FROM metrics ORDER BY cycle"):
            out.setdefault(r["cycle"], {})[r["name"]] = r["value"]
        return out
