"""Outages lose nothing: every sample streamed at about 1,000 samples/s reaches every store exactly
once, whether the sinks go away for 30 s or the agent is killed with SIGKILL mid-stream.

Real parts only: two Mosquitto brokers (the line's source broker and a northbound sink broker),
InfluxDB 1.6.7, the twin server (uvicorn on a fixed port, stopped and started again), the embedded
time-series store, and the agent itself (in-process for the sink outage, as a `twinedge agent run`
subprocess for SIGKILL).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as paho
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from aas_models import ids
from aas_models.builders import operational_data
from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.twin import build_twin, submodel_id_for
from edge_agent.assembly import build_agent
from edge_agent.config import parse_config
from tests.influx_peer import InfluxDB1, influxd_binary
from tests.mqtt_broker import MosquittoBroker, free_port, mosquitto_binary
from twin_server.app import create_app
from twin_server.config import ServerConfig

ROOT = Path(__file__).resolve().parents[1]
#: Bound press signals: 9 per message, so 112 messages/s make about 1,000 samples/s.
SIGNALS = ("RamPosition", "HydraulicPressure", "PressForce", "OilTemperature", "MotorCurrent", "Vibration",
           "CycleTime", "CycleCounter", "PartQuality")
NUMERIC = SIGNALS[:8]
RATE = 112
OUTAGE = 30.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)

pytestmark = [
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed (apt-get install mosquitto)"),
]


class Publisher:
    """Publishes message i with source time T0 + i ms and every numeric signal = i, at RATE messages/s."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="line-publisher")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * RATE)
            while self.sent < due:
                i = self.sent
                body = {s: float(i) for s in NUMERIC} | {"PartQuality": "OK" if i % 2 else "NG",
                                                         "ts": (T0 + timedelta(milliseconds=i)).isoformat()}
                self.client.publish("line/Press1/telemetry", json.dumps(body), qos=1)
                self.sent += 1
            time.sleep(0.002)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.client.loop_stop()
        self.client.disconnect()
        return self.sent


def _source(broker: MosquittoBroker, *, persistent: bool) -> dict[str, Any]:
    source: dict[str, Any] = {
        "type": "mqtt", "name": "line", "host": broker.host, "port": broker.port, "qos": 1,
        "topics": [{"filter": "line/+/telemetry", "payload": "json", "time_path": "ts",
                    "signals": [{"signal": f"{{1}}.{s}", "path": s} for s in SIGNALS]}],
    }
    if persistent:
        source |= {"persistent_session": True, "client_id": "agent-under-test"}
    return source


def _asset() -> dict[str, Any]:
    return {"id": "press-01", "bindings": [{"source": "line", "signal": f"Press1.{s}", "element": s} for s in SIGNALS]}


