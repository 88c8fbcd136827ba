"""The augmentation graph: a small corpus into more pretraining text with teacher rewrites.

START → load_corpus → rephrase → critique ─┬─> rationales (stretch) ─> assemble → END
                                           └─> assemble → END

``load_corpus`` splits the corpus into documents to augment and held-out documents no agent sees
(``augment-eval`` measures loss on those), and chunks the former to the endpoint's size; each chunk
is a unit of the output (its lineage names the document and chunk). ``rephrase`` asks the teacher
for K rewrites per chunk and style; ``critique`` keeps faithful ones (``agents/rephraser.py``),
rewriting form-only failures once; ``rationales`` asks for one reasoning sentence per source
sentence; ``assemble`` writes ``corpus.jsonl`` or ``corpus.parquet`` (``--mode`` rephrase |
stitch | stretch, mixed with the real chunks at ``--real-share``) and ``report.md``.

Durability is the main loop's: a run folder with a SQLite store (chunks, rewrites with verdicts,
the LLM call cache) and the LangGraph SQLite checkpointer, so ``--resume`` continues from the last
node that finished and sends no call that had completed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from failforward.agents.endpoints import ChatClient
from failforward.agents.rephraser import (
    FORM_REASONS,
    JUDGE,
    REFINE,
    Rewrite,
    check_rewrites,
    parse_rationales,
)
from failforward.agents.tasks import Task, ask, raw
from failforward.graph.events import Events
from failforward.graph.settings import AugmentSettings
from failforward.tools.augment.assemble import (
    Row,
    assemble,
    mix,
    sentence_count,
    token_shares,
    write_rows,
)
from failforward.tools.augment.corpus import Document, chunk, load_corpus, split_sentences
from failforward.tools.augment.pack import AugmentPack
from failforward.tools.augment.store import AugmentStore


class AugmentState(TypedDict, total=False):
    mode: str  # the run's --mode (routes after critique)
    nodes_run: list[str]


@dataclass
class AugmentContext:
    run_id: str
    run_dir: Path
    settings: AugmentSettings
    pack: AugmentPack
    store: AugmentStore
    teacher: ChatClient | None = None
    critic: ChatClient | None = None
    events: Events = field(default_factory=Events)


def _timed(name: str):
    """Name a node, and record each run of it (name and seconds) in the store and the state."""

    def decorate(node):
        def wrapper(state: AugmentState, runtime: Runtime[AugmentContext]) -> dict:
            started = time.perf_counter()
            update = node(state, runtime)
            runtime.context.store.record_node(0, name, time.perf_counter() - started)
            return {**update, "nodes_run": [*state.get("nodes_run", []), name]}

        wrapper.__name__ = name
        wrapper.__doc__ = node.__doc__
        return wrapper

    return decorate


def _styles(ctx: AugmentContext) -> list[str]:
    names = [s for s in ctx.settings.styles.split(",") if s] or list(ctx.pack.spec.styles)
    unknown = [s for s in names if s not in ctx.pack.spec.styles]
    if unknown:
        raise ValueError(f"--styles: unknown {unknown}; the pack has {list(ctx.pack.spec.styles)}")
    return names


def split_documents(
    docs: list[Document], heldout: float, limit: int, seed: int
) -> tuple[list[Document], list[Document]]:
    """``(to augment, held out)``: a seeded order, the first ``limit`` (0: all), the last
    ``heldout`` share of those held out."""
    import random

    order = list(docs)
    random.Random(seed).shuffle(order)
    if limit:
        order = order[:limit]
    n_held = round(len(order) * heldout)
    cut = len(order) - n_held
    return sorted(order[:cut], key=lambda d: d.doc_id), sorted(order[cut:], key=lambda d: d.doc_id)


@_timed("load_corpus")
def load_corpus_node(state: AugmentState, runtime: Runtime[AugmentContext]) -> dict:
    """Read the corpus, hold out a share of documents, chunk the rest; store both."""
    ctx = runtime.context
    docs = load_corpus(ctx.settings.corpus, min_chars=1)
    augment_docs, heldout = split_documents(
        docs, ctx.settings.heldout, ctx.settings.docs, ctx.settings.seed
    )
    rows = []
    for doc in augment_docs:
        for i, piece in enumerate(chunk(doc.text, ctx.pack.spec.chunk_tokens)):
            rows.append((doc.doc_id, i, piece, "augment"))
    rows += [(doc.doc_id, 0, doc.text, "heldout") for doc in heldout]
    ctx.store.save_chunks(rows)
    ctx.events.log(
        f"corpus {ctx.settings.corpus}: {len(augment_docs)} documents to augment"
        f" ({sum(r[3] == 'augment' for r in rows)} chunks), {len(heldout)} held out"
    )
    return {}


@_timed("rephrase")
def rephrase(state: AugmentState, runtime: Runtime[AugmentContext]) -> dict:
    """K rewrites per chunk and style from the teacher (cached per request)."""
    ctx = runtime.context
    chunks = ctx.store.chunks()
    rewrites = [
        Rewrite(doc_id, index, style, sample, None)
        for (doc_id, index) in chunks
        for style in _styles(ctx)
        for sample in range(ctx.settings.k)
    ]
    requests = [
        (r.tag, {"style": ctx.pack.spec.styles[r.style], "chunk": chunks[r.key], "title": r.doc_id})
        for r in rewrites
    ]
    task = Task("rephrase", parse=raw, temperature=ctx.pack.spec.temperature)
    with ctx.events.task(f"rephrase ({len(rewrites)} rewrites)", total=len(rewrites)) as bar:
        replies = ask(ctx.teacher, ctx.pack, task, requests, bar.advance)
    for r, reply in zip(rewrites, replies, strict=True):
        r.text = reply.value
        r.reason = "pending" if reply.value is not None else "no_reply"
    ctx.store.save_rewrites(rewrites)
    return {}


@_timed("critique")
def critique(state: AugmentState, runtime: Runtime[AugmentContext]) -> dict:
    """Check every rewrite; rewrite form-only failures once and check them again."""
    from failforward.tools.embed.embeddings import embed

    ctx = runtime.context
    chunks = ctx.store.chunks()
    rewrites = [r for r in ctx.store.rewrites() if r.reason != "no_reply" and not r.refined]
    with ctx.events.task("critique", total=len(rewrites)) as bar:
        judge = _judge(ctx, chunks, rewrites, bar.advance) if ctx.pack.spec.critic.judge else None
        check_rewrites(chunks, rewrites, ctx.pack, embed, judge)
        bar.update(len(rewrites))
    form = [r for r in rewrites if r.reason in FORM_REASONS]
    if form and ctx.pack.spec.critic.refine:
        with ctx.events.task(f"refine ({len(form)} form failures)", total=len(form)) as bar:
            replies = ask(
                ctx.teacher, ctx.pack, REFINE, _refine_requests(ctx, chunks, form), bar.advance
            )
        retry = []
        for r, reply in zip(form, replies, strict=True):
            r.reason = f"{r.reason} (refined)"  # the original stays rejected
            if reply.value is not None:
                retry.append(Rewrite(r.doc_id, r.chunk_index, r.style, r.sample, reply.value, True))
        judge = _judge(ctx, chunks, retry) if ctx.pack.spec.critic.judge else None
        check_rewrites(chunks, retry, ctx.pack, embed, judge)
        rewrites += retry  # a refined rewrite that passes takes the original's place
    ctx.store.save_rewrites(rewrites)
    counts: dict[str, int] = {}
    for r in rewrites:
        counts[r.reason] = counts.get(r.reason, 0) + 1
    ctx.events.log("  critic: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return {}


def _refine_requests(ctx: AugmentContext, chunks, form: list[Rewrite]) -> list:
    styles = ctx.pack.spec.styles
    return [
        (
            r.tag,
            {
                "style": styles[r.style],
                "chunk": chunks[r.key],
                "draft": r.text or "(empty)",
                "problem": r.detail,
            },
        )
        for r in form
    ]


def _judge(ctx: AugmentContext, chunks, rewrites: list[Rewrite], advance=None) -> dict[str, bool]:
    """The critic endpoint's consistency verdicts (a rewrite it cannot judge is not rejected)."""
    if ctx.critic is None or not rewrites:
        return {}
    requests = [(r.tag, {"chunk": chunks[r.key], "rephrase": r.text or ""}) for r in rewrites]
    replies = ask(ctx.critic, ctx.pack, JUDGE, requests, advance)
    return {
        r.tag: reply.value
        for r, reply in zip(rewrites, replies, strict=True)
        if reply.value is not None
    }


