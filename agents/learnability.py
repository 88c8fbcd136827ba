"""Plans that aim at learnability rather than at failures.

:func:`plan_learnability` is the loop's own estimate: per cell (skill and knob values), how often
the student in use gets the probe items right, shrunk toward its skill's rate (and a skill's
toward the whole probe set's) so a cell of three items does not read as 0 or 1. The budget goes
where the student can learn now, by ``p(1 - p)`` times the cell's share of the probe set (the
success variance, largest at the frontier); a cell near 0 passes its claim to its easier cell
of the same skill (a prerequisite); mastered cells get a replay share so what works is not
forgotten; the exploration share covers the rest.

:func:`plan_oracle` is the positive control a comparison measures plans against: it allocates by
the pack's pilot learnability table (:mod:`tools.stats.learnability`), knowledge the loop does not
have, greedily giving each step of the budget to the unit whose measured curve promises the
largest gain in test accuracy for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from failforward.agents.planner import (
    PlanRule,
    capped_allocate,
    cell_key,
    cell_overrides,
    explore_target,
    stepping_stone_cell,
)
from failforward.tools.packs.capacity import Capacity
from failforward.tools.packs.pack import Pack
from failforward.tools.packs.sources import allocate
from failforward.tools.records import GenerationPlan, Item, PlanTarget
from failforward.tools.stats.learnability import (
    LearnabilityTable,
    accuracy_at,
    in_unit,
    marginal_gain,
    unit_cell,
    unit_shares,
)


@dataclass
class CellSuccess:
    """The student's success in one cell of the probe set: items, right answers, the shrunk
    estimate ``p`` and the cell's share of the probe set."""

    cell: dict[str, int | str]
    items: int
    right: float
    p: float
    share: float


def _shrunk(right: float, items: int, toward: float, prior: float) -> float:
    return (right + prior * toward) / (items + prior) if items + prior else toward


def cell_success(probe: list[tuple[Item, float]], pack: Pack, prior: float) -> list[CellSuccess]:
    """Each probe cell's success, shrunk toward its skill's with ``prior`` pseudo-items (a
    skill's toward the whole probe set's); items with no cell form one cell ``{}``. ``probe``
    pairs each item with its success in [0, 1]: 1 or 0 for a greedy answer, the share right of
    several sampled ones.

    Example:
        >>> from failforward.tools.packs.pack import load_pack
        >>> pack = load_pack("mixed")
        >>> probe = [(Item(question=str(i), answer="1", metadata={"skill": "lcm"}), float(i < 3))
        ...          for i in range(4)] + [(Item(question="x", answer="1",
        ...          metadata={"skill": "count_primes"}), 0.0)]
        >>> [(c.cell["skill"], c.items, round(c.p, 2)) for c in cell_success(probe, pack, 4.0)]
        [('lcm', 4, 0.68), ('count_primes', 1, 0.48)]
    """
    if not probe:
        return []
    overall = sum(s for _, s in probe) / len(probe)
    counts: dict[str, list] = {}
    for item, success in probe:
        cell = pack.cell_of(item.metadata) or {}
        entry = counts.setdefault(cell_key(cell), [cell, 0, 0.0])
        entry[1], entry[2] = entry[1] + 1, entry[2] + success
    skills: dict[object, list[float]] = {}
    for cell, items, right in counts.values():
        total = skills.setdefault(cell.get("skill"), [0, 0])
        total[0], total[1] = total[0] + items, total[1] + right
    skill_p = {k: _shrunk(r, n, overall, prior) for k, (n, r) in skills.items()}
    out = []
    for cell, items, right in counts.values():
        p = skill_p[cell.get("skill")]
        if set(cell) - {"skill"}:  # a knob cell inside its skill: shrunk toward the skill
            p = _shrunk(right, items, p, prior)
        out.append(CellSuccess(cell, items, right, p, items / len(probe)))
    return out


def frontier_weights(
    cells: list[CellSuccess], pack: Pack, probe: list[tuple[Item, float]], rule: PlanRule
) -> dict[str, tuple[dict, float, bool]]:
    """Per cell drawn from (by key): the cell, its weight ``share * p(1 - p)``, and whether it
    is there as the easier cell of one near 0. Mastered cells and cells near 0 without an easier
    cell in reach have none."""
    by_key = {cell_key(c.cell): c for c in cells}
    out: dict[str, tuple[dict, float, bool]] = {}

    def add(target: CellSuccess, weight: float, stone: bool) -> None:
        key = cell_key(target.cell)
        _, before, was_stone = out.get(key, (target.cell, 0.0, True))
        out[key] = (target.cell, before + weight, was_stone and stone)

    for c in cells:
        if c.p >= rule.mastered_at:
            continue
        if c.p >= rule.hopeless_below:
            add(c, c.share * c.p * (1 - c.p), False)
            continue
        easier = stepping_stone_cell(c.cell, pack, probe) if c.cell else None
        found = by_key.get(cell_key(easier)) if easier else None
        if found is not None and rule.hopeless_below <= found.p < rule.mastered_at:
            add(found, c.share * found.p * (1 - found.p), True)
    return out


