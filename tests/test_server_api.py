"""The twin server over real HTTP (uvicorn on loopback), on both storage backends (SQLite, PostgreSQL).

One server per backend serves the whole module; every test starts from empty storage (the tables are
emptied directly) and loads what it needs through the API. Tests that need another configuration
(auth, restarts) start their own server on the same backing store.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aas_models.files import read_package
from tests.server import REPRESENTATIVE, RunningServer, run_server
from twin_server.auth import AuthConfig, JwtConfig, Role, TokenConfig, hash_token
from twin_server.config import ServerConfig

pytest_plugins = ("tests.pg",)

ENV: dict[str, list[dict[str, Any]]] = json.loads(REPRESENTATIVE.read_text(encoding="utf-8"))
SHELL1 = "urn:example:aas:press-01"
SHELL2 = "urn:example:aas:press-02"
ALL_KINDS = "urn:example:sm:press-01:AllKinds"
SECOND1 = "urn:example:sm:press-01:Second"
SECOND2 = "urn:example:sm:press-02:Second"
CD_TEMP = "https://example.com/Temperature"
CD_PRESSURE = "https://example.com/Pressure"
#: Small on purpose (the smallest the config allows is 1024); every fixture document fits under it.
MAX_BODY = 4096
TIMEOUT = 10


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def by_id(kind: str, ident: str) -> dict[str, Any]:
    return copy.deepcopy(next(doc for doc in ENV[kind] if doc["id"] == ident))


def submodel(ident: str, id_short: str = "Sm", elements: list[dict[str, Any]] | None = None,
             **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": ident, "idShort": id_short, "modelType": "Submodel", **extra}
    if elements is not None:
        doc["submodelElements"] = elements
    return doc


def prop(id_short: str | None, value: str, value_type: str = "xs:double") -> dict[str, Any]:
    element: dict[str, Any] = {"valueType": value_type, "value": value, "modelType": "Property"}
    if id_short is not None:
        element["idShort"] = id_short
    return element


def shell(ident: str, id_short: str, submodel_ids: Iterable[str] = ()) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": ident, "idShort": id_short, "modelType": "AssetAdministrationShell",
                           "assetInformation": {"assetKind": "Instance", "globalAssetId": f"{ident}:asset"}}
    refs = [{"type": "ModelReference", "keys": [{"type": "Submodel", "value": s}]} for s in submodel_ids]
    if refs:
        doc["submodels"] = refs
    return doc


AASX = "application/asset-administration-shell-package+xml"


def settle_after_server_error(status: int) -> None:
    """After a 5xx, give the server thread time to finish logging its traceback before this thread
    formats a failure: CPython 3.11 keeps ast.parse's recursion depth in interpreter-wide state, and
    both traceback formatting (the server's log) and pytest's failure report call ast.parse, so doing
    both at once in two threads can raise "SystemError: AST constructor recursion depth mismatch"
    (an INTERNALERROR of pytest instead of a test failure)."""
    if status >= 500:
        time.sleep(0.3)


# The client --------------------------------------------------------------------------------------


@dataclass
class Api:
    base: str
    session: requests.Session
    token: str | None = None

    def request(self, method: str, path: str, *, token: str | None = None, headers: dict[str, str] | None = None,
                **kwargs: Any) -> requests.Response:
        """`token` overrides the client's token; "" sends none. An explicit Authorization header wins."""
        sent = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer:
            sent.setdefault("Authorization", f"Bearer {bearer}")
        response = self.session.request(method, self.base + path, headers=sent, timeout=TIMEOUT, **kwargs)
        settle_after_server_error(response.status_code)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """The request must answer `status`; returns the parsed JSON body (None for 204)."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return None if status == 204 else response.json()

    def load_representative(self) -> None:
        for key, route in (("assetAdministrationShells", "/shells"), ("submodels", "/submodels"),
                           ("conceptDescriptions", "/concept-descriptions")):
            for doc in ENV[key]:
                self.ok("POST", route, 201, json=doc)

    def snapshot(self) -> bytes:
        """Everything stored, as bytes: equal snapshots mean nothing changed."""
        response = self.get("/serialization")
        assert response.status_code == 200, response.text
        return response.content


def assert_error(response: requests.Response, status: int, *mentions: str) -> str:
    """The answer is `status` with a body of exactly the Part 2 result format; returns the texts."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"messages"}, body
    messages = body["messages"]
    assert isinstance(messages, list) and messages, body
    for message in messages:
        assert set(message) == {"messageType", "text", "code", "timestamp"}, message
        assert message["code"] == str(status)
        assert message["messageType"] == ("Error" if status < 500 else "Exception")
        assert isinstance(message["text"], str) and message["text"]
        stamp = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
        assert stamp.tzinfo is not None
    text = " ".join(m["text"] for m in messages)
    for mention in mentions:
        assert mention in text, text
    return text


def assert_still_valid(api: Api) -> None:
    """What is stored is a valid environment in every serialization, and every submodel can be written
    back as read (no write path may store what a full PUT would refuse)."""
    for accept, fmt in (("application/json", "json"), ("application/xml", "xml"), (AASX, "aasx")):
        response = api.get("/serialization", headers={"Accept": accept})
        assert response.status_code == 200, f"{accept}: {response.text[:300]}"
        read_package(response.content, fmt, f"stored.{fmt}")  # type: ignore[arg-type]
    for route in ("shells", "submodels"):
        for doc in api.ok("GET", f"/{route}", params={"limit": 1000})["result"]:
            response = api.put(f"/{route}/{b64(doc['id'])}", doc)
            assert response.status_code == 204, f"{doc['id']}: {response.text[:300]}"


def walk(api: Api, path: str, limit: int, params: dict[str, Any] | None = None) -> tuple[list[Any], int]:
    """Every item of a paged list, following cursors; (items, pages)."""
    items: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        query: dict[str, Any] = {**(params or {}), "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        body = api.ok("GET", path, params=query)
        assert set(body) == {"paging_metadata", "result"}, body
        pages += 1
        items.extend(body["result"])
        cursor = body["paging_metadata"].get("cursor")
        if cursor is None:
            assert body["paging_metadata"] == {}
            return items, pages
        assert len(body["result"]) == limit
        assert pages < 1000


# Backends and servers ----------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    #: What to start a server with: `data_dir` (SQLite) or `db` (PostgreSQL) point at the backing store.
    config: ServerConfig
    #: Empties the backing store while servers keep running on it.
    reset: Callable[[], None]


def _sqlite_reset(path: Path) -> Callable[[], None]:
    def reset() -> None:
        if not path.exists():
            return
        with sqlite3.connect(path, timeout=10) as db:
            db.execute("DELETE FROM doc_keys")
            db.execute("DELETE FROM files")
            db.execute("DELETE FROM docs")

    return reset


def _postgres_drop(dsn: str) -> None:
    """A fresh schema (as tests/test_storage.py does): drop the tables; the server creates them again."""
    import psycopg

    from twin_server.storage.postgres import TABLES

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)} CASCADE")


