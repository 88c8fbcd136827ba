"""The failure analyst: embed the student's failures, cluster them, name them, plan the data.

The skeleton plan gives each cluster a share of the budget proportional to its failures and asks
the procedural teacher for the knob ranges seen in that cluster.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable

import numpy as np

from agents.schemas import Failure, FailureCluster, GenerationPlan, PlanTarget
from tools.embeddings import Embedder
from tools.packs import Pack
from tools.verifiers import parse_number

Clusterer = Callable[[np.ndarray, int, int], np.ndarray]


def failure_features(failure: Failure) -> list[str]:
    """Words describing how the answer was wrong, not just what the question was about."""
    if not failure.extracted:
        return ["no answer"]
    got, want = parse_number(failure.extracted), parse_number(failure.expected)
    if got is None or want is None:
        return ["wrong answer"]
    if got == -want and want != 0:
        return ["sign error"]
    if abs(got - want) <= 10:
        return ["near miss"]
    return ["far off"]


def failure_text(failure: Failure) -> str:
    """The text that is embedded: question, expected answer, what the student said, features."""
    said = failure.extracted or failure.output[:60] or "(empty)"
    return (
        f"{failure.question}\nexpected {failure.expected}; student said {said}; "
        f"{', '.join(failure_features(failure))}"
    )


def cluster_failures(
    failures: list[Failure],
    pack: Pack,
    embedder: Embedder,
    clusterer: Clusterer,
    k: int,
    seed: int = 0,
) -> tuple[list[FailureCluster], list[int]]:
    """Clusters of similar failures (largest first) and each failure's cluster id."""
    if not failures:
        return [], []
    vectors = embedder([failure_text(f) for f in failures])
    labels = [int(x) for x in clusterer(vectors, k, seed)]
    clusters = []
    for cluster_id in sorted(set(labels)):
        members = [f for f, label in zip(failures, labels, strict=True) if label == cluster_id]
        clusters.append(
            FailureCluster(
                cluster_id=cluster_id,
                name=name_from_metadata(members, list(pack.spec.knobs)),
                size=len(members),
                exemplars=[m.question for m in members[:3]],
                knobs=knob_ranges(members, list(pack.spec.knobs)),
            )
        )
    return _distinct_names(clusters), labels


def _distinct_names(clusters: list[FailureCluster]) -> list[FailureCluster]:
    """Suffix repeated names (``"... (2)"``) so plans and reports can tell clusters apart."""
    seen: Counter[str] = Counter()
    out = []
    for cluster in clusters:
        seen[cluster.name] += 1
        if seen[cluster.name] > 1:
            cluster = cluster.model_copy(update={"name": f"{cluster.name} ({seen[cluster.name]})"})
        out.append(cluster)
    return out


def knob_ranges(members: list[Failure], knobs: list[str]) -> dict[str, tuple[int, int]]:
    ranges = {}
    for knob in knobs:
        values = [int(m.metadata[knob]) for m in members if isinstance(m.metadata.get(knob), int)]
        if values:
            ranges[knob] = (min(values), max(values))
    return ranges


def name_from_metadata(members: list[Failure], knobs: list[str]) -> str:
    """A readable name from the most common knob values and failure features.

    Example: ``"num_terms=3, num_digits=2: near miss"``.
    """
    parts = []
    for knob in knobs:
        values = Counter(m.metadata.get(knob) for m in members if knob in m.metadata)
        if values:
            value, _ = values.most_common(1)[0]
            parts.append(f"{knob}={value}")
    feature, _ = Counter(f for m in members for f in failure_features(m)).most_common(1)[0]
    return f"{', '.join(parts)}: {feature}" if parts else feature


def name_with_llm(
    client,
    pack: Pack,
    clusters: list[FailureCluster],
    failures: list[Failure],
    labels: list[int],
    cycle: int,
) -> list[FailureCluster]:
    """Clusters renamed by the analyst endpoint; a reply that does not parse keeps the old name."""
    if "analyst" not in pack.templates:
        return clusters
    prompts = []
    for cluster in clusters:
        members = [f for f, lab in zip(failures, labels, strict=True) if lab == cluster.cluster_id]
        prompts.append(
            pack.render("analyst", cluster=cluster, failures=members[:6], task=pack.spec.task)
        )
    tags = [f"c{cycle}-k{c.cluster_id}" for c in clusters]
    replies = client.complete(prompts, temperature=0.0, tags=tags)
    renamed = []
    for cluster, reply in zip(clusters, replies, strict=True):
        parsed = parse_json_object(reply or "")
        name = str(parsed.get("name", "")).strip()[:80] if parsed else ""
        renamed.append(cluster.model_copy(update={"name": name}) if name else cluster)
    return _distinct_names(renamed)


def parse_json_object(text: str) -> dict | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def allocate(weights: list[float], budget: int) -> list[int]:
    """Split ``budget`` in proportion to ``weights`` (largest remainder; sums to ``budget``).

    Example:
        >>> allocate([5, 3, 2], 7)
        [4, 2, 1]
    """
    total = sum(weights)
    if total <= 0 or budget <= 0:
        return [0] * len(weights)
    exact = [budget * w / total for w in weights]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: budget - sum(shares)]:
        shares[i] += 1
    return shares


def plan_targeted(
    clusters: list[FailureCluster], pack: Pack, budget: int, cycle: int
) -> GenerationPlan:
    """Budget per cluster in proportion to its failures, with the knob ranges that reproduce it."""
    shares = allocate([c.size for c in clusters], budget)
    targets = [
        PlanTarget(
            target_id=f"c{cycle}-k{c.cluster_id}",
            name=c.name,
            description=f"{c.size} failures like: {c.exemplars[0] if c.exemplars else ''}",
            budget=share,
            exemplars=c.exemplars,
            source_config=source_overrides(c.knobs, pack),
            cluster_id=c.cluster_id,
        )
        for c, share in zip(clusters, shares, strict=True)
        if share > 0
    ]
    return GenerationPlan(cycle=cycle, mode="targeted", targets=targets)


def plan_uniform(pack: Pack, budget: int, cycle: int) -> GenerationPlan:
    """The baseline: the whole budget spread over the eval source's own distribution."""
    target = PlanTarget(
        target_id=f"c{cycle}-uniform", name="uniform", description=pack.spec.task, budget=budget
    )
    return GenerationPlan(cycle=cycle, mode="uniform", targets=[target])


def source_overrides(knobs: dict[str, tuple[int, int]], pack: Pack) -> dict[str, int]:
    """Source config (e.g. ``min_terms``/``max_terms``) reproducing a cluster's knob ranges."""
    overrides = {}
    for knob, (low, high) in knobs.items():
        spec = pack.spec.knobs.get(knob)
        if spec is None:
            continue
        low = max(spec.floor, min(low, spec.ceiling))
        high = max(low, min(high, spec.ceiling))
        overrides[spec.min_param], overrides[spec.max_param] = low, high
    return overrides
