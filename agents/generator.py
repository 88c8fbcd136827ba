"""The teacher: candidate examples for each plan target, procedurally or through an LLM.

Procedural candidates come from the pack's source with the target's knob overrides; LLM candidates
come from the pack's ``generator.jinja`` sent to the teacher endpoint, parsed from a JSON list.
Either way they are only candidates: the critic decides what the student learns from.
"""

from __future__ import annotations

import math
import re
import zlib

from pydantic import ValidationError

from failforward.agents.replies import json_value
from failforward.agents.tasks import Task, ask
from failforward.tools.packs.pack import Pack
from failforward.tools.packs.sources import MixtureSource
from failforward.tools.records import (
    Candidate,
    GenerationPlan,
    Lineage,
    PlanTarget,
    TeacherCandidate,
)


def teacher_mode(pack: Pack, has_endpoint: bool) -> str:
    """``llm`` or ``procedural``: the pack's wish, given whether a teacher endpoint exists."""
    mode = pack.spec.generator.mode
    if mode == "auto":
        return "llm" if has_endpoint else "procedural"
    if mode == "llm" and not has_endpoint:
        raise ValueError(
            f"pack {pack.name!r} asks for an LLM teacher (generator.mode: llm) but no teacher "
            "endpoint is set: pass --llm local or --llm <url>"
        )
    return mode


def target_seed(run_seed: int, target_id: str) -> int:
    """A stable seed per (run, target), so a re-run draws the same items."""
    return zlib.crc32(f"{run_seed}:{target_id}".encode())


def generate_procedural(
    source, plan: GenerationPlan, run_seed: int, overdraw: int = 1
) -> list[Candidate]:
    """``overdraw x target.budget`` source items per target, drawn with the target's knob
    overrides. The critic keeps at most :func:`quotas` of them, so with ``overdraw`` > 1 a
    target's budget buys accepted examples even where some draws are test look-alikes or
    repeats. The first ``budget`` draws of a target are the ones a draw of ``budget`` gives."""
    candidates = []
    for target in plan.targets:
        seed = target_seed(run_seed, target.target_id)
        lineage = Lineage(
            cycle=plan.cycle,
            target_id=target.target_id,
            source="procedural",
            cluster_id=target.cluster_id,
            seed=seed,
        )
        drawn = source.sample(overdraw * target.budget, seed=seed, overrides=target.source_config)
        for item in drawn:
            candidates.append(
                Candidate(
                    question=item.question,
                    solution=item.solution,
                    answer=item.answer,
                    metadata=item.metadata,
                    lineage=lineage,
                )
            )
    return candidates


def quotas(source, plan: GenerationPlan) -> dict[tuple[str, str | None], int]:
    """The most accepted examples each target may keep, by
    :func:`~failforward.agents.critic.quota_key`: its budget, split by the mixture's weights for
    a target over a multi-skill pack's whole mixture (the uniform plan), so uniform data keeps
    the mixture's shares.

    Example:
        >>> from failforward.tools.records import GenerationPlan, PlanTarget
        >>> from failforward.tools.packs.sources import ReasoningGymSource
        >>> mix = MixtureSource({"sum": ReasoningGymSource("chain_sum"),
        ...                      "prod": ReasoningGymSource("products")}, {"sum": 3, "prod": 1})
        >>> plan = GenerationPlan(cycle=1, mode="uniform", targets=[PlanTarget(
        ...     target_id="c1-u", name="uniform", description="", budget=8, kind="uniform")])
        >>> quotas(mix, plan)
        {('c1-u', 'sum'): 6, ('c1-u', 'prod'): 2}
    """
    out: dict[tuple[str, str | None], int] = {}
    for target in plan.targets:
        skill = target.source_config.get("skill")
        if skill is None and isinstance(source, MixtureSource):
            for name, count in source.counts(target.budget).items():
                out[(target.target_id, name)] = count
        else:
            out[(target.target_id, skill)] = target.budget
    return out


def _calls(pack: Pack, plan: GenerationPlan) -> list[tuple[PlanTarget, int, int]]:
    """``(target, call index, examples asked)`` per teacher request: ``generator.per_call`` each."""
    per_call = pack.spec.generator.per_call
    return [
        (target, call, min(per_call, target.budget - call * per_call))
        for target in plan.targets
        for call in range(math.ceil(target.budget / per_call))
    ]


def request_count(pack: Pack, plan: GenerationPlan) -> int:
    """How many teacher requests :func:`generate_llm` sends for ``plan``."""
    return len(_calls(pack, plan))


def generate_llm(client, pack: Pack, plan: GenerationPlan, advance=None) -> list[Candidate]:
    """Candidates written by the teacher endpoint, ``generator.per_call`` per request;
    ``advance(n)`` is called as requests finish."""
    calls = _calls(pack, plan)
    task = Task("generator", parse=parse_candidates, temperature=pack.spec.generator.temperature)
    requests = [
        (f"{target.target_id}/{call}", {"target": target, "n": n, "task": pack.spec.task})
        for target, call, n in calls
    ]
    replies = ask(client, pack, task, requests, advance)
    candidates = []
    for (target, _, n), reply in zip(calls, replies, strict=True):
        lineage = Lineage(
            cycle=plan.cycle,
            target_id=target.target_id,
            source="llm",
            cluster_id=target.cluster_id,
            endpoint_model=client.config.model,
        )
        # A teacher that writes more than asked does not get to spend more than the plan's budget.
        for parsed in (reply.value or [])[:n]:
            candidates.append(Candidate(**parsed.model_dump(), lineage=lineage))
    return candidates


def parse_candidates(text: str) -> list[TeacherCandidate]:
    """Every well-formed ``{question, solution, answer}`` object in a reply; the rest is dropped.

    Example:
        >>> parse_candidates('[{"question": "2 + 2 =", "answer": 4}]')[0].answer
        '4'
    """
    try:
        blobs = json_value(text, list)
    except ValueError:
        blobs = []
    if not blobs:  # salvage the flat objects of a broken list, one by one
        blobs = [_loads(m) for m in re.findall(r"\{[^{}]*\}", text)]
    out = []
    for blob in blobs:
        if not isinstance(blob, dict):
            continue
        blob = {k: str(v) for k, v in blob.items() if k in ("question", "solution", "answer")}
        try:
            candidate = TeacherCandidate.model_validate(blob)
        except ValidationError:
            continue
        if candidate.question.strip() and candidate.answer.strip():
            out.append(candidate)
    return out


def _loads(text: str) -> dict | None:
    try:
        return json_value(text, dict)
    except ValueError:
        return None
