"""Prompt packs: a domain as data (``pack.yaml`` + Jinja templates), validated on load.

Every problem found while loading raises :class:`PackError` naming the file and the field, e.g.
``prompts/arithmetic/pack.yaml: probe.size: Input should be greater than 0``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
import jinja2.meta
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from failforward.tools.embed.features import FEATURE_NAMES
from failforward.tools.verify.verifiers import SOLVER_NAMES, VERIFIER_NAMES

if TYPE_CHECKING:
    from failforward.tools.packs.sources import Source

PACKS_DIR = Path(__file__).resolve().parents[2] / "prompts"

# Variables each role's template may use; a template asking for anything else is an error.
TEMPLATE_VARIABLES: dict[str, set[str]] = {
    "student": {"question"},
    "generator": {"target", "n", "task"},
    "critic": {"question", "solution", "answer", "task", "rubric"},
    "refine": {"question", "solution", "answer", "task", "problem"},
    "analyst": {"cluster", "failures", "task"},
    # Verification without a solver: one independent answer (self-consistency), and the
    # critic's own check of a claimed answer. Packs without these files use prompts/defaults/.
    "solve": {"question", "task"},
    "check": {"question", "solution", "answer", "task", "rubric"},
    # What the student learns to write for a verified example (default: the answer alone).
    "completion": {"question", "solution", "answer"},
}
REQUIRED_TEMPLATES = ("student", "generator")
DEFAULT_TEMPLATES = PACKS_DIR / "defaults"  # roles a pack may leave out and still have


class PackError(ValueError):
    """A pack that cannot be used, with the file and field at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitSpec(_Strict):
    size: int = Field(gt=0, description="Number of items.")
    seed: int = Field(description="Seed that fixes which items are drawn.")
    strata: Literal["weights", "equal"] = Field(
        "weights",
        description="How a multi-skill pack's set is split over its skills: by their weights "
        "(the set is a sample of the mixture) or equally (every skill the same number of items, "
        "so small skills are measured as precisely as large ones; the set's accuracy is then "
        "the skills' plain average).",
    )


