"""The AI-adoption assessment model as data: levels, areas, indicators, weights and evidence rules.

Kept in YAML (:data:`DEFAULT_MODEL` is the shipped default) so that a factory can follow the official
indicators when they are published without a code change. Validated with Pydantic; an error names
the file and the field (``areas[2].weight: ...``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from aas_models.errors import AasError, Problem, field_path

DEFAULT_MODEL = Path(__file__).with_name("default.yaml")


class AssessmentModelError(AasError):
    """The assessment model YAML is unreadable or invalid; each problem names the file and the field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Metric(StrEnum):
    """Evidence the platform computes itself; each is a share from 0 to 1 over the assessed assets."""

    TWIN_COVERAGE = "twin_coverage"            # equipment with a twin / equipment declared in the questionnaire
    DATA_LIVE_FRESH = "data_live_fresh"        # reference-model data points with a fresh, good value
    SPC_IN_USE = "spc_in_use"                  # assets whose ConditionMonitoring has an SPC state
    OEE_MEASURED = "oee_measured"              # assets whose OEE can be computed (cycles and quality recorded)
    ANOMALY_MONITORED = "anomaly_monitored"    # assets with an anomaly score
    PREDICTIVE_DEPLOYED = "predictive_deployed"  # assets with a deployed model that carries validated metrics
    ALARMS_ACTED_ON = "alarms_acted_on"        # alarms acknowledged / alarms raised
    ENERGY_MONITORED = "energy_monitored"      # assets with a power, energy or current signal
    SAFETY_MONITORED = "safety_monitored"      # assets with a safety signal (e-stop, guard, light curtain)


def _ident(text: str) -> str:
    if not text or not text[0].isascii() or not text[0].isalpha() or \
            not all(c.isascii() and (c.isalnum() or c == "_") for c in text):
        raise ValueError(f"{text!r} must start with a letter and hold only letters, digits and _ "
                         "(it becomes an AAS idShort)")
    return text


def _bilingual(text: dict[str, str]) -> dict[str, str]:
    missing = [lang for lang in ("en", "ko") if not text.get(lang, "").strip()]
    if missing:
        raise ValueError(f"give the text in English and Korean ({{en: ..., ko: ...}}); missing: {', '.join(missing)}")
    return text


Ident = Annotated[str, AfterValidator(_ident)]
Bilingual = Annotated[dict[str, str], AfterValidator(_bilingual)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Model):
    level: int = Field(ge=1, le=9, description="1 = lowest")
    key: Ident
    name: Bilingual
    min_score: float = Field(ge=0, le=100, description="overall score (0-100) needed for this level")
    description: Bilingual | None = None


class Area(_Model):
    id: Ident
    name: Bilingual
    weight: float = Field(gt=0, description="relative weight of the area in the overall score")


class Option(_Model):
    value: float = Field(ge=0, le=1, description="score of this answer, 0 to 1")
    label: Bilingual


class Question(_Model):
    text: Bilingual
    options: list[Option] = Field(min_length=2)


class Evidence(_Model):
    """Where an indicator's score comes from: a platform metric, a question, or the metric with the
    question as fallback when the platform has no data for it."""

    metric: Metric | None = None
    target: float = Field(default=1.0, gt=0, le=1, description="metric value that earns the full score")
    question: Question | None = None

    @model_validator(mode="after")
    def _some_source(self) -> Evidence:
        if self.metric is None and self.question is None:
            raise ValueError("give a 'metric' (computed by the platform), a 'question' (asked), or both")
        return self


class Indicator(_Model):
    id: Ident
    area: Ident
    name: Bilingual
    weight: float = Field(gt=0, description="relative weight within its area")
    required_from: int = Field(ge=1, description="the level from which this indicator must be met")
    evidence: Evidence
    hint: Bilingual = Field(description="what to do to meet it; shown under 'what is missing'")


class AssessmentModel(_Model):
    id: Ident
    version: str = Field(min_length=1)
    title: Bilingual
    pass_score: float = Field(default=0.6, gt=0, le=1, description="indicator score (0-1) that counts as met")
    levels: list[Level] = Field(min_length=1)
    areas: list[Area] = Field(min_length=1)
    indicators: list[Indicator] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> AssessmentModel:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"levels must be numbered 1, 2, 3, ... in order; got {numbers}")
        scores = [lv.min_score for lv in self.levels]
        if scores != sorted(scores):
            raise ValueError(f"levels' min_score must not decrease from one level to the next; got {scores}")
        _unique("areas", [a.id for a in self.areas])
        _unique("indicators", [i.id for i in self.indicators])
        areas = {a.id for a in self.areas}
        for n, ind in enumerate(self.indicators):
            if ind.area not in areas:
                raise ValueError(f"indicators[{n}].area: {ind.area!r} is not one of the areas {sorted(areas)}")
            if ind.required_from > len(self.levels):
                raise ValueError(f"indicators[{n}].required_from: {ind.required_from} is above the highest level "
                                 f"{len(self.levels)}")
        empty = areas - {i.area for i in self.indicators}
        if empty:
            raise ValueError(f"areas without indicators: {sorted(empty)}; give each area an indicator or remove it")
        return self

    def level(self, number: int) -> Level | None:
        return self.levels[number - 1] if 1 <= number <= len(self.levels) else None


def _unique(what: str, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what}: ids must be unique; repeated: {', '.join(repeated)}")


def parse_model(data: Any, name: str) -> AssessmentModel:
    """Validate parsed YAML; AssessmentModelError names each bad field."""
    try:
        return AssessmentModel.model_validate(data)
    except ValidationError as exc:
        raise AssessmentModelError([
            Problem(name, field_path(error["loc"]) or "(document)", "assessment-" + error["type"],
                    error["msg"].removeprefix("Value error, "))
            for error in exc.errors()
        ]) from None


def load_model(path: Path = DEFAULT_MODEL) -> AssessmentModel:
    """Read and validate an assessment model YAML file (the shipped default without an argument)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AssessmentModelError([Problem(str(path), "", "assessment-read", f"cannot read: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise AssessmentModelError([Problem(str(path), where, "assessment-yaml", f"not valid YAML: {exc}")]) from None
    return parse_model(data, str(path))
