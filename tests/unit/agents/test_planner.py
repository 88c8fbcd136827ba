import pytest

from failforward.agents.planner import (
    PlanRule,
    allocate,
    cell_overrides,
    cell_yields,
    learning_gain,
    learning_progress,
    plan_targeted,
    plan_uniform,
    source_overrides,
    stepping_stone_cell,
)
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import FailureCluster, Item, KnobCell


@pytest.fixture(scope="module")
def pack():
    return load_pack("arithmetic")


def _cluster(cluster_id, size, success, **extra):
    return FailureCluster(
        cluster_id=cluster_id,
        name=f"k{cluster_id}",
        size=size,
        success=success,
        knobs={"num_terms": (3, 3), "num_digits": (2, 2)},
        knob_modes={"num_terms": 3, "num_digits": 2},
        **extra,
    )


@pytest.mark.parametrize(
    ("weights", "budget"), [([5, 3, 2], 7), ([1, 1, 1], 10), ([9, 1], 1), ([3], 96)]
)
def test_allocate_sums_to_budget_and_follows_weights(weights, budget):
    shares = allocate(weights, budget)
    assert sum(shares) == budget
    exact = [budget * w / sum(weights) for w in weights]
    assert all(abs(share - x) < 1 for share, x in zip(shares, exact, strict=True))


def test_allocate_edge_cases():
    assert allocate([5, 3, 2], 7) == [4, 2, 1]
    assert allocate([0, 0], 5) == [0, 0]
    assert allocate([], 5) == []


def test_learning_gain_prefers_the_frontier_over_failure_mass():
    rule = PlanRule()
    hopeless = _cluster(0, 30, success=0.0)
    frontier = _cluster(1, 10, success=0.5)
    assert learning_gain(hopeless, rule) == pytest.approx(3.0)
    assert learning_gain(frontier, rule) == pytest.approx(10.0)
    mass = PlanRule(weighting="mass")
    assert learning_gain(hopeless, mass) > learning_gain(frontier, mass)


def test_flat_cluster_share_drops_and_shrinking_one_is_kept():
    rule = PlanRule()
    weights = [
        learning_gain(_cluster(0, 10, 0.5, flat_cycles=n, status="stable"), rule) for n in range(5)
    ]
    assert weights[0] == weights[1] > weights[2] > weights[3] > weights[4]
    shrinking = learning_gain(_cluster(0, 10, 0.5, status="shrank"), rule)
    assert shrinking > weights[0]


@pytest.mark.parametrize("budget", [1, 7, 10, 96, 250])
@pytest.mark.parametrize("weighting", ["gain", "mass"])
def test_budget_sums_and_the_exploration_floor_holds(pack, budget, weighting):
    clusters = [_cluster(0, 30, 0.0), _cluster(1, 10, 0.4), _cluster(2, 4, 0.9)]
    rule = PlanRule(weighting=weighting, explore=0.1)
    plan = plan_targeted(clusters, pack, budget, cycle=2, rule=rule)
    assert plan.budget == budget
    explore = [t for t in plan.targets if t.kind == "explore"]
    assert sum(t.budget for t in explore) == round(budget * 0.1)
    assert all(t.source_config == {} for t in explore)


def test_flat_cluster_gets_less_of_the_budget_next_time(pack):
    fresh = [_cluster(0, 10, 0.5), _cluster(1, 10, 0.5)]
    flat = [_cluster(0, 10, 0.5, flat_cycles=3), _cluster(1, 10, 0.5)]
    before = plan_targeted(fresh, pack, 90, cycle=2).targets[0].budget
    after = plan_targeted(flat, pack, 90, cycle=3).targets[0].budget
    assert after < before


def test_hopeless_cluster_gets_stepping_stones_one_notch_easier(pack):
    probe = [
        (Item(question="a", answer="1", metadata={"num_terms": 2, "num_digits": 2}), 1.0),
        (Item(question="b", answer="1", metadata={"num_terms": 2, "num_digits": 2}), 1.0),
        (Item(question="c", answer="1", metadata={"num_terms": 3, "num_digits": 1}), 0.0),
    ]
    hopeless = _cluster(0, 30, success=0.0)
    assert cell_overrides(stepping_stone_cell(hopeless.knob_modes, pack, probe), pack) == {
        "min_terms": 2,
        "max_terms": 2,
        "min_digits": 2,
        "max_digits": 2,
    }  # fewer terms: the student gets those right
    plan = plan_targeted([hopeless, _cluster(1, 10, 0.5)], pack, 50, cycle=2, probe=probe)
    stone = plan.targets[0]
    assert stone.kind == "stepping_stone" and stone.name.endswith("(one notch easier)")
    assert stone.source_config["max_terms"] == 2 and stone.cluster_size == 30
    assert stone.error_share == pytest.approx(0.75)
    floor = _cluster(2, 5, 0.0).model_copy(update={"knob_modes": {"num_terms": 2, "num_digits": 1}})
    assert stepping_stone_cell(floor.knob_modes, pack, probe) is None  # nothing is easier


