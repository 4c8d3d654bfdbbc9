"""The official conformance tool (aas-test-engines 1.0.3) against a real server: all four SSP-002
suites, every negative and positive check, on an environment with every submodel element type."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import REPRESENTATIVE, RunningServer, run_server
from twin_server.config import ServerConfig

API = "https://admin-shell.io/aas/API/3/0"
SHELL = "urn:example:aas:press-01"
SUBMODEL = "urn:example:sm:press-01:AllKinds"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("ate"), load=[REPRESENTATIVE])
    with run_server(config) as running:
        yield running


def leaves(node: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[int, str]]:
    children = node.get("s", [])
    here = (*path, node.get("m", "").strip())
    if not children:
        yield node.get("l", 0), " / ".join(here[-4:])
    for child in children:
        yield from leaves(child, here)


SUITES = {
    "aas-repository": ("", f"{API}/AssetAdministrationShellRepositoryServiceSpecification/SSP-002", []),
    "submodel-repository": ("", f"{API}/SubmodelRepositoryServiceSpecification/SSP-002", []),
    "aas": (f"/shells/{b64(SHELL)}", f"{API}/AssetAdministrationShellServiceSpecification/SSP-002",
            ["--remove-path-prefix", "/aas"]),
    "submodel": (f"/submodels/{b64(SUBMODEL)}", f"{API}/SubmodelServiceSpecification/SSP-002",
                 ["--remove-path-prefix", "/submodel"]),
}


@pytest.mark.parametrize("suite", list(SUITES))
def test_conformance_suite_passes_completely(server: RunningServer, suite: str) -> None:
    tool = shutil.which("aas_test_engines") or str(Path(sys.executable).parent / "aas_test_engines")
    suffix, profile, extra = SUITES[suite]
    proc = subprocess.run([tool, "check_server", server.base + suffix, profile, *extra, "--output", "json"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    results = list(leaves(report))
    failures = [text for level, text in results if level >= 2]
    assert not failures, failures[:10]
    assert len(results) > 50
    # Every element type is present, so no check was skipped for lack of one.
    assert not [text for level, text in results if "No such element present" in text]
