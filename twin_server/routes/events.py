"""GET /events: the server-sent-events stream of changes, for dashboards (docs/events.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from twin_server.errors import bad_request
from twin_server.events import EventBus, EventFilter, EventFilterError, sse_response
from twin_server.routes.common import Reader

router = APIRouter(tags=["Events"])


def bus_of(request: Request) -> EventBus:
    bus = request.app.state.events
    assert isinstance(bus, EventBus)
    return bus


@router.get("/events")
async def get_events(request: Request, _p: Reader) -> Response:
    """Query: kind, type, id (base64url), idShortPath filter the stream; Last-Event-ID resumes it."""
    try:
        flt = EventFilter.from_query(request.query_params.multi_items())
    except EventFilterError as exc:
        raise bad_request(str(exc)) from None
    return sse_response(bus_of(request), flt, request)
