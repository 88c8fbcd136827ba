"""The sql pack's data: a reproducible database, executed gold queries, template instances."""

import importlib.util
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from failforward.tools.packs.pack import PACKS_DIR, PackError, load_pack
from failforward.tools.packs.sources import TemplateSource
from failforward.tools.verify.sqlcheck import run_readonly

SQL = PACKS_DIR / "sql"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SQL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


def test_the_shipped_database_is_what_the_seeded_script_builds(tmp_path):
    built = _script("make_db").build(tmp_path / "clinical.db")
    assert _dump(built) == _dump(SQL / "clinical.db")
    with sqlite3.connect(built) as db:
        rows = {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("sponsors", "trials", "sites", "trial_sites", "patients", "adverse_events")
        }
        nulls = db.execute(
            "SELECT (SELECT COUNT(*) FROM trials WHERE end_date IS NULL),"
            " (SELECT COUNT(*) FROM patients WHERE withdrawn_date IS NULL),"
            " (SELECT COUNT(*) FROM adverse_events WHERE outcome IS NULL)"
        ).fetchone()
    assert 600 <= sum(rows.values()) <= 1500 and rows["patients"] >= 300
    assert all(n > 0 for n in nulls)  # every nullable column has NULLs to ask about


def test_every_eval_question_runs_and_the_file_is_reproducible(tmp_path):
    items = [json.loads(line) for line in (SQL / "questions.jsonl").read_text().splitlines()]
    assert len(items) >= 150
    assert len({i["question"] for i in items}) == len(items)
    for item in items:
        result = run_readonly(SQL / "clinical.db", item["answer"])
        assert result.reason == "ok" and result.rows, item
        if item["metadata"]["ordered"]:
            assert "ORDER BY" in item["answer"]
    categories = Counter(c for i in items for c in i["metadata"]["categories"])
    for needed in ("join", "aggregate", "filter", "date", "nulls", "order", "group"):
        assert categories[needed] >= 10, needed
    assert {i["metadata"]["joins"] for i in items} == {0, 1, 2, 3}
    again = _script("make_questions").main(tmp_path / "questions.jsonl")
    assert again.read_text() == (SQL / "questions.jsonl").read_text()


def test_template_source_fills_slots_escapes_and_drops_empty_answers(tmp_path):
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE sites (name TEXT, city TEXT);"
            "INSERT INTO sites VALUES ('St. Anne''s', 'Dublin'), ('North', 'Leeds');"
        )
    spec = tmp_path / "templates.yaml"
    spec.write_text(
        "slots:\n  site: SELECT name FROM sites\n  city: [Dublin, Paris]\n"
        "templates:\n"
        "  - {id: city_of, question: 'Where is {site}?',"
        " sql: \"SELECT city FROM sites WHERE name = '{site}'\", joins: 0}\n"
        "  - {id: in_city, question: 'Which sites are in {city}?',"
        " sql: \"SELECT name FROM sites WHERE city = '{city}'\", joins: 1, ordered: true}\n"
    )
    source = TemplateSource(spec, db)
    questions = sorted(i.question for i in source.items)
    # Paris has no site: the question would have no answer, so it is not an item.
    assert questions == ["Where is North?", "Where is St. Anne's?", "Which sites are in Dublin?"]
    quoted = next(i for i in source.items if "Anne" in i.question)
    assert run_readonly(db, quoted.answer).rows == [("Dublin",)]
    assert [i.metadata["template"] for i in source.sample(5, 0, {"min_joins": 1})] == [
        "in_city"
    ] * 5
    assert source.sample(3, seed=4) == source.sample(3, seed=4)
    assert (
        len({i.question for i in source.sample(3, seed=4)}) == 3
    )  # no repeats before the pool ends
    good = spec.read_text()
    spec.write_text(good.replace("joins: 1,", "joins: 1, categories: [null],"))
    with pytest.raises(ValueError, match=r"template in_city: categories must be text"):
        TemplateSource(spec, db)
    spec.write_text(good.replace("{city}?", "{town}?"))
    with pytest.raises(ValueError, match=r"template in_city: unknown slot\(s\) \['town'\]"):
        TemplateSource(spec, db)


def test_the_sql_pack_loads_and_its_train_source_is_the_templates():
    pack = load_pack("sql")
    assert pack.spec.train_source.kind == "templates"
    train = pack.make_source("train")
    evaluation = {i.question for i in pack.make_source().items}
    assert len(train.items) > len(evaluation)
    assert {i.question for i in train.items} >= evaluation  # eval items are template instances
    assert "adverse_events(" in pack.render("student", question="How many trials?")


def test_a_templates_source_without_its_database_is_named(tmp_path):
    broken = tmp_path / "sql"
    broken.mkdir()
    for f in SQL.iterdir():
        if f.is_file() and f.suffix != ".db":
            (broken / f.name).write_bytes(f.read_bytes())
    with pytest.raises(PackError, match=r"pack.yaml: train_source.database: no such file"):
        load_pack(str(broken))


def test_the_answer_pattern_reads_queries_not_prose():
    from failforward.tools.verify.verifiers import extract_answer

    answer = load_pack("sql").spec.answer

    def read(reply):
        return extract_answer(reply, answer.pattern, answer.pick)

    assert read("The trial with no end date:\n```sql\nSELECT code FROM trials;\n```") == (
        "SELECT code FROM trials"
    )
    cte = "WITH n AS (SELECT 1 AS i) SELECT i FROM n"
    assert read(f"Here:\n{cte}\n") == cte
    assert read("The trial with no end date is NW-204.") == ""
