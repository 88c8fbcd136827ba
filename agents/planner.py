"""Planning: split a cycle's example budget over failure clusters by expected learning gain.

A pilot with SmolLM2 on chain sums found that aiming all data at what the student fails outright
taught nothing, while aiming at the partly solved frontier did best: the student learns where it
is sometimes right. :func:`learning_gain` encodes that as a small rule; :func:`plan_targeted`
applies it, turns hopeless clusters into stepping stones (the same skill one notch easier on the
failing knob), and keeps a floor of uniform exploration so new failure modes can surface.

The ``progress`` weighting adds what the data bought: each skill's (or, in a pack without
skills, each cell's) probe gain per example the last time it was trained
(:func:`learning_progress`, the learning-progress signal of teacher-student curriculum learning)
scales the gain rule's weights, so budget moves toward what has been learning and away from
what took examples and did not move.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from failforward.agents.analyst import cell_accuracy
from failforward.tools.options import OptionError, check_choices, option
from failforward.tools.packs.capacity import Capacity
from failforward.tools.packs.pack import Pack
from failforward.tools.packs.sources import allocate
from failforward.tools.records import FailureCluster, GenerationPlan, Item, PlanTarget


@dataclass
class PlanRule:
    """How the budget is spent: on the analyst's clusters (weighted so) or uniformly. Every field
    has a default and help text."""

    mode: Literal["targeted", "uniform", "oracle"] = option(
        "targeted",
        "targeted (the analyst's plan), uniform (the baseline) or oracle (the "
        "positive control: the budget by the pack's pilot learnability table, "
        "learnability.yaml, which no plan sees).",
    )
    weighting: Literal["gain", "mass", "progress", "learnability"] = option(
        "gain",
        "gain: learning-gain rule; mass: proportional to failures (baseline); "
        "progress: the gain rule scaled by each skill's probe gain per example the last "
        "time it was trained; learnability: each cell by p(1-p) of its shrunk probe "
        "success p, mastered cells a replay share, cells near 0 their easier cell.",
    )
    explore: float = option(0.1, "Share of the budget always spent uniformly (exploration).")
    ready_at: float = option(0.5, "Near-item accuracy at which a cluster counts as ready.")
    hopeless_below: float = option(
        0.05,
        "Near-item accuracy below which a cluster gets stepping "
        "stones (one notch easier) instead of its own items.",
    )
    hopeless_weight: float = option(0.1, "Weight per failure of a cluster with no near success.")
    shrink_bonus: float = option(1.25, "Weight factor for a cluster that shrank last cycle.")
    flat_after: int = option(2, "Targeted cycles without shrinking before the share is cut.")
    flat_decay: float = option(0.5, "Share factor per flat cycle beyond flat_after - 1.")
    mastered_at: float = option(
        0.8, "learnability: probe success from which a cell counts as mastered."
    )
    replay: float = option(0.1, "learnability: share of the budget replayed on mastered cells.")
    prior: float = option(
        4.0,
        "learnability: pseudo-items that shrink a cell's success toward its "
        "skill's (and a skill's toward the whole probe set's).",
    )
    samples: int = option(
        1,
        "learnability: replies sampled per probe item to estimate each cell's "
        "success (1: the greedy evaluation's answers, no extra sampling).",
    )
    temperature: float = option(0.7, "learnability: the sampling temperature (--plan-samples > 1).")
    capacity: bool = option(
        True,
        "Cap each cell's share at what it can still give (new items, estimated by "
        "drawing from it) and move the rest to the next targets.",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        checks = [
            ("explore", 0 <= self.explore < 1, "in [0, 1)"),
            ("ready_at", 0 < self.ready_at <= 1, "in (0, 1]"),
            ("hopeless_below", self.hopeless_below >= 0, ">= 0"),
            ("hopeless_weight", 0 < self.hopeless_weight <= 1, "in (0, 1]"),
            ("shrink_bonus", self.shrink_bonus > 0, "> 0"),
            ("flat_after", self.flat_after >= 1, ">= 1"),
            ("flat_decay", 0 < self.flat_decay <= 1, "in (0, 1]"),
            ("mastered_at", 0 < self.mastered_at <= 1, "in (0, 1]"),
            ("replay", 0 <= self.replay < 1, "in [0, 1)"),
            ("prior", self.prior >= 0, ">= 0"),
            ("samples", self.samples >= 1, ">= 1"),
            ("temperature", self.temperature > 0, "> 0"),
        ]
        for name, ok, wanted in checks:
            if not ok:
                problem = f"{getattr(self, name)!r} is not {wanted}"
                raise OptionError(name, f"{name}: {problem}", problem)
        if self.weighting == "learnability" and self.explore + self.replay >= 1:
            problem = f"explore {self.explore} + replay {self.replay} leave no budget to aim"
            raise OptionError("replay", f"replay: {problem}", problem)


def learning_gain(
    cluster: FailureCluster,
    rule: PlanRule,
    failures: int | None = None,
    success: float | None = None,
) -> float:
    """A cluster's weight: its failures, scaled by how close the student is to learning it.

    ``readiness = min(1, success / ready_at)`` where ``success`` is the student's accuracy on
    probe items near the cluster; weight per failure goes linearly from ``hopeless_weight`` (never
    right nearby) to 1 (right at least ``ready_at`` of the time). A cluster that shrank since last
    cycle gets ``shrink_bonus`` (keep it until solved); one targeted for ``flat_after`` cycles or
    more without shrinking is cut by ``flat_decay`` per such cycle from then on. ``failures`` and
    ``success`` weigh one knob cell of the cluster instead of the whole of it.

    Example:
        >>> rule = PlanRule()
        >>> learning_gain(FailureCluster(cluster_id=0, name="a", size=10, success=0.25), rule)
        5.5
    """
    failures = cluster.size if failures is None else failures
    if rule.weighting == "mass":
        return float(failures)
    if success is None:
        success = 0.0 if cluster.success is None else cluster.success
    readiness = min(1.0, success / rule.ready_at)
    weight = failures * (rule.hopeless_weight + (1 - rule.hopeless_weight) * readiness)
    if cluster.status == "shrank":
        weight *= rule.shrink_bonus
    if cluster.flat_cycles >= rule.flat_after:
        weight *= rule.flat_decay ** (cluster.flat_cycles - rule.flat_after + 1)
    return weight


@dataclass
class _Unit:
    """Part of a cluster's failures that one plan target serves: a knob cell (or the whole
    cluster when the pack has no knobs) and the cell the data is drawn from."""

    cluster: FailureCluster
    failures: int
    weight: float
    cell: dict[str, int | str]  # drawn from; {} with no knobs (and no skills)
    stone: bool


def plan_targeted(
    clusters: list[FailureCluster],
    pack: Pack,
    budget: int,
    cycle: int,
    rule: PlanRule | None = None,
    probe: list[tuple[Item, float]] | None = None,
    yields: dict[str, float] | None = None,
    capacity: Capacity | None = None,
    progress: dict[str, float] | None = None,
) -> GenerationPlan:
    """The cycle's plan: an exploration share, the rest over the clusters' knob cells.

    A cluster's failures are split by knob cell (3 terms of 2 digits, ...) and each cell is
    weighted by :func:`learning_gain` with the student's probe accuracy *in that cell*, so the
    data is drawn where the failures are and the student is close to right, not over the
    cluster's whole knob range (which for a failure mode such as "off by a carry" spans the eval
    distribution and makes the plan uniform in disguise). A hopeless cell gets stepping stones
    (:func:`stepping_stone_cell`). ``yields`` (:func:`cell_yields`: the share of a cell's
    candidates the critic accepted last time) scales each cell's weight, so budget moves out of
    cells that are used up (every item there already seen, or in the test set). ``capacity``
    (:func:`tools.packs.capacity.capacity_of`: how many new items a cell can still give) caps each
    target's share before anything is drawn, in the first cycle as in later ones; what a cell
    cannot absorb goes to the other targets by weight (:func:`capped_allocate`). Whatever no
    cell takes goes to exploration. With the ``progress`` weighting, ``progress``
    (:func:`learning_progress`) scales each unit's weight by :func:`progress_factors`.
    """
    rule = rule or PlanRule()
    yields = yields or {}
    targeted = [c for c in clusters if not c.outlier]
    failures = sum(c.size for c in clusters) or 1
    units = [u for c in targeted for u in _units(c, pack, rule, probe or [], yields)]
    if rule.weighting == "progress" and progress:
        factors = progress_factors([progress_key(u.cell) for u in units], progress)
        for unit, factor in zip(units, factors, strict=True):
            unit.weight *= factor
    weights = [u.weight for u in units]
    explore = round(budget * rule.explore) if units and sum(weights) > 0 else budget
    caps: list[int | None] = [None] * len(units)
    if capacity is not None and rule.capacity and units:
        caps = [capacity(_overrides(u, pack), budget - explore) for u in units]
        shares = capped_allocate(weights, budget - explore, caps)
    else:
        shares = allocate(weights, budget - explore)
    explore = budget - sum(shares)
    targets = [
        _target(unit, share, pack, cycle, failures, cap)
        for unit, share, cap in zip(units, shares, caps, strict=True)
        if share > 0
    ]
    if explore:
        targets.append(explore_target(pack, cycle, explore))
    return GenerationPlan(cycle=cycle, mode="targeted", targets=targets)


def explore_target(pack: Pack, cycle: int, budget: int) -> PlanTarget:
    """The exploration share: ``budget`` examples drawn from the pack's own mix."""
    return PlanTarget(
        target_id=f"c{cycle}-explore",
        name="explore (uniform)",
        description=pack.spec.task,
        budget=budget,
        kind="explore",
    )


