"""The run's Student: one load per checkpoint, a trained model kept without reloading it, and
answers from the engine the run chose."""

import pytest

import failforward.training.student_model as student_model
from failforward.agents.student import Student
from failforward.tools.packs import load_pack
from failforward.tools.verifiers import make_verifier
from failforward.training.config import TrainConfig
from failforward.training.offpolicy import sft_rows, train_sft


@pytest.fixture
def loads(monkeypatch):
    calls, real = [], student_model.load_student

    def spy(base_dir, checkpoint=None):
        calls.append(checkpoint)
        return real(base_dir, checkpoint)

    monkeypatch.setattr(student_model, "load_student", spy)
    return calls


def test_loads_once_per_checkpoint_and_keeps_what_it_saved(tiny_student_dir, tmp_path, loads):
    student = Student(str(tiny_student_dir), engine="transformers", log=lambda _: None)
    model, tokenizer = student.at(None)
    assert student.at(None)[0] is model and loads == [None]
    example = {"question": "1 + 1 =", "answer": "2"}
    rows = sft_rows([example], lambda q: [{"role": "user", "content": q}])
    trained, _ = train_sft(model, tokenizer, rows, TrainConfig(epochs=1), tmp_path)
    checkpoint = student.save(trained, tokenizer, tmp_path / "student")
    assert student.at(checkpoint)[0] is trained and loads == [None]  # not loaded again
    fresh = Student(str(tiny_student_dir), engine="transformers")
    fresh.at(checkpoint)
    assert loads == [None, tmp_path / "student"]  # a resumed run loads the checkpoint


def test_answers_score_every_item(tiny_student_dir):
    pack = load_pack("arithmetic")
    source = pack.make_source()
    items = source.sample(4, seed=1)
    student = Student(str(tiny_student_dir), engine="auto")  # no CUDA here: transformers
    attempts = student.answer(None, pack, items, make_verifier("reasoning_gym", source))
    assert [a.item for a in attempts] == items
    assert all(a.score in (0.0, 1.0) for a in attempts)
