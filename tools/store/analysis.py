"""The analyst's tables: each evaluation's probe failures, the clusters found in them and how they
link across cycles, and each cycle's plan."""

from __future__ import annotations

import json

from failforward.tools.records import Failure, FailureCluster, GenerationPlan
from failforward.tools.store.base import Store


class AnalysisTables(Store):
    """Probe failures, their clusters and links across cycles, and the plans."""

    SCHEMA = """
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
"""

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