def capped_allocate(weights: list[float], budget: int, caps: list[int | None]) -> list[int]:
    """:func:`allocate`, with no share above its cap (None: no cap): a capped share is fixed at
    its cap and the rest of the budget is split again over the others, until none is over. What
    no share can take is left over (the sum may be below ``budget``).

    Example:
        >>> capped_allocate([5, 3, 2], 10, [1, None, None])
        [1, 5, 4]
    """
    fixed: dict[int, int] = {}
    while True:
        free = [i for i in range(len(weights)) if i not in fixed]
        left = budget - sum(fixed.values())
        shares = dict(zip(free, allocate([weights[i] for i in free], left), strict=True))
        over = [i for i in free if caps[i] is not None and shares[i] > caps[i]]
        if not over:
            return [fixed.get(i, shares.get(i, 0)) for i in range(len(weights))]
        fixed |= {i: int(caps[i]) for i in over}


def _overrides(unit: _Unit, pack: Pack) -> dict:
    """The source config a unit's target draws with."""
    if unit.cell:
        return cell_overrides(unit.cell, pack)
    return source_overrides(unit.cluster.knobs, pack)


def _target(
    unit, share: int, pack: Pack, cycle: int, failures: int, capacity: int | None = None
) -> PlanTarget:
    """The plan target for a weighted unit (a cluster's knob cell, or the whole cluster)."""
    cluster = unit.cluster
    name = f"{cluster.name} [{cell_key(unit.cell, ', ')}]" if cluster.cells else cluster.name
    cell_id = f"/{cell_key(unit.cell)}" if cluster.cells else ""
    overrides = _overrides(unit, pack)
    description = cluster.description or f"{cluster.size} failures"
    if "skill" in unit.cell:
        description = f"{pack.task_for(str(unit.cell['skill']))}; {description}"
    return PlanTarget(
        target_id=f"c{cycle}-k{cluster.cluster_id}{cell_id}",
        name=f"{name} (one notch easier)" if unit.stone else name,
        description=description,
        budget=share,
        exemplars=cluster.exemplars,
        source_config=overrides,
        cell=unit.cell,
        cluster_id=cluster.cluster_id,
        kind="stepping_stone" if unit.stone else "cluster",
        cluster_size=unit.failures,
        error_share=unit.failures / failures,
        weight=round(unit.weight, 4),
        capacity=capacity,
    )


