"""``report.md`` for a run, written from the run store alone (so it can be redrawn any time)."""

from __future__ import annotations

from pathlib import Path

from failforward.tools.stats.guard import students
from failforward.tools.store import RunStore

GLOSSARY = [
    "**probe set**: items the student answers each cycle so the analyst can see its failures "
    "(half of it also guards against regressions); **test set**: held-out items no agent sees, "
    "for measurement only; **cluster**: a group of similar probe failures (embedded, k-means); "
    "**near-item acc**: the student's accuracy on the probe items closest to a cluster's "
    "failures, how near it is to learning them; **target**: what the teacher is asked to write "
    "for (a cluster, a stepping stone, exploration, or the uniform mix); **budget**: examples "
    "asked of the teacher; **verdict**: the critic's decision on a candidate, with a reason; "
    "**rolled back**: a cycle whose student did worse on the guard's probe half and was "
    "discarded.",
]


def render_report(store: RunStore, run_id: str) -> str:
    settings = store.get_meta("settings", {})
    metrics = store.metrics()
    lines = [
        f"# failforward run {run_id}",
        "",
        f"pack `{settings.get('pack')}`, student `{settings.get('student')}`, plan "
        f"`{settings.get('plan')}`, llm `{settings.get('llm')}`, budget {settings.get('budget')} "
        f"examples/cycle, seed {settings.get('seed')}",
        f"stop reason: {store.get_meta('stop_reason', 'running')}",
        "",
        *GLOSSARY,
        "",
        "## Test accuracy per cycle",
        "",
        "The test set is never shown to any agent nor trained on.",
        "",
        "| cycle | test acc | 95% CI | probe acc | train examples (cumulative) | last train loss |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for cycle, m in sorted(metrics.items()):
        loss = f"{m['train_loss']:.3f}" if "train_loss" in m else "-"
        lines.append(
            f"| {cycle} | {m.get('test_acc', 0):.1%} | {m.get('test_ci_low', 0):.1%}-"
            f"{m.get('test_ci_high', 0):.1%} | {m.get('probe_acc', 0):.1%} | "
            f"{int(m.get('train_examples_total', 0))} | {loss} |"
        )
    lines += skill_lines(store)
    lines += composition_lines(store)
    lines += guard_lines(metrics)
    lines += plan_lines(store)
    lines += training_table(store, settings)
    lines += ["## Time per node", "", "| node | runs | seconds |", "|---|---:|---:|"]
    totals: dict[str, list[float]] = {}
    for run in store.node_runs():
        totals.setdefault(run["node"], []).append(run["seconds"])
    for node, secs in totals.items():
        lines.append(f"| {node} | {len(secs)} | {sum(secs):.1f} |")
    lines += llm_tables(store)
    return "\n".join(lines) + "\n"


def skill_lines(store: RunStore) -> list[str]:
    """Test accuracy per skill and cycle with 95% intervals (multi-skill packs only)."""
    from failforward.tools.stats.by_skill import skill_curves

    curves = skill_curves(store)
    skills = list(dict.fromkeys(k for row in curves.values() for k in row))
    if not skills:
        return []
    cycles = sorted(curves)
    lines = [
        "",
        "## Test accuracy per skill",
        "",
        "Accuracy on each skill's share of the test set, 95% Wilson interval, items.",
        "",
        "| skill | " + " | ".join(f"cycle {c}" for c in cycles) + " |",
        "|---|" + "---:|" * len(cycles),
    ]
    for skill in skills:
        cells = [curves[c][skill].text() if skill in curves[c] else "-" for c in cycles]
        lines.append(f"| {skill} | " + " | ".join(cells) + " |")
    return lines


def composition_lines(store: RunStore) -> list[str]:
    """The probe and test sets' mix of skills and cells next to the source's (stored at the
    start of the run), with the sets that differ beyond chance named."""
    found = store.get_meta("composition")
    if not found:
        return []
    lines = [
        "",
        "## What the probe and test sets hold",
        "",
        "Each set's share of every skill or cell next to the source's own mix (a large draw "
        "of the eval source); a set that differs beyond chance (chi-square p < 0.001 and "
        "total variation >= 0.1) describes another distribution than the pack's.",
        "",
    ]
    for dimension, rows in found["dimensions"].items():
        lines += [f"| {dimension} | source | test | probe |", "|---|---:|---:|---:|"]
        for value, shares in rows.items():
            cells = " | ".join(f"{shares.get(k, 0):.0%}" for k in ("source", "test", "probe"))
            lines.append(f"| {_cell(value, 40)} | {cells} |")
        lines.append("")
    lines += [f"- {line}" for line in found["summaries"]]
    lines += [f"- **warning**: {line}" for line in found["warnings"]]
    return lines


def plan_lines(store: RunStore) -> list[str]:
    """Per cycle: the clusters, the plan's targets and the critic's verdicts, explained."""
    lines = ["", "## Plans and critic verdicts", ""]
    failures: dict = {}  # question -> the student's latest failure on it before the plan
    read = 0  # evaluations whose failures are in ``failures``
    for plan in store.plans():
        lines += [f"### cycle {plan.cycle} ({plan.mode})", ""]
        for cycle in range(read, plan.cycle):
            failures.update((f.question, f) for f in store.failures(cycle))
        read = max(read, plan.cycle)
        clusters = store.clusters(plan.cycle)
        lines += cluster_table(clusters, store.cluster_links(plan.cycle), failures)
        lines += [
            "| target | kind | failures | error share | p | weight | capacity | budget | "
            "accepted | knobs |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        examples = store.examples(cycle=plan.cycle)
        accepted: dict[str, int] = {}
        for row in examples:
            if row["accepted"]:
                accepted[row["target_id"]] = accepted.get(row["target_id"], 0) + 1
        for t in plan.targets:
            knobs = ", ".join(f"{k}={v}" for k, v in t.source_config.items()) or "-"
            weight = "-" if t.kind in ("explore", "uniform") else f"{t.weight:.2f}"
            capacity = "-" if t.capacity is None else str(t.capacity)
            p = "-" if t.success is None else f"{t.success:.0%}"
            lines.append(
                f"| {t.name} | {t.kind} | {t.cluster_size or '-'} | {t.error_share:.0%} | {p} | "
                f"{weight} | {capacity} | {t.budget} | {accepted.get(t.target_id, 0)} | {knobs} |"
            )
        lines += [
            "",
            "error share: the target's share of the cycle's probe failures; p: the student's "
            "estimated success in the target's cell (learnability plans: shrunk probe accuracy; "
            "the oracle: its pilot curve's accuracy at the examples given so far); weight: the "
            "plan's score for a target (a cluster's failures scaled by near-item accuracy; a "
            "frontier cell's share of the probe times p(1-p); an oracle unit's test accuracy "
            "gained per example), which sets its share of the budget (examples asked of the "
            "teacher); an explore or uniform target has "
            "no weight: it gets the fixed exploration share (--plan-explore) or the whole budget; "
            "capacity: new items the target's cell could still give when planned (none of the "
            "test set, the guard's probe half or what was accepted before; estimated by drawing "
            "twice the budget from it), the most its budget may be; "
            "accepted: examples the critic kept, more than the budget where refill (--refill) "
            "gave the target's surplus the place of what a short target could not fill; "
            "knobs: the source settings the teacher draws with (-: the pack's own mix).",
            "",
            *verdict_table(store.verdicts_by_source(plan.cycle)),
            "",
        ]
        lines += verification_lines(examples)
    return lines


def guard_lines(metrics: dict[int, dict[str, float]]) -> list[str]:
    """The student the run ends with, the best one, and the regression guard's decisions."""
    found = students(metrics)
    lines = ["", f"Final student: {_student_name(found.final)}."]
    if found.best != found.final:
        best, final = (metrics[c].get("probe_acc", 0) for c in (found.best, found.final))
        lines[-1] += (
            f" **The best student on the probe set was {_student_name(found.best)}** "
            f"({best:.1%} against {final:.1%})."
        )
    if not found.guarded:
        return lines
    lines += [
        "",
        "## Regression guard",
        "",
        "After each cycle's training the student is compared with the one it started from on "
        "the guard's half of the probe set (never trained on), item by item (one-sided exact "
        "McNemar test); a drop beyond noise is rolled back unless `--on-regression keep`.",
        "",
        "| cycle | compared with | items lost | items gained | p | decision |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for g in found.guarded:
        decision = (
            "rolled back"
            if g.get("rolled_back")
            else "kept (regressed)"
            if g.get("regressed")
            else "kept"
        )
        lines.append(
            f"| {g['cycle']} | cycle {int(g['baseline'])} | {int(g['lost'])} | {int(g['gained'])} |"
            f" {g['p']:.3g} | {decision} |"
        )
    return lines


def _student_name(cycle: int) -> str:
    return f"cycle {cycle}'s" if cycle else "the untrained one"


def llm_tables(store: RunStore) -> list[str]:
    """Per role: calls, tokens, cost (when the endpoint settings give prices), attempts that
    failed and were retried, requests lost after their retries; then tokens per role and cycle."""
    usage, faults = store.token_usage(), store.call_faults()
    if not usage and not faults:
        return []
    cost = _cost(store.get_meta("endpoints") or {})
    lines = [
        "",
        "## LLM calls per role",
        "",
        "| role | calls | prompt tokens | completion tokens | cost | retried attempts"
        " | failed requests |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for role in sorted(set(usage) | set(faults)):
        u = usage.get(role, {"calls": 0, "prompt": 0, "completion": 0})
        f = faults.get(role, {"retried": {}, "failed": {}})
        lines.append(
            f"| {role} | {u['calls']} | {u['prompt']} | {u['completion']} |"
            f" {cost(role, u['prompt'], u['completion'])} | {_kinds(f['retried'])} |"
            f" {sum(f['failed'].values())} |"
        )
    return lines + _tokens_by_cycle(store, cost) + _lost_requests(store)


def _cost(prices: dict):
    """``cost(role, prompt_tokens, completion_tokens)`` as text, from the endpoints' prices per
    million tokens (``-`` where a role has none)."""

    def cost(role: str, prompt: int, completion: int) -> str:
        config = prices.get(role) or {}
        if config.get("prompt_price") is None and config.get("completion_price") is None:
            return "-"
        total = prompt * (config.get("prompt_price") or 0) + completion * (
            config.get("completion_price") or 0
        )
        return f"{total / 1e6:.4f}"

    return cost


def _kinds(counts: dict[str, int]) -> str:
    n = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return f"{n} ({detail})" if n else "0"


def _tokens_by_cycle(store: RunStore, cost) -> list[str]:
    lines = [
        "",
        "## LLM tokens per role and cycle",
        "",
        "| role | cycle | calls | prompt | completion | cost |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_cycle = store.token_usage_by_cycle()
    for role, cycle in sorted(by_cycle, key=lambda k: (k[0], -1 if k[1] is None else k[1])):
        u = by_cycle[(role, cycle)]
        lines.append(
            f"| {role} | {'-' if cycle is None else cycle} | {u['calls']} | {u['prompt']} |"
            f" {u['completion']} | {cost(role, u['prompt'], u['completion'])} |"
        )
    return lines


def _lost_requests(store: RunStore) -> list[str]:
    failed = store.call_failures()
    if not failed:
        return []
    lines = [
        "",
        f"Requests lost after their retries ({len(failed)}; not cached: a resume before"
        " their node finished asks again, a finished node goes on without them):",
        "",
    ]
    return lines + [f"- {f['role']} `{f['tag'] or '-'}`: {f['detail'][:160]}" for f in failed[:20]]


def training_table(store: RunStore, settings: dict) -> list[str]:
    """Per cycle and phase: what the trainer saw, its loss from first to last step, cost."""
    metrics = store.metrics()
    cycles = [c for c in sorted(metrics) if store.train_log(c)]
    if not cycles:
        return []
    lines = [
        "## Training",
        "",
        f"objective `{settings.get('objective', 'sft')}`"
        + (", full fine-tuning" if settings.get("full_finetune") else ", LoRA"),
        "",
        "| cycle | phase | rows | steps | loss first -> last | tokens | seconds | peak RSS MB |",
        "|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for cycle in cycles:
        m = metrics[cycle]
        for phase, log in store.train_log(cycle).items():
            losses = [e["loss"] for e in log if "loss" in e]
            loss = f"{losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "-"
            rows = int(m.get(f"{phase}_rows", 0))
            if phase == "dpo":
                rows_text = f"{rows} pairs"
            elif phase == "sft":
                rows_text = f"{rows} ({int(m.get('train_replayed', 0))} replayed)"
            else:
                rows_text = f"{rows} prompts"
            lines.append(
                f"| {cycle} | {phase} | {rows_text} | {int(m.get(f'{phase}_steps', 0))} | {loss} |"
                f" {int(m.get(f'{phase}_tokens', 0))} | {m.get(f'{phase}_seconds', 0):.1f} |"
                f" {m.get('peak_rss_mb', 0):.0f} |"
            )
    truncated = sum(int(metrics[c].get("train_truncated", 0)) for c in cycles)
    lines += ["", f"rows cut by --max-length: {truncated}", ""]
    return lines


def cluster_table(clusters, links: list[dict], failures: dict | None = None) -> list[str]:
    """The cycle's failure clusters: size, near-item accuracy, change since the last cycle, what
    sets each apart (its top words and knob values), and two of its failures (``failures`` maps
    a question to the student's failure on it)."""
    if not clusters:
        return []
    lines = [
        "| cluster | failures | near-item acc | since last cycle | named by | sets it apart |",
        "|---|---:|---:|---|---|---|",
    ]
    for c in clusters:
        near = "-" if c.success is None else f"{c.success:.0%}"
        change = c.status
        if c.previous_id is not None:
            change += f" (was #{c.previous_id}: {c.previous_size}, cos {c.similarity:.2f})"
        if c.outlier:
            change = "-"
        apart = ", ".join([*c.keywords[:4], *(f"{k}={v}" for k, v in c.knob_modes.items())])
        lines.append(
            f"| {c.name} | {c.size} | {near} | {change} | {c.name_source} | {apart or '-'} |"
        )
    lines += ["", *_samples(clusters, failures or {})]
    vanished = [link for link in links if link["status"] == "vanished"]
    if vanished:
        ids = ", ".join(f"#{link['previous_id']}" for link in vanished)
        lines += ["", f"vanished since the last cycle: {ids}"]
    return [*lines, ""]


def _samples(clusters, failures: dict) -> list[str]:
    """Two failures of each cluster: question, expected answer, what the student said."""
    lines = []
    for c in clusters:
        for question in c.exemplars[:2]:
            failure = failures.get(question)
            said = (
                f" → expected `{_cell(failure.expected, 40)}`, said `{_cell(failure.output, 60)}`"
                if failure
                else ""
            )
            lines.append(f"- {c.name}: `{_cell(question, 80)}`{said}")
    return [*lines, ""] if lines else []


def _cell(text: str, limit: int) -> str:
    """Text fit for one markdown table cell."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def verdict_table(by_source: dict[str, dict[str, int]]) -> list[str]:
    """The critic's verdicts as a markdown table: one row per source, one column per reason."""
    if not by_source:
        return ["critic: no candidates"]
    reasons = sorted({r for counts in by_source.values() for r in counts} - {"accepted"})
    header = ["source", "accepted", "rejected", *reasons]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for source, counts in sorted(by_source.items()):
        accepted = counts.get("accepted", 0)
        row = [
            source,
            accepted,
            sum(counts.values()) - accepted,
            *(counts.get(r, 0) for r in reasons),
        ]
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return lines


def verdict_digest(
    examples: list[dict],
) -> tuple[dict[str, list[float]], dict[str, tuple[int, str]]]:
    """Of a cycle's stored examples (``RunStore.examples``): the accepted ones' agreements (NaN
    where there was none) by what verified them, and per rejection reason its count and the
    first non-empty detail. The log after a critique and ``report.md`` both read it."""
    by: dict[str, list[float]] = {}
    why: dict[str, tuple[int, str]] = {}
    for row in examples:
        if row["accepted"]:
            agreement = row["scores"].get("agreement", float("nan"))
            by.setdefault(row["verified_by"] or "unrecorded", []).append(agreement)
        else:
            count, detail = why.get(row["reason"], (0, row["detail"]))
            why[row["reason"]] = (count + 1, detail or row["detail"])
    return by, why


def verification_lines(examples: list[dict]) -> list[str]:
    """What verified the accepted examples (with the mean agreement of the independent answers
    where there were some), and for each rejection reason one example of why."""
    by, why = verdict_digest(examples)
    lines = []
    if by:
        lines += ["| verified by | accepted | mean agreement |", "|---|---:|---:|"]
        for how, agreements in sorted(by.items()):
            known = [a for a in agreements if a == a]
            mean = f"{sum(known) / len(known):.0%}" if known else "-"
            lines.append(f"| {how} | {len(agreements)} | {mean} |")
        lines.append("")
    for reason, (count, detail) in sorted(why.items()):
        example = f": {detail[:200]}" if detail else ""
        lines.append(
            f"- {reason} ({count}), for example{example}" if example else f"- {reason} ({count})"
        )
    return [*lines, ""] if why else lines


def write_report(store: RunStore, run_dir: Path, run_id: str) -> Path:
    """``report.md`` and ``report.html`` (the same, with figures) into the run folder."""
    from failforward.tools.report import plots
    from failforward.tools.report.html import page

    markdown = render_report(store, run_id)
    path = Path(run_dir) / "report.md"
    path.write_text(markdown)
    figures = [
        plots.accuracy_figure(store),
        plots.skill_figure(store),
        plots.failure_modes_figure(store),
        plots.plan_figure(store),
        plots.critic_figure(store),
    ]
    (Path(run_dir) / "report.html").write_text(page(f"failforward run {run_id}", markdown, figures))
    return path


def render_compare(compare_id: str, record: dict, summary: dict, run_ids: dict) -> str:
    """``report.md`` of a targeted-vs-uniform comparison."""
    from failforward.tools.stats.curves import ratio_sentence

    s = record["settings"]
    arms = list(summary["arms"])
    seeds = record["seeds"]
    uniform_cycles = record.get("uniform_cycles", s.get("cycles"))
    lines = [
        f"# failforward comparison {compare_id}",
        "",
        f"pack `{s.get('pack')}`, student `{s.get('student')}`, {s.get('cycles')} targeted and "
        f"{uniform_cycles} uniform cycles x {s.get('budget')} candidates, objective "
        f"`{s.get('objective')}`, seeds {seeds}; both arms share the student, the test set, "
        "the budget per cycle and the training settings.",
        "",
        *multiplier_lines(summary.get("multipliers")),
        f"First-crossing ratio (one point per seed): **{ratio_sentence(summary)}**: the uniform "
        "examples at which that seed's uniform curve (linear between cycles) first reaches the "
        "targeted arm's final test accuracy, divided by the targeted arm's examples.",
        "",
        "## Test accuracy against training examples (mean over seeds, 95% interval)",
        "",
        "| cycle | " + " | ".join(f"{a} examples | {a} test acc" for a in arms) + " |",
        "|---:|" + "---:|---:|" * len(arms),
    ]
    tables = summary["arms"]
    for i in range(max(len(tables[a]) for a in arms)):
        cells = [
            f"{r['examples']:.0f} | {r['accuracy']:.1%} ({r['low']:.1%}-{r['high']:.1%})"
            if r
            else "- | -"
            for r in (tables[arm][i] if i < len(tables[arm]) else None for arm in arms)
        ]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    lines += headroom_lines(summary.get("three_arms"))
    lines += _paired_table(summary.get("paired"))
    lines += _seeds_needed_lines(summary.get("seeds_needed"))
    lines += skills_table(summary.get("skills"))
    lines += _gains_table(summary.get("gains"))
    lines += _per_seed_table(seeds, summary["ratios"], run_ids)
    return "\n".join(lines) + "\n"


def skills_table(found: dict | None) -> list[str]:
    """Per skill, cycle and arm: test accuracy (mean over seeds, 95% interval) and the examples
    of that skill trained in the cycle: where each plan spent its budget, next to what it got."""
    if not found:
        return []
    arms = list(found)
    cycles = max(len(rows) for arm in arms for rows in found[arm].values())
    lines = [
        "",
        "## Per skill: examples trained and test accuracy",
        "",
        "Each cell: examples of the skill trained in that cycle (mean over seeds), then test "
        "accuracy on the skill's items after it (mean over seeds, 95% interval over seeds and "
        "those items).",
        "",
        "| skill | arm | " + " | ".join(f"cycle {c}" for c in range(cycles)) + " |",
        "|---|---|" + "---:|" * cycles,
    ]
    for skill in dict.fromkeys(k for arm in arms for k in found[arm]):
        for arm in arms:
            rows = found[arm].get(skill, [])
            cells = [
                f"{r.examples:.0f} ex, {r.accuracy:.0%} ({r.low:.0%}-{r.high:.0%})"
                if i < len(rows) and (r := rows[i])
                else "-"
                for i in range(cycles)
            ]
            lines.append(f"| {skill} | {arm} | " + " | ".join(cells) + " |")
    return lines


def headroom_lines(found) -> list[str]:
    """The three-arm section: the oracle's gain over uniform (is there headroom?), the plan's,
    and the share of the oracle's gain the plan recovers; on the skills not mastered when the
    pack's learnability table names the mastered ones, with each arm's change on those."""
    if found is None:
        return []
    lines = [
        "",
        "## Three arms: headroom and the share the plan recovers",
        "",
        "The oracle spends the budget by the pack's pilot learnability table, which no plan "
        "sees: if it does not beat uniform, the setup has no headroom for any plan. Paired "
        "differences after the same cycle (same seed, budget and test items; bootstrap 95% "
        "intervals over seeds and items); recovered: (targeted - uniform) / (oracle - "
        "uniform).",
    ]
    parts = [("all test items", found.all)]
    if found.focus is not None:
        parts.append((f"the skills not mastered ({found.focus.items} items)", found.focus))
    for title, part in parts:
        lines += [
            "",
            f"On {title}:",
            "",
            "| cycle | oracle - uniform | targeted - uniform | recovered |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {o.cycle} | {o.text()} | {t.text()} | {r.text()} |"
            for o, t, r in zip(part.oracle, part.targeted, part.recovered, strict=True)
        ]
    if found.focus_multiplier:
        lines += [
            "",
            "Targeted's data-efficiency multiplier on the skills not mastered (uniform's "
            "examples to reach targeted's accuracy there, over targeted's): "
            + "; ".join(f"cycle {m.cycle} {m.text()}" for m in found.focus_multiplier),
        ]
    if found.focus_changes:
        lines += _change_table(
            "Change on the skills not mastered since cycle 0, per arm (a gain over uniform is "
            "learning only where the arm itself rose):",
            found.focus_changes,
        )
    if found.mastered_falls:
        lines += _change_table(
            f"Change on the mastered skills ({', '.join(found.mastered)}) since cycle 0, per "
            "arm (a fall is negative):",
            found.mastered_falls,
        )
    return lines


def _change_table(title: str, changes: dict) -> list[str]:
    """One row per arm: its change since cycle 0 after each cycle (uniform has the most)."""
    lines = [
        "",
        title,
        "",
        "| arm | " + " | ".join(f"cycle {g.cycle}" for g in changes["uniform"]) + " |",
        "|---|" + "---:|" * len(changes["uniform"]),
    ]
    for arm, gains in changes.items():
        lines.append(f"| {arm} | " + " | ".join(g.text() for g in gains) + " |")
    return lines


def multiplier_lines(found: list | None) -> list[str]:
    """The headline: the multiplier after the targeted arm's last cycle, then every cycle's."""
    if not found:
        return []
    last = found[-1]
    if last.flat:
        verdict = (
            "not decided: the uniform arm's examples did not raise its accuracy, so no number "
            "of them matches the targeted arm's; read the paired differences"
        )
    elif last.excludes_one:
        verdict = "its interval excludes 1"
    else:
        verdict = "its interval includes 1: not decided"
    lines = [
        f"**Data-efficiency multiplier after targeted cycle {last.cycle}: {last.text()}**; "
        f"{verdict}. It is the uniform examples a monotone fit of the uniform arm's mean test "
        "accuracy against log examples needs to reach the targeted arm's mean accuracy, over "
        "the targeted arm's examples (above 1: targeted data teaches more per example); the "
        "interval is a bootstrap over seeds and test items together (both arms answer the same "
        'items). "> x" means beyond the uniform curve\'s end: at least x.',
        "",
        "| targeted cycle | targeted examples | targeted test acc | multiplier (95% interval) |",
        "|---:|---:|---:|---|",
    ]
    lines += [
        f"| {m.cycle} | {m.targeted_examples:.0f} | {m.targeted_accuracy:.1%} | {m.text()} |"
        for m in found
    ]
    return [*lines, ""]


def _paired_table(rows: list | None) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Paired comparison after the same cycle (same seed, budget and test items)",
        "",
        "Targeted minus uniform test accuracy after the same number of cycles (mean over "
        "seeds, bootstrap 95% interval over seeds and items), and an exact two-sided McNemar "
        "test over the seed-item pairs only one arm got right.",
        "",
        "| cycle | targeted examples | uniform examples | difference (95% interval) |"
        " only targeted right | only uniform right | McNemar p |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return lines + [
        f"| {r.cycle} | {r.targeted_examples:.0f} | {r.uniform_examples:.0f} | "
        f"{r.difference * 100:+.1f} points ({r.low * 100:+.1f} to {r.high * 100:+.1f}) | "
        f"{r.targeted_only} | {r.uniform_only} | {r.p_value:.3g} |"
        for r in rows
    ]


def seeds_needed_sentence(found) -> str:
    """How many seeds the paired difference after the last cycle would need, at the spread seen."""
    from failforward.tools.stats.multiplier import SEED_CAP

    needs = ", ".join(
        f"{'more seeds than any' if n >= SEED_CAP else n} for {e * 100:g} points"
        for e, n in found.seeds.items()
    )
    return (
        f"after cycle {found.cycle} the {found.observed_seeds} seeds' paired "
        f"differences spread {found.seed_spread * 100:.1f} points over seeds and the test items "
        f"add {found.item_spread * 100:.1f} points of standard error that more seeds do not "
        f"remove; at that spread a true difference needs {needs} (seeds per arm) for its 95% "
        "interval to exclude 0 with 80% power"
    )


def _seeds_needed_lines(found) -> list[str]:
    if found is None:
        return []
    return ["", f"Seeds needed: {seeds_needed_sentence(found)}."]


def _gains_table(gains: list[dict] | None) -> list[str]:
    if not gains:
        return []
    lines = [
        "",
        "## Accuracy gain at equal examples (targeted minus uniform, paired by seed)",
        "",
        "Uniform's accuracy is read off its curve (linear between cycles) at the number of "
        "examples the targeted arm had trained on; above 0 means targeted is ahead there.",
        "",
        "| cycle | targeted examples | gain (95% interval) | seeds |",
        "|---:|---:|---:|---:|",
    ]
    return lines + [
        f"| {g['cycle']} | {g['examples']:.0f} | {g['gain'] * 100:+.1f} points"
        f" ({g['low'] * 100:+.1f} to {g['high'] * 100:+.1f}) | {g['seeds']} |"
        for g in gains
    ]


def _per_seed_table(seeds: list[int], ratios: list, run_ids: dict) -> list[str]:
    lines = [
        "",
        "## Per seed",
        "",
        "| seed | targeted run | uniform run | targeted final acc | targeted examples |"
        " uniform examples to reach it | ratio |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for seed, ratio, t_id, u_id in zip(
        seeds, ratios, run_ids["targeted"], run_ids["uniform"], strict=True
    ):
        if ratio is None:
            lines.append(f"| {seed} | {t_id} | {u_id} | - | 0 | - | - |")
            continue
        reached = "never" if ratio.uniform_examples is None else f"{ratio.uniform_examples:.0f}"
        lines.append(
            f"| {seed} | {t_id} | {u_id} | {ratio.target_accuracy:.1%} | "
            f"{ratio.targeted_examples:.0f} | {reached} | {ratio.text()} |"
        )
    return lines


def mastered_skills(record: dict) -> set[str] | None:
    """The skills a comparison's pack table marks mastered (None: no oracle arm, or no table)."""
    from failforward.tools.report.comparison import record_arms

    if "oracle" not in record_arms(record):
        return None
    from failforward.tools.packs.pack import PackError, load_pack
    from failforward.tools.stats.learnability import load_table

    try:
        table = load_table(load_pack(record["settings"]["pack"]))
    except PackError:
        return None
    return {name for name, unit in table.skills.items() if unit.status == "mastered"}


def write_compare_report(folder: Path) -> tuple[Path, dict]:
    """Write a comparison's report.md and report.html; returns the .md path and the summary."""
    from failforward.tools.report.comparison import load_compare, load_outcomes
    from failforward.tools.report.html import page
    from failforward.tools.report.plots import compare_figure
    from failforward.tools.stats.curves import summarize

    record, curves, run_ids = load_compare(folder)
    summary = summarize(curves, load_outcomes(folder, run_ids), mastered_skills(record))
    markdown = render_compare(folder.name, record, summary, run_ids)
    path = folder / "report.md"
    path.write_text(markdown)
    html = page(f"failforward comparison {folder.name}", markdown, [compare_figure(summary)])
    (folder / "report.html").write_text(html)
    return path, summary
