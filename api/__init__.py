"""failforward from Python: open a run, drive its LangGraph graph, compare plans.

The command line is a shell over these; a graph script uses them directly::

    import failforward as ff

    settings = ff.RunSettings.from_options(pack="arithmetic", student="tiny", budget=8)
    with ff.open_run(settings) as run:          # the folder, store, checkpointer, context
        for update in run.stream(stream_mode="updates"):  # LangGraph's own stream
            print(update)

- :class:`RunSettings` fixes a run (every ``failforward run`` option is a field;
  :meth:`RunSettings.from_options` takes them by the option's name).
- :func:`open_run` opens a new or stopped run and yields a :class:`Run`: its compiled,
  checkpointed ``graph``, the ``config`` and ``context`` each call needs, and ``stream`` /
  ``invoke`` from where it stands. ``build=`` takes a script's own graph (``build_graph()``
  with nodes added or replaced).
- :func:`build_graph` is the loop as an uncompiled LangGraph ``StateGraph`` (its nodes are
  ``LOOP_NODES``); :class:`LoopState` is its state and :class:`RunContext` the run's context.
- :func:`run` drives a run to its end, as ``failforward run`` does; :func:`compare` runs a
  comparison, as ``failforward compare`` does.
"""

from failforward.app.compare import run_compare as compare
from failforward.app.runner import Run, RunInterrupted, open_run
from failforward.app.runner import run_loop as run
from failforward.graph.loop import LOOP_NODES, build_graph
from failforward.graph.settings import RunSettings
from failforward.graph.state import LoopState, RunContext

__all__ = [
    "LOOP_NODES",
    "LoopState",
    "Run",
    "RunContext",
    "RunInterrupted",
    "RunSettings",
    "build_graph",
    "compare",
    "open_run",
    "run",
]
