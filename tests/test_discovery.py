"""Tag discovery against real OPC UA servers (asyncua's and node-opcua): browse, YAML, spec matching, CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua.client.ua_client import UaClient
from click.testing import CliRunner

from aas_models.equipment import SPECS_DIR, EquipmentSpec, load_spec
from aas_models.timeseries.base import Quality
from edge_agent import discovery
from edge_agent.config import bindings, parse_config
from edge_agent.connectors.opcua import OpcUaConnection, create
from edge_agent.discovery import (
    DiscoveredNode,
    Discovery,
    DiscoveryError,
    discover_opcua,
    match_signals,
    render_opcua_yaml,
)
from edge_agent.discovery_cli import discover_group
from tests.opcua_peers import (  # noqa: F401 - the imports register the fixtures
    AsyncuaServer,
    Certificates,
    NodeOpcuaServer,
    asyncua_server_fixture,
    free_port,
    node_opcua_server_fixture,
    opcua_certificates_fixture,
)

PRESS_SIGNALS = ["OilTemperature", "StrokeCount", "Running", "Program", "Speed", "Sensor", "Level", "Pressure",
                 "Vector"]


@pytest.fixture(name="spec", scope="module")
def spec_fixture() -> EquipmentSpec:
    return load_spec(SPECS_DIR / "hydraulic-press.yaml")


def discover(endpoint: str, root: str = "i=85", depth: int = 6, **options: Any) -> Discovery:
    return asyncio.run(discover_opcua(OpcUaConnection(endpoint=endpoint), root, depth, **options))


def test_asyncua_draft_config_loads_binds_and_reads(asyncua_server: AsyncuaServer, spec: EquipmentSpec) -> None:
    """The YAML printed for a server is an agent config as it stands: it validates, its bindings
    resolve against the spec, and the source it describes reads every usable node."""
    srv = asyncua_server
    found = discover(srv.endpoint)
    by_signal = {n.signal: n for n in found.nodes}
    assert list(by_signal) == [f"Press1.{name}" for name in PRESS_SIGNALS]  # no namespace 0 (Server object)
    oil = by_signal["Press1.OilTemperature"]
    assert oil.node_id == srv.node_id("OilTemperature") and oil.browse_path == "/2:Press1/2:OilTemperature"
    assert oil.data_type == "Double" and oil.problem is None and oil.description == ""
    assert by_signal["Press1.StrokeCount"].node_id == "ns=2;i=1001"
    assert by_signal["Press1.StrokeCount"].data_type == "Int32"
    assert by_signal["Press1.Pressure"].eu_range == (0.0, 200.0)
    assert "array" in (by_signal["Press1.Vector"].problem or "")

    text = render_opcua_yaml(found, OpcUaConnection(endpoint=srv.endpoint), "press1", asset="urn:example:press:1",
                             spec=spec)
    assert "# /2:Press1/2:Pressure | Double | EURange 0..200" in text
    assert '# - {signal: "Press1.Vector"' in text  # listed, commented out, with the reason above it
    config = parse_config(yaml.safe_load(text), "draft.yaml")
    source = config.sources[0]
    assert source.type == "opcua" and source.name == "press1" and source.endpoint == srv.endpoint
    nodes = {n.signal: n.node_id for n in source.nodes}
    assert len(nodes) == len(PRESS_SIGNALS) - 1 and "Press1.Vector" not in nodes

    resolved = bindings(config, {"press1": set(nodes).__contains__}, "draft.yaml")
    targets = {b.signal: b.key.path for b in resolved}
    assert targets == {"Press1.OilTemperature": "OilTemperature.Value", "Press1.Pressure": "HydraulicPressure.Value"}
    assert "# CycleCounter: no node matched; bind it by hand" in text

    readings = {r.signal: r for r in asyncio.run(create(source).read_once(10))}
    assert set(readings) == set(nodes)
    assert readings["Press1.Sensor"].quality is Quality.BAD
    assert all(r.quality is not Quality.BAD for s, r in readings.items() if s != "Press1.Sensor")


def test_root_depth_and_standard_nodes(asyncua_server: AsyncuaServer) -> None:
    srv = asyncua_server
    press = discover(srv.endpoint, "ns=2;s=Press1", depth=1)
    assert [n.signal for n in press.nodes] == PRESS_SIGNALS  # names relative to the root
    assert press.nodes[0].browse_path == "/2:OilTemperature"
    assert discover(srv.endpoint, depth=1).nodes == []  # the variables are two levels below Objects
    assert discover(srv.endpoint, "i=85", 2, max_nodes=3).truncated
    standard = discover(srv.endpoint, depth=2, include_standard=True)
    status = next(n for n in standard.nodes if n.node_id == "i=2256")
    assert status.browse_path == "/0:Server/0:ServerStatus" and "ServerStatusDataType" in (status.problem or "")
    with pytest.raises(DiscoveryError, match=r"root node ns=2;s=Nowhere is unknown to opc\.tcp://"):
        discover(srv.endpoint, "ns=2;s=Nowhere")
    with pytest.raises(DiscoveryError, match="not an OPC UA node id"):
        discover(srv.endpoint, "Press1")


def test_node_opcua_units_ranges_and_browse_next(node_opcua_server: NodeOpcuaServer, spec: EquipmentSpec,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """node-opcua hands out continuation points (asyncua's server does not): force them with a tiny
    page size, so every child still comes back through BrowseNext."""
    srv = node_opcua_server
    monkeypatch.setattr(discovery, "MAX_REFERENCES", 2)
    pages = 0
    browse_next = UaClient.browse_next

    async def counting(self: UaClient, parameters: Any) -> Any:
        nonlocal pages
        pages += 1
        return await browse_next(self, parameters)

    monkeypatch.setattr(UaClient, "browse_next", counting)
    found = discover(srv.endpoint)
    assert pages >= 4  # Press1's nine children came two at a time
    by_signal = {n.signal: n for n in found.nodes}
    assert set(by_signal) == {f"Press1.{name}" for name in PRESS_SIGNALS}
    pressure = by_signal["Press1.Pressure"]
    assert pressure.unit == "bar" and pressure.eu_range == (0.0, 200.0) and pressure.node_id == "ns=1;s=Press1.Pressure"
    assert by_signal["Press1.Speed"].data_type == "Float" and by_signal["Press1.Program"].data_type == "String"
    assert by_signal["Press1.Vector"].problem is not None
    matches = {m.element: m for m in match_signals(found.nodes, spec)}
    assert matches["HydraulicPressure"].node == pressure and "unit bar" in matches["HydraulicPressure"].reason


def node(name: str, data_type: str = "Double", unit: str | None = None, description: str = "",
         problem: str | None = None) -> DiscoveredNode:
    return DiscoveredNode(f"ns=2;s=M.{name}", f"/2:M/2:{name}", f"M.{name}", name, name, data_type,
                          description=description, unit=unit, problem=problem)


def test_matching_rules(spec: EquipmentSpec) -> None:
    """Pure matching on described nodes (no server needed for the rules themselves)."""
    nodes = [
        node("OilTemp", unit="degC"),                      # similar name, same unit spelled otherwise
        node("RamPosition", unit="bar"),                  # right name, wrong unit: no match
        node("Ch7", description="Main motor current of the pump"),  # by description
        node("CycleCounter", problem="an array"),        # not readable as a value
        node("PartQuality", data_type="Double"),          # the spec wants a string
        node("Quality", data_type="String"),              # similar name, a string
        node("OilTemperature", data_type="Double"),       # exact name beats the similar one
        DiscoveredNode("ns=2;s=N.OilTemperature", "/2:N/2:OilTemperature", "N.OilTemperature", "OilTemperature",
                       "OilTemperature", "Double"),        # a second machine: as good a fit, reported
    ]
    matches = match_signals(nodes, spec)
    found = {m.element: m.node.browse_name if m.node else None for m in matches}
    assert found == {
        "RamPosition": None, "HydraulicPressure": None, "PressForce": None, "OilTemperature": "OilTemperature",
        "MotorCurrent": "Ch7", "Vibration": None, "CycleCounter": None, "CycleTime": None,
        "PartQuality": "Quality",
    }
    oil = next(m for m in matches if m.element == "OilTemperature")
    assert oil.node is not None and oil.node.signal == "M.OilTemperature" and oil.also == ("N.OilTemperature",)
    text = render_opcua_yaml(Discovery("opc.tcp://h:4840", "i=85", 6, nodes), OpcUaConnection(endpoint="opc.tcp://h:4840"),
                             "m", asset="a1", spec=spec)
    assert "#   OilTemperature also fits N.OilTemperature: use --root to pick one machine" in text
    assert "# - {signal: \"M.CycleCounter\"" in text and "skipped: an array" in text


def test_cli_writes_a_secure_draft(asyncua_server: AsyncuaServer, opcua_certificates: Certificates,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = asyncua_server
    certs = opcua_certificates
    monkeypatch.setenv("PRESS_PW", "secret")
    out = tmp_path / "agent.yaml"
    result = CliRunner().invoke(discover_group, [
        "opcua", srv.endpoint, "--root", "ns=2;s=Press1", "--depth", "1", "--name", "line1-press",
        "--security-policy", "Basic256Sha256", "--certificate", str(certs.client_cert),
        "--private-key", str(certs.client_key), "--username", "operator", "--password-env", "PRESS_PW", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 9 variables, 8 readable" in result.output
    config = parse_config(yaml.safe_load(out.read_text()), str(out))
    source = config.sources[0]
    assert source.type == "opcua"
    assert (source.name, source.security_policy, source.security_mode) == ("line1-press", "Basic256Sha256",
                                                                          "SignAndEncrypt")
    assert source.certificate == certs.client_cert and source.password_env == "PRESS_PW"
    readings = {r.signal: r for r in asyncio.run(create(source).read_once(10))}
    assert readings["OilTemperature"].quality is Quality.GOOD and readings["Program"].value is not None

    # Printed to stdout without -o.
    result = CliRunner().invoke(discover_group, ["opcua", srv.endpoint, "--root", "ns=2;s=Press1", "--depth", "1"])
    assert result.exit_code == 0 and 'endpoint: "' + srv.endpoint in result.output
    assert 'name: "127.0.0.1"' in result.output  # the default source name comes from the host


def test_cli_errors_are_one_line_each(asyncua_server: AsyncuaServer) -> None:
    runner = CliRunner()
    refused = runner.invoke(discover_group, ["opcua", f"opc.tcp://127.0.0.1:{free_port()}", "--timeout", "1"])
    assert refused.exit_code == 1 and "connection refused" in refused.output
    unknown = runner.invoke(discover_group, ["opcua", asyncua_server.endpoint, "--root", "ns=2;s=Nowhere"])
    assert unknown.exit_code == 1 and "root node ns=2;s=Nowhere is unknown" in unknown.output
    no_cert = runner.invoke(discover_group, ["opcua", asyncua_server.endpoint, "--security-policy", "Basic256Sha256"])
    assert no_cert.exit_code == 2 and "needs the client's certificate" in no_cert.output
    bad_endpoint = runner.invoke(discover_group, ["opcua", "http://host"])
    assert bad_endpoint.exit_code == 2 and "not an OPC UA endpoint" in bad_endpoint.output
    no_password = runner.invoke(discover_group, ["opcua", asyncua_server.endpoint, "--username", "operator",
                                                 "--password-env", "TWINEDGE_TEST_UNSET_PW"])
    assert no_password.exit_code == 1 and "TWINEDGE_TEST_UNSET_PW" in no_password.output
