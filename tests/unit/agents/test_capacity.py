"""Budget buys accepted examples: a cell that can no longer give new items (most of it is in the
test set) is capped at what it can give before anything is drawn, and the rest moves on."""

from failforward.agents.planner import PlanRule, capped_allocate, plan_targeted
from failforward.tools.packs.capacity import capacity_of, estimate, taken_keys
from failforward.tools.packs.pack import load_pack
from failforward.tools.packs.sources import draw_sets
from failforward.tools.records import FailureCluster, KnobCell
from tests.unit.tools.test_skills import ROOT


def test_capped_shares_move_to_the_other_targets():
    assert capped_allocate([5, 3, 2], 10, [1, None, None]) == [1, 5, 4]
    assert capped_allocate([1, 1], 10, [2, 3]) == [2, 3]  # the rest is left for exploration
    assert capped_allocate([1, 1], 10, [None, None]) == [5, 5]


def test_a_used_up_cell_is_capped_at_what_it_can_still_give():
    """products with one or two digits: the one-digit cell has 100 distinct problems and the test
    and probe sets already hold many of them; the two-digit cell has 8,100."""
    pack = load_pack(str(ROOT / "benchmarks" / "packs" / "products"))
    spec, source = pack.spec, pack.make_source()
    probe, test = draw_sets(source, (spec.probe.size, 101), (spec.test.size, 202))
    taken = taken_keys([*test, *probe])
    one = {"min_digits": 1, "max_digits": 1}
    small = estimate(source, one, 86, taken, seed=0)
    # 100 ordered problems, 55 up to order (the critic's near match: same numbers, same
    # answer), and the probe and test sets hold 95 one-digit items
    assert small < 10
    assert estimate(source, {"min_digits": 2, "max_digits": 2}, 86, taken, seed=0) >= 86

    cluster = FailureCluster(
        cluster_id=0,
        name="wrong products",
        size=60,
        success=0.5,
        cells=[
            KnobCell(knobs={"num_digits": 1}, failures=54),
            KnobCell(knobs={"num_digits": 2}, failures=6),
        ],
    )
    capacity = capacity_of(source, taken, seed=0)
    plan = plan_targeted([cluster], pack, 96, cycle=1, capacity=capacity)
    by_cell = {t.cell.get("num_digits"): t for t in plan.targets}
    assert by_cell.get(1) is None or by_cell[1].budget <= by_cell[1].capacity == small
    assert by_cell[2].budget >= 96 - 10 - small and by_cell[2].capacity >= by_cell[2].budget
    assert sum(t.budget for t in plan.targets) == 96
    uncapped = plan_targeted(
        [cluster], pack, 96, cycle=1, rule=PlanRule(capacity=False), capacity=capacity
    )
    assert {t.cell.get("num_digits"): t.budget for t in uncapped.targets}[1] >= 77
