"""Planning: split a cycle's example budget over failure clusters by expected learning gain.

A pilot with SmolLM2 on chain sums found that aiming all data at what the student fails outright
taught nothing, while aiming at the partly solved frontier did best: the student learns where it
is sometimes right. :func:`learning_gain` encodes that as a small rule; :func:`plan_targeted`
applies it, turns hopeless clusters into stepping stones (the same skill one notch easier on the
failing knob), and keeps a floor of uniform exploration so new failure modes can surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from agents.analyst import cell_accuracy
from agents.schemas import FailureCluster, GenerationPlan, Item, PlanTarget
from tools.packs import Pack


@dataclass
class PlanRule:
    """How the budget is weighted over clusters. Every field has a default and help text."""

    weighting: Literal["gain", "mass"] = field(
        default="gain",
        metadata={"help": "gain: learning-gain rule; mass: proportional to failures (baseline)."},
    )
    explore: float = field(
        default=0.1, metadata={"help": "Share of the budget always spent uniformly (exploration)."}
    )
    ready_at: float = field(
        default=0.5, metadata={"help": "Near-item accuracy at which a cluster counts as ready."}
    )
    hopeless_below: float = field(
        default=0.05,
        metadata={
            "help": "Near-item accuracy below which a cluster gets stepping "
            "stones (one notch easier) instead of its own items."
        },
    )
    hopeless_weight: float = field(
        default=0.1, metadata={"help": "Weight per failure of a cluster with no near success."}
    )
    shrink_bonus: float = field(
        default=1.25, metadata={"help": "Weight factor for a cluster that shrank last cycle."}
    )
    flat_after: int = field(
        default=2, metadata={"help": "Targeted cycles without shrinking before the share is cut."}
    )
    flat_decay: float = field(
        default=0.5, metadata={"help": "Share factor per flat cycle beyond flat_after - 1."}
    )

    def __post_init__(self) -> None:
        if self.weighting not in ("gain", "mass"):
            raise ValueError(f"weighting: {self.weighting!r} is not gain or mass")
        if not 0 <= self.explore < 1:
            raise ValueError(f"explore: {self.explore} is not in [0, 1)")
        for name in ("ready_at", "flat_decay", "hopeless_weight"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}: {getattr(self, name)} is not in (0, 1]")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def learning_gain(cluster: FailureCluster, rule: PlanRule) -> float:
    """A cluster's weight: its failures, scaled by how close the student is to learning it.

    ``readiness = min(1, success / ready_at)`` where ``success`` is the student's accuracy on
    probe items near the cluster; weight per failure goes linearly from ``hopeless_weight`` (never
    right nearby) to 1 (right at least ``ready_at`` of the time). A cluster that shrank since last
    cycle gets ``shrink_bonus`` (keep it until solved); one targeted for ``flat_after`` cycles or
    more without shrinking is cut by ``flat_decay`` per such cycle from then on.

    Example:
        >>> rule = PlanRule()
        >>> learning_gain(FailureCluster(cluster_id=0, name="a", size=10, success=0.25), rule)
        5.5
    """
    if rule.weighting == "mass":
        return float(cluster.size)
    success = 0.0 if cluster.success is None else cluster.success
    readiness = min(1.0, success / rule.ready_at)
    weight = cluster.size * (rule.hopeless_weight + (1 - rule.hopeless_weight) * readiness)
    if cluster.status == "shrank":
        weight *= rule.shrink_bonus
    if cluster.flat_cycles >= rule.flat_after:
        weight *= rule.flat_decay ** (cluster.flat_cycles - rule.flat_after + 1)
    return weight


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
    clusters: list[FailureCluster],
    pack: Pack,
    budget: int,
    cycle: int,
    rule: PlanRule | None = None,
    probe: list[tuple[Item, float]] | None = None,
) -> GenerationPlan:
    """The cycle's plan: an exploration share, the rest over clusters by :func:`learning_gain`.

    ``probe`` (items with the student's scores) lets a stepping stone pick the knob whose one
    notch down the student handles best.
    """
    rule = rule or PlanRule()
    targeted = [c for c in clusters if not c.outlier]
    failures = sum(c.size for c in clusters) or 1
    explore = round(budget * rule.explore) if targeted else budget
    weights = [learning_gain(c, rule) for c in targeted]
    shares = allocate(weights, budget - explore)
    targets = []
    for cluster, weight, share in zip(targeted, weights, shares, strict=True):
        if share == 0:
            continue
        stone = rule.weighting == "gain" and (cluster.success or 0.0) < rule.hopeless_below
        overrides = stepping_stone(cluster, pack, probe or []) if stone else None
        targets.append(
            PlanTarget(
                target_id=f"c{cycle}-k{cluster.cluster_id}",
                name=f"{cluster.name} (one notch easier)"
                if overrides is not None
                else cluster.name,
                description=cluster.description or f"{cluster.size} failures",
                budget=share,
                exemplars=cluster.exemplars,
                source_config=source_overrides(cluster.knobs, pack)
                if overrides is None
                else overrides,
                cluster_id=cluster.cluster_id,
                kind="stepping_stone" if overrides is not None else "cluster",
                cluster_size=cluster.size,
                error_share=cluster.size / failures,
                weight=round(weight, 4),
            )
        )
    if explore:
        targets.append(
            PlanTarget(
                target_id=f"c{cycle}-explore",
                name="explore (uniform)",
                description=pack.spec.task,
                budget=explore,
                kind="explore",
            )
        )
    return GenerationPlan(cycle=cycle, mode="targeted", targets=targets)


def plan_uniform(pack: Pack, budget: int, cycle: int) -> GenerationPlan:
    """The baseline: the whole budget spread over the eval source's own distribution."""
    target = PlanTarget(
        target_id=f"c{cycle}-uniform",
        name="uniform",
        description=pack.spec.task,
        budget=budget,
        kind="uniform",
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


def stepping_stone(
    cluster: FailureCluster, pack: Pack, probe: list[tuple[Item, float]]
) -> dict[str, int] | None:
    """The cluster's knob cell with one knob a notch easier: the knob whose lower value the
    student gets right most often on the probe set (pack order breaks ties). None when no knob
    can go lower (the cluster's own items are used then)."""
    modes = dict(cluster.knob_modes)
    options = []
    for order, (knob, spec) in enumerate(pack.spec.knobs.items()):
        if knob not in modes or modes[knob] - 1 < spec.floor:
            continue
        easier = {**modes, knob: modes[knob] - 1}
        options.append((-(cell_accuracy(probe, easier) or 0.0), order, easier))
    if not options:
        return None
    easier = min(options)[2]
    return source_overrides({k: (v, v) for k, v in easier.items()}, pack)
