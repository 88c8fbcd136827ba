"""Task sources: where evaluation items and procedural training items come from.

A source turns ``(n, seed, overrides)`` into :class:`~tools.records.Item` s. reasoning-gym datasets
are procedural (every knob setting is a new distribution, items carry their knob values in
``metadata``); a JSONL source serves a fixed file.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from failforward.tools.records import Item
from failforward.tools.verify.sqlcheck import run_readonly


class ReasoningGymSource:
    """Items from a reasoning-gym dataset, with config overrides for targeted generation.

    Example:
        >>> src = ReasoningGymSource("chain_sum", {"min_terms": 2, "max_terms": 3})
        >>> len(src.sample(4, seed=0))
        4
    """

    procedural = True

    def __init__(self, dataset: str, config: dict[str, Any] | None = None, traces: bool = False):
        import reasoning_gym  # heavy-ish import, kept out of pack loading

        self.dataset = dataset
        self.config = dict(config or {})
        self.traces = traces  # give items without answer_cot a worked solution of ours
        self._rg = reasoning_gym
        self._scorer = reasoning_gym.create_dataset(dataset, size=1, seed=0, **self.config)

    def sample(self, n: int, seed: int, overrides: dict[str, Any] | None = None) -> list[Item]:
        config = {**self.config, **(overrides or {})}
        data = self._rg.create_dataset(self.dataset, size=max(n, 1), seed=seed, **config)
        traced = self.dataset if self.traces else None
        return [_item_from_entry(data[i], traced) for i in range(n)]

    def score(self, answer: str, item: Item) -> float:
        """reasoning-gym's own scorer for this dataset (1.0 is right)."""
        entry = {"question": item.question, "answer": item.answer, "metadata": item.metadata}
        return float(self._scorer.score_answer(answer, entry) or 0.0)


class JsonlSource:
    """A fixed list of items from a JSONL file with ``question`` and ``answer`` fields."""

    procedural = False

    def __init__(self, path: Path):
        self.path = Path(path)
        lines = enumerate(self.path.read_text().splitlines(), start=1)
        self.items = [self._item(number, line) for number, line in lines if line.strip()]

    def _item(self, number: int, line: str) -> Item:
        """One line's item; a bad line is a ``ValueError`` naming the file, line and field."""
        where = f"{self.path}: line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg}, column {err.colno})") from None
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object with question and answer")
        if isinstance(value.get("answer"), int | float) and not isinstance(value["answer"], bool):
            value["answer"] = str(value["answer"])  # {"answer": 60} means "60"
        try:
            return Item.model_validate(value)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(the object)"
            raise ValueError(f"{where}: {field}: {first['msg']}") from None

    def sample(self, n: int, seed: int, overrides: dict[str, Any] | None = None) -> list[Item]:
        if n > len(self.items):
            raise ValueError(f"{self.path}: asked for {n} items, the file has {len(self.items)}")
        return random.Random(seed).sample(self.items, n)


class TemplateSource:
    """Items instantiated from question templates with slots filled from a database.

    ``templates.yaml`` has ``slots`` (name -> SQL query on the database, or a literal list) and
    ``templates`` (``id``, ``question`` and gold ``sql`` with ``{slot}`` fields, ``joins``,
    ``categories``, optional ``ordered``). Every combination of a template's slot values is an
    item whose answer is the filled SQL; combinations whose SQL fails or returns no rows are left
    out (the question implies an answer). String values are escaped for SQL, so a slot goes
    inside quotes there. ``min_joins``/``max_joins`` overrides pick templates by ``joins``.
    """

    procedural = True

    def __init__(self, path: Path, database: Path):
        import yaml

        self.path, self.database = Path(path), Path(database)
        spec = yaml.safe_load(self.path.read_text())
        values = {}
        for name, how in spec["slots"].items():
            if isinstance(how, str):
                result = run_readonly(self.database, how)
                if result.rows is None:
                    raise ValueError(f"{self.path}: slots.{name}: {result.reason} {result.detail}")
                values[name] = [row[0] for row in result.rows]
            else:
                values[name] = list(how)
        self.items: list[Item] = []
        for template in spec["templates"]:
            self.items += self._instantiate(template, values)

    def _instantiate(self, template: dict[str, Any], values: dict[str, list]) -> list[Item]:
        import itertools
        import string

        used = sorted(
            {
                field
                for text in (template["question"], template["sql"])
                for _, field, _, _ in string.Formatter().parse(text)
                if field
            }
        )
        if not all(isinstance(c, str) for c in template.get("categories", [])):
            raise ValueError(
                f"{self.path}: template {template['id']}: categories must be text, got "
                f"{template['categories']} (quote YAML words such as null)"
            )
        missing = [name for name in used if name not in values]
        if missing:
            raise ValueError(f"{self.path}: template {template['id']}: unknown slot(s) {missing}")
        items = []
        for combo in itertools.product(*(values[name] for name in used)):
            filled = dict(zip(used, combo, strict=True))
            escaped = {
                k: v.replace("'", "''") if isinstance(v, str) else v for k, v in filled.items()
            }
            sql = template["sql"].format(**escaped)
            result = run_readonly(self.database, sql)
            if not result.rows:
                continue
            items.append(
                Item(
                    question=template["question"].format(**filled),
                    answer=sql,
                    metadata={
                        "template": template["id"],
                        "joins": int(template["joins"]),
                        "categories": list(template.get("categories", [])),
                        "ordered": bool(template.get("ordered", False)),
                    },
                )
            )
        return items

    def sample(self, n: int, seed: int, overrides: dict[str, Any] | None = None) -> list[Item]:
        overrides = overrides or {}
        low, high = overrides.get("min_joins", 0), overrides.get("max_joins", 99)
        pool = [i for i in self.items if low <= i.metadata["joins"] <= high]
        if not pool:
            raise ValueError(f"{self.path}: no template has {low}-{high} joins")
        rng = random.Random(seed)
        out: list[Item] = []
        while len(out) < n:  # every item once before any repeats
            out += rng.sample(pool, min(len(pool), n - len(out)))
        return out


