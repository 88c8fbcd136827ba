"""The rubric judge and refine against a scripted endpoint (the real one is in integration)."""

import json
import re

import pytest

from failforward.agents.critic import CriticLLM, Screen, critique
from failforward.agents.endpoints import CallFailed, ChatClient, EndpointConfig
from failforward.agents.judge import JudgeError, parse_judge, repair_prompt
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Candidate, Lineage
from failforward.tools.store import RunStore
from failforward.tools.verify.verifiers import arithmetic_expression, extract_answer, numeric
from tests.fakes import FakeSend

RUBRIC = {"correct": "right", "clear": "unambiguous", "on_task": "on task"}
GOOD = '{"scores": {"correct": 5, "clear": 4, "on_task": 5}, "pass": true, "issue": "none"}'


def _c(question, answer, source="llm"):
    return Candidate(
        question=question, answer=answer, lineage=Lineage(cycle=1, target_id="t", source=source)
    )


def _question(prompt: str) -> str:
    return re.search(r"Question: (.*)", prompt).group(1).strip()


@pytest.fixture
def pack():
    return load_pack("arithmetic")


def _client(tmp_path, script, store=None):
    fake = FakeSend(script=script)
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="critic-model", backoff=0)
    return ChatClient("critic", config, store or RunStore(tmp_path / "run.db"), send=fake)


def _critique(client, pack, candidates):
    extract = lambda text: extract_answer(text, pack.spec.answer.pattern)  # noqa: E731
    return critique(
        candidates,
        numeric,
        arithmetic_expression,
        Screen([], []),
        extract=extract,
        llm=CriticLLM(client, pack, cycle=1),
    )


def test_parse_judge_accepts_a_valid_verdict_and_keeps_rubric_scores_only():
    reply = parse_judge("Sure! " + GOOD[:-1] + ', "extra": 1}', RUBRIC)
    assert reply.passed and reply.scores == {"correct": 5, "clear": 4, "on_task": 5}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("I think it is fine.", "no JSON object"),
        ('{"scores": {"correct": 5,}, "pass": true}', "invalid JSON"),
        ('{"scores": {"correct": 5, "clear": 5, "on_task": 5}}', "pass"),
        ('{"scores": {"correct": 5}, "pass": true}', "clear, on_task"),
        ('{"scores": {"correct": 9, "clear": 5, "on_task": 5}, "pass": true}', "outside 1..5"),
        ('{"scores": {"correct": "high", "clear": 5, "on_task": 5}, "pass": true}', "scores"),
        ('{"scores": {"correct": 5, "clear": 5, "on_task": 5}, "pass": 1, "issue": "x"}', "issue"),
        ("[1, 2]", "no JSON object"),
    ],
)
def test_parse_judge_names_what_is_wrong(text, why):
    with pytest.raises(JudgeError, match=why):
        parse_judge(text, RUBRIC)


def test_repair_prompt_shows_the_bad_reply_and_the_error():
    prompt = repair_prompt("REQUEST", "not json", "no JSON object in the reply", RUBRIC)
    assert "REQUEST" in prompt and "not json" in prompt and "no JSON object" in prompt
    assert json.loads(prompt.splitlines()[-1])["scores"] == dict.fromkeys(RUBRIC, 5)


def test_valid_malformed_then_repaired_and_never_parsed(pack, tmp_path):
    def script(prompt):
        question = _question(prompt)
        repair = prompt.startswith("Your reply")
        if question == "1 + 1 =":
            return GOOD
        if question == "2 + 2 =":
            return GOOD if repair else "Looks right to me!"
        return "still no json"

    client = _client(tmp_path, script)
    candidates = [_c("1 + 1 =", "2"), _c("2 + 2 =", "4"), _c("3 + 3 =", "6")]
    _, verdicts = _critique(client, pack, candidates)
    assert [v.reason for v in verdicts] == ["accepted", "accepted", "judge_unparseable"]
    assert verdicts[0].scores == {
        "verify": 1.0,
        "judge.correct": 5,
        "judge.clear": 4,
        "judge.on_task": 5,
    }
    assert verdicts[1].step == "judge" and verdicts[1].accepted
    assert verdicts[2].step == "judge" and "after 3 request(s)" in verdicts[2].detail
    # 1 + (1 + 1 repair) + (1 + 2 repairs): bounded by judge_retries = 2
    assert client.transport.calls == 6

    again = _client(tmp_path, script, store=client.store)  # a resumed run: all from the cache
    assert [v.reason for v in _critique(again, pack, candidates)[1]] == [v.reason for v in verdicts]
    assert again.transport.calls == 0


