"""The augmentation critic: form checks, faithfulness by embedding, near duplicates, parsing."""

import pytest

from failforward.agents.rephraser import (
    Rewrite,
    check_rewrites,
    clean,
    form_problem,
    parse_judgement,
    parse_rationales,
)
from failforward.tools.augment.pack import StyleSpec, load_augment_pack
from failforward.tools.embed.embeddings import embed
from failforward.tools.packs.pack import PackError

CHUNK = (
    "The bisect module keeps a list in sorted order without sorting it after each insertion. "
    "It uses a basic bisection algorithm: bisect_left finds the position where an item should "
    "be inserted to keep the list sorted, and insort inserts it there."
)


@pytest.fixture
def pack():
    return load_augment_pack("rephrase")


def _rewrite(text, style="encyclopedic", sample=0):
    return Rewrite("bisect", 0, style, sample, text)


def test_form_problems():
    style = StyleSpec(instruction="x", min_length_ratio=0.5, max_length_ratio=2.0)
    assert form_problem(CHUNK, "", style)[0] == "empty"
    assert form_problem(CHUNK, CHUNK[:120], style)[0] == "truncated"
    assert form_problem(CHUNK, "Too short.", style)[0] == "length"
    assert form_problem(CHUNK, (CHUNK + " ") * 3, style)[0] == "repetitive"
    padded = CHUNK + " " + " ".join(f"Item {i} is kept in order." for i in range(40))
    assert form_problem(CHUNK, padded, style)[0] == "length"
    assert form_problem(CHUNK, CHUNK, style) is None


def test_a_loop_is_repetitive_but_a_passage_that_repeats_itself_may_be_echoed():
    """The small local teacher loops ("The tree is evaluated by eval(), ..." to the token limit):
    rejected on form, so it gets one rewrite. A passage that itself repeats (a table of similar
    rows) may be rewritten with the same repeats."""
    style = StyleSpec(instruction="x", min_length_ratio=0.5, max_length_ratio=10.0)
    loop = "The module sorts lists. " + "The tree is evaluated by the eval function here. " * 8
    reason, detail = form_problem(CHUNK, loop, style)
    assert reason == "repetitive" and "8-word runs" in detail
    assert form_problem(CHUNK, loop + " The tree is", style)[0] == "repetitive"  # cut off too
    table = " ".join(f"Row {i}: the value is returned by the call unchanged." for i in range(8))
    assert form_problem(table, table, style) is None
    assert form_problem(CHUNK, loop, style, max_repeated=0.95) is None


def test_clean_drops_a_preamble_and_fences():
    assert clean("Here is the rewritten text:\nThe module sorts.") == "The module sorts."
    assert clean("```\nThe module sorts.\n```") == "The module sorts."


def test_a_planted_unrelated_rephrase_is_rejected_and_a_faithful_one_kept(pack):
    faithful = (
        "Python's bisect module maintains a list in sorted order so that it never has to be "
        "sorted again after an insertion. With a simple bisection algorithm, bisect_left locates "
        "the index at which a new item belongs, and insort places the item at that index."
    )
    unrelated = (
        "The tomato is the edible berry of the plant Solanum lycopersicum, commonly known as the "
        "tomato plant. The species originated in western South America and Central America, and "
        "it is widely grown in temperate climates across the world today."
    )
    rewrites = [_rewrite(faithful, sample=0), _rewrite(unrelated, sample=1)]
    check_rewrites({("bisect", 0): CHUNK}, rewrites, pack, embed)
    assert [r.reason for r in rewrites] == ["accepted", "unfaithful"]
    assert rewrites[0].similarity > 0.8 > 0.2 > rewrites[1].similarity


def test_near_duplicates_of_one_chunk_keep_the_first(pack):
    text = CHUNK.replace("keeps", "maintains")
    rewrites = [_rewrite(text, sample=0), _rewrite(text + " ", sample=1), _rewrite(CHUNK, "qa")]
    check_rewrites({("bisect", 0): CHUNK}, rewrites, pack, embed)
    assert [r.reason for r in rewrites] == ["accepted", "duplicate", "duplicate"]


def test_the_judge_can_reject_what_embeddings_accept(pack):
    rewrites = [_rewrite(CHUNK.replace("sorted", "ordered"))]
    check_rewrites({("bisect", 0): CHUNK}, rewrites, pack, embed, judge={rewrites[0].tag: False})
    assert rewrites[0].reason == "inconsistent"


def test_replies_are_parsed_or_refused():
    assert parse_judgement('ok {"consistent": false, "reason": "r"}') is False
    assert parse_judgement('{"consistent": "yes"}') is None and parse_judgement(None) is None
    assert parse_rationales('["Because a.", "So b."]', 2) == ["Because a.", "So b."]
    assert parse_rationales('["one"]', 2) is None and parse_rationales("no list", 1) is None


def test_the_shipped_pack_loads_and_a_broken_one_is_named(tmp_path):
    import shutil

    pack = load_augment_pack("rephrase")
    assert set(pack.spec.styles) == {"encyclopedic", "qa", "simplified", "tutorial"}
    folder = tmp_path / "bad"
    shutil.copytree(pack.directory, folder)
    text = (
        (folder / "augment.yaml")
        .read_text()
        .replace("max_length_ratio: 2.5", "max_length_ratio: 0.1", 1)
    )
    (folder / "augment.yaml").write_text(text)
    with pytest.raises(PackError, match=r"augment.yaml: styles.qa: .*min_length_ratio"):
        load_augment_pack(folder)
    (folder / "refine.jinja").unlink()
    (folder / "augment.yaml").write_text(pack.directory.joinpath("augment.yaml").read_text())
    with pytest.raises(PackError, match="refine.jinja: templates.refine: template file is missing"):
        load_augment_pack(folder)
