import pytest

from failforward.graph.loop import decide_stop, route_after_evaluate, wilson_interval
from failforward.graph.settings import RunSettings


def _history(*accs):
    return [{"cycle": i, "test_acc": a, "failures": 10} for i, a in enumerate(accs)]


def test_continue_then_stop_after_cycles():
    settings = RunSettings(cycles=3)
    assert decide_stop(_history(0.1), settings) is None
    assert decide_stop(_history(0.1, 0.2, 0.3, 0.35), settings) == "cycles done"


def test_target_accuracy_and_plateau_and_no_failures():
    assert (
        decide_stop(_history(0.1, 0.6), RunSettings(cycles=5, target_accuracy=0.5))
        == "target accuracy reached"
    )
    assert decide_stop(_history(0.3, 0.2, 0.25), RunSettings(cycles=9, patience=2)) == "plateau"
    assert decide_stop(_history(0.3, 0.2, 0.31), RunSettings(cycles=9, patience=2)) is None
    done = [{"cycle": 0, "test_acc": 0.9, "failures": 0}]
    assert decide_stop(done, RunSettings()) == "no probe failures left"


def test_router_reads_stop_reason():
    assert route_after_evaluate({"stop_reason": "plateau"}) == "write_report"
    assert route_after_evaluate({"stop_reason": None}) == "analyze_failures"


def test_wilson_interval():
    low, high = wilson_interval(0.1, 300)
    assert 0.07 < low < 0.1 < high < 0.14
    assert wilson_interval(0.0, 0) == (0.0, 0.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"plan": "random"},
        {"budget": 0},
        {"target_accuracy": 1.5},
        {"patience": 0},
        {"eval_batch_size": 0},
        {"train_batch_size": -1},
        {"epochs": 0},
        {"learning_rate": -1.0},
        {"objective": "ppo"},
        {"grpo_importance": "batch"},
    ],
)
def test_settings_reject_bad_values(bad):
    # Checked up front: each would otherwise fail mid-run (patience 0 crashed the router).
    with pytest.raises(ValueError):
        RunSettings.from_options(**bad)


@pytest.mark.parametrize(
    "bad, flag",
    [({"train_batch_size": -1}, "--train-batch-size"), ({"objective": "ppo"}, "--objective")],
)
def test_training_errors_name_the_flag(bad, flag):
    with pytest.raises(ValueError, match=f"^{flag}: "):
        RunSettings.from_options(**bad)
