"""A pack's learnability table: how each skill's (or cell's) accuracy rose with examples of it
alone, measured offline in a pilot that no plan sees. The oracle arm of ``compare`` allocates
its budget by it (the best allocation a plan could make with knowledge the loop does not have),
and the compare report reads each unit's status from it (which skills were mastered before
training, which are in reach, which out of reach).

The table is ``learnability.yaml`` in the pack's folder::

    # how it was measured (the pilot's command, its student and evaluation set)
    student: runs/uniform-warmup
    skills:
      products:                    # a skill of a multi-skill pack, or a cell: num_digits=2
        status: in_reach           # mastered, in_reach or out_of_reach
        curve: {0: 0.35, 32: 0.47, 64: 0.55}   # accuracy after n examples of it alone
        share: 0.25                # its share of the test set (default: its mixture weight)

Example:
    >>> curve = {0: 0.2, 32: 0.4, 64: 0.5}
    >>> round(marginal_gain(curve, spent=0, step=16), 4)   # 0 -> 16: +0.1 over 16
    0.0063
    >>> round(marginal_gain(curve, spent=48, step=16), 4)  # 48 -> 64: +0.05 over 16
    0.0031
    >>> marginal_gain(curve, spent=64, step=16)            # past the measured end: no known gain
    0.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

TABLE_FILE = "learnability.yaml"
Status = Literal["mastered", "in_reach", "out_of_reach"]


class UnitCurve(BaseModel):
    """One skill's (or cell's) pilot result."""

    model_config = ConfigDict(extra="forbid")

    status: Status = Field(description="mastered, in_reach or out_of_reach before training.")
    curve: dict[int, float] = Field(
        description="Accuracy (0-1) after n examples of this unit alone; needs n = 0 and, "
        "unless the unit is mastered, one more point (a pilot run that starts at its target "
        "accuracy stops with one)."
    )
    share: float | None = Field(
        None, description="Its share of the test set (default: the skill's mixture weight)."
    )

    @field_validator("curve")
    @classmethod
    def _a_curve(cls, value: dict[int, float]) -> dict[int, float]:
        if 0 not in value:
            raise ValueError("needs the accuracy at 0 examples")
        if any(n < 0 for n in value) or any(not 0.0 <= a <= 1.0 for a in value.values()):
            raise ValueError("examples must be >= 0 and accuracies in [0, 1]")
        return dict(sorted(value.items()))

    @model_validator(mode="after")
    def _a_point_after_0(self) -> UnitCurve:
        if len(self.curve) < 2 and self.status != "mastered":
            raise ValueError(f"curve: a unit {self.status} needs a point after 0 examples")
        return self


class LearnabilityTable(BaseModel):
    """Every unit the pilot measured, by name (a skill, or a cell as ``knob=value,...``)."""

    model_config = ConfigDict(extra="forbid")

    student: str = Field("", description="The student the pilot trained (as --student names it).")
    skills: dict[str, UnitCurve]


def load_table(pack) -> LearnabilityTable:
    """The pack's ``learnability.yaml``, validated against the pack: an error names the file and
    the field, and a unit the pack does not have."""
    from failforward.tools.packs.pack import PackError, first_error

    path = Path(pack.directory) / TABLE_FILE
    if not path.is_file():
        raise PackError(
            f"{path}: missing; the oracle arm allocates by a pilot's learnability table "
            "(see tools/stats/learnability.py for its form)"
        )
    try:
        table = LearnabilityTable.model_validate(yaml.safe_load(path.read_text()) or {})
    except (yaml.YAMLError, ValidationError) as err:
        reason = first_error(err) if isinstance(err, ValidationError) else f"not valid YAML: {err}"
        raise PackError(f"{path}: {reason}") from err
    for name in table.skills:
        if unit_cell(name, pack) is None:
            raise PackError(f"{path}: skills.{name}: the pack has no such skill or knob cell")
    return table


def unit_cell(name: str, pack) -> dict[str, int | str] | None:
    """The cell a table unit names: a skill (``{"skill": name}``) or ``knob=value,...`` of the
    pack's knobs (values as ints); None when the pack has no such skill or knob."""
    if name in pack.skills:
        return {"skill": name}
    cell: dict[str, int | str] = {}
    for part in name.split(","):
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key == "skill" and value in pack.skills:
            cell[key] = value
            continue
        knobs = pack.knobs_for(str(cell.get("skill")) if "skill" in cell else None)
        if key not in knobs or not value.lstrip("-").isdigit():
            return None
        cell[key] = int(value)
    return cell or None


def in_unit(cell: dict | None, unit: dict) -> bool:
    """Whether an item's cell (``Pack.cell_of``) lies in a table unit's cell."""
    return cell is not None and all(cell.get(k) == v for k, v in unit.items())


def accuracy_at(curve: dict[int, float], examples: float) -> float:
    """The curve's accuracy after ``examples`` (linear between points, flat past the last)."""
    points = sorted(curve.items())
    if examples >= points[-1][0]:
        return points[-1][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 <= examples <= x1:
            return y0 + (y1 - y0) * (examples - x0) / (x1 - x0)
    return points[0][1]


def marginal_gain(curve: dict[int, float], spent: float, step: int) -> float:
    """Accuracy gained per example by ``step`` more examples after ``spent`` (0 past the
    measured end: the table knows of no gain there)."""
    return (accuracy_at(curve, spent + step) - accuracy_at(curve, spent)) / step


def unit_shares(table: LearnabilityTable, pack) -> dict[str, float]:
    """Each unit's share of the test set: its ``share``, else its skill's share of the test set
    (its mixture weight over the pack's weights, or an equal share where the test set's
    ``strata`` is ``equal``), else equal shares."""
    equal = pack.spec.test.strata == "equal"
    weights = {s.name: 1.0 if equal else s.weight for s in pack.spec.skills}
    total = sum(weights.values()) or 1.0
    out = {}
    for name, unit in table.skills.items():
        if unit.share is not None:
            out[name] = unit.share
        elif name in weights:
            out[name] = weights[name] / total
        else:
            out[name] = 1.0 / len(table.skills)
    return out
