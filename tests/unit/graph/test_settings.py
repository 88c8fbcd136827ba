"""Run settings nest (train, plan, endpoints) but are seen and stored flat, as before."""

import pytest

from failforward.graph.settings import AugmentSettings, RunSettings

# A run's settings as stored before they nested (every key flat, no --plan-<knob> options).
STORED_FLAT = {
    "pack": "arithmetic", "student": "tiny", "llm": "none", "llm_model": "", "llm_max_tokens": 512,
    "endpoints": "", "cycles": 1, "budget": 8, "plan": "uniform", "plan_weighting": "mass",
    "explore": 0.2, "seed": 4, "target_accuracy": 1.0, "patience": 2, "eval_batch_size": 32,
    "eval_engine": "auto", "runs_dir": "runs", "objective": "sft", "learning_rate": 0.001,
    "dpo_learning_rate": 0.0002, "dpo_beta": 0.1, "dpo_nll": 1.0, "epochs": 2.0,
    "train_batch_size": 4, "max_length": 0, "full_finetune": False, "lora_r": 8, "lora_alpha": 32,
    "lora_targets": "all-linear", "replay_mix": 0.0, "replay_size": 1000, "grpo_generations": 4,
    "grpo_iterations": 2, "grpo_importance": "sequence", "report_to": "none",
}  # fmt: skip


def test_a_run_stored_flat_loads_into_the_nested_settings():
    settings = RunSettings.from_dict(STORED_FLAT)
    assert (settings.plan.mode, settings.plan.weighting, settings.plan.explore) == (
        "uniform",
        "mass",
        0.2,
    )
    assert settings.plan.ready_at == 0.5  # a knob it did not store keeps its default
    assert (settings.train.objective, settings.train.batch_size, settings.train.lora_r) == (
        "sft",
        4,
        8,
    )
    assert settings.endpoints.llm == "none" and settings.endpoints.max_tokens == 512
    assert settings.train_config(cycle=2).seed == 6  # the run's seed + the cycle
    stored = settings.to_dict()
    assert {k: stored[k] for k in STORED_FLAT} == STORED_FLAT  # stored keys and values unchanged


def test_training_and_planning_errors_name_the_flag():
    with pytest.raises(ValueError, match="^--lora-r: lora_r must be > 0"):
        RunSettings.from_options(lora_r=0)
    wanted = "^--plan-weighting: must be gain, mass, progress or learnability, got 'size'$"
    with pytest.raises(ValueError, match=wanted):
        RunSettings.from_options(plan_weighting="size")
    with pytest.raises(ValueError, match="^--plan-flat-after: "):
        RunSettings.from_options(plan_flat_after=0)


def test_augment_shares_the_endpoint_options_and_defaults_to_the_packs_reply_limit():
    settings = AugmentSettings.from_options(llm="local", llm_max_tokens=0)
    assert settings.endpoints.local and settings.endpoints.max_tokens == 0
    assert set(settings.to_dict()) >= {"llm", "llm_model", "llm_max_tokens", "endpoints"}
    with pytest.raises(ValueError, match="--llm-max-tokens"):
        RunSettings.from_options(llm_max_tokens=0)  # a run has no pack default to fall back on


def test_a_run_stored_before_the_guard_resumes_without_it():
    old = RunSettings.from_dict(STORED_FLAT)
    assert old.on_regression == "keep" and old.train.anchor_share == 0.0
    assert not old.plan.capacity and RunSettings().plan.capacity
    new = RunSettings.from_dict(RunSettings.from_options(anchor_share=0.5).to_dict())
    assert new.on_regression == "rollback" and new.train.anchor_share == 0.5
    assert RunSettings().train.anchor_share == 0.0  # chosen by benchmarks/anchor_share.py


def test_a_run_stored_before_micro_batches_trains_whole_batches_and_locally():
    old = RunSettings.from_dict(STORED_FLAT)
    assert old.train.micro_batch_tokens == 0 and old.executor == "local"
    assert RunSettings().train.micro_batch_tokens == 4096 and RunSettings().train.processes == 1


def test_a_run_stored_before_over_drawing_draws_exactly_its_budget():
    assert RunSettings.from_dict(STORED_FLAT).overdraw == 1 and RunSettings().overdraw == 2
    assert RunSettings.from_dict(STORED_FLAT).refill is False and RunSettings().refill is True
    with pytest.raises(ValueError, match="--overdraw must be >= 1, got 0"):
        RunSettings.from_options(overdraw=0)


