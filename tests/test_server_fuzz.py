"""Property-based fuzzing of the twin server with schemathesis, from the app's own OpenAPI document.

Three real servers on loopback (SQLite), each loaded with REPRESENTATIVE:

* `fuzz_server`: every /api/v3.0 operation, generated cases (valid and invalid parameters and
  bodies, some aimed at stored ids and idShortPaths); no answer may be a 5xx and every 4xx must be in
  the Part 2 result format. The fuzz writes, so this server is not used for anything else.
* `auth_server`: tokens configured, the same fuzz (without its coverage phase) sends none: every
  answer is 401 (or the router's 404/405 for a URL that matches no route) and the stored data stays
  byte-identical.
* `strict_server` (4 KiB body limit): hand-made malformed and oversized bodies to every write route
  are 400/413 in the result format and change nothing.

The app reads raw request bodies, so its OpenAPI document declares none; the test declares loose
element/identifiable shapes or any JSON (multipart for uploads) on every write operation so that
schemathesis sends bodies too. The run is bounded and derandomized (the same cases every time).
After the fuzz, whatever it stored must still serialize (JSON, XML, AASX) and pass its own PUT.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from aas_models.files import read_package
from tests.server import REPRESENTATIVE, RunningServer, run_server
from twin_server.app import create_app
from twin_server.auth import AuthConfig, Role, TokenConfig, hash_token
from twin_server.config import ServerConfig
from twin_server.storage.sqlite import SqliteStorage

PREFIX = "/api/v3.0"
#: Generated cases per operation in the fuzzing phase (after the coverage phase's boundary cases); the
#: auth fuzz needs fewer: without a token every case stops at the same check.
MAX_EXAMPLES = 3
AUTH_MAX_EXAMPLES = 2
MAX_BODY = 4096
TIMEOUT = 10
READER = "fuzz-reader-token-0123456789"
WRITE_METHODS = ("post", "put", "patch")
AASX = "application/asset-administration-shell-package+xml"
#: Uploads: these write operations take multipart/form-data, not JSON.
MULTIPART_SUFFIXES = ("/attachment", "/asset-information/thumbnail", "/packages", "/packages/{package_id}")

SHELL1 = "urn:example:aas:press-01"
SHELL2 = "urn:example:aas:press-02"
ALL_KINDS = "urn:example:sm:press-01:AllKinds"
SECOND1 = "urn:example:sm:press-01:Second"
SECOND2 = "urn:example:sm:press-02:Second"
CD_PRESSURE = "https://example.com/Pressure"
CD_TEMP = "https://example.com/Temperature"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


#: Stored ids and idShortPaths the fuzz mixes into generated path parameters, to get past the lookups.
KNOWN: dict[str, list[str]] = {
    "aas_id": [b64(SHELL1), b64(SHELL2)],
    "submodel_id": [b64(ALL_KINDS), b64(SECOND1), b64(SECOND2)],
    "cd_id": [b64(CD_PRESSURE), b64(CD_TEMP)],
    "path": ["Temperature", "CycleCount", "Running", "Designation", "PressureRange", "Manual", "Snapshot", "Line",
             "FeedsInto", "Monitors", "Hydraulics", "Hydraulics.Pump", "Hydraulics.Pump.Speed", "Readings",
             "Readings[1]", "Ram", "Ram.Stroke", "OverTemperature", "Reset", "Pressing", "A"],
}


#: Shapes the body fuzz aims at (loose on purpose: most generated bodies are still invalid somewhere).
_ELEMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "idShort": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,8}$"},
        "modelType": {"enum": ["Property", "MultiLanguageProperty", "Range", "File", "Blob", "ReferenceElement",
                               "SubmodelElementCollection", "SubmodelElementList"]},
        "valueType": {"enum": ["xs:double", "xs:int", "xs:string", "xs:boolean", "xs:dateTime"]},
        "value": {},
        "contentType": {"type": "string"},
        "min": {"type": "string"},
        "max": {"type": "string"},
    },
    "required": ["modelType"],
}
_IDENTIFIABLE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "idShort": {"type": "string"},
        "modelType": {"enum": ["Submodel", "AssetAdministrationShell", "ConceptDescription"]},
        "submodelElements": {"type": "array", "items": _ELEMENT, "maxItems": 3},
        "assetInformation": {"type": "object"},
    },
    "required": ["id", "modelType"],
}


def _body_schema(path: str) -> dict[str, Any]:
    if path.endswith(("/submodel-elements", "/submodel-elements/{path}")):
        return {"anyOf": [_ELEMENT, {}]}
    if path.endswith(("/shells", "/submodels", "/concept-descriptions", "/shells/{aas_id}",
                      "/submodels/{submodel_id}", "/concept-descriptions/{cd_id}")):
        return {"anyOf": [_IDENTIFIABLE, {}]}
    return {}


#: (path, method) of the operations whose request body the test declared.
DECLARED_BODIES: set[tuple[str, str]] = set()


def _spec() -> dict[str, Any]:
    """The app's OpenAPI document (as served at /api/v3.0/openapi.json), with request bodies declared."""
    spec = copy.deepcopy(create_app(ServerConfig(), storage=SqliteStorage(":memory:")).openapi())
    multipart = {"multipart/form-data": {"schema": {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"}, "fileName": {"type": "string"}},
    }}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in KNOWN and method != "delete":
                    # The coverage phase builds its cases around a parameter's example: a stored one (but not
                    # for deletes, which would empty the store before the other operations run).
                    parameter["example"] = KNOWN[parameter["name"]][0]
            if method in WRITE_METHODS and "requestBody" not in operation and not path.endswith("/invoke"):
                content = (multipart if path.endswith(MULTIPART_SUFFIXES)
                           else {"application/json": {"schema": _body_schema(path)}})
                operation["requestBody"] = {"required": True, "content": content}
                DECLARED_BODIES.add((path, method))
    return spec


SPEC = _spec()


def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> Any:
    """Half of the time (deterministically under derandomize) a stored id or idShortPath instead of noise.

    Deletes keep their generated noise: they would empty the store early and leave later operations
    nothing to reach."""
    operation = context.operation
    if not path_parameters or operation is None or operation.method.lower() == "delete":
        return st.just(path_parameters)
    return st.fixed_dictionaries({
        name: st.one_of(st.just(value), st.sampled_from(KNOWN[name])) if name in KNOWN else st.just(value)
        for name, value in path_parameters.items()
    })


def after_call(context: schemathesis.HookContext, case: schemathesis.Case[Any],
               response: schemathesis.Response) -> None:
    settle_after_server_error(response.status_code)


def _schema(*, coverage: bool) -> Any:
    """The /api/v3.0 operations of SPEC, with the hooks above; `coverage` switches schemathesis' coverage
    phase (boundary and negative values for every parameter) on or off; the fuzzing phase always runs."""
    # One unexpected method per path is enough to check the 405 answers (the router gives them all alike).
    coverage_config = {"enabled": coverage, "unexpected-methods": ["trace"]}
    config = schemathesis.Config.from_dict({"phases": {"coverage": coverage_config}})
    loaded = schemathesis.openapi.from_dict(SPEC, config=config).include(path_regex=rf"^{PREFIX.replace('.', '[.]')}/")
    loaded.hook(flatmap_path_parameters)
    loaded.hook(after_call)
    return loaded


#: Left out of the no-5xx fuzz: /invoke answers 501 on purpose (operations are not invoked by this server;
#: the body tests below check that answer), and /events is a server-sent-events stream that never ends.
schema = _schema(coverage=True).exclude(path_regex=r"/invoke$").exclude(path_regex=r"/events$")
#: Without a token every request stops at authentication, so the auth fuzz skips the (long) coverage phase.
auth_schema = _schema(coverage=False)

FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=False)
AUTH_FUZZ_SETTINGS = settings(FUZZ_SETTINGS, max_examples=AUTH_MAX_EXAMPLES)


