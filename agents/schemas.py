"""Typed records that flow between the loop's nodes, the agents and the store.

They are pydantic models so that an agent's reply can be validated the moment it arrives and so
that the graph state stays plain JSON (``model_dump``) for the LangGraph checkpointer.
"""

from __future__ import annotations

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


class FailureCluster(BaseModel):
    """A group of similar failures found by k-means over their embeddings."""

    cluster_id: int
    name: str
    size: int
    exemplars: list[str] = Field(default_factory=list)
    knobs: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="Observed range of each difficulty knob in the cluster."
    )


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
    cluster_id: int | None = None


class GenerationPlan(BaseModel):
    """What the teacher should produce this cycle."""

    cycle: int
    mode: Literal["targeted", "uniform"]
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
    step: str  # which step decided: verify, judge, refine, dedupe, decontaminate
    detail: str = ""
    scores: dict[str, float] = Field(
        default_factory=dict, description="The verifier's score and the judge's rubric scores."
    )


class TeacherCandidate(BaseModel):
    """What an LLM teacher must return per example (parsed from its JSON reply)."""

    question: str
    solution: str = ""
    answer: str
