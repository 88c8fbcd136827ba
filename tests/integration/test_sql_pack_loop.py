"""A loop cycle on the sql pack with the tiny student and no endpoint: the eval file, template
instances for training, the SQL solver and verifier, all for real."""

import shutil

import yaml

from graph.runner import run_loop
from graph.state import RunSettings
from tools.packs import PACKS_DIR
from tools.sources import normalize
from tools.sqlcheck import run_readonly
from tools.store import RunStore


def test_a_sql_cycle_trains_on_executed_template_instances(tmp_path, quiet_ui):
    pack = tmp_path / "small-sql"
    shutil.copytree(PACKS_DIR / "sql", pack)
    spec = yaml.safe_load((pack / "pack.yaml").read_text())
    spec["probe"]["size"], spec["test"]["size"] = 12, 24
    spec["student"]["max_new_tokens"] = 24  # the tiny model writes noise; keep it short
    (pack / "pack.yaml").write_text(yaml.safe_dump(spec))
    settings = RunSettings(
        pack=str(pack),
        student="tiny",
        llm="none",
        cycles=1,
        budget=12,
        objective="sft",
        runs_dir=str(tmp_path / "runs"),
    )
    run_id = run_loop(settings, ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    test = {normalize(i.question) for i in store.eval_items("test")}
    accepted = store.examples(cycle=1, accepted=True)
    assert accepted and store.metrics()[1]["sft_rows"] == len(accepted)
    for row in accepted:
        assert row["source"] == "procedural" and normalize(row["question"]) not in test
        assert run_readonly(pack / "clinical.db", row["answer"]).rows  # gold SQL runs, has rows
        assert isinstance(row["metadata"]["joins"], int)
    rejected = {r["reason"] for r in store.examples(cycle=1, accepted=False)}
    assert rejected <= {"contaminated", "duplicate"}  # template SQL itself always verifies
    assert sorted(store.metrics()) == [0, 1]
    assert (tmp_path / "runs" / run_id / "checkpoints" / "cycle-1" / "student").is_dir()
