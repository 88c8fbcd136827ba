"""Verification without a solver (self-consistency, the critic's check) against a scripted
endpoint, on docs/how-to/packs.md's minimal pack (a fixed JSONL, a numeric verifier, no
solver)."""

import re
import shutil
from collections import Counter

import pytest
import yaml

from failforward.agents.critic import CriticLLM, Screen, critique
from failforward.agents.endpoints import CallFailed, ChatClient, EndpointConfig
from failforward.agents.verification import parse_check
from failforward.tools.packs.pack import PACKS_DIR, load_pack
from failforward.tools.records import Candidate, Lineage
from failforward.tools.store import RunStore
from failforward.tools.verify.verifiers import extract_answer, numeric
from tests.fakes import FakeSend

MINIMAL = PACKS_DIR.parent / "examples" / "minimal-pack"
TRUE = {"How many minutes are in 3 hours?": 180, "How many metres are in 2 kilometres?": 2000}


def _c(question, answer):
    return Candidate(
        question=question, answer=answer, lineage=Lineage(cycle=1, target_id="t", source="llm")
    )


def _question(prompt: str) -> str:
    return re.search(r"Question: (.*)", prompt).group(1).strip()


def _pack(tmp_path, **critic):
    folder = tmp_path / "minimal"
    shutil.copytree(MINIMAL, folder)
    spec = yaml.safe_load((folder / "pack.yaml").read_text())
    spec["critic"] = critic
    (folder / "pack.yaml").write_text(yaml.safe_dump(spec))
    return load_pack(str(folder))


def _critique(tmp_path, pack, script, candidates, store=None, fail=None):
    fake = FakeSend(script=script, fail=fail)
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", backoff=0, retries=0)
    store = store or RunStore(tmp_path / "run.db")
    client = ChatClient("critic", config, store, send=fake)
    spec = pack.spec.answer
    _, verdicts = critique(
        candidates,
        numeric,
        None,
        Screen([], []),
        extract=lambda text: extract_answer(text, spec.pattern, spec.pick),
        llm=CriticLLM(client, pack, cycle=1),
    )
    return verdicts, fake


def _solver_that_says(answers):
    """The critic answers each question with the next of ``answers[question]`` in turn."""
    seen = Counter()

    def script(prompt):
        question = _question(prompt)
        seen[question] += 1
        options = answers[question]
        return f"Working it out.\n{options[(seen[question] - 1) % len(options)]}"

    return script


def test_self_consistency_accepts_what_enough_independent_answers_agree_with(tmp_path):
    pack = _pack(tmp_path)  # defaults: verify auto = consistency, 5 samples, 60% agree
    script = _solver_that_says(
        {
            "How many minutes are in 3 hours?": [180],  # all five agree
            "How many metres are in 2 kilometres?": [2000, 2000, 2000, 200, 20],  # three of five
            "How many seconds are in 2 minutes?": [120, 120, 60, 60, 12],  # two of five
        }
    )
    verdicts, fake = _critique(
        tmp_path,
        pack,
        script,
        [
            _c("How many minutes are in 3 hours?", "180"),
            _c("How many metres are in 2 kilometres?", "2000"),
            _c("How many seconds are in 2 minutes?", "120"),
        ],
    )
    assert fake.calls == 3 * 5  # five samples each, though each question's prompt is the same
    assert [v.reason for v in verdicts[:3]] == ["accepted", "accepted", "inconsistent"]
    assert [v.verified_by for v in verdicts[:3]] == ["consistency", "consistency", ""]
    assert [v.scores["agreement"] for v in verdicts[:3]] == [1.0, 0.6, 0.4]
    assert "2 of 5 independent answers agree with '120'" in verdicts[2].detail


def test_a_wrong_claim_is_rejected_when_the_critic_answers_otherwise(tmp_path):
    pack = _pack(tmp_path)
    script = _solver_that_says({"How many minutes are in 3 hours?": [180]})
    (verdict,) = _critique(tmp_path, pack, script, [_c("How many minutes are in 3 hours?", "190")])[
        0
    ]
    assert (verdict.accepted, verdict.reason, verdict.scores["agreement"]) == (
        False,
        "inconsistent",
        0.0,
    )
    assert "'180' x5" in verdict.detail


