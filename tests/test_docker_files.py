"""The compose stack's files are valid for the parts that read them (no Docker daemon runs here, so
the images are not built in tests; what each container would read is checked instead)."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from edge_agent.assembly import build_agent
from edge_agent.config import load_config as load_agent_config
from edge_agent.simulator import load_config as load_simulator_config
from edge_agent.simulator import opcua_node_id
from twin_server.config import load_config as load_server_config
from twinedge.cli import cli

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def test_agent_config_builds_and_binds_every_press_signal() -> None:
    config = load_agent_config(DOCKER / "agent.yaml")
    agent = build_agent(config, {"TWINEDGE_AGENT_TOKEN": "x" * 32}, "docker/agent.yaml")
    assert len(agent.mapper.bindings()) == 27  # 3 presses x 9 signals
    simulator = load_simulator_config(DOCKER / "simulator.yaml")
    nodes = {n.node_id for s in config.sources if s.type == "opcua" for n in s.nodes}
    assert nodes <= {opcua_node_id(p.name, sig) for p in simulator.presses
                     for sig in ("RamPosition", "HydraulicPressure", "PressForce", "OilTemperature", "MotorCurrent",
                                 "Vibration", "CycleCounter", "CycleTime", "PartQuality")}


def test_server_config_has_auth_on_all_interfaces() -> None:
    config = load_server_config(DOCKER / "server.yaml")
    assert config.host == "0.0.0.0" and config.auth.tokens and not config.insecure


def test_compose_services_run_real_commands() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    ctx = click.Context(cli)
    for name, service in compose["services"].items():
        command = service.get("command")
        if service.get("image") != "twinedge:latest" or service.get("entrypoint"):
            continue
        group: click.Command | None = cli
        for word in command:
            if word.startswith("-") or not isinstance(group, click.Group):
                break
            group = group.get_command(ctx, word)
            assert group is not None, f"{name}: no command {word!r} in {command}"
        for word in command:
            if word.startswith("/etc/twinedge/"):
                assert (DOCKER / Path(word).name).is_file(), f"{name}: {word} is not in docker/"
