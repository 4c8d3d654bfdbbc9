"""TwinEdge's own semantic concepts and their ConceptDescriptions (IEC 61360).

Where no IDTA template fits (live operational data, condition monitoring) the project defines its own
concepts under :data:`NAMESPACE` (see docs/identifiers.md). Each concept is declared once here, and
both the semanticIds the builders emit and the ConceptDescriptions that explain them come from that
one declaration, so the two cannot drift apart.

The embedded data specification reference is exactly :data:`IEC61360_TEMPLATE`: aas-test-engines
1.0.3 warns about every other spelling, including the ``.../DataSpecificationIEC61360/3/0`` that
older IDTA files use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aas_core3 import types as aas

from aas_models.builders.elements import Text, global_ref

NAMESPACE = "https://twinedge.dev/aas/"
IEC61360_TEMPLATE = "https://admin-shell.io/DataSpecificationTemplates/DataSpecificationIec61360/3"

_T = aas.DataTypeIEC61360
_REAL = {aas.DataTypeDefXSD.DOUBLE, aas.DataTypeDefXSD.FLOAT, aas.DataTypeDefXSD.DECIMAL}
_INTEGER = {
    aas.DataTypeDefXSD.INTEGER, aas.DataTypeDefXSD.LONG, aas.DataTypeDefXSD.INT, aas.DataTypeDefXSD.SHORT,
    aas.DataTypeDefXSD.BYTE, aas.DataTypeDefXSD.NON_NEGATIVE_INTEGER, aas.DataTypeDefXSD.POSITIVE_INTEGER,
    aas.DataTypeDefXSD.UNSIGNED_LONG, aas.DataTypeDefXSD.UNSIGNED_INT, aas.DataTypeDefXSD.UNSIGNED_SHORT,
    aas.DataTypeDefXSD.UNSIGNED_BYTE, aas.DataTypeDefXSD.NON_POSITIVE_INTEGER,
    aas.DataTypeDefXSD.NEGATIVE_INTEGER,
}
_OTHER = {
    aas.DataTypeDefXSD.BOOLEAN: _T.BOOLEAN,
    aas.DataTypeDefXSD.DATE_TIME: _T.TIMESTAMP,
    aas.DataTypeDefXSD.DATE: _T.DATE,
    aas.DataTypeDefXSD.TIME: _T.TIME,
    aas.DataTypeDefXSD.ANY_URI: _T.IRI,
}


@dataclass(frozen=True)
class Concept:
    """One semantic concept: its id (the semanticId elements carry) and what its CD says about it.

    `preferred_name` and `definition` must contain English (AASc-3a-002/-008); ``unit`` is required
    by IEC 61360 for the *_MEASURE data types (AASc-3a-009).
    """

    id: str
    id_short: str
    preferred_name: Text
    definition: Text
    data_type: aas.DataTypeIEC61360 | None = None
    unit: str | None = None

    def description(self) -> aas.ConceptDescription:
        content = aas.DataSpecificationIEC61360(
            preferred_name=[aas.LangStringPreferredNameTypeIEC61360(k, v) for k, v in _items(self.preferred_name)],
            unit=self.unit or None,
            data_type=self.data_type,
            definition=[aas.LangStringDefinitionTypeIEC61360(k, v) for k, v in _items(self.definition)],
        )
        return aas.ConceptDescription(
            self.id,
            id_short=self.id_short,
            embedded_data_specifications=[aas.EmbeddedDataSpecification(global_ref(IEC61360_TEMPLATE), content)],
        )


def data_type_for(value_type: aas.DataTypeDefXSD, unit: str | None) -> aas.DataTypeIEC61360:
    """The IEC 61360 data type that matches an element's XSD value type (measure if it has a unit)."""
    if value_type in _REAL:
        return _T.REAL_MEASURE if unit else _T.REAL_COUNT
    if value_type in _INTEGER:
        return _T.INTEGER_MEASURE if unit else _T.INTEGER_COUNT
    return _OTHER.get(value_type, _T.STRING)


def _items(text: Text) -> list[tuple[str, str]]:
    items: Mapping[str, str] = {"en": text} if isinstance(text, str) else text
    return list(items.items())


def _own(submodel: str, name: str | None, en: str, ko: str, definition: str,
         data_type: aas.DataTypeIEC61360 | None = None, unit: str | None = None) -> Concept:
    """A concept under ``{NAMESPACE}sm/{submodel}/1/0[/{name}]``."""
    base = f"{NAMESPACE}sm/{submodel}/1/0"
    return Concept(
        id=f"{base}/{name}" if name else base,
        id_short=name or submodel,
        preferred_name={"en": en, "ko": ko},
        definition=definition,
        data_type=data_type,
        unit=unit,
    )


# --- OperationalData 1.0 ----------------------------------------------------------------------------
_OD = "OperationalData"
OPERATIONAL_DATA = _own(
    _OD, None, "Operational data", "운영 데이터",
    "Live signals of a machine: per signal its latest value, quality and source timestamp.",
)
OD_SIGNAL = _own(
    _OD, "Signal", "Signal", "신호",
    "One live signal of the machine; the collection's idShort is the signal name. The signal's meaning "
    "and unit are given by the semanticId of its Value.",
)
OD_QUALITY = _own(
    _OD, "Quality", "Signal quality", "신호 품질",
    "Quality of the latest value as reported by the source protocol: good, uncertain or bad.",
    _T.STRING,
)
OD_TIMESTAMP = _own(
    _OD, "Timestamp", "Source timestamp", "소스 타임스탬프",
    "UTC time at which the source (device or PLC) produced the latest value.",
    _T.TIMESTAMP,
)
OD_UNIT = _own(
    _OD, "Unit", "Unit", "단위",
    "Unit symbol of the signal's value, copied from its concept description for readers of the value alone.",
    _T.STRING,
)