def test_outliers_are_not_targeted_and_no_clusters_means_explore(pack):
    plan = plan_targeted([_cluster(0, 10, 0.5), _cluster(-1, 2, 0.5)], pack, 20, cycle=1)
    assert {t.cluster_id for t in plan.targets} == {0, None}
    only_explore = plan_targeted([], pack, 20, cycle=1)
    assert [(t.kind, t.budget) for t in only_explore.targets] == [("explore", 20)]


def test_plan_rule_checks_its_fields():
    with pytest.raises(ValueError, match="explore"):
        PlanRule(explore=1.5)
    with pytest.raises(ValueError, match="weighting"):
        PlanRule(weighting="size")


def test_source_overrides_clamp_to_floor_and_ceiling(pack):
    assert source_overrides({"num_terms": (1, 1)}, pack) == {"min_terms": 2, "max_terms": 2}
    assert source_overrides({"num_terms": (2, 9)}, pack) == {"min_terms": 2, "max_terms": 6}


def test_plan_uniform(pack):
    plan = plan_uniform(pack, budget=50, cycle=1)
    assert plan.mode == "uniform" and plan.budget == 50 and plan.targets[0].source_config == {}


def _probe(accuracy: dict[tuple[int, int], float], n=10):
    """Probe items per (terms, digits) cell, the given share of them right."""
    return [
        (
            Item(question=f"{cell}{i}", answer="1", metadata=dict(zip(KNOBS, cell, strict=True))),
            float(i < acc * n),
        )
        for cell, acc in accuracy.items()
        for i in range(n)
    ]


KNOBS = ("num_terms", "num_digits")


def _spread(cluster_id=0, counts=None):
    """A failure mode (say, off by a carry) whose failures fall in every cell of the eval mix."""
    counts = counts or {(2, 1): 10, (2, 2): 10, (3, 1): 10, (3, 2): 10}
    return FailureCluster(
        cluster_id=cluster_id,
        name="off by a carry",
        size=sum(counts.values()),
        success=0.2,
        knobs={"num_terms": (2, 3), "num_digits": (1, 2)},
        knob_modes={"num_terms": 2, "num_digits": 1},
        cells=[
            KnobCell(knobs=dict(zip(KNOBS, c, strict=True)), failures=n) for c, n in counts.items()
        ],
    )


def test_a_cluster_spanning_the_eval_mix_is_planned_cell_by_cell(pack):
    probe = _probe({(2, 1): 0.6, (2, 2): 0.3, (3, 1): 0.1, (3, 2): 0.0})
    plan = plan_targeted([_spread()], pack, 100, cycle=2, probe=probe)
    cells = [t for t in plan.targets if t.kind != "explore"]
    # Each target draws one cell, never the cluster's whole range (that is the uniform mix).
    for t in cells:
        assert t.source_config["min_terms"] == t.source_config["max_terms"] == t.cell["num_terms"]
        assert t.source_config["min_digits"] == t.source_config["max_digits"]
    budget = {tuple(t.cell.values()): t.budget for t in cells}
    # More data where the student is closer to right (60% > 10% correct); the hopeless cell
    # (3x2, 0%) draws one notch easier, with fewer terms, which the student gets more often, so
    # its failures join the 2x2 cell's and no target draws 3x2 at all.
    assert budget[(2, 1)] > budget[(3, 1)] and (3, 2) not in budget
    assert budget[(2, 2)] > budget[(3, 1)]
    assert len({t.target_id for t in plan.targets}) == len(plan.targets) == 4
    assert plan.budget == 100 and sum(t.cluster_size for t in cells) == 40
    # Alone, a hopeless cell is a stepping stone, named so.
    alone = plan_targeted([_spread(counts={(3, 2): 10})], pack, 20, cycle=2, probe=probe)
    assert alone.targets[0].kind == "stepping_stone"
    assert alone.targets[0].cell == {"num_terms": 2, "num_digits": 2}
    assert alone.targets[0].name.endswith("[num_terms=2, num_digits=2] (one notch easier)")


