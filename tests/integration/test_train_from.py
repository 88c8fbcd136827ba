"""``--train-from base``: the train node retrains the base student on every accepted example, so
the same accepted set gives the same student whichever cycles added it; ``previous`` goes on
from the last checkpoint, so the path shows in the weights. The real node on the tiny student."""

import torch
from langgraph.runtime import Runtime

from failforward.graph.events import Events
from failforward.graph.loop import _dpo_pairs, train_student
from failforward.graph.settings import RunSettings
from failforward.graph.state import RunContext
from failforward.tools.packs.pack import load_pack
from failforward.tools.records import Candidate, Lineage, Verdict
from failforward.tools.store import RunStore

# The same nine examples (and their DPO pairs), accepted in one cycle or over two.
ONE_CYCLE = {1: [0, 1, 2, 3, 4, 5, 6, 7, 8]}
TWO_CYCLES = {1: [8, 6, 5], 2: [0, 3, 7, 2, 1, 4]}


def _context(tmp_path, name, pack_dir, ui, train_from, objective="sft") -> RunContext:
    settings = RunSettings.from_options(
        pack=str(pack_dir), student="tiny", llm="none", runs_dir=str(tmp_path),
        train_from=train_from, objective=objective, epochs=1, train_batch_size=4, seed=3,
    )  # fmt: skip
    run_dir = tmp_path / name
    store = RunStore(run_dir / "run.db")
    return RunContext(
        name, run_dir, settings, load_pack(str(pack_dir)), store, events=Events(ui.show)
    )


def _accept(ctx: RunContext, cycle: int, picks: list[int]) -> None:
    """What the critic leaves for ``cycle``: ``picks`` accepted, and (stored, so no student is
    asked) a DPO pair for each against a wrong reply."""
    lineage = Lineage(cycle=cycle, target_id="t", source="procedural")
    candidates = [
        Candidate(question=f"{a} + {a} =", answer=str(2 * a), lineage=lineage) for a in picks
    ]
    verdicts = [Verdict(accepted=True, reason="accepted", step="dedupe")] * len(picks)
    ctx.store.save_examples(cycle, candidates, verdicts)
    pairs = [
        {"example_id": e["id"], "question": e["question"], "chosen": e["answer"],
         "rejected": e["answer"] + "1", "lineage": {}}
        for e in ctx.store.examples(cycle=cycle, accepted=True)
    ]  # fmt: skip
    ctx.store.save_pairs(cycle, pairs)


def _train_along(ctx: RunContext, partition: dict[int, list[int]]) -> dict[str, torch.Tensor]:
    """Run the train node after each cycle's examples, as the loop does; the final weights."""
    state = {"cycle": 0, "checkpoint": None, "kept_cycle": 0}
    for cycle, picks in partition.items():
        _accept(ctx, cycle, picks)
        update = train_student({**state, "plan": {"cycle": cycle}}, Runtime(context=ctx))
        assert update["trained"]
        state |= {"checkpoint": update["checkpoint"], "kept_cycle": cycle}
    model, _ = ctx.student.at(state["checkpoint"])
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_base_retraining_depends_on_the_accepted_set_not_the_path(
    small_pack, tmp_path, quiet_ui, tiny_student_dir
):
    weights = {}
    for mode in ("base", "previous"):
        for name, partition in (("one", ONE_CYCLE), ("two", TWO_CYCLES)):
            ctx = _context(tmp_path, f"{mode}-{name}", small_pack, quiet_ui, mode)
            weights[mode, name] = _train_along(ctx, partition)
            last = ctx.store.metrics()[max(partition)]
            assert last["train_examples_total"] == 9  # the curves' x axis, in either mode
            assert last["train_examples"] == len(partition[max(partition)])
            rows = 9 if mode == "base" else last["train_examples"]
            assert last["train_rows"] == last["sft_rows"] == rows
    base, previous = (
        [weights[mode, name] for name in ("one", "two")] for mode in ("base", "previous")
    )
    assert base[0].keys() == base[1].keys()
    assert all(torch.equal(base[0][n], base[1][n]) for n in base[0])
    assert not all(torch.equal(previous[0][n], previous[1][n]) for n in previous[0])
    lora_b = [p for n, p in base[0].items() if "lora_B" in n]  # zero until trained
    assert lora_b and all(not torch.equal(p, torch.zeros_like(p)) for p in lora_b)


def test_base_dpo_trains_on_every_cycles_pairs_in_one_order(small_pack, tmp_path, quiet_ui):
    def pairs(mode, name, partition):
        ctx = _context(tmp_path, f"{mode}-{name}", small_pack, quiet_ui, mode, "sft+dpo")
        for cycle, picks in partition.items():
            _accept(ctx, cycle, picks)
        last = max(partition)
        mine = ctx.store.examples(cycle=last, accepted=True)  # the cycle's pairs are stored
        chosen = _dpo_pairs(ctx, last, mine, model=None, tokenizer=None)
        return [(p["question"], p["chosen"], p["rejected"]) for p in chosen]

    base = [pairs("base", name, p) for name, p in (("one", ONE_CYCLE), ("two", TWO_CYCLES))]
    assert base[0] == base[1] and len(base[0]) == 9
    assert len(pairs("previous", "two", TWO_CYCLES)) == len(TWO_CYCLES[2])