class EvalSourceSpec(_Strict):
    kind: Literal["reasoning_gym", "jsonl", "templates"]
    dataset: str | None = Field(
        None, description="reasoning-gym dataset name (kind reasoning_gym)."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Dataset config.")
    path: str | None = Field(
        None,
        description="File relative to the pack: JSONL items (kind jsonl) or a templates YAML "
        "(kind templates).",
    )
    database: str | None = Field(
        None, description="SQLite file relative to the pack that fills template slots (templates)."
    )


class KnobSpec(_Strict):
    """Maps an item's metadata value to the source config range that reproduces it."""

    min_param: str
    max_param: str
    floor: int = Field(description="Smallest value the source accepts.")
    ceiling: int = Field(description="Largest value the teacher may ask for.")


class SkillSpec(_Strict):
    """One skill of a multi-skill pack: its own source, knobs and verifier, and its share of the
    pack's distribution."""

    name: str = Field(description="Short identifier, stored on every item as metadata.skill.")
    weight: float = Field(1.0, gt=0, description="Share of the mixture (normalised over skills).")
    task: str = Field("", description="One line naming the skill (default: the pack's task).")
    source: EvalSourceSpec
    verifier: str | None = Field(None, description="Default: the pack's verifier.")
    knobs: dict[str, KnobSpec] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.replace("-", "_").isidentifier():
            raise ValueError(f"{value!r} is not a short identifier (letters, digits, _ and -)")
        return value

    @field_validator("verifier")
    @classmethod
    def _known_verifier(cls, value: str | None) -> str | None:
        if value is not None and value not in VERIFIER_NAMES:
            raise ValueError(
                f"unknown verifier {value!r}; choose one of {', '.join(VERIFIER_NAMES)}"
            )
        return value


class AnswerSpec(_Strict):
    pattern: str = Field(r"-?\d+(?:\.\d+)?", description="Regex whose match is the answer.")
    pick: Literal["first", "last"] = "last"


class StudentSpec(_Strict):
    system_prompt: str = ""
    max_new_tokens: int = Field(16, gt=0)
    completion: Literal["answer", "solution"] = Field(
        "answer",
        description="What SFT and DPO's chosen side teach: the answer alone, or an accepted "
        "example's worked solution with the answer on the last line (when it has one: "
        "reasoning-gym's answer_cot, else a short trace written from the item's metadata for "
        "chain_sum, products, gcd, lcm, letter_counting and leg_counting, "
        "tools/packs/traces.py). A completion.jinja template overrides both.",
    )


class GeneratorSpec(_Strict):
    mode: Literal["auto", "procedural", "llm"] = Field(
        "auto", description="auto: llm when the teacher has an endpoint, else procedural."
    )
    per_call: int = Field(4, gt=0, description="Examples asked of the LLM per call.")
    temperature: float = 0.8


class CriticSpec(_Strict):
    solver: str | None = Field(None, description="Recomputes reference answers from questions.")
    verify: Literal["auto", "consistency", "check", "none"] = Field(
        "auto",
        description="How an answer no solver or procedural source vouches for is verified, "
        "with the critic endpoint: consistency (the critic answers the question `samples` "
        "times on its own; accepted when `agreement` of them match the claimed answer under "
        "the verifier), check (the critic solves it and must confirm the claimed answer, "
        "separately from the rubric judge), none (rejected as unverifiable). auto: "
        "consistency.",
    )
    samples: int = Field(5, ge=2, le=16, description="consistency: independent answers asked.")
    agreement: float = Field(
        0.6, gt=0.5, le=1, description="consistency: share of the answers that must agree."
    )
    sample_temperature: float = Field(
        0.7, ge=0, description="consistency: sampling temperature of the independent answers."
    )
    near_duplicate: float = Field(
        0.9, gt=0, le=1, description="Cosine (with equal numbers) at which a candidate repeats one."
    )
    contamination: float = Field(
        0.9, gt=0, le=1, description="Cosine (with equal numbers) at which it copies a test item."
    )
    ngram: int = Field(
        10, ge=0, description="Shared rare word n-gram with a test item = contaminated (0: off)."
    )
    judge: bool = Field(
        True, description="Ask the critic endpoint (when one is set) for a rubric verdict."
    )
    rubric: dict[str, str] = Field(
        default_factory=lambda: {
            "correct": "the claimed answer is right for the question",
            "clear": "the question is unambiguous and well formed",
            "on_task": "the item practises the task named above",
        },
        description="Rubric item -> what it checks; the judge scores each from 1 to 5.",
    )
    judge_retries: int = Field(
        2, ge=0, le=5, description="Repair prompts after a judge reply that does not parse."
    )
    refine: bool = Field(
        True,
        description="Rewrite form-only failures with the critic endpoint (needs refine.jinja).",
    )
    form_reasons: list[str] = Field(
        default_factory=lambda: ["answer_format", "unparseable"],
        description="Verification reasons that are about form, not content (refined, not dropped).",
    )

    @property
    def unvouched(self) -> str | None:
        """How answers no solver or procedural source vouches for are verified (None: not)."""
        return {"auto": "consistency", "none": None}.get(self.verify, self.verify)

    @field_validator("rubric")
    @classmethod
    def _rubric_names(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("needs at least one rubric item")
        bad = [name for name in value if not name.isidentifier()]
        if bad:
            raise ValueError(f"rubric item names must be identifiers, not {bad}")
        return value

    @field_validator("solver")
    @classmethod
    def _known_solver(cls, value: str | None) -> str | None:
        if value is not None and value not in SOLVER_NAMES:
            raise ValueError(f"unknown solver {value!r}; choose one of {', '.join(SOLVER_NAMES)}")
        return value


class AnalystSpec(_Strict):
    features: list[str] = Field(
        default_factory=lambda: ["empty_answer", "format_error"],
        description="Failure features (tools/embed/features.py) added to each failure's text.",
    )
    min_cluster_size: int = Field(
        3, ge=1, description="Smaller clusters go to the outlier bucket (not targeted)."
    )
    max_clusters: int = Field(8, ge=1, description="Largest k tried when choosing k.")
    track_threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Centroid cosine at which a cluster is the previous cycle's same mode.",
    )

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in FEATURE_NAMES]
        if unknown:
            raise ValueError(
                f"unknown feature(s) {unknown}; choose from {', '.join(FEATURE_NAMES)}"
            )
        return value


