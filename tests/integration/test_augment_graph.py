"""The augmentation graph end to end against a scripted loopback endpoint: real LangGraph,
SQLite checkpointer, MiniLM embeddings; rewrites that are faithful, unrelated, cut off or
duplicated, and a resume that asks nothing again."""

import json
import re

import pytest

from failforward.app.augment import run_augment
from failforward.graph.settings import AugmentSettings
from failforward.tools.augment.corpus import split_sentences
from failforward.tools.augment.store import AugmentStore
from tests.fake_endpoint import FakeEndpoint

UNRELATED = (
    "The tomato is the edible berry of the plant Solanum lycopersicum. The species originated in "
    "western South America and Central America, and it is grown in temperate climates worldwide."
)


def _unrelated(chars: int) -> str:
    """Off-topic text of about ``chars`` characters that does not repeat itself (a repeat would
    be rejected as a loop before faithfulness is checked)."""
    sentences = [UNRELATED]
    while len(" ".join(sentences)) < chars:
        i = len(sentences)
        sentences.append(f"Variety number {i} of the tomato ripens in week {i}.")
    return " ".join(sentences)


def _passage(prompt: str) -> str:
    return re.search(r"<passage>\n(.*?)\n</passage>", prompt, re.DOTALL).group(1)


def _teacher(prompt: str) -> str:
    """Faithful rewrites for most styles; the qa style of two documents is unrelated text;
    the tutorial style is cut off (then fixed when asked to refine)."""
    if prompt.startswith("Here are the numbered sentences"):
        n = len(re.findall(r"^\d+\. ", prompt, re.MULTILINE))
        return json.dumps([f"This is reasoning {i}." for i in range(n)])
    passage = _passage(prompt)
    if "turned down" in prompt:  # refine: now a whole rewrite
        return "In short: " + passage
    if "questions a reader would ask" in prompt:
        if re.search(r'"(bisect|glob)"', prompt):  # as long as the passage, off topic
            return _unrelated(len(passage))
        return "In other words, " + passage  # the same as the simplified style's: a duplicate
    if "short tutorial" in prompt:
        return "Step one: " + passage[: len(passage) // 2].rstrip(".!?") + " and then"
    return "In other words, " + passage


@pytest.fixture
def corpus(tmp_path):
    from failforward.tools.augment.corpus import stdlib_docs

    docs = [
        d for d in stdlib_docs() if d.doc_id in ("bisect", "textwrap", "copy", "fnmatch", "glob")
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": d.doc_id, "text": d.text}) + "\n" for d in docs))
    return path


@pytest.mark.parametrize("mode", ["stitch", "stretch"])
def test_augment_end_to_end_and_resume(corpus, tmp_path, quiet_ui, mode):
    with FakeEndpoint(_teacher) as server:
        settings = AugmentSettings.from_options(
            corpus=str(corpus),
            mode=mode,
            styles="qa,simplified,tutorial",
            heldout=0.2,
            llm=f"teacher={server.base_url}",
            llm_model="m",
            runs_dir=str(tmp_path / "runs"),
        )
        run_id, folder = run_augment(settings, ui=quiet_ui)
        asked = len(server.requests)
        again_id, _ = run_augment(
            AugmentSettings(runs_dir=str(tmp_path / "runs")), quiet_ui, run_id
        )
    assert again_id == run_id and len(server.requests) == asked  # finished: nothing re-sent

    store = AugmentStore(folder / "augment.db")
    chunks, heldout = store.chunks(), store.chunks("heldout")
    assert len(heldout) == 1 and not {d for d, _ in chunks} & {d for d, _ in heldout}
    reasons = {}
    for r in store.rewrites():
        reasons.setdefault((r.style, r.refined), set()).add(r.reason.split(" ")[0])
    # The simplified rewrite repeats the qa one word for word, unless that was the planted
    # unrelated text: then it is the chunk's first faithful rewrite and is kept.
    for r in store.rewrites():
        if r.style == "simplified":
            planted = r.doc_id in ("bisect", "glob")
            assert r.reason == ("accepted" if planted else "duplicate"), (r.doc_id, r.reason)
    assert reasons[("qa", False)] == {"accepted", "unfaithful"}, reasons  # planted: unfaithful
    assert reasons[("tutorial", False)] == {"truncated"}  # cut off, then refined...
    assert reasons[("tutorial", True)] == {"accepted"}  # ...and the rewrite passes

    rows = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    real = [r for r in rows if r["kind"] == "real"]
    assert sorted(r["text"] for r in real) == sorted(chunks.values())  # every real chunk, once
    heldout_text = next(iter(heldout.values()))
    assert not any(heldout_text[:200] in r["text"] for r in rows)  # held out stays out
    synthetic = [r for r in rows if r["kind"] != "real"]
    assert synthetic and {r["kind"] for r in synthetic} == {mode}
    for row in synthetic:
        doc, index = row["source_id"].rsplit("#", 1)
        source = chunks[(doc, int(index))]
        if mode == "stitch":  # the source chunk, then its accepted rewrites
            assert row["text"].startswith(source + "\n\n") and "tomato" not in row["text"]
            assert set(row["styles"]) <= {"qa", "simplified", "tutorial"}
        else:  # each source sentence followed by its rationale, in order
            assert row["text"].count("This is reasoning") == len(
                [s for p in source.split("\n\n") for s in split_sentences(p)]
            )
            stripped = re.sub(r" This is reasoning \d+\.", "", row["text"])
            assert stripped == "\n\n".join(
                " ".join(split_sentences(p)) for p in source.split("\n\n") if p.strip()
            )
    report = (folder / "report.md").read_text()
    assert "## Critic verdicts" in report and "unfaithful" in report
    assert "## LLM calls per role" in report


def test_augment_needs_a_teacher_and_names_a_bad_mode(tmp_path, quiet_ui):
    with pytest.raises(ValueError, match="needs a teacher endpoint"):
        run_augment(AugmentSettings(runs_dir=str(tmp_path / "runs")), quiet_ui)
    with pytest.raises(ValueError, match="^mode must be rephrase, stitch or stretch, got 'blend'$"):
        run_augment(AugmentSettings(mode="blend", runs_dir=str(tmp_path / "runs")), quiet_ui)
    with pytest.raises(ValueError, match="^format must be jsonl or parquet, got 'csv'$"):
        run_augment(AugmentSettings(format="csv", runs_dir=str(tmp_path / "runs")), quiet_ui)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow  # 25 s; augment's graph and resume stay in the fast suite
def test_augment_eval_trains_equal_budgets_and_scores_held_out_text(corpus, tmp_path, quiet_ui):
    from failforward.app.augment_eval import SCALES, augment_eval, implied_ratio, render

    with FakeEndpoint(_teacher) as server:
        settings = AugmentSettings.from_options(
            corpus=str(corpus),
            mode="stitch",
            styles="qa,simplified",
            llm=f"teacher={server.base_url}",
            llm_model="m",
            runs_dir=str(tmp_path / "runs"),
        )
        _, folder = run_augment(settings, ui=quiet_ui)
    results = augment_eval(folder, "tiny", tokens=4096, block=64, lr=1e-3, ui=quiet_ui)
    arms = results["arms"]
    assert set(arms) == {"real-only", "real+rephrases", "real+megadocs"}
    assert {a["tokens"] for a in arms.values()} == {4096} and {
        a["steps"] for a in arms.values()
    } == {8}
    for arm in arms.values():  # training on the corpus moved the held-out loss
        assert arm["heldout_loss"] < results["base_heldout_loss"]
    curve = [r["heldout_loss"] for r in results["real_only_curve"]]
    assert curve[-1] < curve[0]  # more real tokens, lower held-out loss
    report = (folder / "augment_eval.md").read_text()
    megadocs = arms["real+megadocs"]
    assert 0.0 < megadocs["synthetic_share"] < 1.0 and arms["real-only"]["synthetic_share"] == 0
    assert (
        f"| real+megadocs | {megadocs['documents']} | {megadocs['synthetic_share']:.0%} |" in report
    )
    assert "| 4096 | 8 |" in report
    assert not (folder / "augment_eval.partial.json").exists()

    # Stopped while training its third arm, the same command trains only what was left.
    class StopAt(type(quiet_ui)):
        def __init__(self, stop_at):
            super().__init__(quiet_ui.console)
            self.labels, self.stop_at = [], stop_at

        def task(self, description, total):
            self.labels.append(description)
            if len(self.labels) == self.stop_at:
                raise KeyboardInterrupt
            return super().task(description, total)

    (folder / "augment_eval.json").unlink()
    with pytest.raises(KeyboardInterrupt):
        augment_eval(folder, "tiny", tokens=4096, block=64, lr=1e-3, ui=StopAt(3))
    assert not (folder / "augment_eval.json").exists()
    again = StopAt(0)
    resumed = augment_eval(folder, "tiny", tokens=4096, block=64, lr=1e-3, ui=again)
    first_two = {r["tokens"] for r in results["real_only_curve"][:2]}
    assert len(again.labels) == len(SCALES) + 2 - 2  # the two finished arms were not retrained
    assert not any(f": {t} tokens" in label and "real-only" in label
                   for label in again.labels for t in first_two)  # fmt: skip
    for row, first in zip(resumed["real_only_curve"], results["real_only_curve"], strict=True):
        assert row["heldout_loss"] == pytest.approx(first["heldout_loss"], rel=1e-4)
    assert resumed["arms"]["real+megadocs"]["heldout_loss"] == pytest.approx(
        arms["real+megadocs"]["heldout_loss"], rel=1e-4
    )
    # A different budget does not reuse the stopped run's arms.
    with pytest.raises(KeyboardInterrupt):
        augment_eval(folder, "tiny", tokens=4096, block=64, lr=1e-3, ui=StopAt(2))
    other = StopAt(0)
    augment_eval(folder, "tiny", tokens=2048, block=64, lr=1e-3, ui=other)
    assert len(other.labels) == len(SCALES) + 2

    # the ratio arithmetic: halfway (in log-tokens) between 1000 and 4000 tokens is 2000
    assert implied_ratio([(1000, 3.0), (4000, 2.0)], 2.5, 1000) == (pytest.approx(2.0), "")
    assert implied_ratio([(1000, 3.0), (4000, 2.0)], 1.5, 1000) == (4.0, "censored")
    # SmolLM2 on 7,770 real tokens: the loss rose after 10k tokens, so no tokens-needed reading
    rising = [(5000, 2.739), (10000, 2.723), (20000, 2.819), (40000, 3.408)]
    assert implied_ratio(rising, 2.813, 20000) == (None, "rising")
    base = {"documents": 24, "synthetic_share": 0.0, "tokens": 20000, "steps": 20}
    table = render(
        {"student": "smollm2", "budget": 20000, "block": 128, "lr": 1e-4,
         "heldout_documents": 8, "base_heldout_loss": 2.911,
         "real_only_curve": [{"tokens": t, "heldout_loss": v} for t, v in rising],
         "arms": {"real-only": {**base, "heldout_loss": 2.819},
                  "real+megadocs": {**base, "synthetic_share": 0.16, "heldout_loss": 2.813,
                                    "loss_vs_real_only": -0.006, "implied_ratio": None,
                                    "ratio_note": "rising"}}}
    )  # fmt: skip
    assert "| real+megadocs | 24 | 16% | 20000 | 20 | 2.8130 | -0.0060 | n/a (real-only" in table


def _critic_for(corpus):
    """The LLM judge: rewrites of fnmatch's chunks are called inconsistent; its replies about
    textwrap's are unreadable (those rewrites are not rejected for it)."""
    from failforward.tools.augment.corpus import chunk, load_corpus

    pieces = {d.doc_id: set(chunk(d.text, 400)) for d in load_corpus(str(corpus))}

    def critic(prompt: str) -> str:
        passage = _passage(prompt)
        if passage in pieces["fnmatch"]:
            return '{"consistent": false, "reason": "it adds a claim"}'
        if passage in pieces["textwrap"]:
            return "I think it is fine."
        return 'Verdict: {"consistent": true, "reason": "all supported"}'

    return critic


def test_the_llm_judge_rejects_what_it_finds_inconsistent_and_parquet_output(
    corpus, tmp_path, quiet_ui
):
    import shutil

    import pyarrow.parquet as pq
    import yaml

    from failforward.tools.augment.pack import PACKS_DIR

    pack = tmp_path / "judged"
    shutil.copytree(PACKS_DIR / "rephrase", pack)
    spec = yaml.safe_load((pack / "augment.yaml").read_text())
    spec["critic"]["judge"] = True
    (pack / "augment.yaml").write_text(yaml.safe_dump(spec))
    with FakeEndpoint(_teacher) as teacher, FakeEndpoint(_critic_for(corpus)) as critic:
        settings = AugmentSettings.from_options(
            corpus=str(corpus),
            pack=str(pack),
            mode="rephrase",
            styles="simplified",
            heldout=0.0,
            llm=f"teacher={teacher.base_url},critic={critic.base_url}",
            llm_model="m",
            format="parquet",
            runs_dir=str(tmp_path / "runs"),
        )
        _, folder = run_augment(settings, ui=quiet_ui)
        judged = list(critic.requests)
    store = AugmentStore(folder / "augment.db")
    rewrites = store.rewrites()
    assert len(judged) == len(rewrites)  # every faithful-by-embedding rewrite went to the judge
    for r in rewrites:
        assert r.reason == ("inconsistent" if r.doc_id == "fnmatch" else "accepted"), r
    assert any(r.doc_id == "textwrap" for r in rewrites)  # unreadable verdict: kept

    table = pq.read_table(folder / "corpus.parquet").to_pylist()
    assert not (folder / "corpus.jsonl").exists()
    assert {r["kind"] for r in table} == {"real", "rephrase"}
    made = {r["source_id"] for r in table if r["kind"] == "rephrase"}
    assert made and not any(s.startswith("fnmatch#") for s in made)
    assert all(set(r) == {"text", "kind", "source_id", "styles"} for r in table)
