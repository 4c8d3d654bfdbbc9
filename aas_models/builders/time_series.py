"""Time Series Data 1.1 (IDTA 02008-1-1) with LinkedSegments into TwinEdge's time-series store.

The submodel holds no samples: Metadata.Record describes the variables (a ``Time`` of kind UtcTime
plus one Property per variable, with the variable's semanticId and value type, without values), and
each LinkedSegment says where the samples are served.

LinkedSegment contract (implemented by the twin server's time-series endpoint)
-----------------------------------------------------------------------------
``Endpoint``: the absolute URL of the store's HTTP endpoint, :data:`DEFAULT_ENDPOINT` unless configured,
i.e. ``{server}/api/v3.0/timeseries``.

``Query``: :data:`QUERY_FORMAT`, an ``application/x-www-form-urlencoded`` string naming the one element
whose history the segment holds::

    submodelId=<base64url(submodel id), no padding>&idShortPath=<idShortPath of the element>

e.g. ``submodelId=dXJuOnR3aW5lZGdlOnNtOnByZXNzLTAxOk9wZXJhdGlvbmFsRGF0YToxLjA&idShortPath=OilTemperature.Value``.
A client reads the series with ``GET {Endpoint}?{Query}`` and may append ``&from=<xs:dateTime>``,
``&to=<xs:dateTime>`` and ``&limit=<n>``. :func:`timeseries_query` builds the string and
:func:`parse_timeseries_query` reads it back, so the server and the builders share one definition.
The element addressed is where the live value lives (a signal's ``<Signal>.Value`` in
OperationalData), which is also the key under which the agent writes samples into the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from aas_core3 import types as aas

from aas_models.builders.elements import Text, instance_submodel, mlp, numbered, prop, smc
from aas_models.ids import IdError, b64url_decode, b64url_encode

SEMANTIC_ID = "https://admin-shell.io/idta/TimeSeries/1/1"
ID_SHORT = "TimeSeries"
VERSION = ("1", "1")

#: Time kinds of IDTA 02008-1-1 (the published template file shows only RelativePointInTime).
UTC_TIME = "https://admin-shell.io/idta/TimeSeries/UtcTime/1/1"
TAI_TIME = "https://admin-shell.io/idta/TimeSeries/TaiTime/1/1"
RELATIVE_POINT_IN_TIME = "https://admin-shell.io/idta/TimeSeries/RelativePointInTime/1/1"
RELATIVE_TIME_DURATION = "https://admin-shell.io/idta/TimeSeries/RelativeTimeDuration/1/1"

DEFAULT_ENDPOINT = "http://localhost:8081/api/v3.0/timeseries"
QUERY_FORMAT = "submodelId={base64url submodel id}&idShortPath={idShortPath}"

_TS = "https://admin-shell.io/idta/TimeSeries/"
_S = aas.DataTypeDefXSD.STRING


@dataclass(frozen=True)
class Variable:
    """One column of the records: the Record property's idShort, semanticId and value type."""

    id_short: str
    semantic_id: str
    value_type: aas.DataTypeDefXSD


@dataclass(frozen=True)
class LinkedSegment:
    endpoint: str
    query: str
    name: Text | None = None
    description: Text | None = None
    state: str | None = "in progress"


@dataclass(frozen=True)
class TimeSeriesInput:
    name: Text
    variables: Sequence[Variable]
    segments: Sequence[LinkedSegment] = ()
    description: Text | None = None


def timeseries_query(submodel_id: str, id_short_path: str) -> str:
    """The LinkedSegment Query for the element at (`submodel_id`, `id_short_path`)."""
    return urlencode({"submodelId": b64url_encode(submodel_id), "idShortPath": id_short_path})


def parse_timeseries_query(query: str) -> tuple[str, str]:
    """(submodel id, idShortPath) from a Query made by :func:`timeseries_query`; IdError if malformed."""
    fields = parse_qs(query, keep_blank_values=True)
    submodel = fields.get("submodelId", [])
    path = fields.get("idShortPath", [])
    if len(submodel) != 1 or len(path) != 1 or not path[0]:
        raise IdError(f"time-series query {query!r} must have one submodelId and one idShortPath ({QUERY_FORMAT})")
    return b64url_decode(submodel[0]), path[0]


def _record(variables: Sequence[Variable]) -> aas.SubmodelElementCollection:
    return smc("Record", _TS + "Record/1/1", [
        prop("Time", aas.DataTypeDefXSD.DATE_TIME, UTC_TIME),
        *(prop(v.id_short, v.value_type, v.semantic_id) for v in variables),
    ])


def _segment(index: int, s: LinkedSegment) -> aas.SubmodelElementCollection:
    return smc(numbered("LinkedSegment", index), _TS + "Segments/LinkedSegment/1/1", [
        mlp("Name", _TS + "Segment/Name/1/1", s.name) if s.name is not None else None,
        mlp("Description", _TS + "Segment/Description/1/1", s.description) if s.description is not None else None,
        prop("State", _S, _TS + "Segment/State/1/1", s.state) if s.state is not None else None,
        prop("Endpoint", _S, _TS + "Endpoint/1/1", s.endpoint),
        prop("Query", _S, _TS + "Query/1/1", s.query),
    ])


def build_time_series(data: TimeSeriesInput, submodel_id: str) -> aas.Submodel:
    """The TimeSeries submodel: Metadata (Name, Description?, Record) and Segments of LinkedSegments."""
    names = [v.id_short for v in data.variables]
    if "Time" in names or len(set(names)) != len(names):
        raise ValueError(f"record variables must be unique and not named 'Time': {names}")
    metadata = smc("Metadata", _TS + "Metadata/1/1", [
        mlp("Name", _TS + "Metadata/Name/1/1", data.name),
        mlp("Description", _TS + "Metadata/Description/1/1", data.description)
        if data.description is not None else None,
        _record(data.variables),
    ])
    segments = smc("Segments", _TS + "Segments/1/1", [_segment(i, s) for i, s in enumerate(data.segments)])
    return instance_submodel(submodel_id, ID_SHORT, SEMANTIC_ID, VERSION, [metadata, segments])
