"""The HTTP protocol that answers the fast lane's calls itself (twin_server/http_protocol.py), over real
sockets against a real uvicorn server (the protocol `twinedge server` runs): the same answers and headers
as uvicorn's own path, keep-alive, pipelined requests answered in order, auth, writes seen at once (also
one made beside the server), and everything else left to uvicorn."""

from __future__ import annotations

import base64
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from starlette.responses import Response as StarletteResponse

from tests.server import REPRESENTATIVE, run_server
from twin_server.auth import AuthConfig, Role, TokenConfig, hash_token
from twin_server.config import ServerConfig
from twin_server.fastlane import FastLane
from twin_server.routes import shells
from twin_server.routes.common import paged_page
from twin_server.storage.base import Page

TIMEOUT = 10
SUBMODEL = "urn:example:sm:press-01:AllKinds"
READER = "reader-token-0123456789abcdef"
WRITER = "writer-token-0123456789abcdef"
MAX_BODY = 4096


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


SM_PATH = f"/api/v3.0/submodels/{b64(SUBMODEL)}"
TEMPERATURE = f"{SM_PATH}/submodel-elements/Temperature"


@dataclass
class Served:
    port: int
    data_dir: Path
    lane: FastLane


@contextmanager
def serve(config: ServerConfig, keep_alive: int = 5) -> Iterator[Served]:
    """`twinedge server`'s uvicorn set-up (the fast protocol) in a thread, on a free loopback port."""
    with run_server(config, keep_alive=keep_alive) as running:
        yield Served(running.config.port, running.config.data_dir, running.lane)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("fastpath"), load=[REPRESENTATIVE],
                          max_body_bytes=MAX_BODY)
    with serve(config) as served:
        yield served


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    auth = AuthConfig(tokens=[TokenConfig(name="dashboard", role=Role.READER, sha256=hash_token(READER)),
                              TokenConfig(name="agent", role=Role.WRITER, sha256=hash_token(WRITER))])
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("fastpath-auth"), load=[REPRESENTATIVE], auth=auth)
    with serve(config) as served:
        yield served


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


