"""The teacher's candidates and the critic's verdicts on them, one row per candidate: what the
critic writes and training reads."""

from __future__ import annotations

import hashlib
import json

from failforward.tools.records import Candidate, Lineage, Verdict
from failforward.tools.store.base import Store


def content_hash(question: str, answer: str) -> str:
    """An example's identity: its question (case and spacing ignored) and answer."""
    text = " ".join(question.lower().split()) + "\0" + answer.strip()
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ExampleTables(Store):
    """Candidates with their verdicts (the accepted ones are the training examples)."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cycle INTEGER NOT NULL, target_id TEXT NOT NULL,
    cluster_id INTEGER, source TEXT NOT NULL, question TEXT NOT NULL, solution TEXT NOT NULL,
    answer TEXT NOT NULL, metadata TEXT NOT NULL, lineage TEXT NOT NULL,
    accepted INTEGER NOT NULL, reason TEXT NOT NULL, step TEXT NOT NULL, detail TEXT NOT NULL,
    scores TEXT NOT NULL DEFAULT '{}', content_hash TEXT NOT NULL DEFAULT '',
    verified_by TEXT NOT NULL DEFAULT '');
"""

    def migrate(self) -> None:
        # Runs written before a column existed can still be resumed and reported.
        columns = {r["name"] for r in self.db.execute("PRAGMA table_info(examples)")}
        with self.db:
            if "scores" not in columns:
                self.db.execute("ALTER TABLE examples ADD COLUMN scores TEXT NOT NULL DEFAULT '{}'")
            if "verified_by" not in columns:
                self.db.execute(
                    "ALTER TABLE examples ADD COLUMN verified_by TEXT NOT NULL DEFAULT ''"
                )
            if "content_hash" not in columns:
                self.db.execute(
                    "ALTER TABLE examples ADD COLUMN content_hash TEXT NOT NULL DEFAULT ''"
                )
            # An accepted example is stored once per run, whatever re-runs a resume makes.
            self.db.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS accepted_once ON examples (content_hash)"
                " WHERE accepted = 1 AND content_hash != ''"
            )

    def save_examples(
        self, cycle: int, candidates: list[Candidate], verdicts: list[Verdict]
    ) -> None:
        with self.db:
            self.db.execute("DELETE FROM examples WHERE cycle = ?", (cycle,))
            self.db.executemany(
                "INSERT INTO examples (cycle, target_id, cluster_id, source, question, solution,"
                " answer, metadata, lineage, accepted, reason, step, detail, scores, content_hash,"
                " verified_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        cycle,
                        c.lineage.target_id,
                        c.lineage.cluster_id,
                        c.lineage.source,
                        c.question,
                        c.solution,
                        c.answer,
                        json.dumps(c.metadata),
                        c.lineage.model_dump_json(),
                        int(v.accepted),
                        v.reason,
                        v.step,
                        v.detail,
                        json.dumps(v.scores),
                        content_hash(c.question, c.answer),
                        v.verified_by,
                    )
                    for c, v in zip(candidates, verdicts, strict=True)
                ],
            )

    def examples(self, cycle: int | None = None, accepted: bool | None = None) -> list[dict]:
        query, args = "SELECT * FROM examples WHERE 1=1", []
        if cycle is not None:
            query, args = query + " AND cycle = ?", [*args, cycle]
        if accepted is not None:
            query, args = query + " AND accepted = ?", [*args, int(accepted)]
        rows = self.db.execute(query + " ORDER BY id", args).fetchall()
        return [
            {
                **dict(r),
                "metadata": json.loads(r["metadata"]),
                "lineage": json.loads(r["lineage"]),
                "scores": json.loads(r["scores"]),
            }
            for r in rows
        ]

    def drop_examples(self, ids: list[int], reason: str) -> int:
        """Reject accepted examples after the critic (a review's or a graph script's own
        filter): ``reason`` becomes their verdict and nothing trains on them. Returns how many
        were accepted before."""
        marks = ",".join("?" * len(ids))
        with self.db:
            changed = self.db.execute(
                "UPDATE examples SET accepted = 0, reason = ? "
                f"WHERE accepted = 1 AND id IN ({marks})",
                [reason, *ids],
            )
        return changed.rowcount

    def candidates(self, cycle: int) -> list[Candidate]:
        """The cycle's teacher candidates again (what the critic re-judges after a resume).

        Refined rewrites are left out: the critic makes them again, from its cached replies.
        """
        return [
            Candidate(
                question=r["question"],
                solution=r["solution"],
                answer=r["answer"],
                metadata=r["metadata"],
                lineage=Lineage.model_validate(r["lineage"]),
            )
            for r in self.examples(cycle=cycle)
            if r["source"] != "refined"
        ]

    def verdict_counts(self, cycle: int) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT reason, COUNT(*) AS n FROM examples WHERE cycle = ? GROUP BY reason", (cycle,)
        )
        return {r["reason"]: r["n"] for r in rows}

    def verdicts_by_source(self, cycle: int) -> dict[str, dict[str, int]]:
        """``{source: {reason: count}}`` for the cycle (sources: procedural, llm, refined)."""
        rows = self.db.execute(
            "SELECT source, reason, COUNT(*) AS n FROM examples WHERE cycle = ?"
            " GROUP BY source, reason ORDER BY source, reason",
            (cycle,),
        )
        table: dict[str, dict[str, int]] = {}
        for r in rows:
            table.setdefault(r["source"], {})[r["reason"]] = r["n"]
        return table
