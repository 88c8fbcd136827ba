"""Loop cycles on the sql and gsm packs with the tiny student and no endpoint (and one sql
cycle with a scripted endpoint): real sources, solvers and verifiers."""

import shutil

import pytest
import yaml

from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import PACKS_DIR, load_pack
from failforward.tools.packs.sources import normalize
from failforward.tools.store import RunStore
from failforward.tools.verify.sqlcheck import run_readonly


def _small_pack(tmp_path, name, max_new_tokens, per_call=None):
    """A copy of a shipped pack with small probe/test sets and short replies (the tiny model
    writes noise). With ``per_call``, the teacher's whole script comes in one request and the
    judge is off: the teacher's items are what is under test."""
    pack = tmp_path / f"small-{name}"
    shutil.copytree(PACKS_DIR / name, pack)
    spec = yaml.safe_load((pack / "pack.yaml").read_text())
    spec["probe"]["size"], spec["test"]["size"] = 12, 24
    spec["student"]["max_new_tokens"] = max_new_tokens
    if per_call is not None:
        spec["generator"]["per_call"] = per_call
        spec["critic"]["judge"] = False
    (pack / "pack.yaml").write_text(yaml.safe_dump(spec))
    return pack


def _settings(pack, tmp_path, **extra):
    options = dict(student="tiny", llm="none", cycles=1, objective="sft")
    return RunSettings.from_options(
        pack=str(pack), runs_dir=str(tmp_path / "runs"), **{**options, **extra}
    )