def _postgres_reset(dsn: str) -> Callable[[], None]:
    def reset() -> None:
        import psycopg

        from twin_server.storage.postgres import TABLES

        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass('twin_docs')").fetchone()
            if exists is not None and exists[0] is not None:
                conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")

    return reset


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    # data_dir also holds the embedded time-series file, so the PostgreSQL servers get one too.
    data_dir = tmp_path_factory.mktemp(f"{request.param}-data")
    base = ServerConfig(max_body_bytes=MAX_BODY, data_dir=data_dir)
    if request.param == "sqlite":
        return Backend("sqlite", base, _sqlite_reset(data_dir / "twins.db"))
    dsn: str = request.getfixturevalue("postgres_dsn")
    _postgres_drop(dsn)
    return Backend("postgres", base.model_copy(update={"db": dsn}), _postgres_reset(dsn))


@pytest.fixture(scope="module")
def server(backend: Backend) -> Iterator[RunningServer]:
    with run_server(backend.config) as running:
        yield running


@pytest.fixture
def api(backend: Backend, server: RunningServer) -> Iterator[Api]:
    backend.reset()
    with requests.Session() as session:
        yield Api(server.base, session)


@pytest.fixture
def loaded(api: Api) -> Api:
    api.load_representative()
    return api


# CRUD of identifiables ---------------------------------------------------------------------------

IDENTIFIABLES = {
    "shells": by_id("assetAdministrationShells", SHELL1),
    "submodels": by_id("submodels", ALL_KINDS),
    "concept-descriptions": by_id("conceptDescriptions", CD_PRESSURE),
}


@pytest.mark.parametrize("route", list(IDENTIFIABLES))
def test_identifiable_crud(api: Api, route: str) -> None:
    doc = copy.deepcopy(IDENTIFIABLES[route])
    path = f"/{route}/{b64(doc['id'])}"
    assert_error(api.get(path), 404)

    created = api.ok("POST", f"/{route}", 201, json=doc)
    assert created == doc
    assert api.ok("GET", path) == doc

    changed = {**doc, "idShort": "Renamed"}
    assert api.put(path, changed).status_code == 204
    assert api.ok("GET", path) == changed

    assert_error(api.post(f"/{route}", doc), 409, doc["id"])
    assert api.ok("GET", path) == changed

    other = {**changed, "id": "urn:example:other"}
    assert_error(api.put(path, other), 400, "urn:example:other")
    assert_error(api.get(f"/{route}/{b64('urn:example:other')}"), 404)
    assert api.ok("GET", path) == changed

    assert_error(api.put(f"/{route}/{b64('urn:example:missing')}", {**doc, "id": "urn:example:missing"}), 404)

    assert api.delete(path).status_code == 204
    assert_error(api.get(path), 404)
    assert_error(api.delete(path), 404)
    assert api.ok("GET", f"/{route}")["result"] == []


def test_odd_identifiers(api: Api) -> None:
    """Ids with non-ASCII text and URL syntax travel base64url-encoded and come back unchanged."""
    for ident in ("https://example.com/ids/sm/1?x=ä&y=/#frag", "urn:예시:프레스:1", "urn:x:" + "z" * 500):
        doc = submodel(ident, "Odd")
        assert api.ok("POST", "/submodels", 201, json=doc) == doc
        assert api.ok("GET", f"/submodels/{b64(ident)}") == doc
        assert ids_of(api, "/submodels", idShort="Odd")[-1] == ident
        assert api.delete(f"/submodels/{b64(ident)}").status_code == 204


def test_patch_submodel_replaces_it(loaded: Api) -> None:
    path = f"/submodels/{b64(SECOND1)}"
    changed = submodel(SECOND1, "Second", [prop("A", "7")])
    assert loaded.patch(path, changed).status_code == 204
    assert loaded.ok("GET", path) == changed


# Submodel elements -------------------------------------------------------------------------------

SM = f"/submodels/{b64(ALL_KINDS)}"
ELEMENTS = f"{SM}/submodel-elements"


def test_post_element_top_level_and_into_collection(loaded: Api) -> None:
    new = prop("Flow", "3.5")
    assert loaded.ok("POST", ELEMENTS, 201, json=new) == new
    assert loaded.ok("GET", f"{ELEMENTS}/Flow") == new
    assert_error(loaded.post(ELEMENTS, new), 409, "Flow")

    inner = prop("Level", "0.75")
    assert loaded.ok("POST", f"{ELEMENTS}/Hydraulics.Pump", 201, json=inner) == inner
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics.Pump.Level") == inner
    assert_error(loaded.post(f"{ELEMENTS}/Hydraulics.Pump", inner), 409)

    assert loaded.ok("POST", f"{ELEMENTS}/Readings", 201, json=prop(None, "3.0")) == prop(None, "3.0")
    assert loaded.ok("GET", f"{ELEMENTS}/Readings[2]") == prop(None, "3.0")
    # List items have no idShort (AASd-120), and a list of doubles takes no strings.
    assert_error(loaded.post(f"{ELEMENTS}/Readings", prop("Named", "4.0")), 400)
    assert_error(loaded.post(f"{ELEMENTS}/Readings", prop(None, "x", "xs:string")), 400)
    # A Property holds no elements; an unknown parent is 404.
    assert_error(loaded.post(f"{ELEMENTS}/Temperature", inner), 400)
    assert_error(loaded.post(f"{ELEMENTS}/Nope", inner), 404)
    # An element that is no valid element is 400 and names what is wrong.
    assert_error(loaded.post(ELEMENTS, {"idShort": "Bad", "modelType": "Property"}), 400, "valueType")