class PackSpec(_Strict):
    name: str
    description: str = ""
    task: str = Field(description="One line naming the skill, shown to the teacher.")
    eval_source: EvalSourceSpec | None = Field(
        None, description="Where eval items come from (or skills: a mixture of sources)."
    )
    skills: list[SkillSpec] = Field(
        default_factory=list,
        description="A weighted mixture of skills instead of one eval_source; every item "
        "carries its skill, probe and test sets are stratified by skill.",
    )
    sampling: Literal["distinct", "mixture"] = Field(
        "distinct",
        description="How probe and test sets are drawn: distinct (no question twice; a small "
        "cell is then under-represented) or mixture (the source's own distribution, repeats "
        "allowed within a set, no question in both).",
    )
    train_source: EvalSourceSpec | None = Field(
        None,
        description="Where the procedural teacher draws training items (default: eval_source), "
        "e.g. templates that make new items while the eval set is a fixed file.",
    )
    probe: SplitSpec
    test: SplitSpec
    verifier: str
    verifier_options: dict[str, Any] = Field(
        default_factory=dict, description="Verifier settings, e.g. {database: data.db} for sql."
    )
    answer: AnswerSpec = AnswerSpec()
    student: StudentSpec = StudentSpec()
    generator: GeneratorSpec = GeneratorSpec()
    critic: CriticSpec = CriticSpec()
    analyst: AnalystSpec = AnalystSpec()
    knobs: dict[str, KnobSpec] = Field(default_factory=dict)
    templates: dict[str, str] = Field(
        default_factory=dict, description="Role -> template file; default <role>.jinja."
    )

    @field_validator("verifier")
    @classmethod
    def _known_verifier(cls, value: str) -> str:
        if value not in VERIFIER_NAMES:
            raise ValueError(
                f"unknown verifier {value!r}; choose one of {', '.join(VERIFIER_NAMES)}"
            )
        return value

    @model_validator(mode="after")
    def _one_distribution(self) -> PackSpec:
        if (self.eval_source is None) == (not self.skills):
            raise ValueError("give either eval_source or skills (a list), not both or neither")
        if self.skills:
            if self.train_source is not None:
                raise ValueError("train_source: a multi-skill pack draws from each skill's source")
            if self.knobs:
                raise ValueError("knobs: a multi-skill pack sets knobs per skill")
            names = [s.name for s in self.skills]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"skills: name(s) {repeated} used twice")
        for split in ("probe", "test"):
            if not self.skills and getattr(self, split).strata == "equal":
                raise ValueError(f"{split}.strata: equal splits a set over skills; give skills")
        return self