def fuzz(loaded: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """schemathesis' `parametrize()` (which is untyped), typed for mypy."""
    decorator: Callable[[Callable[..., None]], Callable[..., None]] = loaded.parametrize()
    return decorator


def settle_after_server_error(status: int) -> None:
    """After a 5xx, let the server thread finish logging its traceback before this thread reports a
    failure: CPython 3.11 keeps ast.parse's recursion depth in interpreter-wide state and both do
    ast.parse, so together they can raise "SystemError: AST constructor recursion depth mismatch"
    (see tests/test_server_api.py)."""
    if status >= 500:
        time.sleep(0.3)


def result_format_problem(status: int, body: bytes) -> str | None:
    """Why `body` is not the Part 2 result format for an error `status`, or None if it is."""
    try:
        doc = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:200]!r}"
    if not isinstance(doc, dict) or set(doc) != {"messages"} or not isinstance(doc["messages"], list) \
            or not doc["messages"]:
        return f"not {{'messages': [...]}}: {doc!r}"
    for message in doc["messages"]:
        if not isinstance(message, dict) or set(message) != {"messageType", "text", "code", "timestamp"}:
            return f"message keys are not messageType, text, code, timestamp: {message!r}"
        if message["code"] != str(status) or not isinstance(message["text"], str) or not message["text"]:
            return f"code or text wrong: {message!r}"
        try:
            datetime.fromisoformat(str(message["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            return f"timestamp is not ISO 8601: {message!r}"
    return None


def errors_in_result_format(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                            case: schemathesis.Case[Any]) -> bool | None:
    """A schemathesis check: every 4xx/5xx answer is in the Part 2 result format."""
    if response.status_code >= 400:
        problem = result_format_problem(response.status_code, response.content)
        if problem is not None:
            raise AssertionError(f"{response.status_code} answer not in the result format: {problem}")
    return None


def origin(server: RunningServer) -> str:
    return server.base.removesuffix(PREFIX)


def snapshot(server: RunningServer, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(server.base + "/serialization", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.content


def test_fuzzed_spec_is_the_served_one(fuzz_server: FuzzServer) -> None:
    served = requests.get(f"{fuzz_server.server.base}/openapi.json", timeout=TIMEOUT).json()
    declared = copy.deepcopy(SPEC)
    for path, method in DECLARED_BODIES:
        del declared["paths"][path][method]["requestBody"]
    for operations in declared["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter.pop("example", None)
    assert served == declared
    assert len(list(auth_schema.get_all_operations())) > 80


# The fuzz, without auth -----------------------------------------------------------------------


@dataclass
class FuzzServer:
    server: RunningServer
    calls: int = 0


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("fuzz"), load=[REPRESENTATIVE])
    with run_server(config) as running:
        yield FuzzServer(running)


@fuzz(schema)
@FUZZ_SETTINGS
def test_no_server_errors(case: schemathesis.Case[Any], fuzz_server: FuzzServer) -> None:
    fuzz_server.calls += 1
    case.call_and_validate(base_url=origin(fuzz_server.server), checks=[not_a_server_error, errors_in_result_format])


def test_fuzzed_data_is_still_valid(fuzz_server: FuzzServer) -> None:
    """Runs after the fuzz above (file order): whatever it stored is still a valid environment, in every
    serialization, and every identifiable can be written back as read (a value-only write can never
    store what a full write would refuse)."""
    if fuzz_server.calls == 0:
        pytest.skip("needs test_no_server_errors to have run first (in file order)")
    base = fuzz_server.server.base
    for accept, fmt in (("application/json", "json"), ("application/xml", "xml"), (AASX, "aasx")):
        response = requests.get(f"{base}/serialization", headers={"Accept": accept}, timeout=TIMEOUT)
        assert response.status_code == 200, f"{accept}: {response.text[:500]}"
        read_package(response.content, fmt, f"fuzzed.{fmt}")  # type: ignore[arg-type]
    for route in ("shells", "submodels", "concept-descriptions"):
        listing = requests.get(f"{base}/{route}", params={"limit": 1000}, timeout=TIMEOUT).json()
        for doc in listing["result"]:
            url = f"{base}/{route}/{b64(doc['id'])}"
            response = requests.put(url, json=doc, timeout=TIMEOUT)
            assert response.status_code == 204, f"{route} {doc['id']!r}: {response.text[:500]}"


# The fuzz without a token against a server that needs one --------------------------------------


@dataclass
class AuthServer:
    server: RunningServer
    before: bytes
    calls: int = 0


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    auth = AuthConfig(tokens=[TokenConfig(name="reader", role=Role.READER, sha256=hash_token(READER)),
                              TokenConfig(name="admin", role=Role.ADMIN, sha256=hash_token(READER[::-1]))])
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("fuzz-auth"), load=[REPRESENTATIVE], auth=auth)
    with run_server(config) as running:
        yield AuthServer(running, snapshot(running, READER))


@fuzz(auth_schema)
@AUTH_FUZZ_SETTINGS
def test_no_token_is_refused_everywhere(case: schemathesis.Case[Any], auth_server: AuthServer) -> None:
    response = case.call(base_url=origin(auth_server.server))
    auth_server.calls += 1
    case.validate_response(response, checks=[not_a_server_error, errors_in_result_format])
    # 404 or 405 only for a URL that matches no route (a generated path parameter with a '/', or one that
    # spells another route such as '$metadata'): the router answers those before any handler runs.
    routing = {404: "Not Found", 405: "Method Not Allowed"}
    if response.status_code in routing:
        assert response.json()["messages"][0]["text"] == routing[response.status_code], response.text
    else:
        assert response.status_code == 401, response.text


def test_no_token_fuzz_changed_nothing(auth_server: AuthServer) -> None:
    """Runs after the fuzz above (file order): the stored data is byte-identical."""
    if auth_server.calls == 0:
        pytest.skip("needs test_no_token_is_refused_everywhere to have run first (in file order)")
    assert snapshot(auth_server.server, READER) == auth_server.before


# Hand-made malformed and oversized bodies to every write route ---------------------------------

JSON_BODIES: dict[str, bytes] = {
    "empty": b"",
    "truncated object": b"{",
    "truncated member": b'{"idShort": ',
    "not json": b"not json at all",
    "binary": b"\xff\xfe\xfd\x00\x01",
    "NUL bytes": b"\x00" * 64,
    "NaN": b'{"a": NaN}',
    "infinite number": b'{"x": 1e999999}',
    "lone surrogate": b'{"idShort": "\\ud800"}',
    "too deep": b"[" * 2000,
    "deep but parseable": b'{"a":' * 300 + b"1" + b"}" * 300,
    "empty array": b"[]",
    "bare string": b'"just text"',
    "wrong types": b'{"idShort": 5, "modelType": 7, "id": null, "value": {"x": [1, {"y": true}]}}',
    "unknown members": b'{"Temperature": "abc", "unexpected": {"nested": [null]}}',
    "trailing garbage": b'{"id": "urn:x", "modelType": "Submodel"} trailing',
}
MULTIPART_BODIES: dict[str, tuple[bytes, str]] = {
    "multipart garbage": (b"--x\r\nnot a part\r\n--x--", "multipart/form-data; boundary=x"),
    "multipart without boundary": (b"--x\r\n\r\n", "multipart/form-data"),
    "multipart without file part": (
        b'--x\r\nContent-Disposition: form-data; name="fileName"\r\n\r\nname.pdf\r\n--x--\r\n',
        "multipart/form-data; boundary=x"),
}
ELEMENT_PATHS = ("Temperature", "Hydraulics", "Readings[1]", "Designation", "Snapshot")


def _write_routes() -> list[tuple[str, str, str]]:
    """(METHOD, template, concrete path) for every write operation of /api/v3.0, stored ids filled in.

    A parameter with no stored value to fill in (e.g. a package id) gets an id that is not stored."""
    routes: list[tuple[str, str, str]] = []
    for template, operations in SPEC["paths"].items():
        if not template.startswith(PREFIX + "/"):
            continue
        for method in operations:
            if method not in WRITE_METHODS:
                continue
            local = template.removeprefix(PREFIX)
            filled = (local.replace("{aas_id}", b64(SHELL1)).replace("{submodel_id}", b64(ALL_KINDS))
                      .replace("{cd_id}", b64(CD_PRESSURE)))
            paths = [filled.replace("{path}", p) for p in ELEMENT_PATHS] if "{path}" in filled else [filled]
            paths = [re.sub(r"\{[^}]+\}", b64("urn:example:not-stored"), p) for p in paths]
            routes.extend((method.upper(), local, path) for path in paths)
    return routes


WRITE_ROUTES = _write_routes()
def _route_params() -> list[Any]:
    return [pytest.param(method, template, path, id=f"{method} {path}") for method, template, path in WRITE_ROUTES]


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("strict"), load=[REPRESENTATIVE], max_body_bytes=MAX_BODY)
    with run_server(config) as running:
        yield running


def _problem(response: requests.Response, allowed: set[int], what: str) -> str | None:
    if response.status_code not in allowed:
        return f"{what}: {response.status_code} (expected {sorted(allowed)}) {response.text[:200]}"
    problem = result_format_problem(response.status_code, response.content)
    return None if problem is None else f"{what}: {problem}"


@pytest.mark.parametrize(("method", "template", "path"), _route_params())
def test_malformed_and_oversized_bodies(strict_server: RunningServer, method: str, template: str, path: str) -> None:
    before = snapshot(strict_server)
    url = strict_server.base + path
    # Operations are not invoked here, whatever the body: 501 before the body is looked at.
    invoke = path.endswith("/invoke")
    unfilled = re.search(r"\{(?!aas_id|submodel_id|cd_id|path)[^}]+\}", template) is not None
    refused = {400, 501} if invoke else {400, 404} if unfilled else {400}
    multipart = template.endswith(MULTIPART_SUFFIXES)
    problems: list[str | None] = []
    with requests.Session() as session:
        bodies = [(name, body, "application/json") for name, body in JSON_BODIES.items()]
        bodies += [(name, body, content_type) for name, (body, content_type) in MULTIPART_BODIES.items()]
        for name, body, content_type in bodies:
            response = session.request(method, url, data=body, timeout=TIMEOUT, headers={"Content-Type": content_type})
            problems.append(_problem(response, refused, name))

    if multipart:
        content_type = "multipart/form-data; boundary=x"
        oversized = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                     b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 5000 + b"\r\n--x--\r\n")
    else:
        content_type = "application/json"
        oversized = json.dumps({"id": "urn:example:big", "modelType": "Submodel", "idShort": "Big",
                                "description": [{"language": "en", "text": "x" * 1000}] * 5}).encode()
    assert len(oversized) > MAX_BODY

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(oversized), 1000):
            yield oversized[start:start + 1000]

    # Fresh connections: the server may close one whose body it did not read.
    response = requests.request(method, url, data=oversized, timeout=TIMEOUT, headers={"Content-Type": content_type})
    problems.append(_problem(response, {413}, "oversized with Content-Length"))
    response = requests.request(method, url, data=chunks(), timeout=TIMEOUT, headers={"Content-Type": content_type})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    problems.append(_problem(response, {413, 501} if invoke else {413}, "oversized, chunked"))
    assert [p for p in problems if p is not None] == []
    assert snapshot(strict_server) == before
