"""Scripted stand-ins for one unit's collaborators (never used where the real thing is tested)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import Runnable


class FakeChatModel(FakeListChatModel):
    """Replies with ``responses`` in turn and counts the calls it received."""

    calls: int = 0

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        return super()._call(*args, **kwargs)

    def batch(self, *args: Any, **kwargs: Any) -> list:
        # FakeListChatModel's own batch ignores return_exceptions; a real chat model's does not.
        return Runnable.batch(self, *args, **kwargs)


class ScriptedChatModel(FakeChatModel):
    """Replies with ``script(prompt)``: the reply depends on the request, not on arrival order,
    so concurrent batches stay deterministic. ``prompts`` keeps every request received."""

    script: Callable[[str], str]
    prompts: list[str] = []

    def _call(self, messages: list, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        return self.script(prompt)