def plan_learnability(
    probe: list[tuple[Item, float]],
    pack: Pack,
    budget: int,
    cycle: int,
    rule: PlanRule,
    capacity: Capacity | None = None,
) -> GenerationPlan:
    """The cycle's plan by success variance: exploration, replay on mastered cells, and the rest
    over the frontier cells by :func:`frontier_weights` (capped by ``capacity`` as the targeted
    plan is). With no frontier cell everything not replayed is exploration. ``probe`` pairs each
    probe item with the student's success on it (:func:`cell_success`)."""
    cells = cell_success(probe, pack, rule.prior)
    success = {cell_key(c.cell): c.p for c in cells}
    mastered = [c for c in cells if c.p >= rule.mastered_at and c.cell]
    frontier = frontier_weights(cells, pack, probe, rule)
    replay = round(budget * rule.replay) if mastered else 0
    aim = budget - round(budget * rule.explore) - replay if frontier else 0
    units = list(frontier.values())
    caps: list[int | None] = [None] * len(units)
    if capacity is not None and rule.capacity:
        caps = [capacity(cell_overrides(cell, pack), aim) for cell, _, _ in units]
    shares = capped_allocate([w for _, w, _ in units], aim, caps)
    targets = [
        _cell_target(cycle, pack, cell, "stepping_stone" if stone else "frontier", share, weight)
        for (cell, weight, stone), share in zip(units, shares, strict=True)
        if share > 0
    ]
    for c, share in zip(mastered, allocate([c.share for c in mastered], replay), strict=True):
        if share > 0:
            targets.append(_cell_target(cycle, pack, c.cell, "replay", share, c.share))
    for target in targets:
        target.success = round(success[cell_key(target.cell)], 4)
    explore = budget - sum(t.budget for t in targets)
    if explore:
        targets.append(explore_target(pack, cycle, explore))
    return GenerationPlan(cycle=cycle, mode="targeted", targets=targets)


def _cell_target(
    cycle: int, pack: Pack, cell: dict, kind: str, budget: int, weight: float
) -> PlanTarget:
    key = cell_key(cell, ", ") or "all"
    skill = cell.get("skill")
    return PlanTarget(
        target_id=f"c{cycle}-{kind}/{cell_key(cell) or 'all'}",
        name=f"{key} ({kind.replace('_', ' ')})",
        description=pack.task_for(None if skill is None else str(skill)),
        budget=budget,
        source_config=cell_overrides(cell, pack) if cell else {},
        cell=cell,
        kind=kind,
        weight=round(weight, 4),
    )


def spent_per_unit(rows: list[dict], table: LearnabilityTable, pack: Pack) -> dict[str, int]:
    """Accepted examples so far in each table unit (``rows``: the run's stored examples)."""
    cells = {name: unit_cell(name, pack) or {} for name in table.skills}
    spent = dict.fromkeys(table.skills, 0)
    for row in rows:
        if not row["accepted"]:
            continue
        cell = pack.cell_of(row["metadata"])
        for name, unit in cells.items():
            spent[name] += in_unit(cell, unit)
    return spent


def plan_oracle(
    table: LearnabilityTable, pack: Pack, budget: int, cycle: int, spent: dict[str, int]
) -> GenerationPlan:
    """The positive control's plan: the budget in steps of ``budget // 32`` (at least 1), each
    to the unit whose pilot curve gains most test accuracy for it (its gain per example at what
    it has been given so far, ``spent`` plus this plan's, times its test share). What no unit's
    curve still rewards is spread over the units by test share.

    Example:
        >>> from failforward.tools.stats.learnability import UnitCurve
        >>> from failforward.tools.packs.pack import load_pack
        >>> table = LearnabilityTable(skills={
        ...     "lcm": UnitCurve(status="in_reach", curve={0: 0.2, 16: 0.6, 64: 0.7}),
        ...     "sum_easy": UnitCurve(status="mastered", curve={0: 0.9, 64: 0.9})})
        >>> plan = plan_oracle(table, load_pack("mixed"), 32, 1, {"lcm": 0, "sum_easy": 0})
        >>> [(t.name, t.budget) for t in plan.targets]
        [('skill=lcm (oracle)', 32)]
    """
    shares = unit_shares(table, pack)
    step = max(1, budget // 32)
    given = dict.fromkeys(table.skills, 0)
    left = budget
    while left > 0:
        chunk = min(step, left)
        gains = {
            name: shares[name] * marginal_gain(u.curve, spent.get(name, 0) + given[name], chunk)
            for name, u in table.skills.items()
        }
        best = max(gains, key=lambda name: gains[name])  # first in table order on ties
        if gains[best] <= 0:
            break
        given[best] += chunk
        left -= chunk
    names = list(table.skills)
    for name, extra in zip(names, allocate([shares[n] for n in names], left), strict=True):
        given[name] += extra
    targets = []
    for name, n in given.items():
        if n <= 0:
            continue
        curve, at = table.skills[name].curve, spent.get(name, 0)
        gain = shares[name] * marginal_gain(curve, at, max(1, n))
        target = _cell_target(cycle, pack, unit_cell(name, pack) or {}, "oracle", n, gain)
        target.success = round(accuracy_at(curve, at), 4)
        targets.append(target)
    return GenerationPlan(cycle=cycle, mode="oracle", targets=targets)
