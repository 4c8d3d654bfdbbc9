"""AiAdoptionAssessment 1.0 (TwinEdge's own submodel): an assessment result, its questionnaire
answers and its history, so that the level can be exchanged like any other twin content::

    ModelId, ModelVersion, Scope (factory | line | asset), ScopeId, Level, LevelName (MLP), Score,
    AssessedAt, AreaScores { <area>: 0..100 }, Indicators { <indicator> { Score, Met, Source } },
    NextLevelMissing ("id,id,..."), Answers { <indicator>: 0..1 },
    History [ { AssessedAt, Level, Score } ]   (oldest first)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aas_core3 import jsonization
from aas_core3 import types as aas

from aas_models import ids
from aas_models.adoption.evaluate import Assessment
from aas_models.adoption.model import AssessmentModel
from aas_models.builders.elements import instance_submodel, mlp, prop, smc, smc_list
from aas_models.concepts import NAMESPACE, Concept

ID_SHORT = "AiAdoptionAssessment"
VERSION = ("1", "0")
SCOPES = ("factory", "line", "asset")
_T = aas.DataTypeIEC61360
_BASE = f"{NAMESPACE}sm/{ID_SHORT}/1/0"


def _c(name: str | None, en: str, ko: str, definition: str, data_type: aas.DataTypeIEC61360 | None = None,
       unit: str | None = None) -> Concept:
    return Concept(f"{_BASE}/{name}" if name else _BASE, name or ID_SHORT, {"en": en, "ko": ko}, definition,
                   data_type, unit)


SUBMODEL = _c(None, "AI-adoption assessment", "AI 도입 수준 평가",
              "Smart-factory and AI adoption level of a factory, line or asset, with the evidence behind it.")
MODEL_ID = _c("ModelId", "Assessment model", "평가 모델", "Id of the assessment model used.", _T.STRING)
MODEL_VERSION = _c("ModelVersion", "Assessment model version", "평가 모델 버전", "Version of that model.", _T.STRING)
SCOPE = _c("Scope", "Scope", "평가 범위", "What was assessed: factory, line or asset.", _T.STRING)
SCOPE_ID = _c("ScopeId", "Scope id", "평가 대상", "Name of the factory or line, or the asset id.", _T.STRING)
LEVEL = _c("Level", "Level", "수준", "Level reached, 0 (none) to the model's highest level.", _T.INTEGER_COUNT)
LEVEL_NAME = _c("LevelName", "Level name", "수준 이름", "Name of the level reached.", _T.STRING)
SCORE = _c("Score", "Score", "점수", "Overall or area score from 0 to 100.", _T.REAL_MEASURE, "1")
ASSESSED_AT = _c("AssessedAt", "Assessed at", "평가 시각", "UTC time of the assessment.", _T.TIMESTAMP)
AREA_SCORES = _c("AreaScores", "Area scores", "영역별 점수", "Score of each area; the idShort names the area.")
INDICATORS = _c("Indicators", "Indicators", "지표", "Result of each indicator; the idShort names the indicator.")
INDICATOR = _c("Indicator", "Indicator result", "지표 결과", "Score, met and evidence source of one indicator.")
MET = _c("Met", "Met", "충족", "Whether the indicator's score reaches the model's pass score.", _T.BOOLEAN)
SOURCE = _c("Source", "Evidence source", "근거 출처", "platform, questionnaire or none.", _T.STRING)
MISSING = _c("NextLevelMissing", "Missing for the next level", "다음 수준 미충족 지표",
             "Comma-separated ids of the indicators that keep the next level out of reach.", _T.STRING)
ANSWERS = _c("Answers", "Questionnaire answers", "설문 응답",
             "Chosen answer per indicator as its score from 0 to 1; the idShort names the indicator.")
ANSWER = _c("Answer", "Answer", "응답", "Score of the chosen answer, 0 to 1.", _T.REAL_MEASURE, "1")
HISTORY = _c("History", "History", "이력", "Earlier assessments, oldest first.")
HISTORY_ENTRY = _c("HistoryEntry", "History entry", "이력 항목", "Time, level and score of one assessment.")

CONCEPTS: tuple[Concept, ...] = (SUBMODEL, MODEL_ID, MODEL_VERSION, SCOPE, SCOPE_ID, LEVEL, LEVEL_NAME, SCORE,
                                 ASSESSED_AT, AREA_SCORES, INDICATORS, INDICATOR, MET, SOURCE, MISSING, ANSWERS,
                                 ANSWER, HISTORY, HISTORY_ENTRY)


@dataclass(frozen=True)
class HistoryEntry:
    assessed_at: dt.datetime
    level: int
    score: float


def submodel_id(scope: str, scope_id: str, *, id_base: str = ids.DEFAULT_ID_BASE) -> str:
    """e.g. ``urn:twinedge:sm:factory%3Amain:AiAdoptionAssessment:1.0``; an asset's uses its asset id."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} must be one of {SCOPES}")
    key = scope_id if scope == "asset" else f"{scope}:{scope_id}"
    return ids.submodel_id(key, ID_SHORT, ".".join(VERSION), id_base=id_base)


