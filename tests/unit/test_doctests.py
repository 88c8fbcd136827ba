"""The examples in docstrings run and say what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "agents.endpoints",
    "agents.rephraser",
    "app.augment_eval",
    "tools.curves",
    "tools.assemble",
    "tools.corpus",
    "tools.sandbox",
    "tools.seccomp",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