def test_get_elements_by_path(loaded: Api) -> None:
    assert loaded.ok("GET", f"{ELEMENTS}/Readings%5B1%5D") == prop(None, "2.0")
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics.Pressure") == prop("Pressure", "180.2")
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics.Pump.Speed") == prop("Speed", "1450", "xs:int")
    assert loaded.ok("GET", f"{ELEMENTS}/Readings[1]") == prop(None, "2.0")
    assert loaded.ok("GET", f"{ELEMENTS}/Ram.Stroke")["value"] == "800"
    for missing in ("Readings[2]", "Hydraulics.Nope", "Nope", "Temperature.Child", "Readings.Child"):
        assert_error(loaded.get(f"{ELEMENTS}/{missing}"), 404)
    for malformed in ("Readings[x]", "[0]", "Hydraulics..Pump", "1abc"):
        assert_error(loaded.get(f"{ELEMENTS}/{malformed}"), 400)


def test_put_and_delete_element(loaded: Api) -> None:
    changed = {**prop("Pressure", "99.5"), "category": "VARIABLE"}
    assert loaded.put(f"{ELEMENTS}/Hydraulics.Pressure", changed).status_code == 204
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics.Pressure") == changed
    before = loaded.ok("GET", SM)
    assert_error(loaded.put(f"{ELEMENTS}/Hydraulics.Pressure", prop("Other", "1")), 400, "Other")
    assert_error(loaded.put(f"{ELEMENTS}/Hydraulics.Nope", prop("Nope", "1")), 404)
    assert loaded.ok("GET", SM) == before

    assert loaded.put(f"{ELEMENTS}/Readings[0]", prop(None, "10.0")).status_code == 204
    assert loaded.ok("GET", f"{ELEMENTS}/Readings[0]") == prop(None, "10.0")

    assert loaded.delete(f"{ELEMENTS}/Hydraulics.Pump").status_code == 204
    assert_error(loaded.get(f"{ELEMENTS}/Hydraulics.Pump"), 404)
    assert_error(loaded.get(f"{ELEMENTS}/Hydraulics.Pump.Speed"), 404)
    assert_error(loaded.delete(f"{ELEMENTS}/Hydraulics.Pump"), 404)
    assert loaded.delete(f"{ELEMENTS}/Readings[0]").status_code == 204
    assert loaded.ok("GET", f"{ELEMENTS}/Readings[0]") == prop(None, "2.0")


def test_property_value_is_typed(loaded: Api) -> None:
    assert loaded.ok("GET", f"{ELEMENTS}/Temperature/$value") == {"Temperature": 41.5}
    assert loaded.ok("GET", f"{ELEMENTS}/CycleCount/$value") == {"CycleCount": 1234}
    assert loaded.ok("GET", f"{ELEMENTS}/Running/$value") == {"Running": True}
    assert loaded.ok("GET", f"{ELEMENTS}/Readings[1]/$value") == 2.0

    assert loaded.patch(f"{ELEMENTS}/Temperature/$value", 42.25).status_code == 204
    value = loaded.ok("GET", f"{ELEMENTS}/Temperature/$value")
    assert value == {"Temperature": 42.25} and isinstance(value["Temperature"], float)
    assert loaded.ok("GET", f"{ELEMENTS}/Temperature")["value"] == "42.25"

    # The form GET returns is accepted as well.
    assert loaded.patch(f"{ELEMENTS}/CycleCount/$value", {"CycleCount": 1235}).status_code == 204
    value = loaded.ok("GET", f"{ELEMENTS}/CycleCount/$value")
    assert value == {"CycleCount": 1235} and isinstance(value["CycleCount"], int)

    before = loaded.ok("GET", SM)
    assert_error(loaded.patch(f"{ELEMENTS}/Temperature/$value", "abc"), 400, "xs:double")
    assert_error(loaded.patch(f"{ELEMENTS}/CycleCount/$value", 1.5), 400, "xs:long")
    assert_error(loaded.patch(f"{ELEMENTS}/Running/$value", "maybe"), 400)
    assert_error(loaded.patch(f"{ELEMENTS}/Temperature/$value", {"nested": 1}), 400)
    assert loaded.ok("GET", SM) == before


def test_collection_value(loaded: Api) -> None:
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics/$value") == {
        "Hydraulics": {"Pressure": 180.2, "Pump": {"Speed": 1450}}}
    assert loaded.patch(f"{ELEMENTS}/Hydraulics/$value",
                        {"Hydraulics": {"Pressure": 190.5, "Pump": {"Speed": 1500}}}).status_code == 204
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics/$value") == {
        "Hydraulics": {"Pressure": 190.5, "Pump": {"Speed": 1500}}}
    assert loaded.patch(f"{ELEMENTS}/Hydraulics/$value", {"Pressure": 191}).status_code == 204
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics.Pressure/$value") == {"Pressure": 191.0}

    before = loaded.ok("GET", SM)
    # Atomic: the good Pressure is not stored when Speed is refused.
    assert_error(loaded.patch(f"{ELEMENTS}/Hydraulics/$value", {"Pressure": 1.0, "Pump": {"Speed": "fast"}}), 400,
                 "Speed")
    assert_error(loaded.patch(f"{ELEMENTS}/Hydraulics/$value", {"Pressure": 1.0, "Nope": 2}), 400, "Nope")
    assert loaded.ok("GET", SM) == before


def test_metadata_reference_and_path(loaded: Api) -> None:
    metadata = loaded.ok("GET", f"{ELEMENTS}/Temperature/$metadata")
    assert metadata["valueType"] == "xs:double" and "semanticId" in metadata and "value" not in metadata
    assert "value" not in loaded.ok("GET", f"{ELEMENTS}/Hydraulics/$metadata")
    sm_metadata = loaded.ok("GET", f"{SM}/$metadata")
    assert sm_metadata["id"] == ALL_KINDS and "submodelElements" not in sm_metadata

    assert loaded.ok("GET", f"{SM}/$reference") == {
        "type": "ModelReference", "keys": [{"type": "Submodel", "value": ALL_KINDS}]}
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics.Pump.Speed/$reference") == {
        "type": "ModelReference",
        "keys": [{"type": "Submodel", "value": ALL_KINDS},
                 {"type": "SubmodelElementCollection", "value": "Hydraulics"},
                 {"type": "SubmodelElementCollection", "value": "Pump"},
                 {"type": "Property", "value": "Speed"}]}
    assert loaded.ok("GET", f"{ELEMENTS}/Readings[1]/$reference")["keys"][1:] == [
        {"type": "SubmodelElementList", "value": "Readings"}, {"type": "Property", "value": "1"}]

    paths = loaded.ok("GET", f"{SM}/$path")
    assert {"Temperature", "Hydraulics", "Hydraulics.Pressure", "Hydraulics.Pump", "Hydraulics.Pump.Speed",
            "Readings", "Readings[0]", "Readings[1]", "Ram.Stroke", "Monitors.Since"} <= set(paths)
    assert len(paths) == len(set(paths))
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics/$path") == [
        "Hydraulics", "Hydraulics.Pressure", "Hydraulics.Pump", "Hydraulics.Pump.Speed"]
    assert loaded.ok("GET", f"{ELEMENTS}/Hydraulics/$path", params={"level": "core"}) == [
        "Hydraulics", "Hydraulics.Pressure", "Hydraulics.Pump"]
    assert_error(loaded.get(f"{ELEMENTS}/Temperature/$path"), 400)


