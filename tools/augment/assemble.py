"""Assembling an augmented pretraining corpus from source documents and their accepted rewrites.

Three modes (after arXiv 2603.18534, "Data-efficient pre-training by scaling synthetic
megadocs"): ``rephrase`` (every rephrase its own document), ``stitch`` (a source and its accepted
rephrases as one "megadoc") and ``stretch`` (rationales inserted between the source's sentences).
Every output row keeps its lineage: the source document, the kind, the styles it holds.
"""

from __future__ import annotations

import json
import random
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from failforward.tools.augment.corpus import Document, approx_tokens, split_sentences

Mode = Literal["rephrase", "stitch", "stretch"]
MODES = typing.get_args(Mode)


@dataclass
class Row:
    """One document of the output corpus."""

    text: str
    kind: str  # real, rephrase, stitch, stretch
    source_id: str
    styles: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def stitch(source: str, rephrases: list[str]) -> str:
    """The source followed by its rephrases, one blank line between each.

    Example:
        >>> stitch("A cat sat.", ["The cat was sitting.", "Sitting: a cat."])
        'A cat sat.\\n\\nThe cat was sitting.\\n\\nSitting: a cat.'
    """
    return "\n\n".join([source.strip(), *(r.strip() for r in rephrases if r.strip())])


def stretch(source: str, rationales: list[str]) -> str:
    """The source with ``rationales[i]`` inserted after its i-th sentence (counted over all
    paragraphs); an empty rationale inserts nothing. Paragraph breaks are kept.

    Example:
        >>> stretch("It rains. Roads get wet.", ["Water falls.", "So they shine."])
        'It rains. Water falls. Roads get wet. So they shine.'
    """
    paragraphs = [p.strip() for p in source.split("\n\n") if p.strip()]
    count = sum(len(split_sentences(p)) for p in paragraphs)
    if len(rationales) > count:
        raise ValueError(f"{len(rationales)} rationales for {count} sentences")
    out, i = [], 0
    for paragraph in paragraphs:
        words = []
        for sentence in split_sentences(paragraph):
            words.append(sentence)
            if i < len(rationales) and rationales[i].strip():
                words.append(rationales[i].strip())
            i += 1
        out.append(" ".join(words))
    return "\n\n".join(out)


def sentence_count(source: str) -> int:
    """How many rationales :func:`stretch` can place in ``source``."""
    return sum(len(split_sentences(p)) for p in source.split("\n\n") if p.strip())


def assemble(
    sources: list[Document],
    rephrases: dict[str, list[tuple[str, str]]],
    rationales: dict[str, list[str]],
    mode: str,
) -> list[Row]:
    """The synthetic rows of ``mode``: ``rephrases`` maps a source id to its accepted
    ``(style, text)``; ``rationales`` to one rationale per sentence (for ``stretch``)."""
    if mode not in MODES:
        raise ValueError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
    rows = []
    for doc in sources:
        mine = rephrases.get(doc.doc_id, [])
        if mode == "rephrase":
            rows += [Row(text, "rephrase", doc.doc_id, [style]) for style, text in mine]
        elif mode == "stitch" and mine:
            text = stitch(doc.text, [t for _, t in mine])
            rows.append(Row(text, "stitch", doc.doc_id, [s for s, _ in mine]))
        elif mode == "stretch" and rationales.get(doc.doc_id):
            rows.append(Row(stretch(doc.text, rationales[doc.doc_id]), "stretch", doc.doc_id))
    return rows


def mix(real: list[Document], synthetic: list[Row], real_share: float, seed: int = 0) -> list[Row]:
    """Every real document plus synthetic rows (drawn in a seeded order) until the synthetic
    share of estimated tokens reaches ``1 - real_share``, shuffled together. With too few
    synthetic rows all are used (the share is then lower; :func:`token_shares` tells).

    Example:
        >>> docs = [Document("a", "x" * 400, "t")]
        >>> rows = [Row("y" * 400, "rephrase", "a"), Row("z" * 400, "rephrase", "a")]
        >>> [r.kind for r in mix(docs, rows, real_share=0.5)]
        ['real', 'rephrase']
    """
    if not 0.0 < real_share <= 1.0:
        raise ValueError(f"--real-share must be in (0, 1], got {real_share}")
    rng = random.Random(seed)
    out = [Row(d.text, "real", d.doc_id) for d in real]
    real_tokens = sum(approx_tokens(d.text) for d in real)
    wanted = real_tokens * (1 - real_share) / real_share
    pool = list(synthetic)
    rng.shuffle(pool)
    taken = 0
    for row in pool:
        if taken >= wanted:
            break
        out.append(row)
        taken += approx_tokens(row.text)
    rng.shuffle(out)
    return out


def token_shares(rows: list[Row]) -> dict[str, float]:
    """Share of estimated tokens by row kind."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.kind] = totals.get(row.kind, 0) + approx_tokens(row.text)
    whole = sum(totals.values()) or 1
    return {kind: n / whole for kind, n in sorted(totals.items())}


def write_rows(path: Path, rows: list[Row]) -> None:
    """Rows ``{text, kind, source_id, styles}`` as JSONL, or Parquet when ``path`` ends in
    ``.parquet``; written whole or not at all."""
    partial = path.with_suffix(".partial")
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [("text", pa.string()), ("kind", pa.string()), ("source_id", pa.string()),
             ("styles", pa.list_(pa.string()))]
        )  # fmt: skip
        pq.write_table(pa.Table.from_pylist([r.as_dict() for r in rows], schema), partial)
    else:
        with partial.open("w") as out:
            for row in rows:
                out.write(json.dumps(row.as_dict()) + "\n")
    partial.replace(path)
