"""Nodes speak in typed events; the terminal shows them as text, markup and all, never as style."""

import threading

import pytest
from rich.console import Console

from failforward.app.progress import LoopUI, plan_lines, verdict_lines
from failforward.graph.events import CycleRow, Events, Line, PlanMade, Progress, Verdicts
from failforward.graph.executor import Here, OnRay, executor_for
from failforward.graph.settings import RunSettings
from failforward.tools.records import FailureCluster, GenerationPlan, PlanTarget


def test_a_bar_opens_moves_nests_and_closes_even_when_its_body_fails():
    seen = []
    events = Events(seen.append)
    with pytest.raises(RuntimeError):
        with events.task("outer", total=3) as outer:
            outer.advance()
            with events.task("inner", total=None) as inner:
                inner.update(5, 10)
                inner.update(6)  # no total: the last one stays
            raise RuntimeError("boom")
    bars = [e for e in seen if isinstance(e, Progress)]
    outer_id, inner_id = bars[0].task, bars[2].task
    assert [(e.description, e.completed, e.total, e.done) for e in bars] == [
        ("outer", 0, 3, False),
        ("outer", 1, 3, False),
        ("inner", 0, None, False),
        ("inner", 5, 10, False),
        ("inner", 6, 10, False),
        ("inner", 6, 10, True),
        ("outer", 1, 3, True),  # closed by the error, with what it had done
    ]
    assert bars[2].parent == outer_id and bars[0].parent is None and inner_id != outer_id
    with events.task("after", total=1):
        pass
    assert seen[-1].parent is None  # the failed bar is no longer open


def test_a_bar_moved_from_many_threads_counts_every_step():
    seen = []
    with Events(seen.append).task("threads", total=800) as bar:
        threads = [
            threading.Thread(target=lambda: [bar.advance() for _ in range(100)]) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert seen[-1].done and seen[-1].completed == 800
    assert sorted(e.completed for e in seen[1:-1]) == list(range(1, 801))


def _shown(*events) -> str:
    console = Console(record=True, width=200, color_system=None)
    ui = LoopUI(console)
    for event in events:
        ui.show(event)
    return console.export_text()


def test_the_terminal_prints_an_events_text_as_it_is():
    # an LLM's reply may hold what rich would read as markup: it is shown, not obeyed
    text = _shown(Line("  analyst said [bold]x[/] and [red]"), Line("careful [/]", "warning"))
    assert "analyst said [bold]x[/] and [red]" in text and "careful [/]" in text


def test_the_plan_and_the_verdicts_become_the_lines_a_person_reads():
    cluster = FailureCluster(cluster_id=0, name="carry [digits]", size=6)
    target = {"description": "", "target_id": "t"}
    plan = GenerationPlan(
        cycle=1,
        mode="targeted",
        targets=[
            PlanTarget(**target, name="carry [digits]", cluster_id=0, budget=8),
            PlanTarget(
                **target, name="explore", budget=2, kind="explore", success=0.5, weight=0.25
            ),
        ],
    )
    lines = plan_lines(PlanMade((cluster,), plan))
    assert lines[1].split() == [
        "6",
        "(100%)",
        "-",
        "new",
        "->",
        "8",
        "cluster:",
        "carry",
        "[digits]",
    ]
    assert lines[2].split()[-5:] == ["explore", "(p", "50%,", "weight", "0.25)"]
    verdicts = Verdicts(
        1, {"procedural": {"accepted": 5, "duplicate": 1}}, {"solver": 5}, {"duplicate": "d"}, 2
    )
    assert verdict_lines(verdicts) == [
        "  critic (procedural): accepted 5, duplicate 1",
        "  refill: 2 surplus examples of other targets filled the budget",
        "    accepted by solver 5",
        "    duplicate: d",
    ]
    shown = _shown(PlanMade((cluster,), plan), verdicts)
    assert "carry [digits]" in shown and "accepted by solver 5" in shown


def test_the_cycle_table_shows_every_row_so_far():
    rows = tuple(
        {"cycle": c, "test_acc": a, "test_ci": (a - 0.1, a + 0.1), "probe_acc": a, "seconds": 3}
        for c, a in [(0, 0.25), (1, 0.5)]
    )
    text = _shown(CycleRow(rows))
    assert "25.0% (15.0%-35.0%)" in text and "50.0% (40.0%-60.0%)" in text
    assert CycleRow(rows).row["cycle"] == 1


def test_the_executor_is_chosen_from_the_setting_once():
    local = executor_for(RunSettings(), print)
    assert isinstance(local, Here) and not local.answers_elsewhere
    embed = object()
    assert local.embedder(embed) is embed and local.map_over() is None
    ray = executor_for(RunSettings.from_options(executor="ray"), print)
    assert isinstance(ray, OnRay) and ray.answers_elsewhere and ray.name == "ray"