def test_level_core_and_extent(loaded: Api) -> None:
    deep = loaded.ok("GET", SM)
    core = loaded.ok("GET", SM, params={"level": "core"})
    hydraulics = next(e for e in core["submodelElements"] if e["idShort"] == "Hydraulics")
    assert "value" not in hydraulics
    assert next(e for e in deep["submodelElements"] if e["idShort"] == "Hydraulics")["value"]
    assert next(e for e in core["submodelElements"] if e["idShort"] == "Temperature")["value"] == "41.5"

    element_core = loaded.ok("GET", f"{ELEMENTS}/Hydraulics", params={"level": "core"})
    assert [c["idShort"] for c in element_core["value"]] == ["Pressure", "Pump"]
    assert "value" not in element_core["value"][1]

    def blob(doc: dict[str, Any]) -> dict[str, Any]:
        return next(e for e in doc["submodelElements"] if e["idShort"] == "Snapshot")

    assert blob(deep)["value"] == "AAECAwQ="
    without = loaded.ok("GET", SM, params={"extent": "withoutBlobValue"})
    assert "value" not in blob(without) and blob(without)["contentType"] == "application/octet-stream"
    assert "value" not in loaded.ok("GET", f"{ELEMENTS}/Snapshot", params={"extent": "withoutBlobValue"})
    assert loaded.ok("GET", f"{ELEMENTS}/Snapshot")["value"] == "AAECAwQ="
    assert_error(loaded.get(SM, params={"level": "shallow"}), 400)
    assert_error(loaded.get(SM, params={"extent": "everything"}), 400)


@pytest.mark.parametrize(("element", "value"), [
    ("Designation", [{"en": "\u0000"}]),
    ("Designation", [{"en": ""}]),
    ("Designation", [{"en": "x" * 1100}]),
    ("Designation", []),
    ("Manual", {"contentType": "", "value": "/aasx/files/manual.pdf"}),
    ("Manual", {"contentType": "\u0001"}),
    ("Manual", {"value": "x" * 2100}),
    ("Snapshot", {"value": "not base64!"}),
    ("Snapshot", {"contentType": "no content type"}),
], ids=["mlp-nul", "mlp-empty-text", "mlp-too-long", "mlp-empty-list", "file-empty-type", "file-control-type",
        "file-too-long", "blob-not-base64", "blob-bad-type"])
def test_value_patch_cannot_store_what_put_refuses(loaded: Api, element: str, value: Any) -> None:
    before = loaded.snapshot()
    assert_error(loaded.patch(f"{ELEMENTS}/{element}/$value", value), 400, element)
    assert loaded.snapshot() == before
    assert_still_valid(loaded)


@pytest.mark.parametrize(("element", "value"), [
    ("Manual", {"unknown": "x"}),
    ("Snapshot", {"valeu": "AAECAwQ="}),
    ("Ram", {"statement": {"Stroke": 1.0}}),
])
def test_value_patch_refuses_unknown_members(loaded: Api, element: str, value: Any) -> None:
    before = loaded.snapshot()
    assert_error(loaded.patch(f"{ELEMENTS}/{element}/$value", value), 400)
    assert loaded.snapshot() == before


def test_blob_value_must_be_base64(loaded: Api) -> None:
    blob = {"idShort": "Raw", "contentType": "application/octet-stream", "value": "a", "modelType": "Blob"}
    before = loaded.snapshot()
    assert_error(loaded.post("/submodels", submodel("urn:example:blob", "Blobs", [blob])), 400, "Raw")
    assert_error(loaded.post(ELEMENTS, blob), 400)
    assert_error(loaded.put(f"{ELEMENTS}/Snapshot", {**blob, "idShort": "Snapshot"}), 400)
    assert loaded.snapshot() == before


@pytest.mark.parametrize("target", ["thumbnail", "attachment"])
def test_uploads_keep_stored_data_valid(loaded: Api, target: str) -> None:
    path = (f"/shells/{b64(SHELL1)}/asset-information/thumbnail" if target == "thumbnail"
            else f"{ELEMENTS}/Manual/attachment")
    for file_name, content_type in (("bad\x08name\x19.png", "image/png"), ("ok.png", "not a content type")):
        before = loaded.snapshot()
        response = loaded.request("PUT", path, files={"file": (file_name, b"\x89PNG data", content_type)},
                                  data={"fileName": file_name})
        assert response.status_code in (204, 400), response.text
        if response.status_code == 400:
            assert_error(response, 400)
            assert loaded.snapshot() == before
        assert_still_valid(loaded)


def test_uploads_round_trip(loaded: Api) -> None:
    thumbnail = f"/shells/{b64(SHELL1)}/asset-information/thumbnail"
    response = loaded.request("PUT", thumbnail, files={"file": ("pic.png", b"\x89PNG fake", "image/png")})
    assert response.status_code == 204, response.text
    got = loaded.get(thumbnail)
    assert got.status_code == 200 and got.content == b"\x89PNG fake" and got.headers["content-type"] == "image/png"
    attachment = f"{ELEMENTS}/Manual/attachment"
    response = loaded.request("PUT", attachment, files={"file": ("manual.pdf", b"%PDF-1.7", "application/pdf")})
    assert response.status_code == 204, response.text
    assert loaded.get(attachment).content == b"%PDF-1.7"
    assert_error(loaded.request("PUT", f"{ELEMENTS}/Temperature/attachment",
                                files={"file": ("x.pdf", b"%PDF", "application/pdf")}), 400)
    assert loaded.delete(attachment).status_code == 204
    assert_error(loaded.get(attachment), 404)
    assert_still_valid(loaded)