def test_samples_the_endpoint_did_not_answer_count_against_the_claim(tmp_path):
    pack = _pack(tmp_path)
    calls = Counter()

    def three_of_five_fail(prompt):
        calls[prompt] += 1
        return CallFailed("server_error", "500", retryable=False) if calls[prompt] > 2 else None

    claim = [_c("How many minutes are in 3 hours?", "180")]
    verdicts, _ = _critique(tmp_path, pack, lambda p: "180", claim, fail=three_of_five_fail)
    assert (verdicts[0].reason, verdicts[0].scores["agreement"]) == ("inconsistent", 0.4)
    down = lambda prompt: CallFailed("server_error", "500", retryable=False)  # noqa: E731
    verdicts, _ = _critique(tmp_path / "down", pack, lambda p: "180", claim, fail=down)
    assert verdicts[0].reason == "consistency_unavailable" and not verdicts[0].accepted


def test_a_resumed_critique_sends_no_sample_again(tmp_path):
    pack = _pack(tmp_path)
    store = RunStore(tmp_path / "run.db")
    script = _solver_that_says({"How many minutes are in 3 hours?": [180, 180, 180, 7, 7]})
    candidates = [_c("How many minutes are in 3 hours?", "180")]
    first, _ = _critique(tmp_path, pack, script, candidates, store)
    again, fake = _critique(tmp_path, pack, script, candidates, store)
    assert fake.calls == 0 and again == first


def test_check_accepts_only_a_confirmed_answer_its_own_answer_agrees_with(tmp_path):
    pack = _pack(tmp_path, verify="check")
    replies = {
        "How many minutes are in 3 hours?": '{"answer": "180", "correct": true, "reason": "ok"}',
        # says correct, but its own answer contradicts the claim
        "How many metres are in 2 kilometres?": '{"answer": 2000, "correct": true}',
        "How many seconds are in 2 minutes?": '{"answer": "120", "correct": false, "reason": "x"}',
        "How many hours are in 2 days?": "I think it is right.",  # unusable, even repaired
    }
    verdicts, fake = _critique(
        tmp_path,
        pack,
        lambda prompt: replies[_question(prompt)],
        [
            _c("How many minutes are in 3 hours?", "180"),
            _c("How many metres are in 2 kilometres?", "200"),
            _c("How many seconds are in 2 minutes?", "120"),
            _c("How many hours are in 2 days?", "48"),
        ],
    )
    assert [v.reason for v in verdicts] == [
        "accepted",
        "check_rejected",
        "check_rejected",
        "check_unparseable",
    ]
    assert verdicts[0].verified_by == "check" and "own answer '2000'" in verdicts[1].detail
    assert fake.calls == 3 + 1 + pack.spec.critic.judge_retries  # the bad reply was repaired


def test_verify_none_leaves_unvouched_answers_unverifiable(tmp_path):
    pack = _pack(tmp_path, verify="none")
    verdicts, fake = _critique(
        tmp_path, pack, lambda p: "180", [_c("How many minutes are in 3 hours?", "180")]
    )
    assert verdicts[0].reason == "unverifiable" and fake.calls == 0
    assert "no solver" in verdicts[0].detail


def test_the_strategy_and_agreement_are_stored_with_the_example(tmp_path):
    pack = _pack(tmp_path)
    store = RunStore(tmp_path / "run.db")
    candidates = [_c("How many minutes are in 3 hours?", "180")]
    script = _solver_that_says({"How many minutes are in 3 hours?": [180, 180, 180, 180, 1]})
    verdicts, _ = _critique(tmp_path, pack, script, candidates, store)
    store.save_examples(1, candidates, verdicts)
    (row,) = store.examples(cycle=1, accepted=True)
    assert row["verified_by"] == "consistency" and row["scores"]["agreement"] == 0.8


def test_parse_check_needs_a_boolean_verdict():
    assert parse_check('{"answer": 7, "correct": false}').answer == "7"
    with pytest.raises(ValueError, match="correct"):
        parse_check('{"answer": "7"}')
    with pytest.raises(ValueError, match="no JSON object"):
        parse_check("yes")


def test_the_verification_has_a_progress_bar_counting_its_requests(tmp_path):
    from contextlib import contextmanager

    bars = []

    @contextmanager
    def progress(label, total):
        bar = {"label": label, "total": total, "done": 0}
        bars.append(bar)

        class Handle:
            @staticmethod
            def advance(n=1):
                bar["done"] += n

        yield Handle

    pack = _pack(tmp_path)
    fake = FakeSend(script=lambda prompt: "180")
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", backoff=0)
    client = ChatClient("critic", config, RunStore(tmp_path / "run.db"), send=fake)
    llm = CriticLLM(client, pack, cycle=2, progress=progress)
    candidates = [_c("How many minutes are in 3 hours?", "180"), _c("Q2 hours?", "180")]
    critique(candidates, numeric, None, Screen([], []), extract=str.strip, llm=llm)
    assert bars == [{"label": "cycle 2: verify 2 answers by consistency", "total": 10, "done": 10}]
