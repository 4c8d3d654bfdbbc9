"""Scoring an assessment model against evidence: indicator, area and overall scores, the level, and
what is missing for the next level. Pure: the platform metrics and the answers are inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from aas_models.adoption.model import AssessmentModel, Indicator, Metric


class Source(StrEnum):
    PLATFORM = "platform"
    QUESTIONNAIRE = "questionnaire"
    NONE = "none"


@dataclass(frozen=True)
class IndicatorResult:
    id: str
    score: float
    """0..1; 0 when there is no evidence."""
    met: bool
    source: Source
    evidence: float | None
    """The metric's value or the chosen answer's value."""


@dataclass(frozen=True)
class Assessment:
    model_id: str
    model_version: str
    level: int
    """0 = not even the first level."""
    score: float
    """0..100"""
    areas: dict[str, float]
    """area id -> 0..100"""
    indicators: dict[str, IndicatorResult]
    missing: list[str]
    """Indicator ids that keep the next level out of reach (empty at the top level)."""
    points_missing: float
    """Overall score still needed for the next level (0 when the score is enough)."""


def _indicator(ind: Indicator, metrics: Mapping[Metric, float | None], answers: Mapping[str, float],
               pass_score: float) -> IndicatorResult:
    ev = ind.evidence
    value = metrics.get(ev.metric) if ev.metric is not None else None
    if value is not None:
        score, source, evidence = min(1.0, max(0.0, value) / ev.target), Source.PLATFORM, value
    elif ev.question is not None and ind.id in answers:
        answer = answers[ind.id]
        score, source, evidence = min(1.0, max(0.0, answer)), Source.QUESTIONNAIRE, answer
    else:
        score, source, evidence = 0.0, Source.NONE, None
    return IndicatorResult(ind.id, score, score >= pass_score - 1e-9, source, evidence)


def assess(model: AssessmentModel, metrics: Mapping[Metric, float | None],
           answers: Mapping[str, float]) -> Assessment:
    """Score `model`: `metrics` are the platform's evidence (None = cannot be computed), `answers`
    map indicator ids to the chosen option's value (0..1)."""
    results = {ind.id: _indicator(ind, metrics, answers, model.pass_score) for ind in model.indicators}
    areas: dict[str, float] = {}
    for area in model.areas:
        members = [ind for ind in model.indicators if ind.area == area.id]
        total = sum(ind.weight for ind in members)
        areas[area.id] = 100 * sum(ind.weight * results[ind.id].score for ind in members) / total
    score = sum(a.weight * areas[a.id] for a in model.areas) / sum(a.weight for a in model.areas)

    def reached(level: int) -> bool:
        lv = model.levels[level - 1]
        return score >= lv.min_score - 1e-9 and all(
            results[ind.id].met for ind in model.indicators if ind.required_from <= level)

    level = 0
    while level < len(model.levels) and reached(level + 1):
        level += 1
    missing: list[str] = []
    points = 0.0
    if level < len(model.levels):
        target = level + 1
        missing = [ind.id for ind in model.indicators if ind.required_from <= target and not results[ind.id].met]
        points = max(0.0, model.levels[target - 1].min_score - score)
    return Assessment(model.id, model.version, level, score, areas, results, missing, points)
