"""The critic's LLM side: a rubric judge with bounded repair, and GDR-style refinement.

Both run only when the critic role has an endpoint. Each is a
:class:`~failforward.agents.tasks.Task` (template, parser, tag) sent through
:func:`~failforward.agents.tasks.ask`; the parsers are plain functions, testable with no LLM.
"""

from __future__ import annotations

import functools
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from failforward.agents import tasks
from failforward.agents.generator import parse_candidates
from failforward.agents.replies import json_object
from failforward.agents.tasks import Reply, Task, ask
from failforward.tools.packs.pack import Pack, first_error
from failforward.tools.records import Candidate, TeacherCandidate, Verdict


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


def candidate_variables(pack: Pack, candidate: Candidate, **extra) -> dict:
    """The template variables of a request about one candidate."""
    fields = {"question": candidate.question, "solution": candidate.solution}
    return {**fields, "answer": candidate.answer, "task": pack.spec.task, **extra}


def reply_example(rubric: dict[str, str]) -> str:
    scores = {name: 5 for name in rubric}
    return json.dumps({"scores": scores, "pass": True, "issue": "none", "reason": "..."})


def reply_shape(rubric: dict[str, str]) -> str:
    """What a repaired judge reply must look like."""
    return (
        f"one JSON object of this shape (issue is none, form or content):\n{reply_example(rubric)}"
    )


def repair_prompt(prompt: str, reply: str, error: str, rubric: dict[str, str]) -> str:
    """Ask again, showing the model its unusable reply and what was wrong with it."""
    return tasks.repair_prompt(prompt, reply, error, reply_shape(rubric))


def judge_task(pack: Pack) -> Task[JudgeReply]:
    """The rubric judge: a verdict per candidate, up to ``judge_retries`` repairs each; tagged
    with the candidate's key and the attempt."""
    spec = pack.spec.critic
    return Task(
        "critic",
        parse=functools.partial(parse_judge, rubric=spec.rubric),
        tag="{key}/{attempt}",
        repairs=spec.judge_retries,
        shape=reply_shape(spec.rubric),
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
) -> list[Reply[JudgeReply]]:
    """A rubric verdict per candidate; malformed replies get up to ``judge_retries`` repairs."""
    rubric = pack.spec.critic.rubric
    requests = [
        (tag, candidate_variables(pack, c, rubric=rubric))
        for c, tag in zip(candidates, tags, strict=True)
    ]
    return ask(client, pack, judge_task(pack), requests)


def judge_verdict(judgement: Reply[JudgeReply], verified: Verdict) -> Verdict:
    """The candidate's verdict after the judge: still accepted, or rejected with the judge's
    reason. A judge can only reject what verification passed, never pass what it rejected."""
    reply = judgement.value
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


def parse_rewrite(text: str) -> TeacherCandidate:
    """The first usable item in refine's reply."""
    parsed = parse_candidates(text)
    if not parsed:
        raise ValueError("no usable {question, solution, answer} object in the reply")
    return parsed[0]


REFINE = Task("refine", parse=parse_rewrite)


def _problem(verdict: Verdict) -> str:
    return f"{verdict.reason}: {verdict.detail}".rstrip(": ")


def refine_candidates(
    client, pack: Pack, rejected: list[tuple[Candidate, Verdict]], tags: list[str]
) -> list[Candidate | None]:
    """A rewrite per form-only failure (None where the reply holds no usable item).

    The rewrite keeps the original's plan target and cluster; its lineage has source ``refined``
    and records the original and why it was rejected.
    """
    requests = [
        (tag, candidate_variables(pack, candidate, problem=_problem(verdict)))
        for (candidate, verdict), tag in zip(rejected, tags, strict=True)
    ]
    replies = [reply.value for reply in ask(client, pack, REFINE, requests)]
    rewrites: list[Candidate | None] = []
    for (original, verdict), parsed in zip(rejected, replies, strict=True):
        if parsed is None:
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
            Candidate(**parsed.model_dump(), metadata=original.metadata, lineage=lineage)
        )
    return rewrites
