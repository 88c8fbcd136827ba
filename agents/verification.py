"""Verifying an answer that no solver recomputes and no procedural source made.

Most domains have no program that recomputes an answer (support replies, SQL over a team's own
schema, extraction, classification), so the critic endpoint verifies a teacher's claimed answer
itself, in one of two ways chosen by the pack's ``critic.verify``:

- **consistency** (self-consistency): the critic answers the question ``samples`` times on its
  own (``solve.jinja``, sampled at ``sample_temperature``); the claimed answer is accepted when
  at least ``agreement`` of those answers match it under the pack's verifier, read through the
  pack's answer pattern as a student reply would be.
- **check**: the critic solves the question and must confirm the claimed answer in a verdict of
  its own (``check.jinja``), separate from the rubric judge's verdict on form; when its own
  answer disagrees with the claim, the claim is rejected whatever it says.

Each verdict records the strategy (``verified_by``) and the agreement (``scores["agreement"]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from failforward.agents.replies import json_object
from failforward.agents.tasks import Reply, Task, ask, raw
from failforward.tools.packs.pack import Pack, first_error
from failforward.tools.records import Candidate, Item, Verdict
from failforward.tools.verify.verifiers import Verifier


class CheckReply(BaseModel):
    """The critic's verdict on a claimed answer."""

    answer: str = ""  # its own final answer
    correct: bool
    reason: str = ""


CHECK_SHAPE = (
    'one JSON object: {"answer": "your own final answer", "correct": true or false, '
    '"reason": "..."}'
)


def parse_check(text: str) -> CheckReply:
    """The critic's check from its reply text.

    Raises:
        ValueError: no JSON object, or ``correct`` missing or not a boolean.

    Example:
        >>> parse_check('Solved: {"answer": "42", "correct": true, "reason": "ok"}').correct
        True
    """
    value = json_object(text)
    if "answer" in value and not isinstance(value["answer"], str):
        value["answer"] = str(value["answer"])
    try:
        return CheckReply.model_validate(value)
    except ValidationError as err:
        raise ValueError(first_error(err)) from err


@dataclass(frozen=True)
class Verification:
    """Verifying claimed answers with the critic endpoint, by the pack's ``critic.verify``."""

    client: Any  # the critic role's ChatClient
    pack: Pack
    verifier: Verifier
    extract: Callable[[str], str]  # the pack's answer extraction
    advance: Callable[[int], None] | None = None  # a progress bar's, counting requests

    def requests(self, candidates: int) -> int:
        """How many requests verifying ``candidates`` takes (before repairs)."""
        critic = self.pack.spec.critic
        return candidates * (critic.samples if critic.unvouched == "consistency" else 1)

    def run(self, candidates: list[Candidate], tags: list[str]) -> list[Verdict]:
        """A verdict per candidate (``tags`` key each candidate's calls)."""
        how = self.pack.spec.critic.unvouched
        if how == "consistency":
            return self.by_consistency(candidates, tags)
        if how == "check":
            return self.by_check(candidates, tags)
        raise ValueError(f"critic.verify {self.pack.spec.critic.verify!r} verifies nothing")

    def claim(self, candidate: Candidate) -> Item:
        """The claimed answer as a reference item, read through the answer pattern."""
        answer = self.extract(candidate.answer) or candidate.answer.strip()
        return Item(question=candidate.question, answer=answer, metadata=candidate.metadata)

    def agrees(self, answer: str, claim: Item) -> bool:
        return bool(answer) and self.verifier(answer, claim).score >= 1.0

    def by_consistency(self, candidates: list[Candidate], tags: list[str]) -> list[Verdict]:
        """Accept a claimed answer when enough of the critic's own answers agree with it; a
        sample the endpoint did not answer counts as disagreeing."""
        spec = self.pack.spec.critic
        task = Task("solve", parse=raw, tag="{key}", temperature=spec.sample_temperature)
        requests = [
            (f"{tag}/s{j}", {"question": c.question, "task": self.pack.spec.task})
            for c, tag in zip(candidates, tags, strict=True)
            for j in range(spec.samples)
        ]
        replies = ask(self.client, self.pack, task, requests, self.advance)
        k = spec.samples
        return [self._agreement(c, replies[i * k : (i + 1) * k]) for i, c in enumerate(candidates)]

    def _agreement(self, candidate: Candidate, replies: list[Reply[str]]) -> Verdict:
        answers = [self.extract(r.value) for r in replies if r.value is not None]
        if not answers:
            detail = f"the critic endpoint answered none of {len(replies)} requests"
            return Verdict(
                accepted=False, reason="consistency_unavailable", step="consistency", detail=detail
            )
        claim = self.claim(candidate)
        agree = sum(self.agrees(a, claim) for a in answers)
        share = agree / len(replies)
        said = ", ".join(f"{a or '(none)'!r} x{n}" for a, n in Counter(answers).most_common(3))
        detail = (
            f"{agree} of {len(replies)} independent answers agree with {claim.answer!r} ({said})"
        )
        scores = {"agreement": round(share, 4)}
        if share >= self.pack.spec.critic.agreement:
            return Verdict(
                accepted=True, reason="accepted", step="consistency", detail=detail,
                scores=scores, verified_by="consistency",
            )  # fmt: skip
        return Verdict(
            accepted=False, reason="inconsistent", step="consistency", detail=detail, scores=scores
        )

    def by_check(self, candidates: list[Candidate], tags: list[str]) -> list[Verdict]:
        """Accept a claimed answer the critic confirms and its own answer does not contradict."""
        spec = self.pack.spec.critic
        task = Task(
            "check", parse=parse_check, tag="{key}/{attempt}", repairs=spec.judge_retries,
            shape=CHECK_SHAPE,
        )  # fmt: skip
        requests = [
            (tag, {"question": c.question, "solution": c.solution, "answer": c.answer,
                   "task": self.pack.spec.task, "rubric": spec.rubric})
            for c, tag in zip(candidates, tags, strict=True)
        ]  # fmt: skip
        replies = ask(self.client, self.pack, task, requests, self.advance)
        return [self._checked(c, r) for c, r in zip(candidates, replies, strict=True)]

    def _checked(self, candidate: Candidate, reply: Reply[CheckReply]) -> Verdict:
        if reply.value is None:
            reason = "check_unparseable" if reply.answered else "check_unavailable"
            detail = f"after {reply.requests} request(s): {reply.error}"
            return Verdict(accepted=False, reason=reason, step="check", detail=detail)
        own = self.extract(reply.value.answer) if reply.value.answer else ""
        agrees = not own or self.agrees(own, self.claim(candidate))
        detail = f"own answer {own or '(none)'!r}; {reply.value.reason}"[:300]
        if reply.value.correct and agrees:
            return Verdict(
                accepted=True, reason="accepted", step="check", detail=detail,
                scores={"agreement": 1.0}, verified_by="check",
            )  # fmt: skip
        return Verdict(
            accepted=False, reason="check_rejected", step="check", detail=detail,
            scores={"agreement": 0.0},
        )  # fmt: skip
