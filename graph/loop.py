"""The failforward loop as a LangGraph state machine.

START → bootstrap → evaluate_student ─┬─> analyze_failures → generate_examples →
                                      │     critique_examples → train_student → evaluate_student …
                                      └─> write_report → END

Nodes are thin: they read the run context, call agents and tools, write the store, and return a
partial state update.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable
from typing import Literal

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from failforward.agents import analyst, critic, generator, learnability, planner
from failforward.agents.endpoints import ChatClient
from failforward.graph.events import CycleRow, PlanMade, Verdicts
from failforward.graph.settings import RunSettings
from failforward.graph.state import LoopState, RunContext
from failforward.tools.packs.capacity import capacity_of, taken_keys
from failforward.tools.packs.composition import compare_sets, stored_form
from failforward.tools.records import Failure, GenerationPlan, Item, Verdict
from failforward.tools.report.report import verdict_digest
from failforward.tools.stats.by_skill import skill_accuracy, wilson_interval
from failforward.tools.stats.guard import guard_item, kept_students, paired_drop, student_checkpoint
from failforward.tools.stats.learnability import load_table
from failforward.tools.verify.verifiers import extract_answer, make_solver


def timed(node):
    """Record each node run (name and seconds) in the store and in ``state['nodes_run']``.

    A node that raises (LangGraph's ``interrupt`` aside) is recorded as the run's failure
    (``meta.failure``: node, cycle, error) until a node succeeds again (a resume), so
    ``doctor`` can say why a run stopped."""

    @functools.wraps(node)
    def wrapper(state: LoopState, runtime: Runtime[RunContext]) -> dict:
        started = time.perf_counter()
        store = runtime.context.store
        try:
            update = node(state, runtime)
        except GraphBubbleUp:  # an interrupt (a review waiting for its answer), not a failure
            raise
        except Exception as err:
            cycle = (state.get("plan") or {}).get("cycle", 0)
            store.set_meta("failure", {"node": node.__name__, "cycle": cycle, "error": repr(err)})
            raise
        if store.get_meta("failure"):
            store.set_meta("failure", None)
        # The cycle a node works for: the plan's once one exists (analyze opens it), else 0.
        plan = update.get("plan") or state.get("plan") or {}
        store.record_node(plan.get("cycle", 0), node.__name__, time.perf_counter() - started)
        return {**update, "nodes_run": [node.__name__]}

    return wrapper


def _solver(ctx: RunContext):
    spec = ctx.pack.spec
    return make_solver(spec.critic.solver, spec.verifier_options, ctx.pack.directory)


def _verifier(ctx: RunContext):
    return ctx.pack.make_verifier(ctx.source())


@timed
def bootstrap(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """Draw the probe and test sets once per run (fixed seeds, disjoint) and store them."""
    ctx = runtime.context
    if not ctx.store.eval_items("test"):
        probe, test = ctx.pack.draw_sets(ctx.source())
        ctx.store.save_eval_items("probe", probe)
        ctx.store.save_eval_items("test", test)
        found = compare_sets(ctx.pack, {"test": test, "probe": probe})
        ctx.store.set_meta("composition", stored_form(found))
        for warning in [c.warning for c in found if c.warning]:
            ctx.events.warn(f"  warning: {warning}")
    return {}


def _checkpoint(state: LoopState) -> str | None:
    """The student's latest checkpoint (runs from before full fine-tuning named it adapter_dir)."""
    return state.get("checkpoint") or state.get("adapter_dir")


@timed
def evaluate_student(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """Score the student on the probe and test sets; keep the probe failures for the analyst."""
    ctx, cycle, started = runtime.context, state.get("cycle", 0), time.perf_counter()
    verifier = _verifier(ctx)
    accuracy, sizes = {}, {}
    for split in ("probe", "test"):
        items = ctx.store.eval_items(split)
        sizes[split] = len(items)
        with ctx.events.task(f"cycle {cycle}: evaluate {split}", total=len(items)) as bar:
            attempts = ctx.student.answer(
                _checkpoint(state),
                ctx.pack,
                items,
                verifier,
                ctx.settings.eval_batch_size,
                bar.advance,
            )
        ctx.store.save_attempts(cycle, split, attempts)
        accuracy[split] = sum(a.correct for a in attempts) / len(attempts)
        by_skill = skill_accuracy([(a.item, a.score) for a in attempts])
        if by_skill:
            shown = "; ".join(f"{k} {v.text()}" for k, v in by_skill.items())
            ctx.events.log(f"  cycle {cycle} {split} by skill: {shown}")
        if split == "probe":
            failures = _failures(attempts)
            ctx.store.save_failures(cycle, failures)
    n_test = sizes["test"]
    low, high = wilson_interval(accuracy["test"], n_test)
    ctx.store.save_metrics(
        cycle,
        {
            "probe_acc": accuracy["probe"],
            "test_acc": accuracy["test"],
            "test_ci_low": low,
            "test_ci_high": high,
            "test_n": n_test,
        },
    )
    row = {
        "cycle": cycle,
        "test_acc": accuracy["test"],
        "test_ci": (low, high),
        "probe_acc": accuracy["probe"],
        "failures": len(failures),
        "seconds": time.perf_counter() - started,
        **_cycle_counts(ctx, cycle),
    }
    update = _guard(ctx, state, cycle)
    row["rolled_back"] = "checkpoint" in update
    if row["rolled_back"]:
        row |= _kept_accuracy(ctx, cycle, update["kept_cycle"])
    history = [*state.get("history", []), row]
    ctx.events.emit(CycleRow(tuple(history)))
    stop = decide_stop(history, ctx.settings)
    if row["rolled_back"] and ctx.settings.on_regression == "stop":
        stop = "regression: training made the student worse; rolled back"
    return {**update, "history": [row], "stop_reason": stop}


def _kept_accuracy(ctx: RunContext, cycle: int, kept: int) -> dict:
    """A rolled-back cycle ends with the kept student, so its accuracies (what the curves, the
    comparison and the stop rule read) are the kept evaluation's; the discarded student's are
    stored beside them."""
    metrics = ctx.store.metrics()
    now, before = metrics[cycle], metrics[kept]
    names = ("probe_acc", "test_acc", "test_ci_low", "test_ci_high")
    discarded = {"discarded_probe_acc": now["probe_acc"], "discarded_test_acc": now["test_acc"]}
    ctx.store.save_metrics(cycle, {**discarded, **{k: before[k] for k in names}})
    return {
        "test_acc": before["test_acc"],
        "test_ci": (before["test_ci_low"], before["test_ci_high"]),
        "probe_acc": before["probe_acc"],
        "failures": len(ctx.store.failures(kept)),
    }


def _guard(ctx: RunContext, state: LoopState, cycle: int) -> dict:
    """Compare the student just trained with the one it started from on the guard's half of the
    probe set, item by item; roll it back (``--on-regression rollback`` or ``stop``) when it got
    worse beyond noise. Returns the state update: which evaluation's student is in use from here
    on, and after a rollback the checkpoint it is at and the halved learning-rate factor."""
    if not state.get("trained"):  # the student did not change since its last evaluation
        return {"kept_cycle": cycle}
    baseline = state.get("kept_cycle", cycle - 1)
    before, after = (
        [
            score >= 1.0
            for i, (_, score) in enumerate(ctx.store.attempts(c, "probe"))
            if guard_item(i)
        ]
        for c in (baseline, cycle)
    )
    drop = paired_drop(before, after, ctx.settings.guard_alpha)
    roll_back = drop.regressed and ctx.settings.on_regression != "keep"
    ctx.store.save_metrics(
        cycle,
        {
            "guard_baseline": baseline,
            "guard_lost": drop.lost,
            "guard_gained": drop.gained,
            "guard_p": drop.p_value,
            "guard_regressed": drop.regressed,
            "guard_rolled_back": roll_back,
        },
    )
    if not drop.regressed:
        return {"kept_cycle": cycle}
    if not roll_back:
        ctx.events.log(
            f"  cycle {cycle}: the student got worse on held-out probe items: {drop.text()}; kept"
        )
        return {"kept_cycle": cycle}
    scale = state.get("lr_scale", 1.0) / 2
    ctx.events.log(
        f"  cycle {cycle}: the student got worse on held-out probe items: {drop.text()}; rolled "
        f"back to cycle {baseline}'s student; learning rates x{scale:g} from now on"
    )
    return {
        "kept_cycle": baseline,
        "checkpoint": state["previous_checkpoint"],
        "lr_scale": scale,
    }


def _failures(attempts) -> list[Failure]:
    """The probe attempts the student got wrong, as the analyst reads them."""
    return [
        Failure(
            question=a.item.question,
            expected=a.item.answer,
            output=a.output,
            extracted=a.extracted,
            metadata=a.item.metadata,
        )
        for a in attempts
        if not a.correct
    ]


def _cycle_counts(ctx: RunContext, cycle: int) -> dict:
    counts = ctx.store.verdict_counts(cycle)
    if not counts:
        return {}
    accepted = counts.get("accepted", 0)
    return {
        "accepted": accepted,
        "rejected": sum(counts.values()) - accepted,
        "clusters": len(ctx.store.clusters(cycle)),
    }


def decide_stop(history: list[dict], settings: RunSettings) -> str | None:
    """Why the loop should stop after the latest evaluation, or None to go on."""
    latest = history[-1]
    if latest["test_acc"] >= settings.target_accuracy:
        return "target accuracy reached"
    if latest["cycle"] >= settings.cycles:
        return "cycles done"
    if latest.get("failures", 1) == 0:
        return "no probe failures left"
    if len(history) > settings.patience:
        best_before = max(r["test_acc"] for r in history[: -settings.patience])
        if max(r["test_acc"] for r in history[-settings.patience :]) <= best_before:
            return "plateau"
    return None


def route_after_evaluate(state: LoopState) -> Literal["analyze_failures", "write_report"]:
    return "write_report" if state.get("stop_reason") else "analyze_failures"


@timed
def analyze_failures(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """Cluster the probe failures, track them from the last cycle, and write the cycle's plan."""
    from failforward.tools.embed.embeddings import embed

    ctx, cycle = runtime.context, state.get("cycle", 0) + 1
    kept = state.get("kept_cycle", cycle - 1)  # the evaluation of the student in use
    failures = ctx.store.failures(kept)
    probe = ctx.store.attempts(kept, "probe")
    with ctx.events.task(f"cycle {cycle}: analyze {len(failures)} failures", total=1) as bar:
        clusters, labels = analyst.cluster_failures(
            failures, ctx.pack, ctx.executor.embedder(embed), ctx.settings.seed
        )
        clusters = analyst.near_success(clusters, probe)
        if (named_by := ctx.clients.analyst) is not None:
            since = len(named_by.errors)
            clusters = analyst.name_with_llm(named_by, ctx.pack, clusters, failures, labels, cycle)
            _report_failed_calls(ctx, named_by, since)
            for c in clusters:
                if c.name_source.startswith("metadata ("):
                    ctx.events.log(
                        f"  analyst name for cluster {c.cluster_id} unusable, kept "
                        f"{c.name!r}: {c.name_source}"
                    )
        # After a rollback the failures are the kept student's again: no evidence of flatness.
        last = [p for p in ctx.store.plans() if p.cycle == cycle - 1 and kept == cycle - 1]
        targeted = {t.cluster_id for p in last for t in p.targets if t.cluster_id is not None}
        clusters, links = analyst.track_clusters(
            clusters,
            ctx.store.clusters(cycle - 1),
            targeted,
            cycle,
            ctx.pack.spec.analyst.track_threshold,
        )
        bar.advance()
    ctx.store.save_clusters(cycle, clusters, labels, failures_cycle=kept)
    ctx.store.save_cluster_links(cycle, links)
    plan = _plan(ctx, clusters, probe, cycle, _checkpoint(state))
    ctx.store.save_plan(plan)
    ctx.events.emit(PlanMade(tuple(clusters), plan))
    return {"plan": plan.model_dump()}


def _plan(ctx: RunContext, clusters, probe, cycle: int, checkpoint: str | None) -> GenerationPlan:
    """The cycle's plan by the run's rule: uniform, the oracle's (the pack's pilot table), the
    learnability rule's (on the student in use, ``checkpoint``), or the targeted plan over the
    analyst's clusters."""
    rule, budget = ctx.settings.plan, ctx.settings.budget
    if rule.mode == "uniform":
        return planner.plan_uniform(ctx.pack, budget, cycle)
    earlier = [r for r in ctx.store.examples() if r["cycle"] < cycle]
    if rule.mode == "oracle":
        table = load_table(ctx.pack)
        spent = learnability.spent_per_unit(earlier, table, ctx.pack)
        return learnability.plan_oracle(table, ctx.pack, budget, cycle, spent)
    capacity = _capacity(ctx, earlier, cycle)
    if rule.weighting == "learnability":
        success = _probe_success(ctx, probe, cycle, checkpoint)
        return learnability.plan_learnability(success, ctx.pack, budget, cycle, rule, capacity)
    return planner.plan_targeted(
        clusters,
        ctx.pack,
        budget,
        cycle,
        rule,
        probe,
        yields=planner.cell_yields(earlier, ctx.pack.cell_of),
        capacity=capacity,
        progress=_progress(ctx, earlier) if rule.weighting == "progress" else None,
    )


def _probe_success(ctx: RunContext, probe, cycle: int, checkpoint: str | None) -> list:
    """Each probe item with the student's success on it: its greedy answer's (1 or 0), or with
    ``--plan-samples k`` > 1 the share right of k replies sampled at ``--plan-temperature``
    (seeded by the run's seed and the cycle, so a resumed cycle samples the same)."""
    rule = ctx.settings.plan
    if rule.samples <= 1:
        return [(item, float(score >= 1.0)) for item, score in probe]
    items = [item for item, _ in probe]
    with ctx.events.task(
        f"cycle {cycle}: sample {rule.samples} x {len(items)} probe", total=1
    ) as bar:
        rates = ctx.student.success_rates(
            checkpoint, ctx.pack, items, _verifier(ctx), rule.samples, rule.temperature,
            ctx.settings.seed * 1000 + cycle, ctx.settings.eval_batch_size,
        )  # fmt: skip
        bar.advance()
    return list(zip(items, rates, strict=True))


def _progress(ctx: RunContext, earlier: list[dict]) -> dict[str, float]:
    """What each skill (or cell) gained on the probe set per example, the last cycle that trained
    on it (:func:`planner.learning_progress`)."""
    kept = kept_students(ctx.store.metrics())
    started_from = {cycle: kept[cycle - 1] for cycle in kept if cycle - 1 in kept}
    probes = {c: ctx.store.attempts(c, "probe") for c in {0, *started_from}}
    progress = planner.learning_progress(earlier, probes, started_from, ctx.pack.cell_of)
    if progress:
        shown = ", ".join(f"{k or 'all'} {v:.3f}" for k, v in sorted(progress.items()))
        ctx.events.log(f"  learning progress (probe items gained per example): {shown}")
    return progress


def _capacity(ctx: RunContext, earlier: list[dict], cycle: int):
    """How many new items each cell can still give the procedural teacher: none of the test
    set, the guard's probe half or what was accepted before (None: an LLM teacher writes)."""
    if generator.teacher_mode(ctx.pack, ctx.clients.teacher is not None) == "llm":
        return None
    taken = taken_keys([*_held_out(ctx), *(r for r in earlier if r["accepted"])])
    return capacity_of(ctx.source("train"), taken, ctx.settings.seed + 7919 * cycle)


def _report_failed_calls(ctx: RunContext, client: ChatClient, since: int) -> None:
    """Say which of the role's requests failed after their retries."""
    for error in client.errors[since:]:
        ctx.events.warn(f"  {client.role} request failed: {error}")


@timed
def generate_examples(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """The teacher writes candidates for every plan target; they are stored as pending."""
    ctx = runtime.context
    plan = GenerationPlan.model_validate(state["plan"])
    mode = generator.teacher_mode(ctx.pack, ctx.clients.teacher is not None)
    if mode == "llm":  # the bar counts teacher requests as they finish
        label, total = "teacher requests", generator.request_count(ctx.pack, plan)
    else:  # the procedural teacher over-draws; the critic keeps each target's budget
        label, total = "candidates", ctx.settings.overdraw * plan.budget
    with ctx.events.task(f"cycle {plan.cycle}: generate ({mode}, {label})", total=total) as bar:
        if mode == "llm":
            teacher = ctx.clients.teacher
            since = len(teacher.errors)
            candidates = generator.generate_llm(teacher, ctx.pack, plan, advance=bar.advance)
            _report_failed_calls(ctx, teacher, since)
        else:
            candidates = generator.generate_procedural(
                ctx.source("train"), plan, ctx.settings.seed, ctx.settings.overdraw
            )
            bar.update(len(candidates))
    pending = [Verdict(accepted=False, reason="pending", step="generate")] * len(candidates)
    ctx.store.save_examples(plan.cycle, candidates, pending)
    return {}


@timed
def critique_examples(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """Verify, judge, refine, dedupe and decontaminate the cycle's candidates; store every
    verdict (rewrites from refine join the cycle's examples with source ``refined``)."""
    from failforward.tools.embed.embeddings import embed

    ctx = runtime.context
    cycle = state["plan"]["cycle"]
    candidates = ctx.store.candidates(cycle)
    earlier = [
        Item(question=r["question"], answer=r["answer"])
        for r in ctx.store.examples(accepted=True)
        if r["cycle"] < cycle
    ]
    answer = ctx.pack.spec.answer
    llm = None
    if (judge := ctx.clients.critic) is not None:
        llm = critic.CriticLLM(judge, ctx.pack, cycle, progress=ctx.events.task)
        since = len(judge.errors)
    total = len(candidates)
    with ctx.events.task(f"cycle {cycle}: critique", total=total) as bar:
        screen = critic.Screen(
            _held_out(ctx), earlier, ctx.executor.embedder(embed), ctx.pack.spec.critic
        )
        candidates, verdicts = critic.critique(
            candidates,
            _verifier(ctx),
            _solver(ctx),
            screen,
            extract=lambda text: extract_answer(text, answer.pattern, answer.pick),
            llm=llm,
            map_over=ctx.executor.map_over(),
            quotas=_quotas(ctx, state["plan"]),
            refill=ctx.settings.refill,
        )
        bar.update(total)
    if judge is not None:
        _report_failed_calls(ctx, judge, since)
    ctx.store.save_examples(cycle, candidates, verdicts)
    by, why = verdict_digest(ctx.store.examples(cycle=cycle))
    ctx.events.emit(
        Verdicts(
            cycle,
            ctx.store.verdicts_by_source(cycle),
            {k: len(v) for k, v in sorted(by.items(), key=lambda kv: -len(kv[1]))},
            {reason: detail for reason, (_, detail) in why.items() if detail},
            sum(critic.REFILLED in v.detail for v in verdicts if v.accepted),
        )
    )
    return {}


def _quotas(ctx: RunContext, plan: dict):
    """How many accepted examples each target keeps (None: an LLM teacher wrote exactly what
    was asked, and everything it wrote that passes is kept, as before)."""
    if generator.teacher_mode(ctx.pack, ctx.clients.teacher is not None) == "llm":
        return None
    return generator.quotas(ctx.source("train"), GenerationPlan.model_validate(plan))


@timed
def train_student(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """Update the student on the cycle's accepted examples with the run's objective (SFT with
    replay, DPO on the student's own failures, both, or experimental GRPO); checkpoint it.
    With ``--train-from base`` the update starts from the base student instead and trains on
    every example accepted so far (:func:`~failforward.training.phases.training_rows`)."""
    from failforward.training.phases import train_cycle, training_rows

    ctx, cycle = runtime.context, state["plan"]["cycle"]
    accepted = ctx.store.examples(accepted=True)  # every cycle's, by id: read once
    examples = [r for r in accepted if r["cycle"] == cycle]
    total = int(ctx.store.metrics().get(cycle - 1, {}).get("train_examples_total", 0))
    metrics = {"train_examples": len(examples), "train_examples_total": total + len(examples)}
    if not examples:  # with base too: the same accepted set would train the same student
        ctx.events.log(f"  cycle {cycle}: the critic accepted nothing; the student is unchanged")
        ctx.store.save_metrics(cycle, metrics)
        return {"cycle": cycle, "trained": False}
    rows = training_rows(accepted, cycle, ctx.settings.train_from)
    metrics["train_rows"] = len(rows)  # accepted examples this update saw (base: all so far)
    model, tokenizer = ctx.student.at(_start_checkpoint(ctx, state))
    target = student_checkpoint(ctx.run_dir, cycle)
    out_dir = target.parent  # the trainers' own output
    config = ctx.settings.train_config(cycle, state.get("lr_scale", 1.0))
    earlier = [r for r in accepted if r["cycle"] < cycle]
    data = _cycle_data(ctx, cycle, rows, examples, earlier, state.get("kept_cycle", cycle - 1))
    if config.launcher == "ray":  # joined already unless this run resumed at training
        ctx.executor.join()
    trained = train_cycle(model, tokenizer, data, config, out_dir)
    for result in trained.phases:
        ctx.store.save_train_log(cycle, result.phase, result.log)
    if not trained.phases:  # nothing trained: the student stays at its last checkpoint
        ctx.store.save_metrics(cycle, metrics | trained.metrics)
        return {"cycle": cycle, "trained": False}
    checkpoint = ctx.student.save(trained.model, tokenizer, target)
    ctx.store.save_metrics(cycle, metrics | trained.metrics)
    return {
        "cycle": cycle,
        "checkpoint": checkpoint,
        "previous_checkpoint": _checkpoint(state),
        "trained": True,
    }


def _start_checkpoint(ctx: RunContext, state: LoopState) -> str | None:
    """Where a cycle's update starts: the student in use, or (``--train-from base``) the base
    model, which gets a fresh LoRA adapter seeded by the run's seed alone."""
    return None if ctx.settings.train_from == "base" else _checkpoint(state)


def _held_out(ctx: RunContext) -> list[Item]:
    """What no candidate may repeat or reword: the test set and the guard's half of the probe."""
    probe = ctx.store.eval_items("probe")
    return [*ctx.store.eval_items("test"), *(i for n, i in enumerate(probe) if guard_item(n))]


def _cycle_data(
    ctx: RunContext,
    cycle: int,
    rows: list[dict],
    examples: list[dict],
    earlier: list[dict],
    kept: int,
):
    """What the training phases draw on, from the run: its store, pack, verifier and bars.
    ``rows`` are what SFT and GRPO train on, ``examples`` the cycle's own (new DPO pairs come
    from them), ``earlier`` the accepted examples of earlier cycles (replay). The anchors come
    from the probe items outside the guard's half that the student in use (evaluation ``kept``)
    answered right. With ``--train-from base`` nothing is replayed: the earlier examples are in
    ``rows`` already."""
    from failforward.agents.student import student_messages, verifier_reward
    from failforward.training.phases import CycleData

    pack, base = ctx.pack, ctx.settings.train_from == "base"
    return CycleData(
        cycle=cycle,
        examples=rows,
        earlier=[] if base else earlier,
        successes=[s for s in ctx.store.successes(kept, "probe") if not guard_item(s["idx"])],
        messages=functools.partial(student_messages, pack),
        completion=_completion(ctx),
        pairs=functools.partial(_dpo_pairs, ctx, cycle, examples),
        reward=verifier_reward(pack, _verifier(ctx)),
        max_new_tokens=pack.spec.student.max_new_tokens,
        progress=ctx.events.task,
        log=ctx.events.log,
    )


def _completion(ctx: RunContext):
    """The reply the student learns for a stored example (the pack's completion template)."""
    return lambda ex: ctx.pack.completion(ex["question"], ex.get("solution") or "", ex["answer"])


def _preference_pairs(ctx: RunContext, cycle: int, examples, model, tokenizer) -> list[dict]:
    """The cycle's DPO pairs: stored ones (a resumed cycle samples nothing again), else the
    student's answers to the new items, failing ones paired with the verified answer. With
    ``--executor ray`` the Ray workers answer: the student as it enters DPO is written to a
    folder they load (and removed after)."""
    from failforward.agents.student import answer_items
    from failforward.training.offpolicy import preference_pairs

    stored = ctx.store.pairs(cycle)
    if stored:
        return stored
    items = [
        Item(question=e["question"], answer=e["answer"], metadata=e["metadata"]) for e in examples
    ]
    with ctx.events.task(
        f"cycle {cycle}: student answers {len(items)} new items", total=len(items)
    ) as bar:
        asked = (ctx.pack, items, _verifier(ctx), ctx.settings.eval_batch_size, bar.advance)
        if ctx.executor.answers_elsewhere:  # the workers answer the student as it is now
            from failforward.training.offpolicy import save_checkpoint

            now = student_checkpoint(ctx.run_dir, cycle).with_name("before-dpo")
            try:
                attempts = ctx.student.answer(str(save_checkpoint(model, tokenizer, now)), *asked)
            finally:
                shutil.rmtree(now, ignore_errors=True)
        else:
            attempts = answer_items(model, tokenizer, *asked)
    pairs = preference_pairs(examples, attempts, _completion(ctx))
    ctx.store.save_pairs(cycle, pairs)
    ctx.events.log(
        f"  cycle {cycle}: student wrong on {len(pairs)}/{len(items)} new items -> DPO pairs"
    )
    return pairs


def _dpo_pairs(ctx: RunContext, cycle: int, examples, model, tokenizer) -> list[dict]:
    """The pairs the DPO phase trains on: the cycle's own; with ``--train-from base`` also every
    earlier cycle's stored pairs, all in canonical order, as SFT retrains on every example. Their
    rejected sides are the answers of the students that made them: the path shows there."""
    from failforward.training.phases import canonical_order

    pairs = _preference_pairs(ctx, cycle, examples, model, tokenizer)
    if ctx.settings.train_from == "previous":
        return pairs
    earlier = [p for p in ctx.store.pairs() if p["cycle"] < cycle]
    return canonical_order([*earlier, *pairs], "question", "chosen", "rejected")


@timed
def write_report(state: LoopState, runtime: Runtime[RunContext]) -> dict:
    """Write ``report.md`` into the run folder."""
    from failforward.tools.report.report import write_report as render

    ctx = runtime.context
    ctx.store.set_meta("stop_reason", state.get("stop_reason"))
    path = render(ctx.store, ctx.run_dir, ctx.run_id)
    ctx.events.log(f"stopped: {state.get('stop_reason')}; report: {path}")
    return {}


LOOP_NODES = (
    bootstrap,
    evaluate_student,
    analyze_failures,
    generate_examples,
    critique_examples,
    train_student,
    write_report,
)


def build_graph(
    state_schema: type = LoopState,
    context_schema: type | None = RunContext,
    wrap: Callable | None = None,
    first: Callable | None = None,
    after: dict[str, Callable] | None = None,
    replace: dict[str, Callable] | None = None,
) -> StateGraph:
    """The loop's graph, uncompiled (compile it with a checkpointer to run it).

    ``wrap`` turns each node into the function the graph runs (same name); ``first`` is a node
    that runs before ``bootstrap`` (``app/studio.py`` uses both to make the run from its input).
    A graph script adds and swaps nodes without editing the package: ``after`` maps a node to
    one of its own that runs right after it (named by the function: a filter after
    ``critique_examples``, a review before training); ``replace`` maps a node's name to the
    function that runs in its place. Each takes ``(state, runtime)`` as the loop's nodes do and
    is timed as they are (``nodes_run``, the store's node table).
    """
    names = [node.__name__ for node in LOOP_NODES]
    after, replace = dict(after or {}), dict(replace or {})
    for option, given in (("after", after), ("replace", replace)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"build_graph({option}=...): no node {unknown}; the loop has {names}")
    for name in ("evaluate_student", "write_report"):
        if name in after:
            raise ValueError(
                f"build_graph(after=...): {name} is followed by a routing decision or the end; "
                "add the node after the one before it instead"
            )
    graph = StateGraph(state_schema, context_schema=context_schema)
    for node in LOOP_NODES:
        chosen = timed(replace[node.__name__]) if node.__name__ in replace else node
        graph.add_node(node.__name__, wrap(chosen) if wrap else chosen)
    for extra in after.values():
        graph.add_node(extra.__name__, wrap(timed(extra)) if wrap else timed(extra))
    if first is None:
        graph.add_edge(START, "bootstrap")
    else:
        graph.add_node(first.__name__, first)
        graph.add_edge(START, first.__name__)
        graph.add_edge(first.__name__, "bootstrap")

    def chain(start: str, end: str) -> None:
        if start in after:
            graph.add_edge(start, after[start].__name__)
            start = after[start].__name__
        graph.add_edge(start, end)

    chain("bootstrap", "evaluate_student")
    graph.add_conditional_edges("evaluate_student", route_after_evaluate)
    chain("analyze_failures", "generate_examples")
    chain("generate_examples", "critique_examples")
    chain("critique_examples", "train_student")
    chain("train_student", "evaluate_student")
    graph.add_edge("write_report", END)
    return graph
