"""``failforward export``: accepted examples with lineage and the DPO pairs, in every format."""

import json

import pytest

from failforward.app.export import export_run
from failforward.tools.records import Candidate, Lineage, Verdict
from failforward.tools.store import RunStore


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "runs" / "r1"
    store = RunStore(folder / "run.db")
    candidates = [
        Candidate(
            question=q,
            answer=a,
            metadata={"num_terms": 2},
            lineage=Lineage(cycle=1, target_id="c1-k0", source="procedural", cluster_id=0),
        )
        for q, a in [("1 + 2 =", "3"), ("5 - 2 =", "3"), ("4 + 4 =", "8")]
    ]
    verdicts = [
        Verdict(
            accepted=True,
            reason="accepted",
            step="verify",
            scores={"verify": 1.0},
            verified_by="source",
        ),  # fmt: skip
        Verdict(accepted=False, reason="duplicate", step="dedupe"),
        Verdict(accepted=True, reason="accepted", step="verify", scores={"verify": 1.0}),
    ]
    store.save_examples(1, candidates, verdicts)
    ids = [e["id"] for e in store.examples(accepted=True)]
    store.save_pairs(
        1,
        [
            {
                "example_id": ids[1],
                "question": "4 + 4 =",
                "chosen": "8",
                "rejected": "44",
                "lineage": {"rejected": {"source": "student"}},
            }
        ],
    )
    store.close()
    return folder


def test_jsonl_keeps_lineage_and_verdicts(run_dir):
    out = export_run(run_dir, "jsonl")
    assert out == run_dir / "export"
    examples = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert [e["question"] for e in examples] == ["1 + 2 =", "4 + 4 ="]
    first = examples[0]
    assert first["lineage"]["target_id"] == "c1-k0" and first["cycle"] == 1
    assert (first["cluster_id"], first["source"], first["verdict"]) == (0, "procedural", "accepted")
    assert first["verified_by"] == "source"
    (pair,) = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert (pair["chosen"], pair["rejected"]) == ("8", "44")
    assert pair["example_id"] == examples[1]["id"]


def test_rejected_candidates_on_request(run_dir, tmp_path):
    out = export_run(run_dir, "jsonl", tmp_path / "all", rejected=True)
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert [r["verdict"] for r in rows] == ["accepted", "duplicate", "accepted"]


def test_parquet_and_hf_read_back(run_dir, tmp_path):
    from datasets import Dataset, load_from_disk

    out = export_run(run_dir, "parquet", tmp_path / "pq")
    examples = Dataset.from_parquet(str(out / "examples.parquet"))
    assert examples["question"] == ["1 + 2 =", "4 + 4 ="]
    assert json.loads(examples[0]["lineage"])["source"] == "procedural"
    saved = load_from_disk(str(export_run(run_dir, "hf", tmp_path / "hf")))
    assert set(saved) == {"examples", "pairs"} and saved["pairs"][0]["rejected"] == "44"


def test_bad_format_and_missing_run_are_named(run_dir, tmp_path):
    with pytest.raises(ValueError, match="--format must be one of jsonl, parquet, hf"):
        export_run(run_dir, "csv")
    with pytest.raises(FileNotFoundError, match="no run folder"):
        export_run(tmp_path / "nope", "jsonl")
