"""Multi-skill packs: the schema, the mixture source, stratified and mixture-true probe and test
sets, each skill's verifier, and the composition check that catches a set that is not a sample
of the pack's distribution."""

import copy
import shutil
from collections import Counter

import pytest
import yaml

from failforward.tools.packs.check import validate_pack
from failforward.tools.packs.composition import compare_sets
from failforward.tools.packs.pack import PackError, load_pack
from failforward.tools.packs.sources import draw_sets, normalize
from failforward.tools.records import Item

ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]
SUMS = {
    "kind": "reasoning_gym",
    "dataset": "chain_sum",
    "config": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
}
PRODUCTS = {
    "kind": "reasoning_gym",
    "dataset": "products",
    "config": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2},
}


def _write(tmp_path, spec, name="two-skills"):
    folder = tmp_path / name
    shutil.copytree(ROOT / "benchmarks" / "packs" / "mixed-candidates", folder)
    (folder / "pack.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _spec(**extra):
    spec = yaml.safe_load((ROOT / "benchmarks/packs/mixed-candidates/pack.yaml").read_text())
    spec["skills"] = [
        {
            "name": "sums",
            "weight": 2,
            "source": SUMS,
            "knobs": {
                "num_terms": {
                    "min_param": "min_terms",
                    "max_param": "max_terms",
                    "floor": 2,
                    "ceiling": 6,
                }
            },
        },
        {
            "name": "products",
            "source": PRODUCTS,
            "knobs": {
                "num_digits": {
                    "min_param": "min_digits",
                    "max_param": "max_digits",
                    "floor": 1,
                    "ceiling": 3,
                }
            },
        },
    ]
    spec["probe"], spec["test"] = {"size": 30, "seed": 1}, {"size": 60, "seed": 2}
    return copy.deepcopy({**spec, **extra})


@pytest.fixture
def pack(tmp_path):
    return load_pack(str(_write(tmp_path, _spec())))


def test_items_carry_their_skill_and_follow_the_weights(pack):
    source = pack.make_source()
    items = source.sample(30, seed=0)
    assert Counter(i.metadata["skill"] for i in items) == {"sums": 20, "products": 10}
    only = source.sample(5, seed=0, overrides={"skill": "products", "min_digits": 2})
    assert {i.metadata["skill"] for i in only} == {"products"}
    assert all(i.metadata["num_digits"] == 2 for i in only)
    assert pack.cell_of(only[0].metadata) == {"skill": "products", "num_digits": 2}
    assert pack.cell_of({"skill": "nope"}) is None


def test_probe_and_test_sets_are_stratified_by_skill_and_disjoint(pack):
    for sampling in ("distinct", "mixture"):
        probe, test = draw_sets(pack.make_source(), (30, 1), (60, 2), sampling)
        assert Counter(i.metadata["skill"] for i in test) == {"sums": 40, "products": 20}
        assert Counter(i.metadata["skill"] for i in probe) == {"sums": 20, "products": 10}
        assert not {normalize(i.question) for i in probe} & {normalize(i.question) for i in test}
    again = draw_sets(pack.make_source(), (30, 1), (60, 2), "mixture")
    assert [i.question for i in again[1]] == [i.question for i in test]  # fixed by the seeds


def test_equal_strata_give_every_skill_the_same_items_and_the_check_expects_them(tmp_path):
    """sums weigh twice products; a test set with ``strata: equal`` holds as many of each (its
    probe, by the weights, does not), and the composition check measures each set against the
    mix it was drawn to have: the equal set does not warn, while the same items measured against
    the weights would."""
    spec = _spec(sampling="mixture")
    spec["probe"], spec["test"] = {"size": 60, "seed": 1}, {"size": 200, "seed": 2}
    spec["test"]["strata"] = "equal"
    pack = load_pack(str(_write(tmp_path, spec)))
    probe, test = pack.draw_sets()
    assert Counter(i.metadata["skill"] for i in test) == {"sums": 100, "products": 100}
    assert Counter(i.metadata["skill"] for i in probe) == {"sums": 40, "products": 20}
    found = {(c.split, c.dimension): c for c in compare_sets(pack)}
    assert found[("test", "skill")].reference == pytest.approx({"products": 0.5, "sums": 0.5})
    assert not any(c.warning for c in found.values())
    from failforward.tools.packs.composition import compare, reference_items

    by_weights = compare("test", test, reference_items(pack), pack)
    assert next(c for c in by_weights if c.dimension == "skill").differs
    from failforward.tools.stats.learnability import unit_shares

    table = type("Table", (), {"skills": {"sums": _Unit(), "products": _Unit()}})()
    assert unit_shares(table, pack) == {"sums": 0.5, "products": 0.5}


class _Unit:
    share = None


def test_equal_strata_need_skills(tmp_path):
    spec = yaml.safe_load((ROOT / "benchmarks/packs/mixed-candidates/pack.yaml").read_text())
    spec.pop("skills", None)
    spec["eval_source"] = SUMS
    spec["probe"] = {"size": 10, "seed": 1, "strata": "equal"}
    with pytest.raises(PackError, match="pack.yaml") as err:
        load_pack(str(_write(tmp_path, spec)))
    assert "probe.strata: equal splits a set over skills" in str(err.value)


def test_each_item_is_checked_by_its_skills_verifier(tmp_path):
    items = tmp_path / "words.jsonl"
    items.write_text("".join(f'{{"question": "Say {w}.", "answer": "{w}"}}\n' for w in "abcdefgh"))
    spec = _spec(verifier="reasoning_gym")
    spec["skills"].append(
        {"name": "words", "source": {"kind": "jsonl", "path": "words.jsonl"}, "verifier": "exact"}
    )
    folder = _write(tmp_path, spec)
    shutil.copy(items, folder / "words.jsonl")
    verify = load_pack(str(folder)).make_verifier()
    assert verify("c", Item(question="Say c.", answer="c", metadata={"skill": "words"})).score == 1
    product = Item(question="Solve 3 * 4.", answer="12", metadata={"skill": "products"})
    assert verify("12", product).score == 1 and verify("13", product).score == 0
    assert verify("12", Item(question="?", answer="12")).reason == "unparseable"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(eval_source=SUMS), "either eval_source or skills"),
        (lambda s: s["skills"][1].update(name="sums"), "'sums'] used twice"),
        (lambda s: s["skills"][1].update(verifier="nope"), "skills.1.verifier: Value error"),
        (lambda s: s["skills"][0]["source"].pop("dataset"), "skills.0.source.dataset: required"),
        (
            lambda s: s["skills"][1].update(source={"kind": "jsonl", "path": "x.jsonl"}),
            "skills.1.source.path: no such file",
        ),
        (lambda s: s.update(knobs={"n": s["skills"][0]["knobs"]["num_terms"]}), "knobs per skill"),
    ],
)
def test_a_bad_skill_is_an_error_naming_the_file_and_field(tmp_path, change, message):
    spec = _spec()
    change(spec)
    folder = _write(tmp_path, spec)
    with pytest.raises(PackError, match="pack.yaml") as err:
        load_pack(str(folder))
    assert message in str(err.value)


