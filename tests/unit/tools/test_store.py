from failforward.tools.records import (
    Candidate,
    Failure,
    FailureCluster,
    GenerationPlan,
    Item,
    Lineage,
    PlanTarget,
    Verdict,
)
from failforward.tools.store import RunStore


def _candidate(q, cycle=1):
    return Candidate(
        question=q,
        answer="3",
        metadata={"num_terms": 2},
        lineage=Lineage(cycle=cycle, target_id=f"c{cycle}-k0", source="procedural", cluster_id=0),
    )


def test_examples_round_trip_with_lineage(tmp_path):
    store = RunStore(tmp_path / "run.db")
    store.save_examples(
        1,
        [_candidate("1 + 2 ="), _candidate("5 - 2 =")],
        [
            Verdict(accepted=True, reason="accepted", step="verify"),
            Verdict(accepted=False, reason="duplicate", step="dedupe"),
        ],
    )
    rows = store.examples(cycle=1)
    assert [r["question"] for r in rows] == ["1 + 2 =", "5 - 2 ="]
    assert rows[0]["lineage"]["target_id"] == "c1-k0" and rows[0]["metadata"] == {"num_terms": 2}
    assert [r["question"] for r in store.examples(accepted=True)] == ["1 + 2 ="]
    assert store.verdict_counts(1) == {"accepted": 1, "duplicate": 1}
    assert store.candidates(1) == [_candidate("1 + 2 ="), _candidate("5 - 2 =")]


def test_rewriting_a_cycle_leaves_no_duplicates(tmp_path):
    store = RunStore(tmp_path / "run.db")
    verdict = Verdict(accepted=True, reason="accepted", step="verify")
    for _ in range(2):  # a node re-run after a crash writes the same cycle again
        store.save_examples(1, [_candidate("1 + 2 =")], [verdict])
    store.save_examples(2, [_candidate("4 + 4 =", cycle=2)], [verdict])
    assert len(store.examples()) == 2


def test_eval_items_failures_clusters_plans_metrics(tmp_path):
    path = tmp_path / "run.db"
    store = RunStore(path)
    store.save_eval_items("test", [Item(question="1 + 1 =", answer="2", metadata={"num_terms": 2})])
    failure = Failure(question="9 - 3 =", expected="6", output="The answer is 5", extracted="5")
    store.save_failures(0, [failure])
    assert store.failure_clusters(0) == [None]
    store.save_clusters(
        1,
        [FailureCluster(cluster_id=0, name="x", size=1, knobs={"num_terms": (2, 3)})],
        [0],
        failures_cycle=0,
    )
    assert store.failure_clusters(0) == [0]
    plan = GenerationPlan(
        cycle=1,
        mode="targeted",
        targets=[PlanTarget(target_id="t", name="x", description="d", budget=4)],
    )
    store.save_plan(plan)
    store.save_metrics(0, {"test_acc": 0.25})
    store.set_meta("settings", {"seed": 3})
    store.close()

    reopened = RunStore(path)
    assert reopened.eval_items("test")[0].metadata == {"num_terms": 2}
    assert reopened.failures(0) == [failure]
    assert reopened.clusters(1)[0].knobs == {"num_terms": (2, 3)}
    assert reopened.plans() == [plan]
    assert reopened.metrics() == {0: {"test_acc": 0.25}}
    assert reopened.get_meta("settings") == {"seed": 3}


def test_llm_call_cache_and_usage(tmp_path):
    store = RunStore(tmp_path / "run.db")
    key = store.call_key("teacher", "m", {"prompt": "p"})
    assert store.cached_call(key) is None
    store.save_call(
        key, "teacher", "m", {"prompt": "p"}, "reply", {"input_tokens": 5, "output_tokens": 2}
    )
    assert store.cached_call(key) == "reply"
    assert store.call_key("teacher", "m", {"prompt": "q"}) != key
    assert store.token_usage() == {"teacher": {"calls": 1, "prompt": 5, "completion": 2}}


def test_scores_sources_and_refined_rows(tmp_path):
    store = RunStore(tmp_path / "run.db")
    original = _candidate("1 + 2 =")
    refined = original.model_copy(
        update={
            "lineage": original.lineage.model_copy(
                update={"source": "refined", "original": {"answer": "three", "reason": "x"}}
            )
        }
    )
    store.save_examples(
        1,
        [original, refined],
        [
            Verdict(accepted=False, reason="unparseable", step="verify", scores={"verify": 0.0}),
            Verdict(accepted=True, reason="accepted", step="judge", scores={"judge.clear": 4}),
        ],
    )
    rows = store.examples(cycle=1)
    assert [r["scores"] for r in rows] == [{"verify": 0.0}, {"judge.clear": 4}]
    assert rows[1]["lineage"]["original"] == {"answer": "three", "reason": "x"}
    assert store.verdicts_by_source(1) == {
        "procedural": {"unparseable": 1},
        "refined": {"accepted": 1},
    }
    assert store.candidates(1) == [original]  # the critic makes its rewrites again on a resume


