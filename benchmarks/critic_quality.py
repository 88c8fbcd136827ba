"""How well the critic separates good candidates from planted bad ones, and how fast.

    .venv/bin/python benchmarks/critic_quality.py                 # 1,000 candidates, --llm none
    .venv/bin/python benchmarks/critic_quality.py --programs --n 200 --rounds 1   # sandboxed

With ``--programs`` every candidate carries its worked solution as a Python program
(``answer = <expression>``) and the critic's solver is ``python_program``: each candidate runs
once in the code sandbox, as a program-of-thought pack's candidates do.

Builds arithmetic candidates (as an LLM teacher would hand them over) from the pack's own source:
good items, items with a planted wrong answer (20%), rewordings of earlier good items in the batch
(10%: near duplicates) and rewordings of test-set items (5%). Two chain sums are the same problem
when they have the same multiset of signed terms ("3 + 5 - 2" = "5 - 2 + 3"); good items are
distinct problems and none is a test item. The critic then runs as the loop runs it (pack verifier,
solver, near-duplicate and contamination screens against the pack's real test set), with the
embedding model loaded once before the clock starts. Printed: per planted kind, how many were
rejected (recall) and for what; the precision of rejection; good items accepted; candidates/s.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter

from failforward.agents.critic import Screen, critique
from failforward.tools.embed.embeddings import embed
from failforward.tools.packs.pack import load_pack
from failforward.tools.packs.sources import ReasoningGymSource, split_disjoint
from failforward.tools.records import Candidate, Item, Lineage
from failforward.tools.verify.verifiers import extract_answer, make_solver, make_verifier

REWORDINGS = (
    "Calculate {expr} =",
    "Work out the following sum: {expr} =",
    "Compute this: {expr} =",
    "What do you get for {expr} =",
    "Find the value of the expression {expr} =",
    "Please evaluate: {expr} =",
)
PLANTED = ("wrong_answer", "near_duplicate", "reworded_test")
CAUGHT_BY = {"wrong_answer": "wrong_answer", "near_duplicate": "duplicate"}
CAUGHT_BY["reworded_test"] = "contaminated"


def signed_terms(expression: str) -> tuple[int, ...]:
    """The problem's identity: its signed terms as a sorted multiset."""
    tokens = expression.replace(" ", "")
    return tuple(sorted(int(t) for t in re.findall(r"[+-]?\d+", tokens)))


def reword(expression: str, rng: random.Random) -> str:
    """Another wording of the same problem: a new lead-in, sometimes the terms reordered."""
    first, *rest = re.findall(r"([+-]?)\s*(\d+)", expression)
    if len(rest) > 1 and rng.random() < 0.5:  # reorder the terms after the first, signs kept
        rng.shuffle(rest)
        expression = " ".join([first[0] + first[1], *(f"{sign} {n}" for sign, n in rest)])
    return rng.choice(REWORDINGS).format(expr=expression)


