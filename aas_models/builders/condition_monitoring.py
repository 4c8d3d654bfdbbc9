"""ConditionMonitoring 1.0 (TwinEdge's own): what analytics concluded about one machine.

Every result element is always present, empty until the analytics runner first writes it, so that
its address (submodel id, idShort) is stable from the moment the twin exists::

    HealthIndex, AnomalyScore, AnomalyThreshold, FaultClass, FaultProbability,
    RemainingUsefulLife (h), SpcState (in-control | out-of-control), ViolatedRules, Timestamp,
    ModelInfo { ModelName, ModelVersion, TrainedAt, TrainingRange (min/max), Metrics { <metric>... } }

ViolatedRules is one comma-separated string rather than a list (no value while none is violated), so
that updating it is a single value write like every other result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from aas_core3 import types as aas

from aas_models import concepts
from aas_models.builders.elements import global_ref, instance_submodel, prop, smc, xsd_value

SEMANTIC_ID = concepts.CONDITION_MONITORING.id
ID_SHORT = "ConditionMonitoring"
VERSION = ("1", "0")
SPC_STATES = ("in-control", "out-of-control")

_D = aas.DataTypeDefXSD.DOUBLE
_S = aas.DataTypeDefXSD.STRING
_DT = aas.DataTypeDefXSD.DATE_TIME


@dataclass(frozen=True)
class ModelInfo:
    name: str | None = None
    version: str | None = None
    trained_at: dt.datetime | None = None
    training_start: dt.datetime | None = None
    training_end: dt.datetime | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ConditionState:
    """Latest results; None means "not computed yet"."""

    health_index: float | None = None
    anomaly_score: float | None = None
    anomaly_threshold: float | None = None
    fault_class: str | None = None
    fault_probability: float | None = None
    remaining_useful_life_h: float | None = None
    spc_state: str | None = None
    violated_rules: tuple[str, ...] = ()
    timestamp: dt.datetime | None = None


def _range(model: ModelInfo) -> aas.Range:
    return aas.Range(
        _DT,
        id_short="TrainingRange",
        semantic_id=global_ref(concepts.CM_TRAINING_RANGE.id),
        min=xsd_value(model.training_start, _DT) if model.training_start else None,
        max=xsd_value(model.training_end, _DT) if model.training_end else None,
    )


def _model_info(model: ModelInfo) -> aas.SubmodelElementCollection:
    return smc("ModelInfo", concepts.CM_MODEL_INFO.id, [
        prop("ModelName", _S, concepts.CM_MODEL_NAME.id, model.name),
        prop("ModelVersion", _S, concepts.CM_MODEL_VERSION.id, model.version),
        prop("TrainedAt", _DT, concepts.CM_TRAINED_AT.id, model.trained_at),
        _range(model),
        smc("Metrics", concepts.CM_METRICS.id, [
            prop(name, _D, concepts.CM_METRIC.id, value) for name, value in model.metrics.items()
        ]),
    ])


def build_condition_monitoring(
    submodel_id: str, state: ConditionState | None = None, model: ModelInfo | None = None
) -> aas.Submodel:
    """The ConditionMonitoring submodel, by default with every result still empty."""
    s = state or ConditionState()
    if s.spc_state is not None and s.spc_state not in SPC_STATES:
        raise ValueError(f"spc_state {s.spc_state!r} must be one of {SPC_STATES}")
    c = concepts
    return instance_submodel(submodel_id, ID_SHORT, SEMANTIC_ID, VERSION, [
        prop("HealthIndex", _D, c.CM_HEALTH_INDEX.id, s.health_index),
        prop("AnomalyScore", _D, c.CM_ANOMALY_SCORE.id, s.anomaly_score),
        prop("AnomalyThreshold", _D, c.CM_ANOMALY_THRESHOLD.id, s.anomaly_threshold),
        prop("FaultClass", _S, c.CM_FAULT_CLASS.id, s.fault_class),
        prop("FaultProbability", _D, c.CM_FAULT_PROBABILITY.id, s.fault_probability),
        prop("RemainingUsefulLife", _D, c.CM_REMAINING_USEFUL_LIFE.id, s.remaining_useful_life_h),
        prop("SpcState", _S, c.CM_SPC_STATE.id, s.spc_state),
        prop("ViolatedRules", _S, c.CM_VIOLATED_RULES.id, ",".join(s.violated_rules) or None),
        prop("Timestamp", _DT, c.CM_TIMESTAMP.id, s.timestamp),
        _model_info(model or ModelInfo()),
    ])