def build(model: AssessmentModel, result: Assessment, scope: str, scope_id: str, assessed_at: dt.datetime,
          answers: Mapping[str, float], history: Sequence[HistoryEntry], *,
          id_base: str = ids.DEFAULT_ID_BASE) -> aas.Submodel:
    """The submodel of one assessment; `history` should already include this one if it is recorded."""
    _D, _S, _B = aas.DataTypeDefXSD.DOUBLE, aas.DataTypeDefXSD.STRING, aas.DataTypeDefXSD.BOOLEAN
    level = model.level(result.level)
    return instance_submodel(submodel_id(scope, scope_id, id_base=id_base), ID_SHORT, SUBMODEL.id, VERSION, [
        prop("ModelId", _S, MODEL_ID.id, model.id),
        prop("ModelVersion", _S, MODEL_VERSION.id, model.version),
        prop("Scope", _S, SCOPE.id, scope),
        prop("ScopeId", _S, SCOPE_ID.id, scope_id),
        prop("Level", aas.DataTypeDefXSD.INT, LEVEL.id, result.level),
        mlp("LevelName", LEVEL_NAME.id, level.name if level else {"en": "none", "ko": "미달"}),
        prop("Score", _D, SCORE.id, round(result.score, 3)),
        prop("AssessedAt", aas.DataTypeDefXSD.DATE_TIME, ASSESSED_AT.id, assessed_at),
        smc("AreaScores", AREA_SCORES.id, [prop(a, _D, SCORE.id, round(v, 3)) for a, v in result.areas.items()]),
        smc("Indicators", INDICATORS.id, [
            smc(r.id, INDICATOR.id, [prop("Score", _D, SCORE.id, round(100 * r.score, 3)),
                                     prop("Met", _B, MET.id, r.met),
                                     prop("Source", _S, SOURCE.id, r.source.value)])
            for r in result.indicators.values()
        ]),
        prop("NextLevelMissing", _S, MISSING.id, ",".join(result.missing) or None),
        smc("Answers", ANSWERS.id, [prop(k, _D, ANSWER.id, float(v)) for k, v in sorted(answers.items())]),
        smc_list("History", HISTORY.id, [
            smc(None, HISTORY_ENTRY.id, [
                prop("AssessedAt", aas.DataTypeDefXSD.DATE_TIME, ASSESSED_AT.id, h.assessed_at),
                prop("Level", aas.DataTypeDefXSD.INT, LEVEL.id, h.level),
                prop("Score", _D, SCORE.id, round(h.score, 3)),
            ])
            for h in history
        ], item_semantic_id=HISTORY_ENTRY.id, order_relevant=True),
    ])


def to_jsonable(submodel: aas.Submodel) -> dict[str, Any]:
    out = jsonization.to_jsonable(submodel)
    assert isinstance(out, dict)
    return out


def concept_descriptions() -> list[aas.ConceptDescription]:
    return [c.description() for c in CONCEPTS]


def _children(element: Mapping[str, Any] | None, key: str = "value") -> list[dict[str, Any]]:
    items = (element or {}).get(key) or []
    return [i for i in items if isinstance(i, dict)]


def read_answers(doc: Mapping[str, Any] | None) -> dict[str, float]:
    """The answers stored in a submodel document (JSON as the server holds it)."""
    element = next((e for e in _children(doc, "submodelElements") if e.get("idShort") == "Answers"), None)
    out: dict[str, float] = {}
    for item in _children(element):
        try:
            out[str(item["idShort"])] = float(item["value"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def read_history(doc: Mapping[str, Any] | None) -> list[HistoryEntry]:
    """The history stored in a submodel document, oldest first; unreadable entries are skipped."""
    element = next((e for e in _children(doc, "submodelElements") if e.get("idShort") == "History"), None)
    out: list[HistoryEntry] = []
    for entry in _children(element):
        fields = {c.get("idShort"): c.get("value") for c in _children(entry)}
        try:
            out.append(HistoryEntry(dt.datetime.fromisoformat(str(fields["AssessedAt"])),
                                    int(str(fields["Level"])), float(str(fields["Score"]))))
        except (KeyError, ValueError):
            continue
    return out
