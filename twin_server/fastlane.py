"""The fast lane: the hot calls of dashboards and the edge agent, answered without FastAPI's routing and
dependency machinery (which costs several times the work of the call itself).

Served here, for `/api/v3.0` and `/api/v3.1`, only in their plain form (no query string):

* `GET /submodels/{id}`, `GET /submodels/{id}/submodel-elements/{path}` and `.../{path}/$value`
* `PATCH /submodels/{id}/$value` and `PATCH /submodels/{id}/submodel-elements/{path}/$value`

Everything else, and any of these that is not plainly well-formed (an id that is not base64url, a
refused token, ...), goes on to the full application, which gives the answer and the error. The
answers are the same bytes the routes in `routes/submodels.py` give: both call the same repository
methods and views. Once a PATCH has read its body, its errors are answered here, in the same result
format.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from aas_models.ids import IdError, b64url_decode
from twin_server import idshort_path, values
from twin_server.auth import AuthError, Role
from twin_server.errors import ApiError, error_response
from twin_server.repository import Repository, dumps
from twin_server.routes.common import Parts
from twin_server.storage.base import Kind
from twin_server.validate import parse_json

_PREFIXES = ("/api/v3.0/submodels/", "/api/v3.1/submodels/")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("query_string") or scope["method"] not in ("GET", "PATCH"):
            await self.app(scope, receive, send)
            return
        route = _route(scope["path"], scope["method"])
        if route is None:
            await self.app(scope, receive, send)
            return
        ident, element_path, value = route
        role = Role.READER if scope["method"] == "GET" else Role.WRITER
        app_parts: Parts = scope["app"].state.parts
        repo = app_parts.repo
        try:
            app_parts.auth.check(_header(scope, b"authorization"), role)
            tokens = idshort_path.parse(element_path) if element_path is not None else None
        except (ApiError, AuthError):
            await self.app(scope, receive, send)  # the full application says what is wrong
            return
        try:
            if scope["method"] == "GET":
                body = await _get(repo, ident, tokens, element_path, value)
                await _send(send, 200, body)
                return
            update = parse_json(await _read_body(receive))
            if tokens is None:
                await repo.patch_submodel_value(ident, update)
            else:
                assert element_path is not None
                await repo.patch_element_value(ident, tokens, element_path, update)
            await _send(send, 204, b"")
        except ApiError as exc:
            response = error_response(exc.status, exc.text, exc.headers)
            await response(scope, receive, send)


def _route(path: str, method: str) -> tuple[str, str | None, bool] | None:
    """(submodel id, idShortPath or None, `$value`?) for a call the fast lane serves, else None."""
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix):].split("/")
            break
    else:
        return None
    if not rest[0] or rest[0].startswith("$"):
        return None
    try:
        ident = b64url_decode(rest[0])
    except IdError:
        return None
    if len(rest) == 1:
        return (ident, None, False) if method == "GET" else None
    if len(rest) == 2:
        return (ident, None, True) if method == "PATCH" and rest[1] == "$value" else None
    if rest[1] != "submodel-elements" or not rest[2] or rest[2].startswith("$") or len(rest) > 4:
        return None
    if len(rest) == 4:
        return (ident, rest[2], True) if rest[3] == "$value" else None
    return (ident, rest[2], False) if method == "GET" else None


async def _get(repo: Repository, ident: str, tokens: list[idshort_path.Token] | None, path: str | None,
               value: bool) -> bytes:
    if tokens is None:
        return await repo.get_bytes(Kind.SUBMODEL, ident)
    assert path is not None
    _doc, found = await repo.element(ident, tokens, path)
    return dumps(values.element_value(found.element) if value else found.element)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, raw in scope["headers"]:
        if key == name:
            text: str = raw.decode("latin-1")
            return text
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())] if status != 204 else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
