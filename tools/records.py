"""Typed records that flow between the loop's nodes, the agents and the store.

They are pydantic models so that an agent's reply can be validated the moment it arrives and so
that the graph state stays plain JSON (``model_dump``) for the LangGraph checkpointer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

Source = Literal["procedural", "llm", "refined"]


class Item(BaseModel):
    """One task instance: what the student is asked and what counts as right."""

    question: str
    answer: str
    solution: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class StudentAttempt(BaseModel):
    """The student's reply to one item, scored by the pack's verifier."""

    item: Item
    output: str
    extracted: str
    score: float

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


class Failure(BaseModel):
    """A probe item the student got wrong, with what it said."""

    question: str
    expected: str
    output: str
    extracted: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class KnobCell(BaseModel):
    """One value per difficulty knob (e.g. 3 terms of 2 digits) and how many failures fell there."""

    knobs: dict[str, int | str]  # a multi-skill pack's cells also name their skill
    failures: int = 0


class FailureCluster(BaseModel):
    """A group of similar failures found by k-means over their embeddings.

    ``cluster_id`` -1 is the outlier bucket: failures in clusters too small to plan for.
    """

    cluster_id: int
    name: str
    size: int
    exemplars: list[str] = Field(default_factory=list)
    knobs: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="Observed range of each difficulty knob in the cluster."
    )
    knob_modes: dict[str, int | str] = Field(
        default_factory=dict,
        description="Most common value of each knob in the cluster (and its skill, if any).",
    )
    cells: list[KnobCell] = Field(
        default_factory=list, description="The cluster's failures per knob cell, most first."
    )
    description: str = ""
    hypothesis: str = Field("", description="The skill the analyst thinks is missing.")
    name_source: str = Field("metadata", description="analyst, or metadata (and why).")
    keywords: list[str] = Field(default_factory=list, description="Top c-TF-IDF words.")
    centroid: list[float] = Field(default_factory=list, repr=False)
    success: float | None = Field(
        None, description="The student's accuracy on probe items near this failure mode."
    )
    # Tracking across cycles (see agents.analyst.track_clusters).
    mode_id: str = Field("", description="Stable id of the failure mode across cycles.")
    previous_id: int | None = None
    similarity: float | None = None
    status: Literal["new", "grew", "shrank", "stable"] = "new"
    previous_size: int | None = None
    flat_cycles: int = Field(0, description="Cycles in a row targeted without shrinking.")

    @property
    def outlier(self) -> bool:
        return self.cluster_id < 0


class PlanTarget(BaseModel):
    """One line of a generation plan: what to generate and how many."""

    target_id: str
    name: str
    description: str
    budget: int
    exemplars: list[str] = Field(default_factory=list)
    source_config: dict[str, Any] = Field(
        default_factory=dict, description="Overrides for the procedural source (knob ranges)."
    )
    cell: dict[str, int | str] = Field(
        default_factory=dict,
        description="The cell drawn from: skill and knob values (empty: the source's own mix).",
    )
    cluster_id: int | None = None
    kind: Literal[
        "cluster", "stepping_stone", "explore", "uniform", "frontier", "replay", "oracle"
    ] = "cluster"
    cluster_size: int = 0
    error_share: float = Field(0.0, description="The cluster's share of the cycle's failures.")
    weight: float = Field(0.0, description="The planning rule's weight for the target.")
    capacity: int | None = Field(
        None, description="New items the cell could still give when planned (None: not asked)."
    )
    success: float | None = Field(
        None, description="The student's estimated success in the cell (learnability plans)."
    )


class GenerationPlan(BaseModel):
    """What the teacher should produce this cycle."""

    cycle: int
    mode: Literal["targeted", "uniform", "oracle"]
    targets: list[PlanTarget]

    @property
    def budget(self) -> int:
        return sum(t.budget for t in self.targets)


class Lineage(BaseModel):
    """Where a candidate came from, kept with the example for export and audits."""

    cycle: int
    target_id: str
    source: Source
    cluster_id: int | None = None
    seed: int | None = None
    endpoint_model: str | None = None
    original: dict[str, Any] | None = Field(
        None,
        description="For a refined candidate: the candidate it rewrites (question, solution, "
        "answer, source) and why that one was rejected.",
    )


class Candidate(BaseModel):
    """A teacher-written example waiting for the critic."""

    question: str
    solution: str = ""
    answer: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    lineage: Lineage


class Verdict(BaseModel):
    """The critic's decision on one candidate, with a reason code."""

    accepted: bool
    reason: str
    step: str  # which step decided: verify, consistency, check, judge, dedupe, decontaminate
    detail: str = ""
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="The verifier's score, the judge's rubric scores and, for an answer "
        "verified without a solver, the share of independent answers that agreed (agreement).",
    )
    verified_by: str = Field(
        "",
        description="What established the answer: solver (recomputed), source (a procedural "
        "source's own answer), consistency (independent answers agreed), check (the critic "
        "confirmed it); empty when nothing did.",
    )


class TeacherCandidate(BaseModel):
    """What an LLM teacher must return per example (parsed from its JSON reply)."""

    question: str
    solution: str = ""
    answer: str


def cycle_of(tag: str) -> int | None:
    """The cycle a request tag names (``c2-k0/1`` -> 2), None for untagged requests."""
    match = re.match(r"c(\d+)-", tag or "")
    return int(match.group(1)) if match else None


@dataclass
class Rewrite:
    """One rewrite of one chunk, with the critic's verdict once checked."""

    doc_id: str
    chunk_index: int
    style: str
    sample: int  # which of the K rewrites in this style
    text: str | None
    refined: bool = False
    reason: str = "pending"  # accepted, or why not
    similarity: float | None = None
    detail: str = ""
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        """The chunk it rewrites: ``(doc_id, chunk_index)``."""
        return self.doc_id, self.chunk_index

    @property
    def tag(self) -> str:
        """The request's purpose (cache key and store key); a refined rewrite has its own."""
        tag = f"a-{self.doc_id}/{self.chunk_index}/{self.style}/{self.sample}"
        return tag + "/refined" if self.refined else tag

    @property
    def accepted(self) -> bool:
        return self.reason == "accepted"
