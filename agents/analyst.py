"""The failure analyst: represent, embed, cluster, name and track the student's failures.

Each failure becomes a text that says how the answer was wrong (pack-chosen features from
:mod:`tools.embed.features`), embedded with MiniLM and clustered with FAISS k-means (k by
silhouette, tiny clusters in an outlier bucket). Clusters are named by the analyst endpoint when
there is one, else from their most discriminative metadata and c-TF-IDF keywords, and matched to the
previous cycle's clusters by centroid. Planning the budget over them is :mod:`agents.planner`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from failforward.agents.replies import json_object
from failforward.agents.tasks import Task, ask
from failforward.tools.embed.embeddings import Embedder
from failforward.tools.embed.faiss_index import Clustering
from failforward.tools.embed.features import describe
from failforward.tools.packs.pack import Pack, first_error
from failforward.tools.records import Failure, FailureCluster, Item, KnobCell

Clusterer = Callable[[np.ndarray, int], Clustering]  # (vectors, seed) -> Clustering


def failure_features(failure: Failure, features: list[str]) -> list[str]:
    """Words describing how the answer was wrong (the pack picks which features apply)."""
    return describe(failure.expected, failure.extracted, failure.output, failure.question, features)


def failure_text(failure: Failure, features: list[str]) -> str:
    """The text that is embedded: the skill (multi-skill packs), question, expected answer, what
    the student said, features; so clusters follow skill and mistake together."""
    said = failure.extracted or failure.output[:60] or "(empty)"
    skill = failure.metadata.get("skill")
    return (
        (f"skill {skill}\n" if skill else "")
        + f"{failure.question}\nexpected {failure.expected}; student said {said}; "
        f"{', '.join(failure_features(failure, features))}"
    )


def cluster_failures(
    failures: list[Failure],
    pack: Pack,
    embedder: Embedder,
    seed: int = 0,
    clusterer: Clusterer | None = None,
) -> tuple[list[FailureCluster], list[int]]:
    """Clusters of similar failures (largest first, the outlier bucket last) and each failure's
    cluster id (-1: outlier). k is chosen from the data (see
    :func:`tools.embed.faiss_index.cluster`)."""
    if not failures:
        return [], []
    spec = pack.spec.analyst
    texts = [failure_text(f, spec.features) for f in failures]
    vectors = embedder(texts)
    if clusterer is None:
        from failforward.tools.embed.faiss_index import cluster

        def clusterer(v, s):
            return cluster(v, spec.min_cluster_size, spec.max_clusters, s)

    result = clusterer(vectors, seed)
    labels = [int(x) for x in result.labels]
    keywords = ctfidf_keywords(texts, labels)
    knobs = list(pack.knobs_for())
    clusters = []
    for cluster_id in sorted(set(labels), key=lambda c: (c < 0, c)):
        members = [f for f, label in zip(failures, labels, strict=True) if label == cluster_id]
        outlier = cluster_id < 0
        clusters.append(
            FailureCluster(
                cluster_id=cluster_id,
                name="outliers" if outlier else name_from_metadata(members, failures, pack),
                size=len(members),
                exemplars=[m.question for m in members[:3]],
                knobs=knob_ranges(members, knobs),
                knob_modes=knob_modes(members, pack),
                cells=knob_cells(members, pack.cell_of),
                keywords=keywords.get(cluster_id, []),
                description=f"keywords: {', '.join(keywords.get(cluster_id, []))}",
                centroid=[] if outlier else result.centroids[cluster_id].tolist(),
            )
        )
    return _distinct_names(clusters), labels


def _distinct_names(clusters: list[FailureCluster]) -> list[FailureCluster]:
    """Suffix repeated names (``"... (2)"``) so plans and reports can tell clusters apart."""
    seen: Counter[str] = Counter()
    out = []
    for cluster in clusters:
        seen[cluster.name] += 1
        if seen[cluster.name] > 1:
            cluster = cluster.model_copy(update={"name": f"{cluster.name} ({seen[cluster.name]})"})
        out.append(cluster)
    return out


def knob_ranges(members: list[Failure], knobs: list[str]) -> dict[str, tuple[int, int]]:
    ranges = {}
    for knob in knobs:
        values = [int(m.metadata[knob]) for m in members if isinstance(m.metadata.get(knob), int)]
        if values:
            ranges[knob] = (min(values), max(values))
    return ranges


def knob_modes(members: list[Failure], pack: Pack) -> dict[str, int | str]:
    """The most common value of each knob among the members; for a multi-skill pack, the most
    common skill first and then the modes of that skill's knobs among its members."""
    modes: dict[str, int | str] = {}
    if pack.spec.skills:
        skills = Counter(m.metadata.get("skill") for m in members if m.metadata.get("skill"))
        if not skills:
            return modes
        modes["skill"] = skill = skills.most_common(1)[0][0]
        members = [m for m in members if m.metadata.get("skill") == skill]
    for knob in pack.knobs_for(modes.get("skill")):
        values = Counter(m.metadata[knob] for m in members if isinstance(m.metadata.get(knob), int))
        if values:
            modes[knob] = values.most_common(1)[0][0]
    return modes


