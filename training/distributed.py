"""One training phase on several processes (``--train-processes N``): DDP.

The graph's process hands a phase (SFT or DPO) to ``torchrun`` or (``--train-launcher ray``) to
Ray Train: it writes the student as the phase finds it (``start/``: the LoRA adapter, or the
whole model), the rows and the settings into a job folder, and starts ``N`` ranks: processes of
this module on this machine, or a ``TorchTrainer``'s workers on the run's Ray cluster (which
set up the process group and the variables torchrun would). In each, the TRL trainer (through
accelerate, which the Hugging Face Trainer runs on) loads the student, trains on its share of
every step (``batch / N`` rows, so a step sees the rows one process would see) and averages the
gradients over gloo (CPU) or NCCL (GPUs). Rank 0 alone writes the trained student
(``trained/``, atomically) and the phase's result; the caller loads it back, removes both weight
folders and goes on as after a phase in its own process (the cycle's checkpoint is written once,
by the caller, as always). Rank 0's progress reaches the caller as lines on standard output
(torchrun; everything else the processes print goes to ``job/launch.log``) or in ``job/steps``
(Ray, whose workers' output goes to the Ray logs). On a cluster of several machines the job
folder, inside the run folder, must be on a file system every node sees.

A step's rows split evenly only when the rows fill whole steps; the last, short step of an epoch
is padded by the sampler with rows from the start (accelerate's ``even_batches``), so it is not
the one-process step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from failforward.training.config import TrainConfig

STEP = "failforward-step"  # rank 0's progress lines: "failforward-step <step> <of>"


def base_dir_of(model) -> Path:
    """The folder the student's base weights were loaded from."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return Path(base.config.name_or_path)


