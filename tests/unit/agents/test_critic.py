from failforward.agents.critic import Screen, critique
from failforward.tools.records import Candidate, Lineage
from failforward.tools.verify.verifiers import arithmetic_expression, numeric


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
    from failforward.tools.verify.verifiers import python_program

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


def _t(question, answer, target):
    return Candidate(
        question=question, answer=answer, lineage=Lineage(cycle=1, target_id=target, source="llm")
    )


def test_refill_moves_a_drained_targets_budget_to_the_others_by_their_quotas():
    """Target a keeps none of its 3 (two are test items, one is wrong): its 3 go to b and c
    in proportion to their quotas (4:2), in order b, c, b; a surplus candidate that is a test
    item is screened out on the way and the next one taken; without refill a stays short."""
    candidates = [
        _t("9 - 1 =", "8", "a"),  # test item
        _t("9 - 2 =", "7", "a"),  # test item
        _t("2 + 2 =", "5", "a"),  # wrong
        *[_t(f"{n} + 10 =", str(n + 10), "b") for n in range(4)],  # b's quota
        _t("9 - 3 =", "6", "b"),  # surplus and a test item: screened out when refill reaches it
        *[_t(f"{n} + 20 =", str(n + 20), "b") for n in range(3)],  # b's other surplus
        *[_t(f"{n} + 30 =", str(n + 30), "c") for n in range(6)],  # c: 2 kept, 4 surplus
    ]
    quotas = {("a", None): 3, ("b", None): 4, ("c", None): 2}
    test = ["9 - 1 =", "9 - 2 =", "9 - 3 ="]

    def kept(refill):
        _, verdicts = critique(
            candidates, numeric, arithmetic_expression, Screen(test, []), quotas=quotas,
            refill=refill,
        )  # fmt: skip
        return verdicts, [
            c.question for c, v in zip(candidates, verdicts, strict=True) if v.accepted
        ]

    verdicts, plain = kept(False)
    assert len(plain) == 6 and sum(v.reason == "surplus" for v in verdicts) == 8
    verdicts, refilled = kept(True)
    assert len(refilled) == 9  # the quotas' total
    assert set(refilled) - set(plain) == {"0 + 20 =", "1 + 20 =", "2 + 30 ="}
    assert verdicts[7].reason == "contaminated"  # screened, not trained on
    moved = [
        v
        for c, v in zip(candidates, verdicts, strict=True)
        if c.question in ("0 + 20 =", "2 + 30 =")
    ]
    assert all("filled the shortfall of a (3)" in v.detail for v in moved)
    assert [v.reason for v in verdicts].count("surplus") == 4  # 2 + 20 = and three of c: unread