def knob_cells(members: list[Failure], cell_of: Callable[[dict], dict | None]) -> list[KnobCell]:
    """Failures per cell (``cell_of``: an item's cell from its metadata, e.g.
    :meth:`Pack.cell_of`), most failures first, then cell order; members with no cell are
    left out."""
    counts: Counter[tuple] = Counter()
    for member in members:
        cell = cell_of(member.metadata)
        if cell:
            counts[tuple(cell.items())] += 1
    ordered = sorted(
        counts.items(), key=lambda kv: (-kv[1], [(isinstance(v, str), v) for _, v in kv[0]])
    )
    return [KnobCell(knobs=dict(cell), failures=n) for cell, n in ordered]


def name_from_metadata(members: list[Failure], everyone: list[Failure], pack: Pack) -> str:
    """A readable name from the cluster's most discriminative knob values and failure feature:
    those over-represented here compared with all failures.

    Example: ``"num_terms=3, num_digits=2: off by a carry"``.
    """
    parts = []
    dimensions = ["skill"] if pack.spec.skills else []
    for knobs in [pack.knobs_for(skill) for skill in pack.skills] or [pack.knobs_for()]:
        dimensions += [k for k in knobs if k not in dimensions]
    for knob in dimensions:
        value = _most_discriminative(
            [m.metadata.get(knob) for m in members], [f.metadata.get(knob) for f in everyone]
        )
        if value is not None:
            parts.append(f"{knob}={value}")
    features = pack.spec.analyst.features
    feature = _most_discriminative(
        [x for m in members for x in failure_features(m, features)],
        [x for f in everyone for x in failure_features(f, features)],
    )
    return f"{', '.join(parts)}: {feature}" if parts else str(feature)


def _most_discriminative(values: list, everyone: list):
    """The value that is both common here and over-represented here: the largest
    ``2 * share_here - share_overall`` (a pure lift would crown a value seen once)."""
    here, overall = Counter(v for v in values if v is not None), Counter(everyone)
    if not here:
        return None
    n, total = sum(here.values()), max(sum(overall.values()), 1)
    return max(here, key=lambda v: (2 * here[v] / n - overall[v] / total, str(v)))


_WORD = re.compile(r"[a-z][a-z_]{2,}")
_STOP = {"the", "and", "for", "said", "student", "expected", "following", "state", "final"}


