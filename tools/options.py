"""Settings dataclasses that nest, seen as one flat set of named options.

``RunSettings`` holds a ``TrainConfig``, a ``PlanRule`` and an ``EndpointSettings``; a user sees
one flat set of options (``--learning-rate``, ``--plan``, ``--llm``) and a run stores its
settings flat, so nesting changes neither the command line nor the stored form. A leaf's option
name is its field name, or what the field holding its dataclass renames it to; a hidden leaf is
not an option (its container sets it). Names are unique across the tree.

Example:
    >>> @dataclass
    ... class Inner:
    ...     batch_size: int = option(8, "Examples per step.")
    ...     seed: int = option(0, "Seed.")
    >>> @dataclass
    ... class Outer:
    ...     seed: int = option(0, "Seed for everything.")
    ...     inner: Inner = nested(Inner, rename={"batch_size": "inner_batch"}, hide=("seed",))
    >>> [o.name for o in options(Outer)]
    ['seed', 'inner_batch']
    >>> build(Outer, {"inner_batch": 4}).inner.batch_size
    4
"""

from __future__ import annotations

import functools
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal


class OptionError(ValueError):
    """A setting out of range. ``name`` is the field it is about; ``problem`` what is wrong with
    it (default: the message), which ``build`` puts after the option's flag."""

    def __init__(self, name: str, message: str, problem: str | None = None):
        super().__init__(message)
        self.name, self.problem = name, message if problem is None else problem


def option(default: Any, help: str) -> Any:
    """A leaf setting: its default and the help text the command line shows."""
    return field(default=default, metadata={"help": help})


def nested(
    cls: type,
    rename: dict[str, str] | None = None,
    hide: tuple[str, ...] = (),
    help: dict[str, str] | None = None,
    **defaults: Any,
) -> Any:
    """A field holding settings of their own (``cls``, built with ``defaults``): its leaves join
    the flat options under their own names, or those in ``rename``; ``hide`` keeps leaves out;
    ``help`` replaces a leaf's help text where the container gives it another meaning."""
    meta = {"nested": cls, "rename": rename or {}, "hide": hide, "help": help or {}}
    return field(default_factory=lambda: cls(**defaults), metadata={**meta, "defaults": defaults})


@dataclass(frozen=True)
class Option:
    """One flat option: ``name`` (the stored key; ``--name-with-dashes`` on the command line),
    where it lives in the nested settings (``path``), its default and help."""

    name: str
    path: tuple[str, ...]
    default: Any
    help: str
    choices: tuple[str, ...] | None = None  # a Literal[...] field's values

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def annotation(self) -> Any:
        """The type the command line parses the option as: the field's ``Literal`` for a
        choice (so ``--help`` lists the values and a wrong one is refused), else the type of
        its default."""
        return Literal.__getitem__(self.choices) if self.choices else type(self.default)


@functools.cache
def choices_of(cls: type) -> dict[str, tuple[str, ...]]:
    """``{field name: its values}`` for each field of ``cls`` typed ``Literal[...]``."""
    hints = typing.get_type_hints(cls)
    return {
        name: typing.get_args(hint)
        for name, hint in hints.items()
        if typing.get_origin(hint) is Literal
    }


def check_choices(settings: Any) -> None:
    """Refuse a choice setting (a ``Literal[...]`` field) whose value is not one of its
    values: the one check every settings class makes in ``__post_init__`` (``build`` puts the
    option's flag before the problem)."""
    for name, allowed in choices_of(type(settings)).items():
        value = getattr(settings, name)
        if value not in allowed:
            words = [str(a) for a in allowed]
            one_of = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
            problem = f"must be {one_of}, got {value!r}"
            raise OptionError(name, f"{name} {problem}", problem)


def options(cls: type, prefix: tuple[str, ...] = (), meta: dict | None = None) -> list[Option]:
    """The flat options of a settings dataclass, in field order (nested ones where they sit)."""
    meta = meta or {}
    found = []
    for f in fields(cls):
        if f.name in meta.get("hide", ()):
            continue
        if "nested" in f.metadata:
            found += options(f.metadata["nested"], (*prefix, f.name), f.metadata)
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        default = meta.get("defaults", {}).get(f.name, default)
        name = meta.get("rename", {}).get(f.name, f.name)
        help = meta.get("help", {}).get(f.name, f.metadata.get("help", ""))
        choices = choices_of(cls).get(f.name)
        found.append(Option(name, (*prefix, f.name), default, help, choices))
    if not prefix:
        names = [o.name for o in found]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise TypeError(f"{cls.__name__}: option names used twice: {clashes}")
    return found


def flatten(settings: Any) -> dict[str, Any]:
    """``{option name: value}`` of a settings object (its stored form)."""
    flat = {}
    for o in options(type(settings)):
        value = settings
        for name in o.path:
            value = getattr(value, name)
        flat[o.name] = value
    return flat


def build(cls: type, flat: dict[str, Any], strict: bool = True):
    """A settings object from flat options (missing ones take their defaults). Unknown names
    raise ``TypeError`` (``strict``) or are dropped; a value out of range raises ``ValueError``
    naming the option's flag."""
    known = {o.name: o for o in options(cls)}
    unknown = sorted(set(flat) - set(known))
    if unknown and strict:
        raise TypeError(f"{cls.__name__}: unknown options {unknown}")
    tree: dict[str, Any] = {}
    for name, value in flat.items():
        if name in known:
            *parents, leaf = known[name].path
            node = tree
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
    return _make(cls, tree, {o.path: o for o in known.values()}, ())


def _make(cls: type, tree: dict[str, Any], by_path: dict, prefix: tuple[str, ...]):
    values = {}
    for f in fields(cls):
        if "nested" in f.metadata:
            own = {**f.metadata["defaults"], **tree.get(f.name, {})}
            values[f.name] = _make(f.metadata["nested"], own, by_path, (*prefix, f.name))
        elif f.name in tree:
            values[f.name] = _typed(f, tree[f.name], by_path.get((*prefix, f.name)))
    try:
        return cls(**values)
    except OptionError as err:
        known = by_path.get((*prefix, err.name))
        if known is None:
            raise
        raise ValueError(f"{known.flag}: {err.problem}") from err


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _typed(f, value: Any, known: Option | None) -> Any:
    """``value`` as the type of the field's default (an int for a float field is fine); else a
    ``ValueError`` naming the option, as a settings file or Studio input can hold anything."""
    kind = type(f.default)
    if kind not in _KINDS or value is None:
        return value
    fits = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not fits:
        name = known.flag if known else f.name
        raise ValueError(f"{name}: expected {_KINDS[kind]}, got {value!r}")
    return value


class StoredSettings:
    """For a settings dataclass stored with its run: to and from the flat dict of its options
    (names a newer or older version does not know are dropped)."""

    def to_dict(self) -> dict[str, Any]:
        return flatten(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return build(cls, data, strict=False)

    @classmethod
    def from_options(cls, **flat: Any):
        """Built from flat options, as the command line gives them
        (``RunSettings.from_options(objective="sft", llm="local")``)."""
        return build(cls, flat)

    def replace(self, **flat: Any):
        """A copy with some flat options changed."""
        return build(type(self), {**flatten(self), **flat})