def test_budget_moves_out_of_cells_the_critic_found_used_up(pack):
    probe = _probe({(2, 1): 0.6, (2, 2): 0.6})
    cluster = _spread(counts={(2, 1): 10, (2, 2): 10})
    fresh = plan_targeted([cluster], pack, 100, cycle=2, probe=probe)
    used = plan_targeted(
        [cluster], pack, 100, cycle=2, probe=probe, yields={"num_terms=2,num_digits=1": 0.25}
    )

    def budget(plan, cell):
        return sum(t.budget for t in plan.targets if t.cell == cell)

    small, large = {"num_terms": 2, "num_digits": 1}, {"num_terms": 2, "num_digits": 2}
    assert budget(fresh, small) == budget(fresh, large) == 45
    assert budget(used, small) == 18 and budget(used, large) == 72
    gone = plan_targeted(
        [cluster],
        pack,
        100,
        cycle=2,
        probe=probe,
        yields={"num_terms=2,num_digits=1": 0.0, "num_terms=2,num_digits=2": 0.0},
    )
    assert [(t.kind, t.budget) for t in gone.targets] == [("explore", 100)]


def test_cell_yields_read_the_latest_cycle_with_enough_draws(pack):
    def rows(cycle, cell, accepted, rejected, source="procedural"):
        meta = dict(zip(KNOBS, cell, strict=True))
        return [
            {"cycle": cycle, "source": source, "metadata": meta, "accepted": a}
            for a in [1] * accepted + [0] * rejected
        ]

    stored = (
        rows(1, (2, 1), 8, 2)
        + rows(2, (2, 1), 2, 6)  # used up by cycle 2
        + rows(3, (2, 1), 1, 1)  # too few draws to say
        + rows(2, (3, 2), 5, 0)
        + rows(2, (3, 2), 0, 9, source="refined")  # rewrites are not draws
        + [{"cycle": 2, "source": "llm", "metadata": {}, "accepted": 0}] * 9
    )
    assert cell_yields(stored, pack.cell_of) == {
        "num_terms=2,num_digits=1": 0.25,
        "num_terms=3,num_digits=2": 1.0,
    }
    assert cell_yields(stored, lambda meta: None) == {}


def test_progress_weighting_moves_budget_to_what_gained_per_example(pack):
    probe = _probe({(2, 1): 0.6, (2, 2): 0.6})
    cluster = _spread(counts={(2, 1): 10, (2, 2): 10})
    small, large = "num_terms=2,num_digits=1", "num_terms=2,num_digits=2"
    progress = {small: 0.3, large: 0.0}

    def budgets(rule, progress):
        plan = plan_targeted(
            [cluster], pack, 100, cycle=2, rule=rule, probe=probe, progress=progress
        )
        return {t.target_id.split("/")[-1]: t.budget for t in plan.targets}

    assert budgets(PlanRule(), progress)[small] == 45  # the gain rule ignores progress
    learned = budgets(PlanRule(weighting="progress"), progress)
    # factors (0.3 + 0.0375) / 0.1875 = 1.8 and 0.0375 / 0.1875 = 0.2 of equal gain weights
    assert (learned[small], learned[large], learned["c2-explore"]) == (81, 9, 10)
    # Nothing measured yet, or nothing gained: the gain rule's plan.
    assert budgets(PlanRule(weighting="progress"), {}) == budgets(PlanRule(), None)
    assert budgets(PlanRule(weighting="progress"), {small: 0.0}) == budgets(PlanRule(), None)
    # A cell never trained is given the best progress seen: tried before it is judged.
    untried = budgets(PlanRule(weighting="progress"), {small: 0.3})
    assert untried[small] == untried[large] == 45


def test_learning_progress_is_read_against_the_student_that_was_trained():
    def item(skill, i):
        return Item(question=f"{skill}{i}", answer="1", metadata={"skill": skill})

    def attempts(right_a, right_b):
        return [(item("a", i), float(i < right_a)) for i in range(10)] + [
            (item("b", i), float(i < right_b)) for i in range(10)
        ]

    probes = {0: attempts(2, 2), 1: attempts(0, 1), 2: attempts(5, 4)}
    rows = [{"cycle": 1, "accepted": 1, "metadata": {"skill": "a"}}] * 10
    rows += [{"cycle": 2, "accepted": 1, "metadata": {"skill": k}} for k in "aaaaab"]
    rows += [{"cycle": 2, "accepted": 0, "metadata": {"skill": "b"}}] * 50  # rejected: not trained
    cell_of = lambda meta: {"skill": meta["skill"]}  # noqa: E731
    # Cycle 1 dropped a (2 -> 0) and was rolled back, so cycle 2 trained cycle 0's student:
    # a gained 5 - 2 on 5 examples, b 4 - 2 on 1; the drop itself counts as no gain.
    rolled_back = learning_progress(rows, probes, {1: 0, 2: 0}, cell_of)
    assert rolled_back == {"a": round(3 / 15, 4), "b": round(2 / 11, 4)}
    assert learning_progress(rows[:10], probes, {1: 0}, cell_of) == {"a": 0.0}
    # Read against cycle 1's student instead, a's gain would be 5 - 0.
    assert learning_progress(rows, probes, {1: 0, 2: 1}, cell_of)["a"] == round(5 / 15, 4)
