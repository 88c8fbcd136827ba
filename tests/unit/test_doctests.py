"""The examples in docstrings run and say what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "failforward.agents.endpoints",
    "failforward.agents.generator",
    "failforward.agents.learnability",
    "failforward.agents.replies",
    "failforward.agents.rephraser",
    "failforward.app.augment_eval",
    "failforward.tools.stats.curves",
    "failforward.tools.stats.guard",
    "failforward.tools.stats.headroom",
    "failforward.tools.stats.learnability",
    "failforward.tools.stats.multiplier",
    "failforward.tools.augment.assemble",
    "failforward.tools.augment.corpus",
    "failforward.tools.verify.sandbox",
    "failforward.tools.packs.traces",
    "failforward.tools.verify.seccomp",
    "failforward.training.offpolicy",
    "failforward.training.phases",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
