"""The run store: one SQLite file per run holding everything a report or an export needs.

Rule: imports the records only. One room per concern, each a class over its own tables on the
file's one connection: ``base`` (the file, ``meta``, ``node_runs``), ``evaluation`` (eval sets,
attempts, metrics), ``analysis`` (failures, clusters, plans), ``examples`` (candidates and
verdicts), ``training`` (DPO pairs, step logs), ``calls`` (the LLM call cache and faults).
:class:`RunStore` is all of them; code that needs one concern takes that class (an endpoint
client a :class:`~failforward.tools.store.calls.CallTables`), and the augmentation store is
the calls tables plus its own.

Writes for a cycle replace that cycle's earlier rows, so a node re-run after a crash leaves no
duplicates. Secrets never reach this file: endpoints are stored by URL and model only.
"""

from failforward.tools.store.analysis import AnalysisTables
from failforward.tools.store.base import Store
from failforward.tools.store.calls import CallTables
from failforward.tools.store.evaluation import EvalTables
from failforward.tools.store.examples import ExampleTables, content_hash
from failforward.tools.store.training import TrainingTables


class RunStore(EvalTables, AnalysisTables, ExampleTables, TrainingTables, CallTables):
    """A loop run's store: every table of the run (``run.db``)."""


__all__ = [
    "AnalysisTables",
    "CallTables",
    "EvalTables",
    "ExampleTables",
    "RunStore",
    "Store",
    "TrainingTables",
    "content_hash",
]