@pytest.mark.slow  # 29 s; executed SQL stays in the fast suite (the LLM-written SQL test)
def test_a_sql_cycle_trains_on_executed_template_instances(tmp_path, quiet_ui):
    pack = _small_pack(tmp_path, "sql", max_new_tokens=24)
    run_id = run_loop(_settings(pack, tmp_path, budget=12), ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    test = {normalize(i.question) for i in store.eval_items("test")}
    accepted = store.examples(cycle=1, accepted=True)
    assert accepted and store.metrics()[1]["sft_rows"] == len(accepted)
    for row in accepted:
        assert row["source"] == "procedural" and normalize(row["question"]) not in test
        assert run_readonly(pack / "clinical.db", row["answer"]).rows  # gold SQL runs, has rows
        assert isinstance(row["metadata"]["joins"], int)
    rejected = {r["reason"] for r in store.examples(cycle=1, accepted=False)}
    # template SQL itself always verifies; draws past the budget are surplus
    assert rejected <= {"contaminated", "duplicate", "surplus"}
    assert len(accepted) <= 12
    assert sorted(store.metrics()) == [0, 1]
    assert (tmp_path / "runs" / run_id / "checkpoints" / "cycle-1" / "student").is_dir()


# What the scripted teacher writes for every generation request: a mix the critic must sort out.
WRITTEN = [
    ("How many trials are in phase 3?", "SELECT COUNT(*) FROM trials WHERE phase = 3", "accepted"),
    ("Which sites are in Sweden?", "SELECT name FROM sites WHERE country = 'Sweden'", "accepted"),
    ("How many patients are there?", "SELECT COUNT(*) FROM patient", "sql_error"),
    ("Which trials are phase 9?", "SELECT code FROM trials WHERE phase = 9", "sql_empty"),
    ("Remove the trials.", "DROP TABLE trials", "sql_refused"),
    ("List sponsors.", "SELECT name FROM sponsors; DELETE FROM sponsors", "sql_refused"),
    ("Attach a file.", "ATTACH DATABASE '/tmp/x.db' AS x", "sql_refused"),
    (
        "Count forever.",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n",
        "sql_timeout",
    ),
]


def _script(prompt: str) -> str:
    import json

    if "Write" in prompt and "new questions" in prompt:  # generator.jinja
        n = int(prompt.split("Write ")[1].split()[0])
        items = [{"question": q, "solution": "one line", "answer": sql} for q, sql, _ in WRITTEN]
        assert n == len(items)
        return json.dumps(items)
    return "not JSON"  # any other role: unusable, and handled as such


def test_llm_written_sql_is_executed_and_sorted_by_the_critic(tmp_path, quiet_ui):
    from tests.fake_endpoint import FakeEndpoint

    pack = _small_pack(tmp_path, "sql", max_new_tokens=16, per_call=len(WRITTEN))
    with FakeEndpoint(_script) as stub:
        settings = _settings(
            pack,
            tmp_path,
            llm=f"teacher={stub.base_url}",
            llm_model="stub",
            budget=len(WRITTEN),
            plan="uniform",  # one target, so one request for all eight
        )
        run_id = run_loop(settings, ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    rows = store.examples(cycle=1)
    assert all(r["source"] == "llm" for r in rows)
    assert {r["question"]: r["reason"] for r in rows} == {q: why for q, _, why in WRITTEN}
    assert len(stub.requests) == 1
    with sqlite3_connect(pack / "clinical.db") as db:  # nothing was written to the database
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 12
        assert db.execute("SELECT COUNT(*) FROM sponsors").fetchone()[0] == 6
    assert store.metrics()[1]["sft_rows"] == 2


def sqlite3_connect(path):
    import sqlite3

    return sqlite3.connect(path)


@pytest.mark.slow  # 21 s; worked solutions checked by running them stay fast (word problems)
def test_a_gsm_cycle_trains_on_worked_solutions(tmp_path, quiet_ui):
    pack = _small_pack(tmp_path, "gsm", max_new_tokens=24)
    run_id = run_loop(_settings(pack, tmp_path, budget=8), ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    accepted = store.examples(cycle=1, accepted=True)
    assert accepted
    assert all(r["solution"].rstrip().endswith(f"#### {r['answer']}") for r in accepted)
    assert store.metrics()[1]["sft_rows"] == len(accepted)
    # the SFT rows were whole solutions: many more tokens than answer-only rows would be
    assert store.metrics()[1]["sft_tokens"] > 40 * len(accepted)


# The scripted teacher's word problems for gsm: programs the sandbox must run, or refuse.
PROBLEMS = [
    ("Ann has 3 bags of 4 apples. How many apples?", "answer = 3 * 4", "12", "accepted"),
    ("Bo reads 5 pages a day for 6 days. How many pages?", "answer = 5 * 6", "31", "wrong_answer"),
    ("Cy waits forever. How long?", "while True:\n    pass", "1", "sandbox_timeout"),
    ("Di opens a socket. How many?", "import socket\nanswer = 1", "1", "sandbox_forbidden"),
    ("Ed counts 2 and 2. How many?", "answer = 2 + ", "4", "sandbox_error"),
    ("Flo has 7 pens and gives 2 away. How many left?", "", "5", "unverifiable"),
]


def _gsm_script(prompt: str) -> str:
    import json

    if "new word problems" not in prompt:
        return "not JSON"
    items = []
    for question, program, answer, _ in PROBLEMS:
        solution = f"Working.\n#### {answer}"
        if program:
            solution += f"\n```python\n{program}\n```"
        items.append({"question": question, "solution": solution, "answer": answer})
    return json.dumps(items)


def test_llm_written_word_problems_are_checked_by_running_their_programs(tmp_path, quiet_ui):
    from tests.fake_endpoint import FakeEndpoint

    pack = _small_pack(tmp_path, "gsm", max_new_tokens=16, per_call=len(PROBLEMS))
    with FakeEndpoint(_gsm_script) as stub:
        settings = _settings(
            pack,
            tmp_path,
            llm=f"teacher={stub.base_url}",
            llm_model="stub",
            budget=len(PROBLEMS),
            plan="uniform",
        )
        run_id = run_loop(settings, ui=quiet_ui)
    store = RunStore(tmp_path / "runs" / run_id / "run.db")
    verdicts = {r["question"]: r["reason"] for r in store.examples(cycle=1)}
    assert verdicts == {q: why for q, _, _, why in PROBLEMS}
    # the student is trained on the prose and the final line, not on the program
    (row,) = store.examples(cycle=1, accepted=True)
    assert row["question"] == PROBLEMS[0][0] and store.metrics()[1]["sft_rows"] == 1
    taught = load_pack(str(pack)).completion(row["question"], row["solution"], row["answer"])
    assert taught == "Working.\n#### 12"


def test_a_multi_skill_cycle_keeps_skills_from_sets_to_report(tmp_path, quiet_ui):
    """Two reasoning-gym skills (weights 2:1), the tiny student, one cycle: the stored sets are
    stratified by skill, the plan and the trained examples name their skill, and the report has
    accuracy per skill and the sets' composition next to the source's."""
    from collections import Counter

    from tests.unit.tools.test_skills import _spec, _write

    spec = _spec()
    spec["student"]["max_new_tokens"] = 8
    pack = _write(tmp_path, spec)
    run_id = run_loop(_settings(pack, tmp_path, budget=12), ui=quiet_ui)
    run_dir = tmp_path / "runs" / run_id
    store = RunStore(run_dir / "run.db")
    assert Counter(i.metadata["skill"] for i in store.eval_items("test")) == {
        "sums": 40,
        "products": 20,
    }
    accepted = store.examples(cycle=1, accepted=True)
    assert accepted and {r["metadata"]["skill"] for r in accepted} <= {"sums", "products"}
    targets = [t for p in store.plans() for t in p.targets]
    assert all(t.cell.get("skill") in ("sums", "products") for t in targets if t.cell)
    report = (run_dir / "report.md").read_text()
    per_skill = report.split("## Test accuracy per skill")[1].split("##")[0]
    assert "| sums | " in per_skill and "of 40 |" in per_skill and "of 20 |" in per_skill
    assert "## What the probe and test sets hold" in report
    assert "| skill | source | test | probe |" in report
    assert "| products | 33% | 33% | 33% |" in report
    from failforward.tools.report.plots import skill_figure

    figure = skill_figure(store)
    assert figure.startswith("<svg") and figure in (run_dir / "report.html").read_text()