class MixtureSource:
    """A weighted mixture of skills, each its own source; every item carries its skill in
    ``metadata.skill``. ``sample`` without a ``skill`` override draws each skill's share of
    ``n`` (largest remainder over the weights, so uniform data follows the mixture exactly) and
    shuffles them; with ``{"skill": name, ...}`` it draws from that skill alone with the other
    overrides.

    Example:
        >>> src = MixtureSource({"sum": ReasoningGymSource("chain_sum"),
        ...                      "prod": ReasoningGymSource("products")}, {"sum": 3, "prod": 1})
        >>> sorted(i.metadata["skill"] for i in src.sample(4, seed=0))
        ['prod', 'sum', 'sum', 'sum']
    """

    def __init__(self, parts: dict[str, Any], weights: dict[str, float]):
        self.parts, self.weights = parts, weights
        self.procedural = all(part.procedural for part in parts.values())

    def counts(self, n: int, equal: bool = False) -> dict[str, int]:
        """Each skill's share of ``n`` items: by the weights, or ``equal`` shares."""
        names = list(self.parts)
        weights = [1.0 if equal else self.weights[k] for k in names]
        return dict(zip(names, allocate(weights, n), strict=True))

    def sample(self, n: int, seed: int, overrides: dict[str, Any] | None = None) -> list[Item]:
        overrides = dict(overrides or {})
        skill = overrides.pop("skill", None)
        if skill is not None:
            if skill not in self.parts:
                raise ValueError(f"no skill {skill!r}; the pack has {sorted(self.parts)}")
            return self.sample_skill(skill, n, seed, overrides)
        items = []
        for name, count in self.counts(n).items():
            items += self.sample_skill(name, count, seed) if count else []
        random.Random(seed).shuffle(items)
        return items

    def sample_skill(
        self, skill: str, n: int, seed: int, overrides: dict[str, Any] | None = None
    ) -> list[Item]:
        """``n`` items of one skill (its own seed stream, so skills do not share draws)."""
        items = self.parts[skill].sample(n, skill_seed(seed, skill), overrides)
        return [tag_skill(item, skill) for item in items]

    def score(self, answer: str, item: Item) -> float:
        """The score of the item's skill's source."""
        return self.parts[item.metadata["skill"]].score(answer, item)


def skill_seed(seed: int, skill: str) -> int:
    """A seed for one skill's draws derived from the run's and the skill's name."""
    return seed + int(hashlib.sha256(skill.encode()).hexdigest()[:6], 16)


def tag_skill(item: Item, skill: str) -> Item:
    return item.model_copy(update={"metadata": {**item.metadata, "skill": skill}})


def allocate(weights: list[float], budget: int) -> list[int]:
    """Split ``budget`` in proportion to ``weights`` (largest remainder; sums to ``budget``).

    Example:
        >>> allocate([5, 3, 2], 7)
        [4, 2, 1]
    """
    total = sum(weights)
    if total <= 0 or budget <= 0:
        return [0] * len(weights)
    exact = [budget * w / total for w in weights]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: budget - sum(shares)]:
        shares[i] += 1
    return shares


def _item_from_entry(entry: dict[str, Any], traced: str | None = None) -> Item:
    """An item from a reasoning-gym entry; a worked solution (``answer_cot``) becomes its
    ``solution``, else, given ``traced`` (the dataset's name), one written from its metadata
    (:func:`tools.packs.traces.worked_solution`; empty where none can be)."""
    from failforward.tools.packs.traces import worked_solution

    metadata = {
        k: v for k, v in entry.get("metadata", {}).items() if k not in ("difficulty", "answer_cot")
    }
    solution = str(entry.get("metadata", {}).get("answer_cot") or "")
    if not solution and traced:
        solution = worked_solution(traced, metadata, str(entry["answer"]))
    # Stored as JSON: values JSON cannot hold (gsm_symbolic's Fractions) are kept as text.
    metadata = json.loads(json.dumps(metadata, default=str))
    return Item(
        question=entry["question"],
        answer=str(entry["answer"]),
        solution=solution,
        metadata=metadata,
    )


