from failforward.tools.packs.sources import ReasoningGymSource, normalize, split_disjoint


def test_split_is_disjoint_sized_and_deterministic():
    source = ReasoningGymSource("chain_sum", {"min_terms": 2, "max_terms": 2, "max_digits": 1})
    probe, test = split_disjoint(source, probe=(50, 1), test=(80, 2))
    assert (len(probe), len(test)) == (50, 80)
    probe_q = {normalize(i.question) for i in probe}
    test_q = {normalize(i.question) for i in test}
    assert not probe_q & test_q
    assert len(probe_q) == 50 and len(test_q) == 80
    again_probe, again_test = split_disjoint(source, probe=(50, 1), test=(80, 2))
    assert [i.question for i in again_test] == [i.question for i in test]
    assert [i.question for i in again_probe] == [i.question for i in probe]


def test_overrides_move_the_knobs():
    source = ReasoningGymSource("chain_sum", {"min_terms": 2, "max_terms": 3})
    items = source.sample(
        20, seed=0, overrides={"min_terms": 5, "max_terms": 5, "min_digits": 3, "max_digits": 3}
    )
    assert {i.metadata["num_terms"] for i in items} == {5}
    assert {i.metadata["num_digits"] for i in items} == {3}
