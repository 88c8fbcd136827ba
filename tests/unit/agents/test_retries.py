"""The endpoint client's retry, backoff and rate-limit logic, against a scripted transport."""

import asyncio
import random
import time

import pytest

from failforward.agents.endpoints import (
    CallFailed,
    ChatClient,
    EndpointConfig,
    RateLimiter,
    completion_reply,
    retry_delay,
)
from failforward.tools.store import RunStore
from tests.fakes import FakeSend


def _config(**extra):
    return EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", **extra)


def _client(tmp_path, send, **extra):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = ChatClient("teacher", _config(**extra), RunStore(tmp_path / "run.db"), send, sleep)
    return client, waits


def test_backoff_doubles_with_equal_jitter_and_is_capped():
    config = _config(backoff=0.5, max_backoff=3.0)
    rng = random.Random(0)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [retry_delay(attempt, config, rng=rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed value


def test_retry_after_is_honoured_up_to_the_cap():
    config = _config(backoff=0.5, max_backoff=10.0)
    assert 4.0 <= retry_delay(0, config, retry_after=4.0) <= 4.4
    assert retry_delay(0, config, retry_after=600.0) == 10.0


def test_transient_faults_are_retried_until_the_reply(tmp_path):
    kinds = iter(["rate_limited", "server_error", "malformed"])

    def fail(prompt):
        kind = next(kinds, None)
        return CallFailed(kind, "injected", retryable=True) if kind else None

    send = FakeSend(responses=["3 + 4 = 7"], fail=fail)
    client, waits = _client(tmp_path, send, retries=3, backoff=1.0)
    assert client.complete(["p"], tags=["c1-x"]) == ["3 + 4 = 7"]
    assert send.calls == 4 and client.retried == 3 and not client.errors
    assert client.faults == {"rate_limited": 1, "server_error": 1, "malformed": 1}
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0
    assert client.store.token_usage()["teacher"]["calls"] == 1  # the reply is cached


def test_retries_are_bounded_and_what_fails_is_counted(tmp_path):
    send = FakeSend(fail=lambda p: CallFailed("server_error", "HTTP 503", retryable=True))
    client, waits = _client(tmp_path, send, retries=2, backoff=0.1)
    assert client.complete(["a", "b"], tags=["c2-a", "c2-b"]) == [None, None]
    assert send.calls == 6 and len(waits) == 4  # 3 attempts each, 2 waits each
    assert [f["kind"] for f in client.store.call_failures()] == ["server_error"] * 2
    assert "after 3 attempts" in client.errors[0]


def test_a_rejected_key_is_not_retried(tmp_path):
    send = FakeSend(fail=lambda p: CallFailed("auth", "HTTP 401", retryable=False))
    client, waits = _client(tmp_path, send, retries=5)
    assert client.complete(["a"]) == [None]
    assert send.calls == 1 and waits == [] and client.faults == {"auth": 1}


def test_the_server_retry_after_sets_the_wait(tmp_path):
    first = iter([CallFailed("rate_limited", "429", retryable=True, retry_after=2.0)])
    send = FakeSend(responses=["ok"], fail=lambda p: next(first, None))
    client, waits = _client(tmp_path, send, retries=1, backoff=30.0)
    assert client.complete(["a"]) == ["ok"]
    assert 2.0 <= waits[0] <= 2.2  # not the 15-30 s backoff


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"choices": []}, "bad_reply"),
        ({"result": "3"}, "bad_reply"),
        ({"choices": [{"message": {"role": "assistant", "content": None}}]}, "bad_reply"),
        ([], "bad_reply"),
    ],
)
def test_replies_that_are_not_chat_completions_are_retryable_faults(body, kind):
    from openai.types.chat import ChatCompletion

    # As the SDK hands them over: built from the body without validation.
    completion = ChatCompletion.construct(**body) if isinstance(body, dict) else body
    with pytest.raises(CallFailed) as err:
        completion_reply(completion)
    assert err.value.kind == kind and err.value.retryable


def test_a_completion_gives_its_text_and_usage():
    from openai.types.chat import ChatCompletion

    completion = ChatCompletion.model_validate(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "7"},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
    )
    reply = completion_reply(completion)
    assert reply.text == "7" and reply.usage == {"input_tokens": 5, "output_tokens": 1}


def test_request_rate_limit_spaces_requests():
    limiter = RateLimiter(per_minute=1200)  # 20 per second, bursts of 20

    async def take(n):
        for _ in range(n):
            await limiter.acquire(1)

    started = time.monotonic()
    asyncio.run(take(40))
    assert 0.9 <= time.monotonic() - started <= 3.0  # the second 20 wait about a second


def test_token_limit_lets_a_large_request_through_and_slows_the_next():
    limiter = RateLimiter(per_minute=6000)  # 100 tokens per second

    async def take():
        await limiter.acquire(250)  # more than a second's worth: goes, leaves a debt
        started = time.monotonic()
        await limiter.acquire(50)
        return time.monotonic() - started

    assert 1.9 <= asyncio.run(take()) <= 3.5  # repays 150 + waits for 50


def test_no_limit_never_waits():
    limiter = RateLimiter(None)
    started = time.monotonic()
    asyncio.run(limiter.acquire(10**9))
    assert time.monotonic() - started < 0.1


def test_the_rate_limit_holds_across_concurrent_requests(tmp_path):
    stamps: list[float] = []

    async def send(request):
        stamps.append(time.monotonic())
        from failforward.agents.endpoints import Reply

        return Reply("ok")

    client = ChatClient(
        "teacher",
        _config(requests_per_minute=600, concurrency=8),
        RunStore(tmp_path / "r.db"),
        send,
    )
    client.complete([f"q{i}" for i in range(25)])
    assert stamps[-1] - stamps[0] >= 1.3  # 10 at once, then 10 per second


def test_progress_counts_cached_replies_at_once_and_each_request_as_it_ends(tmp_path):
    """``advance`` drives the nodes' progress bars: a failed request counts as finished too."""
    send = FakeSend(
        script=lambda p: f"reply to {p}",
        fail=lambda p: CallFailed("rejected", "HTTP 400", False) if p == "bad" else None,
    )
    client, _ = _client(tmp_path, send, retries=0)
    steps: list[int] = []
    assert client.complete(["a", "b"], advance=steps.append) == ["reply to a", "reply to b"]
    assert steps == [1, 1]
    steps.clear()
    replies = client.complete(["a", "b", "c", "bad"], advance=steps.append)
    assert replies == ["reply to a", "reply to b", "reply to c", None]
    assert steps[0] == 2 and sorted(steps[1:]) == [1, 1]  # two cached, then c and bad
