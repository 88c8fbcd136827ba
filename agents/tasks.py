"""One shape for every LLM role's request, and one helper that sends them.

A :class:`Task` declares the pack template its prompts come from, how a reply is parsed (a
``ValueError`` in words fit to show the model when it cannot be used), how each call is tagged
and how many repair requests an unusable reply gets. :func:`ask` renders every request, sends
them through the role's client in one batch, parses the replies and, for a task that repairs,
sends each unusable reply back once per round with what was wrong, until it parses or the
repairs run out. Tags name what a request is for and are part of the call cache's key, so a
resumed run finds exactly its own replies.

Example:
    >>> NAME = Task("analyst", parse=parse_cluster_name, tag="c{key}")      # doctest: +SKIP
    >>> replies = ask(client, pack, NAME, [("2-k0", {"cluster": c, "failures": f})])
    >>> replies[0].value.name
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
MAX_ECHO = 1500  # characters of a bad reply quoted back in a repair prompt


@dataclass(frozen=True)
class Task(Generic[T]):
    """What one kind of LLM request is: its template, its parser and its tag."""

    template: str  # the pack template that renders the prompt
    parse: Callable[[str], T]  # a reply's value; ValueError when the reply cannot be used
    tag: str = "{key}"  # the call's tag, from the request's key and (repairs) attempt number
    temperature: float | None = 0.0  # None: the endpoint's own
    repairs: int = 0  # repair requests after an unusable reply
    shape: str = ""  # what a repaired reply must look like (ends the repair prompt)
    parse_uses: tuple[str, ...] = ()  # template variables the parser also takes, by name


@dataclass
class Reply(Generic[T]):
    """What came of one request after at most ``1 + repairs`` calls."""

    value: T | None = None
    error: str = ""  # why there is no value
    requests: int = 0
    answered: bool = False  # the endpoint replied at least once (unparseable vs unavailable)
    text: str | None = None  # the last reply's text


def raw(text: str) -> str:
    """The parse of a task whose reply is used as it is."""
    return text


def repair_prompt(prompt: str, reply: str, error: str, shape: str) -> str:
    """Ask again, showing the model its unusable reply and what was wrong with it."""
    return (
        f"Your reply to the request below could not be used: {error}\n\n"
        f"Request:\n{prompt}\n\nYour reply:\n{reply[:MAX_ECHO]}\n\n"
        f"Reply again with only {shape}"
    )


def ask(
    client,
    pack,
    task: Task[T],
    requests: list[tuple[str, dict[str, Any]]],
    advance: Callable[[int], None] | None = None,
) -> list[Reply[T]]:
    """One :class:`Reply` per ``(key, template variables)`` request, in order. ``advance(n)``
    is called as first requests finish (for a progress bar)."""
    prompts = [pack.render(task.template, **variables) for _, variables in requests]
    replies: list[Reply[T]] = [Reply() for _ in requests]
    asks = dict(enumerate(prompts))
    for attempt in range(task.repairs + 1):
        if not asks:
            break
        order = list(asks)
        tags = [task.tag.format(key=requests[i][0], attempt=attempt) for i in order]
        texts = client.complete(
            [asks[i] for i in order],
            temperature=task.temperature,
            tags=tags,
            advance=advance if attempt == 0 else None,
        )
        asks = {}
        for i, text in zip(order, texts, strict=True):
            reply = replies[i]
            reply.requests += 1
            reply.text = text
            if text is None:  # the client already retried transport errors
                reply.error = f"the {client.role} endpoint gave no reply"
                continue
            reply.answered = True
            try:
                uses = {name: requests[i][1][name] for name in task.parse_uses}
                reply.value, reply.error = task.parse(text, **uses), ""
            except ValueError as err:
                reply.error = str(err)
                asks[i] = repair_prompt(prompts[i], text, str(err), task.shape)
    return replies
