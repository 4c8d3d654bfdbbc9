"""The whole agent from its YAML config: Mosquitto -> MQTT connector -> mapping -> durable buffer ->
twin server (real FastAPI app on loopback) and embedded time-series store."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from aas_models import ids
from aas_models.builders import operational_data
from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.timeseries.base import SeriesKey
from aas_models.timeseries.sqlite import SqliteTimeSeries
from aas_models.twin import build_twin, submodel_id_for
from edge_agent.assembly import build_agent
from edge_agent.cli import agent_group
from edge_agent.config import load_config
from tests.mqtt_broker import MosquittoBroker, mosquitto_broker_fixture  # noqa: F401
from tests.server import run_server
from twin_server.config import ServerConfig


def _config(tmp_path: Path, broker: MosquittoBroker, server_url: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"""
sources:
  - type: mqtt
    name: line
    host: {broker.host}
    port: {broker.port}
    qos: 1
    topics:
      - filter: sim/+/telemetry
        payload: json
        signals:
          - {{signal: "{{1}}.oil", path: oil}}
          - {{signal: "{{1}}.force", path: force}}
assets:
  - id: press-01
    bindings:
      - {{source: line, signal: Press1.oil, element: OilTemperature}}
      - {{source: line, signal: Press1.force, element: PressForce, scale: 0.001}}
sinks:
  - {{type: twin, url: "{server_url}"}}
  - {{type: timeseries, path: ts.db}}
buffer: {{path: buffer.db}}
metrics: {{port: 0}}
flush_interval: 0.05
""", encoding="utf-8")
    return path


def _twin_file(tmp_path: Path) -> Path:
    env = build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-01")
    path = tmp_path / "press-01.json"
    save(AasPackage(env), path)
    return path


def test_agent_streams_mqtt_into_twin_and_store(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    server_config = ServerConfig(data_dir=tmp_path / "server", load=[_twin_file(tmp_path)])
    with run_server(server_config) as server:
        config_file = _config(tmp_path, mosquitto_broker, server.base)
        agent = build_agent(load_config(config_file), os.environ, str(config_file))
        publisher = paho.Client(CallbackAPIVersion.VERSION2)
        publisher.connect(mosquitto_broker.host, mosquitto_broker.port)
        publisher.loop_start()

        async def scenario() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            for _ in range(100):  # wait for the subscription
                await asyncio.sleep(0.05)
                if agent.connectors[0].stats.connected:
                    break
            await asyncio.sleep(0.3)
            for i in range(50):
                body = {"oil": 40.0 + i, "force": 1_500_000.0 + i * 1000}
                publisher.publish("sim/Press1/telemetry", json.dumps(body), qos=1).wait_for_publish(5)
                publisher.publish("sim/Press9/telemetry", json.dumps(body), qos=1).wait_for_publish(5)
            for _ in range(200):
                await asyncio.sleep(0.05)
                if agent.appended >= 100:
                    break
            assert await agent.drain(10)
            snapshots.append(agent.snapshot())
            stop.set()
            await task

        snapshots: list[dict[str, Any]] = []
        asyncio.run(scenario())
        publisher.loop_stop()
        publisher.disconnect()

        snapshot = snapshots[0]
        assert snapshot["sources"]["line"]["readings"] >= 200  # Press9 is read but bound to nothing
        assert agent.appended == 100
        assert snapshot["sinks"]["history"]["written"] == 100
        assert snapshot["buffer"]["dropped"] == 0

        sm_id = submodel_id_for("press-01", operational_data.ID_SHORT)
        url = f"{server.base}/submodels/{ids.b64url_encode(sm_id)}/submodel-elements/OilTemperature/$value"
        value = httpx.get(url).json()
        assert value["OilTemperature"]["Value"] == pytest.approx(89.0)
        assert value["OilTemperature"]["Quality"] == "good"

    async def stored() -> list[float]:
        store = SqliteTimeSeries(tmp_path / "ts.db")
        await store.open()
        try:
            points = await store.read(SeriesKey(sm_id, operational_data.value_path("PressForce")))
            return [float(p.value) for p in points]  # type: ignore[arg-type]
        finally:
            await store.close()

    forces = asyncio.run(stored())
    assert forces == [pytest.approx(1500.0 + i) for i in range(50)]


def test_agent_check_prints_a_table_and_fails_on_unreachable_source(tmp_path: Path) -> None:
    broker = MosquittoBroker.__new__(MosquittoBroker)  # only host/port are used: nothing listens there
    broker.host, broker.port = "127.0.0.1", 9  # discard port: connection refused
    config_file = _config(tmp_path, broker, "http://127.0.0.1:9/api/v3.0")
    result = CliRunner().invoke(agent_group, ["check", "--config", str(config_file), "--timeout", "1"])
    assert result.exit_code == 1, result.output
    assert "source" in result.output and "line" in result.output