# --- ConditionMonitoring 1.0 ------------------------------------------------------------------------
_CM = "ConditionMonitoring"
CONDITION_MONITORING = _own(
    _CM, None, "Condition monitoring", "상태 모니터링",
    "Results of the analytics that score the machine's live data: health, anomaly, fault, remaining "
    "useful life and statistical process control, with the model that produced them.",
)
CM_HEALTH_INDEX = _own(
    _CM, "HealthIndex", "Health index", "건전성 지수",
    "Overall health of the machine from 0 (failed) to 1 (as new).", _T.REAL_MEASURE, "1",
)
CM_ANOMALY_SCORE = _own(
    _CM, "AnomalyScore", "Anomaly score", "이상 점수",
    "Latest anomaly score of the anomaly model; higher is more unusual. Compare with AnomalyThreshold.",
    _T.REAL_MEASURE, "1",
)
CM_ANOMALY_THRESHOLD = _own(
    _CM, "AnomalyThreshold", "Anomaly threshold", "이상 임계값",
    "Anomaly score above which the machine's behaviour counts as anomalous.", _T.REAL_MEASURE, "1",
)
CM_FAULT_CLASS = _own(
    _CM, "FaultClass", "Fault class", "고장 유형",
    "Most probable fault class predicted by the fault model, or 'normal'.", _T.STRING,
)
CM_FAULT_PROBABILITY = _own(
    _CM, "FaultProbability", "Fault probability", "고장 확률",
    "Probability (0 to 1) the fault model gives to FaultClass.", _T.REAL_MEASURE, "1",
)
CM_REMAINING_USEFUL_LIFE = _own(
    _CM, "RemainingUsefulLife", "Remaining useful life", "잔존 수명",
    "Estimated operating hours until maintenance is needed.", _T.REAL_MEASURE, "h",
)
CM_SPC_STATE = _own(
    _CM, "SpcState", "SPC state", "SPC 상태",
    "State of statistical process control: in-control or out-of-control.", _T.STRING,
)
CM_VIOLATED_RULES = _own(
    _CM, "ViolatedRules", "Violated SPC rules", "위반된 SPC 규칙",
    "Comma-separated identifiers of the control-chart rules currently violated, e.g. 'nelson-1,nelson-5'; "
    "without a value when no rule is violated.",
    _T.STRING,
)
CM_TIMESTAMP = _own(
    _CM, "Timestamp", "Evaluation timestamp", "평가 시각",
    "UTC time of the data the latest results were computed from.", _T.TIMESTAMP,
)
CM_MODEL_INFO = _own(
    _CM, "ModelInfo", "Model information", "모델 정보",
    "The analytics model that produced the results: name, version, training time, training data range "
    "and evaluation metrics.",
)
CM_MODEL_NAME = _own(_CM, "ModelName", "Model name", "모델 이름", "Name of the analytics model.", _T.STRING)
CM_MODEL_VERSION = _own(
    _CM, "ModelVersion", "Model version", "모델 버전", "Version of the analytics model.", _T.STRING,
)
CM_TRAINED_AT = _own(
    _CM, "TrainedAt", "Trained at", "학습 시각", "UTC time at which the model was trained.", _T.TIMESTAMP,
)
CM_TRAINING_RANGE = _own(
    _CM, "TrainingRange", "Training data range", "학습 데이터 기간",
    "First and last UTC timestamp of the data the model was trained on.", _T.TIMESTAMP,
)
CM_METRICS = _own(
    _CM, "Metrics", "Model metrics", "모델 평가 지표",
    "Evaluation metrics of the model on held-out data; each property's idShort names the metric.",
)
CM_METRIC = _own(
    _CM, "Metric", "Model metric", "모델 평가 지표 값",
    "Value of one evaluation metric (e.g. F1, precision, RMSE); its idShort names the metric and its "
    "unit is that of the metric.",
    _T.REAL_COUNT,
)

OWN_CONCEPTS: tuple[Concept, ...] = (
    OPERATIONAL_DATA, OD_SIGNAL, OD_QUALITY, OD_TIMESTAMP, OD_UNIT,
    CONDITION_MONITORING, CM_HEALTH_INDEX, CM_ANOMALY_SCORE, CM_ANOMALY_THRESHOLD, CM_FAULT_CLASS,
    CM_FAULT_PROBABILITY, CM_REMAINING_USEFUL_LIFE, CM_SPC_STATE, CM_VIOLATED_RULES, CM_TIMESTAMP,
    CM_MODEL_INFO, CM_MODEL_NAME, CM_MODEL_VERSION, CM_TRAINED_AT, CM_TRAINING_RANGE, CM_METRICS, CM_METRIC,
)


def own_concept_descriptions() -> list[aas.ConceptDescription]:
    """ConceptDescriptions for every semanticId of TwinEdge's own submodels."""
    return [c.description() for c in OWN_CONCEPTS]