def request(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    """One client socket, reading responses one after the other (content-length framing, as the server
    sends them; HEAD and 204 answers have no body)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def read(self, method: str = "GET") -> Response:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, value = line.split(":", 1)
            assert name.lower() not in headers, f"header {name} twice"
            headers[name.lower()] = value.strip()
        status = int(status_line.split()[1])
        length = 0 if method == "HEAD" or status == 204 else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(status, headers, body)

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             version: str = "1.1") -> Response:
        self.send(request(method, path, body, headers, version))
        return self.read(method)

    def closed_by_server(self) -> bool:
        self.sock.settimeout(TIMEOUT)
        return self.buffer == b"" and self.sock.recv(1) == b""


def test_the_protocol_answers_without_the_application(open_server: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lane's answers reach the client straight from the protocol: the application (whose first step is
    the lane's ASGI entry, `serve`) is not called."""
    answered: list[str] = []
    now = open_server.lane.answer_now

    def counting(path: str, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        answer = now(path, headers)
        answered.append(path if answer is not None else "")
        return answer

    async def no_app(*_args: object) -> bool:
        raise AssertionError("the application was called")

    monkeypatch.setattr(open_server.lane, "answer_now", counting)
    monkeypatch.setattr(open_server.lane, "serve", no_app)
    with Connection(open_server.port) as conn:
        assert conn.call("GET", TEMPERATURE).status == 200
        assert conn.call("GET", SM_PATH).status == 200
        assert conn.call("PATCH", f"{TEMPERATURE}/$value", b"41.5").status == 204
    assert answered == [TEMPERATURE, SM_PATH]


def test_answers_and_headers_match_uvicorns_own_path(open_server: Served) -> None:
    """HTTP/1.0 requests go through uvicorn and the application: the fast answers are the same bytes with
    the same headers (apart from connection handling)."""
    for path in (TEMPERATURE, f"{TEMPERATURE}/$value", SM_PATH, f"{SM_PATH}/submodel-elements/Hydraulics"):
        with Connection(open_server.port) as fast, Connection(open_server.port) as slow:
            a = fast.call("GET", path)
            b = slow.call("GET", path, version="1.0")
        assert a.status == b.status == 200
        assert a.body == b.body
        assert set(a.headers) == set(b.headers) - {"connection"} == {"date", "server", "content-type",
                                                                         "content-length"}
        assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
        assert a.headers["server"] == b.headers["server"]


def test_keep_alive_and_connection_close(open_server: Served) -> None:
    with Connection(open_server.port) as conn:
        values = [conn.call("GET", f"{TEMPERATURE}/$value").json() for _ in range(5)]
        assert values == [values[0]] * 5
        closing = conn.call("GET", TEMPERATURE, headers={"Connection": "close"})
        assert closing.status == 200 and closing.headers["connection"] == "close"
        assert conn.closed_by_server()


def test_idle_connections_are_closed_after_the_keep_alive_timeout(tmp_path: Path) -> None:
    """The protocol keeps one idle timer for many answers: requests spaced out over more than the timeout keep
    the connection open (the timer is re-armed for the time left), and it is closed once idle long enough."""
    config = ServerConfig(data_dir=tmp_path, load=[REPRESENTATIVE])
    with serve(config, keep_alive=1) as served, Connection(served.port) as conn:
        for _ in range(6):
            assert conn.call("GET", TEMPERATURE).status == 200
            time.sleep(0.3)
        assert conn.call("PATCH", f"{TEMPERATURE}/$value", b"12.5").status == 204  # uvicorn's timer, then ours
        assert conn.call("GET", f"{TEMPERATURE}/$value").json() == {"Temperature": 12.5}
        assert conn.closed_by_server()


def test_pipelined_requests_are_answered_in_order(open_server: Served) -> None:
    """Fast and slow (uvicorn's) requests in one send: answers in request order, each write seen by the
    requests after it."""
    value_path = f"{SM_PATH}/submodel-elements/CycleCount/$value"
    with Connection(open_server.port) as conn:
        conn.send(
            request("GET", value_path),
            request("PATCH", value_path, b"11"),
            request("GET", value_path),
            request("GET", f"{value_path}?level=core"),  # the application's route
            request("PATCH", value_path, b"12"),
            request("PATCH", value_path, b'"not a number"'),  # refused: changes nothing
            request("GET", value_path),
            request("HEAD", value_path),
            request("GET", f"{SM_PATH}/submodel-elements/NoSuchElement"),
            request("GET", value_path),
        )
        answers = [conn.read(m) for m in ("GET", "PATCH", "GET", "GET", "PATCH", "PATCH", "GET", "HEAD", "GET", "GET")]
    assert [a.status for a in answers] == [200, 204, 200, 200, 204, 400, 200, 405, 404, 200]
    assert answers[2].json() == answers[3].json() == {"CycleCount": 11}
    assert answers[6].json() == answers[9].json() == {"CycleCount": 12}
    assert answers[5].json()["messages"][0]["code"] == "400"  # type: ignore[index]
    assert answers[8].json()["messages"][0]["code"] == "404"  # type: ignore[index]


def test_other_methods_and_forms_fall_through(open_server: Served) -> None:
    with Connection(open_server.port) as conn:
        head = conn.call("HEAD", TEMPERATURE)
        assert head.status == 405 and head.headers["allow"] == "GET"
        assert conn.call("OPTIONS", TEMPERATURE).status == 405
        assert conn.call("DELETE", f"{TEMPERATURE}/$value").status == 405
        assert conn.call("GET", TEMPERATURE, headers={"Content-Length": "0"}).status == 200
        assert conn.call("GET", f"{SM_PATH}/submodel-elements/Temper%61ture").json() == \
            conn.call("GET", TEMPERATURE).json()
        assert conn.call("GET", f"/api/v3.0/submodels/{b64('urn:no:such')}").status == 404
        assert conn.call("GET", "/api/v3.0/submodels/not*base64").status == 400
        shells = conn.call("GET", "/api/v3.0/shells?limit=1")
        assert shells.status == 200 and "result" in shells.json()  # type: ignore[operator]


def test_writes_are_seen_at_once(open_server: Served) -> None:
    """The element answer follows a PATCH, a PUT through the application, and a write straight into the
    SQLite file by another connection (as another process's write would land)."""
    with Connection(open_server.port) as conn:
        assert conn.call("GET", f"{TEMPERATURE}/$value").status == 200
        assert conn.call("PATCH", f"{TEMPERATURE}/$value", b"23.5").status == 204
        assert conn.call("GET", f"{TEMPERATURE}/$value").json() == {"Temperature": 23.5}
        element = conn.call("GET", TEMPERATURE).json()
        assert isinstance(element, dict)
        assert conn.call("PUT", TEMPERATURE, orjson.dumps({**element, "value": "24.5"})).status == 204
        assert conn.call("GET", f"{TEMPERATURE}/$value").json() == {"Temperature": 24.5}
        with sqlite3.connect(open_server.data_dir / "twins.db") as db:
            (body,) = db.execute("SELECT body FROM docs WHERE id = ?", (SUBMODEL,)).fetchone()
            doc = orjson.loads(body)
            next(e for e in doc["submodelElements"] if e["idShort"] == "Temperature")["value"] = "99.5"
            db.execute("UPDATE docs SET body = ? WHERE id = ?", (orjson.dumps(doc), SUBMODEL))
        assert conn.call("GET", f"{TEMPERATURE}/$value").json() == {"Temperature": 99.5}
        assert conn.call("PATCH", f"{TEMPERATURE}/$value", b"25.5").status == 204
    # The answer came after the commit: another connection reads the value from the file.
    with sqlite3.connect(open_server.data_dir / "twins.db") as db:
        (body,) = db.execute("SELECT body FROM docs WHERE id = ?", (SUBMODEL,)).fetchone()
    assert next(e for e in orjson.loads(body)["submodelElements"] if e["idShort"] == "Temperature")["value"] == "25.5"


def test_write_errors_in_the_result_format(open_server: Served) -> None:
    path = f"{SM_PATH}/submodel-elements/Running/$value"
    with Connection(open_server.port) as conn:
        before = conn.call("GET", path).json()
        for body, status in ((b"not json", 400), (b'"maybe"', 400), (b"x" * (MAX_BODY + 1), 413)):
            answer = conn.call("PATCH", path, body)
            assert answer.status == status
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["messages"][0]["code"] == str(status)  # type: ignore[index]
        assert conn.call("PATCH", f"{SM_PATH}/submodel-elements/Nothing/$value", b"1").status == 404
        assert conn.call("GET", path).json() == before


def test_auth_decided_or_left_to_the_application(auth_server: Served) -> None:
    reader = {"Authorization": f"Bearer {READER}"}
    writer = {"Authorization": f"Bearer {WRITER}"}
    value_path = f"{TEMPERATURE}/$value"
    with Connection(auth_server.port) as conn:
        refused = conn.call("GET", value_path)
        assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["messages"][0]["code"] == "401"  # type: ignore[index]
        assert conn.call("GET", value_path, headers={"Authorization": "Bearer wrong"}).status == 401
        assert conn.call("GET", value_path, headers=reader).status == 200
        forbidden = conn.call("PATCH", value_path, b"30.5", headers=reader)
        assert forbidden.status == 403
        assert forbidden.json()["messages"][0]["code"] == "403"  # type: ignore[index]
        assert conn.call("PATCH", value_path, b"30.5").status == 401
        assert conn.call("GET", value_path, headers=reader).json() == {"Temperature": 41.5}
        assert conn.call("PATCH", value_path, b"30.5", headers=writer).status == 204
        assert conn.call("GET", value_path, headers=writer).json() == {"Temperature": 30.5}
        assert conn.call("GET", "/api/v3.0/shells?limit=1").status == 401
        assert conn.call("GET", "/api/v3.0/shells?limit=1", headers={"Authorization": "Bearer wrong"}).status == 401
        assert len(conn.call("GET", "/api/v3.0/shells?limit=1", headers=reader).json()["result"]) == 1  # type: ignore[index]


def test_shell_pages_match_the_applications(open_server: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """`GET /shells` with only limit and cursor is answered by the lane (no FastAPI routing); other forms
    (here a percent-encoded limit, an unknown parameter, a bad cursor) by the application: same pages."""
    routed: list[int] = []

    def counting(page: Page) -> StarletteResponse:
        routed.append(len(page.items))
        return paged_page(page)

    monkeypatch.setattr(shells, "paged_page", counting)
    with Connection(open_server.port) as conn:
        fast = conn.call("GET", "/api/v3.0/shells?limit=1")
        slow = conn.call("GET", "/api/v3.0/shells?limit=%31")
        assert fast.status == slow.status == 200 and fast.body == slow.body
        assert set(fast.headers) == set(slow.headers) == {"date", "server", "content-type", "content-length"}
        cursor = fast.json()["paging_metadata"]["cursor"]  # type: ignore[index]
        ids = [s["id"] for s in fast.json()["result"]]  # type: ignore[index]
        nxt = conn.call("GET", f"/api/v3.1/shells?cursor={cursor}&limit=1")
        assert nxt.body == conn.call("GET", f"/api/v3.1/shells?cursor={cursor}&limit=%31").body
        ids += [s["id"] for s in nxt.json()["result"]]  # type: ignore[index]
        assert ids == ["urn:example:aas:press-01", "urn:example:aas:press-02"]
        every = conn.call("GET", "/api/v3.0/shells")
        assert [s["id"] for s in every.json()["result"]] == ids  # type: ignore[index]
        assert every.json()["paging_metadata"] == {}  # type: ignore[index]
        assert conn.call("GET", "/api/v3.0/shells?limit=0").status == 400
        assert conn.call("GET", "/api/v3.0/shells?cursor=bm90LWEtY3Vyc29y").status == 400
        assert conn.call("GET", "/api/v3.0/shells?limit=1&limit=2").status == 200
        assert conn.call("GET", "/api/v3.0/shells?idShort=nothing").json()["result"] == []  # type: ignore[index]
    # the route built only the pages the lane left to it (the 400s are answered before)
    assert routed == [1, 1, 2, 0]  # `limit=1&limit=2`: the last one counts


def test_shell_pages_see_writes_at_once(open_server: Served) -> None:
    shell = {"modelType": "AssetAdministrationShell", "id": "urn:example:aas:fastpath-new", "idShort": "New",
             "assetInformation": {"assetKind": "Instance", "globalAssetId": "urn:example:asset:new"}}
    path = f"/api/v3.0/shells/{b64(shell['id'])}"  # type: ignore[arg-type]
    with Connection(open_server.port) as conn:
        assert conn.call("POST", "/api/v3.0/shells", orjson.dumps(shell)).status == 201
        try:
            assert shell["id"] in [s["id"] for s in conn.call("GET", "/api/v3.0/shells").json()["result"]]  # type: ignore[index]
        finally:
            assert conn.call("DELETE", path).status == 204
        assert shell["id"] not in [s["id"] for s in conn.call("GET", "/api/v3.0/shells").json()["result"]]  # type: ignore[index]
