"""Registry: shell and submodel descriptors, validated, paged, nested."""

from __future__ import annotations

import base64
from pathlib import Path

import requests

from tests.server import run_server
from twin_server.config import ServerConfig


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def endpoint(href: str, interface: str) -> dict[str, object]:
    return {"interface": interface, "protocolInformation": {"href": href, "endpointProtocol": "HTTP"}}


def test_descriptor_lifecycle(tmp_path: Path) -> None:
    sub = {"id": "urn:sm:1", "idShort": "OperationalData",
           "endpoints": [endpoint("http://edge-1:8081/api/v3.0/submodels/dXJuOnNtOjE", "SUBMODEL-3.0")]}
    shell = {"id": "urn:aas:1", "idShort": "Press01", "globalAssetId": "urn:asset:1",
             "endpoints": [endpoint("http://edge-1:8081/api/v3.0/shells/dXJuOmFhczox", "AAS-3.0")],
             "submodelDescriptors": [sub]}
    with run_server(ServerConfig(data_dir=tmp_path)) as server:
        base = server.base
        assert requests.post(f"{base}/shell-descriptors", json=shell, timeout=10).status_code == 201
        assert requests.post(f"{base}/shell-descriptors", json=shell, timeout=10).status_code == 409
        assert requests.post(f"{base}/submodel-descriptors", json=sub, timeout=10).status_code == 201
        assert requests.get(f"{base}/shell-descriptors/{b64('urn:aas:1')}", timeout=10).json() == shell
        nested = requests.get(f"{base}/shell-descriptors/{b64('urn:aas:1')}/submodel-descriptors", timeout=10)
        assert nested.json()["result"] == [sub]
        broken = {"id": "urn:aas:2", "endpoints": [{"interface": "AAS-3.0"}]}
        refused = requests.post(f"{base}/shell-descriptors", json=broken, timeout=10)
        assert refused.status_code == 400 and "protocolInformation.href" in refused.json()["messages"][0]["text"]
        changed = {**shell, "idShort": "Press01b"}
        assert requests.put(f"{base}/shell-descriptors/{b64('urn:aas:1')}", json=changed, timeout=10).status_code \
            == 204
        listed = requests.get(f"{base}/shell-descriptors", timeout=10).json()["result"]
        assert [d["idShort"] for d in listed] == ["Press01b"]
        assert requests.delete(f"{base}/shell-descriptors/{b64('urn:aas:1')}", timeout=10).status_code == 204
        assert requests.get(f"{base}/shell-descriptors/{b64('urn:aas:1')}", timeout=10).status_code == 404
