"""The critic against planted bad candidates (a small run of benchmarks/critic_quality.py)."""

import importlib.util
from collections import Counter
from pathlib import Path

from failforward.agents.critic import Screen, critique
from failforward.tools.embed.embeddings import embed
from failforward.tools.packs.pack import load_pack
from failforward.tools.verify.verifiers import extract_answer, make_solver, make_verifier

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "critic_quality.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("critic_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_planted_bad_candidates_are_rejected_and_good_ones_kept():
    bench, pack = _benchmark(), load_pack("arithmetic")
    candidates, kinds, test = bench.build(pack, 300, seed=11)
    assert Counter(kinds) == {
        "good": 195,
        "wrong_answer": 60,
        "near_duplicate": 30,
        "reworded_test": 15,
    }
    spec = pack.spec
    _, verdicts = critique(
        candidates,
        make_verifier(spec.verifier, pack.make_source()),
        make_solver(spec.critic.solver),
        Screen(test, [], embed, spec.critic),
        extract=lambda text: extract_answer(text, spec.answer.pattern),
    )
    expected = {"good": "accepted", **bench.CAUGHT_BY}
    missed = [
        (kind, c.question, v.reason)
        for c, kind, v in zip(candidates, kinds, verdicts, strict=True)
        if v.reason != expected[kind]
    ]
    assert not missed
