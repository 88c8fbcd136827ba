"""What training wrote: the DPO pairs made from the student's own failures, and each trainer's
step log."""

from __future__ import annotations

import json

from failforward.tools.store.base import Store


class TrainingTables(Store):
    """DPO pairs and the trainers' step logs, per cycle."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
    cycle INTEGER NOT NULL, idx INTEGER NOT NULL, example_id INTEGER NOT NULL,
    question TEXT NOT NULL, chosen TEXT NOT NULL, rejected TEXT NOT NULL, lineage TEXT NOT NULL,
    PRIMARY KEY (cycle, idx));
CREATE TABLE IF NOT EXISTS train_log (
    cycle INTEGER NOT NULL, phase TEXT NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (cycle, phase, idx));
"""

    def save_pairs(self, cycle: int, pairs: list[dict]) -> None:
        """DPO pairs: chosen = a verified answer, rejected = the student's failing output."""
        with self.db:
            self.db.execute("DELETE FROM pairs WHERE cycle = ?", (cycle,))
            self.db.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        cycle,
                        i,
                        p["example_id"],
                        p["question"],
                        p["chosen"],
                        p["rejected"],
                        json.dumps(p["lineage"]),
                    )
                    for i, p in enumerate(pairs)
                ],
            )

    def pairs(self, cycle: int | None = None) -> list[dict]:
        query = "SELECT * FROM pairs" + (" WHERE cycle = ?" if cycle is not None else "")
        rows = self.db.execute(query + " ORDER BY cycle, idx", () if cycle is None else (cycle,))
        return [{**dict(r), "lineage": json.loads(r["lineage"])} for r in rows]

    def save_train_log(self, cycle: int, phase: str, log: list[dict]) -> None:
        """One trainer's step log (loss, learning rate, seconds, ...) for a cycle."""
        with self.db:
            self.db.execute("DELETE FROM train_log WHERE cycle = ? AND phase = ?", (cycle, phase))
            self.db.executemany(
                "INSERT INTO train_log VALUES (?, ?, ?, ?)",
                [(cycle, phase, i, json.dumps(entry)) for i, entry in enumerate(log)],
            )

    def train_log(self, cycle: int) -> dict[str, list[dict]]:
        """``{phase: [step entries]}`` for a cycle, phases in training order (sft, dpo, grpo)."""
        out: dict[str, list[dict]] = {}
        rows = self.db.execute(
            "SELECT phase, data FROM train_log WHERE cycle = ?"
            " ORDER BY instr('sft dpo grpo', phase), idx",
            (cycle,),
        )
        for r in rows:
            out.setdefault(r["phase"], []).append(json.loads(r["data"]))
        return out
