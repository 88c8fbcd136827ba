"""Near-duplicate and contamination screens with the real packaged MiniLM."""

import pytest

from failforward.agents.critic import Screen, critique
from failforward.tools.embed.embeddings import embed
from failforward.tools.embed.similarity import NearIndex, answer_key, number_signature, word_ngrams
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Candidate, Item, Lineage
from failforward.tools.verify.verifiers import arithmetic_expression, numeric

TEST_ITEM = "State the final answer to the following arithmetic problem: 23 - 60 + 7 ="
REWORDINGS = [
    "What is 23 - 60 + 7?",
    "Compute 23 - 60 + 7 and give the final answer.",
    "Calculate: 23 - 60 + 7 =",
    "Please work out 23 - 60 + 7 =",
]
DISTINCT = [
    "State the final answer to the following arithmetic problem: 23 - 61 + 7 =",
    "State the final answer to the following arithmetic problem: 88 + 4 =",
    "What is 23 - 60 + 8?",
]


@pytest.fixture(scope="module")
def arithmetic_critic_spec():
    return load_pack("arithmetic").spec.critic


def test_number_signature_and_ngrams():
    assert number_signature("Subtract 60 from 23, then add 1,000") == ("1000", "23", "60")
    assert ("a", "b") in word_ngrams("A b c", 2)


def test_rewordings_are_caught_and_distinct_items_kept(arithmetic_critic_spec):
    index = NearIndex(arithmetic_critic_spec.contamination)
    index.add([TEST_ITEM], embed([TEST_ITEM]))
    for text, vector in zip(REWORDINGS, embed(REWORDINGS), strict=True):
        assert index.find(text, vector) is not None, text
    for text, vector in zip(DISTINCT, embed(DISTINCT), strict=True):
        assert index.find(text, vector) is None, text


def test_same_numbers_with_another_answer_is_another_problem(arithmetic_critic_spec):
    index = NearIndex(arithmetic_critic_spec.contamination)
    index.add([TEST_ITEM], embed([TEST_ITEM]), ["-30"])
    signs_swapped = "State the final answer to the following arithmetic problem: 23 + 60 - 7 ="
    vector = embed([signs_swapped])[0]
    assert index.find(signs_swapped, vector, answer="76") is None
    assert index.find(signs_swapped, vector) is not None  # answer unknown: numbers decide
    reordered = "Calculate: 23 + 7 - 60 ="
    assert index.find(reordered, embed([reordered])[0], answer="-30.0") is not None
    assert answer_key("-30.0") == answer_key(" -30 ") and answer_key("Paris ") == "paris"


def test_rare_ngram_catches_a_lightly_edited_word_problem():
    story = (
        "Maria packs 12 boxes of pencils for the school fair and each box holds 30 pencils; "
        "how many pencils does she pack in total?"
    )
    others = [
        f"Tom buys {n} apples at the market and eats two of them on the way home." for n in range(5)
    ]
    index = NearIndex(threshold=0.99, ngram=8)
    index.add([story, *others], embed([story, *others]))
    edited = (
        "Maria packs 12 boxes of pencils for the school fair and each box holds 30 pencils. "
        "Find the total number of pencils."
    )
    assert index.find(edited, embed([edited])[0])[1].startswith("shares the 8-gram")
    # the template every "Tom buys" text shares is not a leak on its own
    template = "Tom buys 9 apples at the market and eats two of them on the way home."
    assert index.find(template, embed([template])[0]) is None


def _candidate(question, answer):
    return Candidate(
        question=question, answer=answer, lineage=Lineage(cycle=2, target_id="t", source="llm")
    )


def test_critic_drops_near_duplicates_and_rewordings_of_test_items(arithmetic_critic_spec):
    test = [Item(question=TEST_ITEM, answer="-30")]
    screen = Screen(
        test, [Item(question="What is 40 + 2 =", answer="42")], embed, arithmetic_critic_spec
    )
    candidates = [
        _candidate("Compute 40 + 2 =", "42"),  # rewords an earlier cycle's item
        _candidate("What is 17 + 5 =", "22"),  # new
        _candidate("Please work out 17 + 5 =", "22"),  # rewords the one just accepted
        _candidate("Calculate: 23 - 60 + 7 =", "-30"),  # rewords a test item
        _candidate("What is 17 + 6 =", "23"),  # new: other numbers
        _candidate("Calculate: 23 + 60 - 7 =", "76"),  # a test item's numbers, another problem
    ]
    _, verdicts = critique(candidates, numeric, arithmetic_expression, screen)
    assert [v.reason for v in verdicts] == [
        "duplicate",
        "accepted",
        "duplicate",
        "contaminated",
        "accepted",
        "accepted",
    ]
    assert "cosine" in verdicts[3].detail
