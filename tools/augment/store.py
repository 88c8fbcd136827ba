"""The augmentation run's store: the LLM call cache, meta and node runs (the run store's
:class:`~failforward.tools.store.CallTables`) plus its chunks, rewrites with their verdicts, and
rationales."""

from __future__ import annotations

import json

from failforward.tools.augment.corpus import Document
from failforward.tools.records import Rewrite
from failforward.tools.store import CallTables

AUGMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS aug_chunks (
    doc_id TEXT NOT NULL, chunk_index INTEGER NOT NULL, text TEXT NOT NULL, split TEXT NOT NULL,
    PRIMARY KEY (doc_id, chunk_index));
CREATE TABLE IF NOT EXISTS aug_rewrites (
    tag TEXT PRIMARY KEY, doc_id TEXT NOT NULL, chunk_index INTEGER NOT NULL, style TEXT NOT NULL,
    sample INTEGER NOT NULL, text TEXT, refined INTEGER NOT NULL, reason TEXT NOT NULL,
    similarity REAL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aug_rationales (
    doc_id TEXT NOT NULL, chunk_index INTEGER NOT NULL, rationales TEXT NOT NULL,
    PRIMARY KEY (doc_id, chunk_index));
"""


class AugmentStore(CallTables):
    """The call cache's tables plus the augmentation's."""

    SCHEMA = AUGMENT_SCHEMA

    def save_chunks(self, rows: list[tuple[str, int, str, str]]) -> None:
        with self.db:
            self.db.execute("DELETE FROM aug_chunks")
            self.db.executemany("INSERT INTO aug_chunks VALUES (?, ?, ?, ?)", rows)

    def chunks(self, split: str = "augment") -> dict[tuple[str, int], str]:
        rows = self.db.execute(
            "SELECT doc_id, chunk_index, text FROM aug_chunks WHERE split = ? ORDER BY rowid",
            (split,),
        )
        return {(r["doc_id"], r["chunk_index"]): r["text"] for r in rows}

    def save_rewrites(self, rewrites: list[Rewrite]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO aug_rewrites VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.tag,
                        r.doc_id,
                        r.chunk_index,
                        r.style,
                        r.sample,
                        r.text,
                        int(r.refined),
                        r.reason,
                        r.similarity,
                        r.detail,
                    )
                    for r in rewrites
                ],
            )

    def rewrites(self) -> list[Rewrite]:
        rows = self.db.execute("SELECT * FROM aug_rewrites ORDER BY rowid")
        return [
            Rewrite(
                r["doc_id"],
                r["chunk_index"],
                r["style"],
                r["sample"],
                r["text"],
                bool(r["refined"]),
                r["reason"],
                r["similarity"],
                r["detail"],
            )
            for r in rows
        ]

    def assembly_inputs(
        self,
    ) -> tuple[list[Document], dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
        """What :func:`tools.augment.assemble.assemble` takes: each chunk as a unit
        ``<doc>#<index>``, its accepted ``(style, text)`` rewrites, and its rationales."""
        units = [Document(f"{d}#{i}", text, d) for (d, i), text in self.chunks().items()]
        accepted: dict[str, list[tuple[str, str]]] = {}
        for r in self.rewrites():
            if r.accepted:
                accepted.setdefault(f"{r.doc_id}#{r.chunk_index}", []).append((r.style, r.text))
        notes = {f"{d}#{i}": v for (d, i), v in self.rationales().items()}
        return units, accepted, notes

    def save_rationales(self, values: dict[tuple[str, int], list[str]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO aug_rationales VALUES (?, ?, ?)",
                [(d, i, json.dumps(r)) for (d, i), r in values.items()],
            )

    def rationales(self) -> dict[tuple[str, int], list[str]]:
        rows = self.db.execute("SELECT * FROM aug_rationales")
        return {(r["doc_id"], r["chunk_index"]): json.loads(r["rationales"]) for r in rows}
