"""benchmarks/objectives.py on the tiny student: one arm per objective, same data, one table."""

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "objectives.py"


@pytest.mark.slow  # 15 s; each objective trains a cycle in test_loop_e2e
def test_objectives_run_side_by_side_on_the_same_data(small_pack, tmp_path, quiet_ui):
    spec = importlib.util.spec_from_file_location("objectives", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = Namespace(
        objectives=["sft", "dpo"],
        pack=str(small_pack),
        student="tiny",
        cycles=1,
        budget=8,
        seed=0,
        runs_dir=str(tmp_path / "runs"),
    )
    run_dirs = bench.run_arms(args, ui=quiet_ui)
    lines = bench.table(run_dirs).splitlines()
    assert "sft: test acc" in lines[0] and "dpo: test acc" in lines[0]
    assert [line.split(" | ")[0] for line in lines[1:]] == ["0", "1"]
    assert lines[2].split(" | ")[1].endswith("1.00x")  # the first arm against itself

    from failforward.tools.store import RunStore

    questions = [
        [e["question"] for e in RunStore(d / "run.db").examples(cycle=1)] for d in run_dirs
    ]
    assert questions[0] == questions[1]  # same seed, same plan input: the same examples
