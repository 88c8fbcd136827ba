"""Scripted endpoint replies and run-folder probes shared by the tests that run the loop as a
subprocess against a loopback endpoint."""

import hashlib
import json
import sqlite3
from pathlib import Path

from failforward.tools.store import RunStore


def arithmetic_roles(prompt: str) -> str:
    """Teacher, judge and analyst replies for the arithmetic pack, fixed by the prompt."""
    seed = int(hashlib.sha256(prompt.encode()).hexdigest()[:6], 16)
    if prompt.startswith("You write practice problems"):
        n = int(prompt.split("Write ")[1].split()[0])
        items = []
        for i in range(n):
            a, b = 100 + (seed + 37 * i) % 800, 11 + i
            items.append({"question": f"{a} + {b} - 5 =", "answer": str(a + b - 5)})
        return json.dumps(items)
    if prompt.startswith("You review"):
        verdict = "true" if seed % 4 else "false"  # a quarter rejected by the judge
        issue = "none" if seed % 4 else "content"
        return (
            '{"scores": {"correct": 5, "clear": 5, "on_task": 5}, '
            f'"pass": {verdict}, "issue": "{issue}", "reason": "r"}}'
        )
    return f'{{"name": "mode {seed % 97}", "description": "d", "hypothesis": "h"}}'


def studio_input(pack, runs_dir, **extra) -> dict:
    """A Studio run's settings: one short cycle of the tiny student on ``pack``."""
    settings = {"pack": str(pack), "student": "tiny", "cycles": 1, "budget": 8}
    return {**settings, "objective": "sft", "runs_dir": str(runs_dir), **extra}


def nodes_done(run_db: Path) -> list[str]:
    if not run_db.is_file():
        return []
    try:
        connection = sqlite3.connect(f"file:{run_db}?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in connection.execute("SELECT node FROM node_runs ORDER BY id")]
        finally:
            connection.close()
    except sqlite3.OperationalError:  # the table is not there yet
        return []


def cached_prompts(run_db: Path) -> set[str]:
    store = RunStore(run_db)
    try:
        rows = store.db.execute("SELECT request FROM llm_calls").fetchall()
        return {json.loads(r["request"])["prompt"] for r in rows}
    finally:
        store.close()


def load_state(run_dir: Path, run_id: str) -> dict:
    """The latest checkpointed loop state of a run (empty if it never checkpointed)."""
    from failforward.app.runner import checkpointed_graph

    with checkpointed_graph(run_dir) as app:
        return dict(app.get_state({"configurable": {"thread_id": run_id}}).values)


class NoisyCritic:
    """A scripted critic for verification without a solver, with known error rates.

    Candidates are unit conversions ("How many minutes are in 37 hours?"); the teacher's claim is
    wrong on every ``wrong_every``-th one (by default 20%). Asked to solve a question on its own
    (``solve.jinja``), the critic is wrong with probability ``error`` per sample, and when it is
    wrong about a question the teacher also got wrong it repeats the teacher's mistake with
    probability ``shared`` (the two share a misconception); other mistakes are off by a random
    amount. Asked to check a claim (``check.jinja``), it solves the question the same way and
    confirms the claim when its answer matches; with probability ``sycophancy`` it instead takes
    the claim for its own answer and confirms it.
    Each sample is decided by a hash of the question and how many times it has been asked, so
    replies do not depend on arrival order.
    """

    UNITS = {"minutes": ("hours", 60), "seconds": ("minutes", 60), "hours": ("days", 24)}

    def __init__(self, error=0.25, shared=0.5, sycophancy=0.2, wrong_every=5):
        self.error, self.shared, self.sycophancy = error, shared, sycophancy
        self.wrong_every = wrong_every
        self.claims: dict[str, int] = {}
        self.truths: dict[str, int] = {}
        self.asked: dict[str, int] = {}

    def candidates(self, n: int) -> list[tuple[str, str, bool]]:
        """``(question, claimed answer, claim is right)`` for ``n`` distinct questions."""
        out = []
        for i in range(n):
            small = list(self.UNITS)[i % 3]
            big, factor = self.UNITS[small]
            question = f"How many {small} are in {13 + i} {big}?"
            truth = factor * (13 + i)
            claim = truth + (factor if i % self.wrong_every == 0 else 0)
            self.truths[question], self.claims[question] = truth, claim
            out.append((question, str(claim), claim == truth))
        return out

    def _draw(self, question: str, salt: str) -> float:
        key = f"{question}/{salt}/{self.asked.get(question, 0)}"
        return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8

    def _own_answer(self, question: str) -> int:
        self.asked[question] = self.asked.get(question, 0) + 1
        truth, claim = self.truths[question], self.claims[question]
        if self._draw(question, "error") >= self.error:
            return truth
        if claim != truth and self._draw(question, "shared") < self.shared:
            return claim
        return truth + 1 + int(self._draw(question, "off") * 50)

    def __call__(self, prompt: str) -> str:
        question = prompt.split("Question: ")[1].splitlines()[0].strip()
        own = self._own_answer(question)
        if prompt.startswith("You check answers"):
            claimed = int(prompt.split("Claimed answer: ")[1].split()[0])
            if self._draw(question, "sycophancy") < self.sycophancy:
                own = claimed
            reply = {"answer": str(own), "correct": own == claimed, "reason": "checked"}
            return json.dumps(reply)
        return f"Multiply by the factor.\n{own}"


def critique_scripted(folder, how: str, samples: int, n: int, **noise):
    """``n`` candidates of a :class:`NoisyCritic` through the critic as a run sends them: the
    minimal pack of docs/how-to/packs.md (no solver) with ``critic.verify: how`` and
    ``critic.samples``, a loopback HTTP endpoint. Returns ``(rows, verdicts, requests the
    endpoint got)``."""
    import shutil

    import yaml

    from failforward.agents.critic import CriticLLM, Screen, critique
    from failforward.agents.endpoints import ChatClient, EndpointConfig
    from failforward.tools.packs.pack import PACKS_DIR, load_pack
    from failforward.tools.records import Candidate, Lineage
    from failforward.tools.verify.verifiers import extract_answer, numeric
    from tests.fake_endpoint import FakeEndpoint

    folder = Path(folder)
    shutil.copytree(PACKS_DIR.parent / "examples" / "minimal-pack", folder)
    spec = yaml.safe_load((folder / "pack.yaml").read_text())
    spec["critic"] = {"verify": how, "samples": max(samples, 2)}
    (folder / "pack.yaml").write_text(yaml.safe_dump(spec))
    pack = load_pack(str(folder))
    pack.spec.critic.samples = samples  # one sample is below the schema's minimum: a baseline
    critic = NoisyCritic(**noise)
    rows = critic.candidates(n)
    lineage = Lineage(cycle=1, target_id="t", source="llm")
    candidates = [Candidate(question=q, answer=a, lineage=lineage) for q, a, _ in rows]
    store = RunStore(folder / "run.db")
    answer = pack.spec.answer
    with FakeEndpoint(critic) as server:
        config = EndpointConfig(base_url=server.base_url, model="critic", concurrency=16)
        _, verdicts = critique(
            candidates, numeric, None, Screen([], []),
            extract=lambda text: extract_answer(text, answer.pattern, answer.pick),
            llm=CriticLLM(ChatClient("critic", config, store), pack, cycle=1),
        )  # fmt: skip
        calls = len(server.requests)
    store.close()
    return rows, verdicts, calls