@contextlib.contextmanager
def failing_file_store(backend: Backend) -> Iterator[None]:
    """Every write to the stored files fails (a trigger in the real database), as a full disk or a dropped
    connection would make it fail, while the documents can still be written."""
    if backend.name == "sqlite":
        path = backend.config.data_dir / "twins.db"
        with sqlite3.connect(path, timeout=10) as db:
            for event in ("INSERT", "DELETE"):
                db.execute(f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON files "
                           "BEGIN SELECT RAISE(ABORT, 'file store failing (test)'); END")
        try:
            yield
        finally:
            with sqlite3.connect(path, timeout=10) as db:
                db.execute("DROP TRIGGER refuse_insert")
                db.execute("DROP TRIGGER refuse_delete")
        return
    import psycopg

    with psycopg.connect(str(backend.config.db), autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION twin_test_refuse() RETURNS trigger AS "
                     "$$ BEGIN RAISE EXCEPTION 'file store failing (test)'; END $$ LANGUAGE plpgsql")
        conn.execute("CREATE TRIGGER twin_test_refuse BEFORE INSERT OR UPDATE OR DELETE ON twin_files "
                     "FOR EACH ROW EXECUTE FUNCTION twin_test_refuse()")
    try:
        yield
    finally:
        with psycopg.connect(str(backend.config.db), autocommit=True) as conn:
            conn.execute("DROP TRIGGER twin_test_refuse ON twin_files")


@pytest.mark.parametrize("target", ["thumbnail", "attachment"])
def test_an_upload_the_file_store_refuses_changes_nothing(backend: Backend, loaded: Api, target: str) -> None:
    """Document and file are written in one transaction: when storing the file fails, the document does
    not name a file that is not there (and a failed removal keeps both)."""
    path = (f"/shells/{b64(SHELL1)}/asset-information/thumbnail" if target == "thumbnail"
            else f"{ELEMENTS}/Manual/attachment")
    upload = {"file": ("first.pdf", b"%PDF-1.7 first", "application/pdf")}
    assert loaded.request("PUT", path, files=upload).status_code == 204
    before = loaded.snapshot()
    with failing_file_store(backend):
        response = loaded.request("PUT", path, files={"file": ("second.pdf", b"%PDF-1.7 second", "application/pdf")})
        assert_error(response, 500)
        assert loaded.snapshot() == before
        assert_error(loaded.delete(path), 500)
        assert loaded.snapshot() == before
    got = loaded.get(path)
    assert got.status_code == 200 and got.content == b"%PDF-1.7 first"
    assert loaded.delete(path).status_code == 204
    assert_error(loaded.delete(path), 404)
    assert_still_valid(loaded)


# Value-only bulk write ---------------------------------------------------------------------------


def test_bulk_value_patch_is_typed_and_stored(loaded: Api) -> None:
    update = {"Temperature": 55.5, "CycleCount": 4321, "Running": False, "Hydraulics": {"Pressure": 200.0}}
    assert loaded.patch(f"{SM}/$value", update).status_code == 204
    value = loaded.ok("GET", f"{SM}/$value")
    assert value["Temperature"] == 55.5 and isinstance(value["Temperature"], float)
    assert value["CycleCount"] == 4321 and isinstance(value["CycleCount"], int)
    assert value["Running"] is False
    assert value["Hydraulics"] == {"Pressure": 200.0, "Pump": {"Speed": 1450}}
    stored = {e["idShort"]: e for e in loaded.ok("GET", SM)["submodelElements"]}
    assert (stored["Temperature"]["value"], stored["CycleCount"]["value"], stored["Running"]["value"]) == (
        "55.5", "4321", "false")


@pytest.mark.parametrize(("target", "update", "mention"), [
    (SECOND1, {"A": 2.5, "B": "abc"}, "abc"),
    (ALL_KINDS, {"Temperature": "abc", "CycleCount": 5}, "xs:double"),
    (ALL_KINDS, {"Temperature": 60.0, "CycleCount": 5, "Unknown": 1}, "Unknown"),
    (ALL_KINDS, {"Temperature": 60.0, "CycleCount": "five"}, "xs:long"),
    (ALL_KINDS, {"Temperature": 60.0, "Running": True, "Hydraulics": {"Pump": {"Speed": 1e30}}}, "Speed"),
    (ALL_KINDS, {"Temperature": 60.0, "Designation": "not a list"}, "Designation"),
    (ALL_KINDS, {"Temperature": 60.0, "Reset": 1}, "Reset"),
    (ALL_KINDS, [1, 2, 3], "idShort"),
])
def test_bulk_value_patch_is_atomic(loaded: Api, target: str, update: Any, mention: str) -> None:
    path = f"/submodels/{b64(target)}"
    before = loaded.ok("GET", path)
    values_before = loaded.ok("GET", f"{path}/$value")
    assert_error(loaded.patch(f"{path}/$value", update), 400, mention)
    assert loaded.ok("GET", path) == before
    assert loaded.ok("GET", f"{path}/$value") == values_before


# Pagination --------------------------------------------------------------------------------------


def test_pagination_of_submodels(api: Api) -> None:
    created = [f"urn:example:sm:page:{i:02d}" for i in range(25)]
    for ident in created:
        api.ok("POST", "/submodels", 201, json=submodel(ident, f"P{ident[-2:]}"))
    first, pages = walk(api, "/submodels", 7)
    ids = [doc["id"] for doc in first]
    assert sorted(ids) == sorted(created) and len(ids) == 25
    assert pages == 4
    assert ids == created  # storage order is creation order
    again, _ = walk(api, "/submodels", 7)
    assert [doc["id"] for doc in again] == ids

    refs, _ = walk(api, "/submodels/$reference", 7)
    assert [r["keys"][0]["value"] for r in refs] == ids
    metadata, _ = walk(api, "/submodels/$metadata", 10)
    assert [m["id"] for m in metadata] == ids

    exact = api.ok("GET", "/submodels", params={"limit": 25})
    assert len(exact["result"]) == 25 and exact["paging_metadata"] == {}

    for garbage in ("garbage!", b64("seq:abc"), b64("nope"), "x" * 300):
        assert_error(api.get("/submodels", params={"limit": 7, "cursor": garbage}), 400, "cursor")
    for bad_limit in ("0", "-1", "abc", "1.5", "100001"):
        assert_error(api.get("/submodels", params={"limit": bad_limit}), 400, "limit")


def test_pagination_of_shells_and_concept_descriptions(api: Api) -> None:
    shells = [f"urn:example:aas:page:{i}" for i in range(9)]
    for ident in shells:
        api.ok("POST", "/shells", 201, json=shell(ident, f"S{ident[-1]}"))
    items, pages = walk(api, "/shells", 4)
    assert [s["id"] for s in items] == shells and pages == 3
    refs, _ = walk(api, "/shells/$reference", 4)
    assert [r["keys"][0]["value"] for r in refs] == shells
    cds = [f"urn:example:cd:{i}" for i in range(5)]
    for ident in cds:
        api.ok("POST", "/concept-descriptions", 201, json={"id": ident, "modelType": "ConceptDescription"})
    items, pages = walk(api, "/concept-descriptions", 2)
    assert [c["id"] for c in items] == cds and pages == 3


