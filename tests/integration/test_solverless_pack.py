"""A team's own pack without a solver trains: docs/how-to/packs.md's minimal pack (a fixed
JSONL, a numeric verifier, no solver) with one endpoint for every role, a scripted model on a
real loopback HTTP server, the tiny student and the real loop. The critic verifies the
teacher's answers by self-consistency; what it cannot confirm is not trained on."""

import json
import re

from failforward.app.runner import run_loop
from failforward.graph.settings import RunSettings
from failforward.tools.packs.pack import PACKS_DIR
from failforward.tools.store import RunStore
from tests.fake_endpoint import FakeEndpoint

MINIMAL = PACKS_DIR.parent / "examples" / "minimal-pack"
FACTORS = {"minutes": 60, "seconds": 60, "hours": 24, "days": 7}
UNITS = {"minutes": "hours", "seconds": "minutes", "hours": "days", "days": "weeks"}


def _truth(question: str) -> int:
    small, count, _ = re.match(r"How many (\w+) are in (\d+) (\w+)\?", question).groups()
    return FACTORS[small] * int(count)


def _model(prompt: str) -> str:
    """The teacher writes conversions, every third with a wrong answer; asked on its own (the
    critic's solve prompt), it gets every one right."""
    if prompt.startswith("You write practice questions"):
        n = int(prompt.split("Write ")[1].split()[0])
        seed = sum(map(ord, prompt)) % 50
        items = []
        for i in range(n):
            small = list(UNITS)[(seed + i) % 4]
            question = f"How many {small} are in {31 + seed + 7 * i} {UNITS[small]}?"
            answer = _truth(question) + (1 if i % 3 == 2 else 0)
            items.append({"question": question, "solution": "multiply", "answer": str(answer)})
        return json.dumps(items)
    if prompt.startswith("Answer the question below on your own"):
        question = re.search(r"Question: (.*)", prompt).group(1)
        return f"Multiply by the factor.\n{_truth(question)}"
    return "not used"


def test_the_minimal_pack_trains_with_one_endpoint_and_no_solver(tmp_path, quiet_ui):
    with FakeEndpoint(_model) as server:
        settings = RunSettings.from_options(
            pack=str(MINIMAL),
            runs_dir=str(tmp_path / "runs"),
            student="tiny",
            llm=server.base_url,
            llm_model="scripted",
            cycles=1,
            budget=12,
            objective="sft",
        )
        run_id = run_loop(settings, ui=quiet_ui)
    run_dir = tmp_path / "runs" / run_id
    store = RunStore(run_dir / "run.db")
    examples = store.examples(cycle=1)
    accepted = [r for r in examples if r["accepted"]]
    wrong = [r for r in examples if int(r["answer"]) != _truth(r["question"])]
    assert accepted and wrong
    assert all(int(r["answer"]) == _truth(r["question"]) for r in accepted)
    assert {r["verified_by"] for r in accepted} == {"consistency"}
    assert all(r["scores"]["agreement"] == 1.0 for r in accepted)
    assert {r["reason"] for r in wrong} == {"inconsistent"}
    metrics = store.metrics()[1]
    assert metrics["train_steps"] > 0 and metrics["sft_rows"] == len(accepted)
    assert (run_dir / "checkpoints" / "cycle-1" / "student").is_dir()
    before = [
        r["output"]
        for r in store.db.execute(
            "SELECT output FROM attempts WHERE cycle = 0 AND split = 'test' ORDER BY idx"
        )
    ]
    after = [
        r["output"]
        for r in store.db.execute(
            "SELECT output FROM attempts WHERE cycle = 1 AND split = 'test' ORDER BY idx"
        )
    ]
    assert len(before) == len(after) == 20 and before != after  # the student it tests changed
    report = (run_dir / "report.md").read_text()
    assert f"| consistency | {len(accepted)} |" in report
