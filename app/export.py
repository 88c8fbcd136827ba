"""``failforward export``: a run's training data with lineage, as JSONL, Parquet or a
``datasets.DatasetDict`` saved to disk.

Two tables: ``examples`` (the critic's accepted examples, or every candidate with ``--rejected``)
and ``pairs`` (the DPO pairs). Lineage, metadata and scores stay objects in JSONL and are JSON
strings in the columnar formats (their keys differ between rows and sources).
"""

from __future__ import annotations

import json
from pathlib import Path

from failforward.tools.stats.guard import students
from failforward.tools.store import RunStore

FORMATS = ("jsonl", "parquet", "hf")
_NESTED = ("metadata", "lineage", "scores")


def export_rows(store: RunStore, rejected: bool = False) -> dict[str, list[dict]]:
    """``{"examples": [...], "pairs": [...]}`` with every lineage field a row carries."""
    examples = [
        {
            "id": e["id"],
            "cycle": e["cycle"],
            "target_id": e["target_id"],
            "cluster_id": e["cluster_id"],
            "source": e["source"],
            "question": e["question"],
            "solution": e["solution"],
            "answer": e["answer"],
            "accepted": bool(e["accepted"]),
            "verdict": e["reason"],
            "verdict_step": e["step"],
            "verdict_detail": e["detail"],
            "verified_by": e["verified_by"],
            "scores": e["scores"],
            "metadata": e["metadata"],
            "lineage": e["lineage"],
        }
        for e in store.examples(accepted=None if rejected else True)
    ]
    pairs = [
        {k: p[k] for k in ("cycle", "example_id", "question", "chosen", "rejected", "lineage")}
        for p in store.pairs()
    ]
    return {"examples": examples, "pairs": pairs}


def _flat(rows: list[dict]) -> list[dict]:
    return [{k: json.dumps(v) if k in _NESTED else v for k, v in r.items()} for r in rows]


def export_run(run_dir: Path, fmt: str, out: Path | None = None, rejected: bool = False) -> Path:
    """Write the run's tables under ``out`` (default ``<run_dir>/export``); returns the folder."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not (run_dir / "run.db").is_file():
        raise FileNotFoundError(f"no run folder {run_dir} with a run.db")
    store = RunStore(run_dir / "run.db")
    tables = export_rows(store, rejected)
    found = students(store.metrics())
    store.close()
    out = Path(out) if out else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = {
        role: {
            "cycle": cycle,
            "checkpoint": str(found.checkpoint(run_dir.resolve(), cycle) or "base"),
        }
        for role, cycle in (("final", found.final), ("best", found.best))
    }
    (out / "students.json").write_text(json.dumps(checkpoints, indent=2))
    if fmt == "jsonl":
        for name, rows in tables.items():
            with open(out / f"{name}.jsonl", "w") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
        return out
    import datasets
    from datasets import Dataset, DatasetDict

    datasets.disable_progress_bars()
    splits = {name: Dataset.from_list(_flat(rows)) for name, rows in tables.items() if rows}
    if fmt == "parquet":
        for name, dataset in splits.items():
            dataset.to_parquet(str(out / f"{name}.parquet"))
        return out
    target = out / "hf"
    DatasetDict(splits).save_to_disk(str(target))
    return target