def _units(
    cluster: FailureCluster,
    pack: Pack,
    rule: PlanRule,
    probe: list[tuple[Item, float]],
    yields: dict[str, float],
) -> list[_Unit]:
    """The cluster's cells with their weights; cells drawn from the same place are merged."""
    if not cluster.cells:  # no knobs: the cluster is one unit
        success = cluster.success or 0.0
        stone = rule.weighting != "mass" and success < rule.hopeless_below
        easier = stepping_stone_cell(cluster.knob_modes, pack, probe) if stone else None
        weight = learning_gain(cluster, rule)
        return [_Unit(cluster, cluster.size, weight, easier or {}, easier is not None)]
    merged: dict[tuple, _Unit] = {}
    for cell in cluster.cells:
        success = cell_accuracy(probe, cell.knobs)
        if success is None:
            success = cluster.success
        weight = learning_gain(cluster, rule, cell.failures, success)
        easier = None
        if rule.weighting != "mass" and (success or 0.0) < rule.hopeless_below:
            easier = stepping_stone_cell(cell.knobs, pack, probe)
        drawn = easier or cell.knobs
        weight *= yields.get(cell_key(drawn), 1.0)
        key = tuple(drawn.items())
        if key in merged:  # one target per cell drawn; a stone there joins the cell's own
            merged[key].failures += cell.failures
            merged[key].weight += weight
            merged[key].stone = merged[key].stone and easier is not None
        else:
            merged[key] = _Unit(cluster, cell.failures, weight, dict(drawn), easier is not None)
    return list(merged.values())