class TemplatePack:
    """A loaded, validated folder of a spec and compiled templates (task or augmentation pack)."""

    def __init__(self, spec: Any, directory: Path, templates: dict[str, jinja2.Template]):
        self.spec = spec
        self.directory = directory
        self.templates = templates

    @property
    def name(self) -> str:
        return self.spec.name

    def render(self, role: str, **variables: Any) -> str:
        if role not in self.templates:
            raise PackError(f"{self.directory}: pack has no {role}.jinja template")
        return self.templates[role].render(**variables).strip()

    def fingerprint(self) -> str:
        """A hash of every file in the pack, so a resumed run can tell if the pack changed."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.directory.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(self.directory)).encode() + b"\0")
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


class Pack(TemplatePack):
    """A task pack: its spec (:class:`PackSpec`), directory and compiled templates."""

    spec: PackSpec

    def completion(self, question: str, solution: str, answer: str) -> str:
        """The reply the student is trained to give: ``completion.jinja``; else, with
        ``student.completion: solution`` and a worked solution, the solution and then the answer
        on its own last line (answer extraction reads it there); else the answer."""
        if "completion" in self.templates:
            return self.render("completion", question=question, solution=solution, answer=answer)
        if self.spec.student.completion == "solution" and solution.strip():
            return f"{solution.strip()}\n{answer.strip()}"
        return answer.strip()

    @property
    def skills(self) -> dict[str, SkillSpec]:
        """The pack's skills by name ({} for a single-source pack)."""
        return {skill.name: skill for skill in self.spec.skills}

    def knobs_for(self, skill: str | None = None) -> dict[str, KnobSpec]:
        """The difficulty knobs of ``skill`` (a multi-skill pack) or of the pack."""
        if skill is not None and skill in self.skills:
            return self.skills[skill].knobs
        return {} if self.spec.skills else self.spec.knobs

    def task_for(self, skill: str | None = None) -> str:
        """One line naming ``skill`` (its own task, else the pack's)."""
        found = self.skills.get(skill) if skill else None
        return (found.task if found else "") or self.spec.task

    def cell_of(self, metadata: dict[str, Any]) -> dict[str, int | str] | None:
        """An item's cell: its skill (multi-skill packs) and its value of each of the skill's
        knobs; None when a knob value is missing or the pack has neither skills nor knobs.

        Example: ``{"skill": "products", "num_digits": 2}``.
        """
        skill = metadata.get("skill") if self.spec.skills else None
        if self.spec.skills and skill not in self.skills:
            return None
        knobs = self.knobs_for(skill)
        if not all(isinstance(metadata.get(k), int) for k in knobs):
            return None
        cell: dict[str, int | str] = {"skill": skill} if skill is not None else {}
        cell |= {k: int(metadata[k]) for k in knobs}
        return cell or None

    def draw_sets(self, source=None) -> tuple[list, list]:
        """The probe and test sets as a run draws them, ``(probe, test)`` (from ``source``,
        default the eval source)."""
        from failforward.tools.packs.sources import draw_sets

        spec = self.spec
        return draw_sets(
            source if source is not None else self.make_source(),
            (spec.probe.size, spec.probe.seed),
            (spec.test.size, spec.test.seed),
            spec.sampling,
            (spec.probe.strata, spec.test.strata),
        )

    def make_source(self, role: Literal["eval", "train"] = "eval") -> Source:
        """The eval source (a :class:`~tools.packs.sources.MixtureSource` over the skills of a
        multi-skill pack), or the procedural teacher's (``train_source``, else the eval one)."""
        from failforward.tools.packs.sources import MixtureSource

        if self.spec.skills:
            return MixtureSource(
                {s.name: self._source(s.source) for s in self.spec.skills},
                {s.name: s.weight for s in self.spec.skills},
            )
        src = self.spec.eval_source
        if role == "train" and self.spec.train_source is not None:
            src = self.spec.train_source
        return self._source(src)

    def _source(self, src: EvalSourceSpec):
        from failforward.tools.packs.sources import JsonlSource, ReasoningGymSource, TemplateSource

        if src.kind == "jsonl":
            return JsonlSource(self.directory / src.path)
        if src.kind == "templates":
            return TemplateSource(self.directory / src.path, self.directory / src.database)
        traces = self.spec.student.completion == "solution"
        return ReasoningGymSource(src.dataset, src.config, traces=traces)

    def make_verifier(self, source=None):
        """The pack's verifier; for a multi-skill pack, one that checks each item with its
        skill's verifier (``source``: the eval source, for verifiers that score with it)."""
        from failforward.tools.verify.verifiers import make_verifier, skill_verifier

        spec = self.spec
        source = source if source is not None else self.make_source()
        if not spec.skills:
            return make_verifier(spec.verifier, source, spec.verifier_options, self.directory)
        return skill_verifier(
            {
                s.name: make_verifier(
                    s.verifier or spec.verifier,
                    source.parts[s.name],
                    spec.verifier_options,
                    self.directory,
                )
                for s in spec.skills
            }
        )


def prose(text: str) -> str:
    r"""Template filter: ``text`` without fenced code blocks (a worked solution's program), its
    blank lines squeezed.

    Example:
        >>> prose("3 * 4 = 12 apples.\n```python\nanswer = 3 * 4\n```\n")
        '3 * 4 = 12 apples.'
    """
    import re

    without = re.sub(r"```.*?(```|$)", "", text, flags=re.DOTALL)
    return "\n".join(line for line in without.splitlines() if line.strip()).strip()


