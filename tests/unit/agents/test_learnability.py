"""The plans that aim at learnability: the oracle follows its pilot table, the frontier plan
follows the student's shrunk success."""

import shutil

import pytest

from failforward.agents.learnability import (
    cell_success,
    plan_learnability,
    plan_oracle,
    spent_per_unit,
)
from failforward.agents.planner import PlanRule
from failforward.tools.packs.pack import PackError, load_pack
from failforward.tools.records import Item
from failforward.tools.stats.learnability import LearnabilityTable, UnitCurve, load_table


@pytest.fixture(scope="module")
def mixed():
    return load_pack("mixed")


def _table(**curves):
    return LearnabilityTable(
        skills={name: UnitCurve(status="in_reach", curve=curve) for name, curve in curves.items()}
    )


def _budgets(plan):
    return {t.cell.get("skill", "explore"): t.budget for t in plan.targets}


def test_the_oracle_spends_where_its_table_says_the_gain_is(mixed):
    table = _table(
        lcm={0: 0.2, 32: 0.6, 64: 0.65},  # steep, then flat
        products={0: 0.3, 64: 0.5},  # slow and steady
        sum_easy={0: 0.9, 64: 0.9},  # mastered: nothing to gain
    )
    first = plan_oracle(table, mixed, 32, 1, {"lcm": 0, "products": 0, "sum_easy": 0})
    assert _budgets(first) == {"lcm": 32} and first.mode == "oracle"
    # once lcm's steep part is used up, products' steady slope wins
    later = plan_oracle(table, mixed, 32, 2, {"lcm": 32, "products": 0, "sum_easy": 0})
    assert _budgets(later) == {"products": 32}
    # a planted table that flips the slopes flips the plan
    flipped = _table(lcm={0: 0.2, 64: 0.3}, products={0: 0.3, 32: 0.7})
    assert _budgets(plan_oracle(flipped, mixed, 32, 1, {})) == {"products": 32}


def test_the_oracle_spreads_by_share_what_no_curve_rewards(mixed):
    table = _table(lcm={0: 0.2, 16: 0.5}, sum_easy={0: 0.9, 16: 0.9})
    plan = plan_oracle(table, mixed, 32, 1, {"lcm": 0, "sum_easy": 0})
    assert _budgets(plan) == {"lcm": 16 + 8, "sum_easy": 8}  # 16 by gain, then 16 by share
    assert sum(t.budget for t in plan.targets) == 32
    assert [t.success for t in plan.targets] == [0.2, 0.9]  # the curve's accuracy so far


def test_spent_counts_accepted_examples_per_unit(mixed):
    table = _table(lcm={0: 0.2, 16: 0.5}, products={0: 0.3, 16: 0.4})
    rows = [
        {"accepted": 1, "metadata": {"skill": "lcm"}},
        {"accepted": 0, "metadata": {"skill": "lcm"}},
        {"accepted": 1, "metadata": {"skill": "products", "num_digits": 2}},
        {"accepted": 1, "metadata": {"skill": "sum_easy"}},
    ]
    assert spent_per_unit(rows, table, mixed) == {"lcm": 1, "products": 1}


def _probe(rates: dict[str, tuple[int, int]], knob: dict | None = None):
    probe = []
    for skill, (right, items) in rates.items():
        for i in range(items):
            meta = {"skill": skill, **(knob or {}).get(skill, {})}
            probe.append(
                (Item(question=f"{skill}{i}", answer="1", metadata=meta), float(i < right))
            )
    return probe


def test_shrinkage_pulls_small_cells_toward_their_skill_and_the_whole(mixed):
    probe = _probe({"lcm": (10, 20), "count_primes": (0, 1)})
    found = {c.cell["skill"]: c for c in cell_success(probe, mixed, prior=4.0)}
    assert found["lcm"].p == pytest.approx((10 + 4 * 10 / 21) / 24)
    assert 0.0 < found["count_primes"].p < 0.5  # one wrong item is not "never right"
    assert {c.cell["skill"]: c.p for c in cell_success(probe, mixed, prior=0.0)} == {
        "lcm": 0.5,
        "count_primes": 0.0,
    }