def progress_key(cell: dict[str, int | str] | None) -> str:
    """What learning progress is measured over: a cell's skill in a multi-skill pack (a skill's
    probe items are enough to see a gain; a knob cell's few are not), else the cell itself
    (``""``: a pack with neither skills nor knobs, measured as a whole).

    Example:
        >>> progress_key({"skill": "lcm", "max": 20}), progress_key({"n": 2}), progress_key(None)
        ('lcm', 'n=2', '')
    """
    if not cell:
        return ""
    return str(cell["skill"]) if "skill" in cell else cell_key(cell)


def learning_progress(
    examples: list[dict],
    probes: dict[int, list[tuple[Item, float]]],
    started_from: dict[int, int],
    cell_of: Callable[[dict], dict | None],
    pseudo: float = 10.0,
) -> dict[str, float]:
    """Per :func:`progress_key`, the probe items the student gained there per example, the last
    cycle that trained on it: ``max(0, right after - right before) / (examples + pseudo)``.

    ``examples`` are stored rows (``cycle``, ``accepted``, ``metadata``); ``probes[c]`` the probe
    attempts of cycle ``c``'s evaluation; ``started_from[c]`` the cycle whose student cycle ``c``
    trained (the kept one: after a rollback, an earlier one). "After" is the trained student's
    own evaluation even when the guard rolled it back: that is what the data bought. ``pseudo``
    examples shrink a gain seen on few examples toward none (one item gained on one example is
    noise, not 50 points per example). A drop counts as no gain: forgetting elsewhere is the
    guard's business, and a skill that took examples and fell is not where the next ones pay.

    Example:
        >>> item = lambda s: Item(question=s, answer="1", metadata={"skill": s})
        >>> probes = {0: [(item("a"), 0.0), (item("b"), 0.0)],
        ...           1: [(item("a"), 1.0), (item("b"), 0.0)]}
        >>> rows = [{"cycle": 1, "accepted": 1, "metadata": {"skill": k}} for k in "aab"]
        >>> learning_progress(rows, probes, {1: 0}, lambda m: {"skill": m["skill"]})
        {'a': 0.0833, 'b': 0.0}
    """
    trained: dict[int, dict[str, int]] = {}
    for row in examples:
        if row["accepted"]:
            key = progress_key(cell_of(row["metadata"]))
            counts = trained.setdefault(row["cycle"], {})
            counts[key] = counts.get(key, 0) + 1

    right = {
        cycle: Counter(progress_key(cell_of(i.metadata)) for i, score in rows if score >= 1.0)
        for cycle, rows in probes.items()
    }
    out: dict[str, float] = {}
    for cycle in sorted(trained):  # later cycles overwrite: the last time each was trained
        before = started_from.get(cycle)
        if cycle not in right or before not in right:
            continue
        for key, n in trained[cycle].items():
            gained = max(0, right[cycle][key] - right[before][key])
            out[key] = round(gained / (n + pseudo), 4)
    return out


