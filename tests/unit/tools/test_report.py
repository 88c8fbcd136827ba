"""``report.md`` and ``report.html`` from a small hand-built run store: what a newcomer needs to
read them (examples beside cluster names, what the columns mean, why candidates were rejected),
and figures that stay legible for a one-cycle run."""

import math

import pytest

from failforward.tools.records import (
    Candidate,
    Failure,
    FailureCluster,
    GenerationPlan,
    Lineage,
    PlanTarget,
    Verdict,
)
from failforward.tools.report import plots
from failforward.tools.report.report import render_report, write_report
from failforward.tools.store import RunStore


def _candidate(question: str) -> Candidate:
    lineage = Lineage(cycle=1, target_id="c1-k0", source="llm")
    return Candidate(question=question, answer="1", lineage=lineage)


@pytest.fixture
def store(tmp_path):
    """One cycle: two clusters the analyst named alike, a plan, and the critic's verdicts."""
    store = RunStore(tmp_path / "run-1" / "run.db")
    store.set_meta("settings", {"pack": "mine", "student": "tiny", "plan": "targeted"})
    store.save_metrics(0, {"test_acc": 0.1, "probe_acc": 0.1})
    store.save_metrics(1, {"test_acc": 0.2, "probe_acc": 0.2, "train_examples_total": 2})
    clusters = [
        FailureCluster(
            cluster_id=0,
            name="format error",
            size=5,
            exemplars=["How many in 3?"],
            keywords=["hours", "carry"],
            knob_modes={"num_digits": 2},
        ),  # fmt: skip
        FailureCluster(cluster_id=1, name="format error (2)", size=4, exemplars=["Name | the x"]),
    ]
    failure = Failure(question="How many in 3?", expected="180", output="18 hours", extracted="18")
    store.save_failures(0, [failure])
    store.save_clusters(1, clusters, [0], failures_cycle=0)
    targets = [
        PlanTarget(target_id="c1-k0", name="format error", description="", budget=6, weight=3.2),
        PlanTarget(target_id="explore", name="explore", description="", budget=2, kind="explore"),
    ]
    store.save_plan(GenerationPlan(cycle=1, mode="targeted", targets=targets))
    consistent = Verdict(
        accepted=True, reason="accepted", step="consistency", verified_by="consistency",
        scores={"agreement": 0.8},
    )  # fmt: skip
    unverifiable = Verdict(
        accepted=False, reason="unverifiable", step="verify", detail="no solver recomputed it"
    )
    store.save_examples(
        1,
        [_candidate(f"q{i}") for i in range(3)],
        [consistent, consistent.model_copy(update={"scores": {"agreement": 1.0}}), unverifiable],
    )
    yield store
    store.close()


def test_clusters_show_an_example_and_the_columns_are_explained(store):
    report = render_report(store, "run-1")
    assert "| format error | 5 | - | new | metadata | hours, carry, num_digits=2 |" in report
    assert "- format error: `How many in 3?` → expected `180`, said `18 hours`" in report
    assert "- format error (2): `Name \\| the x`" in report  # no failure stored for it
    assert "**near-item acc**: the student's accuracy" in report
    assert "error share: the target's share" in report and "(-: the pack's own mix)" in report
    assert "source default" not in report
    assert "| format error | cluster | - | 0% | - | 3.20 | - | 6 | 2 | - |" in report
    assert "| explore | explore | - | 0% | - | - | - | 2 | 0 | - |" in report
    assert "capacity: new items the target's cell could still give" in report


def test_the_report_says_what_verified_and_why_candidates_were_rejected(store):
    report = render_report(store, "run-1")
    assert "| consistency | 2 | 90% |" in report
    assert "- unverifiable (1), for example: no solver recomputed it" in report


def test_the_page_puts_what_was_run_before_the_figures(store, tmp_path):
    write_report(store, tmp_path, "run-1")
    page = (tmp_path / "report.html").read_text()
    assert page.index("pack <code>mine</code>") < page.index("<figure>")
    assert page.index("<figure>") < page.index("<h2>Test accuracy per cycle")


def test_one_cycle_figures_have_a_real_axis_and_legends_beside_the_bars(store, monkeypatch):
    seen = {}

    def capture(plt, fig):
        ax = fig.axes[0]
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        seen[ax.get_title()] = (ax.get_xlim(), legend.x0 >= ax.get_window_extent().x1)
        plt.close(fig)
        return "<svg/>"

    monkeypatch.setattr(plots, "_svg", capture)
    for figure in (plots.accuracy_figure, plots.failure_modes_figure, plots.plan_figure,
                   plots.critic_figure):  # fmt: skip
        figure(store)
    assert len(seen) == 4
    for title, ((low, high), _) in seen.items():
        assert math.isfinite(low) and math.isfinite(high) and high - low >= 1, title
    low, high = seen["Failure modes over cycles (tracked clusters)"][0]
    assert high - low >= 2  # not the -0.04..0.04 of a single point
    for title in ("The critic: candidates by verdict", "The plan: budget per cycle by target kind"):
        assert seen[title][1], title  # the legend starts right of the bars' axes
