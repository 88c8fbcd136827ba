"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """A real Ray instance on this machine for one test module. 4 logical CPUs: 2 for the 2
    student workers, which hold theirs, and 2 for the critic's tasks or 2 Ray Train workers
    (what --executor ray asks of a local instance); this machine has 2 cores."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()
