"""What every route module shares: the app's parts, id decoding, auth, paging and JSON replies."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

import orjson
from fastapi import Depends, Query, Request
from starlette.responses import Response

from aas_models.ids import IdError, b64url_decode
from twin_server.auth import Authenticator, AuthError, Principal, Role
from twin_server.errors import ApiError, bad_request
from twin_server.repository import Repository
from twin_server.storage.base import Page

JSON = "application/json"
#: Largest page a client may ask for.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass
class Parts:
    """Everything a request handler needs; kept on `app.state.parts`."""

    repo: Repository
    auth: Authenticator


def parts(request: Request) -> Parts:
    value = request.app.state.parts
    assert isinstance(value, Parts)
    return value


def decode_id(encoded: str, what: str = "identifier") -> str:
    try:
        return b64url_decode(encoded)
    except IdError as exc:
        raise bad_request(f"{what}: {exc}") from None


def decode_b64_text(encoded: str, what: str) -> str:
    """Query values that are base64url-encoded text (semanticId, assetIds, ...), decoded strictly: a
    character outside the alphabet is a 400, not silently dropped (which would filter for other text)."""
    try:
        return b64url_decode(encoded)
    except IdError:
        raise bad_request(f"{what}: {encoded!r} is not base64url-encoded UTF-8 text") from None


def content_disposition(file_name: str) -> str:
    """`attachment` with the name as RFC 6266/8187 `filename*` (any Unicode, no header injection) and a
    plain ASCII `filename` for old clients."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def need(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    async def check(request: Request) -> Principal:
        try:
            return parts(request).auth.check(request.headers.get("authorization"), role)
        except AuthError as exc:
            raise AuthFailure(exc) from None

    return check


class AuthFailure(ApiError):
    """A refused request; a 401 carries the WWW-Authenticate challenge (RFC 6750 section 3)."""

    def __init__(self, error: AuthError) -> None:
        super().__init__(error.status, error.text,
                         {"WWW-Authenticate": error.www_authenticate} if error.status == 401 else None)


Reader = Annotated[Principal, Depends(need(Role.READER))]
Writer = Annotated[Principal, Depends(need(Role.WRITER))]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[str | None, Query(min_length=1, max_length=200)]
LevelQ = Annotated[Literal["deep", "core"] | None, Query()]
ExtentQ = Annotated[Literal["withBlobValue", "withoutBlobValue"] | None, Query()]


def json_response(body: bytes | Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=JSON, headers=headers)


def paged(items: list[bytes], cursor: str | None) -> Response:
    meta = orjson.dumps({"cursor": cursor} if cursor else {})
    return Response(b'{"paging_metadata":' + meta + b',"result":[' + b",".join(items) + b"]}", media_type=JSON)


def paged_page(page: Page) -> Response:
    return paged(page.items, page.cursor)


def page_slice(values: list[Any], limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """Pagination over an in-memory list (a submodel's elements): the cursor is the next index."""
    start = 0
    if cursor is not None:
        text = decode_b64_text(cursor, "cursor")
        if not text.startswith("i:") or not text[2:].isdigit():
            raise bad_request("cursor: not a cursor this server issued")
        start = int(text[2:])
    end = start + limit
    more = end < len(values)
    next_cursor = base64.urlsafe_b64encode(f"i:{end}".encode()).decode().rstrip("=") if more else None
    return values[start:end], next_cursor
