"""OperationalData 1.0 (TwinEdge's own): the live signals of one machine.

One collection per signal, named after the signal, directly under the submodel::

    OilTemperature            SMC   semanticId .../OperationalData/1/0/Signal
      Value                   the signal's value type; semanticId = the signal's concept (name, unit)
      Quality                 xs:string: good | uncertain | bad (from the protocol's status)
      Timestamp               xs:dateTime, UTC source timestamp of Value
      Unit                    xs:string, only if the signal has a unit (copied from its concept)

so a signal's value lives in exactly one element, ``(submodel id, "<Signal>.Value")``
(:func:`value_path`); the agent's mapping writes there and the time-series store keys its history
by the same address. Unit is static metadata for readers of the value-only serialisation, which
drops semanticIds and so the concept that carries the unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aas_core3 import types as aas

from aas_models import concepts
from aas_models.builders.elements import Text, instance_submodel, prop, smc

SEMANTIC_ID = concepts.OPERATIONAL_DATA.id
ID_SHORT = "OperationalData"
VERSION = ("1", "0")
QUALITIES = ("good", "uncertain", "bad")


@dataclass(frozen=True)
class Signal:
    """A live signal: `name` becomes the collection's idShort, `semantic_id` the Value's semanticId."""

    name: str
    value_type: aas.DataTypeDefXSD
    semantic_id: str
    unit: str | None = None
    description: Text | None = None
    display_name: Text | None = None


def value_path(signal_name: str) -> str:
    """idShortPath of the element holding the signal's value."""
    return f"{signal_name}.Value"


def _signal(signal: Signal) -> aas.SubmodelElementCollection:
    return smc(signal.name, concepts.OD_SIGNAL.id, [
        prop("Value", signal.value_type, signal.semantic_id),
        prop("Quality", aas.DataTypeDefXSD.STRING, concepts.OD_QUALITY.id),
        prop("Timestamp", aas.DataTypeDefXSD.DATE_TIME, concepts.OD_TIMESTAMP.id),
        prop("Unit", aas.DataTypeDefXSD.STRING, concepts.OD_UNIT.id, signal.unit) if signal.unit else None,
    ], description=signal.description, display_name=signal.display_name)


def build_operational_data(signals: Sequence[Signal], submodel_id: str) -> aas.Submodel:
    """The OperationalData submodel with empty values (the agent fills them)."""
    return instance_submodel(submodel_id, ID_SHORT, SEMANTIC_ID, VERSION, [_signal(s) for s in signals])