def test_pagination_of_elements_and_submodel_refs(api: Api) -> None:
    elements = [prop(f"E{i:02d}", str(i)) for i in range(11)]
    api.ok("POST", "/submodels", 201, json=submodel(ALL_KINDS, "Big", elements))
    items, pages = walk(api, f"{SM}/submodel-elements", 3)
    assert items == elements and pages == 4
    values, _ = walk(api, f"{SM}/submodel-elements/$value", 3)
    assert values == [{f"E{i:02d}": float(i)} for i in range(11)]
    metadata, _ = walk(api, f"{SM}/submodel-elements/$metadata", 5)
    assert [m["idShort"] for m in metadata] == [e["idShort"] for e in elements]
    refs, _ = walk(api, f"{SM}/submodel-elements/$reference", 4)
    assert [r["keys"][-1]["value"] for r in refs] == [e["idShort"] for e in elements]
    paths, _ = walk(api, f"{SM}/submodel-elements/$path", 4)
    assert paths == [e["idShort"] for e in elements]
    assert_error(api.get(f"{SM}/submodel-elements", params={"cursor": "garbage"}), 400, "cursor")
    assert_error(api.get(f"{SM}/submodel-elements", params={"cursor": b64("i:x")}), 400, "cursor")

    targets = [f"urn:example:sm:ref:{i}" for i in range(5)]
    api.ok("POST", "/shells", 201, json=shell(SHELL1, "Refs", targets))
    refs, pages = walk(api, f"/shells/{b64(SHELL1)}/submodel-refs", 2)
    assert [r["keys"][0]["value"] for r in refs] == targets and pages == 3
    assert_error(api.get(f"/shells/{b64(SHELL1)}/submodel-refs", params={"cursor": "%%%"}), 400)


# Filters -----------------------------------------------------------------------------------------


def ids_of(api: Api, path: str, **params: Any) -> list[str]:
    return [item["id"] for item in api.ok("GET", path, params=params)["result"]]


def test_shell_filters(loaded: Api) -> None:
    assert ids_of(loaded, "/shells", idShort="Press01") == [SHELL1]
    assert ids_of(loaded, "/shells", idShort="Press99") == []
    serial = b64(json.dumps({"name": "serialNumber", "value": "SN-0001"}))
    assert ids_of(loaded, "/shells", assetIds=serial) == [SHELL1]
    global_id = b64(json.dumps({"name": "globalAssetId", "value": "urn:example:asset:press-02"}))
    assert ids_of(loaded, "/shells", assetIds=global_id) == [SHELL2]
    # Several assetIds must all match.
    assert ids_of(loaded, "/shells", assetIds=[serial, global_id]) == []
    assert ids_of(loaded, "/shells", assetIds=b64(json.dumps({"name": "serialNumber", "value": "SN-9"}))) == []
    refs = loaded.ok("GET", "/shells/$reference", params={"idShort": "Press02"})["result"]
    assert refs == [{"type": "ModelReference", "keys": [{"type": "AssetAdministrationShell", "value": SHELL2}]}]
    assert_error(loaded.get("/shells", params={"assetIds": b64("not json")}), 400, "assetIds")
    assert_error(loaded.get("/shells", params={"assetIds": b64(json.dumps({"name": 1}))}), 400, "assetIds")


def test_submodel_and_concept_description_filters(loaded: Api) -> None:
    semantic = b64("https://example.com/sm/AllKinds/1/0")
    assert ids_of(loaded, "/submodels", semanticId=semantic) == [ALL_KINDS]
    assert ids_of(loaded, "/submodels", semanticId=b64("https://example.com/none")) == []
    assert ids_of(loaded, "/submodels", idShort="Second") == [SECOND1, SECOND2]
    assert ids_of(loaded, "/submodels", idShort="Second", semanticId=semantic) == []
    assert loaded.ok("GET", "/submodels/$value", params={"idShort": "Second"})["result"] == [
        {"A": 1.5, "B": 1.5}, {"A": 1.5}]

    assert ids_of(loaded, "/concept-descriptions", isCaseOf=b64("0173-1#02-AAA123#001")) == [CD_PRESSURE]
    reference = {"type": "ExternalReference", "keys": [{"type": "GlobalReference", "value": "0173-1#02-AAA123#001"}]}
    assert ids_of(loaded, "/concept-descriptions", isCaseOf=b64(json.dumps(reference))) == [CD_PRESSURE]
    assert ids_of(loaded, "/concept-descriptions", isCaseOf=b64("0173-1#02-ZZZ999#001")) == []
    assert ids_of(loaded, "/concept-descriptions", idShort="Temperature") == [CD_TEMP]


def test_filter_values_must_be_base64url(loaded: Api) -> None:
    """Not base64url at all is a 400 naming the parameter, not a filter for some other (empty) text."""
    wrong = []
    for path, name in (("/submodels", "semanticId"), ("/submodels/$metadata", "semanticId"), ("/shells", "assetIds"),
                       ("/concept-descriptions", "isCaseOf"), ("/concept-descriptions", "dataSpecificationRef")):
        for garbage in ("***", "a", "%%%", "@@@@", "ab!cd"):
            response = loaded.get(path, params={name: garbage})
            if response.status_code != 400:
                wrong.append(f"{path}?{name}={garbage}: {response.status_code}")
            else:
                assert_error(response, 400, name)
    assert wrong == []


def test_nul_characters_in_ids_and_filters(loaded: Api) -> None:
    """No stored id can hold U+0000 (AASd-130), so such ids are simply not found, on every backend
    (PostgreSQL text cannot hold U+0000 at all)."""
    nul = "urn:example:a\x00b"
    for path in (f"/submodels/{b64(nul)}", f"/shells/{b64(nul)}", f"/concept-descriptions/{b64(nul)}",
                 f"/shells/{b64(SHELL1)}/submodels/{b64(nul)}"):
        response = loaded.get(path)
        assert response.status_code in (400, 404), f"{path}: {response.status_code} {response.text[:200]}"
        assert_error(response, response.status_code)
    for path, params in (("/submodels", {"idShort": "a\x00"}), ("/submodels", {"semanticId": b64(nul)}),
                         ("/concept-descriptions", {"isCaseOf": b64(nul)}),
                         ("/shells", {"assetIds": b64(json.dumps({"name": "serialNumber", "value": nul}))}),
                         ("/serialization", {"aasIds": b64(nul)})):
        response = loaded.get(path, params=params)
        if response.status_code == 200:
            assert response.json().get("result", None) == [], response.text
        else:
            assert response.status_code in (400, 404), f"{path} {params}: {response.status_code} {response.text[:200]}"
            assert_error(response, response.status_code)


