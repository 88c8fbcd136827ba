"""The report's figures, drawn with matplotlib (Agg) from the run store, returned as SVG text so
``report.html`` embeds them and needs no other file."""

from __future__ import annotations

import io
from collections import defaultdict

from failforward.tools.store import RunStore


def _figure(width: float = 6.4, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "failforward"  # element ids too: same store, same bytes
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(alpha=0.3)
    return plt, fig, ax


def _svg(plt, fig) -> str:
    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # same store, same bytes
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG sits inside HTML


def accuracy_figure(store: RunStore) -> str | None:
    """Test accuracy per cycle with its 95% interval, and probe accuracy."""
    metrics = store.metrics()
    cycles = [c for c in sorted(metrics) if "test_acc" in metrics[c]]
    if not cycles:
        return None
    plt, fig, ax = _figure()
    test = [metrics[c]["test_acc"] for c in cycles]
    low = [metrics[c].get("test_ci_low", t) for c, t in zip(cycles, test, strict=True)]
    high = [metrics[c].get("test_ci_high", t) for c, t in zip(cycles, test, strict=True)]
    ax.fill_between(cycles, low, high, alpha=0.2, label="test 95% interval")
    ax.plot(cycles, test, marker="o", label="test (held out)")
    ax.plot(cycles, [metrics[c]["probe_acc"] for c in cycles], marker=".", ls="--", label="probe")
    ax.set(xlabel="cycle", ylabel="accuracy", title="Student accuracy per cycle", xticks=cycles)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def skill_figure(store: RunStore) -> str | None:
    """Test accuracy per skill per cycle with 95% intervals (multi-skill packs only)."""
    from failforward.tools.stats.by_skill import skill_curves

    curves = skill_curves(store)
    skills = list(dict.fromkeys(k for row in curves.values() for k in row))
    if not skills:
        return None
    plt, fig, ax = _figure()
    cycles = sorted(curves)
    for skill in skills:
        scores = [curves[c].get(skill) for c in cycles]
        xs = [c for c, sc in zip(cycles, scores, strict=True) if sc]
        kept = [sc for sc in scores if sc]
        low, high = zip(*(sc.interval for sc in kept), strict=True)
        ax.fill_between(xs, low, high, alpha=0.1)
        ax.plot(xs, [sc.accuracy for sc in kept], marker="o", label=skill)
    ax.set(xlabel="cycle", ylabel="test accuracy", title="Test accuracy per skill", xticks=cycles)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(fontsize=7)
    return _svg(plt, fig)


def failure_modes_figure(store: RunStore) -> str | None:
    """Probe failures per failure mode (clusters tracked across cycles) after each evaluation."""
    sizes: dict[str, dict[int, int]] = defaultdict(dict)
    names: dict[str, str] = {}
    for plan in store.plans():
        for c in store.clusters(plan.cycle):
            if c.outlier:
                continue
            mode = c.mode_id or f"c{plan.cycle}-{c.cluster_id}"
            sizes[mode][plan.cycle - 1] = c.size  # clusters of cycle N come from evaluation N-1
            names[mode] = c.name
    if not sizes:
        return None
    plt, fig, ax = _figure(6.4, 4.2)
    for mode, points in sorted(sizes.items(), key=lambda kv: -max(kv[1].values())):
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=names[mode][:48])
    ax.set(
        xlabel="evaluation after cycle",
        ylabel="probe failures",
        title="Failure modes over cycles (tracked clusters)",
    )
    evaluations = sorted({x for points in sizes.values() for x in points})
    ax.set_xticks(evaluations)
    if len(evaluations) == 1:  # one point per mode: give the axis a width
        ax.set_xlim(evaluations[0] - 1, evaluations[0] + 1)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return _svg(plt, fig)


def _stacked(title: str, ylabel: str, table: dict[int, dict[str, float]]) -> str | None:
    if not table:
        return None
    plt, fig, ax = _figure()
    cycles = sorted(table)
    keys = sorted({k for row in table.values() for k in row})
    bottom = [0.0] * len(cycles)
    for key in keys:
        values = [table[c].get(key, 0) for c in cycles]
        ax.bar(cycles, values, bottom=bottom, label=key)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set(xlabel="cycle", ylabel=ylabel, title=title, xticks=cycles)
    if len(cycles) == 1:
        ax.set_xlim(cycles[0] - 1, cycles[0] + 1)
    # beside the bars, never over them
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _svg(plt, fig)


def plan_figure(store: RunStore) -> str | None:
    """Each cycle's budget by target kind (cluster, stepping stone, explore, uniform)."""
    table: dict[int, dict[str, float]] = {}
    for plan in store.plans():
        row: dict[str, float] = defaultdict(float)
        for t in plan.targets:
            row[t.kind] += t.budget
        table[plan.cycle] = dict(row)
    return _stacked("The plan: budget per cycle by target kind", "examples", table)


def critic_figure(store: RunStore) -> str | None:
    """Each cycle's candidates by verdict (accepted and every reject reason)."""
    table = {plan.cycle: store.verdict_counts(plan.cycle) for plan in store.plans()}
    return _stacked(
        "The critic: candidates by verdict", "candidates", {c: r for c, r in table.items() if r}
    )


def compare_figure(summary: dict) -> str:
    """Both arms: mean test accuracy (95% interval over seeds) against mean training examples."""
    plt, fig, ax = _figure()
    for arm, rows in summary["arms"].items():
        xs = [r["examples"] for r in rows]
        ax.fill_between(xs, [r["low"] for r in rows], [r["high"] for r in rows], alpha=0.2)
        ax.plot(xs, [r["accuracy"] for r in rows], marker="o", label=arm)
    ax.set(
        xlabel="training examples (cumulative, mean over seeds)",
        ylabel="test accuracy",
        title="Targeted vs uniform",
    )
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.legend()
    return _svg(plt, fig)
