"""Near-duplicate and contamination detection: embeddings (FAISS inner product) gated by the
numbers a text contains, plus word n-gram overlap.

Sentence embeddings are blind to numbers ("23 - 60 + 7 =" and "23 - 61 + 7 =" score 0.90 with
MiniLM while a true rewording, "What is 23 - 60 + 7?", scores 0.72), so two texts count as the
same item only if they are close in embedding space *and* mention the same numbers *and* (where
both answers are known) have the same answer: "3 + 5 - 2 =" and "3 - 5 + 2 =" share every number
and most of their words but are different problems.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from failforward.tools.verify.verifiers import parse_number

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
MAX_GRAM_OWNERS = 2


def number_signature(text: str) -> tuple[str, ...]:
    """The numbers in ``text`` as a sorted multiset (rewording may reorder them).

    Example:
        >>> number_signature("Subtract 60 from 23, then add 7")
        ('23', '60', '7')
    """
    return tuple(sorted(n.replace(",", "") for n in _NUMBER.findall(text)))


def answer_key(answer: str | None) -> str | None:
    """An answer in a form where "7", "7.0" and " 7 " agree (None: not known)."""
    if answer is None:
        return None
    number = parse_number(answer)
    return str(number) if number is not None else " ".join(answer.lower().split())


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class NearIndex:
    """Texts seen so far, searchable for a near copy of a new text.

    Example:
        >>> index = NearIndex(embed, threshold=0.7)                  # doctest: +SKIP
        >>> index.add(["State the final answer: 23 - 60 + 7 ="])     # doctest: +SKIP
        >>> index.find("What is 23 - 60 + 7?", vector)               # doctest: +SKIP
        0
    """

    def __init__(self, threshold: float, ngram: int = 0, dim: int = 384):
        """``threshold``: cosine at or above which (with equal numbers) texts are the same item;
        ``ngram``: also match on a shared rare word n-gram of this length (0: off)."""
        import faiss

        self.threshold = threshold
        self.ngram = ngram
        self.index = faiss.IndexFlatIP(dim)
        self.texts: list[str] = []
        self.signatures: list[tuple[str, ...]] = []
        self.answers: list[str | None] = []
        self.gram_owner: dict[tuple[str, ...], int] = {}
        self.gram_count: Counter[tuple[str, ...]] = Counter()

    def add(
        self, texts: list[str], vectors: np.ndarray, answers: list[str | None] | None = None
    ) -> None:
        """Store ``texts`` with their vectors and, where known, their answers."""
        if not texts:
            return
        start = len(self.texts)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.texts += texts
        self.signatures += [number_signature(t) for t in texts]
        self.answers += [answer_key(a) for a in (answers or [None] * len(texts))]
        if self.ngram:
            for offset, text in enumerate(texts):
                for gram in word_ngrams(text, self.ngram):
                    self.gram_owner.setdefault(gram, start + offset)
                    self.gram_count[gram] += 1

    def find(
        self, text: str, vector: np.ndarray, answer: str | None = None, neighbours: int = 8
    ) -> tuple[int, str] | None:
        """``(index, why)`` of a stored text this one nearly copies, or None."""
        if self.ngram:
            for gram in word_ngrams(text, self.ngram):
                # An n-gram many stored texts share is a template, not a leak.
                if 0 < self.gram_count[gram] <= MAX_GRAM_OWNERS:
                    return self.gram_owner[gram], f"shares the {self.ngram}-gram {' '.join(gram)!r}"
        if not self.texts:
            return None
        scores, ids = self.index.search(vector.reshape(1, -1).astype(np.float32), neighbours)
        signature, key = number_signature(text), answer_key(answer)
        for score, i in zip(scores[0], ids[0], strict=True):
            if i < 0 or score < self.threshold or self.signatures[i] != signature:
                continue
            if key is None or self.answers[i] is None or key == self.answers[i]:
                return int(i), f"cosine {score:.2f} with the same numbers"
        return None
