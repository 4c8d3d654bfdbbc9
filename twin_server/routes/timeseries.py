"""GET /timeseries: the history of one element, as the Time Series Data submodel's LinkedSegments
point at it (`?submodelId=<base64url>&idShortPath=<path>`, see aas_models.builders.time_series)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aas_models.timeseries.base import MAX_POINTS, Point, SeriesKey, TimeSeriesStore
from twin_server.errors import bad_request
from twin_server.idshort_path import parse
from twin_server.routes.common import Reader, decode_id, json_response

router = APIRouter(tags=["Time series"])


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"{name}: {text!r} is not an xs:dateTime such as 2026-11-25T08:00:00Z") from None
    if moment.tzinfo is None:
        raise bad_request(f"{name}: give a time zone (e.g. a trailing Z for UTC)")
    return moment


def _point(point: Point, downsampled: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"time": point.time.isoformat().replace("+00:00", "Z"), "value": point.value,
                           "quality": point.quality.value}
    if downsampled:
        out.update(min=point.min, max=point.max, count=point.count)
    return out


def store_of(request: Request) -> TimeSeriesStore:
    store = request.app.state.timeseries
    assert isinstance(store, TimeSeriesStore)
    return store


@router.get("/timeseries")
async def get_timeseries(
    request: Request, _p: Reader,
    submodel_id: Annotated[str, Query(alias="submodelId", min_length=1)],
    id_short_path: Annotated[str, Query(alias="idShortPath", min_length=1, max_length=2000)],
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 10_000,
    interval: Annotated[float | None, Query(gt=0, le=366 * 86400, description="bucket width in seconds")] = None,
) -> Response:
    """Samples oldest first (the newest `limit` if more match); with `interval`, one point per bucket
    with the mean, min, max and count of its good values."""
    ident = decode_id(submodel_id, "submodelId")
    parse(id_short_path)
    points = await store_of(request).read(
        SeriesKey(ident, id_short_path), _time(start, "from"), _time(end, "to"), limit,
        timedelta(seconds=interval) if interval else None)
    return json_response({"submodelId": ident, "idShortPath": id_short_path,
                          "points": [_point(p, interval is not None) for p in points]})
