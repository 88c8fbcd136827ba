"""Bring a LangChain chat model as a role: the teacher (and, if you like, the critic and analyst).

    OPENAI_API_KEY=... python examples/chat_model_teacher.py --model openai:gpt-4o-mini
    python examples/chat_model_teacher.py --model openai:qwen2.5 \
        --base-url http://127.0.0.1:8000/v1 --roles teacher,critic,analyst

Any ``BaseChatModel`` works: one from ``init_chat_model`` (``pip install '.[langchain]'``; other
providers need their own ``langchain-<provider>`` package), or a model class of your own.
``open_run(..., models={role: model})`` gives the role that model in place of an endpoint, with
the same call cache (a resumed run asks it nothing twice), token accounting, fault counts and
retries; the rate limiter is langchain-core's own. Stopped part way, the run resumes with
``ff.open_run(settings, resume=<run id>, models=...)`` given the same roles.
"""

from __future__ import annotations

import argparse

from langchain.chat_models import init_chat_model
from langchain_core.rate_limiters import InMemoryRateLimiter

import failforward as ff
from failforward.tools.store import RunStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="openai:gpt-4o-mini", help="provider:model")
    parser.add_argument("--base-url", default="", help="An OpenAI-compatible server's URL.")
    parser.add_argument("--roles", default="teacher", help="Roles the model plays, a,b,...")
    parser.add_argument("--requests-per-second", type=float, default=5.0)
    parser.add_argument("--pack", default="arithmetic")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--cycles", type=int, default=1)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args()
    # --8<-- [start:models]
    model = init_chat_model(
        args.model,
        base_url=args.base_url or None,
        rate_limiter=InMemoryRateLimiter(requests_per_second=args.requests_per_second),
    )
    settings = ff.RunSettings.from_options(
        pack=args.pack,
        student=args.student,
        cycles=args.cycles,
        budget=args.budget,
        runs_dir=args.runs_dir,
        llm="none",  # every other role runs without an LLM
    )
    roles = args.roles.split(",")
    with ff.open_run(settings, models=dict.fromkeys(roles, model)) as run:
        state = run.invoke()
        print(f"run {run.run_id}: {state['stop_reason']}; report: {run.run_dir}/report.md")
        usage = RunStore(run.run_dir / "run.db").token_usage()
    # --8<-- [end:models]
    for role in roles:
        calls = usage.get(role, {})
        print(
            f"{role}: {calls.get('calls', 0)} calls, {calls.get('prompt', 0)} prompt and "
            f"{calls.get('completion', 0)} completion tokens"
        )


if __name__ == "__main__":
    main()