# Errors ------------------------------------------------------------------------------------------


def test_error_bodies(loaded: Api) -> None:
    assert_error(loaded.get("/shells/not*base64"), 400, "aasIdentifier")
    assert_error(loaded.get("/submodels/a"), 400)
    assert_error(loaded.get(f"/submodels/{b64(ALL_KINDS)}.x/$value"), 400)
    assert_error(loaded.get("/concept-descriptions/_w"), 400)
    assert_error(loaded.get(f"/shells/{b64('urn:example:none')}"), 404, "urn:example:none")
    assert_error(loaded.get(f"/submodels/{b64('urn:example:none')}/submodel-elements"), 404)
    assert_error(loaded.get("/concept-descriptions", params={"limit": "abc"}), 400, "limit")
    assert_error(loaded.get("/nothing-here"), 404)
    assert_error(loaded.request("GET", "/../nothing"), 404)
    wrong_method = loaded.request("PATCH", "/shells")
    assert_error(wrong_method, 405)
    assert "GET" in wrong_method.headers.get("allow", "")
    assert_error(loaded.request("DELETE", "/description"), 405)
    assert_error(loaded.request("POST", f"/shells/{b64(SHELL1)}"), 405)

    before = loaded.snapshot()
    assert_error(loaded.request("POST", "/submodels", data=b'{"id": "urn:x", '), 400, "JSON")
    assert_error(loaded.request("POST", "/submodels", data=b""), 400)
    assert_error(loaded.request("POST", "/shells", data=b"\xff\xfe"), 400)
    assert_error(loaded.post("/submodels", [1, 2]), 400)
    invalid = submodel("urn:example:invalid", "Bad", [{"idShort": "p", "modelType": "Property"}])
    assert_error(loaded.post("/submodels", invalid), 400, "valueType")
    assert_error(loaded.post("/submodels", {"id": "urn:example:x", "modelType": "Submodel", "idShort": "1 bad"}),
                 400, "idShort")
    assert_error(loaded.post("/shells", {"id": "urn:example:s", "modelType": "AssetAdministrationShell"}), 400,
                 "assetInformation")
    assert_error(loaded.post("/concept-descriptions", {"id": "", "modelType": "ConceptDescription"}), 400)
    assert loaded.snapshot() == before


def test_body_size_limit(loaded: Api, server: RunningServer) -> None:
    before = loaded.snapshot()
    big = submodel("urn:example:big", "Big", [prop(f"P{i:04d}", str(i)) for i in range(200)])
    body = json.dumps(big).encode()
    assert len(body) > MAX_BODY
    just_fits = json.dumps(submodel("urn:example:fits", "Fits", [prop("P", "1")])).encode().ljust(MAX_BODY)
    routes = [("POST", "/submodels"), ("PUT", f"/submodels/{b64(SECOND1)}"),
              ("PATCH", f"/submodels/{b64(SECOND1)}/$value"), ("POST", f"{ELEMENTS}/Hydraulics"),
              ("PUT", f"/shells/{b64(SHELL1)}")]

    def chunks(data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), 1024):
            yield data[start:start + 1024]

    for method, path in routes:
        # A fresh connection each time: the server may close one whose body it did not read.
        with_length = requests.request(method, server.base + path, data=body, timeout=TIMEOUT,
                                       headers={"Content-Type": "application/json"})
        assert_error(with_length, 413, str(MAX_BODY))
        chunked = requests.request(method, server.base + path, data=chunks(body), timeout=TIMEOUT,
                                   headers={"Content-Type": "application/json"})
        assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
        assert_error(chunked, 413, str(MAX_BODY))
    assert loaded.snapshot() == before
    assert_error(loaded.get(f"/submodels/{b64('urn:example:big')}"), 404)

    # A body of exactly the limit is accepted (then judged on its content).
    assert len(just_fits) == MAX_BODY
    response = loaded.request("POST", "/submodels", data=just_fits, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text


# Auth --------------------------------------------------------------------------------------------

READER = "reader-token-0123456789abcdef"
WRITER = "writer-token-0123456789abcdef"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return (rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=2048))


def sign(key: rsa.RSAPrivateKey, roles: list[str], expires_in: float) -> str:
    now = int(time.time())
    claims = {"sub": "tester", "roles": roles, "iat": now - 60, "exp": now + int(expires_in)}
    return jwt.encode(claims, key, algorithm="RS256")


