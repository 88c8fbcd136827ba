"""The critic: decides which candidates the student may learn from, with a reason for each.

In order: programmatic verification (the pack's verifier against a reference answer its solver
recomputed, or a procedural source's own answer), verification by the critic endpoint of answers
nothing else vouches for (self-consistency or the critic's check; see :mod:`agents.verification`),
the LLM rubric judge and refinement of form-only failures (when the critic role has
an endpoint; see :mod:`agents.judge`), duplicate removal (exact and near, within the batch and
against everything accepted earlier in the run), and decontamination against the test set (exact,
near, rare n-grams). The judge can only reject what verification passed, never the other way.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from failforward.agents.judge import judge_candidates, judge_verdict, refine_candidates
from failforward.agents.verification import Verification
from failforward.tools.embed.embeddings import Embedder
from failforward.tools.embed.similarity import NearIndex
from failforward.tools.packs.pack import CriticSpec, Pack
from failforward.tools.packs.sources import normalize
from failforward.tools.records import Candidate, Item, Verdict
from failforward.tools.verify.verifiers import Solver, Unverifiable, Verifier


def reference_item(candidate: Candidate, solver: Solver | None) -> tuple[Item, str] | None:
    """The trusted answer for a candidate and what vouches for it: the pack's solver recomputes
    it from the question (and worked solution) when it can, for every source, so a procedural
    source's answer is checked too (``solver``); else a procedural item keeps its source's answer
    (``source``), and an LLM-written one has none.

    Raises:
        Unverifiable: the solver was stopped (e.g. a sandboxed program timed out).
    """
    answer = solver(candidate.question, candidate.solution, candidate.answer) if solver else None
    by = "solver"
    if answer is None and candidate.lineage.source == "procedural":
        answer, by = candidate.answer, "source"
    if answer is None:
        return None
    return Item(question=candidate.question, answer=answer, metadata=candidate.metadata), by


UNVOUCHED = "no solver recomputed the answer and no procedural source made it"


def verify(
    candidate: Candidate,
    verifier: Verifier,
    solver: Solver | None,
    extract: Callable[[str], str] | None = None,
) -> Verdict:
    """Whether the candidate's answer is verifiably right (``accepted``), with a reason code.

    ``extract`` is the pack's answer extraction: a wrong answer that is right once extracted
    ("The answer is 7.") is rejected as ``answer_format``, a form problem refine can fix.
    """
    if not candidate.question.strip() or not candidate.answer.strip():
        return Verdict(accepted=False, reason="empty", step="verify")
    try:
        vouched = reference_item(candidate, solver)
    except Unverifiable as err:
        return Verdict(accepted=False, reason=err.reason, step="verify", detail=err.detail)
    if vouched is None:
        return Verdict(accepted=False, reason="unverifiable", step="verify", detail=UNVOUCHED)
    reference, by = vouched
    answer = candidate.answer.strip()
    check = verifier(answer, reference)
    scores = {"verify": check.score}
    if check.score >= 1.0:
        return Verdict(
            accepted=True, reason="accepted", step="verify", scores=scores, verified_by=by
        )
    reason = "wrong_answer" if check.reason == "mismatch" else check.reason
    extracted = extract(answer) if extract else ""
    if extracted and extracted != answer and verifier(extracted, reference).score >= 1.0:
        reason = "answer_format"
    return Verdict(
        accepted=False,
        reason=reason,
        step="verify",
        detail=f"claimed {candidate.answer[:60]!r}, reference {reference.answer[:60]!r}; "
        f"{check.detail}".rstrip("; "),
        scores=scores,
    )


class Screen:
    """Duplicate and test-set screens for one cycle's candidates.

    Exact matches (normalized text) always; near matches (see :mod:`tools.embed.similarity`) when an
    embedder is given. Accepted candidates join the duplicate screen as they are accepted, so the
    batch is screened against itself as well as against earlier cycles. Items may be given as
    plain questions where their answers are unknown.
    """

    def __init__(
        self,
        test_items: list[Item | str],
        accepted_before: list[Item | str],
        embedder: Embedder | None = None,
        spec: CriticSpec | None = None,
    ):
        spec = spec or CriticSpec()
        self.embedder = embedder
        tests, tests_answers = _split(test_items)
        before, before_answers = _split(accepted_before)
        self.test_keys = {normalize(q) for q in tests}
        self.seen = {normalize(q) for q in before}
        if embedder is not None:
            self.tests = NearIndex(spec.contamination, ngram=spec.ngram)
            self.tests.add(tests, embedder(tests), tests_answers)
            self.accepted = NearIndex(spec.near_duplicate)
            self.accepted.add(before, embedder(before), before_answers)

    def vectors(self, questions: list[str]) -> np.ndarray | None:
        return self.embedder(questions) if self.embedder is not None else None

    def duplicate(
        self, question: str, vector: np.ndarray | None, answer: str | None = None
    ) -> Verdict | None:
        if normalize(question) in self.seen:
            return Verdict(accepted=False, reason="duplicate", step="dedupe", detail="same text")
        hit = self.accepted.find(question, vector, answer) if vector is not None else None
        if hit:
            detail = f"near {self.accepted.texts[hit[0]][:80]!r}: {hit[1]}"
            return Verdict(accepted=False, reason="duplicate", step="dedupe", detail=detail)
        return None

    def contaminated(
        self, question: str, vector: np.ndarray | None, answer: str | None = None
    ) -> Verdict | None:
        if normalize(question) in self.test_keys:
            return Verdict(
                accepted=False,
                reason="contaminated",
                step="decontaminate",
                detail="question is in the test set",
            )
        hit = self.tests.find(question, vector, answer) if vector is not None else None
        if hit:
            return Verdict(
                accepted=False,
                reason="contaminated",
                step="decontaminate",
                detail=f"rewords a test item: {hit[1]}",
            )
        return None

    def accept(self, question: str, vector: np.ndarray | None, answer: str | None = None) -> None:
        self.seen.add(normalize(question))
        if vector is not None:
            self.accepted.add([question], vector.reshape(1, -1), [answer])


def _split(items: list[Item | str]) -> tuple[list[str], list[str | None]]:
    questions = [i if isinstance(i, str) else i.question for i in items]
    return questions, [None if isinstance(i, str) else i.answer for i in items]


@dataclass
class CriticLLM:
    """The critic endpoint's part for one cycle: rubric judge and refine, as the pack allows."""

    client: Any  # the critic role's ChatClient
    pack: Pack
    cycle: int
    progress: Callable[..., Any] | None = None  # progress(label, total=n) -> a bar's context

    @property
    def judges(self) -> bool:
        return self.pack.spec.critic.judge and "critic" in self.pack.templates

    @property
    def refines(self) -> bool:
        return self.pack.spec.critic.refine and "refine" in self.pack.templates

    def judge(self, candidates: list[Candidate], verdicts: list[Verdict], keys: list[str]) -> None:
        """Replace each verified verdict with the judge's (in place)."""
        todo = [i for i, v in enumerate(verdicts) if v.accepted]
        if not self.judges or not todo:
            return
        tags = [f"c{self.cycle}/judge/{keys[i]}" for i in todo]
        judged = judge_candidates(self.client, self.pack, [candidates[i] for i in todo], tags)
        for i, judgement in zip(todo, judged, strict=True):
            verdicts[i] = judge_verdict(judgement, verdicts[i])

    def vouch(
        self, candidates, verdicts: list[Verdict], keys: list[str], verifier, extract
    ) -> None:
        """Verify, by the pack's ``critic.verify``, each answer nothing else vouched for (in
        place)."""
        how = self.pack.spec.critic.unvouched
        todo = [i for i, v in enumerate(verdicts) if v.reason == "unverifiable"]
        if how is None or not todo:
            return
        tags = [f"c{self.cycle}/{how}/{keys[i]}" for i in todo]
        chosen = [candidates[i] for i in todo]
        verification = Verification(self.client, self.pack, verifier, extract)
        if self.progress is None:
            found = verification.run(chosen, tags)
        else:
            label = f"cycle {self.cycle}: verify {len(todo)} answers by {how}"
            with self.progress(label, total=verification.requests(len(todo))) as bar:
                found = dataclasses.replace(verification, advance=bar.advance).run(chosen, tags)
        for i, verdict in zip(todo, found, strict=True):
            verdicts[i] = verdict

    def form_only(self, verdict: Verdict) -> bool:
        return verdict.reason == "judge_form" or (
            verdict.step == "verify" and verdict.reason in self.pack.spec.critic.form_reasons
        )


