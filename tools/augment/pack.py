"""Augmentation packs: rephrase styles and templates for ``failforward augment``.

An augmentation pack is a folder with ``augment.yaml`` (styles, chunk size, the critic's
faithfulness thresholds) and Jinja templates: ``rephrase.jinja`` and ``refine.jinja`` (required),
``rationales.jinja`` (for ``--mode stretch``) and ``judge.jinja`` (for ``critic.judge: true``).
Problems raise :class:`~tools.packs.pack.PackError` naming the file and field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from failforward.tools.packs.pack import (
    PACKS_DIR,
    PackError,
    TemplatePack,
    _Strict,
    load_templates,
    read_spec,
)

TEMPLATE_VARIABLES: dict[str, set[str]] = {
    "rephrase": {"style", "chunk", "title"},
    "refine": {"style", "chunk", "draft", "problem"},
    "rationales": {"sentences", "title"},
    "judge": {"chunk", "rephrase"},
}
REQUIRED_TEMPLATES = ("rephrase", "refine")


class StyleSpec(_Strict):
    instruction: str = Field(min_length=1, description="What the teacher is asked to write.")
    min_length_ratio: float = Field(0.5, gt=0, description="Shortest rewrite / chunk length.")
    max_length_ratio: float = Field(2.0, gt=0, description="Longest rewrite / chunk length.")

    @model_validator(mode="after")
    def _ordered(self) -> StyleSpec:
        if self.min_length_ratio >= self.max_length_ratio:
            raise ValueError("min_length_ratio must be below max_length_ratio")
        return self


class FaithfulnessSpec(_Strict):
    min_similarity: float = Field(
        0.55, ge=0, le=1, description="Least cosine similarity of a rewrite to its chunk."
    )
    near_duplicate: float = Field(
        0.97, ge=0, le=1, description="Rewrites of one chunk at least this similar: keep one."
    )
    max_repeated: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Largest share of a rewrite's 8-word runs that repeat an earlier one (loops).",
    )
    judge: bool = Field(False, description="Also ask the critic endpoint about consistency.")
    refine: bool = Field(True, description="Rewrite a form-only failure once and check again.")


class AugmentPackSpec(_Strict):
    name: str
    description: str = ""
    chunk_tokens: int = Field(400, gt=0, description="Longest chunk sent (estimated tokens).")
    temperature: float = Field(0.8, ge=0)
    max_tokens: int = Field(700, gt=0, description="Reply token limit per rewrite.")
    styles: dict[str, StyleSpec] = Field(min_length=1)
    critic: FaithfulnessSpec = Field(default_factory=FaithfulnessSpec)
    templates: dict[str, str] = Field(default_factory=dict, description="Role -> file override.")


class AugmentPack(TemplatePack):
    """An augmentation pack: its spec (:class:`AugmentPackSpec`), directory and templates."""

    spec: AugmentPackSpec


def load_augment_pack(name_or_path: str | Path = "rephrase") -> AugmentPack:
    """An augmentation pack by folder, or by name under ``prompts/``."""
    directory = Path(name_or_path)
    if not (directory / "augment.yaml").is_file():
        directory = PACKS_DIR / str(name_or_path)
    yaml_path = directory / "augment.yaml"
    if not yaml_path.is_file():
        known = sorted(p.parent.name for p in PACKS_DIR.glob("*/augment.yaml"))
        raise PackError(f"no augmentation pack {str(name_or_path)!r}; known: {known}")
    spec = read_spec(yaml_path, AugmentPackSpec)
    templates = load_templates(
        directory, yaml_path, spec.templates, TEMPLATE_VARIABLES, REQUIRED_TEMPLATES
    )
    if spec.critic.judge and "judge" not in templates:
        missing = directory / "judge.jinja"
        raise PackError(f"{missing}: critic.judge is true but the file is missing")
    return AugmentPack(spec, directory, templates)
