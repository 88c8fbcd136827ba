"""The student as an answerer: batched greedy generation, answer extraction, scoring.

Prompts come from the pack's ``student.jinja`` (plus its system prompt) rendered through the
student's chat template; the same messages are what training teaches, so evaluation and training
never disagree on format.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.schemas import Item, StudentAttempt
from tools.packs import Pack
from tools.verifiers import Verifier, extract_answer


def student_messages(pack: Pack, question: str) -> list[dict[str, str]]:
    """The chat messages the student sees for ``question`` (no answer)."""
    messages = []
    if pack.spec.student.system_prompt:
        messages.append({"role": "system", "content": pack.spec.student.system_prompt})
    messages.append({"role": "user", "content": pack.render("student", question=question)})
    return messages


def generate(
    model,
    tokenizer,
    prompts: list[list[dict]],
    max_new_tokens: int,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy replies, one per chat prompt, batched by length to keep padding small."""
    import torch

    texts = [
        tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        for p in prompts
    ]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    replies: list[str] = [""] * len(texts)
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        for i, reply in zip(
            chunk, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True
        ):
            replies[i] = reply.strip()
        if on_batch:
            on_batch(len(chunk))
    return replies


def answer_items(
    model,
    tokenizer,
    pack: Pack,
    items: list[Item],
    verifier: Verifier,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> list[StudentAttempt]:
    """The student's scored attempt at each item."""
    prompts = [student_messages(pack, item.question) for item in items]
    replies = generate(
        model, tokenizer, prompts, pack.spec.student.max_new_tokens, batch_size, on_batch
    )
    attempts = []
    for item, reply in zip(items, replies, strict=True):
        extracted = extract_answer(reply, pack.spec.answer.pattern, pack.spec.answer.pick)
        score = verifier(extracted, item).score if extracted else 0.0
        attempts.append(StudentAttempt(item=item, output=reply, extracted=extracted, score=score))
    return attempts