def test_a_run_db_from_before_scores_existed_still_opens(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "run.db")
    db.execute(
        "CREATE TABLE examples (id INTEGER PRIMARY KEY AUTOINCREMENT, cycle INTEGER NOT NULL,"
        " target_id TEXT NOT NULL, cluster_id INTEGER, source TEXT NOT NULL, question TEXT NOT"
        " NULL, solution TEXT NOT NULL, answer TEXT NOT NULL, metadata TEXT NOT NULL, lineage"
        " TEXT NOT NULL, accepted INTEGER NOT NULL, reason TEXT NOT NULL, step TEXT NOT NULL,"
        " detail TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO examples VALUES (1, 1, 't', 0, 'llm', 'q', '', 'a', '{}',"
        ' \'{"cycle": 1, "target_id": "t", "source": "llm"}\', 1, \'accepted\', \'verify\', \'\')'
    )
    db.commit()
    db.close()
    store = RunStore(tmp_path / "run.db")
    assert store.examples()[0]["scores"] == {}
    store.save_examples(
        2,
        [_candidate("4 + 4 =", cycle=2)],
        [Verdict(accepted=True, reason="accepted", step="verify", scores={"verify": 1.0})],
    )
    assert store.examples(cycle=2)[0]["scores"] == {"verify": 1.0}


def test_llm_tables_count_tokens_cost_and_faults_per_role_and_cycle(tmp_path):
    from failforward.tools.report.report import llm_tables

    store = RunStore(tmp_path / "run.db")
    for i, tag in enumerate(["c1-k0/0", "c1-k0/1", "c2-k1/0"]):
        request = {"prompt": f"p{i}", "tag": tag}
        usage = {"input_tokens": 1_000_000, "output_tokens": 500_000}
        key = store.call_key("teacher", "m", request)
        store.save_call(key, "teacher", "m", request, "r", usage)
    store.save_call_fault("teacher", {"tag": "c1-k0/0"}, "rate_limited", "429", final=False)
    store.save_call_fault("critic", {"tag": "c2-j/0"}, "timeout", "no reply", final=False)
    store.save_call_fault("critic", {"tag": "c2-j/0"}, "timeout", "no reply", final=True)
    store.set_meta("endpoints", {"teacher": {"prompt_price": 0.5, "completion_price": 2.0}})
    text = "\n".join(llm_tables(store))
    # 3M prompt tokens at 0.5 + 1.5M completion tokens at 2.0 per million
    assert "| teacher | 3 | 3000000 | 1500000 | 4.5000 | 1 (rate_limited 1) | 0 |" in text
    assert "| critic | 0 | 0 | 0 | - | 1 (timeout 1) | 1 |" in text
    assert "| teacher | 1 | 2 | 2000000 | 1000000 | 3.0000 |" in text
    assert "| teacher | 2 | 1 | 1000000 | 500000 | 1.5000 |" in text
    assert "Requests lost after their retries (1" in text


def _tables(store) -> set[str]:
    rows = store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows} - {"sqlite_sequence"}


def test_each_concern_owns_its_tables_and_the_run_store_is_all_of_them(tmp_path):
    import re

    from failforward.tools.augment.store import AugmentStore
    from failforward.tools.store import (
        AnalysisTables,
        CallTables,
        EvalTables,
        ExampleTables,
        Store,
        TrainingTables,
    )

    owned = {}
    for part in (Store, EvalTables, AnalysisTables, ExampleTables, TrainingTables, CallTables):
        owned[part.__name__] = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", part.SCHEMA))
        opened = part(tmp_path / f"{part.__name__}.db")
        assert _tables(opened) == owned[part.__name__] | owned["Store"]  # its own and the base's
    everything = [t for tables in owned.values() for t in tables]
    assert len(everything) == len(set(everything)) == 14  # each table has one owner
    assert _tables(RunStore(tmp_path / "run.db")) == set(everything)
    # an augmentation's store has the call cache and its own tables, none of a loop run's
    augment = _tables(AugmentStore(tmp_path / "augment.db"))
    assert owned["CallTables"] <= augment and not augment & owned["ExampleTables"]
    # a client of one concern is handed that concern: the endpoint client writes calls only
    calls = CallTables(tmp_path / "calls.db")
    key = calls.call_key("teacher", "m", {"prompt": "p"})
    calls.save_call(key, "teacher", "m", {"prompt": "p"}, "r")
    assert calls.cached_call(key) == "r" and not hasattr(calls, "save_examples")
