"""The gsm pack: worked solutions from reasoning-gym, what the student learns to write, and how
the critic treats prose solutions and programs."""

from failforward.agents.critic import verify
from failforward.tools.packs.pack import load_pack, prose
from failforward.tools.records import Candidate, Lineage
from failforward.tools.verify.verifiers import extract_answer, make_solver, make_verifier
from failforward.training.offpolicy import preference_pairs, sft_rows


def test_gsm_items_carry_their_worked_solution_and_the_student_learns_it():
    pack = load_pack("gsm")
    item = pack.make_source().sample(1, seed=5)[0]
    assert item.solution.rstrip().endswith(f"#### {item.answer}")
    assert "answer_cot" not in item.metadata  # moved to the solution, not kept twice
    taught = pack.completion(item.question, item.solution, item.answer)
    assert taught.endswith(f"#### {item.answer}") and len(taught.splitlines()) > 1
    answer = pack.spec.answer
    assert extract_answer(taught, answer.pattern, answer.pick) == item.answer

    example = {"question": item.question, "solution": item.solution, "answer": item.answer}
    row = sft_rows([example], lambda q: [{"role": "user", "content": q}], lambda ex: taught)[0]
    assert row["completion"][0]["content"] == taught
    default = sft_rows([example], lambda q: [{"role": "user", "content": q}])[0]
    assert default["completion"][0]["content"] == item.answer  # answer-only packs are unchanged


def test_a_written_solution_keeps_its_prose_and_gains_a_final_line():
    pack = load_pack("gsm")
    solution = "She buys 3 bags of 4: 3 * 4 = 12 apples.\n```python\nanswer = 3 * 4\n```"
    assert (
        pack.completion("q", solution, "12") == "She buys 3 bags of 4: 3 * 4 = 12 apples.\n#### 12"
    )
    assert prose("a\n\n```python\nx = 1\n```\nb") == "a\nb"


def test_the_critic_runs_a_written_program_and_keeps_a_procedural_answer():
    pack = load_pack("gsm")
    solve = make_solver("python_program")
    check = make_verifier("numeric")
    item = pack.make_source().sample(1, seed=5)[0]
    assert solve(item.question, item.solution, item.answer) is None  # prose: nothing to run

    def candidate(solution, answer, source):
        lineage = Lineage(cycle=1, target_id="t", source=source)
        return Candidate(question="q", solution=solution, answer=answer, lineage=lineage)

    procedural = candidate(item.solution, item.answer, "procedural")
    assert verify(procedural, check, solve).accepted
    right = candidate("3 * 4 = 12\n```python\nanswer = 3 * 4\n```", "12", "llm")
    wrong = candidate("3 * 4 = 13\n```python\nanswer = 3 * 4\n```", "13", "llm")
    prose_only = candidate("3 * 4 = 12", "12", "llm")
    assert verify(right, check, solve).accepted
    assert verify(wrong, check, solve).reason == "wrong_answer"
    assert verify(prose_only, check, solve).reason == "unverifiable"


def test_dpo_chosen_is_the_reply_to_learn():
    class Attempt:
        correct, output, extracted = False, "#### 7", "7"

    example = {"id": 1, "question": "q", "answer": "12", "source": "procedural", "cycle": 1}
    (pair,) = preference_pairs([example], [Attempt()], lambda ex: "3 * 4 = 12\n#### 12")
    assert pair["chosen"] == "3 * 4 = 12\n#### 12" and pair["rejected"] == "#### 7"