def critique(
    candidates: list[Candidate],
    verifier: Verifier,
    solver: Solver | None,
    screen: Screen,
    extract: Callable[[str], str] | None = None,
    llm: CriticLLM | None = None,
    map_over: Callable[[Callable, list], list] | None = None,
    quotas: dict[tuple[str, str | None], int] | None = None,
    refill: bool = False,
) -> tuple[list[Candidate], list[Verdict]]:
    """Verdicts for every candidate, and for every rewrite refine made (appended after them).

    In order: verify, with an endpoint verify what nothing vouched for and judge, refine
    form-only failures (the rewrite is verified and judged again, never refined twice), then
    dedupe and decontaminate what is still accepted. ``map_over(fn, candidates)`` runs the
    verification (default: here, in order; :func:`~failforward.agents.workers.ray_map` spreads
    it over Ray workers); the screens run here, in order. With ``quotas``
    (:func:`~failforward.agents.generator.quotas`) a target keeps at most its quota of accepted
    candidates, the first in order; the rest are ``surplus``, never screened or trained on.
    With ``refill`` the quotas' total is what the batch keeps: what a target could not fill
    (its candidates failed or were screened out) is taken from the other targets' surplus, in
    proportion to their quotas (:func:`_refill`), so the budget buys accepted examples.
    """
    extract = extract or str.strip
    check = functools.partial(verify, verifier=verifier, solver=solver, extract=extract)
    verdicts = (map_over or _in_order)(check, list(candidates))
    if llm is not None:
        keys = [str(i) for i in range(len(candidates))]
        llm.vouch(candidates, verdicts, keys, verifier, extract)
        llm.judge(candidates, verdicts, keys)
    candidates = list(candidates)
    if llm is not None and llm.refines:
        candidates, verdicts = _refine(candidates, verdicts, verifier, solver, extract, llm)
    vectors = screen.vectors([c.question for c in candidates])
    kept: dict[tuple[str, str | None], int] = {}
    spare: dict[tuple[str, str | None], list[tuple[int, Verdict]]] = {}

    def screened(i: int) -> bool:
        """Dedupe and decontaminate candidate ``i``; True when it is kept."""
        vector = vectors[i] if vectors is not None else None
        question, answer = candidates[i].question, candidates[i].answer
        rejected = screen.duplicate(question, vector, answer) or screen.contaminated(
            question, vector, answer
        )
        if rejected:
            verdicts[i] = rejected.model_copy(update={"scores": verdicts[i].scores})
            return False
        screen.accept(question, vector, answer)
        return True

    for i, candidate in enumerate(candidates):
        if not verdicts[i].accepted:
            continue
        key = quota_key(candidate)
        if quotas is not None and kept.get(key, 0) >= quotas.get(key, 0):
            spare.setdefault(key, []).append((i, verdicts[i]))
            verdicts[i] = Verdict(
                accepted=False,
                reason="surplus",
                step="budget",
                detail="drawn past its target's budget, which earlier candidates already met",
                scores=verdicts[i].scores,
            )
            continue
        if screened(i):
            kept[key] = kept.get(key, 0) + 1
    if quotas is not None and refill:
        _refill(quotas, kept, spare, screened, verdicts)
    return candidates, verdicts