@pytest.fixture
def auth_api(backend: Backend, api: Api, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
             tmp_path: Path) -> Iterator[Api]:
    """A second server on the same (emptied) store, with tokens and a JWT key; loaded with REPRESENTATIVE."""
    pem = tmp_path / "jwt.pem"
    pem.write_bytes(rsa_keys[0].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    auth = AuthConfig(tokens=[TokenConfig(name="dashboard", role=Role.READER, sha256=hash_token(READER)),
                              TokenConfig(name="agent", role=Role.WRITER, sha256=hash_token(WRITER))],
                      jwt=JwtConfig(public_key_file=pem))
    with run_server(backend.config.model_copy(update={"auth": auth})) as running, requests.Session() as session:
        secured = Api(running.base, session, token=WRITER)
        secured.load_representative()
        yield secured


def test_auth(auth_api: Api, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> None:
    own, other = rsa_keys
    before = auth_api.snapshot()
    sm_path = f"/submodels/{b64(SECOND1)}"
    element = f"{sm_path}/submodel-elements/A/$value"

    assert_error(auth_api.get(sm_path, headers={"Authorization": ""}), 401)
    no_header = requests.get(auth_api.base + sm_path, timeout=TIMEOUT)
    assert_error(no_header, 401)
    assert_error(requests.get(auth_api.base + "/description", timeout=TIMEOUT), 401)
    assert_error(auth_api.get(sm_path, token="wrong-token-0123456789"), 401)
    assert_error(auth_api.get(sm_path, headers={"Authorization": f"Basic {READER}"}), 401)
    assert auth_api.get(sm_path, token=READER).status_code == 200

    refused: list[tuple[str, requests.Response]] = [
        ("no token", requests.patch(auth_api.base + element, json=9.0, timeout=TIMEOUT)),
        ("wrong token", auth_api.patch(element, 9.0, token="wrong-token-0123456789")),
        ("reader token", auth_api.patch(element, 9.0, token=READER)),
        ("reader delete", auth_api.delete(sm_path, token=READER)),
        ("reader post", auth_api.post("/submodels", submodel("urn:example:new"), token=READER)),
        ("expired jwt", auth_api.patch(element, 9.0, token=sign(own, ["writer"], -120))),
        ("jwt of another key", auth_api.patch(element, 9.0, token=sign(other, ["writer"], 300))),
        ("reader jwt", auth_api.patch(element, 9.0, token=sign(own, ["reader"], 300))),
        ("jwt without role", auth_api.patch(element, 9.0, token=sign(own, [], 300))),
    ]
    expected = {"reader token": 403, "reader delete": 403, "reader post": 403, "reader jwt": 403,
                "jwt without role": 403}
    for what, response in refused:
        text = assert_error(response, expected.get(what, 401))
        assert auth_api.snapshot() == before, f"{what} changed the data ({text})"
    assert "expired" in assert_error(auth_api.patch(element, 9.0, token=sign(own, ["writer"], -120)), 401)

    assert auth_api.patch(element, 9.0, token=WRITER).status_code == 204
    assert auth_api.ok("GET", element, token=READER) == {"A": 9.0}
    assert auth_api.patch(element, 10.0, token=sign(own, ["writer"], 300)).status_code == 204
    assert auth_api.ok("GET", element, token=sign(own, ["reader"], 300)) == {"A": 10.0}
    assert auth_api.ok("POST", "/submodels", 201, json=submodel("urn:example:jwt"),
                       token=sign(own, ["admin"], 300))["id"] == "urn:example:jwt"


def test_401_says_how_to_authenticate(auth_api: Api) -> None:
    """RFC 6750 / RFC 9110: a 401 carries a WWW-Authenticate challenge."""
    path = f"/submodels/{b64(SECOND1)}"
    for token in ("", "wrong-token-0123456789"):
        response = auth_api.get(path, token=token)
        assert_error(response, 401)
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers


# Persistence -------------------------------------------------------------------------------------


def test_data_survives_a_restart(backend: Backend, api: Api, tmp_path: Path) -> None:
    config = backend.config.model_copy(update={"data_dir": tmp_path / "restart"})
    with run_server(config) as first, requests.Session() as session:
        writer = Api(first.base, session)
        writer.load_representative()
        assert writer.patch(f"{SM}/$value", {"Temperature": 77.5}).status_code == 204
        assert writer.delete(f"/submodels/{b64(SECOND2)}").status_code == 204
        stored = writer.snapshot()
    with run_server(config) as second, requests.Session() as session:
        reader = Api(second.base, session)
        assert reader.snapshot() == stored
        assert reader.ok("GET", f"{ELEMENTS}/Temperature/$value") == {"Temperature": 77.5}
        assert_error(reader.get(f"/submodels/{b64(SECOND2)}"), 404)
        ids, _ = walk(reader, "/submodels", 2)
        assert [s["id"] for s in ids] == [ALL_KINDS, SECOND1]
    if backend.name == "sqlite":
        assert (tmp_path / "restart" / "twins.db").exists()


# Superpath ---------------------------------------------------------------------------------------


def test_superpath(loaded: Api) -> None:
    via = f"/shells/{b64(SHELL1)}/submodels/{b64(ALL_KINDS)}"
    assert loaded.ok("GET", via) == loaded.ok("GET", SM)
    assert loaded.ok("GET", f"{via}/submodel-elements/Hydraulics.Pump.Speed") == prop("Speed", "1450", "xs:int")
    assert loaded.patch(f"{via}/submodel-elements/Temperature/$value", 43.0).status_code == 204
    assert loaded.ok("GET", f"{ELEMENTS}/Temperature/$value") == {"Temperature": 43.0}
    assert loaded.ok("GET", f"{via}/$value")["Temperature"] == 43.0

    before = loaded.snapshot()
    foreign = f"/shells/{b64(SHELL1)}/submodels/{b64(SECOND2)}"
    assert_error(loaded.get(foreign), 404, SECOND2)
    assert_error(loaded.get(f"{foreign}/submodel-elements/A"), 404)
    assert_error(loaded.patch(f"{foreign}/submodel-elements/A/$value", 5.0), 404)
    assert_error(loaded.patch(f"{foreign}/$value", {"A": 5.0}), 404)
    assert_error(loaded.delete(foreign), 404)
    assert_error(loaded.get(f"/shells/{b64('urn:example:none')}/submodels/{b64(ALL_KINDS)}"), 404)
    assert loaded.snapshot() == before


# Serialization -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "fmt"), [("application/json", "json"), ("application/xml", "xml"), (AASX, "aasx")])
def test_serialization(loaded: Api, accept: str, fmt: str) -> None:
    params = {"aasIds": [b64(SHELL1)], "submodelIds": [b64(ALL_KINDS), b64(SECOND1)]}
    response = loaded.get("/serialization", params=params, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(accept)
    package = read_package(response.content, fmt, f"environment.{fmt}")  # type: ignore[arg-type]
    env = package.environment
    assert [s.id for s in env.asset_administration_shells or []] == [SHELL1]
    assert [s.id for s in env.submodels or []] == [ALL_KINDS, SECOND1]
    assert sorted(c.id for c in env.concept_descriptions or []) == [CD_PRESSURE, CD_TEMP]
    temperature = next(e for e in (env.submodels or [])[0].submodel_elements or [] if e.id_short == "Temperature")
    assert getattr(temperature, "value", None) == "41.5"


def test_serialization_errors(loaded: Api) -> None:
    everything = loaded.ok("GET", "/serialization")
    assert len(everything["assetAdministrationShells"]) == 2 and len(everything["submodels"]) == 3
    without = loaded.ok("GET", "/serialization", params={"aasIds": b64(SHELL2), "submodelIds": b64(SECOND2),
                                                        "includeConceptDescriptions": "false"})
    assert "conceptDescriptions" not in without
    assert_error(loaded.get("/serialization", params={"aasIds": b64("urn:example:none")}), 404)
    assert_error(loaded.get("/serialization", params={"submodelIds": "***"}), 400)
    assert_error(loaded.get("/serialization", headers={"Accept": "text/csv"}), 406)
