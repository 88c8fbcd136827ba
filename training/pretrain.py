"""Continued pretraining of the student on plain text, and its loss on held-out text.

Texts are tokenized, joined with the end-of-text token and cut into blocks of ``block`` tokens;
training takes exactly ``tokens // block`` blocks (cycling through the texts in a seeded order
when they hold fewer), so arms with equal token budgets take equal steps. Whole-model AdamW at a
constant learning rate; ``loss_on`` is the mean next-token loss over the held-out texts' blocks.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class PretrainResult:
    tokens: int  # tokens trained on
    steps: int
    seconds: float
    first_loss: float
    last_loss: float


def blocks_of(texts: list[str], tokenizer, block: int) -> list[list[int]]:
    """Token blocks of exactly ``block`` ids (the remainder that does not fill one is dropped)."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
    return [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]


def take_blocks(pool: list[list[int]], count: int, seed: int) -> list[list[int]]:
    """``count`` blocks: passes over ``pool``, each in a fresh seeded order."""
    if not pool:
        raise ValueError("no text long enough for one block")
    rng, out = random.Random(seed), []
    while len(out) < count:
        order = list(pool)
        rng.shuffle(order)
        out += order[: count - len(out)]
    return out


def pretrain(
    model,
    tokenizer,
    texts: list[str],
    tokens: int,
    block: int = 128,
    batch: int = 8,
    lr: float = 5e-4,
    seed: int = 0,
    on_step: Callable[[int, int], None] | None = None,
) -> PretrainResult:
    """Train ``model`` in place on ``tokens`` tokens of ``texts``."""
    import torch

    torch.manual_seed(seed)
    count = max(1, tokens // block)
    data = take_blocks(blocks_of(texts, tokenizer, block), count, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    steps = math.ceil(len(data) / batch)
    losses, started = [], time.perf_counter()
    for step in range(steps):
        ids = torch.tensor(data[step * batch : (step + 1) * batch])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step + 1, steps)
    model.eval()
    return PretrainResult(
        len(data) * block, steps, time.perf_counter() - started, losses[0], losses[-1]
    )


def loss_on(model, tokenizer, texts: list[str], block: int = 128, batch: int = 16) -> float:
    """Mean next-token loss over the blocks of ``texts`` (no gradient)."""
    import torch

    data = blocks_of(texts, tokenizer, block)
    if not data:
        raise ValueError("held-out text too short for one block")
    total, n = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(data), batch):
            ids = torch.tensor(data[i : i + batch])
            total += float(model(input_ids=ids, labels=ids).loss) * len(ids)
            n += len(ids)
    return total / n
