"""edge_agent.sinks.mqtt against a real Mosquitto: topics and payloads, acks, outages, a broker that never acks."""

from __future__ import annotations

import asyncio
import base64
import math
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from aas_models.timeseries.base import Quality, Sample, SeriesKey
from edge_agent.connectors.mqtt import MqttConfigError
from edge_agent.sinks.base import SinkError
from edge_agent.sinks.mqtt import MqttSink, MqttSinkConfig, create, encode_batch, values_topic
from tests.mqtt_broker import MosquittoBroker, free_port, mosquitto_broker_fixture  # noqa: F401

SM1 = "urn:twinedge:sm:press-01:OperationalData:1.0"
SM2 = "urn:twinedge:sm:press-02:OperationalData:1.0"
T0 = datetime(2025, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)


def b64(identifier: str) -> str:
    return base64.urlsafe_b64encode(identifier.encode()).decode().rstrip("=")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class Subscriber:
    def __init__(self, host: str, port: int, flt: str = "#") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(flt, qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sink_for(broker_host: str, port: int, **kw: Any) -> MqttSink:
    cfg = MqttSinkConfig.model_validate({"type": "mqtt", "name": "north", "host": broker_host, "port": port,
                                         "connect_timeout": 1, "timeout": 2, **kw})
    return create(cfg, {})


def samples() -> list[Sample]:
    return [
        Sample(SeriesKey(SM1, "Hydraulics.OilTemperature"), T0, 48.7),
        Sample(SeriesKey(SM2, "Counters.Cycles"), T0, 1234),
        Sample(SeriesKey(SM1, "Hydraulics.OilTemperature"), T0 + timedelta(seconds=1), 48.9, Quality.UNCERTAIN),
        Sample(SeriesKey(SM1, "State.Text"), datetime(2025, 11, 25, 13, 0, tzinfo=timezone(timedelta(hours=1))),
               "läuft"),
        Sample(SeriesKey(SM1, "Hydraulics.Pressure"), T0, None, Quality.BAD),
        Sample(SeriesKey(SM2, "State.Running"), T0, True),
        Sample(SeriesKey(SM2, "Motor.Speed"), T0, math.nan),
    ]


def test_encoding_and_config() -> None:
    msgs = encode_batch("plant1/twinedge", samples())
    assert [t for t, _ in msgs] == [f"plant1/twinedge/twins/{b64(SM1)}/values",
                                    f"plant1/twinedge/twins/{b64(SM2)}/values"]
    assert values_topic("p", SM1) == msgs[0][0].replace("plant1/twinedge", "p")
    first = orjson.loads(msgs[0][1])
    assert first == {"submodelId": SM1, "values": [
        {"idShortPath": "Hydraulics.OilTemperature", "value": 48.7, "quality": "good",
         "time": "2025-11-25T12:00:00.123456Z"},
        {"idShortPath": "Hydraulics.OilTemperature", "value": 48.9, "quality": "uncertain",
         "time": "2025-11-25T12:00:01.123456Z"},
        {"idShortPath": "State.Text", "value": "läuft", "quality": "good", "time": "2025-11-25T12:00:00Z"},
        {"idShortPath": "Hydraulics.Pressure", "value": None, "quality": "bad", "time": "2025-11-25T12:00:00.123456Z"},
    ]}
    second = orjson.loads(msgs[1][1])
    assert [v["value"] for v in second["values"]] == [1234, True, None]  # NaN -> null
    for bad in ("/x", "x/", "a//b", "a/+", "a/#", "$SYS"):
        with pytest.raises(ValidationError, match="topic_prefix"):
            MqttSinkConfig(type="mqtt", name="n", host="h", topic_prefix=bad)
    with pytest.raises(MqttConfigError, match="NOPE_PW"):
        create(MqttSinkConfig(type="mqtt", name="n", host="h", password_env="NOPE_PW"), {})


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_batches_arrive(mosquitto_broker: MosquittoBroker, protocol: str) -> None:
    async def main() -> None:
        sub = Subscriber(mosquitto_broker.host, mosquitto_broker.port, "twinedge/twins/+/values")
        sink = sink_for(mosquitto_broker.host, mosquitto_broker.port, protocol=protocol)
        try:
            await sink.open()
            await sink.write(samples())
            # write returned: the broker acked both messages; the subscriber gets them right after
            await eventually(lambda: len(sub.messages) == 2, 5, "two messages")
            topics = [t for t, _ in sub.messages]
            assert topics == [f"twinedge/twins/{b64(SM1)}/values", f"twinedge/twins/{b64(SM2)}/values"]
            payloads = [orjson.loads(p) for _, p in sub.messages]
            assert [p["submodelId"] for p in payloads] == [SM1, SM2]
            assert len(payloads[0]["values"]) == 4 and len(payloads[1]["values"]) == 3
            assert sink.stats.written == 7 and sink.stats.batches == 1 and sink.stats.errors == 0
            await sink.write([])  # nothing to do
            # many batches in a row, each acked before the next
            for i in range(20):
                await sink.write([Sample(SeriesKey(SM1, "X"), T0 + timedelta(seconds=i), i)])
            await eventually(lambda: len(sub.messages) == 22, 5, "22 messages")
            assert [orjson.loads(p)["values"][0]["value"] for _, p in sub.messages[2:]] == list(range(20))
        finally:
            await sink.close()
            sub.close()

    run(main())


def test_broker_down_then_up(mosquitto_broker: MosquittoBroker) -> None:
    async def main() -> None:
        sink = sink_for(mosquitto_broker.host, mosquitto_broker.port, reconnect_min_delay=1, reconnect_max_delay=1)
        try:
            await sink.write(samples())
            mosquitto_broker.stop()
            await eventually(lambda: not sink.connected, 5, "the disconnect")
            t0 = time.monotonic()
            with pytest.raises(SinkError, match="not connected"):
                await sink.write(samples())
            assert time.monotonic() - t0 < 3  # connect_timeout, not forever
            assert sink.stats.errors == 1 and "not connected" in sink.stats.last_error
            mosquitto_broker.start()
            sub = Subscriber(mosquitto_broker.host, mosquitto_broker.port, "twinedge/#")
            await eventually(lambda: sink.connected, 10, "the reconnect")
            await sink.write(samples())  # the same sink, reconnected by itself
            assert sink.stats.reconnects == 1 and sink.stats.batches == 2
            await eventually(lambda: len(sub.messages) >= 2, 5, "the messages after the outage")
            sub.close()
        finally:
            await sink.close()

    run(main())


def test_write_waits_for_the_first_connection(mosquitto_broker: MosquittoBroker) -> None:
    """``write`` right after ``open`` (or without it) waits up to connect_timeout for the connection."""
    async def main() -> None:
        sink = sink_for(mosquitto_broker.host, mosquitto_broker.port, connect_timeout=5)
        await sink.write(samples())  # opens by itself
        assert sink.stats.written == 7
        await sink.close()

    run(main())


class SilentBroker:
    """Accepts one MQTT connection, answers CONNECT with CONNACK, then swallows everything: no PUBACKs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    @staticmethod
    def _client(conn: socket.socket) -> None:
        first = True
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            if first and data[0] == 0x10:
                conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
                first = False

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_no_ack_times_out() -> None:
    async def main() -> None:
        broker = SilentBroker()
        sink = sink_for("127.0.0.1", broker.port, timeout=0.5)
        try:
            await sink.open()
            await eventually(lambda: sink.connected, 5, "the connection")
            t0 = time.monotonic()
            with pytest.raises(SinkError, match="did not acknowledge 2 message"):
                await sink.write(samples())
            assert 0.4 < time.monotonic() - t0 < 2
            assert sink.stats.written == 0 and sink.stats.errors == 1
        finally:
            await sink.close()
            broker.close()

    run(main())


def test_unreachable_broker() -> None:
    async def main() -> None:
        sink = sink_for("127.0.0.1", free_port(), connect_timeout=0.3)
        with pytest.raises(SinkError, match=r"not connected to mqtt://127\.0\.0\.1"):
            await sink.write(samples())
        await sink.close()

    run(main())