@_timed("rationales")
def rationales(state: AugmentState, runtime: Runtime[AugmentContext]) -> dict:
    """One reasoning sentence per source sentence, for ``--mode stretch``."""
    ctx = runtime.context
    chunks = ctx.store.chunks()
    keys = list(chunks)
    requests = []
    for key in keys:
        sentences = [s for p in chunks[key].split("\n\n") for s in split_sentences(p)]
        variables = {"sentences": sentences, "title": key[0], "count": sentence_count(chunks[key])}
        requests.append((f"a-{key[0]}/{key[1]}", variables))
    task = Task(
        "rationales",
        parse=parse_rationales,
        parse_uses=("count",),
        tag="{key}/rationales",
        temperature=ctx.pack.spec.temperature,
    )
    with ctx.events.task(f"rationales ({len(keys)} chunks)", total=len(keys)) as bar:
        replies = ask(ctx.teacher, ctx.pack, task, requests, bar.advance)
    found = {key: r.value for key, r in zip(keys, replies, strict=True) if r.value is not None}
    ctx.store.save_rationales(found)
    ctx.events.log(f"  rationales usable for {len(found)} of {len(keys)} chunks")
    return {}


@_timed("assemble")
def assemble_corpus(state: AugmentState, runtime: Runtime[AugmentContext]) -> dict:
    """Write ``corpus.jsonl``/``.parquet`` (real chunks + the mode's synthetic rows) and
    ``report.md``."""
    ctx = runtime.context
    units, accepted, notes = ctx.store.assembly_inputs()
    synthetic = assemble(units, accepted, notes, ctx.settings.mode)
    rows = mix(units, synthetic, ctx.settings.real_share, ctx.settings.seed)
    path = ctx.run_dir / f"corpus.{ctx.settings.format}"
    write_rows(path, rows)
    report = render_report(ctx, rows, synthetic)
    (ctx.run_dir / "report.md").write_text(report)
    ctx.events.log(f"wrote {len(rows)} documents to {path}; report: {ctx.run_dir / 'report.md'}")
    return {}


