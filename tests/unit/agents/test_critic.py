from failforward.agents.critic import Screen, critique
from failforward.tools.records import Candidate, Lineage
from failforward.tools.verifiers import arithmetic_expression, numeric


def _c(question, answer, source="llm"):
    return Candidate(
        question=question, answer=answer, lineage=Lineage(cycle=1, target_id="t", source=source)
    )


def _run(candidates, test=(), before=()):
    return critique(candidates, numeric, arithmetic_expression, Screen(list(test), list(before)))[1]


def test_reasons_in_order():
    candidates = [
        _c("2 + 3 =", "5"),  # right
        _c("2 + 4 =", "7"),  # wrong: the solver says 6
        _c("Who wrote Hamlet?", "x"),  # the solver cannot recompute it
        _c("2  +  3 =", "5"),  # same question as the first, other whitespace
        _c("9 - 1 =", "8"),  # in the test set
        _c("7 + 7 =", "14"),  # accepted in an earlier cycle
        _c("", "3"),
    ]
    verdicts = _run(candidates, test=["9 - 1 ="], before=["7 + 7 ="])
    assert [v.reason for v in verdicts] == [
        "accepted",
        "wrong_answer",
        "unverifiable",
        "duplicate",
        "contaminated",
        "duplicate",
        "empty",
    ]
    assert [v.accepted for v in verdicts] == [True] + [False] * 6
    assert "reference '6'" in verdicts[1].detail


def test_procedural_items_are_recomputed_when_the_solver_can():
    verdicts = _run(
        [_c("3 + 4 =", "8", source="procedural"), _c("3 + 5 =", "8", source="procedural")]
    )
    assert [v.reason for v in verdicts] == ["wrong_answer", "accepted"]


def test_procedural_items_the_solver_cannot_read_keep_their_source_answer():
    assert _run([_c("Opaque procedural question", "42", source="procedural")])[0].accepted


def test_wrong_candidate_is_not_accepted_even_when_new():
    assert not _run([_c("10 - 20 =", "10")])[0].accepted


def test_program_of_thought_is_run_in_the_sandbox_and_reasons_kept():
    from failforward.tools.verifiers import python_program

    def c(solution, answer):
        return Candidate(
            question="How many?",
            solution=solution,
            answer=answer,
            lineage=Lineage(cycle=1, target_id="t", source="llm"),
        )

    candidates = [
        c("apples = 3\noranges = 4\nanswer = apples + oranges", "7"),
        c("answer = 3 + 4", "8"),
        c("import socket\nanswer = 7", "7"),
        c("while True: pass", "7"),
        c("answer = float('nan')", "nan"),
    ]
    _, verdicts = critique(candidates, numeric, python_program, Screen([], []))
    assert [v.reason for v in verdicts] == [
        "accepted",
        "wrong_answer",
        "sandbox_forbidden",
        "sandbox_timeout",
        "unparseable",
    ]


def test_a_target_keeps_its_quota_of_accepted_candidates_and_no_more():
    """Rejected draws do not use the budget: the fourth draw is kept because an earlier one was
    a test item, and what comes after the quota is met is surplus, never screened."""
    candidates = [
        _c("1 + 1 =", "2"),
        _c("9 - 1 =", "8"),  # in the test set
        _c("2 + 2 =", "4"),
        _c("3 + 3 =", "6"),  # kept: the quota of 3 is met here
        _c("4 + 4 =", "8"),  # surplus
        _c("9 - 1 =", "8"),  # surplus, not reported as contaminated: it was never screened
    ]
    screen = Screen(["9 - 1 ="], [])
    _, verdicts = critique(
        candidates, numeric, arithmetic_expression, screen, quotas={("t", None): 3}
    )
    assert [v.reason for v in verdicts] == [
        "accepted",
        "contaminated",
        "accepted",
        "accepted",
        "surplus",
        "surplus",
    ]
    # a surplus candidate did not enter the screen: a later cycle may still use it
    assert screen.duplicate("4 + 4 =", None, "8") is None
