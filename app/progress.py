"""What a person sees while the loop runs: a progress bar per node and a table per cycle."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    """Rich output for a run; pass ``Console(quiet=True)`` to silence it."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self._live: Progress | None = None  # the bars on screen; a nested task joins them

    @contextmanager
    def task(self, description: str, total: int | None):
        """A progress bar; the body gets ``advance(n)`` and ``update(completed, total)``. A task
        opened inside another adds its bar under the first (one live display at a time)."""
        if self._live is not None:
            yield from self._bar(self._live, description, total)
            return
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        with progress:
            self._live = progress
            try:
                yield from self._bar(progress, description, total)
            finally:
                self._live = None

    @staticmethod
    def _bar(progress: Progress, description: str, total: int | None):
        task_id = progress.add_task(description, total=total)

        class Handle:
            @staticmethod
            def advance(n: int = 1) -> None:
                progress.advance(task_id, n)

            @staticmethod
            def update(completed: int, total: int | None = None) -> None:
                progress.update(task_id, completed=completed, total=total)

        yield Handle

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
