"""The AI-adoption assessment: a model kept as editable YAML, its scoring, and the AAS submodel that
stores a result (levels 1-5 of the Korean smart-factory assessment plus AI, safety and environment)."""

from aas_models.adoption.evaluate import Assessment, IndicatorResult, Source, assess
from aas_models.adoption.model import (
    DEFAULT_MODEL,
    AssessmentModel,
    AssessmentModelError,
    Metric,
    load_model,
    parse_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "Assessment",
    "AssessmentModel",
    "AssessmentModelError",
    "IndicatorResult",
    "Metric",
    "Source",
    "assess",
    "load_model",
    "parse_model",
]
