"""The dashboards respect the server's auth: no page or data without a valid token, questionnaire
answers only with the writer role and from the server's own pages. Real server, plain HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from aas_models.ids import b64url_encode
from tests.server import RunningServer, run_server
from twin_server.auth import AuthConfig, hash_token
from twin_server.config import ServerConfig

READER = "reader-token-0123456789abcdef"
WRITER = "writer-token-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    auth = AuthConfig.model_validate({"tokens": [
        {"name": "dashboard", "role": "reader", "sha256": hash_token(READER)},
        {"name": "engineer", "role": "writer", "sha256": hash_token(WRITER)},
    ]})
    data: Path = tmp_path_factory.mktemp("ui-auth")
    with run_server(ServerConfig(data_dir=data, auth=auth)) as srv:
        yield srv


@contextmanager
def signed_in(srv: RunningServer, token: str) -> Iterator[httpx.Client]:
    origin = srv.base.removesuffix("/api/v3.0")
    with httpx.Client(base_url=origin, headers={"Origin": origin}) as client:
        r = client.post("/ui/login", data={"token": token, "next": "/ui/alarms"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/alarms"
        yield client


@pytest.mark.parametrize("path", ["/ui", "/ui/alarms", "/ui/adoption", "/ui/catalogue",
                                  "/ui/asset?id=" + b64url_encode("urn:x:aas:1")])
def test_pages_need_a_token(server: RunningServer, path: str) -> None:
    origin = server.base.removesuffix("/api/v3.0")
    r = httpx.get(origin + path)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    login = httpx.get(origin + r.headers["location"])
    assert login.status_code == 200 and 'name="token"' in login.text


def test_data_endpoints_need_a_token(server: RunningServer) -> None:
    origin = server.base.removesuffix("/api/v3.0")
    assert httpx.get(origin + "/ui/data/events").status_code == 401
    r = httpx.get(origin + "/ui/data/timeseries", params={"submodelId": b64url_encode("urn:x"), "idShortPath": "A"})
    assert r.status_code == 401


def test_a_wrong_token_does_not_sign_in(server: RunningServer) -> None:
    origin = server.base.removesuffix("/api/v3.0")
    r = httpx.post(origin + "/ui/login", data={"token": "nope-nope-nope-nope", "next": "/ui"},
                   headers={"Origin": origin})
    assert r.status_code == 303 and "bad=1" in r.headers["location"]
    assert "twinedge_ui_token" not in r.headers.get("set-cookie", "")


def test_reader_sees_pages_but_cannot_answer(server: RunningServer) -> None:
    with signed_in(server, READER) as client:
        cookie = client.cookies.jar
        assert any(c.name == "twinedge_ui_token" and c.path == "/ui" for c in cookie)
        page = client.get("/ui")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "twinedge demo" in page.text  # first-time empty state says what to do
        r = client.post("/ui/adoption/answers", data={"digital_records": "1"})
        assert r.status_code == 403
        assert client.get("/ui/data/timeseries", params={"submodelId": b64url_encode("urn:x"),
                                                         "idShortPath": "A.Value"}).status_code == 200


def test_writer_answers_from_the_servers_own_page_only(server: RunningServer) -> None:
    with signed_in(server, WRITER) as client:
        foreign = client.post("/ui/adoption/answers", data={"digital_records": "1"},
                              headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        bad = client.post("/ui/adoption/answers", data={"digital_records": "0.7"})
        assert bad.status_code == 400 and "digital_records" in bad.text
        ok = client.post("/ui/adoption/answers", data={"digital_records": "1"})
        assert ok.status_code == 303
        assert "1" in client.get("/ui/adoption").text


def test_bearer_header_works_without_the_cookie(server: RunningServer) -> None:
    origin = server.base.removesuffix("/api/v3.0")
    r = httpx.get(origin + "/ui/alarms", headers={"Authorization": f"Bearer {READER}"})
    assert r.status_code == 200
