"""The replay buffer: earlier cycles' accepted examples mixed into a cycle's training data, so
skills learned earlier are not forgotten while the student trains on new failure modes."""

from __future__ import annotations

import random


def replay_sample(earlier: list[dict], n_new: int, mix: float, size: int, seed: int) -> list[dict]:
    """``round(mix * n_new)`` examples drawn without replacement from the buffer: the ``size``
    most recent of ``earlier`` (in store order, oldest first). Fewer when the buffer is smaller.

    Example:
        >>> len(replay_sample([{"q": i} for i in range(50)], n_new=20, mix=0.5, size=30, seed=0))
        10
    """
    buffer = earlier[-size:] if size else []
    wanted = min(len(buffer), round(mix * n_new))
    return random.Random(seed).sample(buffer, wanted) if wanted else []
