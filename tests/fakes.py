"""Scripted stand-ins for one unit's collaborators (never used where the real thing is tested)."""

from __future__ import annotations

from collections.abc import Callable

from failforward.agents.endpoints import CallFailed, Reply


class FakeSend:
    """Stands in for a role's HTTP call (``ChatClient(..., send=fake)``).

    Replies with ``script(prompt)`` when given (the reply depends on the request, not on arrival
    order, so concurrent batches stay deterministic), else with ``responses`` in turn. ``fail``
    maps a prompt to a :class:`CallFailed` to raise instead (or None to answer). ``calls`` counts
    the attempts, ``prompts`` keeps each one's prompt.
    """

    def __init__(
        self,
        responses: list[str] | None = None,
        script: Callable[[str], str] | None = None,
        fail: Callable[[str], CallFailed | None] | None = None,
    ):
        self.responses = list(responses or [])
        self.script = script
        self.fail = fail
        self.calls = 0
        self.prompts: list[str] = []

    async def __call__(self, request: dict) -> Reply:
        prompt = request["prompt"]
        self.calls += 1
        self.prompts.append(prompt)
        error = self.fail(prompt) if self.fail else None
        if error is not None:
            raise error
        if self.script is not None:
            return Reply(self.script(prompt))
        return Reply(self.responses[(self.calls - 1) % len(self.responses)])
