"""The critic: decides which candidates the student may learn from, with a reason for each.

In order: programmatic verification (the pack's verifier against a reference answer its solver
recomputed), duplicate removal (exact and near, within the batch and against everything accepted
earlier in the run), and decontamination against the test set (exact, near, rare n-grams). An LLM
is never the judge of correctness here.
"""

from __future__ import annotations

import numpy as np

from agents.schemas import Candidate, Item, Verdict
from tools.embeddings import Embedder
from tools.packs import CriticSpec
from tools.similarity import NearIndex
from tools.sources import normalize
from tools.verifiers import Solver, Unverifiable, Verifier


def reference_item(candidate: Candidate, solver: Solver | None) -> Item | None:
    """The trusted answer for a candidate: the pack's solver recomputes it from the question (and
    worked solution) when it can, for every source, so a procedural source's answer is checked
    too; else a procedural item keeps its source's answer, and an LLM-written one has none.

    Raises:
        Unverifiable: the solver was stopped (e.g. a sandboxed program timed out).
    """
    answer = solver(candidate.question, candidate.solution) if solver else None
    if answer is None and candidate.lineage.source == "procedural":
        answer = candidate.answer
    if answer is None:
        return None
    return Item(question=candidate.question, answer=answer, metadata=candidate.metadata)


def verify(candidate: Candidate, verifier: Verifier, solver: Solver | None) -> Verdict | None:
    """A rejecting verdict if the candidate's answer is not verifiably right, else None."""
    if not candidate.question.strip() or not candidate.answer.strip():
        return Verdict(accepted=False, reason="empty", step="verify")
    try:
        reference = reference_item(candidate, solver)
    except Unverifiable as err:
        return Verdict(accepted=False, reason=err.reason, step="verify", detail=err.detail)
    if reference is None:
        return Verdict(
            accepted=False,
            reason="unverifiable",
            step="verify",
            detail="no solver could recompute the answer",
        )
    check = verifier(candidate.answer.strip(), reference)
    if check.score < 1.0:
        reason = "wrong_answer" if check.reason == "mismatch" else check.reason
        return Verdict(
            accepted=False,
            reason=reason,
            step="verify",
            detail=f"claimed {candidate.answer[:60]!r}, reference {reference.answer[:60]!r}; "
            f"{check.detail}".rstrip("; "),
        )
    return None


class Screen:
    """Duplicate and test-set screens for one cycle's candidates.

    Exact matches (normalized text) always; near matches (see :mod:`tools.similarity`) when an
    embedder is given. Accepted candidates join the duplicate screen as they are accepted, so the
    batch is screened against itself as well as against earlier cycles.
    """

    def __init__(
        self,
        test_questions: list[str],
        accepted_before: list[str],
        embedder: Embedder | None = None,
        spec: CriticSpec | None = None,
    ):
        spec = spec or CriticSpec()
        self.embedder = embedder
        self.test_keys = {normalize(q) for q in test_questions}
        self.seen = {normalize(q) for q in accepted_before}
        if embedder is not None:
            self.tests = NearIndex(spec.contamination, ngram=spec.ngram)
            self.tests.add(list(test_questions), embedder(list(test_questions)))
            self.accepted = NearIndex(spec.near_duplicate)
            self.accepted.add(list(accepted_before), embedder(list(accepted_before)))

    def vectors(self, questions: list[str]) -> np.ndarray | None:
        return self.embedder(questions) if self.embedder is not None else None

    def duplicate(self, question: str, vector: np.ndarray | None) -> Verdict | None:
        if normalize(question) in self.seen:
            return Verdict(accepted=False, reason="duplicate", step="dedupe", detail="same text")
        hit = self.accepted.find(question, vector) if vector is not None else None
        if hit:
            detail = f"near {self.accepted.texts[hit[0]][:80]!r}: {hit[1]}"
            return Verdict(accepted=False, reason="duplicate", step="dedupe", detail=detail)
        return None

    def contaminated(self, question: str, vector: np.ndarray | None) -> Verdict | None:
        if normalize(question) in self.test_keys:
            return Verdict(
                accepted=False,
                reason="contaminated",
                step="decontaminate",
                detail="question is in the test set",
            )
        hit = self.tests.find(question, vector) if vector is not None else None
        if hit:
            return Verdict(
                accepted=False,
                reason="contaminated",
                step="decontaminate",
                detail=f"rewords a test item: {hit[1]}",
            )
        return None

    def accept(self, question: str, vector: np.ndarray | None) -> None:
        self.seen.add(normalize(question))
        if vector is not None:
            self.accepted.add([question], vector.reshape(1, -1))


def critique(
    candidates: list[Candidate],
    verifier: Verifier,
    solver: Solver | None,
    screen: Screen,
) -> list[Verdict]:
    """One verdict per candidate, in order: verify, then dedupe, then decontaminate."""
    vectors = screen.vectors([c.question for c in candidates])
    verdicts = []
    for i, candidate in enumerate(candidates):
        vector = vectors[i] if vectors is not None else None
        verdict = (
            verify(candidate, verifier, solver)
            or screen.duplicate(candidate.question, vector)
            or screen.contaminated(candidate.question, vector)
        )
        if verdict is None:
            screen.accept(candidate.question, vector)
            verdict = Verdict(accepted=True, reason="accepted", step="verify")
        verdicts.append(verdict)
    return verdicts
