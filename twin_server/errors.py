"""Every 4xx/5xx answer in the Part 2 result format: {"messages": [{messageType, text, code, timestamp}]}.

FastAPI's own 422 {"detail": ...} is replaced by a 400 in that format, because AAS clients and the
official conformance tool expect it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request that cannot be served; `status` is the HTTP status, `text` says what to do."""

    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        #: Extra response headers, e.g. the WWW-Authenticate challenge of a 401.
        self.headers = headers


def bad_request(text: str) -> ApiError:
    return ApiError(400, text)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def result_body(status: int, text: str) -> bytes:
    message = {
        "messageType": "Error" if status < 500 else "Exception",
        "text": text,
        "code": str(status),
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    return orjson.dumps({"messages": [message]})


def error_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(result_body(status, text), status_code=status, media_type="application/json",
                    headers=headers)


def _validation_text(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.text, exc.headers)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, _validation_text(exc))

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; the server log has the details")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
