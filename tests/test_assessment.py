"""The AI-adoption assessment model: validation naming the field, scoring, levels, weights, submodel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from aas_core3 import verification

from aas_models.adoption import AssessmentModelError, Metric, assess, load_model, parse_model
from aas_models.adoption import submodel as sm
from aas_models.adoption.model import DEFAULT_MODEL


def raw() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_MODEL.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def small(weight_a: float = 1, weight_b: float = 1) -> dict[str, Any]:
    """Two levels, two areas with one indicator each; hand-computable."""
    text = {"en": "x", "ko": "엑스"}
    question = {"text": text, "options": [{"value": 0, "label": text}, {"value": 1, "label": text}]}
    return {
        "id": "Tiny", "version": "1", "title": text, "pass_score": 0.5,
        "levels": [{"level": 1, "key": "One", "name": text, "min_score": 20},
                   {"level": 2, "key": "Two", "name": text, "min_score": 60}],
        "areas": [{"id": "a", "name": text, "weight": weight_a}, {"id": "b", "name": text, "weight": weight_b}],
        "indicators": [
            {"id": "twins", "area": "a", "name": text, "weight": 1, "required_from": 1, "hint": text,
             "evidence": {"metric": "twin_coverage", "target": 0.5}},
            {"id": "plan", "area": "b", "name": text, "weight": 1, "required_from": 2, "hint": text,
             "evidence": {"question": question}},
        ],
    }


def test_default_model_loads_with_five_korean_levels() -> None:
    model = load_model()
    assert [lv.name["ko"] for lv in model.levels] == ["기초", "중간1", "중간2", "고도화1", "고도화2"]
    assert {"ai", "safety_environment"} <= {a.id for a in model.areas}


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d["areas"][2].update(weight=-1), "areas[2].weight", "greater than 0"),
    (lambda d: d["indicators"][0]["evidence"].update(metric="share_of_magic"), "indicators[0].evidence.metric",
     "twin_coverage"),
    (lambda d: d["levels"][1]["name"].pop("ko"), "levels[1].name", "Korean"),
    (lambda d: d["indicators"][3].pop("hint"), "indicators[3].hint", "required"),
    (lambda d: d["indicators"][1].update(area="nowhere"), "indicators[1].area", "not one of the areas"),
    (lambda d: d["indicators"][1].update(id="bad id"), "indicators[1].id", "letters, digits"),
    (lambda d: d.update(colour="red"), "colour", "not permitted"),
])
def test_malformed_model_names_the_field(change: Any, field: str, words: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(AssessmentModelError) as info:
        parse_model(data, "adoption.yaml")
    text = str(info.value)
    assert f"adoption.yaml: {field}" in text or (field in text and "adoption.yaml" in text), text
    assert words in text, text


def test_bad_yaml_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("id: X\nlevels: [\n", encoding="utf-8")
    with pytest.raises(AssessmentModelError, match=r"m.yaml: line \d+ column \d+"):
        load_model(path)


def test_scores_level_and_what_is_missing() -> None:
    model = parse_model(small(), "tiny")
    # twins: 0.3/0.5 = 0.6 (met, >= 0.5); plan unanswered: 0. areas a=60, b=0; overall 30.
    result = assess(model, {Metric.TWIN_COVERAGE: 0.3}, {})
    assert result.indicators["twins"].score == pytest.approx(0.6)
    assert result.areas == {"a": pytest.approx(60), "b": 0}
    assert result.score == pytest.approx(30)
    assert result.level == 1
    assert result.missing == ["plan"]
    assert result.points_missing == pytest.approx(30)
    # answering the question: b = 100, overall 80 -> level 2, the top: nothing missing
    top = assess(model, {Metric.TWIN_COVERAGE: 0.3}, {"plan": 1})
    assert top.level == 2 and top.score == pytest.approx(80) and top.missing == []


def test_metric_falls_back_to_question_and_caps_at_target() -> None:
    data = small()
    data["indicators"][0]["evidence"]["question"] = data["indicators"][1]["evidence"]["question"]
    model = parse_model(data, "tiny")
    assert assess(model, {Metric.TWIN_COVERAGE: None}, {"twins": 1}).indicators["twins"].source == "questionnaire"
    assert assess(model, {Metric.TWIN_COVERAGE: 0.9}, {"twins": 0}).indicators["twins"].score == 1.0
    nothing = assess(model, {}, {})
    assert nothing.level == 0 and nothing.missing == ["twins"]


def test_changing_an_area_weight_changes_the_score_as_documented() -> None:
    # overall = (w_a * 60 + w_b * 0) / (w_a + w_b): 30 with 1:1, 45 with 3:1
    evidence = {Metric.TWIN_COVERAGE: 0.3}
    assert assess(parse_model(small(1, 1), "t"), evidence, {}).score == pytest.approx(30)
    heavy = assess(parse_model(small(3, 1), "t"), evidence, {})
    assert heavy.score == pytest.approx(45)
    # the level needs required indicators too: 45 < 60 and 'plan' unmet keep it at 1
    assert heavy.level == 1


def test_default_model_on_a_well_equipped_platform() -> None:
    model = load_model()
    metrics = dict.fromkeys(Metric, 1.0)
    answers = {ind.id: 1.0 for ind in model.indicators if ind.evidence.question is not None}
    best = assess(model, metrics, answers)
    assert best.level == 5 and best.score == pytest.approx(100)
    answers["ai_closed_loop"] = 0.0
    capped = assess(model, metrics, answers)
    assert capped.level == 4 and capped.missing == ["ai_closed_loop"]


def test_result_as_submodel_with_concept_descriptions() -> None:
    model = load_model()
    result = assess(model, {Metric.TWIN_COVERAGE: 1.0, Metric.DATA_LIVE_FRESH: 1.0}, {"digital_records": 1.0})
    when = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
    history = [sm.HistoryEntry(when - dt.timedelta(days=30), 0, 5.0), sm.HistoryEntry(when, result.level,
                                                                                      result.score)]
    submodel = sm.build(model, result, "factory", "main", when, {"digital_records": 1.0}, history)
    assert list(verification.verify(submodel)) == []
    assert all(list(verification.verify(cd)) == [] for cd in sm.concept_descriptions())
    doc = sm.to_jsonable(submodel)
    assert doc["id"] == "urn:twinedge:sm:factory%3Amain:AiAdoptionAssessment:1.0"
    assert sm.read_answers(doc) == {"digital_records": 1.0}
    assert [h.level for h in sm.read_history(doc)] == [0, result.level]
    used = {e["semanticId"]["keys"][0]["value"] for e in doc["submodelElements"]}
    assert used <= {c.id for c in sm.CONCEPTS}
