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
    "failforward.tools.curves",
    "failforward.tools.guard",
    "failforward.tools.headroom",
    "failforward.tools.learnability",
    "failforward.tools.multiplier",
    "failforward.tools.assemble",
    "failforward.tools.corpus",
    "failforward.tools.sandbox",
    "failforward.tools.traces",
    "failforward.tools.seccomp",
    "failforward.training.offpolicy",
    "failforward.training.phases",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