def split_disjoint(
    source: ReasoningGymSource | JsonlSource, probe: tuple[int, int], test: tuple[int, int]
) -> tuple[list[Item], list[Item]]:
    """Draw the test and probe sets, ``(size, seed)`` each, with no question twice or in both.

    Example:
        >>> src = ReasoningGymSource("chain_sum")
        >>> probe_items, test_items = split_disjoint(src, probe=(10, 1), test=(20, 2))
        >>> len(probe_items), len(test_items)
        (10, 20)
    """
    seen: set[str] = set()
    test_items = draw_unique(source, test[0], test[1], seen)
    probe_items = draw_unique(source, probe[0], probe[1], seen)
    return probe_items, test_items


def draw_sets(
    source,
    probe: tuple[int, int],
    test: tuple[int, int],
    sampling: str = "distinct",
    strata: tuple[str, str] = ("weights", "weights"),
) -> tuple[list[Item], list[Item]]:
    """The probe and test sets, ``(size, seed)`` each: stratified by skill for a
    :class:`MixtureSource` (each skill's share of a set by the weights, or equal where that
    set's ``strata`` is ``equal``; ``strata`` is (probe's, test's)), and per skill either
    ``distinct`` (no question twice, :func:`split_disjoint`) or ``mixture`` (the source's own
    distribution, :func:`draw_mixture`). No question is ever in both sets."""
    draw = split_disjoint if sampling == "distinct" else split_mixture
    if not isinstance(source, MixtureSource):
        return draw(source, probe, test)
    probe_counts = source.counts(probe[0], equal=strata[0] == "equal")
    test_counts = source.counts(test[0], equal=strata[1] == "equal")
    probe_items: list[Item] = []
    test_items: list[Item] = []
    for skill, part in source.parts.items():
        if not probe_counts[skill] and not test_counts[skill]:
            continue
        seeds = skill_seed(probe[1], skill), skill_seed(test[1], skill)
        p, t = draw(part, (probe_counts[skill], seeds[0]), (test_counts[skill], seeds[1]))
        probe_items += [tag_skill(item, skill) for item in p]
        test_items += [tag_skill(item, skill) for item in t]
    random.Random(probe[1]).shuffle(probe_items)
    random.Random(test[1]).shuffle(test_items)
    return probe_items, test_items


def split_mixture(
    source, probe: tuple[int, int], test: tuple[int, int]
) -> tuple[list[Item], list[Item]]:
    """Probe and test sets that are samples of the source's own distribution: each distinct
    question belongs to one set (by a hash of it, in proportion to the sets' sizes), and a set
    keeps the source's draws of its own questions, repeats included. The split does not depend
    on how often a question is drawn, so both sets follow the source's mixture of cells."""
    share = test[0] / (test[0] + probe[0])
    test_items = draw_mixture(source, test[0], test[1], lambda q: _hash01(q) < share)
    probe_items = draw_mixture(source, probe[0], probe[1], lambda q: _hash01(q) >= share)
    return probe_items, test_items


def draw_mixture(source, size: int, seed: int, owns) -> list[Item]:
    """``size`` of the source's draws whose question ``owns`` accepts, in draw order."""
    items: list[Item] = []
    draws = max(2 * size, 8)
    if not source.procedural:
        draws = min(draws, len(source.items))
    for attempt in range(16):
        for item in source.sample(draws, seed=seed + 7919 * attempt):
            if owns(normalize(item.question)):
                items.append(item)
            if len(items) == size:
                return items
    raise ValueError(f"could not draw {size} items (seed {seed}): the source is too small")


def _hash01(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


def draw_unique(
    source: ReasoningGymSource | JsonlSource, size: int, seed: int, seen: set[str]
) -> list[Item]:
    """``size`` items whose questions are not in ``seen`` (which is updated), deterministically."""
    items: list[Item] = []
    for attempt in range(8):
        pool_size = size * (attempt + 1) + 8
        if not source.procedural:
            pool_size = min(pool_size, len(source.items))
        for item in source.sample(pool_size, seed=seed + 7919 * attempt):
            key = normalize(item.question)
            if key not in seen:
                seen.add(key)
                items.append(item)
            if len(items) == size:
                return items
    raise ValueError(f"could not draw {size} distinct items (seed {seed}): the source is too small")


Source = ReasoningGymSource | JsonlSource | TemplateSource | MixtureSource
"""Any of a pack's item sources: ``sample(n, seed, overrides)`` and ``score(answer, item)``."""


def normalize(text: str) -> str:
    """Case- and whitespace-insensitive form of a question, for duplicate and leak checks."""
    return " ".join(text.lower().split())