def test_validate_checks_every_skill(tmp_path):
    spec = _spec()
    spec["skills"][1]["knobs"] = {
        "num_bits": {"min_param": "min_digits", "max_param": "max_digits", "floor": 1, "ceiling": 3}
    }
    with pytest.raises(PackError, match=r"skills\.1\.knobs\.num_bits: the eval items have no"):
        validate_pack(str(_write(tmp_path, spec)))
    lines = validate_pack(str(_write(tmp_path, _spec(), "good")))
    assert any("skill products, weight 1" in line for line in lines)
    assert any("verifier reasoning_gym (products)" in line for line in lines)


def test_a_small_cell_bends_distinct_sets_and_the_check_says_so(tmp_path):
    """products at one or two digits: half its items are one-digit products, of which there are
    only 100, so distinct test and probe sets under-represent them (the probe set, drawn after
    the test set, most); drawn as the mixture they do not, and nothing warns."""
    folder = tmp_path / "products"
    shutil.copytree(ROOT / "benchmarks" / "packs" / "products", folder)
    found = {(c.split, c.dimension): c for c in compare_sets(load_pack(str(folder)))}
    probe = found[("probe", "cell")]
    assert probe.differs and probe.share("num_digits=1") < 0.25 < probe.reference["num_digits=1"]
    assert "probe set is not a sample" in probe.warning and "num_digits=1" in probe.warning
    assert found[("test", "cell")].differs

    spec = yaml.safe_load((folder / "pack.yaml").read_text())
    (folder / "pack.yaml").write_text(yaml.safe_dump({**spec, "sampling": "mixture"}))
    pack = load_pack(str(folder))
    mixed = compare_sets(pack)
    assert not any(c.warning for c in mixed)
    assert all(abs(c.share("num_digits=1") - 0.5) < 0.12 for c in mixed)
    probe_items, test_items = draw_sets(pack.make_source(), (100, 101), (300, 202), "mixture")
    in_test = Counter(normalize(i.question) for i in test_items)
    assert max(in_test.values()) > 1  # repeats within a set are the mixture's own
    assert not set(in_test) & {normalize(i.question) for i in probe_items}


def test_sets_drawn_from_the_mixture_rarely_warn():
    """False alarms: 40 mixture-true test sets of the products pack (different seeds) against
    the source's mix; the check (p < 0.001 and distance >= 0.1) must stay quiet in all but at
    most one."""
    pack = load_pack(str(ROOT / "benchmarks" / "packs" / "products"))
    source = pack.make_source()
    from failforward.tools.packs.composition import compare, reference_items

    reference = reference_items(pack, source)
    alarms = 0
    for seed in range(40):
        _, test = draw_sets(source, (20, 1000 + seed), (100, seed), "mixture")
        alarms += any(c.differs for c in compare("test", test, reference, pack))
    assert alarms <= 1
