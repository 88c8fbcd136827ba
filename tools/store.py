"""The run store: one SQLite file per run holding everything a report or an export needs.

Writes for a cycle replace that cycle's earlier rows, so a node re-run after a crash leaves no
duplicates. Secrets never reach this file: endpoints are stored by URL and model only.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from failforward.tools.records import (
    Candidate,
    Failure,
    FailureCluster,
    GenerationPlan,
    Item,
    Lineage,
    Verdict,
    cycle_of,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS eval_items (
    split TEXT NOT NULL, idx INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    metadata TEXT NOT NULL, PRIMARY KEY (split, idx));
CREATE TABLE IF NOT EXISTS attempts (
    cycle INTEGER NOT NULL, split TEXT NOT NULL, idx INTEGER NOT NULL, output TEXT NOT NULL,
    extracted TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (cycle, split, idx));
CREATE TABLE IF NOT EXISTS failures (
    cycle INTEGER NOT NULL, idx INTEGER NOT NULL, question TEXT NOT NULL, expected TEXT NOT NULL,
    output TEXT NOT NULL, extracted TEXT NOT NULL, metadata TEXT NOT NULL, cluster_id INTEGER,
    PRIMARY KEY (cycle, idx));
CREATE TABLE IF NOT EXISTS clusters (
    cycle INTEGER NOT NULL, cluster_id INTEGER NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
    exemplars TEXT NOT NULL, knobs TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (cycle, cluster_id));
CREATE TABLE IF NOT EXISTS cluster_links (
    cycle INTEGER NOT NULL, cluster_id INTEGER, previous_id INTEGER, similarity REAL,
    status TEXT NOT NULL, mode_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plans (cycle INTEGER PRIMARY KEY, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cycle INTEGER NOT NULL, target_id TEXT NOT NULL,
    cluster_id INTEGER, source TEXT NOT NULL, question TEXT NOT NULL, solution TEXT NOT NULL,
    answer TEXT NOT NULL, metadata TEXT NOT NULL, lineage TEXT NOT NULL,
    accepted INTEGER NOT NULL, reason TEXT NOT NULL, step TEXT NOT NULL, detail TEXT NOT NULL,
    scores TEXT NOT NULL DEFAULT '{}', content_hash TEXT NOT NULL DEFAULT '',
    verified_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS metrics (
    cycle INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (cycle, name));
CREATE TABLE IF NOT EXISTS node_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cycle INTEGER NOT NULL, node TEXT NOT NULL,
    seconds REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    cycle INTEGER NOT NULL, idx INTEGER NOT NULL, example_id INTEGER NOT NULL,
    question TEXT NOT NULL, chosen TEXT NOT NULL, rejected TEXT NOT NULL, lineage TEXT NOT NULL,
    PRIMARY KEY (cycle, idx));
CREATE TABLE IF NOT EXISTS train_log (
    cycle INTEGER NOT NULL, phase TEXT NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (cycle, phase, idx));
CREATE TABLE IF NOT EXISTS llm_calls (
    key TEXT PRIMARY KEY, role TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,
    response TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER);
CREATE TABLE IF NOT EXISTS llm_faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT NOT NULL, tag TEXT NOT NULL,
    kind TEXT NOT NULL, detail TEXT NOT NULL, final INTEGER NOT NULL);
"""


