"""The augmentation graph's teacher and critic: rewrites of document chunks, and the checks that
keep only faithful ones.

A rewrite is checked, in order, for **form** (``empty``; ``repetitive``: it loops, repeating its
own word runs more than the chunk does; ``truncated``: it stops mid-sentence; ``length``: too
short or too long for its style) and **content** (``unfaithful``: its embedding
is too far from the chunk's; ``inconsistent``: the optional LLM judge says it states what the chunk
does not support; ``duplicate``: another accepted rewrite of the same chunk says the same). A
rewrite that fails only on form is rewritten once, conditioned on the chunk and the reason
(GDR-style), and checked again.
"""

from __future__ import annotations

import re

import numpy as np

from failforward.agents.replies import json_value
from failforward.agents.tasks import Task, raw
from failforward.tools.augment.pack import AugmentPack, StyleSpec
from failforward.tools.embed.embeddings import Embedder
from failforward.tools.records import Rewrite

FORM_REASONS = ("empty", "repetitive", "truncated", "length")
_PREAMBLE = re.compile(r"^(?:sure|here(?:'s| is)|certainly)[^\n]*:\s*\n", re.IGNORECASE)
_ENDS = (".", "!", "?", ")", '"', "'", "`", "]", ":", "*")


def clean(text: str | None) -> str:
    """The rewrite without a chatty first line ("Here is the rewritten text:") or fences."""
    text = (text or "").strip()
    text = _PREAMBLE.sub("", text, count=1).strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.strip("`").split("\n", 1)[-1].strip()
    return text


def repeated_share(text: str, n: int = 8) -> float:
    """The share of ``text``'s ``n``-word runs that already occurred earlier in it (0 for text
    shorter than ``2 n`` words). A small model that loops scores near 1.

    Example:
        >>> round(repeated_share("the tree is evaluated by eval. " * 6), 2)
        0.79
    """
    words = text.lower().split()
    if len(words) < 2 * n:
        return 0.0
    seen, repeats = set(), 0
    runs = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    for run in runs:
        repeats += run in seen
        seen.add(run)
    return repeats / len(runs)


def form_problem(
    chunk: str, text: str, style: StyleSpec, max_repeated: float = 0.3
) -> tuple[str, str] | None:
    """``(reason, detail)`` when the rewrite fails on form, else None. ``repetitive``: more of
    its 8-word runs repeat than ``max_repeated`` and than in the chunk itself."""
    if not text:
        return "empty", "the reply held no text"
    repeated = repeated_share(text)  # before truncation: a loop runs into the token limit
    if repeated > max(max_repeated, repeated_share(chunk)):
        return "repetitive", f"{repeated:.0%} of its 8-word runs repeat earlier ones (a loop)"
    if not text.rstrip().endswith(_ENDS):
        return "truncated", f"it stops mid-sentence ({text[-40:]!r})"
    ratio = len(text) / max(1, len(chunk))
    if ratio < style.min_length_ratio:
        return "length", f"it is {ratio:.2f}x the passage's length, below {style.min_length_ratio}"
    if ratio > style.max_length_ratio:
        return "length", f"it is {ratio:.2f}x the passage's length, above {style.max_length_ratio}"
    return None


def check_rewrites(
    chunks: dict[tuple[str, int], str],
    rewrites: list[Rewrite],
    pack: AugmentPack,
    embed: Embedder,
    judge: dict[str, bool] | None = None,
) -> list[Rewrite]:
    """Set each rewrite's ``reason`` (and similarity); ``judge`` maps a rewrite's tag to the
    LLM judge's verdict when one was asked. Returns the rewrites, in order."""
    spec = pack.spec.critic
    todo = []
    for r in rewrites:
        r.text = clean(r.text)
        chunk = chunks[(r.doc_id, r.chunk_index)]
        problem = form_problem(chunk, r.text, pack.spec.styles[r.style], spec.max_repeated)
        if problem:
            r.reason, r.detail = problem
        else:
            todo.append(r)
    if todo:
        sources = embed([chunks[(r.doc_id, r.chunk_index)] for r in todo])
        vectors = embed([r.text for r in todo])
        for r, s, v in zip(todo, sources, vectors, strict=True):
            r.similarity = float(np.dot(s, v))
            r.scores["similarity"] = r.similarity
            if r.similarity < spec.min_similarity:
                r.reason = "unfaithful"
                r.detail = f"similarity {r.similarity:.2f} to the passage < {spec.min_similarity}"
            elif judge is not None and judge.get(r.tag) is False:
                r.reason, r.detail = "inconsistent", "the judge found unsupported statements"
            else:
                r.reason = "accepted"
        _dedupe([r for r in todo if r.accepted], vectors_of(todo, vectors), spec.near_duplicate)
    return rewrites


def vectors_of(rewrites: list[Rewrite], vectors: np.ndarray) -> dict[str, np.ndarray]:
    return {r.tag: v for r, v in zip(rewrites, vectors, strict=True)}


def _dedupe(accepted: list[Rewrite], vectors: dict[str, np.ndarray], threshold: float) -> None:
    """Within each chunk, a rewrite as close as ``threshold`` to an earlier kept one is dropped."""
    kept: dict[tuple[str, int], list[np.ndarray]] = {}
    for r in accepted:
        mine = kept.setdefault((r.doc_id, r.chunk_index), [])
        v = vectors[r.tag]
        best = max((float(np.dot(v, k)) for k in mine), default=-1.0)
        if best >= threshold:
            r.reason, r.detail = "duplicate", f"similarity {best:.3f} to another rewrite"
        else:
            mine.append(v)


def parse_judgement(reply: str | None) -> bool | None:
    """The judge's ``consistent`` flag from its JSON reply (None when unreadable)."""
    try:
        value = json_value(reply or "", dict).get("consistent")
    except ValueError:
        return None
    return value if isinstance(value, bool) else None


def parse_rationales(reply: str | None, count: int) -> list[str] | None:
    """A JSON list of ``count`` strings from the teacher's reply (None when it is not one)."""
    try:
        items = json_value(reply or "", list)
    except ValueError:
        return None
    if len(items) != count:
        return None
    if not all(isinstance(i, str) for i in items):
        return None
    return [i.strip() for i in items]


# The augmentation's checks as LLM tasks: a form-only failure rewritten once, and the critic's
# consistency verdict (a reply it cannot read leaves the rewrite to the other checks).
REFINE = Task("refine", parse=raw, tag="{key}/refine")
JUDGE = Task("judge", parse=parse_judgement, tag="{key}/judge")
