"""The fast lane in front of the application (twin_server/fastlane.py), over real HTTP: CORS requests still
get CORS headers, element answers follow every write (also one made by another process on the same store),
and the routes' answers are the same bytes."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from tests.server import REPRESENTATIVE, RunningServer, run_server
from twin_server.config import ServerConfig

TIMEOUT = 10
SUBMODEL = "urn:example:sm:press-01:AllKinds"
ORIGIN = "https://dashboard.example"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("fastlane"), load=[REPRESENTATIVE], cors_origins=[ORIGIN])
    with run_server(config) as running:
        yield running


def element_url(server: RunningServer, path: str) -> str:
    return f"{server.base}/submodels/{b64(SUBMODEL)}/submodel-elements/{path}"


def test_cors_request_gets_cors_headers(server: RunningServer) -> None:
    url = element_url(server, "Temperature")
    plain = requests.get(url, timeout=TIMEOUT)
    cors = requests.get(url, headers={"Origin": ORIGIN}, timeout=TIMEOUT)
    assert plain.status_code == cors.status_code == 200
    assert cors.headers.get("access-control-allow-origin") == ORIGIN
    assert plain.content == cors.content


def test_answers_follow_writes(server: RunningServer) -> None:
    url = element_url(server, "Temperature")
    for value in ("21.5", "22.5"):
        assert requests.patch(url + "/$value", data=value, timeout=TIMEOUT).status_code == 204
        assert requests.get(url + "/$value", timeout=TIMEOUT).json() == {"Temperature": float(value)}
        assert requests.get(url, timeout=TIMEOUT).json()["value"] == value
    # The same answer with a query string, which the full application serves.
    assert requests.get(url, params={"level": "deep"}, timeout=TIMEOUT).json()["value"] == "22.5"


def test_write_by_another_process_is_seen(server: RunningServer) -> None:
    """Reads fetch the stored bytes every time: a change made beside this server (here straight into its
    SQLite file, as another replica's write would land) is answered at once, never a cached one."""
    url = element_url(server, "Temperature")
    requests.get(url, timeout=TIMEOUT).raise_for_status()  # answer cached for the stored version
    db_file = Path(server.config.data_dir) / "twins.db"
    with sqlite3.connect(db_file) as db:
        (body,) = db.execute("SELECT body FROM docs WHERE id = ?", (SUBMODEL,)).fetchone()
        doc = orjson.loads(body)
        element = next(e for e in doc["submodelElements"] if e["idShort"] == "Temperature")
        element["value"] = "99.5"
        db.execute("UPDATE docs SET body = ? WHERE id = ?", (orjson.dumps(doc), SUBMODEL))
    assert requests.get(url, timeout=TIMEOUT).json()["value"] == "99.5"