def test_scale_out_options_are_checked_by_name():
    with pytest.raises(ValueError, match="^--executor: must be local or ray, got 'spark'$"):
        RunSettings.from_options(executor="spark")
    with pytest.raises(ValueError, match="--ray-workers must be >= 1"):
        RunSettings.from_options(ray_workers=0)
    with pytest.raises(ValueError, match="^--train-processes: processes must be >= 1"):
        RunSettings.from_options(train_processes=0)
    with pytest.raises(ValueError, match="^--micro-batch-tokens: "):
        RunSettings.from_options(micro_batch_tokens=-1)
    settings = RunSettings.from_options(executor="ray", ray_workers=3, train_processes=2)
    assert (settings.executor, settings.ray_workers, settings.train.processes) == ("ray", 3, 2)


def test_ray_training_needs_the_ray_executor_and_an_off_policy_objective():
    with pytest.raises(ValueError, match="--train-launcher ray trains on the run's Ray cluster"):
        RunSettings.from_options(train_launcher="ray")
    settings = RunSettings.from_options(executor="ray", train_launcher="ray")
    assert settings.train.launcher == "ray" and RunSettings().train.launcher == "torchrun"
    with pytest.raises(ValueError, match="^--train-launcher: launcher must be torchrun with grpo"):
        RunSettings.from_options(executor="ray", train_launcher="ray", objective="grpo")
    with pytest.raises(
        ValueError, match="^--train-launcher: must be torchrun or ray, got 'slurm'$"
    ):
        RunSettings.from_options(train_launcher="slurm")


def test_train_from_is_a_checked_choice_and_old_runs_train_on_from_the_previous_student():
    with pytest.raises(ValueError, match="^--train-from: must be previous or base, got 'scratch'$"):
        RunSettings.from_options(train_from="scratch")
    assert RunSettings.from_dict(STORED_FLAT).train_from == "previous"
    assert RunSettings().train_from == "previous"
    base = RunSettings.from_options(train_from="base", objective="sft")
    assert RunSettings.from_dict(base.to_dict()).train_from == "base"


def test_a_training_seed_of_its_own_leaves_the_data_seed_alone():
    apart = RunSettings.from_options(seed=4, train_seed=9, train_from="base")
    assert apart.seed == 4  # generation, clustering and the plan still draw with --seed
    assert {apart.train_config(c).seed for c in (1, 2)} == {9}
    assert RunSettings.from_options(seed=4, train_seed=9).train_config(2).seed == 11
    assert RunSettings.from_options(seed=4).train_config(2).seed == 6  # -1: --seed
    assert RunSettings.from_dict(apart.to_dict()).train_seed == 9
    with pytest.raises(ValueError, match="--train-seed must be >= 0"):
        RunSettings.from_options(train_seed=-3)


def test_train_from_base_has_one_seed_and_refuses_path_dependent_data():
    base = RunSettings.from_options(train_from="base", seed=4)
    assert {base.train_config(c).seed for c in (1, 2, 7)} == {4}  # not the cycle's
    assert base.train_config(3, lr_scale=0.5).learning_rate == base.train.learning_rate / 2
    assert RunSettings.from_options(seed=4).train_config(3).seed == 7  # previous: as before
    with pytest.raises(ValueError, match="--train-from base .* drop --replay-mix"):
        RunSettings.from_options(train_from="base", replay_mix=0.5)
    with pytest.raises(ValueError, match="--anchor-share .* --train-from previous, not base"):
        RunSettings.from_options(train_from="base", anchor_share=0.5)
    assert RunSettings.from_options(replay_mix=0.5, anchor_share=0.5).train_from == "previous"


def test_every_choice_setting_is_typed_and_refused_the_same_way():
    """Each choice (a ``Literal`` field, nested ones included) is an option with its values:
    a wrong one gets the same error naming the flag, and the command line lists them."""
    from failforward.tools.options import options

    choices = {o.name: o.choices for o in options(RunSettings) if o.choices}
    assert set(choices) >= {
        "executor", "eval_engine", "on_regression", "train_from", "objective", "plan",
        "plan_weighting", "train_launcher", "grpo_importance", "report_to",
    }  # fmt: skip
    for name, allowed in choices.items():
        flag = "--" + name.replace("_", "-")
        with pytest.raises(ValueError, match=f"^{flag}: must be .*{allowed[-1]}, got 'nope'$"):
            RunSettings.from_options(**{name: "nope"})
    from typer.testing import CliRunner

    from failforward.app.cli import app

    shown = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "240"}).output
    assert "<local|ray>" in shown and "<rollback|keep|stop>" in shown
    augment = {o.name: o.choices for o in options(AugmentSettings) if o.choices}
    assert augment == {"mode": ("rephrase", "stitch", "stretch"), "format": ("jsonl", "parquet")}