def _stored(path: Path) -> dict[str, list[float]]:
    """Stored numeric values per idShortPath from the embedded store's file (its folded chunks: each sample
    once per time, as every reader sees it)."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT s.path, c.num FROM chunks c JOIN series s ON s.id = c.series "
                          "ORDER BY c.t0").fetchall()
    out: dict[str, list[float]] = {}
    for element, num in rows:
        out.setdefault(element, []).extend(np.frombuffer(num, "<f8").tolist())
    return out


def _twin_file(folder: Path) -> Path:
    path = folder / "press-01.json"
    save(AasPackage(build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-01")), path)
    return path


class TwinServer:
    """The twin server on a fixed port and data folder, so it can be stopped and started again."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = ServerConfig(host="127.0.0.1", port=self.port, data_dir=folder / "server",
                                   load=[_twin_file(folder)])
        self.loaded = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3.0"

    def start(self) -> None:
        config = self.config if not self.loaded else self.config.model_copy(update={"load": []})
        self.loaded = True
        self._server = uvicorn.Server(uvicorn.Config(create_app(config, environ={}), host="127.0.0.1",
                                                     port=self.port, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "twin server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextmanager
def _brokers(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, MosquittoBroker]]:
    source = MosquittoBroker(tmp_path / "source-broker")
    sink = MosquittoBroker(tmp_path / "sink-broker")
    source.start()
    sink.start()
    try:
        yield source, sink
    finally:
        source.close()
        sink.close()


class NorthboundSubscriber:
    """A persistent-session QoS 1 subscriber on the sink broker: which counters arrived, how often."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.seen: dict[float, int] = {}
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="northbound-reader", clean_session=False)
        self.client.on_connect = lambda c, *_: c.subscribe("sink/#", qos=1)
        self.client.on_message = self._message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        for value in json.loads(message.payload)["values"]:
            if value["idShortPath"] == "OilTemperature.Value":
                self.seen[value["value"]] = self.seen.get(value["value"], 0) + 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.skipif(influxd_binary() is None, reason="influxd is not installed (apt-get install influxdb)")
def test_sink_outage_of_30_s_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    twin = TwinServer(tmp_path)
    influx = InfluxDB1(tmp_path / "influx")
    with _brokers(tmp_path) as (source_broker, sink_broker), influx:
        influx.start()
        twin.start()
        config = {
            "sources": [_source(source_broker, persistent=False)],
            "assets": [_asset()],
            "sinks": [
                {"type": "twin", "url": twin.api},
                {"type": "timeseries", "path": str(tmp_path / "ts.db"), "retention_days": 0},  # T0 is old
                {"type": "influxdb_v1", "name": "influx", "url": influx.url, "database": "line",
                 "create_database": True},
                {"type": "mqtt", "name": "northbound", "host": sink_broker.host, "port": sink_broker.port,
                 "topic_prefix": "sink", "qos": 1},
            ],
            "buffer": {"path": str(tmp_path / "buffer.db")},
            "metrics": {"enabled": False},
            "flush_interval": 0.1,
        }
        agent = build_agent(parse_config(config, "faults.yaml"), {}, "faults.yaml")
        subscriber = NorthboundSubscriber(sink_broker)
        publisher = Publisher(source_broker)
        snapshots: list[dict[str, Any]] = []

        async def scenario() -> int:
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            while not agent.connectors[0].stats.connected:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # subscription acknowledged
            publisher.start()
            await asyncio.sleep(5)
            await asyncio.to_thread(twin.stop)
            await asyncio.to_thread(influx.stop)
            await asyncio.to_thread(sink_broker.stop)
            await asyncio.sleep(OUTAGE)
            snapshots.append(agent.snapshot())
            await asyncio.to_thread(sink_broker.start)
            await asyncio.to_thread(influx.start)
            await asyncio.to_thread(twin.start)
            await asyncio.sleep(5)
            sent = await asyncio.to_thread(publisher.stop)
            for _ in range(600):
                if agent.appended >= sent * len(SIGNALS):
                    break
                await asyncio.sleep(0.05)
            assert await agent.drain(60), agent.snapshot()
            snapshots.append(agent.snapshot())
            stop.set()
            await task
            return sent

        sent = asyncio.run(scenario())
        during, after = snapshots
        assert sent > 35 * RATE
        # During the outage the samples waited in the buffer, and the sinks counted their failures.
        assert during["sinks"]["twin"]["depth"] > 0 and during["sinks"]["influx"]["depth"] > 0
        assert during["sinks"]["twin"]["errors"] > 0
        assert after["buffer"]["dropped"] == 0
        assert after["sinks"]["twin"]["reconnects"] >= 1

        expected = [float(i) for i in range(sent)]
        stored = _stored(tmp_path / "ts.db")
        for signal_name in NUMERIC:
            assert sorted(stored[operational_data.value_path(signal_name)]) == expected, signal_name

        counts = {r["path"]: r["count"] for r in influx.rows('SELECT count("value") FROM "twinedge" GROUP BY "path"',
                                                              "line")}
        assert counts == {operational_data.value_path(s): sent for s in NUMERIC}

        sm = ids.b64url_encode(submodel_id_for("press-01", operational_data.ID_SHORT))
        value = httpx.get(f"{twin.api}/submodels/{sm}/submodel-elements/OilTemperature/$value").json()
        assert value["OilTemperature"]["Value"] == float(sent - 1)

        deadline = time.monotonic() + 20
        while len(subscriber.seen) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        subscriber.close()
        assert sorted(subscriber.seen) == expected  # MQTT is at-least-once: all of them arrived
        twin.stop()


def test_sigkill_mid_stream_then_restart_delivers_every_sample_once(tmp_path: Path) -> None:
    metrics_port = free_port()
    with _brokers(tmp_path) as (source_broker, _):
        config = {
            "sources": [_source(source_broker, persistent=True)],
            "assets": [_asset()],
            "sinks": [{"type": "timeseries", "path": str(tmp_path / "ts.db"), "retention_days": 0}],
            "buffer": {"path": str(tmp_path / "buffer.db")},
            "metrics": {"port": metrics_port},
            "flush_interval": 0.1,
        }
        config_file = tmp_path / "agent.yaml"
        config_file.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        command = [sys.executable, "-m", "twinedge", "agent", "run", "--config", str(config_file)]
        env = os.environ | {"PYTHONPATH": str(ROOT)}

        def start_agent() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # subscribed: from then on the broker keeps our messages
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
                try:
                    status = httpx.get(f"http://127.0.0.1:{metrics_port}/status", timeout=1).json()
                    if status["sources"]["line"]["connected"]:
                        time.sleep(0.5)
                        return proc
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise AssertionError("the agent did not connect within 30 s")

        first = start_agent()
        publisher = Publisher(source_broker)
        publisher.start()
        time.sleep(4)
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(2)
        second = start_agent()
        time.sleep(2)
        sent = publisher.stop()
        path = operational_data.value_path("OilTemperature")
        deadline = time.monotonic() + 60
        stored: dict[str, list[float]] = {}
        while time.monotonic() < deadline:
            stored = _stored(tmp_path / "ts.db")
            if len(stored.get(path, [])) >= sent:
                break
            time.sleep(0.2)
        time.sleep(1)  # anything sent twice would arrive now
        second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=20)[0].decode(errors="replace")
        assert second.returncode == 0, output
        stored = _stored(tmp_path / "ts.db")
        for signal_name in NUMERIC:
            assert sorted(stored[operational_data.value_path(signal_name)]) == [float(i) for i in range(sent)]
