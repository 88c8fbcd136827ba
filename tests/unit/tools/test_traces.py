"""Worked solutions from reasoning-gym metadata: every step checks out and ends in the answer."""

import math
import re

import pytest

from failforward.tools.packs.pack import load_pack
from failforward.tools.packs.sources import ReasoningGymSource
from failforward.tools.packs.traces import TRACES, worked_solution

CONFIGS = {
    "chain_sum": {"min_terms": 2, "max_terms": 4, "min_digits": 1, "max_digits": 2},
    "products": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    "gcd": {"min_numbers": 2, "max_numbers": 3, "min_value": 1, "max_value": 50},
    "lcm": {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 20},
    "letter_counting": {"min_words": 1, "max_words": 6},
    "leg_counting": {"min_animals": 1, "max_animals": 3, "min_instances": 1, "max_instances": 3},
}
ARITHMETIC = re.compile(r"[\d\s+\-*/()]+")


def _value(text: str) -> int:
    """An arithmetic segment's value (our own trace text, checked to be only numbers and
    operators before it is evaluated); ``gcd(a, b)`` as math.gcd."""
    text = text.strip()
    found = re.fullmatch(r"gcd\((\d+), (\d+)\)", text)
    if found:
        return math.gcd(*map(int, found.groups()))
    assert ARITHMETIC.fullmatch(text), text
    return int(eval(text.replace("/", "//")))  # noqa: S307 - digits and operators only


def _checks(line: str) -> bool:
    """Every ``=`` of a line joins equal values (``x = q * y + r`` lines are Euclid's, with
    ``0 <= r < y``); ``word: n`` lines are counts, checked by the last line's total."""
    body = line.split(": ", 1)[-1]
    if "=" not in body:
        return True
    values = [_value(part) for part in body.split(" = ")]
    euclid = re.fullmatch(r"(\d+) = (\d+) \* (\d+) \+ (\d+)", body)
    if euclid and not 0 <= int(euclid[4]) < int(euclid[3]):
        return False
    return len(set(values)) == 1


@pytest.mark.parametrize("dataset", sorted(TRACES))
def test_every_trace_checks_out_and_ends_in_the_answer(dataset):
    items = ReasoningGymSource(dataset, CONFIGS[dataset], traces=True).sample(60, seed=5)
    traced = [i for i in items if i.solution]
    assert len(traced) >= 0.9 * len(items), f"{dataset}: only {len(traced)} of 60 traced"
    for item in traced:
        lines = item.solution.splitlines()
        assert re.findall(r"-?\d+", lines[-1])[-1] == item.answer
        assert all(_checks(line) for line in lines), item.solution
        assert len(lines) <= 12  # short: a few steps, not an essay


def test_no_trace_without_opting_in_or_for_an_unknown_dataset():
    assert not ReasoningGymSource("chain_sum").sample(3, seed=1)[0].solution
    assert worked_solution("number_sequence", {"sequence": [1, 2]}, "3") == ""
    assert worked_solution("basic_arithmetic", {"expression": "( 5 + 3 ) * 2"}, "16") == ""


def test_a_pack_that_trains_on_solutions_teaches_the_trace_then_the_answer(tmp_path):
    import shutil

    import yaml

    target = tmp_path / "traced"
    shutil.copytree(load_pack("arithmetic").directory, target)
    spec = yaml.safe_load((target / "pack.yaml").read_text())
    spec["student"]["completion"] = "solution"
    (target / "pack.yaml").write_text(yaml.safe_dump(spec))
    pack = load_pack(str(target))
    item = pack.make_source("train").sample(1, seed=3)[0]
    reply = pack.completion(item.question, item.solution, item.answer)
    assert reply.startswith(item.solution.splitlines()[0]) and reply.endswith(f"\n{item.answer}")
    untraced = load_pack("arithmetic")
    assert untraced.make_source("train").sample(1, seed=3)[0].solution == ""
