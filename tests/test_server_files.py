"""AASX files loaded into the server become File attachments and thumbnails, and writes of them work."""

from __future__ import annotations

import base64
from pathlib import Path

import requests

from aas_models.aasx import write_aasx
from aas_models.files import load
from aas_models.package import PackagePart
from tests.server import REPRESENTATIVE, run_server
from twin_server.config import ServerConfig

SHELL = "urn:example:aas:press-01"
SUBMODEL = "urn:example:sm:press-01:AllKinds"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_aasx_parts_are_served_and_replaced(tmp_path: Path) -> None:
    package = load(REPRESENTATIVE)
    package.files.append(PackagePart("/aasx/files/manual.pdf", "application/pdf", PDF))
    package.thumbnail = PackagePart("/aasx/thumbnail.png", "image/png", PNG)
    aasx = tmp_path / "press.aasx"
    aasx.write_bytes(write_aasx(package))

    with run_server(ServerConfig(data_dir=tmp_path / "data", load=[aasx])) as server:
        attachment = f"{server.base}/submodels/{b64(SUBMODEL)}/submodel-elements/Manual/attachment"
        got = requests.get(attachment, timeout=10)
        assert got.status_code == 200 and got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        thumbnail = f"{server.base}/shells/{b64(SHELL)}/asset-information/thumbnail"
        assert requests.get(thumbnail, timeout=10).content == PNG

        new = b"%PDF-1.7 second edition"
        put = requests.put(attachment, files={"file": ("manual-v2.pdf", new, "application/pdf")}, timeout=10)
        assert put.status_code == 204
        assert requests.get(attachment, timeout=10).content == new
        element = requests.get(attachment.rsplit("/", 1)[0], timeout=10).json()
        assert element["value"] == "manual-v2.pdf"

        not_a_file = f"{server.base}/submodels/{b64(SUBMODEL)}/submodel-elements/Temperature/attachment"
        assert requests.get(not_a_file, timeout=10).status_code == 400
        assert requests.delete(attachment, timeout=10).status_code == 204
        assert requests.get(attachment, timeout=10).status_code == 404


def test_aasx_file_server(tmp_path: Path) -> None:
    data = write_aasx(load(REPRESENTATIVE))
    with run_server(ServerConfig(data_dir=tmp_path)) as server:
        created = requests.post(f"{server.base}/packages", files={"file": ("press.aasx", data)}, timeout=10)
        assert created.status_code == 201
        description = created.json()
        assert description["aasIds"] == ["urn:example:aas:press-01", "urn:example:aas:press-02"]
        package_url = f"{server.base}/packages/{b64(description['packageId'])}"
        assert requests.get(package_url, timeout=10).content == data
        listed = requests.get(f"{server.base}/packages", params={"aasId": b64("urn:example:aas:press-02")},
                              timeout=10).json()["result"]
        assert [p["packageId"] for p in listed] == [description["packageId"]]
        assert requests.get(f"{server.base}/packages", params={"aasId": b64("urn:none")},
                            timeout=10).json()["result"] == []
        broken = requests.post(f"{server.base}/packages", files={"file": ("x.aasx", data[:100])}, timeout=10)
        assert broken.status_code == 400 and "AASX" in broken.json()["messages"][0]["text"]
        assert requests.delete(package_url, timeout=10).status_code == 204
        assert requests.get(package_url, timeout=10).status_code == 404
