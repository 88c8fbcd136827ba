"""The critic: decides which candidates the student may learn from, with a reason for each.

In order: programmatic verification (the pack's verifier against a trusted reference answer),
exact-duplicate removal (within the batch and against everything accepted earlier in the run), and
decontamination against the test set. An LLM is never the judge of correctness here.
"""

from __future__ import annotations

from agents.schemas import Candidate, Item, Verdict
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


def critique(
    candidates: list[Candidate],
    verifier: Verifier,
    solver: Solver | None,
    test_questions: set[str],
    accepted_before: set[str],
) -> list[Verdict]:
    """One verdict per candidate, in order. ``test_questions`` and ``accepted_before`` hold
    normalized questions (see :func:`tools.sources.normalize`)."""
    seen = set(accepted_before)
    verdicts = []
    for candidate in candidates:
        key = normalize(candidate.question)
        verdict = verify(candidate, verifier, solver)
        if verdict is None and key in seen:
            verdict = Verdict(accepted=False, reason="duplicate", step="dedupe")
        if verdict is None and key in test_questions:
            verdict = Verdict(
                accepted=False,
                reason="contaminated",
                step="decontaminate",
                detail="question is in the test set",
            )
        if verdict is None:
            seen.add(key)
            verdict = Verdict(accepted=True, reason="accepted", step="verify")
        verdicts.append(verdict)
    return verdicts
