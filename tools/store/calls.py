"""The LLM call cache (every reply by its request's content, with its tokens) and every failed
attempt: what an endpoint client writes, and all it reads."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from failforward.tools.records import cycle_of
from failforward.tools.store.base import Store


class CallTables(Store):
    """Cached LLM replies, token counts and faults."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_calls (
    key TEXT PRIMARY KEY, role TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,
    response TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER);
CREATE TABLE IF NOT EXISTS llm_faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT NOT NULL, tag TEXT NOT NULL,
    kind TEXT NOT NULL, detail TEXT NOT NULL, final INTEGER NOT NULL);
"""

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
