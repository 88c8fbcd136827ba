"""Are the probe and test sets samples of the pack's distribution? Their mix of skills and cells
next to the source's own.

A set drawn with ``sampling: distinct`` cannot hold more of a cell than the cell has distinct
problems, so a small cell is under-represented in the test set and, drawn after it, missing from
the probe set: accuracy then describes another distribution than the pack's. The source's own mix
is read from a large draw (:data:`REFERENCE` items, no de-duplication). A set differs when its
counts fail a chi-square goodness-of-fit test against the source's shares (p below
:data:`ALPHA`, categories expected fewer than 5 times pooled) *and* its shares are at least
:data:`MIN_DISTANCE` apart in total variation, so sampling noise alone rarely warns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from failforward.tools.packs.pack import Pack
from failforward.tools.records import Item

REFERENCE = 2000
ALPHA = 0.001
MIN_DISTANCE = 0.1


@dataclass
class Composition:
    """One set's shares along one dimension (``skill`` or ``cell``) next to the source's."""

    split: str
    dimension: str
    counts: Counter
    reference: dict[str, float]  # the source's share of each value
    distance: float  # total variation between the set's shares and the source's
    p_value: float

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def differs(self) -> bool:
        return self.p_value < ALPHA and self.distance >= MIN_DISTANCE

    @property
    def warning(self) -> str:
        if not self.differs:
            return ""
        under = sorted(self.reference, key=lambda v: self.share(v) - self.reference[v])[0]
        return (
            f"the {self.split} set is not a sample of the pack's distribution by {self.dimension}: "
            f"{under} is {self.share(under):.0%} of it against {self.reference[under]:.0%} of "
            f"the source's items (total variation {self.distance:.2f}, chi-square p "
            f"{self.p_value:.1g}); accuracy on it describes another mix. Set `sampling: "
            "mixture` in pack.yaml to draw the source's own mix (repeats allowed within a set)"
        )

    def share(self, value: str) -> float:
        return self.counts.get(value, 0) / self.n if self.n else 0.0

    def summary(self) -> str:
        verdict = "differs from" if self.differs else "matches"
        return (
            f"{self.split} set ({self.n} items) {verdict} the source's mix by {self.dimension} "
            f"(total variation {self.distance:.2f}, chi-square p {self.p_value:.2g})"
        )


def labels(items: list[Item], pack: Pack) -> dict[str, list[str]]:
    """Each item's skill and cell as text, per dimension the pack has (no cell dimension when
    no skill has knobs: the cells would be the skills again)."""
    out: dict[str, list[str]] = {}
    if pack.spec.skills:
        out["skill"] = [str(i.metadata.get("skill")) for i in items]
    cells = [pack.cell_of(i.metadata) for i in items]
    has_knobs = any(pack.knobs_for(s) for s in pack.skills) or bool(pack.knobs_for())
    if has_knobs:
        out["cell"] = [
            ", ".join(f"{k}={v}" for k, v in c.items()) if c else "(none)" for c in cells
        ]
    return out


def reference_items(pack: Pack, source=None) -> list[Item]:
    """A large draw of the pack's eval source: its own mix of skills and cells."""
    source = source if source is not None else pack.make_source()
    size = REFERENCE if source.procedural else len(source.items)
    return source.sample(size, seed=0)


def compare(
    split: str, items: list[Item], reference: list[Item], pack: Pack, strata: str = "weights"
) -> list[Composition]:
    """The set's composition along each dimension against the reference draw's; with
    ``strata`` ``equal`` against the mix the set was drawn to have: every skill an equal share,
    each skill's cells as the source gives them."""
    theirs, ours = labels(reference, pack), labels(items, pack)
    weight = [1.0] * len(reference)
    if strata == "equal" and "skill" in theirs:
        per_skill = Counter(theirs["skill"])
        weight = [1.0 / per_skill[s] for s in theirs["skill"]]
    out = []
    for dimension, values in ours.items():
        counts = Counter(values)
        ref: Counter = Counter()
        for value, w in zip(theirs[dimension], weight, strict=True):
            ref[value] += w
        total = sum(ref.values())
        shares = {v: ref[v] / total for v in sorted(set(ref) | set(counts))}
        distance = 0.5 * sum(abs(counts[v] / len(values) - shares[v]) for v in shares)
        out.append(Composition(split, dimension, counts, shares, distance, _chi2_p(counts, shares)))
    return out


def compare_sets(pack: Pack, sets: dict[str, list[Item]] | None = None) -> list[Composition]:
    """Each set's composition (``sets``: ``{"probe": [...], "test": [...]}``; default: drawn as a
    run would draw them) against the source's."""
    source = pack.make_source()
    if sets is None:
        probe, test = pack.draw_sets(source)
        sets = {"test": test, "probe": probe}
    reference = reference_items(pack, source)
    return [
        c
        for split, items in sets.items()
        for c in compare(split, items, reference, pack, getattr(pack.spec, split).strata)
    ]


def _chi2_p(counts: Counter, shares: dict[str, float]) -> float:
    """Goodness of fit of ``counts`` to ``shares`` (values expected < 5 times pooled; a value
    the source never gives makes the fit fail outright)."""
    from scipy.stats import chi2

    n = sum(counts.values())
    if any(counts[v] and not shares[v] for v in shares):
        return 0.0
    observed, expected, pooled_o, pooled_e = [], [], 0.0, 0.0
    for value, share in shares.items():
        if n * share < 5:
            pooled_o, pooled_e = pooled_o + counts[value], pooled_e + n * share
        else:
            observed.append(counts[value])
            expected.append(n * share)
    if pooled_e:
        observed.append(pooled_o)
        expected.append(pooled_e)
    if len(expected) < 2:
        return 1.0
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return float(chi2.sf(statistic, len(expected) - 1))


def stored_form(found: list[Composition]) -> dict:
    """The comparison as JSON for the run store (``meta.composition``), read by the report."""
    dimensions: dict[str, dict[str, dict[str, float]]] = {}
    for c in found:
        rows = dimensions.setdefault(c.dimension, {})
        for value, share in c.reference.items():
            rows.setdefault(value, {})["source"] = share
            rows[value][c.split] = c.share(value)
    return {
        "dimensions": dimensions,
        "summaries": [c.summary() for c in found],
        "warnings": [c.warning for c in found if c.warning],
    }
