"""`twinedge models instantiate`: the twin of one machine from a catalogue template, and an agent config
that binds the real simulator (OPC UA) to it through a real twin server with no hand edits."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aas_core3 import jsonization, verification
from click.testing import CliRunner

from aas_models import ids
from aas_models.builders import operational_data
from aas_models.catalogue.cli import models_group
from aas_models.catalogue.layout import ModelFolder
from aas_models.catalogue.maintenance import ID_SHORT as HISTORY
from aas_models.catalogue.scaffold import load_folder_spec
from aas_models.catalogue.template import instantiate
from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.twin import build_twin, submodel_id_for
from edge_agent.assembly import build_agent
from edge_agent.config import load_config
from edge_agent.simulator.config import parse_config
from edge_agent.simulator.servers import Simulator, run_simulator
from tests.server import free_port, run_server
from twin_server.config import ServerConfig

ROOT = Path(__file__).resolve().parent.parent / "reference_models"
PRESS = ModelFolder(ROOT / "hydraulic-press" / "1.0")


def _template() -> dict[str, Any]:
    data = orjson.loads(PRESS.file("model.json").read_bytes())
    assert isinstance(data, dict)
    return data


def test_instance_equals_the_twin_the_platform_builds() -> None:
    """Same ids and submodels as build_twin for the same asset: agent, server and analytics agree."""
    twin = instantiate(_template(), "press-01", serial_number="SN-7", year_of_construction="2024")
    built: Any = jsonization.to_jsonable(build_twin(load_folder_spec(PRESS), "press-01", serial_number="SN-7",
                                                    year_of_construction="2024"))
    assert [s for s in twin["submodels"] if s["idShort"] != HISTORY] == built["submodels"]
    (shell,), (expected,) = twin["assetAdministrationShells"], built["assetAdministrationShells"]
    assert shell["derivedFrom"]["keys"][0]["value"] == "urn:twinedge:rm:hydraulic-press:1.0"
    for key in ("id", "idShort", "assetInformation"):
        assert shell[key] == expected[key]
    assert [r["keys"][0]["value"] for r in shell["submodels"]] == \
        [r["keys"][0]["value"] for r in expected["submodels"]] + [ids.submodel_id("press-01", HISTORY, "1.0")]
    history = next(s for s in twin["submodels"] if s["idShort"] == HISTORY)
    assert history["kind"] == "Instance" and "qualifiers" not in orjson.dumps(history).decode()
    env = jsonization.environment_from_jsonable(twin)
    assert [str(e.cause) for e in verification.verify(env)] == []
    # Without a serial number the element and the specific asset id are absent, not empty.
    bare = instantiate(_template(), "press-02")
    assert "specificAssetIds" not in bare["assetAdministrationShells"][0]["assetInformation"]
    assert "SerialNumber" not in orjson.dumps(bare).decode()


def test_line_becomes_a_specific_asset_id_like_the_platform_builds_it() -> None:
    """The dashboards group machines by the specificAssetId `line`; both ways of making a twin set it alike."""
    twin = instantiate(_template(), "press-01", serial_number="SN-7", line="Line A")
    built: Any = jsonization.to_jsonable(build_twin(load_folder_spec(PRESS), "press-01", serial_number="SN-7",
                                                    line="Line A"))
    expected = [{"name": "serialNumber", "value": "SN-7"}, {"name": "line", "value": "Line A"}]
    assert twin["assetAdministrationShells"][0]["assetInformation"]["specificAssetIds"] == expected
    assert built["assetAdministrationShells"][0]["assetInformation"]["specificAssetIds"] == expected
    only_line = instantiate(_template(), "press-02", line="Line B")
    assert only_line["assetAdministrationShells"][0]["assetInformation"]["specificAssetIds"] == [
        {"name": "line", "value": "Line B"}]


async def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_instantiated_twin_binds_to_the_simulator(tmp_path: Path) -> None:
    opc_port = free_port()
    twin_file, agent_file = tmp_path / "press-01.json", tmp_path / "agent.yaml"
    sim_config = parse_config({"presses": [{"name": "Press1", "asset_id": "press-01"}], "rate_hz": 10, "seed": 3,
                               "opcua": {"port": opc_port}, "modbus": {"enabled": False}})
    with run_server(ServerConfig(data_dir=tmp_path / "server")) as server:
        result = CliRunner().invoke(models_group, [
            "instantiate", str(PRESS.path), "--asset-id", "press-01", "--serial", "SN-1", "-o", str(twin_file),
            "--agent-config", str(agent_file), "--endpoint", f"opc.tcp://127.0.0.1:{opc_port}",
            "--twin-server", server.base], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        twin = orjson.loads(twin_file.read_bytes())  # to the server through the AAS API, as written
        for sm in twin["submodels"]:
            assert httpx.post(f"{server.base}/submodels", json=sm).status_code == 201
        for shell in twin["assetAdministrationShells"]:
            assert httpx.post(f"{server.base}/shells", json=shell).status_code == 201

        config = load_config(agent_file)  # exactly as written
        agent = build_agent(config, os.environ, str(agent_file))
        agent.metrics = None  # its fixed default port could clash with a parallel run; not part of binding
        sm_id = submodel_id_for("press-01", operational_data.ID_SHORT)
        url = f"{server.base}/submodels/{ids.b64url_encode(sm_id)}/$value"
        bound = [s.name for s in load_spec(SPECS_DIR / "hydraulic-press.yaml").signals]

        def values() -> dict[str, Any]:
            response = httpx.get(url)
            return response.json() if response.status_code == 200 else {}

        async def scenario() -> None:
            stop, agent_stop = asyncio.Event(), asyncio.Event()
            ready = asyncio.Event()
            sims: list[Simulator] = []

            def on_ready(sim: Simulator) -> None:
                sims.append(sim)
                ready.set()

            sim_task = asyncio.create_task(run_simulator(sim_config, stop, on_ready))
            await asyncio.wait_for(ready.wait(), 30)
            agent_task = asyncio.create_task(agent.run(agent_stop))
            try:
                await _wait(lambda: all(values().get(s, {}).get("Value") is not None for s in bound)
                            if agent.appended >= len(bound) else False, 60, "every bound signal in the twin")
            finally:
                agent_stop.set()
                await agent_task
                stop.set()
                await sim_task

        asyncio.run(scenario())
        live = values()
        assert {s for s in bound if live[s]["Quality"] == "good"} == set(bound)
        assert live["PartQuality"]["Value"] in ("OK", "NG")
        assert live["EquipmentState"]["Value"] in (None, "")  # in the model, not served by the simulator


@pytest.mark.parametrize("bad", [["--endpoint", "nonsense-without-port"]])
def test_agent_config_refuses_a_bad_endpoint(tmp_path: Path, bad: list[str]) -> None:
    result = CliRunner().invoke(models_group, [
        "instantiate", str(ROOT / "air-compressor" / "1.0"), "--asset-id", "ac-01", "-o", str(tmp_path / "t.json"),
        "--agent-config", str(tmp_path / "a.yaml"), *bad])
    assert result.exit_code == 1
    assert "give host:port for a modbus source" in result.output