def test_judge_only_sees_verified_candidates_and_can_only_reject(pack, tmp_path):
    def script(prompt):
        if _question(prompt) == "5 + 5 =":
            return GOOD.replace('"pass": true', '"pass": false').replace("none", "content")
        return GOOD

    client = _client(tmp_path, script)
    _, verdicts = _critique(client, pack, [_c("4 + 4 =", "9"), _c("5 + 5 =", "10")])
    assert [v.reason for v in verdicts] == ["wrong_answer", "judge_rejected"]
    assert [_question(p) for p in client.transport.prompts] == ["5 + 5 ="]


def test_no_reply_is_judge_unavailable_not_accepted(pack, tmp_path):
    def script(prompt):
        raise CallFailed("connection", "server went away", retryable=True)

    client = _client(tmp_path, script)
    _, verdicts = _critique(client, pack, [_c("1 + 1 =", "2")])
    assert verdicts[0].reason == "judge_unavailable" and not verdicts[0].accepted
    assert client.errors


def test_form_only_failures_are_refined_and_checked_again(pack, tmp_path):
    rewrites = {
        "6 + 1 =": '{"question": "6 + 1 =", "answer": "7"}',  # fixed
        "8 + 1 =": '{"question": "8 + 1 =", "answer": "10"}',  # rewritten wrong
        "9 + 1 =": "no idea",  # unusable
    }

    def script(prompt):
        if prompt.startswith("This practice problem"):
            return rewrites[_question(prompt)]
        if _question(prompt) == "7 - 2 =":  # ambiguity the judge flags as form
            return GOOD.replace('"pass": true', '"pass": false').replace("none", "form")
        return GOOD

    client = _client(tmp_path, script)
    rewrites["7 - 2 ="] = '{"question": "7 - 2 =", "answer": "5"}'
    candidates = [
        _c("6 + 1 =", "The answer is 7."),  # right once extracted: answer_format
        _c("8 + 1 =", "nine"),  # not a number: unparseable
        _c("9 + 1 =", "ten"),
        _c("7 - 2 =", "5"),
        _c("4 + 4 =", "9"),  # wrong: content, never refined
    ]
    out, verdicts = _critique(client, pack, candidates)
    reasons = [(c.lineage.source, v.reason) for c, v in zip(out, verdicts, strict=True)]
    assert reasons == [
        ("llm", "answer_format"),
        ("llm", "unparseable"),
        ("llm", "unparseable"),
        ("llm", "judge_form"),
        ("llm", "wrong_answer"),
        ("refined", "accepted"),
        ("refined", "wrong_answer"),
        ("refined", "judge_form"),  # the judge still flags it; a rewrite is never rewritten
    ]
    refined = [c for c in out if c.lineage.source == "refined"]
    assert refined[0].lineage.original["answer"] == "The answer is 7."
    assert refined[0].lineage.original["reason"] == "answer_format"
    assert "rewritten by refine" in verdicts[0].detail
    assert "no usable rewrite" in verdicts[2].detail
    assert not any("4 + 4" in p for p in client.transport.prompts if p.startswith("This"))

    again = _client(tmp_path, script, store=client.store)  # a resumed run: all from the cache
    out_again, verdicts_again = _critique(again, pack, candidates)
    assert again.transport.calls == 0
    assert out_again == out and verdicts_again == verdicts
