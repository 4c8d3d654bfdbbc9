"""MaintenanceHistory 1.0 (TwinEdge's own): failures and maintenance of one machine.

No IDTA template covers a machine's failure and maintenance record (IDTA's Maintenance templates were
not published when this was written), so TwinEdge defines one under its own namespace, in the style
of :mod:`aas_models.concepts`::

    MeanTimeBetweenFailures   xs:double, h     (computed from the events; empty until known)
    MeanTimeToRepair          xs:double, h
    LastMaintenance           xs:dateTime
    NextPlannedMaintenance    xs:dateTime
    Events                    SubmodelElementList of Event collections, oldest first
      Event                   EventType, Start, End?, Component?, FailureMode?, Cause?, Action?,
                              Downtime? (h), OperatingHours? (h), PerformedBy?, WorkOrder?, Remarks?

EventType is one of :data:`EVENT_TYPES`. The template form carries one prototype Event and an
``SMT/Cardinality`` qualifier on every element (the one spelling the catalogue lint accepts); the
instance form has no qualifiers and an empty Events list that a CMMS or the operator fills.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from aas_core3 import types as aas

from aas_models import concepts
from aas_models.builders.elements import Scalar, global_ref, instance_submodel, mlp, prop, smc

ID_SHORT = "MaintenanceHistory"
VERSION = ("1", "0")
EVENT_TYPES = ("failure", "preventive-maintenance", "corrective-maintenance", "inspection", "calibration")

#: The SMT cardinality qualifier (IDTA "Specification of Submodel Templates" 1.0).
CARDINALITY_TYPE = "SMT/Cardinality"
CARDINALITY_SEMANTIC_ID = "https://admin-shell.io/SubmodelTemplates/Cardinality/1/0"
CARDINALITIES = ("One", "ZeroToOne", "ZeroToMany", "OneToMany")

_T = aas.DataTypeIEC61360
_BASE = f"{concepts.NAMESPACE}sm/{ID_SHORT}/1/0"


def _c(name: str | None, en: str, ko: str, definition: str, data_type: aas.DataTypeIEC61360 | None = None,
       unit: str | None = None) -> concepts.Concept:
    return concepts.Concept(
        id=f"{_BASE}/{name}" if name else _BASE, id_short=name or ID_SHORT,
        preferred_name={"en": en, "ko": ko}, definition=definition, data_type=data_type, unit=unit,
    )


MAINTENANCE_HISTORY = _c(None, "Maintenance history", "보전 이력",
                         "Failures, repairs, inspections and planned maintenance of one machine, with summary "
                         "figures computed from them.")
MTBF = _c("MeanTimeBetweenFailures", "Mean time between failures", "평균 고장 간격",
          "Operating hours between two failures, averaged over the recorded failures.", _T.REAL_MEASURE, "h")
MTTR = _c("MeanTimeToRepair", "Mean time to repair", "평균 수리 시간",
          "Hours from a failure to the machine running again, averaged over the recorded failures.",
          _T.REAL_MEASURE, "h")
LAST_MAINTENANCE = _c("LastMaintenance", "Last maintenance", "최근 보전",
                      "UTC time at which the last maintenance event ended.", _T.TIMESTAMP)
NEXT_MAINTENANCE = _c("NextPlannedMaintenance", "Next planned maintenance", "차기 계획 보전",
                      "UTC time at which the next preventive maintenance is planned.", _T.TIMESTAMP)
EVENTS = _c("Events", "Events", "이벤트 목록", "The failure and maintenance events of the machine, oldest first.")
EVENT = _c("Event", "Event", "이벤트", "One failure or maintenance event.")
EVENT_TYPE = _c("EventType", "Event type", "이벤트 유형",
                "Kind of event: " + ", ".join(EVENT_TYPES) + ".", _T.STRING)
START = _c("Start", "Start", "시작 시각", "UTC time at which the event began (failure detected, work started).",
           _T.TIMESTAMP)
END = _c("End", "End", "종료 시각", "UTC time at which the machine was released to production again.",
         _T.TIMESTAMP)
COMPONENT = _c("Component", "Component", "부품", "The component affected or worked on, e.g. 'main pump'.",
               _T.STRING)
FAILURE_MODE = _c("FailureMode", "Failure mode", "고장 모드",
                  "How the component failed, e.g. 'internal leakage', 'bearing wear' (failures only).", _T.STRING)
CAUSE = _c("Cause", "Cause", "원인", "Root cause found, e.g. 'contaminated oil'.", _T.STRING)
ACTION = _c("Action", "Action", "조치", "What was done, e.g. 'replaced pump, flushed circuit'.", _T.STRING)
DOWNTIME = _c("Downtime", "Downtime", "정지 시간", "Hours the machine could not produce because of the event.",
              _T.REAL_MEASURE, "h")
OPERATING_HOURS = _c("OperatingHours", "Operating hours at event", "이벤트 시점 가동 시간",
                     "Operating hours of the machine when the event began.", _T.REAL_MEASURE, "h")
PERFORMED_BY = _c("PerformedBy", "Performed by", "작업자", "Person, team or service company that did the work.",
                  _T.STRING)
WORK_ORDER = _c("WorkOrder", "Work order", "작업 지시 번호", "Id of the work order in the maintenance system.",
                _T.STRING)
REMARKS = _c("Remarks", "Remarks", "비고", "Free text about the event.", _T.STRING)

CONCEPTS: tuple[concepts.Concept, ...] = (
    MAINTENANCE_HISTORY, MTBF, MTTR, LAST_MAINTENANCE, NEXT_MAINTENANCE, EVENTS, EVENT, EVENT_TYPE, START, END,
    COMPONENT, FAILURE_MODE, CAUSE, ACTION, DOWNTIME, OPERATING_HOURS, PERFORMED_BY, WORK_ORDER, REMARKS,
)
SEMANTIC_ID = MAINTENANCE_HISTORY.id

_D = aas.DataTypeDefXSD.DOUBLE
_S = aas.DataTypeDefXSD.STRING
_DT = aas.DataTypeDefXSD.DATE_TIME


@dataclass(frozen=True)
class MaintenanceEvent:
    event_type: str
    start: dt.datetime
    end: dt.datetime | None = None
    component: str | None = None
    failure_mode: str | None = None
    cause: str | None = None
    action: str | None = None
    downtime_h: float | None = None
    operating_hours: float | None = None
    performed_by: str | None = None
    work_order: str | None = None
    remarks: str | None = None


def concept_descriptions() -> list[aas.ConceptDescription]:
    return [c.description() for c in CONCEPTS]


def cardinality(value: str) -> aas.Qualifier:
    """The template qualifier that says how often an element occurs (``One``, ``ZeroToOne``...)."""
    if value not in CARDINALITIES:
        raise ValueError(f"cardinality {value!r} must be one of {CARDINALITIES}")
    return aas.Qualifier(CARDINALITY_TYPE, _S, kind=aas.QualifierKind.TEMPLATE_QUALIFIER, value=value,
                         semantic_id=global_ref(CARDINALITY_SEMANTIC_ID))


def _q(element: aas.SubmodelElement, value: str | None) -> aas.SubmodelElement:
    if value is not None:
        element.qualifiers = [cardinality(value)]
    return element


def _event(e: MaintenanceEvent | None) -> aas.SubmodelElementCollection:
    """An Event; ``None`` gives the template prototype with every child and its cardinality."""
    template = e is None

    def p(concept: concepts.Concept, value_type: aas.DataTypeDefXSD, value: Scalar | None,
          card: str) -> aas.SubmodelElement | None:
        if not template and value is None:
            return None
        return _q(prop(concept.id_short, value_type, concept.id, value), card if template else None)

    if e is not None and e.event_type not in EVENT_TYPES:
        raise ValueError(f"event_type {e.event_type!r} must be one of {EVENT_TYPES}")
    remarks = mlp(REMARKS.id_short, REMARKS.id, e.remarks if e else None)
    children = [
        p(EVENT_TYPE, _S, e.event_type if e else None, "One"),
        p(START, _DT, e.start if e else None, "One"),
        p(END, _DT, e.end if e else None, "ZeroToOne"),
        p(COMPONENT, _S, e.component if e else None, "ZeroToOne"),
        p(FAILURE_MODE, _S, e.failure_mode if e else None, "ZeroToOne"),
        p(CAUSE, _S, e.cause if e else None, "ZeroToOne"),
        p(ACTION, _S, e.action if e else None, "ZeroToOne"),
        p(DOWNTIME, _D, e.downtime_h if e else None, "ZeroToOne"),
        p(OPERATING_HOURS, _D, e.operating_hours if e else None, "ZeroToOne"),
        p(PERFORMED_BY, _S, e.performed_by if e else None, "ZeroToOne"),
        p(WORK_ORDER, _S, e.work_order if e else None, "ZeroToOne"),
        _q(remarks, "ZeroToOne") if template else (remarks if e and e.remarks else None),
    ]
    collection = smc(None, EVENT.id, children)
    if template:
        collection.qualifiers = [cardinality("ZeroToMany")]
    return collection


def build_maintenance_history(submodel_id: str, *, template: bool = False,
                              events: Sequence[MaintenanceEvent] = ()) -> aas.Submodel:
    """The MaintenanceHistory submodel: the template form (kind Template, prototype Event, cardinality
    qualifiers) or an instance with `events`."""
    def card(value: str) -> str | None:
        return value if template else None

    items: list[aas.SubmodelElement] = [_event(None)] if template else [_event(e) for e in events]
    events_list = aas.SubmodelElementList(
        aas.AASSubmodelElements.SUBMODEL_ELEMENT_COLLECTION, id_short=EVENTS.id_short,
        semantic_id=global_ref(EVENTS.id), semantic_id_list_element=global_ref(EVENT.id), order_relevant=True,
        value=items or None,
    )
    submodel = instance_submodel(submodel_id, ID_SHORT, SEMANTIC_ID, VERSION, [
        _q(prop(MTBF.id_short, _D, MTBF.id), card("ZeroToOne")),
        _q(prop(MTTR.id_short, _D, MTTR.id), card("ZeroToOne")),
        _q(prop(LAST_MAINTENANCE.id_short, _DT, LAST_MAINTENANCE.id), card("ZeroToOne")),
        _q(prop(NEXT_MAINTENANCE.id_short, _DT, NEXT_MAINTENANCE.id), card("ZeroToOne")),
        _q(events_list, card("One")),
    ])
    if template:
        submodel.kind = aas.ModellingKind.TEMPLATE
    return submodel
