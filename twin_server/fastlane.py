"""The fast lane: the hot calls of dashboards and the edge agent, answered in front of the whole FastAPI
application (its per-request checks, the middleware stack, routing and dependencies cost several times
the work of the call itself).

Served here, for `/api/v3.0` and `/api/v3.1`, only in their plain form (no query string):

* `GET /submodels/{id}`, `GET /submodels/{id}/submodel-elements/{path}` and `.../{path}/$value`
* `PATCH /submodels/{id}/$value` and `PATCH /submodels/{id}/submodel-elements/{path}/$value`

Everything else, and any of these that is not plainly well-formed (an id that is not base64url, a
refused token, a CORS request when CORS is on, ...), goes on to the full application, which gives the
answer and the error. The answers are the same bytes the routes in `routes/submodels.py` give: both
call the same repository methods and views. Once a PATCH has started reading its body, its errors
(including 413 above the body limit) are answered here, in the same result format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from aas_models.ids import IdError, b64url_decode
from twin_server import idshort_path
from twin_server.auth import AuthError, Role
from twin_server.errors import ApiError, result_body
from twin_server.limits import BodyTooLarge, declared_too_large, read_body, reject
from twin_server.routes.common import Parts
from twin_server.storage.base import Kind
from twin_server.validate import parse_json

log = logging.getLogger(__name__)

_PREFIXES = ("/api/v3.0/submodels/", "/api/v3.1/submodels/")
_JSON = (b"content-type", b"application/json")
#: Routes remembered by (method, path); the table is emptied when it reaches this size.
_ROUTE_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Route:
    """A call the fast lane serves: the submodel, the element (None: the submodel itself), `$value`?"""

    ident: str
    path: str | None
    tokens: list[idshort_path.Token] | None
    value: bool


class FastLane:
    """Call :meth:`serve` first for every HTTP request; when it returns False, the full application answers."""

    def __init__(self, parts: Parts, *, max_body_bytes: int, cors: bool) -> None:
        self.parts = parts
        self.max_body_bytes = max_body_bytes
        #: With CORS on, requests that carry an Origin go to the full application (its CORS middleware).
        self.cors = cors
        self._routes: dict[tuple[str, str], Route | None] = {}

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is one of the fast lane's; False (having neither received nor sent) if not."""
        method = scope["method"]
        if (method != "GET" and method != "PATCH") or scope["query_string"]:
            return False
        key = (method, scope["path"])
        try:
            route = self._routes[key]
        except KeyError:
            route = _route(key[1], method)
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[key] = route
        if route is None:
            return False
        headers = scope["headers"]
        if self.cors and _header(headers, b"origin") is not None:
            return False
        auth = self.parts.auth
        if auth.enabled:
            try:
                auth.check(_header(headers, b"authorization"), Role.READER if method == "GET" else Role.WRITER)
            except AuthError:
                return False  # the full application says what is wrong
        repo = self.parts.repo
        try:
            if method == "GET":
                if route.tokens is None:
                    body = await repo.get_bytes(Kind.SUBMODEL, route.ident)
                else:
                    assert route.path is not None
                    body = await repo.element_bytes(route.ident, route.tokens, route.path, route.value)
                await _send(send, 200, body)
                return True
            if declared_too_large(headers, self.max_body_bytes):
                raise BodyTooLarge
            update = parse_json(await read_body(receive, self.max_body_bytes))
            if route.tokens is None:
                await repo.patch_submodel_value(route.ident, update)
            else:
                assert route.path is not None
                await repo.patch_element_value(route.ident, route.tokens, route.path, update)
            await _send(send, 204, b"")
        except ApiError as exc:
            extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
            await _send(send, exc.status, result_body(exc.status, exc.text), extra)
        except BodyTooLarge:
            await reject(send, self.max_body_bytes)
        except Exception:
            log.exception("%s %s failed", method, scope["path"])
            await _send(send, 500, result_body(500, "internal error; the server log has the details"))
        return True


def _route(path: str, method: str) -> Route | None:
    """The call at `path` if the fast lane serves it, else None."""
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
        return Route(ident, None, None, False) if method == "GET" else None
    if len(rest) == 2:
        return Route(ident, None, None, True) if method == "PATCH" and rest[1] == "$value" else None
    if rest[1] != "submodel-elements" or not rest[2] or rest[2].startswith("$") or len(rest) > 4:
        return None
    if len(rest) == 4 and rest[3] != "$value":
        return None
    if len(rest) == 3 and method != "GET":
        return None
    try:
        tokens = idshort_path.parse(rest[2])
    except ApiError:
        return None
    return Route(ident, rest[2], tokens, len(rest) == 4)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, raw in headers:
        if key == name:
            text: str = raw.decode("latin-1")
            return text
    return None


async def _send(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    if status == 204:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
