"""The fast lane: the hot calls of dashboards and the edge agent, answered in front of the whole FastAPI
application (its per-request checks, the middleware stack, routing and dependencies cost several times
the work of the call itself).

Served here, for `/api/v3.0` and `/api/v3.1`, only in their plain form (no query string):

* `GET /submodels/{id}`, `GET /submodels/{id}/submodel-elements/{path}` and `.../{path}/$value`
* `PATCH /submodels/{id}/$value` and `PATCH /submodels/{id}/submodel-elements/{path}/$value`
* `GET /shells` with no query but `limit` and `cursor` (through :meth:`FastLane.serve` only: the store's
  page query is awaited)

Everything else, and any of these that is not plainly well-formed (an id that is not base64url, a
refused token, a CORS request when CORS is on, ...), goes on to the full application, which gives the
answer and the error. The answers are the same bytes the routes in `routes/submodels.py` give: both
call the same repository methods and views. Once a PATCH has started reading its body, its errors
(including 413 above the body limit) are answered here, in the same result format.

:meth:`FastLane.answer_now` answers the GETs without any await, for an HTTP protocol that serves them
without an ASGI task (`http_protocol.py`), when the store can be read synchronously (SQLite); it still
reads the stored bytes for every request, so a write by anyone is seen at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from starlette.types import Receive, Scope, Send

from aas_models.ids import IdError, b64url_decode
from twin_server import idshort_path
from twin_server.auth import AuthError, Role
from twin_server.errors import ApiError, result_body
from twin_server.limits import BodyTooLarge, declared_too_large, read_body, reject
from twin_server.routes.common import DEFAULT_LIMIT, MAX_LIMIT, Parts, paged
from twin_server.storage.base import Filter, Kind
from twin_server.validate import parse_json

log = logging.getLogger(__name__)

_PREFIXES = ("/api/v3.0/submodels/", "/api/v3.1/submodels/")
_SHELLS = ("/api/v3.0/shells", "/api/v3.1/shells")
_JSON = (b"content-type", b"application/json")
_INTERNAL = result_body(500, "internal error; the server log has the details")
#: Routes remembered by (method, path); the table is emptied when it reaches this size.
_ROUTE_CACHE_SIZE = 4096


@runtime_checkable
class SyncReads(Protocol):
    """A store whose reads need no await (SQLite on the event loop's thread)."""

    def get_now(self, kind: Kind, ident: str) -> bytes | None: ...


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
        storage = parts.repo.storage
        self._get_now = storage.get_now if isinstance(storage, SyncReads) else None

    def answer_now(self, path: str, headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
        """The 200 JSON answer of a plain `GET path` (no query string, no body), computed without any await;
        None when this cannot be decided here (the request then goes to :meth:`serve` and the application,
        which answer it, errors included)."""
        get_now = self._get_now
        if get_now is None:
            return None
        route = self._route("GET", path)
        if route is None or not self._admits(headers, Role.READER, with_body=False):
            return None
        try:
            body = get_now(Kind.SUBMODEL, route.ident)
            if body is None:
                return None
            if route.tokens is None:
                return body
            assert route.path is not None
            return self.parts.repo.element_answer(route.ident, body, route.tokens, route.path, route.value)
        except Exception:  # ApiError (no such element) and the unexpected: the full path answers them
            return None

    def _route(self, method: str, path: str) -> Route | None:
        key = (method, path)
        try:
            return self._routes[key]
        except KeyError:
            route = _route(path, method)
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[key] = route
            return route

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is one of the fast lane's; False (having neither received nor sent) if not."""
        method = scope["method"]
        if method == "GET" and scope["path"] in _SHELLS:
            return await self._list_shells(scope, send)
        if (method != "GET" and method != "PATCH") or scope["query_string"]:
            return False
        route = self._route(method, scope["path"])
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
        if method == "GET":
            await _send(send, *await self._read(route, scope["path"]))
            return True
        if declared_too_large(headers, self.max_body_bytes):
            await reject(send, self.max_body_bytes)
            return True
        try:
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            await reject(send, self.max_body_bytes)
            return True
        await _send(send, *await self.write(route, body, scope["path"]))
        return True

    async def _list_shells(self, scope: Scope, send: Send) -> bool:
        """`GET /shells` with at most `limit` and `cursor` in its query: the stored shells' bytes joined into the
        page (as `routes/shells.py` does) without FastAPI's query and dependency machinery, which costs more
        than the query itself. Nothing is cached: every request reads the store. False (nothing received or
        sent) for any other form and for any error, which the application then answers."""
        query = _page_query(scope["query_string"])
        if query is None or not self._admits(scope["headers"], Role.READER, with_body=False):
            return False
        try:
            page = await self.parts.repo.page(Kind.SHELL, Filter(), *query)
        except Exception:  # a bad cursor (400) and the unexpected: the application answers them
            return False
        await _send(send, 200, bytes(paged(page.items, page.cursor).body))
        return True

    def accept_write(self, path: str, headers: Iterable[tuple[bytes, bytes]]) -> Route | None:
        """The route of a plain `PATCH path` (no query string) that :meth:`write` answers, decided without any
        await: a body of declared length within the limit, no CORS request, a writer's credentials. None:
        the request goes to :meth:`serve` and the application, which answer it, errors included."""
        route = self._route("PATCH", path)
        return route if route is not None and self._admits(headers, Role.WRITER, with_body=True) else None

    def _admits(self, headers: Iterable[tuple[bytes, bytes]], role: Role, *, with_body: bool) -> bool:
        """What :meth:`serve` checks, for a request answered without an await: no CORS request (when CORS is on),
        credentials for `role`, and a body of declared length within the limit (`with_body`) or none."""
        authorization = None
        length = None
        for key, value in headers:
            if key == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif key == b"content-length":
                if length is not None or not value.isdigit() or int(value) > self.max_body_bytes:
                    return False
                length = value
            elif key == b"origin":
                if self.cors:
                    return False
            elif key == b"transfer-encoding" or key == b"expect":
                return False
        if (length is None) if with_body else (length not in (None, b"0")):
            return False
        auth = self.parts.auth
        if auth.enabled:
            try:
                auth.check(authorization, role)
            except AuthError:
                return False
        return True

    async def _read(self, route: Route, where: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        repo = self.parts.repo
        try:
            if route.tokens is None:
                return 200, await repo.get_bytes(Kind.SUBMODEL, route.ident), []
            assert route.path is not None
            return 200, await repo.element_bytes(route.ident, route.tokens, route.path, route.value), []
        except ApiError as exc:
            return exc.status, result_body(exc.status, exc.text), _extra(exc)
        except Exception:
            log.exception("GET %s failed", where)
            return 500, _INTERNAL, []

    async def write(self, route: Route, body: bytes, where: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Do the value PATCH at `route` with the request `body`: (status, answer, extra headers)."""
        repo = self.parts.repo
        try:
            update = parse_json(body)
            if route.tokens is None:
                await repo.patch_submodel_value(route.ident, update)
            else:
                assert route.path is not None
                await repo.patch_element_value(route.ident, route.tokens, route.path, update)
            return 204, b"", []
        except ApiError as exc:
            return exc.status, result_body(exc.status, exc.text), _extra(exc)
        except Exception:
            log.exception("PATCH %s failed", where)
            return 500, _INTERNAL, []


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


def _page_query(raw: bytes) -> tuple[int, str | None] | None:
    """(limit, cursor) of a query string that holds nothing else, each at most once, in plain form (no
    percent-encoding), within the route's bounds; None when the application has to decide."""
    limit, cursor = DEFAULT_LIMIT, None
    seen: set[bytes] = set()
    for item in raw.split(b"&") if raw else ():
        name, sep, value = item.partition(b"=")
        if not sep or name in seen or b"%" in item or b"+" in item:
            return None
        seen.add(name)
        if name == b"limit":
            if not value.isdigit() or len(value) > 4 or not 1 <= int(value) <= MAX_LIMIT:
                return None
            limit = int(value)
        elif name == b"cursor":
            if not 1 <= len(value) <= 200:
                return None
            cursor = value.decode("latin-1")
        else:
            return None
    return limit, cursor


def _extra(exc: ApiError) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]


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
