from dataclasses import dataclass

import pytest

from failforward.tools.options import (
    OptionError,
    StoredSettings,
    build,
    flatten,
    nested,
    option,
    options,
)


@dataclass
class Inner:
    batch_size: int = option(8, "Examples per step.")
    seed: int = option(0, "Seed.")

    def __post_init__(self):
        if self.batch_size < 1:
            raise OptionError("batch_size", f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class Outer(StoredSettings):
    name: str = option("a", "A name.")
    inner: Inner = nested(Inner, rename={"batch_size": "inner_batch"}, hide=("seed",))
    other: Inner = nested(Inner, rename={"batch_size": "other_batch"}, hide=("seed",), batch_size=2)


def test_leaves_are_one_flat_namespace_with_renames_hidden_leaves_and_container_defaults():
    assert [(o.name, o.path, o.default) for o in options(Outer)] == [
        ("name", ("name",), "a"),
        ("inner_batch", ("inner", "batch_size"), 8),
        ("other_batch", ("other", "batch_size"), 2),
    ]
    assert options(Outer)[1].flag == "--inner-batch"
    assert Outer().other.batch_size == 2


def test_flat_form_round_trips_and_unknown_keys_are_dropped_when_stored():
    settings = Outer.from_options(name="b", inner_batch=4)
    assert (settings.inner.batch_size, settings.other.batch_size) == (4, 2)
    flat = settings.to_dict()
    assert flat == {"name": "b", "inner_batch": 4, "other_batch": 2}
    assert Outer.from_dict({**flat, "gone_in_this_version": 1}) == settings
    assert Outer.from_dict({"name": "c"}) == Outer(name="c")  # an older, shorter form
    assert settings.replace(other_batch=5).other.batch_size == 5 and settings.other.batch_size == 2
    with pytest.raises(TypeError, match="unknown options \\['inner_batchh'\\]"):
        Outer.from_options(inner_batchh=4)


def test_a_nested_error_names_the_containers_flag():
    with pytest.raises(ValueError, match="^--other-batch: batch_size must be >= 1, got 0$"):
        build(Outer, {"other_batch": 0})


def test_two_leaves_with_one_name_are_refused():
    @dataclass
    class Clash:
        a: Inner = nested(Inner)
        b: Inner = nested(Inner)

    with pytest.raises(TypeError, match="used twice: \\['batch_size', 'seed'\\]"):
        flatten(Clash())
