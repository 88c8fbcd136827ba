"""``failforward packs validate``: load a pack and run one eval item through all of it.

Loading (:func:`tools.packs.pack.load_pack`) checks the schema, the files and each template's
variables. Validation goes on to draw an item from each source, verify the item's own reference
answer with the pack's verifier (through its answer pattern, as a student reply would be), run
the solver on it, check the knobs are in the items' metadata, render every template with
realistic values, and say what will verify the teacher's candidates with the given endpoints.
Every problem is a :class:`~tools.packs.pack.PackError` naming the file and field. ``run``,
``compare`` and Studio run the same checks (:func:`check_pack`) before a run folder exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from failforward.tools.packs.pack import DEFAULT_TEMPLATES, Pack, PackError, load_pack, pack_roots
from failforward.tools.records import Failure, FailureCluster, Item, PlanTarget
from failforward.tools.verify.verifiers import Unverifiable, extract_answer, make_solver


@dataclass
class CheckedPack:
    """A pack that passed every check: what was checked, and what a run should know."""

    pack: Pack
    done: list[str]
    notes: list[str] = field(default_factory=list)


def validate_pack(name_or_path: str, roles: set[str] = frozenset()) -> list[str]:
    """What was checked, one line each (notes start ``note: ``); raises :class:`PackError` at
    the first problem. ``roles`` are the LLM roles that will have an endpoint."""
    checked = check_pack(name_or_path, roles)
    return [*checked.done, *(f"note: {note}" for note in checked.notes)]


def check_pack(name_or_path: str, roles: set[str] = frozenset()) -> CheckedPack:
    """Every check of :func:`validate_pack`, and the loaded pack."""
    pack = load_pack(name_or_path)
    yaml_path = pack.directory / "pack.yaml"
    done = [f"{yaml_path}: schema, files and template variables"]
    drawn = _draw_each(pack, yaml_path)
    done += _check_sources(pack, yaml_path, drawn)
    spec = pack.spec
    try:
        verifier = pack.make_verifier()
        solver = make_solver(spec.critic.solver, spec.verifier_options, pack.directory)
    except ValueError as err:
        raise PackError(f"{yaml_path}: verifier_options: {err}") from err
    for where, item in drawn:
        done += _check_answer(pack, yaml_path, item, verifier, where)
        done += _check_solver(pack, yaml_path, item, solver)
        knobs = pack.knobs_for(item.metadata.get("skill"))
        missing = [k for k in knobs if not isinstance(item.metadata.get(k), int)]
        if missing:
            raise PackError(
                f"{yaml_path}: {where}knobs.{missing[0]}: the eval items have no integer "
                f"metadata {missing[0]!r} (they have {sorted(item.metadata)})"
            )
        done += _check_completion(pack, item, verifier)
    item = drawn[0][1]
    for role in pack.templates:
        _render(pack, role, item)
        done.append(f"{spec.templates.get(role, role + '.jinja')}: rendered")
    verification, notes = verification_plan(pack, roles)
    sets, composition_notes = _check_composition(pack, yaml_path)
    return CheckedPack(
        pack,
        [*done, verification, *sets],
        [*_teacher_notes(pack, roles), *notes, *composition_notes],
    )


def _draw_each(pack: Pack, yaml_path: Path) -> list[tuple[str, Item]]:
    """One eval item per skill (``("skills.<i>.", item)``), or the pack's one (``("", item)``)."""
    if not pack.spec.skills:
        return [("", _draw(pack, "eval", yaml_path))]
    source = pack.make_source()
    out = []
    for i, skill in enumerate(pack.spec.skills):
        try:
            items = source.sample_skill(skill.name, 1, seed=0)
        except Exception as err:  # a source may fail in many ways; all of them are the pack's
            raise PackError(
                f"{yaml_path}: skills.{i}.source: could not draw an item: {err}"
            ) from err
        if not items:
            raise PackError(f"{yaml_path}: skills.{i}.source: the source has no items")
        out.append((f"skills.{i}.", items[0]))
    return out


def _check_composition(pack: Pack, yaml_path: Path) -> tuple[list[str], list[str]]:
    """Draw the probe and test sets as a run would and compare their skills and cells with the
    source's own mix: a line per set, and a note for each set that differs beyond chance."""
    from failforward.tools.packs.composition import compare_sets

    try:
        report = compare_sets(pack)
    except ValueError as err:
        raise PackError(f"{yaml_path}: test.size: {err}") from err
    return [line.summary() for line in report], [line.warning for line in report if line.warning]