def run_phase(
    phase: str, model, tokenizer, rows: list[dict], config: TrainConfig, out_dir: Path, on_step=None
):
    """Train ``phase`` on ``config.processes`` processes; ``(trained model, PhaseResult)``."""
    from failforward.training.offpolicy import PhaseResult, prepare_student, save_checkpoint
    from failforward.training.student_model import load_student

    on_ray = config.launcher == "ray"
    cuda = _ray_gpus(config.processes) if on_ray else _cuda()
    batch = config.resolved_batch_size(cuda)
    if not on_ray and cuda and config.processes > _gpus():
        raise ValueError(
            f"--train-processes {config.processes}: this machine has {_gpus()} GPUs "
            "(one process per GPU)"
        )
    if batch % config.processes:
        raise ValueError(
            f"--train-batch-size {batch} must be a multiple of --train-processes "
            f"{config.processes} (each process trains an equal share of every step)"
        )
    job = out_dir / f"{phase}-job"
    shutil.rmtree(job, ignore_errors=True)  # an earlier, interrupted try leaves nothing to reuse
    job.mkdir(parents=True)
    base = base_dir_of(model)
    base = base.resolve() if base.exists() else base  # a folder, for ranks wherever they start
    model = prepare_student(model, config)  # a fresh adapter starts from the run's seed here
    save_checkpoint(model, tokenizer, job / "start")
    per_rank = dataclasses.replace(config, processes=1, batch_size=batch // config.processes)
    (job / "job.json").write_text(
        json.dumps({"phase": phase, "base": str(base), "config": dataclasses.asdict(per_rank)})
    )
    (job / "rows.json").write_text(json.dumps(rows))
    launch = _launch_on_ray if on_ray else _launch_torchrun
    code = launch(job, config.processes, cuda, on_step)
    log = job / "launch.log"
    if code != 0 or not (job / "result.json").is_file():
        errors = sorted(job.glob("rank-*.error"))
        shown = errors[0].read_text() if errors else log.read_text()
        tail = "".join(shown.splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{phase} on {config.processes} processes failed (exit {code}):\n{tail}")
    result = PhaseResult(**json.loads((job / "result.json").read_text()))
    ranks = [json.loads((job / f"rank-{r}.json").read_text()) for r in range(config.processes)]
    result.process_peak_mb = [r["peak_rss_mb"] for r in ranks]
    result.process_saves = [r["saved"] for r in ranks]
    result.processes = config.processes
    trained, _ = load_student(base, job / "trained")
    for weights in ("start", "trained"):  # loaded: the cycle's checkpoint is the caller's to write
        shutil.rmtree(job / weights)
    return trained, result


def _launch_torchrun(job: Path, processes: int, cuda: bool, on_step) -> int:
    """``processes`` ranks of this module under torchrun on this machine; their exit code."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes),
        "-m", "failforward.training.distributed", str(job),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
    with open(job / "launch.log", "w") as out:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        try:
            for line in process.stdout:
                parts = line.split()
                if len(parts) == 3 and parts[0] == STEP:
                    if on_step:
                        on_step(int(parts[1]), int(parts[2]))
                else:
                    out.write(line)
            return process.wait()
        finally:  # interrupted here (Ctrl-C, a failing callback): the ranks stop too
            if process.poll() is None:
                process.terminate()
                process.wait()


def _launch_on_ray(job: Path, processes: int, cuda: bool, on_step) -> int:
    """``processes`` ranks as Ray Train workers (a ``TorchTrainer``: gloo on CPU, NCCL on
    GPUs) on the Ray cluster this process is joined to; 0, or 1 with the error in
    ``job/launch.log``. Rank 0's steps are read from ``job/steps`` while they train."""
    import threading

    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if not ray.is_initialized():
        raise RuntimeError("--train-launcher ray trains on the run's Ray cluster: none is joined")
    trainer = TorchTrainer(
        _ray_rank,
        train_loop_config={"job": str(job.resolve())},  # the workers' folder is not ours
        scaling_config=ScalingConfig(num_workers=processes, use_gpu=cuda),
        torch_config=TorchConfig(backend="nccl" if cuda else "gloo"),
        run_config=RunConfig(
            name="train",
            storage_path=str(job.resolve() / "ray"),
            failure_config=FailureConfig(max_failures=0),  # a failed phase is the run's to retry
        ),
    )
    failed: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as error:
            failed.append(error)

    steps = job / "steps"
    thread = threading.Thread(target=fit, name="ray-train", daemon=True)
    thread.start()
    read = 0
    while True:
        finished = not thread.is_alive()  # then one last read of what rank 0 wrote
        thread.join(0.5)
        written = steps.read_text() if steps.is_file() else ""
        lines = written[: written.rfind("\n") + 1].splitlines()  # whole lines only
        for line in lines[read:]:
            if on_step:
                on_step(*map(int, line.split()))
        read = len(lines)
        if finished:
            break
    (job / "launch.log").write_text(f"{failed[0]!r}\n" if failed else "")
    return 1 if failed else 0


def _ray_rank(loop_config: dict) -> None:
    """One rank inside a Ray Train worker (Ray has set RANK, LOCAL_RANK and WORLD_SIZE). What
    it prints goes to ``job/rank-N.log``, as torchrun's ranks' goes to ``launch.log``: Ray would
    forward it to the run's terminal."""
    import ray.train
    import torch
    from ray.train.torch import get_device

    job, rank = Path(loop_config["job"]), ray.train.get_context().get_world_rank()
    device = get_device() if torch.cuda.is_available() else None
    sys.stdout.flush()
    sys.stderr.flush()
    kept = [os.dup(1), os.dup(2)]
    with open(job / f"rank-{rank}.log", "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            _run_rank(job, rank, device)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, kept_fd in zip((1, 2), kept, strict=True):
                os.dup2(kept_fd, fd)
                os.close(kept_fd)


def _ray_gpus(processes: int) -> bool:
    """Whether the joined Ray cluster has a GPU for each of ``processes`` ranks."""
    import ray

    return ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= processes


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpus() -> int:
    import torch

    return torch.cuda.device_count()


def main(job: Path) -> None:
    """One rank of a launched phase (torchrun sets RANK, LOCAL_RANK and WORLD_SIZE); a rank
    that fails leaves its traceback in ``job/rank-N.error`` for the caller to show."""
    import torch

    device = int(os.environ.get("LOCAL_RANK", 0)) if torch.cuda.is_available() else None
    _run_rank(job, int(os.environ.get("RANK", 0)), device)  # one GPU per process on this machine


def _run_rank(job: Path, rank: int, device) -> None:
    import traceback

    import torch

    try:
        if device is not None:
            torch.cuda.set_device(device)
        _train_rank(job, rank)
    except BaseException:
        (job / f"rank-{rank}.error").write_text(traceback.format_exc())
        raise


def _train_rank(job: Path, rank: int) -> None:
    from failforward.training.offpolicy import save_checkpoint, train_dpo, train_sft
    from failforward.training.student_model import load_student

    spec = json.loads((job / "job.json").read_text())
    rows = json.loads((job / "rows.json").read_text())
    config = TrainConfig(**spec["config"])
    model, tokenizer = load_student(Path(spec["base"]), job / "start")

    def progress(step: int, total: int) -> None:
        if rank == 0 and config.launcher == "ray":
            with open(job / "steps", "a") as steps:
                steps.write(f"{step} {total}\n")
        elif rank == 0:
            print(STEP, step, total, flush=True)

    train = {"sft": train_sft, "dpo": train_dpo}[spec["phase"]]
    model, result = train(model, tokenizer, rows, config, job, progress)
    saved = []
    if rank == 0:
        save_checkpoint(model, tokenizer, job / "trained")
        saved.append("trained")
        partial = job / "result.json.partial"
        partial.write_text(json.dumps(dataclasses.asdict(result)))
        partial.rename(job / "result.json")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    (job / f"rank-{rank}.json").write_text(json.dumps({"peak_rss_mb": peak, "saved": saved}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
