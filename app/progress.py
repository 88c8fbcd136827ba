"""What a person sees while the loop runs: the nodes' events (:mod:`failforward.graph.events`)
as progress bars, log lines, the plan, the critic's counts and a table per cycle."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from failforward.agents.planner import cell_key
from failforward.graph.events import CycleRow, Event, Events, Line, PlanMade, Verdicts
from failforward.graph.events import Progress as Bar

CYCLE_COLUMNS = (
    "cycle",
    "test acc (95% CI)",
    "probe acc",
    "accepted",
    "rejected",
    "clusters",
    "seconds",
)


class LoopUI:
    """Rich output for a run; pass ``Console(quiet=True)`` to silence it. :meth:`show` is the
    sink of the nodes' events; :meth:`log` and :meth:`task` are the application's own (its log
    lines may hold rich markup, an event's text never does)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self._live: Progress | None = None  # the bars on screen; a bar opened meanwhile joins
        self._bars: dict[int, int] = {}  # an open bar's event task -> its rich task
        self._lock = threading.Lock()  # bars may move on other threads

    def show(self, event: Event) -> None:
        """Show one of the nodes' events."""
        if isinstance(event, Bar):
            self._bar(event)
        elif isinstance(event, Line):
            self.console.print(event.text, style="yellow" if event.level == "warning" else None,
                               markup=False, highlight=False)  # fmt: skip
        elif isinstance(event, CycleRow):
            self.cycle_table(list(event.history))
        elif isinstance(event, PlanMade):
            self._lines(plan_lines(event))
        elif isinstance(event, Verdicts):
            self._lines(verdict_lines(event))

    def _lines(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(line, markup=False, highlight=False)

    def _bar(self, event: Bar) -> None:
        with self._lock:
            shown = self._bars.get(event.task)
            if shown is None:
                if event.done:
                    return
                if self._live is None:
                    self._live = Progress(
                        TextColumn("[bold]{task.description}"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TimeElapsedColumn(),
                        console=self.console,
                        transient=False,
                    )
                    self._live.start()
                self._bars[event.task] = self._live.add_task(
                    escape(event.description), total=event.total, completed=event.completed
                )
                return
            assert self._live is not None
            self._live.update(shown, completed=event.completed, total=event.total)
            if event.done:
                del self._bars[event.task]
                if not self._bars:
                    self._live.stop()
                    self._live = None

    @contextmanager
    def task(self, description: str, total: int | None):
        """A progress bar; the body gets ``advance(n)`` and ``update(completed, total)``. A bar
        opened while another is on screen joins it (one live display at a time)."""
        with Events(self.show).task(description, total) as bar:
            yield bar

    def log(self, message: str) -> None:
        self.console.print(message)

    def cycle_table(self, rows: list[dict]) -> None:
        table = Table(title="failforward: test accuracy per cycle")
        for column in CYCLE_COLUMNS:
            table.add_column(column, justify="right")
        for r in rows:
            table.add_row(
                f"{r['cycle']} (rolled back)" if r.get("rolled_back") else str(r["cycle"]),
                f"{r['test_acc']:.1%} ({r['test_ci'][0]:.1%}-{r['test_ci'][1]:.1%})",
                f"{r['probe_acc']:.1%}",
                str(r.get("accepted", "-")),
                str(r.get("rejected", "-")),
                str(r.get("clusters", "-")),
                f"{r['seconds']:.0f}",
            )
        self.console.print(table)


def plan_lines(event: PlanMade) -> list[str]:
    """One line per cluster: failures (share), near-item accuracy, change, budget and kind; the
    cells its budget is drawn from; then the targets outside any cluster."""
    clusters, plan = event.clusters, event.plan
    by_cluster: dict[int, list] = {}
    for t in plan.targets:
        if t.cluster_id is not None:
            by_cluster.setdefault(t.cluster_id, []).append(t)
    total = sum(c.size for c in clusters) or 1
    lines = ["  failures (share) near-ok change -> budget kind: cluster"]
    for c in clusters:
        targets = by_cluster.get(c.cluster_id, [])
        near = "-" if c.success is None else f"{c.success:.0%}"
        kinds = "+".join(sorted({t.kind for t in targets})) or "cluster"
        change = "-" if c.outlier else c.status
        lines.append(
            f"  {c.size:>3} ({c.size / total:>4.0%}) {near:>4} {change:<6}"
            f" -> {sum(t.budget for t in targets):>3} {'outlier' if c.outlier else kinds}:"
            f" {c.name}"
        )
        for t in [t for t in targets if t.cell]:  # where its budget is drawn
            lines.append(f"  {'':>22}    {t.budget:>3} {t.kind}: {cell_key(t.cell, ', ')}")
    for t in plan.targets:
        if t.cluster_id is None:
            how = "" if t.success is None else f" (p {t.success:.0%}, weight {t.weight:.3g})"
            lines.append(f"  {'':>22} -> {t.budget:>3} {t.kind}: {t.name}{how}")
    return lines


def verdict_lines(event: Verdicts) -> list[str]:
    """The critic's counts per source, the refill, what verified the accepted examples, and an
    example detail per rejection reason."""
    lines = [
        f"  critic ({source}): " + ", ".join(f"{k} {v}" for k, v in counts.items())
        for source, counts in event.by_source.items()
    ]
    if event.refilled:
        refill = f"{event.refilled} surplus examples of other targets filled the budget"
        lines.append(f"  refill: {refill}")
    if event.accepted_by:
        by = ", ".join(f"{k} {n}" for k, n in event.accepted_by.items())
        lines.append(f"    accepted by {by}")
    lines += [f"    {reason}: {detail[:160]}" for reason, detail in event.rejected.items()]
    return lines