def teacher_writes(pack: Pack, roles: set[str]) -> bool:
    """Whether the teacher's candidates come from an LLM (else from a procedural source)."""
    mode = pack.spec.generator.mode
    return mode == "llm" or (mode == "auto" and "teacher" in roles)


def verification_plan(pack: Pack, roles: set[str]) -> tuple[str, list[str]]:
    """What will verify the teacher's candidates, and a note when nothing can."""
    critic = pack.spec.critic
    if critic.solver:
        return f"verification: critic.solver {critic.solver} recomputes each answer", []
    if not teacher_writes(pack, roles):
        if not pack.make_source("train").procedural:
            return "verification: none until the teacher has an endpoint", []
        return "verification: the procedural source's own answers (no solver checks them)", []
    how = critic.unvouched
    if how and "critic" in roles:
        detail = (
            f"{critic.samples} independent answers, {critic.agreement:.0%} must agree"
            if how == "consistency"
            else "it must confirm each answer and its own answer must match"
        )
        return f"verification: the LLM teacher's answers by {how} ({detail})", []
    return "verification: nothing can verify the LLM teacher's answers", [NOTHING_VERIFIES]


NOTHING_VERIFIES = (
    "nothing can verify the LLM teacher's answers, so the critic would reject every candidate "
    "as unverifiable: set critic.solver, or give the critic role an endpoint (--llm URL gives "
    "every role one) with critic.verify consistency (the default) or check"
)


NEEDS_TEACHER = (
    "no procedural source (the items are a fixed file), so the teacher needs an endpoint: "
    "run with --llm local, --llm <url> or --endpoints FILE"
)


def _teacher_notes(pack: Pack, roles: set[str]) -> list[str]:
    if pack.make_source("train").procedural or "teacher" in roles:
        return []
    return [NEEDS_TEACHER]


def _check_sources(pack: Pack, yaml_path: Path, drawn: list[tuple[str, Item]]) -> list[str]:
    """The sources give items enough for the probe and test sets, and a teacher without an
    endpoint has a procedural source to draw new items from."""
    spec = pack.spec
    eval_source = pack.make_source()
    if spec.skills:
        probe = eval_source.counts(spec.probe.size, equal=spec.probe.strata == "equal")
        test = eval_source.counts(spec.test.size, equal=spec.test.strata == "equal")
        for i, skill in enumerate(spec.skills):
            part = eval_source.parts[skill.name]
            need = probe[skill.name] + test[skill.name]
            if not part.procedural and len(part.items) < need:
                raise PackError(
                    f"{yaml_path}: skills.{i}.source.path: its share of the probe and test sets "
                    f"needs {need} items, {skill.source.path} has {len(part.items)}"
                )
        done = [
            f"skills.{i}.source ({s.source.kind}, skill {s.name}, weight {s.weight:g}): drew "
            f"{item.question[:60]!r}"
            for i, (s, (_, item)) in enumerate(zip(spec.skills, drawn, strict=True))
        ]
        kinds = ", ".join(sorted({s.source.kind for s in spec.skills}))
    else:
        if not eval_source.procedural and len(eval_source.items) < spec.probe.size + spec.test.size:
            raise PackError(
                f"{yaml_path}: test.size: probe ({spec.probe.size}) + test ({spec.test.size}) "
                f"items need more than the {len(eval_source.items)} in {spec.eval_source.path}"
            )
        done = [f"eval_source ({spec.eval_source.kind}): drew {drawn[0][1].question[:60]!r}"]
        kinds = spec.eval_source.kind
    if spec.train_source is not None:
        train = _draw(pack, "train", yaml_path)
        done.append(f"train_source ({spec.train_source.kind}): drew {train.question[:60]!r}")
    if not pack.make_source("train").procedural:
        if spec.generator.mode == "procedural":
            raise PackError(
                f"{yaml_path}: generator.mode: 'procedural' needs a source that makes new items "
                f"(reasoning_gym or templates); {kinds} would hand back eval items"
            )
    return done


def _check_answer(pack: Pack, yaml_path: Path, item: Item, verifier, where: str = "") -> list[str]:
    """The item's own answer, as the answer pattern extracts it, verifies (``where``: the
    skill's field prefix in a multi-skill pack)."""
    spec = pack.spec
    skill = item.metadata.get("skill")
    name = (pack.skills[skill].verifier if skill else None) or spec.verifier
    reply = extract_answer(item.answer, spec.answer.pattern, spec.answer.pick)
    if not reply:
        raise PackError(
            f"{yaml_path}: answer.pattern: finds nothing in the reference answer {item.answer!r}"
        )
    check = verifier(reply, item)
    if check.score < 1.0:
        field = f"{where}verifier" if skill and pack.skills[skill].verifier else "verifier"
        raise PackError(
            f"{yaml_path}: {field}: the item's own answer, as the answer pattern extracts it "
            f"({reply!r}), does not verify: {check.reason} {check.detail}".rstrip()
        )
    of = f" ({skill})" if skill else ""
    return [f"verifier {name}{of}: the reference answer verifies"]