def progress_factors(
    keys: list[str], progress: dict[str, float], floor: float = 0.25
) -> list[float]:
    """Each unit's weight factor from its key's learning progress, 1 on average over the measured
    keys: ``(p + floor * mean) / ((1 + floor) * mean)``. A key never trained is given the best
    progress measured (it is tried before it is judged); one that gained nothing keeps
    ``floor / (1 + floor)`` of an average weight. All 1 when nothing has gained yet.

    Example:
        >>> progress_factors(["a", "b", "c"], {"a": 0.3, "b": 0.1})
        [1.4, 0.6, 1.4]
    """
    measured = list(progress.values())
    mean = sum(measured) / len(measured) if measured else 0.0
    if mean <= 0:
        return [1.0] * len(keys)
    best = max(measured)
    return [round((progress.get(k, best) + floor * mean) / ((1 + floor) * mean), 4) for k in keys]


def cell_key(cell: dict[str, int | str], sep: str = ",") -> str:
    """``"num_terms=3,num_digits=2"``: a cell as text, knobs in the given order (``sep=", "``
    for people)."""
    return sep.join(f"{k}={v}" for k, v in cell.items())


def cell_yields(
    rows: list[dict], cell_of: Callable[[dict], dict | None], min_candidates: int = 5
) -> dict[str, float]:
    """Per cell (``cell_of``: a candidate's cell from its metadata, :meth:`Pack.cell_of`), the
    share of candidates the critic accepted in the latest cycle that drew at least
    ``min_candidates`` there. ``rows`` are stored examples (``cycle``, ``metadata``,
    ``accepted``, ``source``, ``reason``); refined rewrites are left out (they are not draws),
    and so are surplus draws past a target's budget (the critic never screened them).

    Example:
        >>> rows = [{"cycle": 1, "source": "procedural", "accepted": a,
        ...          "metadata": {"n": 2}} for a in (1, 0, 0, 0, 0)]
        >>> cell_yields(rows, lambda meta: {"n": meta["n"]})
        {'n=2': 0.2}
    """
    counts: dict[str, dict[int, list[int]]] = {}
    for row in rows:
        if row["source"] == "refined" or row.get("reason") == "surplus":
            continue
        cell = cell_of(row["metadata"])
        if not cell:
            continue
        key = cell_key(cell)
        counts.setdefault(key, {}).setdefault(row["cycle"], []).append(int(row["accepted"]))
    out = {}
    for key, by_cycle in counts.items():
        full = [c for c, v in by_cycle.items() if len(v) >= min_candidates]
        if full:
            latest = by_cycle[max(full)]
            out[key] = sum(latest) / len(latest)
    return out


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


def source_overrides(
    knobs: dict[str, tuple[int, int]], pack: Pack, skill: str | None = None
) -> dict[str, int]:
    """Source config (e.g. ``min_terms``/``max_terms``) reproducing a cluster's knob ranges
    (``skill``: with that skill's knobs, in a multi-skill pack)."""
    specs = pack.knobs_for(skill)
    overrides = {}
    for knob, (low, high) in knobs.items():
        spec = specs.get(knob)
        if spec is None:
            continue
        low = max(spec.floor, min(low, spec.ceiling))
        high = max(low, min(high, spec.ceiling))
        overrides[spec.min_param], overrides[spec.max_param] = low, high
    return overrides


def cell_overrides(cell: dict[str, int | str], pack: Pack) -> dict[str, int | str]:
    """Source config that draws exactly ``cell`` (each knob's range pinned to its value; a
    multi-skill pack's cell draws from its skill alone)."""
    skill = cell.get("skill")
    knobs = {k: (v, v) for k, v in cell.items() if k != "skill"}
    overrides = source_overrides(knobs, pack, None if skill is None else str(skill))
    return overrides if skill is None else {"skill": skill, **overrides}


def stepping_stone_cell(
    cell: dict[str, int | str], pack: Pack, probe: list[tuple[Item, float]]
) -> dict[str, int | str] | None:
    """The cell with one knob a notch easier: the knob whose lower value the student gets right
    most often on the probe set (pack order breaks ties). None when no knob can go lower."""
    options = []
    skill = cell.get("skill")
    for order, (knob, spec) in enumerate(pack.knobs_for(skill).items()):
        if knob not in cell or int(cell[knob]) - 1 < spec.floor:
            continue
        easier = {**cell, knob: int(cell[knob]) - 1}
        options.append((-(cell_accuracy(probe, easier) or 0.0), order, easier))
    return min(options, key=lambda option: option[:2])[2] if options else None
