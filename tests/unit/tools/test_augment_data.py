"""Corpus loading, chunking and the assembly of rephrase / stitch / stretch corpora."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from failforward.tools.augment.assemble import (
    Row,
    assemble,
    mix,
    sentence_count,
    stitch,
    stretch,
    token_shares,
)
from failforward.tools.augment.corpus import (
    Document,
    chunk,
    load_corpus,
    split_sentences,
    stdlib_docs,
)


def test_the_default_corpus_is_the_standard_librarys_own_documentation():
    docs = load_corpus("stdlib-docs")
    assert len(docs) >= 100 and {"argparse", "random", "textwrap"} <= {d.doc_id for d in docs}
    assert all(len(d.text) >= 600 for d in docs)
    assert docs == stdlib_docs()  # the same documents every time
    assert "Command-line parsing library" in next(d.text for d in docs if d.doc_id == "argparse")


def test_jsonl_parquet_and_folder_corpora(tmp_path):
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"id": "a", "text": "Alpha."}) + "\n\n" + json.dumps({"text": "Beta."}) + "\n"
    )
    assert [(d.doc_id, d.text) for d in load_corpus(tmp_path / "c.jsonl")] == [
        ("a", "Alpha."),
        ("3", "Beta."),
    ]
    pq.write_table(pa.table({"text": ["One.", "Two."]}), tmp_path / "c.parquet")
    assert [d.text for d in load_corpus(tmp_path / "c.parquet")] == ["One.", "Two."]
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.md").write_text("# B")
    (folder / "sub" / "a.txt").write_text("A")
    (folder / "skip.py").write_text("x = 1")
    assert [d.doc_id for d in load_corpus(folder)] == ["b.md", "sub/a.txt"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"text": "ok"}\n{not json\n', "bad.jsonl:2: not JSON"),
        ("bad.jsonl", '{"body": "no text"}\n', "bad.jsonl:1: needs a string field 'text'"),
        ("bad.csv", "text\nx\n", "expected .jsonl, .parquet or a folder"),
        ("empty.jsonl", "\n", "no documents with text"),
    ],
)
def test_a_bad_corpus_is_named(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_corpus(tmp_path / name)
    with pytest.raises(ValueError, match="no such file"):
        load_corpus(tmp_path / "missing.jsonl")


def test_chunks_fit_and_keep_every_word_in_order():
    text = next(d.text for d in stdlib_docs() if d.doc_id == "argparse")
    pieces = chunk(text, max_tokens=120)
    assert len(pieces) > 3
    assert all(len(p) <= 480 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_sentences_split_at_ends_not_at_abbreviations():
    assert split_sentences("Use it, e.g. here. Then stop. 3 apples.") == [
        "Use it, e.g. here.",
        "Then stop.",
        "3 apples.",
    ]


def test_stitch_and_stretch_are_exact():
    source = "It rains. Roads get wet.\n\nCars slow down."
    assert stitch(source, ["R1.", "", "R2."]) == source + "\n\nR1.\n\nR2."
    stretched = stretch(source, ["Water falls.", "", "Drivers are careful."])
    expected = "It rains. Water falls. Roads get wet.\n\nCars slow down. Drivers are careful."
    assert stretched == expected
    assert stretch(source, []) == source  # no rationale: the source itself
    assert sentence_count(source) == 3
    with pytest.raises(ValueError, match="4 rationales for 3 sentences"):
        stretch(source, ["a", "b", "c", "d"])


def test_assemble_each_mode_with_lineage():
    docs = [Document("d1", "One. Two.", "t"), Document("d2", "Three.", "t")]
    rephrases = {"d1": [("qa", "Q: one? A: two."), ("simple", "One, two.")]}
    rationales = {"d2": ["Because three."]}
    rows = assemble(docs, rephrases, rationales, "rephrase")
    assert [(r.kind, r.source_id, r.styles) for r in rows] == [
        ("rephrase", "d1", ["qa"]),
        ("rephrase", "d1", ["simple"]),
    ]
    (megadoc,) = assemble(docs, rephrases, rationales, "stitch")
    assert megadoc.text == "One. Two.\n\nQ: one? A: two.\n\nOne, two." and megadoc.styles == [
        "qa",
        "simple",
    ]
    (stretched,) = assemble(docs, rephrases, rationales, "stretch")
    assert stretched.text == "Three. Because three." and stretched.source_id == "d2"
    with pytest.raises(ValueError, match="--mode 'blend'"):
        assemble(docs, rephrases, rationales, "blend")


def test_mix_reaches_the_real_share_and_keeps_every_real_document():
    real = [Document(str(i), "r" * 400, "t") for i in range(10)]
    synthetic = [Row("s" * 400, "stitch", str(i % 10)) for i in range(40)]
    rows = mix(real, synthetic, real_share=0.25, seed=1)
    assert sum(r.kind == "real" for r in rows) == 10
    assert token_shares(rows) == {"real": 0.25, "stitch": 0.75}
    assert [r.text for r in rows] == [r.text for r in mix(real, synthetic, 0.25, seed=1)]
    assert token_shares(mix(real, synthetic[:5], real_share=0.25))["stitch"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="--real-share"):
        mix(real, synthetic, real_share=0)