def test_the_frontier_gets_the_budget_mastered_cells_a_replay_and_zeros_only_exploration(mixed):
    probe = _probe({"lcm": (10, 20), "sum_easy": (20, 20), "leg_counting": (0, 20)})
    rule = PlanRule(weighting="learnability", explore=0.1, replay=0.1, prior=2.0)
    plan = plan_learnability(probe, mixed, 100, 1, rule)
    kinds = {(t.kind, t.cell.get("skill")): t.budget for t in plan.targets}
    assert kinds == {("frontier", "lcm"): 80, ("replay", "sum_easy"): 10, ("explore", None): 10}
    frontier = next(t for t in plan.targets if t.kind == "frontier")
    assert frontier.success == pytest.approx((10 + 2 * 30 / 60) / 22, abs=1e-4)
    assert frontier.weight == pytest.approx(frontier.success * (1 - frontier.success) / 3, 1e-3)


def test_variance_not_failures_sets_the_frontier_shares(mixed):
    # lcm fails most (p 0.1) but products sits at the frontier (p 0.5): products gets more
    probe = _probe({"lcm": (2, 20), "number_sequence": (10, 20)})
    rule = PlanRule(weighting="learnability", explore=0.0, replay=0.0, prior=0.0)
    budgets = _budgets(plan_learnability(probe, mixed, 34, 1, rule))
    assert budgets == {"number_sequence": 25, "lcm": 9}  # 0.25 : 0.09


def test_a_cell_near_zero_passes_its_claim_to_its_easier_cell(mixed):
    probe = _probe({"products": (0, 10)}, {"products": {"num_digits": 2}})
    probe += [
        (Item(question=f"e{i}", answer="1", metadata={"skill": "products", "num_digits": 1}), s)
        for i, s in enumerate([1.0] * 5 + [0.0] * 5)
    ]
    rule = PlanRule(weighting="learnability", explore=0.0, replay=0.0, prior=0.0)
    plan = plan_learnability(probe, mixed, 20, 1, rule)
    assert [(t.kind, t.cell, t.budget) for t in plan.targets] == [
        ("frontier", {"skill": "products", "num_digits": 1}, 20)
    ]
    assert plan.targets[0].weight == pytest.approx(0.5 * 0.25 + 0.5 * 0.25)  # own + the harder's


def test_with_no_frontier_everything_not_replayed_explores(mixed):
    probe = _probe({"sum_easy": (20, 20), "leg_counting": (0, 20)})
    rule = PlanRule(weighting="learnability", explore=0.1, replay=0.2, prior=0.0)
    assert _budgets(plan_learnability(probe, mixed, 50, 1, rule)) == {
        "sum_easy": 10,
        "explore": 40,
    }


def test_a_bad_table_is_refused_naming_the_file_and_field(tmp_path):
    pack_dir = tmp_path / "mixed"
    shutil.copytree(load_pack("mixed").directory, pack_dir)
    with pytest.raises(PackError, match="learnability.yaml: missing"):
        load_table(load_pack(str(pack_dir)))
    table = pack_dir / "learnability.yaml"
    table.write_text("skills:\n  lcm: {status: in_reach, curve: {0: 0.2}}\n")
    with pytest.raises(PackError, match=r"learnability.yaml: skills.lcm: .*curve: a unit in_reach"):
        load_table(load_pack(str(pack_dir)))
    table.write_text("skills:\n  lcm: {status: mastered, curve: {0: 1.0}}\n")
    assert load_table(load_pack(str(pack_dir))).skills["lcm"].curve == {0: 1.0}
    table.write_text("skills:\n  lcm: {status: in_reach, curve: {8: 0.2, 16: 0.3}}\n")
    with pytest.raises(PackError, match=r"skills.lcm.curve: .*at 0 examples"):
        load_table(load_pack(str(pack_dir)))
    table.write_text("skills:\n  lcm: {status: learnable, curve: {0: 0.2, 8: 0.3}}\n")
    with pytest.raises(PackError, match=r"skills.lcm.status"):
        load_table(load_pack(str(pack_dir)))
    table.write_text("skills:\n  gcd: {status: in_reach, curve: {0: 0.2, 8: 0.3}}\n")
    with pytest.raises(PackError, match=r"skills.gcd: the pack has no such skill"):
        load_table(load_pack(str(pack_dir)))
    table.write_text(
        "skills:\n  'skill=products,num_digits=2': {status: in_reach, curve: {0: 0.2, 8: 0.3}}\n"
    )
    assert list(load_table(load_pack(str(pack_dir))).skills) == ["skill=products,num_digits=2"]


def test_rule_refuses_no_budget_left_to_aim():
    with pytest.raises(ValueError, match="^replay: explore 0.5 \\+ replay 0.5 leave no budget"):
        PlanRule(weighting="learnability", explore=0.5, replay=0.5)
    PlanRule(explore=0.5, replay=0.5)  # replay is the learnability rule's alone
