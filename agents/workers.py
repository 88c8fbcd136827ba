"""The student's answers on Ray workers (``--executor ray``).

Each worker is a Ray actor that loads the student once, and each checkpoint once when first asked
for it, and decodes whole batches. The driver renders the prompts and cuts them into the batches
:func:`~failforward.agents.student.generate` decodes in one process
(:func:`~failforward.agents.student.prompt_batches`), hands them to whichever worker is free and
puts the replies back in order, so a run answers the same on one process or on many. A worker
that dies is started again by Ray and its unfinished batch runs again there; greedy decoding of
the same batch gives the same replies.

Checkpoints are passed as absolute paths: on a cluster of several machines they must lie on a
file system every node sees.

Example:
    >>> workers = StudentWorkers(base_dir, lora_rank=16, workers=2)  # doctest: +SKIP
    >>> answer = workers.replies_for(checkpoint, batch_size=32)  # doctest: +SKIP
    >>> replies = answer(prompts, max_new_tokens=48)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from failforward.agents.student import Student, decode_batch, prompt_batches

T, R = TypeVar("T"), TypeVar("R")

# A dead worker is started again, and its batch run again, this many times before the run fails.
RETRIES = 3


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


_joined: list[str] = []  # the address this process joined (or "local")


def connect(
    address: str = "", workers: int = 2, cpus: float = 1.0, log: Callable[[str], None] = print
) -> None:
    """Join the Ray cluster at ``address``, or start a Ray instance on this machine with room
    for ``workers`` student workers of ``cpus`` CPUs each and as many one-CPU tasks beside them
    (the workers hold their CPUs for the run, and the critic's tasks need their own while the
    workers wait for the next evaluation); nothing when this process is connected already."""
    if not ray_installed():
        raise RuntimeError("--executor ray needs Ray: pip install 'failforward[ray]'")
    import ray

    if ray.is_initialized():
        if address and _joined and address != _joined[0]:
            raise RuntimeError(
                f"--ray-address {address}: this process is already joined to {_joined[0]}"
            )
        return
    _joined[:] = [address or "local"]
    if address:
        ray.init(address=address, logging_level="WARNING")
    else:
        ray.init(
            num_cpus=max(os.cpu_count() or 1, math.ceil(workers * cpus) + workers),
            include_dashboard=False,
            logging_level="WARNING",
        )
    log(f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs at {address or 'a local instance'}")


def ray_map(
    fn: Callable[[T], R],
    items: list[T],
    address: str = "",
    workers: int = 2,
    log: Callable[[str], None] = print,
) -> list[R]:
    """``[fn(x) for x in items]`` as Ray tasks of one CPU each, about four chunks per worker and
    at most ``workers`` at a time, in order. ``fn`` travels to the workers pickled (cloudpickle:
    closures too); a task whose worker dies runs again, up to :data:`RETRIES` times."""
    import ray

    if not items:
        return []
    connect(address, workers, log=log)
    free = int(ray.available_resources().get("CPU", 0))
    if free < 1:
        held = ray.cluster_resources().get("CPU", 0)
        raise RuntimeError(
            f"no free CPU in the Ray cluster for the critic's tasks (all {held:g} are held, "
            "by the student workers among others): give Ray more CPUs (ray start --num-cpus) "
            "or use fewer --ray-workers"
        )
    workers = min(workers, free)
    run = ray.remote(num_cpus=1, max_retries=RETRIES)(_apply)
    size = -(-len(items) // (4 * workers))
    shipped = ray.put(fn)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    refs, running = [], []
    for chunk in chunks:
        if len(running) >= workers:
            _, running = ray.wait(running, num_returns=1)
        refs.append(run.remote(shipped, chunk))
        running.append(refs[-1])
    return [out for chunk in ray.get(refs) for out in chunk]


def _apply(fn, chunk: list) -> list:
    _quiet()
    return [fn(x) for x in chunk]


def _quiet() -> None:
    """A worker prints what goes wrong, not loading bars and deprecation notes (Ray forwards a
    worker's output to the run's terminal)."""
    import warnings

    from transformers.utils import logging

    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)


def ray_embedder(
    address: str = "", workers: int = 2, block: int = 256, log: Callable[[str], None] = print
) -> Callable[[list[str]], np.ndarray]:
    """An embedder (:data:`~failforward.tools.embed.embeddings.Embedder`) whose texts are
    embedded on Ray workers, ``block`` texts a call; each worker process loads the embedding model
    once. Fewer than ``block`` texts are embedded here (a round trip would cost more)."""
    from failforward.tools.embed.embeddings import embed

    def embedder(texts: list[str]) -> np.ndarray:
        if len(texts) < block:
            return embed(texts)
        blocks = [texts[i : i + block] for i in range(0, len(texts), block)]
        return np.vstack(ray_map(embed, blocks, address, workers, log))

    return embedder


class _Worker:
    """One Ray actor: the student at the checkpoints it is asked for, decoding batches."""

    def __init__(self, base_dir: str, lora_rank: int):
        _quiet()
        self.student = Student(base_dir, "transformers", lora_rank, log=lambda _: None)

    def decode(
        self, tag: int, checkpoint: str | None, texts: list[str], max_new_tokens: int
    ) -> tuple[int, list[str]]:
        model, tokenizer = self.student.answering(checkpoint)
        return tag, decode_batch(model, tokenizer, texts, max_new_tokens)

    def pid(self) -> int:
        return os.getpid()


class StudentWorkers:
    """``workers`` Ray actors answering for the student at ``base_dir``.

    ``address`` joins a running Ray cluster (``ray start --head`` prints it; ``auto`` finds the
    local one); empty starts a Ray instance on this machine for this process, with at least one
    CPU per worker. Each worker asks Ray for ``cpus`` CPUs and ``gpus`` GPUs; with GPUs, Ray
    shows each worker its own (``CUDA_VISIBLE_DEVICES``) and the student answers there."""

    def __init__(
        self,
        base_dir: Path,
        lora_rank: int,
        workers: int = 2,
        address: str = "",
        cpus: float = 1.0,
        gpus: float = 0.0,
        log: Callable[[str], None] = print,
    ):
        import ray
        from transformers import AutoTokenizer

        connect(address, workers, cpus, log)
        actor = ray.remote(
            num_cpus=cpus, num_gpus=gpus, max_restarts=RETRIES, max_task_retries=RETRIES
        )(_Worker)
        base = str(Path(base_dir).resolve())  # a worker may start in another folder
        self.actors = [actor.remote(base, lora_rank) for _ in range(workers)]
        self.tokenizer = AutoTokenizer.from_pretrained(base_dir)

    def close(self) -> None:
        """Stop the workers (their CPUs go back to Ray)."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def pids(self) -> list[int]:
        """The workers' process ids (what a fault test kills)."""
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def replies_for(
        self,
        checkpoint: str | None,
        batch_size: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> Callable[[list[list[dict]], int], list[str]]:
        """``replies(prompts, max_new_tokens)``: the student's greedy replies at ``checkpoint``,
        decoded on the workers in :func:`prompt_batches`'s batches; ``on_batch`` hears each."""
        import ray
        from ray.util import ActorPool

        target = str(Path(checkpoint).resolve()) if checkpoint else None

        def replies(prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
            texts, batches = prompt_batches(self.tokenizer, prompts, batch_size)
            pool = ActorPool(self.actors)
            for tag, chunk in enumerate(batches):
                shown = [texts[i] for i in chunk]
                pool.submit(
                    lambda a, job: a.decode.remote(job[0], target, job[1], max_new_tokens),
                    (tag, shown),
                )
            out: list[str] = [""] * len(texts)
            while pool.has_next():
                try:
                    tag, decoded = pool.get_next_unordered()
                except ray.exceptions.RayActorError as error:
                    raise RuntimeError(
                        f"a student worker died {RETRIES + 1} times; the last error: {error}"
                    ) from error
                for i, reply in zip(batches[tag], decoded, strict=True):
                    out[i] = reply
                if on_batch:
                    on_batch(len(batches[tag]))
            return out

        return replies
