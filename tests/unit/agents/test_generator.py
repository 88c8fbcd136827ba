import pytest

from failforward.agents.endpoints import ChatClient, EndpointConfig
from failforward.agents.generator import (
    generate_llm,
    generate_procedural,
    parse_candidates,
    request_count,
    teacher_mode,
)
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import GenerationPlan, PlanTarget
from failforward.tools.store import RunStore
from tests.fakes import FakeSend

REPLY = (
    'Here you go: [{"question": "What is 3 + 4 =", "solution": "3+4", "answer": 7}, '
    '{"question": "", "answer": "1"}, {"oops": 1}]'
)


@pytest.fixture(scope="module")
def pack():
    return load_pack("arithmetic")


def _plan(budget=6, **config):
    return GenerationPlan(
        cycle=1,
        mode="targeted",
        targets=[
            PlanTarget(
                target_id="c1-k0",
                name="x",
                description="d",
                budget=budget,
                exemplars=["1 + 2 ="],
                source_config=config,
                cluster_id=0,
            )
        ],
    )


def test_parse_candidates_keeps_only_well_formed():
    parsed = parse_candidates(REPLY)
    assert [(c.question, c.answer) for c in parsed] == [("What is 3 + 4 =", "7")]
    assert parse_candidates("no json here") == []
    assert (
        len(
            parse_candidates(
                '{"question": "a =", "answer": "1"} {"question": "b =", "answer": "2"}'
            )
        )
        == 2
    )


def test_teacher_mode(pack):
    assert teacher_mode(pack, has_endpoint=False) == "procedural"
    assert teacher_mode(pack, has_endpoint=True) == "llm"


def test_procedural_follows_knobs_and_records_lineage(pack):
    candidates = generate_procedural(
        pack.make_source(), _plan(8, min_terms=4, max_terms=4), run_seed=3, overdraw=2
    )
    assert len(candidates) == 16  # the critic keeps 8 of them
    assert {c.metadata["num_terms"] for c in candidates} == {4}
    assert {c.lineage.target_id for c in candidates} == {"c1-k0"}
    again = generate_procedural(
        pack.make_source(), _plan(8, min_terms=4, max_terms=4), run_seed=3, overdraw=2
    )
    assert [c.question for c in again] == [c.question for c in candidates]
    # the over-draw extends a draw of the budget, it does not replace it
    fewer = generate_procedural(
        pack.make_source(), _plan(4, min_terms=4, max_terms=4), run_seed=3, overdraw=2
    )
    seed = fewer[0].lineage.seed
    direct = pack.make_source().sample(8, seed=seed, overrides={"min_terms": 4, "max_terms": 4})
    assert [c.question for c in fewer] == [i.question for i in direct]


def test_llm_generation_parses_and_caches(pack, tmp_path):
    store = RunStore(tmp_path / "run.db")
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="fake")
    fake = FakeSend(responses=[REPLY] * 10)
    client = ChatClient("teacher", config, store, send=fake)
    candidates = generate_llm(client, pack, _plan(budget=8))
    assert fake.calls == 2  # 8 examples at per_call 4
    assert len(candidates) == 2 and all(c.lineage.source == "llm" for c in candidates)
    assert candidates[0].lineage.endpoint_model == "fake"
    again = generate_llm(ChatClient("teacher", config, store, send=fake), pack, _plan(budget=8))
    assert fake.calls == 2  # every reply came from the run's call cache
    assert [c.question for c in again] == [c.question for c in candidates]


def test_llm_teacher_cannot_exceed_the_budget(pack, tmp_path):
    many = (
        "[" + ", ".join(f'{{"question": "{i} + 1 =", "answer": "{i + 1}"}}' for i in range(9)) + "]"
    )
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="fake")
    client = ChatClient(
        "teacher",
        config,
        RunStore(tmp_path / "run.db"),
        send=FakeSend(responses=[many] * 3),
    )
    finished: list[int] = []
    plan = _plan(budget=6)
    assert len(generate_llm(client, pack, plan, advance=finished.append)) == 6  # 4 + 2, not 2 x 9
    assert request_count(pack, plan) == sum(finished) == 2  # what the node's progress bar counts


def test_the_same_prompt_in_a_new_cycle_is_a_new_call(pack, tmp_path):
    from failforward.agents.planner import plan_uniform

    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="fake")
    fake = FakeSend(responses=[REPLY] * 10)
    client = ChatClient("teacher", config, RunStore(tmp_path / "run.db"), send=fake)
    generate_llm(client, pack, plan_uniform(pack, budget=4, cycle=1))
    generate_llm(client, pack, plan_uniform(pack, budget=4, cycle=2))  # identical prompt text
    assert fake.calls == 2
    generate_llm(client, pack, plan_uniform(pack, budget=4, cycle=2))  # a resumed cycle 2
    assert fake.calls == 2