REFILLED = "filled the shortfall of "  # how a refilled candidate's verdict detail begins


def _refill(quotas, kept, spare, screened, verdicts) -> None:
    """Fill the quotas' shortfall from the surplus: each next candidate comes from the target
    (with surplus left) that has taken the least refill relative to its quota, so the moved
    budget follows the plan's own weights; a taken candidate is screened like any other and its
    verdict says which shortfall it filled."""
    short = {k: q - kept.get(k, 0) for k, q in quotas.items() if q > kept.get(k, 0)}
    if not short:
        return
    missing = sum(short.values())
    detail = REFILLED + ", ".join(
        f"{target}{'/' + skill if skill else ''} ({n})" for (target, skill), n in short.items()
    )
    taken = dict.fromkeys(spare, 0)
    while missing and spare:  # min keeps the first of equals: the targets' own order
        key = min(spare, key=lambda k: taken[k] / max(1, quotas.get(k, 0)))
        i, passed = spare[key].pop(0)
        if not spare[key]:
            del spare[key]
        if screened(i):
            verdicts[i] = passed.model_copy(
                update={"detail": (passed.detail + "; " if passed.detail else "") + detail}
            )
            taken[key] += 1
            missing -= 1


def quota_key(candidate: Candidate) -> tuple[str, str | None]:
    """What a candidate counts against: its target, and its skill in a multi-skill pack."""
    return candidate.lineage.target_id, candidate.metadata.get("skill")


def _in_order(fn: Callable, items: list) -> list:
    return [fn(x) for x in items]


def _refine(candidates, verdicts, verifier, solver, extract, llm: CriticLLM):
    """Rewrite form-only failures; the rewrites, verified and judged, join the batch."""
    todo = [i for i, v in enumerate(verdicts) if llm.form_only(v)]
    if not todo:
        return candidates, verdicts
    tags = [f"c{llm.cycle}/refine/{i}" for i in todo]
    pairs = [(candidates[i], verdicts[i]) for i in todo]
    rewrites = refine_candidates(llm.client, llm.pack, pairs, tags)
    added, keys = [], []
    for i, rewrite in zip(todo, rewrites, strict=True):
        note = "rewritten by refine" if rewrite else "refine's reply held no usable rewrite"
        verdicts[i] = verdicts[i].model_copy(update={"detail": f"{verdicts[i].detail}; {note}"})
        if rewrite is not None:
            added.append(rewrite)
            keys.append(f"r{i}")
    checked = [verify(c, verifier, solver, extract) for c in added]
    llm.vouch(added, checked, keys, verifier, extract)
    llm.judge(added, checked, keys)
    return [*candidates, *added], [*verdicts, *checked]