def ctfidf_keywords(texts: list[str], labels: list[int], top: int = 3) -> dict[int, list[str]]:
    """Per cluster, the words that set it apart (class-based TF-IDF over its members' texts)."""
    docs: dict[int, Counter[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        docs.setdefault(label, Counter()).update(
            w for w in _WORD.findall(text.lower()) if w not in _STOP
        )
    overall = sum(docs.values(), Counter())
    average = sum(overall.values()) / max(len(docs), 1)
    keywords = {}
    for label, counts in docs.items():
        size = max(sum(counts.values()), 1)
        score = {w: c / size * math.log(1 + average / overall[w]) for w, c in counts.items()}
        ranked = sorted(score, key=lambda w: (-score[w], w))
        keywords[label] = ranked[:top] if len(docs) > 1 else []
    return keywords


class ClusterName(BaseModel):
    """What the analyst endpoint must return for a cluster."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    hypothesis: str = ""


def parse_cluster_name(text: str) -> ClusterName:
    """The analyst's naming reply; raises ValueError saying what is wrong with it."""
    value = json_object(text)
    try:
        return ClusterName.model_validate(value)
    except ValidationError as err:
        raise ValueError(first_error(err)) from err


NAME_CLUSTER = Task("analyst", parse=parse_cluster_name)


def name_with_llm(
    client,
    pack: Pack,
    clusters: list[FailureCluster],
    failures: list[Failure],
    labels: list[int],
    cycle: int,
) -> list[FailureCluster]:
    """Clusters named by the analyst endpoint (name, description, missing-skill hypothesis); a
    reply that does not parse keeps the metadata name and ``name_source`` says why."""
    if "analyst" not in pack.templates:
        return clusters
    named = [c for c in clusters if not c.outlier]
    requests = []
    for cluster in named:
        members = [f for f, lab in zip(failures, labels, strict=True) if lab == cluster.cluster_id]
        variables = {"cluster": cluster, "failures": members[:6], "task": pack.spec.task}
        requests.append((f"c{cycle}-k{cluster.cluster_id}", variables))
    replies = dict(
        zip([c.cluster_id for c in named], ask(client, pack, NAME_CLUSTER, requests), strict=True)
    )
    renamed = []
    for cluster in clusters:
        reply = replies.get(cluster.cluster_id)
        if reply is None:  # an outlier: not named
            renamed.append(cluster)
        elif reply.value is None:
            why = reply.error if reply.answered else "no reply"
            renamed.append(cluster.model_copy(update={"name_source": f"metadata ({why})"}))
        else:
            name = reply.value
            update = {**name.model_dump(), "name": name.name.strip(), "name_source": "analyst"}
            renamed.append(cluster.model_copy(update=update))
    return _distinct_names(renamed)


def cell_accuracy(probe: list[tuple[Item, float]], cell: dict[str, int]) -> float | None:
    """The student's accuracy on probe items whose metadata has every ``cell`` value (None: no
    such item)."""
    scores = [s for item, s in probe if all(item.metadata.get(k) == v for k, v in cell.items())]
    return sum(s >= 1.0 for s in scores) / len(scores) if scores else None


def near_success(
    clusters: list[FailureCluster], probe: list[tuple[Item, float]]
) -> list[FailureCluster]:
    """Each cluster with the student's accuracy on probe items near it: those with the cluster's
    most common knob values (the whole probe set when a pack has no knobs or the cell is empty)."""
    overall = cell_accuracy(probe, {}) or 0.0
    out = []
    for cluster in clusters:
        near = cell_accuracy(probe, cluster.knob_modes) if cluster.knob_modes else None
        out.append(cluster.model_copy(update={"success": overall if near is None else near}))
    return out


def track_clusters(
    current: list[FailureCluster],
    previous: list[FailureCluster],
    targeted: set[int],
    cycle: int,
    threshold: float = 0.95,
) -> tuple[list[FailureCluster], list[dict]]:
    """Match this cycle's clusters to the last cycle's by centroid cosine (one to one).

    A matched cluster keeps its ``mode_id`` and is marked grew/shrank/stable (±20% in size); it
    counts one more ``flat_cycles`` when it was targeted (``targeted``: last cycle's cluster ids
    with budget) and did not shrink. Unmatched current clusters are ``new``; the returned links
    also list the previous clusters that vanished.
    """
    from failforward.tools.embed.faiss_index import match_centroids

    cur = [c for c in current if not c.outlier and c.centroid]
    prev = [c for c in previous if not c.outlier and c.centroid]
    pairs = []
    if cur and prev:
        vectors = [np.array([c.centroid for c in side], dtype=np.float32) for side in (cur, prev)]
        pairs = match_centroids(*vectors, threshold)
    matched = {cur[i].cluster_id: (prev[j], sim) for i, j, sim in pairs}
    out = [
        c
        if c.outlier
        else c.model_copy(update=_tracking(c, matched.get(c.cluster_id), targeted, cycle))
        for c in current
    ]
    links = [
        _link(c.cluster_id, c.previous_id, c.similarity, c.status, c.mode_id)
        for c in out
        if not c.outlier
    ]
    kept = {before.cluster_id for before, _ in matched.values()}
    links += [
        _link(None, before.cluster_id, None, "vanished", before.mode_id)
        for before in prev
        if before.cluster_id not in kept
    ]
    return out, links


def _tracking(cluster: FailureCluster, match, targeted: set[int], cycle: int) -> dict:
    """A cluster's tracking fields, from its match in the last cycle (None: it is new)."""
    if match is None:
        return {"mode_id": f"m{cycle}.{cluster.cluster_id}", "status": "new"}
    before, sim = match
    ratio = cluster.size / max(before.size, 1)
    status = "grew" if ratio >= 1.2 else "shrank" if ratio <= 0.8 else "stable"
    flat = before.flat_cycles + 1 if before.cluster_id in targeted and status != "shrank" else 0
    return {
        "mode_id": before.mode_id or f"m{cycle - 1}.{before.cluster_id}",
        "previous_id": before.cluster_id,
        "similarity": round(sim, 4),
        "status": status,
        "previous_size": before.size,
        "flat_cycles": flat,
    }


def _link(cluster_id, previous_id, similarity, status, mode_id) -> dict:
    return {
        "cluster_id": cluster_id,
        "previous_id": previous_id,
        "similarity": similarity,
        "status": status,
        "mode_id": mode_id,
    }