def _check_solver(pack: Pack, yaml_path: Path, item: Item, solver) -> list[str]:
    if solver is None:
        return []
    try:
        solver(item.question, item.solution, item.answer)
    except Unverifiable as err:
        raise PackError(
            f"{yaml_path}: critic.solver: {pack.spec.critic.solver} fails on an eval item: "
            f"{err.reason} {err.detail}".rstrip()
        ) from err
    return [f"critic.solver {pack.spec.critic.solver}: ran on the item"]


def _check_completion(pack: Pack, item: Item, verifier) -> list[str]:
    """What the student is trained to write must read back as the right answer."""
    spec = pack.spec
    taught = pack.completion(item.question, item.solution, item.answer)
    read = extract_answer(taught, spec.answer.pattern, spec.answer.pick)
    if verifier(read, item).score < 1.0:
        where = pack.directory / spec.templates.get("completion", "completion.jinja")
        raise PackError(
            f"{where}: templates.completion: the reply it writes for an item reads back as "
            f"{read!r} through answer.pattern, which does not verify (reference {item.answer!r})"
        )
    return ["the reply the student is trained to write reads back as the right answer"]


def _draw(pack: Pack, role: str, yaml_path: Path) -> Item:
    field = f"{role}_source"
    try:
        items = pack.make_source(role).sample(1, seed=0)
    except Exception as err:  # a source may fail in many ways; all of them are the pack's
        raise PackError(f"{yaml_path}: {field}: could not draw an item: {err}") from err
    if not items:
        raise PackError(f"{yaml_path}: {field}: the source has no items")
    return items[0]


def _render(pack: Pack, role: str, item: Item) -> str:
    """Render ``role``'s template with values like the loop's own."""
    values = _template_values(pack, item)[role]
    path = pack.directory / pack.spec.templates.get(role, f"{role}.jinja")
    if not path.is_file():
        path = DEFAULT_TEMPLATES / f"{role}.jinja"
    try:
        text = pack.render(role, **values)
    except jinja2.TemplateError as err:
        raise PackError(f"{path}: templates.{role}: does not render: {err}") from err
    if not text.strip():
        raise PackError(f"{path}: templates.{role}: renders to nothing")
    return text


def _template_values(pack: Pack, item: Item) -> dict[str, dict]:
    """Each role's template variables, realistic for ``item``."""
    task = pack.spec.task
    failure = Failure(
        question=item.question,
        expected=item.answer,
        output="(the student's reply)",
        extracted="",
        metadata=item.metadata,
    )
    return {
        "student": {"question": item.question},
        "generator": {
            "target": PlanTarget(
                target_id="c1-k0",
                name="a failure cluster",
                description="what the failures share",
                budget=4,
                exemplars=[item.question],
            ),
            "n": 4,
            "task": task,
        },
        "critic": {
            "question": item.question,
            "solution": item.solution,
            "answer": item.answer,
            "task": task,
            "rubric": pack.spec.critic.rubric,
        },
        "refine": {
            "question": item.question,
            "solution": item.solution,
            "answer": item.answer,
            "task": task,
            "problem": "the answer is not in the expected format",
        },
        "completion": {"question": item.question, "solution": item.solution, "answer": item.answer},
        "solve": {"question": item.question, "task": task},
        "check": {
            "question": item.question,
            "solution": item.solution,
            "answer": item.answer,
            "task": task,
            "rubric": pack.spec.critic.rubric,
        },
        "analyst": {
            "cluster": FailureCluster(cluster_id=0, name="cluster 0", size=1),
            "failures": [failure],
            "task": task,
        },
    }


def list_packs() -> list[tuple[str, Path, str]]:
    """``(name, folder, description or the load error)`` for every pack on the search path."""
    out = []
    for root in pack_roots():
        for yaml_path in sorted(root.glob("*/pack.yaml")):
            folder = yaml_path.parent
            try:
                pack = load_pack(str(folder))
            except PackError as err:
                out.append((folder.name, folder, f"invalid: {err}"))
                continue
            out.append((pack.name, folder, pack.spec.description))
    return out