def first_error(err: ValidationError, *prefix: str) -> str:
    """``field.path: message`` for the first problem pydantic found (``prefix`` leads the path)."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in (*prefix, *first["loc"])) or "(top level)"
    return f"{field}: {first['msg']}"


def pack_roots() -> list[Path]:
    """Where pack names are looked up: each folder in $FAILFORWARD_PACKS, then ``prompts/``."""
    search = [Path(p) for p in os.environ.get("FAILFORWARD_PACKS", "").split(os.pathsep) if p]
    return [*search, PACKS_DIR]


def resolve_pack_dir(name_or_path: str) -> Path:
    """A pack directory from a path, or a name looked up in :func:`pack_roots`."""
    candidate = Path(name_or_path)
    if (candidate / "pack.yaml").is_file():
        return candidate
    for root in pack_roots():
        if (root / name_or_path / "pack.yaml").is_file():
            return root / name_or_path
    known = sorted(p.parent.name for p in PACKS_DIR.glob("*/pack.yaml"))
    raise PackError(f"no pack {name_or_path!r}: not a folder with pack.yaml; known: {known}")


def read_spec(yaml_path: Path, model: type[BaseModel]) -> Any:
    """A pack's YAML file validated as ``model``; a :class:`PackError` names the file and, for a
    wrong value, the field (``pack.yaml`` here, ``augment.yaml`` for an augmentation pack)."""
    try:
        raw = yaml.safe_load(yaml_path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PackError(f"{yaml_path}: not valid YAML: {err}") from err
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise PackError(f"{yaml_path}: {first_error(err)}") from err


def load_pack(name_or_path: str) -> Pack:
    """Load and validate a pack; raises :class:`PackError` naming the file and field."""
    directory = resolve_pack_dir(name_or_path)
    yaml_path = directory / "pack.yaml"
    spec = read_spec(yaml_path, PackSpec)
    _check_source(spec, directory, yaml_path)
    return Pack(spec, directory, _load_templates(spec, directory, yaml_path))


def _check_source(spec: PackSpec, directory: Path, yaml_path: Path) -> None:
    sources = {"eval_source": spec.eval_source, "train_source": spec.train_source}
    sources |= {f"skills.{i}.source": skill.source for i, skill in enumerate(spec.skills)}
    for field, src in sources.items():
        if src is None:
            continue
        if src.kind == "reasoning_gym" and not src.dataset:
            raise PackError(f"{yaml_path}: {field}.dataset: required for kind reasoning_gym")
        if src.kind in ("jsonl", "templates") and not (
            src.path and (directory / src.path).is_file()
        ):
            raise PackError(f"{yaml_path}: {field}.path: no such file {src.path!r}")
        if src.kind == "templates" and not (src.database and (directory / src.database).is_file()):
            raise PackError(f"{yaml_path}: {field}.database: no such file {src.database!r}")
    database = spec.verifier_options.get("database")
    has_database = bool(database and (directory / database).is_file())
    verifiers = {s.verifier or spec.verifier for s in spec.skills} or {spec.verifier}
    if "sql" in verifiers and not has_database:
        raise PackError(f"{yaml_path}: verifier_options.database: no such file {database!r}")
    if spec.critic.solver == "sql_query" and not has_database:
        raise PackError(
            f"{yaml_path}: critic.solver: 'sql_query' needs verifier_options.database "
            f"(no such file {database!r})"
        )
    if spec.eval_source is not None:
        if spec.verifier == "reasoning_gym" and spec.eval_source.kind != "reasoning_gym":
            raise PackError(
                f"{yaml_path}: verifier: 'reasoning_gym' needs a reasoning_gym eval_source"
            )
    for i, skill in enumerate(spec.skills):
        if (skill.verifier or spec.verifier) == "reasoning_gym" and (
            skill.source.kind != "reasoning_gym"
        ):
            field = f"skills.{i}.verifier" if skill.verifier else "verifier"
            raise PackError(
                f"{yaml_path}: {field}: 'reasoning_gym' needs a reasoning_gym source "
                f"(skill {skill.name!r} has {skill.source.kind})"
            )


def _load_templates(spec: PackSpec, directory: Path, yaml_path: Path) -> dict[str, jinja2.Template]:
    return load_templates(
        directory,
        yaml_path,
        spec.templates,
        TEMPLATE_VARIABLES,
        REQUIRED_TEMPLATES,
        defaults=DEFAULT_TEMPLATES,
    )


def load_templates(
    directory: Path,
    yaml_path: Path,
    overrides: dict[str, str],
    variables: dict[str, set[str]],
    required: tuple[str, ...],
    defaults: Path | None = None,
) -> dict[str, jinja2.Template]:
    """Each role's template (``<role>.jinja`` unless ``overrides`` names another file; else the
    one in ``defaults``, if there is one), checked: a missing required file, a syntax error, or
    a variable the role does not provide raises :class:`PackError` naming the file."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["prose"] = prose
    unknown_roles = set(overrides) - set(variables)
    if unknown_roles:
        raise PackError(f"{yaml_path}: templates: unknown role(s) {sorted(unknown_roles)}")
    templates = {}
    for role, allowed in variables.items():
        filename = overrides.get(role, f"{role}.jinja")
        path = directory / filename
        if not path.is_file() and role not in overrides and defaults is not None:
            path = defaults / filename
        if not path.is_file():
            if role in required or role in overrides:
                missing = directory / filename
                raise PackError(f"{missing}: templates.{role}: template file is missing")
            continue
        source = path.read_text()
        try:
            used = jinja2.meta.find_undeclared_variables(env.parse(source))
        except jinja2.TemplateSyntaxError as err:
            raise PackError(f"{path}: line {err.lineno}: {err.message}") from err
        if used - allowed:
            raise PackError(
                f"{path}: templates.{role}: unknown variable(s) {sorted(used - allowed)}; "
                f"this role provides {sorted(allowed)}"
            )
        templates[role] = env.from_string(source)
    return templates