def render_report(ctx: AugmentContext, rows: list[Row], synthetic: list[Row]) -> str:
    from failforward.tools.report.report import llm_tables

    rewrites = ctx.store.rewrites()
    reasons: dict[str, int] = {}
    for r in rewrites:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    by_style: dict[str, list[int]] = {}
    for r in rewrites:
        if not r.refined:
            by_style.setdefault(r.style, [0, 0])[1] += 1
        if r.accepted:
            by_style.setdefault(r.style, [0, 0])[0] += 1
    s = ctx.settings
    lines = [
        f"# failforward augmentation {ctx.run_id}",
        "",
        f"corpus `{s.corpus}`, pack `{s.pack}`, mode `{s.mode}`, {s.k} rewrite(s) per chunk and"
        f" style, real share {s.real_share:.0%}, {len(ctx.store.chunks('heldout'))} documents"
        " held out.",
        "",
        "## Rewrites by style",
        "",
        "| style | accepted | asked |",
        "|---|---:|---:|",
        *(f"| {k} | {a} | {n} |" for k, (a, n) in sorted(by_style.items())),
        "",
        "## Critic verdicts",
        "",
        "| reason | rewrites |",
        "|---|---:|",
        *(f"| {k} | {v} |" for k, v in sorted(reasons.items())),
        "",
        "## Output corpus",
        "",
        f"{len(rows)} documents ({len(synthetic)} synthetic made, "
        f"{sum(r.kind != 'real' for r in rows)} used); token shares: "
        + ", ".join(f"{k} {v:.0%}" for k, v in token_shares(rows).items()),
    ]
    lines += llm_tables(ctx.store)
    return "\n".join(lines) + "\n"


def route_after_critique(state: AugmentState) -> str:
    return "rationales" if state.get("mode") == "stretch" else "assemble"


def build_augment_graph() -> StateGraph:
    graph = StateGraph(AugmentState, context_schema=AugmentContext)
    for node in (load_corpus_node, rephrase, critique, rationales, assemble_corpus):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "load_corpus")
    graph.add_edge("load_corpus", "rephrase")
    graph.add_edge("rephrase", "critique")
    graph.add_conditional_edges("critique", route_after_critique, ["rationales", "assemble"])
    graph.add_edge("rationales", "assemble")
    graph.add_edge("assemble", END)
    return graph