def wrong(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: off by a little, the sign flipped, or a digit too many."""
    value = int(answer)
    while True:
        kind = rng.random()
        if kind < 0.6:
            planted = value + rng.choice([-1, 1]) * rng.randint(1, 10)
        elif kind < 0.8:
            planted = -value
        else:
            planted = value * 10 + rng.randint(0, 9)
        if planted != value:  # -1 * 10 + 9 is still -1
            return str(planted)


def build(pack, n: int, seed: int) -> tuple[list[Candidate], list[str], list[Item]]:
    """``n`` candidates and their planted kind ("good" or one of PLANTED), and the test set."""
    spec = pack.spec
    source = pack.make_source()
    _, test = split_disjoint(
        source, (spec.probe.size, spec.probe.seed), (spec.test.size, spec.test.seed)
    )
    rng = random.Random(seed)
    counts = {"wrong_answer": n // 5, "near_duplicate": n // 10, "reworded_test": n // 20}
    n_fresh = n - counts["near_duplicate"] - counts["reworded_test"]
    # Fresh problems at the knob ranges a targeted plan asks for, distinct from each other and
    # from every test item.
    wide = ReasoningGymSource(
        spec.eval_source.dataset, {"min_terms": 2, "max_terms": 5, "min_digits": 1, "max_digits": 3}
    )
    taken = {signed_terms(i.metadata["expression"]) for i in test}
    fresh: list[Item] = []
    for item in wide.sample(n_fresh * 3, seed=seed):
        key = signed_terms(item.metadata["expression"])
        if key not in taken:
            taken.add(key)
            fresh.append(item)
        if len(fresh) == n_fresh:
            break
    lineage = Lineage(cycle=1, target_id="bench", source="llm")

    def candidate(question: str, answer: str, expression: str) -> Candidate:
        return Candidate(
            question=question, answer=answer, metadata={"expression": expression}, lineage=lineage
        )

    rows = [(candidate(i.question, i.answer, i.metadata["expression"]), "good") for i in fresh]
    for index in rng.sample(range(len(rows)), counts["wrong_answer"]):
        c, _ = rows[index]
        rows[index] = (c.model_copy(update={"answer": wrong(c.answer, rng)}), "wrong_answer")
    for item in rng.sample(test, counts["reworded_test"]):
        expr = item.metadata["expression"]
        rows.insert(
            rng.randrange(len(rows) + 1),
            (candidate(reword(expr, rng), item.answer, expr), "reworded_test"),
        )
    # Near duplicates of good items, each placed somewhere after its original.
    for _ in range(counts["near_duplicate"]):
        good = [i for i, (_, kind) in enumerate(rows) if kind == "good"]
        original = rows[rng.choice(good)][0]
        expr = original.metadata["expression"]
        at = rng.randrange([r[0] for r in rows].index(original) + 1, len(rows) + 1)
        rows.insert(at, (candidate(reword(expr, rng), original.answer, expr), "near_duplicate"))
    return [r[0] for r in rows], [r[1] for r in rows], test


def as_program(candidate: Candidate) -> Candidate:
    """The candidate with its solution written as a program that computes its expression."""
    program = f"```python\nanswer = {candidate.metadata['expression']}\n```"
    return candidate.model_copy(update={"solution": program})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--n", type=int, default=1000, help="candidates to build")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--llm", default="none", choices=["none"], help="no judge, no refine")
    parser.add_argument("--rounds", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--near-duplicate", type=float, help="override the pack's threshold")
    parser.add_argument("--contamination", type=float, help="override the pack's threshold")
    parser.add_argument(
        "--programs", action="store_true", help="solutions as Python programs, run sandboxed"
    )
    args = parser.parse_args()

    pack = load_pack(args.pack)
    for field in ("near_duplicate", "contamination"):
        if getattr(args, field) is not None:
            setattr(pack.spec.critic, field, getattr(args, field))
    candidates, kinds, test = build(pack, args.n, args.seed)
    spec = pack.spec
    verifier = make_verifier(
        spec.verifier, pack.make_source(), spec.verifier_options, pack.directory
    )
    solver = make_solver("python_program" if args.programs else spec.critic.solver)
    if args.programs:
        candidates = [as_program(c) for c in candidates]
    extract = lambda text: extract_answer(text, spec.answer.pattern, spec.answer.pick)  # noqa: E731

    started = time.perf_counter()
    embed(["load the model"])
    load_seconds = time.perf_counter() - started
    rates = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        screen = Screen(test, [], embed, spec.critic)
        _, verdicts = critique(candidates, verifier, solver, screen, extract=extract)
        rates.append(len(candidates) / (time.perf_counter() - started))
    print(
        f"pack {pack.name}: near_duplicate {spec.critic.near_duplicate}, contamination "
        f"{spec.critic.contamination}, ngram {spec.critic.ngram}, llm {args.llm}"
    )
    report(kinds, verdicts)
    rates.sort()
    print(
        f"\nspeed ({'python_program' if args.programs else spec.critic.solver} solver): "
        f"{rates[len(rates) // 2]:.0f} candidates/s (median of {args.rounds}; "
        f"min {rates[0]:.0f}, max {rates[-1]:.0f}), test set of {len(test)} screened each time; "
        f"embedding model loaded once in {load_seconds:.1f}s before timing"
    )


def report(kinds: list[str], verdicts) -> None:
    total = Counter(kinds)
    print(f"{len(kinds)} candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    print(
        f"\n{'planted kind':<16}{'n':>5}{'rejected':>10}{'recall':>9}{'for its reason':>16}"
        "  reasons"
    )
    rejected_bad = 0
    for kind in PLANTED:
        reasons = Counter(
            v.reason for v, k in zip(verdicts, kinds, strict=True) if k == kind and not v.accepted
        )
        caught = sum(reasons.values())
        rejected_bad += caught
        print(
            f"{kind:<16}{total[kind]:>5}{caught:>10}{caught / total[kind]:>9.1%}"
            f"{reasons[CAUGHT_BY[kind]] / total[kind]:>16.1%}  {dict(reasons)}"
        )
    good = [v for v, k in zip(verdicts, kinds, strict=True) if k == "good"]
    good_rejected = Counter(v.reason for v in good if not v.accepted)
    accepted = sum(v.accepted for v in good)
    print(
        f"{'good':<16}{len(good):>5}{len(good) - accepted:>10}   accepted "
        f"{accepted / len(good):.1%}  {dict(good_rejected)}"
    )
    bad = sum(total[k] for k in PLANTED)
    rejected = rejected_bad + len(good) - accepted
    print(
        f"\nbad rejected: {rejected_bad}/{bad} = {rejected_bad / bad:.1%}; good accepted: "
        f"{accepted}/{len(good)} = {accepted / len(good):.1%}; precision of rejection: "
        f"{rejected_bad}/{rejected} = {rejected_bad / max(rejected, 1):.1%}"
    )
    for reason in ("wrong_answer", "duplicate", "contaminated"):
        hits = [k for v, k in zip(verdicts, kinds, strict=True) if v.reason == reason]
        right = sum(CAUGHT_BY.get(k) == reason for k in hits)
        if hits:
            print(f"  precision of {reason!r}: {right}/{len(hits)} = {right / len(hits):.1%}")


if __name__ == "__main__":
    main()
