"""The critic's LLM side: a rubric judge with bounded repair, and GDR-style refinement.

Both run only when the critic role has an endpoint. Building a prompt and parsing a reply are plain
functions (testable with no LLM); :func:`judge_candidates` and :func:`refine_candidates` send one
batch per round through the role's client, with tags, so a resumed run finds its replies in the
call cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from failforward.agents.generator import parse_candidates
from failforward.agents.replies import json_object
from failforward.tools.packs import Pack, first_error
from failforward.tools.records import Candidate, Verdict

MAX_ECHO = 1500  # characters of a bad reply quoted back in a repair prompt


class JudgeReply(BaseModel):
    """The structured verdict the judge must return."""

    model_config = ConfigDict(populate_by_name=True)

    scores: dict[str, float] = Field(description="Rubric item -> score from 1 (bad) to 5 (good).")
    passed: bool = Field(alias="pass")
    issue: Literal["none", "form", "content"] = Field(
        "none", description="form: only wording or answer format is wrong; content: the substance."
    )
    reason: str = ""


class JudgeError(ValueError):
    """A judge reply that cannot be used; the message says why (and goes into the repair prompt)."""


@dataclass
class Judgement:
    """What the judge said about one candidate after at most ``1 + judge_retries`` requests."""

    reply: JudgeReply | None = None
    error: str = ""  # why there is no reply
    requests: int = 0
    answered: bool = False  # the endpoint replied at least once (unparseable vs unavailable)


def _render(pack: Pack, role: str, candidate: Candidate, **extra) -> str:
    return pack.render(
        role,
        question=candidate.question,
        solution=candidate.solution,
        answer=candidate.answer,
        task=pack.spec.task,
        **extra,
    )


def judge_prompt(pack: Pack, candidate: Candidate) -> str:
    return _render(pack, "critic", candidate, rubric=pack.spec.critic.rubric)


def reply_example(rubric: dict[str, str]) -> str:
    scores = {name: 5 for name in rubric}
    return json.dumps({"scores": scores, "pass": True, "issue": "none", "reason": "..."})


def repair_prompt(prompt: str, reply: str, error: str, rubric: dict[str, str]) -> str:
    """Ask again, showing the model its unusable reply and what was wrong with it."""
    return (
        f"Your reply to the request below could not be used: {error}\n\n"
        f"Request:\n{prompt}\n\nYour reply:\n{reply[:MAX_ECHO]}\n\n"
        "Reply again with only one JSON object of this shape (issue is none, form or content):\n"
        f"{reply_example(rubric)}"
    )


def parse_judge(text: str, rubric: dict[str, str]) -> JudgeReply:
    """The judge's verdict from its reply text, with a score for every rubric item.

    Raises:
        JudgeError: no JSON object, invalid JSON, a field missing or of the wrong type, a rubric
            item without a score, or a score outside 1..5.

    Example:
        >>> parse_judge('{"scores": {"ok": 4}, "pass": true}', {"ok": "fine"}).passed
        True
    """
    try:
        value = json_object(text)
    except ValueError as err:
        raise JudgeError(str(err)) from err
    try:
        reply = JudgeReply.model_validate(value)
    except ValidationError as err:
        raise JudgeError(first_error(err)) from err
    missing = [name for name in rubric if name not in reply.scores]
    if missing:
        raise JudgeError(f"scores: no score for rubric item(s) {', '.join(missing)}")
    outside = [name for name in rubric if not 1 <= reply.scores[name] <= 5]
    if outside:
        raise JudgeError(f"scores: {', '.join(outside)} outside 1..5")
    return reply.model_copy(update={"scores": {name: reply.scores[name] for name in rubric}})


def judge_candidates(
    client, pack: Pack, candidates: list[Candidate], tags: list[str]
) -> list[Judgement]:
    """A rubric verdict per candidate; malformed replies get up to ``judge_retries`` repairs."""
    spec = pack.spec.critic
    prompts = [judge_prompt(pack, c) for c in candidates]
    judgements = [Judgement() for _ in candidates]
    asks = dict(enumerate(prompts))
    for attempt in range(spec.judge_retries + 1):
        if not asks:
            break
        order = list(asks)
        replies = client.complete(
            [asks[i] for i in order], temperature=0.0, tags=[f"{tags[i]}/{attempt}" for i in order]
        )
        repairs = {}
        for i, reply in zip(order, replies, strict=True):
            judgements[i].requests += 1
            if reply is None:  # the client already retried transport errors
                judgements[i].error = "the critic endpoint gave no reply"
                continue
            judgements[i].answered = True
            try:
                judgements[i].reply = parse_judge(reply, spec.rubric)
            except JudgeError as err:
                judgements[i].error = str(err)
                repairs[i] = repair_prompt(prompts[i], reply, str(err), spec.rubric)
        asks = repairs
    return judgements


def judge_verdict(judgement: Judgement, verified: Verdict) -> Verdict:
    """The candidate's verdict after the judge: still accepted, or rejected with the judge's
    reason. A judge can only reject what verification passed, never pass what it rejected."""
    reply = judgement.reply
    if reply is None:
        reason = "judge_unparseable" if judgement.answered else "judge_unavailable"
        detail = f"after {judgement.requests} request(s): {judgement.error}"
        return Verdict(
            accepted=False, reason=reason, step="judge", detail=detail, scores=verified.scores
        )
    scores = {**verified.scores, **{f"judge.{k}": v for k, v in reply.scores.items()}}
    if reply.passed:
        return verified.model_copy(update={"step": "judge", "scores": scores})
    reason = "judge_form" if reply.issue == "form" else "judge_rejected"
    return Verdict(
        accepted=False, reason=reason, step="judge", detail=reply.reason[:300], scores=scores
    )


def refine_prompt(pack: Pack, candidate: Candidate, problem: str) -> str:
    return _render(pack, "refine", candidate, problem=problem)


def refine_candidates(
    client, pack: Pack, rejected: list[tuple[Candidate, Verdict]], tags: list[str]
) -> list[Candidate | None]:
    """A rewrite per form-only failure (None where the reply holds no usable item).

    The rewrite keeps the original's plan target and cluster; its lineage has source ``refined``
    and records the original and why it was rejected.
    """
    prompts = [
        refine_prompt(pack, candidate, f"{verdict.reason}: {verdict.detail}".rstrip(": "))
        for candidate, verdict in rejected
    ]
    replies = client.complete(prompts, temperature=0.0, tags=tags)
    rewrites: list[Candidate | None] = []
    for (original, verdict), reply in zip(rejected, replies, strict=True):
        parsed = parse_candidates(reply or "")
        if not parsed:
            rewrites.append(None)
            continue
        lineage = original.lineage.model_copy(
            update={
                "source": "refined",
                "endpoint_model": client.config.model,
                "original": {
                    "question": original.question,
                    "solution": original.solution,
                    "answer": original.answer,
                    "source": original.lineage.source,
                    "reason": verdict.reason,
                    "detail": verdict.detail,
                },
            }
        )
        rewrites.append(
            Candidate(**parsed[0].model_dump(), metadata=original.metadata, lineage=lineage)
        )
    return rewrites