def content_hash(question: str, answer: str) -> str:
    """An example's identity: its question (case and spacing ignored) and answer."""
    text = " ".join(question.lower().split()) + "\0" + answer.strip()
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RunStore:
    """SQLite access for one run. Thread-safe enough for one process (one connection, autocommit
    per method)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        # WAL: each LLM reply is committed as it arrives without an fsync per call; a killed
        # process loses no committed row (only a power cut could lose the last few).
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
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

    def close(self) -> None:
        self.db.close()

    # -- run metadata -----------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    # -- evaluation sets --------------------------------------------------------------------
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

    # -- failures and clusters --------------------------------------------------------------
    def save_failures(self, cycle: int, failures: list[Failure]) -> None:
        with self.db:
            self.db.execute("DELETE FROM failures WHERE cycle = ?", (cycle,))
            self.db.executemany(
                "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [
                    (
                        cycle,
                        i,
                        f.question,
                        f.expected,
                        f.output,
                        f.extracted,
                        json.dumps(f.metadata),
                    )
                    for i, f in enumerate(failures)
                ],
            )

    def failure_clusters(self, cycle: int) -> list[int | None]:
        """Each of the cycle's failures' cluster id, in order (None before analysis)."""
        rows = self.db.execute(
            "SELECT cluster_id FROM failures WHERE cycle = ? ORDER BY idx", (cycle,)
        )
        return [r["cluster_id"] for r in rows]

    def failures(self, cycle: int) -> list[Failure]:
        rows = self.db.execute("SELECT * FROM failures WHERE cycle = ? ORDER BY idx", (cycle,))
        return [
            Failure(
                question=r["question"],
                expected=r["expected"],
                output=r["output"],
                extracted=r["extracted"],
                metadata=json.loads(r["metadata"]),
            )
            for r in rows
        ]

    def save_clusters(
        self, cycle: int, clusters: list[FailureCluster], labels: list[int], failures_cycle: int
    ) -> None:
        """Clusters found for ``cycle``'s plan; ``labels`` link the failures of the evaluation
        they came from (``failures_cycle``, the cycle before) to their cluster."""
        with self.db:
            self.db.execute("DELETE FROM clusters WHERE cycle = ?", (cycle,))
            self.db.executemany(
                "INSERT INTO clusters VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        cycle,
                        c.cluster_id,
                        c.name,
                        c.size,
                        json.dumps(c.exemplars),
                        json.dumps(c.knobs),
                        c.model_dump_json(),
                    )
                    for c in clusters
                ],
            )
            self.db.executemany(
                "UPDATE failures SET cluster_id = ? WHERE cycle = ? AND idx = ?",
                [(label, failures_cycle, i) for i, label in enumerate(labels)],
            )

    def clusters(self, cycle: int) -> list[FailureCluster]:
        rows = self.db.execute(
            "SELECT * FROM clusters WHERE cycle = ? ORDER BY cluster_id", (cycle,)
        )
        return [
            FailureCluster.model_validate_json(r["data"])
            if r["data"] != "{}"
            else FailureCluster(
                cluster_id=r["cluster_id"],
                name=r["name"],
                size=r["size"],
                exemplars=json.loads(r["exemplars"]),
                knobs=json.loads(r["knobs"]),
            )
            for r in rows
        ]

    def save_cluster_links(self, cycle: int, links: list[dict]) -> None:
        """How ``cycle``'s clusters map to the previous cycle's (see analyst.track_clusters)."""
        with self.db:
            self.db.execute("DELETE FROM cluster_links WHERE cycle = ?", (cycle,))
            self.db.executemany(
                "INSERT INTO cluster_links VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        cycle,
                        link["cluster_id"],
                        link["previous_id"],
                        link["similarity"],
                        link["status"],
                        link["mode_id"],
                    )
                    for link in links
                ],
            )

    def cluster_links(self, cycle: int) -> list[dict]:
        rows = self.db.execute("SELECT * FROM cluster_links WHERE cycle = ?", (cycle,))
        return [dict(r) for r in rows]

    def save_plan(self, plan: GenerationPlan) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?, ?)", (plan.cycle, plan.model_dump_json())
            )

    def plans(self) -> list[GenerationPlan]:
        rows = self.db.execute("SELECT plan FROM plans ORDER BY cycle")
        return [GenerationPlan.model_validate_json(r["plan"]) for r in rows]

    # -- examples ---------------------------------------------------------------------------
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

    # -- preference pairs and training logs ------------------------------------------------
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

    # -- metrics and timings ----------------------------------------------------------------
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

    def record_node(self, cycle: int, node: str, seconds: float) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO node_runs (cycle, node, seconds) VALUES (?, ?, ?)",
                (cycle, node, seconds),
            )

    def node_runs(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM node_runs ORDER BY id")]

    # -- LLM call cache ---------------------------------------------------------------------
    @staticmethod
    def call_key(role: str, model: str, request: Any) -> str:
        payload = json.dumps([role, model, request], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def cached_call(self, key: str) -> str | None:
        row = self.db.execute("SELECT response FROM llm_calls WHERE key = ?", (key,)).fetchone()
        return row["response"] if row else None

    def save_call(
        self,
        key: str,
        role: str,
        model: str,
        request: Any,
        response: str,
        usage: dict[str, int] | None = None,
    ) -> None:
        usage = usage or {}
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO llm_calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    role,
                    model,
                    json.dumps(request),
                    response,
                    usage.get("input_tokens"),
                    usage.get("output_tokens"),
                ),
            )

    def save_call_fault(
        self, role: str, request: dict, kind: str, detail: str, final: bool
    ) -> None:
        """A failed attempt at a request; ``final`` when no retry followed (the request failed,
        is not cached, and a resume asks again)."""
        with self.db:
            self.db.execute(
                "INSERT INTO llm_faults (role, tag, kind, detail, final) VALUES (?, ?, ?, ?, ?)",
                (role, request.get("tag") or "", kind, detail[:500], int(final)),
            )

    def call_failures(self) -> list[dict]:
        """Requests that failed after their retries, oldest first."""
        rows = self.db.execute("SELECT * FROM llm_faults WHERE final = 1 ORDER BY id")
        return [dict(r) for r in rows]

    def call_faults(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{role: {"retried" | "failed": {kind: count}}}`` over the whole run."""
        faults: dict[str, dict[str, dict[str, int]]] = {}
        rows = self.db.execute(
            "SELECT role, kind, final, COUNT(*) AS n FROM llm_faults GROUP BY role, kind, final"
        )
        for r in rows:
            by = faults.setdefault(r["role"], {"retried": {}, "failed": {}})
            by["failed" if r["final"] else "retried"][r["kind"]] = r["n"]
        return faults

    def token_usage_by_cycle(self) -> dict[tuple[str, int | None], dict[str, int]]:
        """``{(role, cycle): {calls, prompt, completion}}``; the cycle comes from the tag."""
        usage: dict[tuple[str, int | None], dict[str, int]] = {}
        rows = self.db.execute(
            "SELECT role, request, prompt_tokens, completion_tokens FROM llm_calls"
        )
        for r in rows:
            key = (r["role"], cycle_of(json.loads(r["request"]).get("tag", "")))
            row = usage.setdefault(key, {"calls": 0, "prompt": 0, "completion": 0})
            row["calls"] += 1
            row["prompt"] += r["prompt_tokens"] or 0
            row["completion"] += r["completion_tokens"] or 0
        return usage

    def token_usage(self) -> dict[str, dict[str, int]]:
        rows = self.db.execute(
            "SELECT role, COUNT(*) AS calls, SUM(prompt_tokens) AS prompt,"
            " SUM(completion_tokens) AS completion FROM llm_calls GROUP BY role"
        )
        return {
            r["role"]: {
                "calls": r["calls"],
                "prompt": r["prompt"] or 0,
                "completion": r["completion"] or 0,
            }
            for r in rows
        }
